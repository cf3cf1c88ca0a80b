"""Verification of the access model's structures (issue: registration and vacancies,
part-time places): the desk offers places as they fall vacant, waiting while an acceptable
place stands empty is matching and not capacity, and part-time days let places serve more
children than there are places."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import build, frictionless_scenario, run_engine, small_scenario

from sim.core.codes import CHILDCARE, DAYS_PER_WEEK, ENROLLED, NO_SERVICE, WAITLISTED

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


@pytest.mark.validation
def test_health_reach_of_non_local_language_families_is_within_the_sourced_band():
    """Validation (not fitted): the preventive health service's home visit after birth and
    its interpreters (today's Flemish practice, the default) give families who do not speak
    the local language at home a consultation enrolment inside the band of EVIDENCE H3:
    90.9 % in Flanders, 98.1 % for disadvantaged non-Belgian families."""
    scenario = small_scenario(
        city={"families": 3000, "width": 40, "height": 40, "neighbourhoods": 8},
        run={"burn_in_weeks": 130, "weeks": 52},
    )
    result = run_engine(build(scenario, seed=9)).accumulator.result()
    assert 0.909 <= result["takeup_health_non_local"] <= 0.981


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
def test_non_take_up_of_the_means_tested_offer_lies_in_the_belgian_range():
    """Validation (not fitted): in the targeted configuration, the share of eligible families'
    needs that never use the means-tested offer lies within EVIDENCE N1 (57-76 % non-take-up
    of the Belgian minimum income; the means test, its label and the paperwork do it)."""
    from sim.scenario.schema import load_scenario
    from sim.studies.runner import with_run_settings

    scenario = with_run_settings(
        load_scenario("scenarios/targeted.toml"), weeks=52, burn_in=130, families=3000
    )
    result = run_engine(build(scenario, seed=11)).accumulator.result()
    assert 0.57 <= result["means_tested_nontakeup_share"] <= 0.76


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
