"""Verification of the access model's structures (issue: registration and vacancies,
part-time places): the desk offers places as they fall vacant, waiting while an acceptable
place stands empty is matching and not capacity, and part-time days let places serve more
children than there are places."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import build, frictionless_scenario, run_engine, small_scenario

from sim.core.codes import (
    CHILDCARE,
    DAYS_PER_WEEK,
    ENROLLED,
    HEALTH,
    NO_SERVICE,
    NONE,
    WAITLISTED,
)

pytestmark = pytest.mark.verification


def test_with_unlimited_places_and_no_thresholds_every_request_is_offered_by_its_desired_start():
    engine = run_engine(build(frictionless_scenario(), seed=4))
    result = engine.accumulator.result()
    assert engine.counters["requests_due"] > 100
    assert result["requests_without_offer_share"] == 0.0
    assert result["waiting_weeks_after_start_childcare"] == 0.0
    for dim in ("capacity", "matching"):
        assert result[f"blocked_by_{dim}_childcare"] == 0.0


def _unevenly_full_city(choices: int):
    """No thresholds, and more childcare places than children, but in small centres: with a
    short list a family's listed centres can be full while others stand empty."""
    return frictionless_scenario(
        behaviour={"registration_choices": choices, "offer_decline_prob": 0.0},
        **{
            "provision.childcare": {"places_per_100": 150.0, "site_capacity": 3},
            "market": {"places_per_100": 0.0},
        },
    )


def test_waiting_while_an_acceptable_place_stands_empty_is_matching_not_capacity():
    engine = run_engine(build(_unevenly_full_city(choices=1), seed=5))
    result = engine.accumulator.result()
    # the city never runs out of places, so no unmet childcare need is capacity's ...
    assert result["blocked_by_capacity_childcare"] == 0.0
    assert result["main_barrier_capacity_childcare"] == 0.0
    # ... but families listing one centre do wait while other centres stand empty
    assert result["blocked_by_matching_childcare"] > 0.0
    free = engine.free_units()[engine.svc.type == CHILDCARE]
    assert free.sum() > 0


def test_a_longer_list_leaves_fewer_requests_without_an_offer():
    short = run_engine(build(_unevenly_full_city(choices=1), seed=5)).accumulator.result()
    long = run_engine(build(_unevenly_full_city(choices=8), seed=5)).accumulator.result()
    assert long["requests_without_offer_share"] < short["requests_without_offer_share"]


def test_the_desk_offers_the_first_listed_centre_with_room_and_registers_only_acceptable_ones():
    engine = run_engine(build(_unevenly_full_city(choices=3), seed=6), weeks=30)
    f = engine.families
    waiting = np.argwhere(f.status == WAITLISTED)
    enrolled = np.argwhere(f.status == ENROLLED)
    assert len(enrolled) > 50
    for r, t in enrolled[:200]:
        listed = f.registered[r, t]
        if t == CHILDCARE and f.applied_week[r, t] >= 0:
            # the centre used is one the family listed
            assert f.service[r, t] in listed
    for r, t in waiting:
        listed = f.registered[r, t]
        assert listed[0] == f.service[r, t] != NO_SERVICE
        assert len(set(listed[listed != NO_SERVICE])) == (listed != NO_SERVICE).sum()


def test_childcare_capacity_is_counted_in_days():
    engine = run_engine(build(small_scenario(), seed=7), weeks=60)
    f = engine.families
    used = engine.used_units()
    childcare = engine.svc.type == CHILDCARE
    in_care = f.status[:, CHILDCARE] == ENROLLED
    assert used[childcare].sum() == f.care_days[in_care].sum()
    assert (used <= engine.capacity_units).all()
    assert set(np.unique(f.care_days)) <= set(range(1, DAYS_PER_WEEK + 1))


def test_without_barriers_part_time_use_lets_default_places_reach_over_60_percent():
    """The default places (44 per 100 children under 3, C1) and no threshold: part-time days
    let more children attend than there are places. Every family wants formal care here,
    so the test isolates what places allow from what families prefer."""
    base = small_scenario()
    scenario = frictionless_scenario(
        population={
            "formal_care_preference_employed": 1.0,
            "formal_care_preference_not_employed": 1.0,
        },
        run={"burn_in_weeks": 120, "weeks": 26},
        **{
            "provision.childcare": {
                "places_per_100": base.provision["childcare"].places_per_100,
                "site_capacity": base.provision["childcare"].site_capacity,
            },
            "market": {
                "places_per_100": base.market.places_per_100,
                "site_capacity": base.market.site_capacity,
            },
        },
    )
    engine = run_engine(build(scenario, seed=8))
    result = engine.accumulator.result()
    children = engine.families.status[:, CHILDCARE] == ENROLLED
    places = engine.svc.capacity[engine.svc.type == CHILDCARE].sum()
    assert children.sum() > places  # more children in care than full-time places
    assert result["u3_participation_all"] > 0.60
    assert result["childcare_days_mean"] < DAYS_PER_WEEK


@pytest.mark.verification
def test_a_child_with_private_preventive_care_never_uses_the_consultation_service():
    """Verification of the private alternative (ODD §7.1, §7.6): a family whose child's
    preventive care is private has no need of the public health service, is not registered
    by the home visit, and counts in health enrolment's denominator only."""
    scenario = small_scenario(
        population={"private_health_share_arope": 0.0, "private_health_share_non_arope": 1.0}
    )
    engine = run_engine(build(scenario, seed=9))
    f = engine.families
    assert (f.private_health == ~f.is_arope).all()
    assert not (f.status[f.private_health, HEALTH] != NONE).any()
    result = engine.accumulator.result()
    assert result["health_enrolment_non_arope"] == 0.0
    assert math.isnan(result["takeup_health_non_arope"])
    assert result["health_enrolment_arope"] > 0.8
    assert result["health_enrolment_arope"] == result["takeup_health_arope"]


def test_a_consultation_is_not_blocked_by_working_hours_that_conflict_with_daily_opening():
    """Appointments are booked around work (hours_mismatch_weight 0 for health): a family
    whose atypical schedule blocks daily childcare is not blocked from consultations."""
    from pairs import service_barriers

    from sim.core.codes import HEALTH
    from sim.engine.week import Engine

    engine = Engine(build(small_scenario(), seed=10))
    f, svc = engine.families, engine.svc
    rows = np.arange(40)
    f.atypical_hours[rows] = True
    f.hours_severity[rows] = 1.0
    f.hours_tolerance[rows] = 0.1
    childcare = np.flatnonzero((svc.type == CHILDCARE) & ~svc.extended_hours)[0]
    health = np.flatnonzero(svc.type == HEALTH)[0]
    minutes = np.zeros(len(rows), dtype=np.int64)
    at_childcare = service_barriers(
        engine, rows, np.full(len(rows), CHILDCARE), np.full(len(rows), childcare), minutes
    )
    at_health = service_barriers(
        engine, rows, np.full(len(rows), HEALTH), np.full(len(rows), health), minutes
    )
    assert at_childcare.blocked_by("hours").all()
    assert not at_health.blocked_by("hours").any()


@pytest.mark.validation
@pytest.mark.xfail(
    strict=True,
    reason="after calibration to Flemish childcare use non-take-up of the targeted offer is about "
    "30 %: inside N3's EU range (16-79 %, validation/patterns.toml), below N1's Belgian minimum "
    "income (57-76 %) (ODD §7.15)",
)
def test_non_take_up_of_the_means_tested_offer_lies_in_the_belgian_range():
    """Validation (not fitted): in the targeted configuration, the share of eligible families'
    needs that never use the means-tested offer lies within EVIDENCE N1 (57-76 % non-take-up
    of the Belgian minimum income; the means test, its label and the paperwork do it). The
    mean of three replications of the default 12,000-family city: one replication of 3,000
    families spreads over 51-68 % (seeds 11-13), too wide to read against the band."""
    from sim.scenario.schema import load_scenario
    from sim.studies.runner import with_run_settings

    scenario = with_run_settings(load_scenario("scenarios/targeted.toml"), weeks=52, burn_in=130)
    shares = [
        run_engine(build(scenario, seed=seed)).accumulator.result()["means_tested_nontakeup_share"]
        for seed in (11, 12, 13)
    ]
    assert 0.57 <= float(np.mean(shares)) <= 0.76


def test_a_run_writes_its_site_and_neighbourhood_tables(tmp_path):
    from sim.studies.runner import run, with_run_settings

    scenario = with_run_settings(small_scenario(), weeks=6, burn_in=6, families=600)
    result = run(scenario, reps=1)
    result.write(tmp_path / "out")
    import pandas as pd

    sites = pd.read_parquet(tmp_path / "out" / "sites.parquet")
    areas = pd.read_parquet(tmp_path / "out" / "neighbourhoods.parquet")
    assert len(sites) == result.runs.shape[0] * len(sites[sites.replication == 0])
    assert ((sites.occupancy >= 0) & (sites.occupancy <= 1)).all()
    assert (sites.empty_units >= 0).all()
    assert set(sites.type) <= {"childcare", "health", "parenting", "admin_help"}
    assert (areas.unmet_need_weeks <= areas.need_weeks).all()
    assert areas.need_weeks.sum() > 0


# --- services by rhythm ---------------------------------------------------------------------


def test_capacity_units_follow_each_rhythm():
    """Childcare counts days (a place is five), consultations appointments a week times the
    weeks between one child's appointments, drop-in visits a week times the weeks between one
    family's visits, the help desk cases at a time."""
    from sim.core.codes import ADMIN_HELP, HEALTH, PARENTING
    from sim.engine.week import Engine

    scenario = small_scenario()
    engine = Engine(build(scenario, seed=11))
    svc = engine.svc
    per_user = {
        CHILDCARE: DAYS_PER_WEEK,
        HEALTH: scenario.provision["health"].visit_interval_weeks,
        PARENTING: scenario.provision["parenting"].visit_interval_weeks,
        ADMIN_HELP: 1,
    }
    assert per_user[HEALTH] == 10 and per_user[PARENTING] == 2
    for t, factor in per_user.items():
        of = svc.type == t
        assert of.any()
        assert (engine.capacity_units[of] == svc.capacity[of] * factor).all()


def test_a_consultation_site_serves_more_children_than_it_has_appointments_a_week():
    """With consultations too few for every child, a site's registered children fill its
    appointments a week times the interval between one child's appointments."""
    from sim.core.codes import HEALTH

    scenario = small_scenario(**{"provision.health": {"places_per_100": 3.0, "site_capacity": 4}})
    engine = run_engine(build(scenario, seed=12), weeks=80)
    f, svc = engine.families, engine.svc
    health = np.flatnonzero(svc.type == HEALTH)
    registered = np.bincount(
        f.service[f.status[:, HEALTH] == ENROLLED, HEALTH], minlength=svc.size
    )[health]
    interval = scenario.provision["health"].visit_interval_weeks
    assert (registered <= svc.capacity[health] * interval).all()
    assert registered.sum() > 2 * svc.capacity[health].sum()
    assert (f.status[:, HEALTH] == WAITLISTED).any()  # and children wait for room


def test_a_help_desk_episode_ends_after_its_weeks_and_the_next_problem_opens_later():
    """Verification of episodes: a family helped by the desk leaves it after episode_weeks;
    its problem is closed (no need) until the next opens 1 to 2 x gap - 1 weeks later."""
    from sim.core.codes import ADMIN_HELP, NONE
    from sim.engine.week import Engine

    episode, gap = 4, 5
    scenario = frictionless_scenario(
        **{"provision.admin_help": {"episode_weeks": episode}},
        population={"admin_problem_gap_weeks": gap},
    )
    engine = Engine(build(scenario, seed=13))
    seen_end = 0
    for _ in range(40):
        f = engine.families
        status, since = f.status[:, ADMIN_HELP].copy(), f.status_week[:, ADMIN_HELP].copy()
        generation = f.generation.copy()
        week = engine.week
        engine.step()
        # episodes that ended this week (in a family that is still the same generation)
        ended = (status == ENROLLED) & (f.status[:, ADMIN_HELP] == NONE)
        ended &= f.generation == generation
        for r in np.flatnonzero(ended):
            assert week - since[r] + 1 == episode
            assert week + 2 <= f.admin_problem_week[r] <= week + 1 + 2 * gap - 1
            seen_end += 1
        # an open problem is a need; a closed one is not
        need = engine.needs()[:, ADMIN_HELP]
        assert (need == (f.admin_need & (f.admin_problem_week <= engine.week))).all()
    assert seen_end > 50
    assert engine.counters["episodes_ended"] >= seen_end


def test_only_the_help_desk_works_in_episodes_and_only_visits_have_an_interval():
    from sim.core.errors import ScenarioError

    with pytest.raises(ScenarioError) as info:
        small_scenario(**{"provision.childcare": {"visit_interval_weeks": 2}})
    assert info.value.key_path == "provision.childcare.visit_interval_weeks"
    assert "allowed: 1" in info.value.message
    with pytest.raises(ScenarioError) as info:
        small_scenario(**{"provision.health": {"episode_weeks": 3}})
    assert info.value.key_path == "provision.health.episode_weeks"


def test_a_drop_in_without_a_waiting_list_turns_families_away_when_full():
    """Parenting meeting places are drop-in (IAS: 'no appointments'), with no waiting list:
    a family who finds the sessions full is rejected, never waitlisted."""
    from sim.core.codes import PARENTING, REJECTED

    scenario = small_scenario(
        **{"provision.parenting": {"places_per_100": 0.5, "site_capacity": 2}},
        population={"parenting_need_share": 0.9},
    )
    engine = run_engine(build(scenario, seed=14), weeks=40)
    status = engine.families.status[:, PARENTING]
    assert not (status == WAITLISTED).any()
    assert (status == REJECTED).any()
    assert engine.counters["rejections"] > 0


def test_rarer_trips_are_tolerated_longer():
    """The travel tolerance follows each rhythm: a consultation every ten weeks is accepted
    further away than daily childcare, in the candidate lists and in the barriers."""
    from sim.core.codes import ADMIN_HELP, HEALTH, PARENTING
    from sim.world.travel import tolerance_percent

    scenario = small_scenario()
    percent = tolerance_percent(scenario)
    assert percent[CHILDCARE] == 100
    # (10 / trips a week) ** 0.15: 2 trips every 10 weeks, every 2 weeks, every week
    assert percent[HEALTH] == round(100 * 50**0.15) == 180
    assert percent[PARENTING] == round(100 * 10**0.15) == 141
    assert percent[ADMIN_HELP] == round(100 * 5**0.15) == 127
    flat = small_scenario(travel={"tolerance_trip_elasticity": 0.0})
    assert (tolerance_percent(flat) == 100).all()

    world = build(scenario, seed=15)
    cand, f = world.candidates, world.families
    for t in (CHILDCARE, HEALTH):
        counts = np.diff(cand.indptr[t])
        owner = np.repeat(np.arange(f.size), counts)
        beyond = cand.minutes[t] > f.max_travel_minutes[owner]
        if t == CHILDCARE:
            assert not beyond.any()
        else:
            assert beyond.any()
            assert (cand.minutes[t] <= f.max_travel_minutes[owner] * percent[t] // 100).all()


def test_a_referral_is_to_a_type_the_family_lacks_from_a_service_of_another_type():
    """Verification: with a referral certain every week, a family is referred exactly when it
    uses a service of one type and needs another it neither uses nor waits for; a family
    whose only needs are met is not referred (and its trust does not rise by referral)."""
    from sim.core.codes import NONE

    scenario = small_scenario(
        information={"referral_prob_week": 1.0},
        hubs={"count": 2, "referral_prob_week": 1.0},
        # the tolerances as first set (before calibration): enough needs go unmet to test on
        population={"tolerance_shift_logit": 0.0},
    )
    engine = run_engine(build(scenario, seed=16), weeks=30)
    f = engine.families
    plan = engine.decide()
    applicable = engine.may_apply(engine.needs())
    enrolled = f.status == ENROLLED
    lacking = applicable & (f.status == NONE)
    n_types = enrolled.shape[1]
    expected = np.zeros(f.size, dtype=bool)
    for t in range(n_types):
        others = np.delete(enrolled, t, axis=1).any(axis=1)
        expected |= lacking[:, t] & others
    assert expected.sum() > 50 and (~expected & enrolled.any(axis=1)).sum() > 50
    assert np.array_equal(plan.referred, expected)
