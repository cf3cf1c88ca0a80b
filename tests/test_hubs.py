"""Verification of hubs "under one roof" as co-location and one gate (docs/ODD.md §2.4, §7.4):
existing sites host the other services, no site moves, a family registers once for all
the hub offers, trust in one of its services carries over to the others, and families
who meet there form ties."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import build, small_scenario, week_to_meetings
from pairs import service_barriers

from sim.core.codes import (
    ADMIN_HELP,
    CHILDCARE,
    ENROLLED,
    HEALTH,
    N_TYPES,
    NO_HUB,
    NO_SERVICE,
    NONE,
    PARENTING,
    SERVICE_TYPES,
)
from sim.engine.week import Engine

pytestmark = pytest.mark.verification

PER_NEIGHBOURHOOD = {"count": "per_neighbourhood"}


def _hub_engine(seed: int = 21, population: dict | None = None, **hubs: object) -> Engine:
    scenario = small_scenario(
        hubs={**PER_NEIGHBOURHOOD, **hubs},
        run={"burn_in_weeks": 10, "weeks": 5},
        population=population or {},
    )
    return Engine(build(scenario, seed=seed))


def test_hubs_connect_existing_sites_and_move_none():
    """One hub per neighbourhood at an existing consultation site or daycare centre (or a
    community centre where the neighbourhood has neither); every site of the city without
    hubs is still there, with the same type; a missing type's presence is moved from its
    nearest sites (each keeps at least half), so each type's public units are unchanged."""
    plain = build(small_scenario(), seed=21).services
    hubbed = build(small_scenario(hubs=PER_NEIGHBOURHOOD), seed=21)
    world = hubbed.services
    before, after = plain.services, world.services
    city = hubbed.city
    populated = np.unique(city.neighbourhood[city.families > 0])
    assert len(world.hub_cells) == len(populated)
    assert sorted(city.neighbourhood[world.hub_cells[:, 0], world.hub_cells[:, 1]]) == sorted(
        populated.tolist()
    )
    anchors = before.is_public & np.isin(before.type, [CHILDCARE, HEALTH])
    anchor_cells = set(zip(before.x[anchors].tolist(), before.y[anchors].tolist(), strict=True))
    hosted = sum((int(x), int(y)) in anchor_cells for x, y in world.hub_cells)
    assert hosted >= len(world.hub_cells) - 2  # a neighbourhood may lack both kinds of site
    n = before.size
    for column in ("type", "x", "y", "is_public"):
        assert np.array_equal(getattr(after, column)[:n], getattr(before, column)), column
    assert (after.capacity[:n] * 2 >= before.capacity).all()
    for t in range(N_TYPES):
        public = [s.capacity[s.is_public & (s.type == t)].sum() for s in (before, after)]
        assert public[0] == public[1], SERVICE_TYPES[t]
    # each hub connects the health, parenting and help-desk services (a presence where the
    # site has none, unless every site of the type has given all it may), and the daycare
    # centre where it is one
    for h in range(len(world.hub_cells)):
        types = set(after.type[after.hub == h].tolist())
        for t in (HEALTH, PARENTING, ADMIN_HELP):
            donors = before.is_public & (before.type == t) & (after.hub[:n] == NO_HUB)
            exhausted = (
                after.capacity[:n][donors] == before.capacity[donors] - before.capacity[donors] // 2
            ).all()
            assert t in types or exhausted, (h, SERVICE_TYPES[t])
        x, y = world.hub_cells[h]
        at_site = (before.x == x) & (before.y == y) & before.is_public & (before.type == CHILDCARE)
        assert (CHILDCARE in types) == bool(at_site.any())
    assert (after.hub[:n][~before.is_public] == NO_HUB).all()  # market childcare stays out


def test_added_presences_cost_their_units_in_the_outlay():
    """presence_from = "added": the sites keep all their units, the presences (the rows after
    the sites) are new units paid at the type's unit cost; the hubs' overhead (and the
    interpreters of the presences) are in the outlay either way."""
    from sim.world.services import outlay_cents

    plain = small_scenario()
    added = small_scenario(hubs={**PER_NEIGHBOURHOOD, "presence_from": "added"})
    worlds = [build(s, seed=21).services for s in (plain, added)]
    before, after = (w.services for w in worlds)
    n = before.size
    assert np.array_equal(after.capacity[:n], before.capacity)
    presences = np.arange(n, after.size)
    assert (after.hub[presences] != NO_HUB).all()
    for s in presences:
        assert after.capacity[s] == added.hubs.presence_capacity[SERVICE_TYPES[after.type[s]]]
    extra = int((after.capacity[presences] * after.unit_cost_cents[presences]).sum())
    overhead = len(worlds[1].hub_cells) * round(added.hubs.overhead_eur_week * 100)
    # a presence of a service that works with interpreters is one more site to fund them at
    interpreting = int(after.interpreters[presences].sum()) * round(
        added.information.interpreter_eur_week_per_site * 100
    )
    assert extra > 0
    assert outlay_cents(added, worlds[1]) - outlay_cents(plain, worlds[0]) == (
        extra + overhead + interpreting
    )


def _services_of(engine: Engine, hub: int, t: int) -> int:
    return int(np.flatnonzero((engine.svc.hub == hub) & (engine.svc.type == t))[0])


def _register(engine: Engine, row: int, service: int) -> None:
    """The family registers at `service` this week (phase B, step 5a)."""
    plan = engine.decide()
    t = int(engine.svc.type[service])
    plan.chosen[:] = NO_SERVICE
    plan.chosen_registered[:] = NO_SERVICE
    plan.dropout[:] = False
    plan.give_up[:] = False
    engine.families.status[row, t] = NONE
    plan.chosen[row, t] = service
    plan.chosen_registered[row, t, 0] = service
    engine.settle(plan)


def test_a_hub_registers_a_family_once_for_all_its_services():
    """Huis van het Kind 'one gate': a family that registers at one service of a hub has
    its file there, and the hub's other services (childcare too) charge it no paperwork;
    another hub's services still do."""
    engine = _hub_engine()
    f = engine.families
    row = int(np.flatnonzero(f.hub_file == NO_HUB)[0])
    f.paperwork[row] = 0.0
    f.admin_tolerance[row] = 0.0
    targets = np.array(
        [_services_of(engine, 0, ADMIN_HELP), _services_of(engine, 0, PARENTING)]
        + [_services_of(engine, 1, ADMIN_HELP), _services_of(engine, 1, PARENTING)]
    )
    rows = np.full(len(targets), row)
    types = engine.svc.type[targets].astype(np.int64)
    zeros = np.zeros(len(targets), dtype=np.int64)
    assert service_barriers(engine, rows, types, targets, zeros).blocked_by("admin").all()
    _register(engine, row, _services_of(engine, 0, HEALTH))
    assert f.hub_file[row] == 0
    blocked = service_barriers(engine, rows, types, targets, zeros).blocked_by("admin")
    assert blocked.tolist() == [False, False, True, True]
    # a second registration elsewhere keeps the first file
    _register(engine, row, _services_of(engine, 1, PARENTING))
    assert f.hub_file[row] == 0


@pytest.mark.parametrize("carryover", [1.0, 0.0])
def test_trust_carries_over_inside_a_hub(carryover: float):
    """A family who distrusts institutions is blocked by trust at a hub's meeting place;
    once it uses the hub's consultation, the trust it placed there carries over (with
    `trust_carryover` = 1 it needs none of the meeting place's own requirement), while the
    meeting place of another hub still blocks it. Without carry-over nothing changes."""
    engine = _hub_engine(trust_carryover=carryover)
    f = engine.families
    row = int(np.flatnonzero(f.hub_file == NO_HUB)[0])
    f.trust[row] = 0.0
    f.trust_tolerance[row] = 0.0
    targets = np.array([_services_of(engine, 0, PARENTING), _services_of(engine, 1, PARENTING)])
    assert (engine.svc.trust_required[targets] > 0).all()
    rows = np.full(2, row)
    types = np.full(2, PARENTING)
    zeros = np.zeros(2, dtype=np.int64)
    assert service_barriers(engine, rows, types, targets, zeros).blocked_by("trust").all()
    f.status[row, HEALTH] = ENROLLED
    f.service[row, HEALTH] = _services_of(engine, 0, HEALTH)
    blocked = service_barriers(engine, rows, types, targets, zeros).blocked_by("trust")
    assert blocked.tolist() == ([False, True] if carryover == 1.0 else [True, True])


def test_families_who_meet_at_a_hub_form_ties():
    """Every tie formed in the week's meetings joins two families who use the same childcare
    or parenting site, or services of the same hub; some join families who use different
    services of one hub (a consultation and a meeting place under one roof)."""
    engine = _hub_engine(seed=22, population={"attendance_tie_prob_week": 1.0})
    f, svc = engine.families, engine.svc
    across = 0
    for _ in range(8):
        plan, before, after = week_to_meetings(engine)
        for a, b in after - before:
            places = []
            for r in (a, b):
                used = f.service[r][f.status[r] == ENROLLED]
                hubs = {int(h) + svc.size for h in svc.hub[used] if h != NO_HUB}
                sites = {int(s) for s in used if svc.type[s] in (CHILDCARE, PARENTING)}
                places.append((hubs | sites, {int(svc.type[s]) for s in used}))
            assert places[0][0] & places[1][0], (a, b)
            shared_hubs = {p for p in places[0][0] & places[1][0] if p >= svc.size}
            if shared_hubs and not (places[0][1] & places[1][1]):
                across += 1
        engine.measure(plan)
        engine.life_course()
    assert across > 0
