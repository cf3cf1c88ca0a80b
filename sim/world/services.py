"""Services and hubs: where they are, what they offer, on what terms.

Services are few (hundreds), so their attributes live in one small table (arrays indexed by
service id, which is also the tie-break order). Every configuration also has the same
unsubsidised market childcare at full price (DESIGN §2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from sim.core import rng
from sim.core.codes import (
    FEE_KIND,
    INCOME_SCALE,
    NO_HUB,
    SERVICE_TYPES,
)
from sim.core.errors import ScenarioError
from sim.rules.fees import FeeSchedule
from sim.scenario.schema import FeeSpec, Scenario, cents
from sim.world.city import City
from sim.world.costs import outlay_parts_cents
from sim.world.planning import apportion, planned_share


def fee_schedule(spec: FeeSpec) -> FeeSchedule:
    return FeeSchedule(
        kind=FEE_KIND[spec.kind],
        flat_cents=cents(spec.flat_eur_week),
        band_limits_q=np.array(
            [cents(b.income_below_eur_year) * INCOME_SCALE for b in spec.bands], dtype=np.int64
        ),
        band_fees_cents=np.array([cents(b.fee_eur_week) for b in spec.bands], dtype=np.int64),
        means_line_q=cents(spec.means_test_line_eur_year) * INCOME_SCALE,
    )


@dataclass
class ServiceTable:
    type: np.ndarray  # int8 index into SERVICE_TYPES
    x: np.ndarray  # int32
    y: np.ndarray  # int32
    capacity: np.ndarray  # int64 by rhythm: places, appointments or visits a week, cases
    is_public: np.ndarray  # bool: publicly funded (False: market childcare)
    schedule: np.ndarray  # int16 index into ServiceWorld.schedules
    means_tested: np.ndarray  # bool: eligibility checked by a means test on application
    means_line_q: np.ndarray  # int64
    speaks: np.ndarray  # bool [S, L]
    interpreters: np.ndarray  # bool
    stigma_label: np.ndarray  # float64
    trust_required: np.ndarray  # float64: the trust approaching the service takes, 0-1
    admin_complexity: np.ndarray  # float64
    extended_hours: np.ndarray  # bool
    quality: np.ndarray  # float64
    hours_weight: np.ndarray  # float64: how much of an atypical schedule's mismatch applies
    waitlist: np.ndarray  # bool
    trips_per_week: np.ndarray  # int32: in a week of use, or per visit (visit_interval_weeks)
    visit_interval_weeks: np.ndarray  # int64: weeks between a user's visits (1: daily, episodes)
    unit_cost_cents: np.ndarray  # int64 per unit of capacity per week
    means_test_admin_cents: np.ndarray  # int64 per funded place per week (ex ante)
    hub: np.ndarray  # int32, NO_HUB if stand-alone

    @property
    def size(self) -> int:
        return len(self.type)


@dataclass
class ServiceWorld:
    services: ServiceTable
    schedules: list[FeeSchedule]
    hub_cells: np.ndarray  # int32 [H, 2]
    hub_coordinator: bool


def _schedule_index(schedules: list[FeeSchedule], spec: FeeSpec) -> int:
    schedules.append(fee_schedule(spec))
    return len(schedules) - 1


def _target_text(scenario: Scenario, target: float, file_target: float | None) -> str:
    """The budget target as the user wrote it: a target scaled with --families is quoted
    with the file's value, so the number can be found in the file."""
    families = scenario.city.families
    if file_target is not None and file_target != target:
        return (
            f"value {file_target:g} in the file, scaled to {target:,.2f} EUR a week for "
            f"{families:,} families by --families"
        )
    return f"value {target:g} (EUR a week for this city's {families:,} families)"


def build_services(
    scenario: Scenario, city: City, file_target: float | None = None
) -> ServiceWorld:
    """Place public services per type and market childcare, then regroup into hubs. With a
    budget target, public childcare places are solved so the ex-ante outlay matches it.
    file_target: the target as the scenario file has it, when --families scaled it (named
    in the error if the budget cannot be balanced)."""
    target = scenario.budget.target_outlay_eur_week
    if target is None or city.services_table is not None:
        return _build_services(scenario, city, None)
    target_cents = int(round(target * 100))
    spec = scenario.provision["childcare"]
    per_place = cents(spec.unit_cost_eur_week) + (
        cents(spec.means_test_admin_eur_place_week) if spec.eligibility == "means_tested" else 0
    )
    if per_place <= 0:
        raise ScenarioError(
            "<scenario>",
            "budget.target_outlay_eur_week",
            "childcare places cost nothing, so the budget cannot be balanced with them",
        )
    places = 0
    for _ in range(50):
        world = _build_services(scenario, city, places)
        outlay = outlay_cents(scenario, world)
        gap = target_cents - outlay
        if 0 <= gap < per_place:
            return world
        step = gap // per_place if gap >= 0 else -((-gap + per_place - 1) // per_place)
        if places + step < 0:
            raise ScenarioError(
                "<scenario>",
                "budget.target_outlay_eur_week",
                f"{_target_text(scenario, target, file_target)}: the configuration costs "
                f"{outlay / 100:,.0f} EUR a week without any public childcare place",
            )
        places += int(step) if step else (1 if gap > 0 else -1)
    return world


def outlay_cents(scenario: Scenario, world: ServiceWorld) -> int:
    """Ex-ante weekly outlay of a service world, integer cents (sim/world/costs.py)."""
    s = world.services
    parts = outlay_parts_cents(
        scenario,
        s.is_public,
        s.capacity,
        s.unit_cost_cents,
        s.means_test_admin_cents,
        s.interpreters,
        len(world.hub_cells),
    )
    return sum(parts.values())


def _build_services(scenario: Scenario, city: City, childcare_places: int | None) -> ServiceWorld:
    seed = scenario.city.seed
    schedules: list[FeeSchedule] = []
    parts: list[dict[str, np.ndarray]] = []
    if city.services_table is not None:
        parts.extend(_services_from_table(scenario, city, schedules))
    else:
        for t, type_name in enumerate(SERVICE_TYPES):
            spec = scenario.provision[type_name]
            share = planned_share(type_name, scenario)
            total = int(round(spec.places_per_100 * share * city.families.sum() / 100.0))
            if type_name == "childcare" and childcare_places is not None:
                total = childcare_places
            sched = _schedule_index(schedules, spec.fee)
            parts.append(
                _place_sites(
                    scenario,
                    city,
                    t,
                    total,
                    spec.site_capacity,
                    spec.deprived_capacity_ratio,
                    f"public_{type_name}",
                )
                | _policy(spec, True, sched)
            )
        market = scenario.market
        share = planned_share("childcare", scenario)
        total = int(round(market.places_per_100 * share * city.families.sum() / 100.0))
        # market providers settle where families can pay: capacity leans away from deprivation
        sched = _schedule_index(schedules, FeeSpec(kind="flat", flat_eur_week=market.fee_eur_week))
        parts.append(
            _place_sites(scenario, city, 0, total, market.site_capacity, 0.5, "market_childcare")
            | _policy(market, False, sched)
        )
    blocks = [_expand(part, city, seed, i) for i, part in enumerate(parts)]
    columns = {k: np.concatenate([blk[k] for blk in blocks]) for k in blocks[0]}
    columns["hub"] = np.full(len(columns["type"]), NO_HUB, dtype=np.int32)
    hub_cells = np.zeros((0, 2), dtype=np.int32)
    if scenario.hubs.count > 0 and len(columns["type"]):
        columns, hub_cells = _regroup_into_hubs(scenario, city, columns)
    table = ServiceTable(**columns)
    return ServiceWorld(
        services=table,
        schedules=schedules,
        hub_cells=hub_cells,
        hub_coordinator=scenario.hubs.coordinator,
    )


def _place_sites(scenario, city, type_index, total, site_capacity, deprived_ratio, stream):
    """Sites of one kind: capacity apportioned to neighbourhoods by the planned population,
    scaled from 1 (least deprived) to `deprived_ratio` (most deprived) — the sources report
    fewer places per child in deprived neighbourhoods (EVIDENCE C1, C3) — then cut into sites
    placed at family-weighted cells of the neighbourhood."""
    seed = scenario.city.seed
    if total <= 0:
        return _empty_sites()
    k = int(city.neighbourhood.max()) + 1
    nb = city.neighbourhood.ravel()
    fam = city.families.ravel().astype(float)
    demand = np.bincount(nb, weights=fam, minlength=k)
    dep = np.bincount(nb, weights=fam * city.deprivation.ravel(), minlength=k) / np.maximum(
        demand, 1e-12
    )
    lo, hi = dep[demand > 0].min(initial=0.0), dep[demand > 0].max(initial=1.0)
    rel = np.where(hi > lo, (dep - lo) / max(hi - lo, 1e-12), 0.0)
    weight = demand * (1.0 + (deprived_ratio - 1.0) * rel)
    if weight.sum() <= 0:
        weight = np.ones(k)

    per_nbhd = apportion(weight, total)
    xs, ys, caps = [], [], []
    cells_fam = city.families
    # each neighbourhood's cells in row-major order (as np.nonzero gives them), found once
    by_nbhd = np.argsort(nb, kind="stable")
    bounds = np.searchsorted(nb[by_nbhd], np.arange(k + 1))
    inhabited = fam[by_nbhd] > 0
    for nbhd in range(k):
        remaining = int(per_nbhd[nbhd])
        if remaining <= 0:
            continue
        cells = by_nbhd[bounds[nbhd] : bounds[nbhd + 1]]
        lived = cells[inhabited[bounds[nbhd] : bounds[nbhd + 1]]]
        if lived.size:
            cells = lived
        cx, cy = np.divmod(cells, city.height)
        w = cells_fam[cx, cy].astype(float) + 1e-9
        cum = np.cumsum(w) / w.sum()
        site = 0
        while remaining > 0:
            cap = min(site_capacity, remaining)
            u = rng.uniform(seed, f"site_{stream}", site, nbhd)
            j = int(np.searchsorted(cum, u, side="right"))
            j = min(j, cx.size - 1)
            xs.append(cx[j])
            ys.append(cy[j])
            caps.append(cap)
            remaining -= cap
            site += 1
    n = len(xs)
    return {
        "type": np.full(n, type_index, dtype=np.int8),
        "x": np.array(xs, dtype=np.int32),
        "y": np.array(ys, dtype=np.int32),
        "capacity": np.array(caps, dtype=np.int64),
    }


def _empty_sites():
    return {
        "type": np.zeros(0, dtype=np.int8),
        "x": np.zeros(0, dtype=np.int32),
        "y": np.zeros(0, dtype=np.int32),
        "capacity": np.zeros(0, dtype=np.int64),
    }


def _policy(spec: object, public: bool, schedule: int) -> dict[str, object]:
    return {"_spec": spec, "_public": public, "_schedule": schedule}


def _services_from_table(scenario: Scenario, city: City, schedules: list[FeeSchedule]):
    table = city.services_table
    assert table is not None
    parts = []
    for t, type_name in enumerate(SERVICE_TYPES):
        rows = table[table["type"] == type_name]
        market_col = (
            rows["market"].astype(bool) if "market" in rows else pd.Series(False, index=rows.index)
        )
        for is_market in (False, True):
            sub = rows[market_col == is_market]
            if is_market and type_name != "childcare" and len(sub):
                raise ScenarioError(
                    str(scenario.city.services_file),
                    "city.services_file",
                    "market = true is allowed only for childcare",
                )
            spec = scenario.market if is_market else scenario.provision[type_name]
            if "fee_eur_week" in sub and len(sub):
                fees = sorted(set(sub["fee_eur_week"].astype(float)))
                scheds = {
                    fee: _schedule_index(schedules, FeeSpec(kind="flat", flat_eur_week=fee))
                    for fee in fees
                }
                sched_col = np.array(
                    [scheds[float(v)] for v in sub["fee_eur_week"]], dtype=np.int16
                )
            else:
                fee_spec = (
                    FeeSpec(kind="flat", flat_eur_week=spec.fee_eur_week) if is_market else spec.fee
                )
                sched_col = np.full(len(sub), _schedule_index(schedules, fee_spec), dtype=np.int16)
            part = {
                "type": np.full(len(sub), t, dtype=np.int8),
                "x": sub["x"].to_numpy(dtype=np.int32),
                "y": sub["y"].to_numpy(dtype=np.int32),
                "capacity": sub["capacity"].to_numpy(dtype=np.int64),
                "_spec": spec,
                "_public": not is_market,
                "_schedule": sched_col,
            }
            if "languages" in sub:
                part["_languages"] = [str(v).split(";") for v in sub["languages"]]
            parts.append(part)
    return parts


def _expand(part: dict[str, object], city: City, seed: int, block: int) -> dict[str, np.ndarray]:
    """Turn one block of sites plus its policy spec into per-service columns."""
    n = len(part["type"])
    spec = part["_spec"]
    public = bool(part["_public"])
    langs = city.languages
    speaks = np.zeros((n, len(langs)), dtype=bool)
    speaks[:, langs.index("local")] = True
    if "_languages" in part:
        for i, names in enumerate(part["_languages"]):
            for name in names:
                if name in langs:
                    speaks[i, langs.index(name)] = True
    elif public and spec.languages == "all":
        speaks[:] = True
    elif public and spec.languages == "local_plus_largest":
        local = langs.index("local")
        mix = city.language_share[:, part["x"], part["y"]].copy()  # [L, n]
        mix[local] = -1.0
        speaks[np.arange(n), np.argmax(mix, axis=0)] = True
    extended = rng.uniform(seed, "extended_hours", block, np.arange(n)) < spec.extended_hours_share
    schedule = np.broadcast_to(np.asarray(part["_schedule"], dtype=np.int16), (n,)).copy()
    return {
        "type": part["type"],
        "x": part["x"],
        "y": part["y"],
        "capacity": part["capacity"],
        "is_public": np.full(n, public),
        "schedule": schedule,
        "means_tested": np.full(n, public and spec.eligibility == "means_tested"),
        "means_line_q": np.full(
            n, cents(spec.means_test_line_eur_year) * INCOME_SCALE if public else 0, dtype=np.int64
        ),
        "speaks": speaks,
        "interpreters": np.full(n, public and spec.interpreters),
        "stigma_label": np.full(n, spec.stigma_label if public else 0.0),
        "trust_required": np.full(n, spec.trust_required),
        "admin_complexity": np.full(n, spec.admin_complexity),
        "extended_hours": extended,
        "quality": np.full(n, spec.quality),
        # market childcare is daily: the whole mismatch applies
        "hours_weight": np.full(n, spec.hours_mismatch_weight if public else 1.0),
        "waitlist": np.full(n, spec.waitlist if public else True),
        "trips_per_week": np.full(n, spec.trips_per_week, dtype=np.int32),
        # market childcare is daily
        "visit_interval_weeks": np.full(
            n, spec.visit_interval_weeks if public else 1, dtype=np.int64
        ),
        "unit_cost_cents": np.full(
            n, cents(spec.unit_cost_eur_week) if public else 0, dtype=np.int64
        ),
        "means_test_admin_cents": np.full(
            n,
            cents(spec.means_test_admin_eur_place_week)
            if public and spec.eligibility == "means_tested"
            else 0,
            dtype=np.int64,
        ),
    }


def _regroup_into_hubs(scenario, city, columns):
    """'Under one roof' (Huis van het Kind; NRW Familienzentren; IAS focus groups: 'same
    location as other services'): the public sites of the hub types move to the nearest of
    `count` hub cells, and sites of one type at one hub merge into one service with their
    summed capacity. Fewer sites means some families travel further: a hub is not a free
    win, and reports show the travel change."""
    hubs = scenario.hubs
    hub_cells = _hub_cells(city, hubs.count)
    hub_types = np.array([SERVICE_TYPES.index(t) for t in hubs.types], dtype=np.int8)
    moving = columns["is_public"] & np.isin(columns["type"], hub_types)
    _, nearest = cKDTree(hub_cells.astype(float)).query(
        np.column_stack([columns["x"], columns["y"]]).astype(float)
    )
    stay = np.flatnonzero(~moving)
    out = {k: v[stay] for k, v in columns.items()}
    merged_rows: list[dict[str, np.ndarray]] = []
    for hub in range(len(hub_cells)):
        for t in hub_types:
            members = np.flatnonzero(moving & (nearest == hub) & (columns["type"] == t))
            if members.size == 0:
                continue
            first = members[0]
            row = {k: v[first : first + 1].copy() for k, v in columns.items()}
            row["capacity"] = np.array([columns["capacity"][members].sum()], dtype=np.int64)
            row["speaks"] = columns["speaks"][members].any(axis=0, keepdims=True)
            row["extended_hours"] = np.array([columns["extended_hours"][members].any()])
            row["x"] = np.array([hub_cells[hub, 0]], dtype=np.int32)
            row["y"] = np.array([hub_cells[hub, 1]], dtype=np.int32)
            row["hub"] = np.array([hub], dtype=np.int32)
            merged_rows.append(row)
    if merged_rows:
        out = {k: np.concatenate([out[k]] + [r[k] for r in merged_rows]) for k in out}
    return out, hub_cells


def _hub_cells(city: City, count: int) -> np.ndarray:
    """Hub sites: a family-weighted k-means of populated cells (fixed iterations, started at
    the centres of the most populous neighbourhoods), snapped to populated cells."""
    cx, cy = np.nonzero(city.families > 0)
    pts = np.column_stack([cx, cy]).astype(float)
    weight = city.families[cx, cy].astype(float)
    nb = city.neighbourhood[cx, cy]
    k = int(city.neighbourhood.max()) + 1
    pop_nb = np.bincount(nb, weights=weight, minlength=k)
    order = np.lexsort((np.arange(k), -pop_nb))
    populated = [int(n) for n in order if pop_nb[n] > 0][:count]
    starts = [np.average(pts[nb == n], axis=0, weights=weight[nb == n]) for n in populated]
    while len(starts) < count:
        starts.append(pts[int(len(starts) * 7919) % len(pts)])
    centres = np.array(starts[:count])
    for _ in range(25):
        _, label = cKDTree(centres).query(pts)
        # each centre's members in cell order (what a boolean mask selects), found at once
        by_label = np.argsort(label, kind="stable")
        bounds = np.searchsorted(label[by_label], np.arange(count + 1))
        for c in range(count):
            members = by_label[bounds[c] : bounds[c + 1]]
            if members.size:
                centres[c] = np.average(pts[members], axis=0, weights=weight[members])
    _, snap = cKDTree(pts).query(centres)
    return pts[snap].astype(np.int32)
