"""Unit tests, one mechanism at a time, on hand-made arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import build, small_scenario
from hypothesis import given
from hypothesis import strategies as st
from pairs import PairInputs, evaluate, fees_cents, trips_cents

from sim.core.codes import (
    CHILDCARE,
    ENROLLED,
    INCOME_SCALE,
    MODE_CAR,
    MODE_TRANSIT,
    MODE_WALK,
    N_TYPES,
    NO_SERVICE,
    PAIR_DIMENSIONS,
    PRIORITY_FIRST_COME,
    PRIORITY_NEED,
    PRIORITY_WORKING,
    WAITLISTED,
)
from sim.engine.week import Engine
from sim.rules.allocation import OFFER_SUMS, desk_order, offer_places, priority_class
from sim.rules.fees import fee_tables
from sim.rules.information import (
    contact_probability,
    tie_matrix,
    tie_user_counts,
    word_of_mouth_probability,
)
from sim.rules.records import BarrierParams, Offers
from sim.scenario.schema import FeeBand, FeeSpec, Scenario, TravelSpec, cents
from sim.world.planning import stationary_age_distribution
from sim.world.services import fee_schedule
from sim.world.travel import travel_minutes


def pair(n=1, **over):
    base = dict(
        income_q=np.full(n, 3_000_000 * INCOME_SCALE, dtype=np.int64),  # 30,000 EUR a year
        household_factor_tenths=18,
        cost_share_bp=np.full(n, 1500, dtype=np.int64),
        weekly_cost_cents=np.zeros(n, dtype=np.int64),
        minutes=np.full(n, 10),
        max_minutes=np.full(n, 20),
        atypical_hours=np.zeros(n, dtype=bool),
        hours_severity=np.zeros(n),
        extended_hours=np.zeros(n, dtype=bool),
        hours_weight=np.ones(n),
        hours_tolerance=np.full(n, 0.4),
        admin_complexity=np.zeros(n),
        paperwork=np.full(n, 0.7),
        admin_tolerance=np.full(n, 0.3),
        speaks_language=np.ones(n, dtype=bool),
        proficiency=np.ones(n),
        interpreter_comprehension=np.zeros(n),
        broker_gain=np.zeros(n),
        language_tolerance=np.full(n, 0.45),
        stigma_label=np.zeros(n),
        stigma_sensitivity=np.full(n, 0.5),
        trust=np.full(n, 0.6),
        stigma_tolerance=np.full(n, 0.25),
        trust_required=np.full(n, 0.3),
        trust_tolerance=np.full(n, 0.25),
        perceived_fit=np.full(n, 0.5),
        quality=np.full(n, 0.5),
        fit_threshold=np.full(n, 0.35),
    )
    base.update({k: np.asarray(v) if not isinstance(v, int) else v for k, v in over.items()})
    return PairInputs(**base)


def blocked(p):
    return dict(zip(PAIR_DIMENSIONS, evaluate(p).blocks[0], strict=True))


def test_a_service_with_no_barrier_is_acceptable():
    assert evaluate(pair()).acceptable.all()


def test_cost_blocks_exactly_above_the_share_of_household_income():
    # 30,000 x 1.8 / 52 = 1,038.46 EUR a week; 15 % of it = 155.77 EUR
    assert not blocked(pair(weekly_cost_cents=[15_576]))["cost"]
    assert blocked(pair(weekly_cost_cents=[15_577]))["cost"]


@given(factor=st.integers(1, 1000), cost=st.integers(0, 100_000), income=st.integers(1, 10_000_000))
def test_cost_decision_is_unchanged_when_all_money_is_rescaled(factor, cost, income):
    a = evaluate(pair(weekly_cost_cents=[cost], income_q=[income * INCOME_SCALE])).blocks[0, 0]
    b = evaluate(
        pair(weekly_cost_cents=[cost * factor], income_q=[income * factor * INCOME_SCALE])
    ).blocks[0, 0]
    assert a == b


def test_travel_blocks_beyond_the_family_maximum():
    assert not blocked(pair(minutes=[20]))["travel"]
    assert blocked(pair(minutes=[21]))["travel"]


def test_language_barrier_falls_with_interpreters_and_brokers():
    foreign = dict(speaks_language=[False], proficiency=[0.3])
    assert blocked(pair(**foreign))["language"]
    assert not blocked(pair(**foreign, interpreter_comprehension=[0.85]))["language"]
    assert not blocked(pair(**foreign, broker_gain=[0.4]))["language"]


def test_stigma_is_label_times_sensitivity_times_distrust():
    # 0.8 x 0.9 x (1 - 0.5) = 0.36 > 0.25; halved by a hub's mixed clientele: 0.18
    assert blocked(pair(stigma_label=[0.8], stigma_sensitivity=[0.9], trust=[0.5]))["stigma"]
    assert not blocked(pair(stigma_label=[0.4], stigma_sensitivity=[0.9], trust=[0.5]))["stigma"]


def test_admin_barrier_is_complexity_times_missing_paperwork_capacity():
    assert blocked(pair(admin_complexity=[0.8], paperwork=[0.5]))["admin"]
    assert not blocked(pair(admin_complexity=[0.0], paperwork=[0.0]))["admin"]


def test_opening_hours_block_atypical_schedules_only_without_extended_hours():
    atypical = dict(atypical_hours=[True], hours_severity=[0.7])
    assert blocked(pair(**atypical))["hours"]
    assert not blocked(pair(**atypical, extended_hours=[True]))["hours"]
    assert not blocked(pair(hours_severity=[0.7]))["hours"]


def test_fit_blocks_below_the_family_threshold():
    assert blocked(pair(perceived_fit=[0.2], quality=[0.5]))["fit"]
    assert not blocked(pair(perceived_fit=[0.2], quality=[0.7]))["fit"]


def weekly_fee(spec: FeeSpec, income: np.ndarray) -> list[int]:
    """The compiled fee (`fees.fee_cents`) of one schedule at each income."""
    return fees_cents(fee_tables([fee_schedule(spec)]), 0, income).tolist()


def test_fee_schedules_charge_in_integer_cents():
    income = np.array([10_000, 15_000, 50_000]) * 100 * INCOME_SCALE
    assert weekly_fee(FeeSpec(kind="free"), income) == [0, 0, 0]
    assert weekly_fee(FeeSpec(kind="flat", flat_eur_week=12.34), income) == [1234] * 3
    means = FeeSpec(kind="means_tested", flat_eur_week=50.0, means_test_line_eur_year=17_398.0)
    assert weekly_fee(means, income) == [0, 0, 5000]
    bands = FeeSpec(
        kind="income_related",
        bands=[
            FeeBand(income_below_eur_year=14_000, fee_eur_week=27.5),
            FeeBand(income_below_eur_year=1e9, fee_eur_week=165.0),
        ],
    )
    assert weekly_fee(bands, income) == [2750, 16500, 16500]
    # a band's limit is exclusive: an income on the limit pays the next band's fee
    limit = np.array([14_000 * 100 * INCOME_SCALE - 1, 14_000 * 100 * INCOME_SCALE])
    assert weekly_fee(bands, limit) == [2750, 16500]


def test_several_schedules_are_read_each_by_its_own_index():
    schedules = [
        fee_schedule(FeeSpec(kind="flat", flat_eur_week=10.0)),
        fee_schedule(FeeSpec(kind="free")),
        fee_schedule(
            FeeSpec(
                kind="income_related",
                bands=[
                    FeeBand(income_below_eur_year=20_000, fee_eur_week=5.0),
                    FeeBand(income_below_eur_year=40_000, fee_eur_week=20.0),
                    FeeBand(income_below_eur_year=1e9, fee_eur_week=60.0),
                ],
            )
        ),
    ]
    income = np.array([30_000, 30_000, 10_000, 30_000, 50_000]) * 100 * INCOME_SCALE
    got = fees_cents(fee_tables(schedules), np.array([0, 1, 2, 2, 2]), income)
    assert got.tolist() == [1000, 0, 500, 2000, 6000]


def test_travel_minutes_by_mode():
    spec = TravelSpec()
    d = np.array([8.0])  # 1 km straight, 1.3 km by road
    assert (
        travel_minutes(d, np.array([MODE_WALK]), np.array([1.0]), 125.0, spec)[0] == 17
    )  # 16.25 up
    assert travel_minutes(d, np.array([MODE_CAR]), np.array([1.0]), 125.0, spec)[0] == 6  # 3 + 2.6
    # transit: 4 + 12 x (1 - 0.5) + 3.9 = 13.9 -> 14
    assert travel_minutes(d, np.array([MODE_TRANSIT]), np.array([0.5]), 125.0, spec)[0] == 14


def test_a_trip_costs_the_car_per_minute_or_a_transit_fare_and_nothing_on_foot():
    spec = TravelSpec(transit_fare_eur_trip=1.6)
    params = BarrierParams(
        factor_tenths=18,
        hub_stigma_factor=1.0,
        hub_trust_carryover=0.0,
        interpreter_comprehension=0.0,
        broker_comprehension_gain=0.0,
        car_cents_per_minute=cents(spec.car_cost_eur_per_minute),
        transit_fare_cents=cents(spec.transit_fare_eur_trip),
        tolerance_pct=np.full(4, 100, dtype=np.int64),
    )
    modes = np.array([MODE_CAR, MODE_CAR, MODE_TRANSIT, MODE_TRANSIT, MODE_WALK])
    got = trips_cents(params, modes, np.array([10, 0, 10, 45, 10]))
    # 5 cents a minute by car (0.05 EUR), the fare whatever the time by transit
    assert got.tolist() == [50, 0, 160, 160, 0]


def test_the_desk_orders_requests_by_type_priority_request_week_then_draw():
    types = np.zeros(4, dtype=np.int64)
    key = np.array([10, 11, 12, 13])
    priority = np.array([1, 0, 0, 0])
    applied = np.array([0, 5, 3, 3])
    order = desk_order(1, 9, types, key, priority, applied)
    # priority 0 first; among them week 3 before week 5; the two week-3 requests by the draw
    assert set(order[:2].tolist()) == {2, 3}
    assert order[2:].tolist() == [1, 0]
    # types are served one after another, each in its own order
    two_types = desk_order(1, 9, np.array([1, 0, 1, 0]), key, np.zeros(4, int), np.zeros(4, int))
    assert sorted(two_types[:2].tolist()) == [1, 3]


def _desk_families(registered: list[list[int]], care_days: list[int]):
    """The engine's own family columns (the production record type), the first rows set
    to registered childcare requests of families ready since week 30."""
    engine = Engine(build(small_scenario(), seed=3))
    fam = engine.family_columns()
    n = len(registered)
    fam.registered[:n] = NO_SERVICE
    for r, centres in enumerate(registered):
        fam.registered[r, CHILDCARE, : len(centres)] = centres
    fam.status[:n] = WAITLISTED
    fam.status_week[:n] = 0
    fam.service[:n, CHILDCARE] = fam.registered[:n, CHILDCARE, 0]
    fam.applied_week[:n] = 0
    fam.youngest_age_weeks[:n] = 30
    fam.care_start_age_weeks[:n] = 20
    fam.care_days[:n] = care_days
    return fam, n


def _offer(desk: tuple, free: np.ndarray, decline_prob: float = 0.0) -> np.ndarray:
    fam, n = desk
    sums = np.zeros((N_TYPES, len(OFFER_SUMS)), dtype=np.int64)
    offer_places(
        np.arange(n, dtype=np.int64),
        np.full(n, CHILDCARE, dtype=np.int64),
        fam,
        np.zeros(fam.registered.shape, dtype=np.int16),
        np.zeros((n, N_TYPES), dtype=np.int16),
        free,
        Offers(decline_prob=decline_prob, week=40, decline_stream=np.uint64(7)),
        sums,
    )
    return sums


def test_the_desk_offers_the_first_listed_centre_with_room_for_the_childs_days():
    # centre 0 has 3 free days, centre 1 has 10: a 4-day child skips centre 0
    desk = _desk_families([[0, 1], [0, 1], [0]], care_days=[4, 2, 2])
    fam = desk[0]
    free = np.zeros(len(fam.registered), dtype=np.int64)  # every other service is full
    free[:2] = [3, 10]
    sums = _offer(desk, free)
    assert fam.service[:3, CHILDCARE].tolist() == [1, 0, 0]
    assert fam.status[:3, CHILDCARE].tolist() == [ENROLLED, ENROLLED, WAITLISTED]
    assert free[:2].tolist() == [1, 6]  # days taken: 2 at centre 0, 4 at centre 1
    # the third request had its desired start (the start age, 10 weeks ago) long passed
    assert sums[CHILDCARE, OFFER_SUMS.index("offers")] == 2
    assert sums[CHILDCARE, OFFER_SUMS.index("wait_from_start")] == 2 * 10


def test_an_offer_that_is_not_the_first_choice_may_be_declined_and_the_place_stays_free():
    desk = _desk_families([[0, 1]], care_days=[1])
    free = np.zeros(len(desk[0].registered), dtype=np.int64)
    free[1] = 5
    _offer(desk, free, decline_prob=1.0)
    assert desk[0].status[0, CHILDCARE] == WAITLISTED and free[:2].tolist() == [0, 5]
    desk = _desk_families([[1, 0]], care_days=[1])
    _offer(desk, free, decline_prob=1.0)  # the first choice is never declined
    assert desk[0].status[0, CHILDCARE] == ENROLLED and free[:2].tolist() == [0, 4]


def test_priority_classes_use_only_observable_information():
    rule = np.array(
        [
            PRIORITY_FIRST_COME,
            PRIORITY_WORKING,
            PRIORITY_WORKING,
            PRIORITY_NEED,
            PRIORITY_NEED,
            PRIORITY_NEED,
        ]
    )
    employed = np.array([False, True, False, False, False, True])
    means = np.array([False, False, False, True, False, False])
    deprivation = np.array([0.0, 0.0, 0.0, 0.0, 0.8, 0.1])
    got = priority_class(rule, employed, means, deprivation, np.full(6, 0.5))
    assert got.tolist() == [0, 0, 1, 0, 1, 2]


def test_word_of_mouth_needs_a_user_among_the_ties_and_rises_with_their_number():
    p = word_of_mouth_probability(0.1, 3)
    assert p[0] == 0.0
    assert p[1:] == pytest.approx([0.1, 1 - 0.9**2, 1 - 0.9**3], rel=1e-15)
    assert np.all(np.diff(p) > 0)


def test_tie_user_counts_sum_the_ties_that_use_each_type():
    # row 0 holds ties to 1 and 2, row 1 to 0, row 2 none listed (one-sided on purpose:
    # the product counts what each row holds); entries past a row's count are ignored
    ties = np.array([[1, 2], [0, 7], [5, 5]], dtype=np.int32)
    tie_count = np.array([2, 1, 0], dtype=np.int32)
    using = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 1]], dtype=bool)
    counts = tie_user_counts(tie_matrix(ties, tie_count), using)
    assert counts.tolist() == [[1, 2, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]]


def test_contact_capacity_is_spread_over_the_eligible():
    assert contact_probability(10, np.ones(100, dtype=bool)) == 0.1
    assert contact_probability(500, np.ones(100, dtype=bool)) == 1.0
    assert contact_probability(5, np.zeros(100, dtype=bool)) == 0.0


def test_the_stationary_age_profile_is_steady_under_the_life_course_rules():
    scenario = Scenario()
    pop = scenario.population
    ages, p = stationary_age_distribution(scenario)
    # push the distribution one week through ageing, conception and renewal
    nxt = np.zeros_like(p)
    nxt[1:] = p[:-1]
    reset = p[-1]
    conceive = ages >= pop.min_birth_spacing_weeks
    moved = nxt[conceive] * pop.next_birth_hazard_week
    nxt[conceive] -= moved
    nxt[0] += reset + moved.sum()
    assert np.abs(nxt - p).max() < 1e-12


def test_scaling_the_city_keeps_provision_per_capita():
    from sim.scenario.schema import load_scenario
    from sim.studies.runner import scale_scenario

    base = load_scenario(
        Path(__file__).resolve().parent.parent / "scenarios" / "proportionate_one_roof.toml"
    )
    double = scale_scenario(base, 2 * base.city.families)
    assert double.city.width == round(base.city.width * 2**0.5)
    assert double.information.outreach_workers == 2 * base.information.outreach_workers
    # one hub per neighbourhood: the neighbourhoods double, so do the hubs
    assert double.hubs.count == base.hubs.count == "per_neighbourhood"
    assert double.city.neighbourhoods == 2 * base.city.neighbourhoods
    counted = scale_scenario(
        base.model_copy(update={"hubs": base.hubs.model_copy(update={"count": 3})}),
        2 * base.city.families,
    )
    assert counted.hubs.count == 6
    assert double.budget.target_outlay_eur_week == 2 * base.budget.target_outlay_eur_week
    assert double.provision == base.provision
