"""The shipped configurations: equal outlay, the same market, and the patterns the model is
judged on (DESIGN §8). Stochastic assertions are paired differences over common random
numbers with 95 % intervals that exclude zero, on the seed set declared below."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.core.errors import ScenarioError
from sim.measure import patterns
from sim.measure.stats import interval, paired_values
from sim.scenario.schema import load_scenario
from sim.studies.comparison import compare
from sim.studies.runner import run, with_run_settings
from sim.world.city import build_city
from sim.world.services import build_services, outlay_cents

ROOT = Path(__file__).resolve().parent.parent
FIVE = ["universal", "targeted", "proportionate", "one_roof", "proportionate_one_roof"]
ABLATIONS = ["graded_fees", "outreach", "priority", "language_support"]
SEED = 2026  # declared in advance; replication seeds are spawned from it
REPS = 4
FAMILIES = 4000


def shipped(name: str):
    folder = ROOT / "scenarios"
    path = (
        folder / f"{name}.toml"
        if (folder / f"{name}.toml").exists()
        else folder / "ablations" / f"{name}.toml"
    )
    return load_scenario(path)


def outlay(scenario) -> int:
    return outlay_cents(scenario, build_services(scenario, build_city(scenario)))


@pytest.mark.verification
def test_every_configuration_has_the_same_ex_ante_outlay():
    values = {name: outlay(shipped(name)) for name in FIVE + ["universal_free"] + ABLATIONS}
    reference = values["universal"]
    for name, value in values.items():
        assert abs(value - reference) <= 0.005 * reference, (name, value, reference)
    # and none exceeds the target by a place or more
    target = int(shipped("universal").budget.target_outlay_eur_week * 100)
    assert all(target - 26_000 <= v <= target for v in values.values())


@pytest.mark.verification
def test_targeted_reserves_its_places_for_the_expected_eligible_demand():
    """The means-test line of targeted childcare is where the planning draw's demand below
    it fills the places: the eligible families' care days reach the places' days, and
    without the marginal family they would not; families below the line are eligible."""
    from sim.world.services import expected_childcare_demand

    scenario = shipped("targeted")
    city = build_city(scenario)
    s = build_services(scenario, city).services
    reserved = s.is_public & (s.type == 0) & s.means_tested
    assert reserved.any() and len(set(s.means_line_q[reserved].tolist())) == 1
    line = int(s.means_line_q[reserved][0])
    days = int(s.capacity[reserved].sum()) * 5
    income, care_days = expected_childcare_demand(scenario, city)
    below = income < line
    assert care_days[below].sum() >= days
    marginal = below & (income == income[below].max())
    assert care_days[below & ~marginal].sum() < days
    # the poverty line would leave most places without eligible demand
    assert care_days[income < round(17_398 * 100) * 10_000].sum() < 0.3 * days


@pytest.mark.verification
def test_the_market_option_is_available_in_every_scenario():
    markets = []
    for name in ["base", *FIVE, *ABLATIONS]:
        scenario = shipped(name)
        s = build_services(scenario, build_city(scenario)).services
        market = (~s.is_public) & (s.type == 0)
        assert market.sum() > 0 and s.capacity[market].sum() > 0, name
        markets.append(np.column_stack([s.x[market], s.y[market], s.capacity[market]]))
    assert all(np.array_equal(markets[0], m) for m in markets[1:])


@pytest.mark.verification
def test_targeting_uses_only_what_a_municipality_can_observe():
    """Neither eligibility, priority nor outreach reads the true AROPE flag: changing it for
    every family changes no decision."""
    from helpers import run_engine

    from sim.world.build import build_world

    scenario = with_run_settings(shipped("targeted"), weeks=10, burn_in=20, families=800)
    world = build_world(scenario, 3)
    flipped = world.with_families(world.families.take(np.arange(world.families.size)))
    flipped.families.is_arope = ~flipped.families.is_arope
    a, b = run_engine(world), run_engine(flipped)
    assert np.array_equal(a.families.status, b.families.status)
    assert np.array_equal(a.families.aware, b.families.aware)


def test_comparing_scenarios_on_different_cities_or_windows_is_refused():
    a = shipped("universal")
    other_city = a.model_copy(
        update={"name": "elsewhere", "city": a.city.model_copy(update={"seed": 7})}
    )
    with pytest.raises(ScenarioError, match="different city"):
        compare([a, other_city], origins=["a.toml", "b.toml"])
    other_weeks = a.model_copy(
        update={"name": "longer", "run": a.run.model_copy(update={"weeks": 60})}
    )
    with pytest.raises(ScenarioError, match="run.weeks"):
        compare([a, other_weeks], origins=["a.toml", "b.toml"])


@pytest.fixture(scope="module")
def comparison():
    names = ["universal", "one_roof", "proportionate", "ablation_outreach"]
    paths = {"ablation_outreach": "outreach"}
    scenarios = [
        with_run_settings(shipped(paths.get(n, n)), seed=SEED, replications=REPS, families=FAMILIES)
        for n in names
    ]
    free = with_run_settings(
        shipped("universal_free"), seed=SEED, replications=REPS, families=FAMILIES
    )
    targeted = with_run_settings(
        shipped("targeted"), seed=SEED, replications=REPS, families=FAMILIES
    )
    grid = [
        s
        for s in patterns.crossover_scenarios(targeted, 3)
        if s.name
        in {
            patterns.crossover_name(a, b)
            for a, b in ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0))
        }
    ]
    result = compare(scenarios, names, supplement=[free, *grid], workers=1)
    return pd.concat([result.runs, result.supplement_runs], ignore_index=True)


@pytest.mark.validation
def test_matthew_effect_under_universal_provision_with_scarce_places(comparison):
    """Ghysels & Van Lancker 2010 (EVIDENCE C16): low-income families use childcare about half
    as much; EU-SILC 2024 (C18): 23.6 % AROPE vs 43.9 % non-AROPE."""
    assert patterns.matthew_effect(comparison, "universal").holds


@pytest.mark.validation
def test_matthew_effect_persists_when_fees_are_zero(comparison):
    """With no fee the gradient cannot come from prices: it emerges from who registers early
    (awareness), language, opening hours, travel and the market option only richer families
    can afford."""
    assert patterns.matthew_effect(comparison, "universal_free").holds


# the travel gradient is read on childcare needs by travel band: at 4,000 families the 11-15
# minute band holds too few needs for 4 replications to tell a gradient of ~8 pp from noise
# (per-replication differences 0.01-0.14), so it runs on the default city's 12,000
TRAVEL_FAMILIES = 12_000


@pytest.mark.validation
def test_take_up_falls_with_travel_time():
    """EVIDENCE C19: 'no formal care nearby' is a first reason for non-use; T2."""
    universal = with_run_settings(
        shipped("universal"), seed=SEED, replications=REPS, families=TRAVEL_FAMILIES
    )
    runs = run(universal).runs
    assert patterns.travel_decay(runs, "universal").holds


@pytest.mark.validation
def test_outreach_information_reaches_families_no_worker_contacted(comparison):
    """IAS focus groups: 'some of them bring friends along'; W1: word of mouth is the main
    channel. Where outreach works, families it never visited still learn of services from
    their ties, every week."""
    for name in ("ablation_outreach", "proportionate"):
        assert patterns.word_of_mouth_reach(comparison, name).holds, name


@pytest.mark.validation
@pytest.mark.xfail(
    strict=True,
    reason="after calibration to Flemish childcare use, 91 % of families with two or more needs "
    "already use two or more services under universal provision; hubs add +0.5 pp on the "
    "default city (demo report), too little to tell apart in this test's smaller city",
)
def test_hubs_raise_multi_service_use_among_families_with_two_or_more_needs(comparison):
    assert patterns.hubs_multi_service(comparison, "one_roof", "universal").holds


@pytest.mark.validation
def test_targeted_reach_falls_as_stigma_and_paperwork_rise(comparison):
    """Unsettled comparison, part 1: the targeted offer's AROPE participation falls as its stigma
    label and its means-test complexity rise (N1, N3, N5)."""
    low = patterns.crossover_name(0.0, 0.0)
    for high in (patterns.crossover_name(1.0, 0.0), patterns.crossover_name(0.0, 1.0)):
        diff = paired_values(comparison, low, high, "u3_participation_arope")
        assert interval(diff)[1] > 0, high


@pytest.mark.validation
@pytest.mark.xfail(
    strict=True,
    reason="no crossover in this test's city: proportionate reaches more AROPE children under 3 "
    "even with no stigma label and no paperwork on the targeted offer (on the default city the demo "
    "finds targeted +0.6 pp higher in the (0, 0) cell only)",
)
def test_targeted_and_proportionate_swap_ranks_as_stigma_and_paperwork_rise(comparison):
    """Unsettled comparison, part 2: where does the ranking cross over? (DESIGN §8)"""
    means = {}
    for stigma in (0.0, 1.0):
        for admin in (0.0, 1.0):
            name = patterns.crossover_name(stigma, admin)
            means[(stigma, admin)] = interval(
                paired_values(comparison, name, "proportionate", "u3_participation_arope")
            )
    assert means[(0.0, 0.0)][1] > 0 and means[(1.0, 1.0)][2] < 0, means
