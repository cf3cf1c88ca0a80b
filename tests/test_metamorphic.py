"""Metamorphic tests (DESIGN §10): transformations of the input that must leave results
unchanged, or change them in a known way."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from helpers import (
    build,
    frictionless_scenario,
    run_engine,
    small_scenario,
    step_before_life_course,
)

from sim.core.codes import ENROLLED
from sim.measure.metrics import metric_columns
from sim.scenario.schema import scenario_from_dict
from sim.world.build import World, _candidates

MONEY_METRICS = tuple(c for c in metric_columns() if c.endswith("_eur_week"))


def _assert_metrics_equal(a: dict, b: dict, skip=()):
    for name, value in a.items():
        if name in skip:
            continue
        other = b[name]
        if np.isnan(value):
            assert np.isnan(other), name
        else:
            assert other == pytest.approx(value, rel=1e-12, abs=1e-15), name


@pytest.fixture(scope="module")
def scenario():
    return small_scenario(
        run={"burn_in_weeks": 30, "weeks": 20},
        information={"outreach_workers": 2.0, "brokers": {"lang_a": 1.0}},
        hubs={"count": 2, "coordinator": True},
    )


@pytest.fixture(scope="module")
def baseline(scenario):
    return run_engine(build(scenario, seed=21)).accumulator.result()


def test_mirroring_the_city_gives_identical_aggregates(scenario, baseline):
    mirrored = run_engine(build(scenario, seed=21).mirrored()).accumulator.result()
    _assert_metrics_equal(baseline, mirrored)


def _scale_money(data, factor):
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if "_eur" in key and isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = value * factor
            else:
                out[key] = _scale_money(value, factor)
        return out
    if isinstance(data, list):
        return [_scale_money(v, factor) for v in data]
    return data


def test_multiplying_all_money_by_ten_changes_no_decision(scenario, baseline):
    scaled_scenario = scenario_from_dict(_scale_money(scenario.resolved_dict(), 10), "<test>")
    assert scaled_scenario.provision["childcare"].fee.bands[0].fee_eur_week == 275.0
    scaled = run_engine(build(scaled_scenario, seed=21)).accumulator.result()
    _assert_metrics_equal(baseline, scaled, skip=MONEY_METRICS)
    for name in MONEY_METRICS:
        assert scaled[name] == pytest.approx(10 * baseline[name], rel=1e-12)


def _with_far_service(world: World) -> World:
    """Append a copy of service 0 at the grid corner farthest from every family."""
    svc = world.services.services
    corner_x, corner_y = 0, 0
    columns = {}
    for name in svc.__dataclass_fields__:
        values = getattr(svc, name)
        columns[name] = np.concatenate([values, values[:1]])
    columns["x"][-1] = corner_x
    columns["y"][-1] = corner_y
    table = type(svc)(**columns)
    services = replace(world.services, services=table)
    return replace(
        world,
        services=services,
        candidates=_candidates(world.scenario, world.city, world.families, services),
    )


def test_a_service_beyond_everyones_reach_changes_nothing():
    scenario = small_scenario(
        city={"width": 90, "height": 90, "families": 1200, "populated_radius_share": 0.3},
        population={"max_travel_minutes_median": 12.0, "max_travel_minutes_log_sd": 0.0},
        run={"burn_in_weeks": 30, "weeks": 15},
    )
    world = build(scenario, seed=8)
    far = _with_far_service(world)
    assert all(
        (np.diff(far.candidates.indptr[t]) == np.diff(world.candidates.indptr[t])).all()
        for t in range(4)
    )
    # every family outcome is unchanged; only the supply-side measures count the extra
    # funded (if unreachable) places: capacity_use, public_outlay and net cost
    supply = ("capacity_use", *MONEY_METRICS)
    _assert_metrics_equal(
        run_engine(world).accumulator.result(), run_engine(far).accumulator.result(), skip=supply
    )


def test_without_thresholds_or_capacity_limits_every_aware_family_with_a_need_is_served():
    """A closed-form case (STYLE: validate against a known result, like an M/M/c queue):
    with no barrier and unlimited places, a need known since last week is always met."""
    from sim.engine.week import Engine

    engine = Engine(build(frictionless_scenario(), seed=2))
    checked = 0
    for _ in range(30):
        need = engine.needs()
        aware_before = engine.families.aware.copy()
        step_before_life_course(engine)
        must_be_served = need & aware_before
        assert (engine.families.status[must_be_served] == ENROLLED).all()
        checked += int(must_be_served.sum())
        engine.life_course()
    assert checked > 1000
