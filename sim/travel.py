"""Travel time and cost, and each family's candidate services per type.

Candidates of a type are *every* service of that type within the family's maximum acceptable
travel time (DESIGN §2), so no nearer-k cut can change a result. They are stored sparsely
(CSR per type, sorted by service id); nothing of size families x services is built.
Travel minutes are integers computed once by one float64 formula shared with the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from sim.population import MODE_CAR, MODE_TRANSIT, N_TYPES, FamilyTable
from sim.scenario import TravelSpec, cents

UNREACHABLE_MINUTES = 10_000


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
    """
    km = distance_cells * (cell_size_m / 1000.0) * spec.detour_factor
    walk = km * spec.walk_minutes_per_km
    transit = (
        spec.transit_access_minutes
        + spec.transit_wait_minutes_max * (1.0 - transit_access)
        + km * spec.transit_minutes_per_km
    )
    # nobody takes transit or the car for a trip they can walk faster
    transit = np.minimum(transit, walk)
    car = np.minimum(spec.car_overhead_minutes + km * spec.car_minutes_per_km, walk)
    minutes = np.where(mode == MODE_CAR, car, np.where(mode == MODE_TRANSIT, transit, walk))
    return np.ceil(minutes - 1e-9).astype(np.int32)


def trip_cost_cents(minutes: np.ndarray, mode: np.ndarray, spec: TravelSpec) -> np.ndarray:
    """Cost of one trip in integer cents: a transit fare, or the car's cost per minute
    (rounded to whole cents per minute, so rescaling money changes no comparison)."""
    car_cents_per_minute = cents(spec.car_cost_eur_per_minute)
    fare = cents(spec.transit_fare_eur_trip)
    cost = np.where(
        mode == MODE_CAR,
        minutes.astype(np.int64) * car_cents_per_minute,
        np.where(mode == MODE_TRANSIT, fare, 0),
    )
    return cost.astype(np.int64)


def max_reach_cells(max_minutes: np.ndarray, cell_size_m: float, spec: TravelSpec) -> np.ndarray:
    """An upper bound on the straight-line distance (cells) reachable in max_minutes by the
    fastest mode; candidates are then filtered by their exact minutes."""
    km_per_minute = 1.0 / min(
        spec.walk_minutes_per_km, spec.transit_minutes_per_km, spec.car_minutes_per_km
    )
    km = max_minutes * km_per_minute / spec.detour_factor
    return km * 1000.0 / cell_size_m + 1.0


@dataclass
class CandidateSets:
    """Per type t: family f's candidates are service[t][indptr[t][f]:indptr[t][f+1]]."""

    indptr: list[np.ndarray]  # int64 [F + 1]
    service: list[np.ndarray]  # int32, sorted by service id within a family
    minutes: list[np.ndarray]  # int32
    trip_cents: list[np.ndarray]  # int64
    nearest_service: np.ndarray  # int32 [F, T]: nearest of the type anywhere (-1 if none)
    nearest_minutes: np.ndarray  # int32 [F, T]


def build_candidates(
    families: FamilyTable,
    service_type: np.ndarray,
    service_x: np.ndarray,
    service_y: np.ndarray,
    transit_access_grid: np.ndarray,
    cell_size_m: float,
    spec: TravelSpec,
) -> CandidateSets:
    n = families.size
    fam_xy = np.column_stack([families.x, families.y]).astype(float)
    transit = transit_access_grid[families.x, families.y]
    indptrs, services, minutes_out, costs = [], [], [], []
    nearest_service = np.full((n, N_TYPES), -1, dtype=np.int32)
    nearest_minutes = np.full((n, N_TYPES), UNREACHABLE_MINUTES, dtype=np.int32)
    reach = max_reach_cells(families.max_travel_minutes.astype(float), cell_size_m, spec)
    for t in range(N_TYPES):
        ids = np.flatnonzero(service_type == t).astype(np.int32)
        if ids.size == 0:
            indptrs.append(np.zeros(n + 1, dtype=np.int64))
            services.append(np.zeros(0, dtype=np.int32))
            minutes_out.append(np.zeros(0, dtype=np.int32))
            costs.append(np.zeros(0, dtype=np.int64))
            continue
        svc_xy = np.column_stack([service_x[ids], service_y[ids]]).astype(float)
        tree = cKDTree(svc_xy)
        lists = tree.query_ball_point(fam_xy, r=reach)
        counts = np.fromiter((len(x) for x in lists), dtype=np.int64, count=n)
        owner = np.repeat(np.arange(n), counts)
        local = np.fromiter((i for x in lists for i in x), dtype=np.int64, count=int(counts.sum()))
        sid = ids[local]
        d = np.hypot(svc_xy[local, 0] - fam_xy[owner, 0], svc_xy[local, 1] - fam_xy[owner, 1])
        mins = travel_minutes(d, families.mode[owner], transit[owner], cell_size_m, spec)
        keep = mins <= families.max_travel_minutes[owner]
        owner, sid, mins = owner[keep], sid[keep], mins[keep]
        order = np.lexsort((sid, owner))
        owner, sid, mins = owner[order], sid[order], mins[order]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.add.at(indptr, owner + 1, 1)
        indptr = np.cumsum(indptr)
        # nearest of the type anywhere, by (minutes, id): for the barrier log when no
        # candidate is within reach. With candidates, it is the first of them by that order.
        has = indptr[1:] > indptr[:-1]
        if has.any():
            rows = np.flatnonzero(has)
            first = np.lexsort((sid, mins, owner))
            # first element per owner in (owner, minutes, id) order
            owner_first = np.zeros(n, dtype=np.int64)
            pos = np.searchsorted(owner[first], rows, side="left")
            owner_first[rows] = first[pos]
            nearest_service[rows, t] = sid[owner_first[rows]]
            nearest_minutes[rows, t] = mins[owner_first[rows]]
        lacking = np.flatnonzero(~has)
        if lacking.size:
            d0, _ = tree.query(fam_xy[lacking])
            slack = max_reach_cells(np.ones(1), cell_size_m, spec)[0]
            near_lists = tree.query_ball_point(fam_xy[lacking], r=d0 + slack)
            for row, near in zip(lacking, near_lists, strict=True):
                near = np.asarray(near, dtype=np.int64)
                dd = np.hypot(svc_xy[near, 0] - fam_xy[row, 0], svc_xy[near, 1] - fam_xy[row, 1])
                mm = travel_minutes(
                    dd,
                    np.full(near.size, families.mode[row]),
                    np.full(near.size, transit[row]),
                    cell_size_m,
                    spec,
                )
                pick = np.lexsort((ids[near], mm))[0]
                nearest_service[row, t] = ids[near][pick]
                nearest_minutes[row, t] = mm[pick]
        indptrs.append(indptr)
        services.append(sid.astype(np.int32))
        minutes_out.append(mins.astype(np.int32))
        costs.append(trip_cost_cents(mins, families.mode[owner], spec))
    return CandidateSets(indptrs, services, minutes_out, costs, nearest_service, nearest_minutes)
