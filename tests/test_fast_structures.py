"""Verification of the fast engine's data structures against brute force on small cities.

The candidate lists, the spatial ties and the bound that lets the engine skip hopeless
(family, type) pairs are built for speed; each is checked here against the plain
definition it implements, pair by pair.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_valid_ties, small_scenario, step_before_life_course, tie_slots
from hypothesis import given, settings
from hypothesis import strategies as st
from pairs import could_accept, evaluate, minutes_to, pair_inputs, service_barriers

from sim.core import rng
from sim.core.codes import ENROLLED, N_TYPES, NONE, WAITLISTED
from sim.engine.week import Engine
from sim.rules.information import tie_matrix, tie_user_counts
from sim.rules.ties import TIE_ALREADY, TIE_FORMED, TIE_OVER_LIMIT, add_ties, remove_ties_of
from sim.world.build import build_world
from sim.world.city import build_city
from sim.world.population import _spatial_ties, build_ties, initial_families, max_tie_degree
from sim.world.travel import build_candidates, tolerance_percent, travel_minutes

pytestmark = pytest.mark.verification


def brute_force_candidates(world):
    """Every (family, type): all services of the type by (minutes, id) within the family's
    maximum for the type (its own at the type's tolerance percentage, a trip's frequency),
    and the nearest of the type anywhere."""
    f = world.families
    s = world.services.services
    city = world.city
    percent = tolerance_percent(world.scenario)
    out = {}
    for row in range(f.size):
        d = np.hypot(
            s.x.astype(float) - float(f.x[row]),
            s.y.astype(float) - float(f.y[row]),
        )
        mins = travel_minutes(
            d,
            np.full(s.size, f.mode[row]),
            np.full(s.size, city.transit_access[f.x[row], f.y[row]]),
            city.cell_size_m,
            world.scenario.travel,
        )
        for t in range(N_TYPES):
            ids = np.flatnonzero(s.type == t)
            ranked = sorted(zip(mins[ids].tolist(), ids.tolist(), strict=True))
            most = min(int(f.max_travel_minutes[row]) * int(percent[t]) // 100, 32_000)
            within = [(m, i) for m, i in ranked if m <= most]
            out[row, t] = (within, ranked[0] if ranked else (None, -1))
    return out


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31), families=st.integers(150, 600))
def test_candidate_lists_are_every_service_within_reach_by_minutes_then_id(seed, families):
    world = build_world(small_scenario(city={"families": families, "seed": seed % 1000}), seed)
    cand = world.candidates
    for (row, t), (within, nearest) in brute_force_candidates(world).items():
        lo, hi = cand.indptr[t][row], cand.indptr[t][row + 1]
        got = list(
            zip(cand.minutes[t][lo:hi].tolist(), cand.service[t][lo:hi].tolist(), strict=True)
        )
        assert got == within, (row, t)
        assert cand.nearest_service[row, t] == nearest[1], (row, t)
        if nearest[0] is not None:
            assert cand.nearest_minutes[row, t] == nearest[0], (row, t)


def test_candidate_lists_do_not_depend_on_the_build_block_size(monkeypatch):
    import sim.world.travel as travel

    world = build_world(small_scenario(city={"families": 800, "seed": 5}), 11)
    svc = world.services.services

    def build():
        return build_candidates(
            world.families,
            svc.type,
            svc.x,
            svc.y,
            world.city.transit_access,
            world.city.cell_size_m,
            world.scenario.travel,
            tolerance_percent(world.scenario),
        )

    big = build()
    monkeypatch.setattr(travel, "_BLOCK_FAMILIES", 7)
    monkeypatch.setattr(travel, "_BLOCK_PAIRS", 37)
    monkeypatch.setattr(travel, "_REACH_CLASS", 1.01)
    small = build()
    for t in range(N_TYPES):
        assert np.array_equal(big.indptr[t], small.indptr[t])
        assert np.array_equal(big.service[t], small.service[t])
        assert np.array_equal(big.minutes[t], small.minutes[t])


def test_the_world_does_not_depend_on_the_build_threads(monkeypatch):
    """One build thread (FAMSIM_BUILD_THREADS=1, as in the sweep throughput benchmark) and the
    default two give the same ties and candidate lists."""
    import sim.world.population as population
    import sim.world.travel as travel

    monkeypatch.setattr(travel, "_BLOCK_FAMILIES", 97)  # several blocks per thread pool
    monkeypatch.setattr(population, "_TIE_BLOCK", 101)
    scenario = small_scenario(city={"families": 900, "seed": 8})
    monkeypatch.delenv(population.BUILD_THREADS_VARIABLE, raising=False)
    assert population.build_threads() == 2
    two = build_world(scenario, 4)
    monkeypatch.setenv(population.BUILD_THREADS_VARIABLE, "1")
    assert population.build_threads() == 1
    one = build_world(scenario, 4)
    assert np.array_equal(two.families.ties, one.families.ties)
    assert np.array_equal(two.families.tie_count, one.families.tie_count)
    for t in range(N_TYPES):
        assert np.array_equal(two.candidates.service[t], one.candidates.service[t])
        assert np.array_equal(two.candidates.minutes[t], one.candidates.minutes[t])


@pytest.mark.parametrize("seed", [1, 7])
def test_spatial_ties_pick_the_drawn_neighbour_of_the_canonical_order(seed):
    scenario = small_scenario(city={"families": 900, "seed": seed})
    table = initial_families(scenario, seed, build_city(scenario, "<test>"))
    pop = scenario.population
    r = pop.tie_radius_cells
    offsets = [
        (dx, dy) for dx in range(-r, r + 1) for dy in range(-r, r + 1) if dx * dx + dy * dy <= r * r
    ]
    cells: dict[tuple[int, int], list[int]] = {}
    for i in range(table.size):
        cells.setdefault((int(table.x[i]), int(table.y[i])), []).append(i)
    for members in cells.values():
        members.sort(key=lambda i: (int(table.language[i]), int(table.key[i])))
    checked = 0
    for k, (rows, picks) in enumerate(_spatial_ties(pop, seed, table)):
        for a, b in zip(rows.tolist(), picks.tolist(), strict=True):
            neighbours = [
                m
                for dx, dy in offsets
                for m in cells.get((int(table.x[a]) + dx, int(table.y[a]) + dy), [])
                if m != a
            ]
            same = [m for m in neighbours if table.language[m] == table.language[a]]
            key = table.key[a : a + 1]
            use_same = bool(rng.uniform(seed, "tie_homophily", k, key)[0] < pop.tie_homophily)
            pool = same if (use_same and same) else neighbours
            j = min(int(rng.uniform(seed, "tie_spatial", k, key)[0] * len(pool)), len(pool) - 1)
            assert b == pool[j], (k, a)
            checked += 1
    assert checked >= 900 * pop.ties_spatial * 0.9


def test_the_best_attribute_bound_never_skips_an_acceptable_candidate():
    """could_accept is False only where every candidate fails the full barrier evaluation."""
    scenario = small_scenario(city={"seed": 3})
    engine = Engine(build_world(scenario, 3))
    for _ in range(20):
        engine.step()
    f = engine.families
    rows, types = np.nonzero(f.status == NONE)
    possible = could_accept(engine, rows, types)
    skipped = np.flatnonzero(~possible)
    assert skipped.size > 100  # the bound does prune
    # every candidate of every skipped (family, type), evaluated in full in one call
    pair, fam, svc, mins = [], [], [], []
    for k, i in enumerate(skipped):
        row, t = rows[i], types[i]
        lo, hi = engine.cand.indptr[t][row], engine.cand.indptr[t][row + 1]
        pair.append(np.full(hi - lo, k))
        fam.append(np.full(hi - lo, row))
        svc.append(engine.cand.service[t][lo:hi])
        mins.append(engine.cand.minutes[t][lo:hi])
    pair = np.concatenate(pair)
    full = service_barriers(
        engine, np.concatenate(fam), types[skipped][pair], np.concatenate(svc), np.concatenate(mins)
    )
    assert pair.size > skipped.size  # skipped pairs with candidates are checked
    wrongly = skipped[np.unique(pair[full.acceptable])]
    assert wrongly.size == 0, list(zip(rows[wrongly], types[wrongly], strict=True))[:5]


def test_the_compiled_pair_barriers_equal_the_vectorised_evaluation():
    """The kernels' barriers of a pair (service attributes gathered per pair, hub intake and
    coordinator waivers, broker gain) equal the formulas on the inputs an independent numpy
    gathering finds (tests/pairs.py, pair_inputs), blocks and felt barrier bit for bit, on
    every candidate pair of every family, in a city with hubs, interpreters and brokers."""
    scenario = small_scenario(
        city={"seed": 4},
        hubs={"count": 2, "coordinator": True},
        information={"brokers": {"lang_a": 1.0}},
    )
    engine = Engine(build_world(scenario, 4))
    for _ in range(30):
        engine.step()
    enrolled_hub = engine.enrolled_hubs()
    agreed = 0
    for t in range(N_TYPES):
        indptr = engine.cand.indptr[t]
        rows = np.repeat(np.arange(engine.families.size), np.diff(indptr))
        svc = engine.cand.service[t]
        mins = engine.cand.minutes[t]
        types = np.full(rows.size, t)
        full = evaluate(pair_inputs(engine, rows, types, svc, mins, enrolled_hub))
        compiled = service_barriers(engine, rows, types, svc, mins)
        assert np.array_equal(full.blocks, compiled.blocks), t
        assert np.array_equal(full.felt, compiled.felt), t
        agreed += rows.size
        assert 0 < full.acceptable.sum() < rows.size  # both outcomes occur
    assert agreed > 10_000


def test_the_kept_tie_user_counts_equal_the_full_product():
    """Engine.tie_users (updated from the families whose use changed, and by every tie
    added or removed) equals the tie matrix times this week's use matrix, week after week,
    while new families redraw their ties and families meet at sites."""
    scenario = small_scenario(
        city={"seed": 5},
        population={"attendance_tie_prob_week": 0.2, "youngest_child_max_age_weeks": 300},
    )
    engine = Engine(build_world(scenario, 5))
    changed, last = 0, None
    for _ in range(40):
        f = engine.families
        full = tie_user_counts(tie_matrix(f.ties, f.tie_count), f.status == ENROLLED)
        assert np.array_equal(engine.tie_users(), full)
        if last is not None:
            changed += int((last != full).sum())
        last = full
        engine.step()
    assert changed > 100  # use changed, so the update was exercised
    assert engine.counters["ties_redrawn"] > 100
    assert engine.counters["ties_formed_attendance"] > 100


def brute_force_redraw(engine: Engine, row: int, week: int) -> set[int]:
    """The rows a new family in `row` draws ties to this week, written out from the rules:
    its spatial picks among the neighbours in key order, then its community picks among its
    language group in key order."""
    f = engine.families
    pop = engine.scenario.population
    seed, key = engine.seed, int(f.key[row])
    r = pop.tie_radius_cells
    neighbours = []
    for dx in range(-r, r + 1):
        for dy in range(-r, r + 1):
            if dx * dx + dy * dy > r * r:
                continue
            cell = np.flatnonzero((f.x == f.x[row] + dx) & (f.y == f.y[row] + dy))
            neighbours += [m for m in cell.tolist() if m != row]
    neighbours.sort(key=lambda m: int(f.key[m]))
    same = [m for m in neighbours if f.language[m] == f.language[row]]
    picks = set()
    for k in range(pop.ties_spatial):
        homophilous = rng.uniform_one(seed, "tie_homophily", week, key, k) < pop.tie_homophily
        pool = same if (homophilous and same) else neighbours
        u = rng.uniform_one(seed, "tie_spatial", week, key, k)
        picks.add(pool[min(int(u * len(pool)), len(pool) - 1)])
    members = sorted(np.flatnonzero(f.language == f.language[row]).tolist(), key=lambda m: f.key[m])
    for k in range(pop.ties_community):
        u = rng.uniform_one(seed, "tie_community", week, key, k)
        picks.add(members[min(int(u * len(members)), len(members) - 1)])
    picks.discard(row)
    return picks


def test_a_new_family_has_only_the_ties_it_drew_not_the_previous_familys():
    """When a new family takes a slot, the previous family's ties are gone in both
    directions; its ties are exactly the ties it drew (spatial and community picks for its
    own key and the week, checked against the rules written out) and those other new
    families of the week drew to it. Ties stay undirected throughout."""
    scenario = small_scenario(
        city={"families": 900, "seed": 2}, population={"youngest_child_max_age_weeks": 260}
    )
    engine = Engine(build_world(scenario, 2))
    f = engine.families
    checked = dropped = 0
    for _ in range(30):
        step_before_life_course(engine)
        before = {row: set(f.ties[row, : f.tie_count[row]].tolist()) for row in range(f.size)}
        generation = f.generation.copy()
        week = engine.week
        over_limit = engine.counters.get("ties_over_limit", 0)
        engine.life_course()
        renewed = np.flatnonzero(f.generation != generation)
        drawn = {int(row): brute_force_redraw(engine, int(row), week) for row in renewed}
        for row, picks in drawn.items():
            got = set(f.ties[row, : f.tie_count[row]].tolist())
            drawn_to_it = {other for other, theirs in drawn.items() if row in theirs}
            if engine.counters["ties_over_limit"] == over_limit:
                assert got == picks | drawn_to_it, row
            assert got <= picks | drawn_to_it, row
            for partner in before[row] - got:
                assert row not in f.ties[partner, : f.tie_count[partner]], (row, partner)
            dropped += len(before[row] - got)
            checked += 1
        assert_valid_ties(f)
    assert checked > 30 and dropped > 100


def test_storage_order_changes_no_tie():
    """Permuted storage: the same ties (as slots), week after week, with new families
    drawing theirs and families meeting at sites."""
    scenario = small_scenario(
        city={"families": 700, "seed": 9},
        population={"attendance_tie_prob_week": 0.3, "youngest_child_max_age_weeks": 300},
    )
    world = build_world(scenario, 9)
    order = np.random.default_rng(1).permutation(world.families.size)
    stored, permuted = Engine(world), Engine(world.take(order))
    for _ in range(30):
        stored.step()
        permuted.step()
        a = tie_slots(stored.families)[np.argsort(stored.families.slot)]
        b = tie_slots(permuted.families)[np.argsort(permuted.families.slot)]
        assert np.array_equal(a, b)
    assert stored.counters == permuted.counters
    assert stored.counters["ties_redrawn"] > 0 and stored.counters["ties_formed_attendance"] > 0


def _tie_structure(n: int, width: int):
    ties = np.zeros((n, width), dtype=np.int32)
    return ties, np.zeros(n, dtype=np.int32)


def test_adding_ties_skips_self_ties_repeats_and_ties_over_the_limit():
    ties, count = _tie_structure(4, 2)
    using = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=bool)
    users = np.zeros((4, 2), dtype=np.int64)
    outcome = np.zeros(3, dtype=np.int64)
    a = np.array([0, 0, 1, 0, 2, 3, 0])
    b = np.array([1, 0, 0, 2, 3, 1, 3])
    add_ties(a, b, ties, count, using, users, outcome)
    # 0-1 formed, 0-0 skipped, 1-0 already, 0-2 formed (0 now full), 2-3 formed, 3-1
    # formed, 0-3 over the limit (0 holds 2)
    assert outcome[TIE_FORMED] == 4 and outcome[TIE_ALREADY] == 1
    assert outcome[TIE_OVER_LIMIT] == 1
    held = [sorted(ties[r, : count[r]].tolist()) for r in range(4)]
    assert held == [[1, 2], [0, 3], [0, 3], [1, 2]]
    # the tie-user counts follow the ties: users = adjacency x using
    adjacency = np.zeros((4, 4), dtype=np.int64)
    for r in range(4):
        adjacency[r, ties[r, : count[r]]] = 1
    assert np.array_equal(users, adjacency @ using.astype(np.int64))
    removed = remove_ties_of(np.array([0, 2]), ties, count, using, users)
    assert removed == 3  # 0-1, 0-2 (once) and 2-3
    held = [sorted(ties[r, : count[r]].tolist()) for r in range(4)]
    assert held == [[], [3], [], [1]]
    adjacency[:] = 0
    for r in range(4):
        adjacency[r, ties[r, : count[r]]] = 1
    assert np.array_equal(users, adjacency @ using.astype(np.int64))


def test_the_build_keeps_every_tie_of_the_default_city_within_the_limit():
    """At the defaults (about 14 ties a family) the limit of 28 refuses no tie of the build."""
    scenario = small_scenario(city={"families": 3000, "width": 40, "height": 40})
    table = initial_families(scenario, 1, build_city(scenario, "<test>"))
    ties, count, over_limit = build_ties(scenario, 1, table)
    assert ties.shape[1] == max_tie_degree(scenario.population) == 28
    assert over_limit == 0 and 12 < count.mean() < 16
    assert_valid_ties(table)


def test_the_kept_travel_minutes_of_a_service_in_use_are_its_travel_time():
    """Engine.service_minutes (set at application) equals the travel-time formula for every
    (family, type) that waits for or uses a service."""
    engine = Engine(build_world(small_scenario(city={"seed": 6}), 6))
    for _ in range(40):
        engine.step()
    f = engine.families
    rows, types = np.nonzero((f.status == ENROLLED) | (f.status == WAITLISTED))
    assert rows.size > 300
    minutes = minutes_to(engine, rows, f.service[rows, types])
    assert np.array_equal(engine.service_minutes[rows, types], minutes)
