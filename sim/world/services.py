"""Services and hubs: where they are, what they offer, on what terms.

Services are few (hundreds), so their attributes live in one small table (arrays indexed by
service id, which is also the tie-break order). Every configuration also has the same
unsubsidised market childcare at full price (DESIGN §2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.core import rng
from sim.core.codes import (
    DAYS_PER_WEEK,
    FEE_KIND,
    INCOME_SCALE,
    NO_HUB,
    SERVICE_TYPES,
)
from sim.core.errors import ScenarioError
from sim.rules.fees import FeeSchedule
from sim.scenario.schema import FeeSpec, MarketSpec, Scenario, cents
from sim.world.city import City
from sim.world.costs import outlay_parts_cents
from sim.world.planning import apportion, planned_share
from sim.world.population import initial_families


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

    def frame(self) -> pd.DataFrame:
        """One row per site, as the maps draw it: site_id, type, x, y, public, hub, places."""
        return pd.DataFrame(
            {
                "site_id": np.arange(self.size),
                "type": np.array(SERVICE_TYPES)[self.type],
                "x": self.x,
                "y": self.y,
                "public": self.is_public,
                "hub": self.hub,
                "places": self.capacity,
            }
        )


@dataclass
class ServiceWorld:
    services: ServiceTable
    schedules: list[FeeSchedule]
    hub_cells: np.ndarray  # int32 [H, 2]
    hub_coordinator: bool


def market_fee(market: MarketSpec, fee_eur_week: float) -> float:
    """What a market user pays for a week of five days: the provider's fee less the public
    allowance per day (C11), never below zero."""
    return max(0.0, round(fee_eur_week - 5 * market.allowance_eur_day, 2))


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
    """Place public services per type and market childcare, then connect hubs at sites. With a
    budget target, public childcare places are solved so the ex-ante outlay matches it.
    file_target: the target as the scenario file has it, when --families scaled it (named
    in the error if the budget cannot be balanced)."""
    return _line_from_places(scenario, city, _balanced_services(scenario, city, file_target))


def _balanced_services(scenario: Scenario, city: City, file_target: float | None) -> ServiceWorld:
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


def _line_from_places(scenario: Scenario, city: City, world: ServiceWorld) -> ServiceWorld:
    """Reserved places sized to the eligible demand (`means_test_line_from = "places"`): the
    means-tested childcare's line is set where the expected demand of the families below it
    fills the public places. Expected demand comes from a planning draw of the families
    with the city seed (as the service map, it is the same in every replication): the
    children in their care window whose parents want formal care, each for its care days,
    taken from the lowest equivalised income up until their days reach the places' days.
    The line admits the marginal family (and any of the same income); if the places exceed
    all the demand, every family is eligible."""
    spec = scenario.provision["childcare"]
    if spec.means_test_line_from != "places":
        return world
    s = world.services
    reserved = s.is_public & (s.type == SERVICE_TYPES.index("childcare")) & s.means_tested
    days = int(s.capacity[reserved].sum()) * DAYS_PER_WEEK
    income_q, care_days = expected_childcare_demand(scenario, city)
    order = np.argsort(income_q, kind="stable")
    income = income_q[order]
    demand = np.cumsum(care_days[order].astype(np.int64))
    k = int(np.searchsorted(demand, days, side="left"))
    if k >= len(income):
        line = np.iinfo(np.int64).max
    else:
        line = int(income[k]) + 1
    s.means_line_q[reserved] = line
    return world


def expected_childcare_demand(scenario: Scenario, city: City) -> tuple[np.ndarray, np.ndarray]:
    """The planning draw's childcare demand (families drawn with the city seed, as the
    service map is planned): the equivalised income and care days of each child in its care
    window (from its planned start age until it leaves childcare) whose parents want formal
    care."""
    fam = initial_families(scenario, scenario.city.seed, city, with_ties=False)
    age = fam.youngest_age_weeks
    window = (
        fam.wants_formal_care
        & (age >= fam.care_start_age_weeks)
        & (age < scenario.population.childcare_exit_age_weeks)
    )
    return fam.income_q[window], fam.care_days[window]


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
        sched = _schedule_index(
            schedules, FeeSpec(kind="flat", flat_eur_week=market_fee(market, market.fee_eur_week))
        )
        parts.append(
            _place_sites(scenario, city, 0, total, market.site_capacity, 0.5, "market_childcare")
            | _policy(market, False, sched)
        )
    blocks = [_expand(part, city, seed, i) for i, part in enumerate(parts)]
    columns = {k: np.concatenate([blk[k] for blk in blocks]) for k in blocks[0]}
    columns["hub"] = np.full(len(columns["type"]), NO_HUB, dtype=np.int32)
    hub_cells = np.zeros((0, 2), dtype=np.int32)
    if scenario.hubs.enabled and len(columns["type"]):
        columns, hub_cells = _co_locate_hubs(scenario, city, columns)
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
                    fee: _schedule_index(
                        schedules,
                        FeeSpec(
                            kind="flat",
                            flat_eur_week=market_fee(scenario.market, fee) if is_market else fee,
                        ),
                    )
                    for fee in fees
                }
                sched_col = np.array(
                    [scheds[float(v)] for v in sub["fee_eur_week"]], dtype=np.int16
                )
            else:
                fee_spec = (
                    FeeSpec(kind="flat", flat_eur_week=market_fee(spec, spec.fee_eur_week))
                    if is_market
                    else spec.fee
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


def _co_locate_hubs(scenario: Scenario, city: City, columns: dict[str, np.ndarray]):
    """'Under one roof' as co-location (Huis van het Kind: 're-use and connect already
    available services and resources, instead of inventing new structures', IAS community
    network; NRW Family Centres built on daycare centres, EU WG ECEC §4.4): no site moves.
    At each hub site every public service of a hub type already there joins the hub; each
    hub type the site lacks adds a presence of `presence_capacity` units, a session held
    there by the type's nearest public site (its languages and hours). With presence_from =
    "moved" the units come from the type's nearest public sites, each giving at most half of
    its own over all hubs (the sites stay open); with "added" they are new and paid at the unit cost."""
    hubs = scenario.hubs
    hub_cells = _hub_sites(scenario, city, columns)
    hub_types = [SERVICE_TYPES.index(t) for t in hubs.types]
    public = columns["is_public"]
    kind = columns["type"]
    xy = np.column_stack([columns["x"], columns["y"]]).astype(np.int64)
    hub = columns["hub"]
    capacity = columns["capacity"].copy()
    for h, (hx, hy) in enumerate(hub_cells):
        here = public & np.isin(kind, hub_types) & (xy[:, 0] == hx) & (xy[:, 1] == hy)
        hub[here] = h
    given = np.zeros(len(capacity), dtype=np.int64)
    added: list[dict[str, np.ndarray]] = []
    for h, (hx, hy) in enumerate(hub_cells):
        for t in hub_types:
            units = int(hubs.presence_capacity.get(SERVICE_TYPES[t], 0))
            if units <= 0 or ((hub == h) & (kind == t)).any():
                continue
            donors = np.flatnonzero(public & (kind == t) & (hub == NO_HUB))
            if donors.size == 0:
                continue
            d2 = (xy[donors, 0] - hx) ** 2 + (xy[donors, 1] - hy) ** 2
            donors = donors[np.lexsort((donors, d2))]  # nearest first, then by id
            if hubs.presence_from == "moved":
                taken = 0
                for d in donors:
                    # over all hubs, a site gives at most half of its own units
                    give = min(int(columns["capacity"][d]) // 2 - given[d], units - taken)
                    if give <= 0:
                        continue
                    given[d] += give
                    capacity[d] -= give
                    taken += give
                    if taken == units:
                        break
                units = taken
            if units <= 0:
                continue
            first = int(donors[0])
            row = {k: v[first : first + 1].copy() for k, v in columns.items()}
            row["x"] = np.array([hx], dtype=np.int32)
            row["y"] = np.array([hy], dtype=np.int32)
            row["capacity"] = np.array([units], dtype=np.int64)
            row["hub"] = np.array([h], dtype=np.int32)
            added.append(row)
    out = dict(columns)
    out["capacity"] = capacity
    out["hub"] = hub
    if added:
        out = {k: np.concatenate([out[k]] + [r[k] for r in added]) for k in out}
    return out, hub_cells


def _hub_sites(scenario: Scenario, city: City, columns: dict[str, np.ndarray]) -> np.ndarray:
    """The hub cells [H, 2]: the scenario's own (`hubs.sites`), else among the cells of
    existing public sites of `anchor_types`, the best-placed — the one with the least
    family-weighted straight-line distance to the families it serves: per neighbourhood
    (`count = "per_neighbourhood"`; a neighbourhood without such a site gets a community
    centre at its best-placed populated cell), or `count` of them chosen greedily over the
    whole city (each adds the site that most lowers the families' distance to their nearest
    hub; ties to the lower cell)."""
    hubs = scenario.hubs
    if hubs.sites:
        cells = np.array(hubs.sites, dtype=np.int64)
        outside = (cells[:, 0] >= city.width) | (cells[:, 1] >= city.height)
        if outside.any():
            bad = cells[np.flatnonzero(outside)[0]].tolist()
            raise ScenarioError(
                "<scenario>",
                "hubs.sites",
                f"value {bad}: outside the {city.width} x {city.height} grid; allowed: "
                f"cells [x, y] with 0 <= x < {city.width}, 0 <= y < {city.height}",
            )
        if len({(int(x), int(y)) for x, y in cells}) < len(cells):
            raise ScenarioError(
                "<scenario>", "hubs.sites", "a cell is named twice; allowed: distinct cells"
            )
        return cells.astype(np.int32)
    anchor = columns["is_public"] & np.isin(
        columns["type"], [SERVICE_TYPES.index(t) for t in hubs.anchor_types]
    )
    sites = np.unique(np.column_stack([columns["x"][anchor], columns["y"][anchor]]), axis=0)
    px, py = np.nonzero(city.families > 0)
    weight = city.families[px, py].astype(float)
    if hubs.count == "per_neighbourhood":
        chosen = []
        cell_nb = city.neighbourhood[px, py]
        site_nb = city.neighbourhood[sites[:, 0], sites[:, 1]] if len(sites) else sites[:, 0]
        for n in range(int(city.neighbourhood.max()) + 1):
            members = cell_nb == n
            if not members.any():
                continue
            options = sites[site_nb == n]
            if len(options) == 0:  # a community centre
                options = np.column_stack([px[members], py[members]])
            cost = _weighted_distance(px[members], py[members], weight[members], options)
            chosen.append(options[int(np.argmin(cost))])
        return np.array(chosen, dtype=np.int32).reshape(-1, 2)
    count = int(hubs.count)
    if count > len(sites):
        raise ScenarioError(
            "<scenario>",
            "hubs.count",
            f"value {count}: the city has {len(sites)} cells with a public site of "
            f"{', '.join(hubs.anchor_types)}; allowed: 0-{len(sites)}, or name the hub cells "
            "in hubs.sites",
        )
    dist = np.sqrt(
        (px[:, None] - sites[None, :, 0]) ** 2.0 + (py[:, None] - sites[None, :, 1]) ** 2.0
    )
    nearest = np.full(len(px), np.inf)
    picked: list[int] = []
    for _ in range(count):
        cost = (weight[:, None] * np.minimum(nearest[:, None], dist)).sum(axis=0)
        cost[picked] = np.inf
        best = int(np.argmin(cost))
        picked.append(best)
        nearest = np.minimum(nearest, dist[:, best])
    return sites[picked].astype(np.int32)


def _weighted_distance(px, py, weight, options: np.ndarray) -> np.ndarray:
    """Family-weighted sum of straight-line distances from the cells to each option."""
    out = np.empty(len(options))
    for i in range(0, len(options), 256):
        block = options[i : i + 256]
        d = np.sqrt(
            (px[:, None] - block[None, :, 0]) ** 2.0 + (py[:, None] - block[None, :, 1]) ** 2.0
        )
        out[i : i + 256] = weight @ d
    return out
