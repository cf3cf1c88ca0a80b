"""Travel time and cost, and each family's candidate services per type.

Candidates of a type are *every* service of that type within the family's maximum acceptable
travel time (DESIGN §2), so no nearer-k cut can change a result. They are stored sparsely
(CSR per type, by travel minutes then service id); nothing of size families x services is
built.
Travel minutes are integers computed once by one float64 formula shared with the reference.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.spatial import cKDTree

from sim.core.codes import (
    MAX_TOLERANCE_FACTOR,
    MODE_CAR,
    MODE_TRANSIT,
    N_TYPES,
    REFERENCE_TRIPS_PER_WEEK,
    SERVICE_TYPES,
    TRAVEL_MINUTES_CAP,
)
from sim.scenario.schema import Scenario, TravelSpec
from sim.world.population import FamilyTable, build_threads

UNREACHABLE_MINUTES = 10_000


def tolerance_percent(scenario: Scenario) -> np.ndarray:
    """Per type, the percentage of a family's maximum travel time it accepts for a trip to
    a service of the type: (REFERENCE_TRIPS_PER_WEEK / the type's trips a week in use) **
    travel.tolerance_trip_elasticity, at most MAX_TOLERANCE_FACTOR, in whole percent. Trips
    a week are the public provision's trips_per_week over its visit_interval_weeks (daily
    childcare: 10 a week, 100 %; a consultation every ten weeks, 2 trips: 0.2 a week)."""
    elasticity = scenario.travel.tolerance_trip_elasticity
    out = np.empty(N_TYPES, dtype=np.int64)
    for t, name in enumerate(SERVICE_TYPES):
        spec = scenario.provision[name]
        if spec.trips_per_week == 0:
            factor = float(MAX_TOLERANCE_FACTOR)
        else:
            ratio = REFERENCE_TRIPS_PER_WEEK * spec.visit_interval_weeks / spec.trips_per_week
            factor = min(float(MAX_TOLERANCE_FACTOR), ratio**elasticity)
        out[t] = int(round(100.0 * factor))
    return out


def type_max_minutes(max_travel_minutes: np.ndarray, percent: int) -> np.ndarray:
    """A family's maximum travel minutes to a type accepted at `percent` of its own
    (integer: max_travel_minutes x percent // 100, at most TRAVEL_MINUTES_CAP)."""
    out = max_travel_minutes.astype(np.int64) * int(percent) // 100
    return np.minimum(out, TRAVEL_MINUTES_CAP).astype(np.int32)


def travel_minutes(
    distance_cells: np.ndarray,
    mode: np.ndarray,
    transit_access: np.ndarray,
    cell_size_m: float,
    spec: TravelSpec,
) -> np.ndarray:
    """Door-to-door minutes (int32, rounded up) for a straight-line distance in cells.

    walk: detour x km x minutes/km; transit: access walk + a wait that grows as transit
    access falls + in-vehicle time; car: overhead (parking) + detour x km x minutes/km.
    Nobody takes transit or the car for a trip they can walk faster.
    """
    km = _km(distance_cells, cell_size_m, spec)
    minutes = np.where(
        mode == MODE_CAR,
        _car_minutes(km, spec),
        np.where(mode == MODE_TRANSIT, _transit_minutes(km, transit_access, spec), _walk(km, spec)),
    )
    return _whole_minutes(minutes)


def travel_minutes_by(
    distance_cells: np.ndarray,
    mode: int,
    transit_access: np.ndarray,
    cell_size_m: float,
    spec: TravelSpec,
) -> np.ndarray:
    """`travel_minutes` for families who all use one mode (the same operations, so the same
    integers), computing that mode's formula only."""
    km = _km(distance_cells, cell_size_m, spec)
    if mode == MODE_CAR:
        return _whole_minutes(_car_minutes(km, spec))
    if mode == MODE_TRANSIT:
        return _whole_minutes(_transit_minutes(km, transit_access, spec))
    return _whole_minutes(_walk(km, spec))


def _km(distance_cells: np.ndarray, cell_size_m: float, spec: TravelSpec) -> np.ndarray:
    return distance_cells * (cell_size_m / 1000.0) * spec.detour_factor


def _walk(km: np.ndarray, spec: TravelSpec) -> np.ndarray:
    return km * spec.walk_minutes_per_km


def _transit_minutes(km: np.ndarray, transit_access: np.ndarray, spec: TravelSpec) -> np.ndarray:
    transit = (
        spec.transit_access_minutes
        + spec.transit_wait_minutes_max * (1.0 - transit_access)
        + km * spec.transit_minutes_per_km
    )
    return np.minimum(transit, _walk(km, spec))


def _car_minutes(km: np.ndarray, spec: TravelSpec) -> np.ndarray:
    return np.minimum(spec.car_overhead_minutes + km * spec.car_minutes_per_km, _walk(km, spec))


def _whole_minutes(minutes: np.ndarray) -> np.ndarray:
    return np.ceil(minutes - 1e-9).astype(np.int32)


def max_reach_cells(max_minutes: np.ndarray, cell_size_m: float, spec: TravelSpec) -> np.ndarray:
    """An upper bound on the straight-line distance (cells) reachable in max_minutes by the
    fastest mode; candidates are then filtered by their exact minutes."""
    km_per_minute = 1.0 / min(
        spec.walk_minutes_per_km, spec.transit_minutes_per_km, spec.car_minutes_per_km
    )
    km = max_minutes * km_per_minute / spec.detour_factor
    return km * 1000.0 / cell_size_m + 1.0


def reach_cells(
    max_minutes: np.ndarray, mode: np.ndarray, cell_size_m: float, spec: TravelSpec
) -> np.ndarray:
    """An upper bound on the straight-line distance (cells) a family reaches within its
    maximum time by its own mode (or on foot, which every mode may fall back to): the
    formulas of `travel_minutes` without the fixed parts that only add time, plus a cell."""
    walk_km = max_minutes / spec.walk_minutes_per_km
    transit_km = (max_minutes - spec.transit_access_minutes) / spec.transit_minutes_per_km
    car_km = (max_minutes - spec.car_overhead_minutes) / spec.car_minutes_per_km
    km = np.where(
        mode == MODE_CAR,
        np.maximum(walk_km, car_km),
        np.where(mode == MODE_TRANSIT, np.maximum(walk_km, transit_km), walk_km),
    )
    return km / spec.detour_factor * 1000.0 / cell_size_m + 1.0


@dataclass
class CandidateSets:
    """Per type t: family f's candidates are service[t][indptr[t][f]:indptr[t][f+1]], in order
    of (minutes, service id), so the first acceptable candidate is the one a family picks.
    Trip costs are not stored: `sim.rules.fees.trip_cents` gives them from the minutes."""

    indptr: list[np.ndarray]  # int64 [F + 1]
    service: list[np.ndarray]  # int32, by (minutes, id) within a family
    minutes: list[np.ndarray]  # int16 (a family's maximum travel time is far below 2**15)
    nearest_service: np.ndarray  # int32 [F, T]: nearest of the type anywhere (-1 if none)
    nearest_minutes: np.ndarray  # int32 [F, T]

    def count(self, t: int, rows: np.ndarray) -> np.ndarray:
        indptr = self.indptr[t]
        return indptr[rows + 1] - indptr[rows]


# families per block while building candidate lists, and dense pairs per block (memory bound)
_BLOCK_FAMILIES = 30_000
_BLOCK_PAIRS = 6_000_000
# families in a block have reach within this factor of each other (bounds wasted pairs)
_REACH_CLASS = 1.3


def build_candidates(
    families: FamilyTable,
    service_type: np.ndarray,
    service_x: np.ndarray,
    service_y: np.ndarray,
    transit_access_grid: np.ndarray,
    cell_size_m: float,
    spec: TravelSpec,
    tolerance_pct: np.ndarray | None = None,
) -> CandidateSets:
    """Every service of each type within each family's maximum travel time to the type (its
    own maximum at the type's `tolerance_pct`, `tolerance_percent`; 100 % for every type
    without it), by (minutes, id).

    Families are grouped in blocks of one mode, one square tile of the city and similar
    reach. For each block, the services of the type inside the tile's box widened by the
    block's largest reach are compared with every family of the block in dense arrays; a
    squared-distance test in integers drops the pairs beyond each family's own reach, and
    exact minutes decide the rest. Memory per block is bounded; no Python list per family."""
    n = families.size
    if int(families.max_travel_minutes.max(initial=0)) >= np.iinfo(np.int16).max:
        raise ValueError("maximum travel time above 32,766 minutes")
    transit = transit_access_grid[families.x, families.y]
    indptrs, services, minutes_out = [], [], []
    nearest_service = np.full((n, N_TYPES), -1, dtype=np.int32)
    nearest_minutes = np.full((n, N_TYPES), UNREACHABLE_MINUTES, dtype=np.int32)
    if tolerance_pct is None:
        tolerance_pct = np.full(N_TYPES, 100, dtype=np.int64)
    by_percent: dict[int, tuple] = {}  # types with one tolerance share their blocks
    for t in range(N_TYPES):
        percent = int(tolerance_pct[t])
        if percent not in by_percent:
            max_minutes = type_max_minutes(families.max_travel_minutes, percent)
            reach_t = reach_cells(max_minutes.astype(float), families.mode, cell_size_m, spec)
            by_percent[percent] = (max_minutes, reach_t, _family_blocks(families, reach_t))
        max_minutes, reach, blocks = by_percent[percent]
        ids = np.flatnonzero(service_type == t).astype(np.int32)
        # services of the type by x (then y, id): a box is a slice, then a filter on y
        ids = ids[np.lexsort((ids, service_y[ids], service_x[ids]))]
        sx = service_x[ids].astype(np.int32)
        sy = service_y[ids].astype(np.int32)
        counts = np.zeros(n, dtype=np.int64)
        pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        if ids.size:
            # blocks are independent (each writes its own families' counts); numpy releases
            # the GIL in the array work, so two threads use both cores
            work = partial(
                _block_candidates,
                ids=ids,
                sx=sx,
                sy=sy,
                families=families,
                transit=transit,
                reach=reach,
                max_minutes=max_minutes,
                cell_size_m=cell_size_m,
                spec=spec,
                counts=counts,
            )
            with ThreadPoolExecutor(max_workers=build_threads()) as pool:
                rows_of, mode_of = [b for _, b in blocks], [m for m, _ in blocks]
                for result in pool.map(work, rows_of, mode_of):
                    pieces.extend(result)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        sid_all = np.empty(int(indptr[-1]), dtype=np.int32)
        min_all = np.empty(int(indptr[-1]), dtype=np.int16)
        # each piece is freed once written, so the lists and the pieces are not all held at once
        pieces.reverse()
        while pieces:
            block, sid, mins = pieces.pop()
            c = counts[block]
            dest = np.repeat(indptr[block] - np.cumsum(c) + c, c) + np.arange(int(c.sum()))
            sid_all[dest] = sid
            min_all[dest] = mins
            del block, sid, mins, dest
        # nearest of the type anywhere, by (minutes, id): the first candidate when there is
        # one, else searched beyond the family's reach (for the barrier log)
        has = counts > 0
        rows = np.flatnonzero(has)
        nearest_service[rows, t] = sid_all[indptr[rows]]
        nearest_minutes[rows, t] = min_all[indptr[rows]]
        lacking = np.flatnonzero(~has)
        if lacking.size and ids.size:
            svc_xy = np.column_stack([sx, sy]).astype(float)
            fam_xy = np.column_stack([families.x, families.y]).astype(float)
            _nearest_beyond_reach(
                lacking,
                t,
                ids,
                svc_xy,
                cKDTree(svc_xy),
                fam_xy,
                families.mode,
                transit,
                cell_size_m,
                spec,
                nearest_service,
                nearest_minutes,
            )
        indptrs.append(indptr)
        services.append(sid_all)
        minutes_out.append(min_all)
    return CandidateSets(indptrs, services, minutes_out, nearest_service, nearest_minutes)


def _family_blocks(families: FamilyTable, reach: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(mode, rows) blocks: one mode, one tile (side about the mode's median reach), reach
    within a factor _REACH_CLASS, at most _BLOCK_FAMILIES rows."""
    out = []
    for mode in np.unique(families.mode):
        rows = np.flatnonzero(families.mode == mode)
        side = max(8, int(np.median(reach[rows])))
        tx = families.x[rows] // side
        ty = families.y[rows] // side
        cls = np.floor(np.log(reach[rows]) / np.log(_REACH_CLASS)).astype(np.int64)
        order = np.lexsort((rows, cls, ty, tx))
        key = np.stack([tx[order], ty[order], cls[order]])
        edges = np.flatnonzero(np.r_[True, (key[:, 1:] != key[:, :-1]).any(axis=0), True])
        rows = rows[order]
        for start, stop in zip(edges[:-1], edges[1:], strict=True):
            for s in range(start, stop, _BLOCK_FAMILIES):
                out.append((int(mode), rows[s : min(stop, s + _BLOCK_FAMILIES)]))
    return out


def _block_candidates(
    block: np.ndarray,
    mode: int,
    ids: np.ndarray,
    sx: np.ndarray,
    sy: np.ndarray,
    families: FamilyTable,
    transit: np.ndarray,
    reach: np.ndarray,
    max_minutes: np.ndarray,
    cell_size_m: float,
    spec: TravelSpec,
    counts: np.ndarray,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One block of families of one mode against the services in its widened box: writes
    the families' counts, returns [(rows, services, minutes)] flattened row by row in
    (minutes, id) order (several pieces if the box is large)."""
    # coordinates below 2**15, squared distances below 2**31: int32 throughout
    bx = families.x[block].astype(np.int32)
    by = families.y[block].astype(np.int32)
    widest = int(np.floor(reach[block].max()))
    lo = np.searchsorted(sx, bx.min() - widest, side="left")
    hi = np.searchsorted(sx, bx.max() + widest, side="right")
    near = np.arange(lo, hi)
    near = near[(sy[near] >= by.min() - widest) & (sy[near] <= by.max() + widest)]
    if near.size == 0:
        return []
    # squared reach in whole cells: distances are square roots of integers, so this keeps
    # exactly the services within reach
    reach2 = np.floor(np.minimum(reach[block] ** 2, 2**31 - 1)).astype(np.int32)
    pieces = []
    step = max(1, _BLOCK_PAIRS // near.size)
    for s in range(0, len(block), step):
        rows = slice(s, min(len(block), s + step))
        dx = sx[near][None, :] - bx[rows, None]
        dy = sy[near][None, :] - by[rows, None]
        r, c = np.nonzero(dx * dx + dy * dy <= reach2[rows, None])
        fam = block[rows][r]
        # the same float64 operations as travel_minutes on the same values
        d = np.hypot(dx[r, c].astype(float), dy[r, c].astype(float))
        mins = travel_minutes_by(d, mode, transit[fam], cell_size_m, spec)
        keep = mins <= max_minutes[fam]
        r, mins, sid = r[keep], mins[keep], ids[near[c[keep]]]
        # (row, minutes, id) packed in one integer, sorted
        key = (r.astype(np.int64) << 47) | (mins.astype(np.int64) << 32) | sid.astype(np.int64)
        key.sort(kind="stable")  # radix sort here, and the rows come already in order
        counts[block[rows]] = np.bincount(r, minlength=rows.stop - rows.start)
        pieces.append(
            (
                block[rows],
                (key & 0xFFFFFFFF).astype(np.int32),
                ((key >> 32) & 0x7FFF).astype(np.int16),
            )
        )
    return pieces


def _nearest_beyond_reach(
    rows: np.ndarray,
    t: int,
    ids: np.ndarray,
    svc_xy: np.ndarray,
    tree: cKDTree,
    fam_xy: np.ndarray,
    mode: np.ndarray,
    transit: np.ndarray,
    cell_size_m: float,
    spec: TravelSpec,
    nearest_service: np.ndarray,
    nearest_minutes: np.ndarray,
) -> None:
    """Nearest service by (minutes, id) for families with no candidate within reach.

    Minutes grow with distance for a given family, so the answer lies within one minute's
    reach of the nearest service by distance; the k nearest are asked for, k growing until
    the k-th lies beyond that bound (or k covers every service of the type)."""
    d0, _ = tree.query(fam_xy[rows])
    bound = d0 + max_reach_cells(np.ones(1), cell_size_m, spec)[0]
    todo = np.arange(len(rows))
    k = 8
    while todo.size:
        k = min(k, ids.size)
        dist, local = tree.query(fam_xy[rows[todo]], k=list(range(1, k + 1)))
        covered = (dist[:, -1] > bound[todo]) | (k == ids.size)
        r = rows[todo[covered]]
        local = local[covered]
        d = np.hypot(svc_xy[local, 0] - fam_xy[r, 0, None], svc_xy[local, 1] - fam_xy[r, 1, None])
        mins = travel_minutes(d, mode[r, None], transit[r, None], cell_size_m, spec)
        sid = ids[local]
        pick = np.argmin(mins.astype(np.int64) * (1 << 32) + sid, axis=1)
        nearest_service[r, t] = sid[np.arange(len(r)), pick]
        nearest_minutes[r, t] = mins[np.arange(len(r)), pick]
        todo = todo[~covered]
        k *= 4


def add_sites(
    candidates: CandidateSets,
    families: FamilyTable,
    first_new: int,
    service_type: np.ndarray,
    service_x: np.ndarray,
    service_y: np.ndarray,
    transit_access_grid: np.ndarray,
    cell_size_m: float,
    spec: TravelSpec,
    tolerance_pct: np.ndarray | None = None,
) -> CandidateSets:
    """The candidate sets of a service map that is the old one with sites `first_new` and up
    appended (a hub's presences), without rebuilding: only the families within reach of a
    new site gain entries, merged in (minutes, id) order; the nearest site of a type moves
    only where a new one is nearer. Gives the arrays `build_candidates` gives for the whole
    map (tests/test_travel.py), for the cost of the new sites alone: a placement search adds
    hubs to one built world many times. Old services must keep their ids, types and cells."""
    n = families.size
    new = np.arange(first_new, len(service_type))
    if new.size == 0:
        return candidates
    if tolerance_pct is None:
        tolerance_pct = np.full(N_TYPES, 100, dtype=np.int64)
    transit = transit_access_grid[families.x, families.y]
    indptrs = list(candidates.indptr)
    services = list(candidates.service)
    minutes_out = list(candidates.minutes)
    nearest_service = candidates.nearest_service.copy()
    nearest_minutes = candidates.nearest_minutes.copy()
    fx = families.x.astype(np.int64)
    fy = families.y.astype(np.int64)
    for t in np.unique(service_type[new]):
        t = int(t)
        ids = new[service_type[new] == t].astype(np.int64)
        max_minutes = type_max_minutes(families.max_travel_minutes, int(tolerance_pct[t]))
        dx = service_x[ids].astype(np.int64)[None, :] - fx[:, None]
        dy = service_y[ids].astype(np.int64)[None, :] - fy[:, None]
        # the same float64 operations as build_candidates on the same values
        d = np.hypot(dx.astype(float), dy.astype(float))
        mins = travel_minutes(d, families.mode[:, None], transit[:, None], cell_size_m, spec)
        # nearest anywhere, by (minutes, id): old ids are lower, so a tie keeps the old one
        best = np.argmin(mins.astype(np.int64) * (1 << 32) + ids[None, :], axis=1)
        best_minutes = mins[np.arange(n), best]
        nearer = (nearest_service[:, t] < 0) | (best_minutes < nearest_minutes[:, t])
        nearest_service[nearer, t] = ids[best[nearer]]
        nearest_minutes[nearer, t] = best_minutes[nearer]
        # new candidates, merged with the old ones by (family, minutes, id)
        r, c = np.nonzero(mins <= max_minutes[:, None])
        if r.size == 0:
            continue
        indptr = indptrs[t]
        old_counts = np.diff(indptr)
        old_rows = np.repeat(np.arange(n, dtype=np.int64), old_counts)
        key = np.concatenate(
            [
                (old_rows << 47)
                | (minutes_out[t].astype(np.int64) << 32)
                | services[t].astype(np.int64),
                (r.astype(np.int64) << 47) | (mins[r, c].astype(np.int64) << 32) | ids[c],
            ]
        )
        key.sort(kind="stable")
        counts = old_counts + np.bincount(r, minlength=n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        indptrs[t] = indptr
        services[t] = (key & 0xFFFFFFFF).astype(np.int32)
        minutes_out[t] = ((key >> 32) & 0x7FFF).astype(np.int16)
    return CandidateSets(indptrs, services, minutes_out, nearest_service, nearest_minutes)
