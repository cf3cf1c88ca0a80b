"""The Mesa shell: seeded with rng=, a discrete_space grid with property layers, services
as FixedAgents, families as views onto the column store, a DataCollector of aggregates."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import small_scenario
from mesa.discrete_space import FixedAgent, OrthogonalMooreGrid

from sim.engine.model import FamilyAccessModel, FamilyAgent, ServiceAgent
from sim.engine.week import Engine
from sim.world.build import build_world

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model():
    scenario = small_scenario(run={"burn_in_weeks": 5, "weeks": 5})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        warnings.simplefilter("error", FutureWarning)
        m = FamilyAccessModel(scenario, rng=3)
        m.run_for(10)
    return m


def test_the_model_runs_weeks_on_mesa_time(model):
    assert model.time == 10
    frame = model.datacollector.get_model_vars_dataframe()
    assert len(frame) == 10
    assert frame["week"].tolist() == list(range(10))
    # one clock: the engine reads the week from Mesa's time and keeps no counter of its own
    assert model.engine.week == model.time - 1
    with pytest.raises(RuntimeError, match="model.step"):
        model.engine.step()
    assert model.engine.week == model.time - 1


PHASES = (
    "decide",
    "information",
    "settle",
    "allocate",
    "experience",
    "meet",
    "measure",
    "life_course",
)


def _record_phases(engine, calls: list[str]) -> None:
    """Make each phase of this engine note its name in `calls` before it runs."""
    for name in PHASES:
        phase = getattr(engine, name)

        def noted(*args, _name=name, _phase=phase):
            calls.append(_name)
            return _phase(*args)

        setattr(engine, name, noted)


def test_the_model_step_is_the_week_the_engine_runs_alone():
    """FamilyAccessModel.step calls the engine's phases in the week's order, the order
    Engine.step runs for an engine on its own; both then leave the same state."""
    scenario = small_scenario(
        city={"families": 300, "width": 14, "height": 14}, run={"burn_in_weeks": 1, "weeks": 2}
    )
    model = FamilyAccessModel(scenario, rng=4)
    alone = Engine(build_world(scenario, 4))
    by_model: list[str] = []
    by_engine: list[str] = []
    _record_phases(model.engine, by_model)
    _record_phases(alone, by_engine)
    for _ in range(3):
        model.step()
        alone.step()
    assert by_model == by_engine == list(PHASES) * 3
    assert alone.week == model.time == 3
    for column in ("status", "service", "aware", "trust", "youngest_age_weeks", "generation"):
        assert np.array_equal(
            getattr(model.engine.families, column), getattr(alone.families, column)
        )
    assert model.engine.counters == alone.counters
    assert model.metrics().keys() == alone.accumulator.result().keys()


def test_the_seed_given_is_the_seed_every_stream_uses():
    scenario = small_scenario(
        city={"families": 300, "width": 14, "height": 14}, run={"burn_in_weeks": 1, "weeks": 1}
    )
    seed = 2**63 + 5  # above numpy's int64: the seed is kept whole
    model = FamilyAccessModel(scenario, rng=seed)
    assert model.world.seed == model.engine.seed == seed
    assert model.scenario.rng == seed  # Mesa's own scenario, made from rng
    assert model.rng.random() == np.random.default_rng(seed).random()
    world = build_world(scenario, 8)
    assert FamilyAccessModel(scenario, rng=8, world=world).engine.seed == 8
    with pytest.raises(ValueError, match="seed 8"):
        FamilyAccessModel(scenario, rng=9, world=world)
    other = small_scenario(city={"families": 300, "width": 15, "height": 14})
    with pytest.raises(ValueError, match="another scenario"):
        FamilyAccessModel(other, rng=8, world=world)
    for bad, error in ((1.5, TypeError), (True, TypeError), (-1, ValueError), (2**64, ValueError)):
        with pytest.raises(error):
            FamilyAccessModel(scenario, rng=bad)


def test_the_famsim_scenario_is_the_worlds_and_mesa_keeps_its_own(model):
    assert model.world.scenario is model.engine.scenario
    assert model.world.scenario.run.weeks == 5
    assert model.scenario.model is model  # Mesa ties its scenario to the model
    assert not hasattr(model.scenario, "run")


def test_the_engine_owns_the_only_family_table():
    """The model's World holds the engine's family table; a World handed in keeps the table
    it was built with, so it can start other runs."""
    scenario = small_scenario(
        city={"families": 300, "width": 14, "height": 14}, run={"burn_in_weeks": 2, "weeks": 2}
    )
    world = build_world(scenario, 6)
    built = world.families.youngest_age_weeks.copy()
    model = FamilyAccessModel(scenario, rng=6, world=world)
    model.run_for(4)
    assert model.world.families is model.engine.families
    assert not np.array_equal(model.world.families.youngest_age_weeks, built)
    assert np.array_equal(world.families.youngest_age_weeks, built)


def test_the_time_series_has_int_weeks_a_bool_window_flag_and_int_counts(model):
    frame = model.datacollector.get_model_vars_dataframe()
    assert frame["week"].dtype == np.int64
    assert frame["measured"].dtype == bool
    counts = ["children_u3", "waitlist_total"] + [c for c in frame if c.startswith("enrolled_")]
    for column in counts:
        assert frame[column].dtype == np.int64, column
    for column in ("u3_participation_all", "capacity_use", "mean_trust", "aware_childcare"):
        assert frame[column].dtype == np.float64, column
    # the flag selects the window directly: weeks burn_in ... end (burn-in is 5 weeks)
    assert frame[frame.measured]["week"].tolist() == list(range(5, 10))


def test_cell_data_lives_in_property_layers(model):
    assert isinstance(model.grid, OrthogonalMooreGrid)
    assert np.array_equal(model.grid.families.data, model.world.city.families)
    assert np.array_equal(model.grid.deprivation.data, model.world.city.deprivation)


def test_services_are_fixed_agents_on_their_cells(model):
    services = list(model.agents_by_type[ServiceAgent])
    assert len(services) == model.engine.svc.size
    for agent in services[:20]:
        assert isinstance(agent, FixedAgent)
        sid = agent.service_id
        assert agent.cell.coordinate == (int(model.engine.svc.x[sid]), int(model.engine.svc.y[sid]))
        assert 0 <= agent.units_in_use <= agent.capacity_units
        assert agent.enrolled <= agent.units_in_use


def test_family_agents_are_views_onto_the_column_store(model):
    agent = next(iter(model.agents_by_type[FamilyAgent]))
    row = agent.row
    before = agent.youngest_age_weeks
    model.engine.families.youngest_age_weeks[row] += 1000
    assert agent.youngest_age_weeks == before + 1000  # no copy: one source of truth
    model.engine.families.youngest_age_weeks[row] -= 1000


def test_two_models_do_not_share_state():
    scenario = small_scenario(
        city={"families": 300, "width": 14, "height": 14}, run={"burn_in_weeks": 2, "weeks": 2}
    )
    a = FamilyAccessModel(scenario, rng=1)
    b = FamilyAccessModel(scenario, rng=2)
    a.run_for(4)
    assert b.time == 0 and b.engine.week == -1
    assert a.engine.families.status is not b.engine.families.status
    assert not np.shares_memory(a.engine.families.trust, b.engine.families.trust)


def test_large_cities_skip_per_family_objects_with_identical_results():
    scenario = small_scenario(
        city={"families": 400, "width": 16, "height": 16}, run={"burn_in_weeks": 8, "weeks": 6}
    )
    with_agents = FamilyAccessModel(scenario, rng=5, materialise_agents=True)
    without = FamilyAccessModel(scenario, rng=5, materialise_agents=False)
    with_agents.run_for(14)
    without.run_for(14)
    assert FamilyAgent not in without.agents_by_type
    assert pd.Series(with_agents.metrics()).equals(pd.Series(without.metrics()))


def _ruff_banned_apis(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """ruff's banned-API rule (TID251) alone, over the given paths."""
    command = [sys.executable, "-m", "ruff", "check", "--select", "TID251", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd)


def test_apis_that_mesa_4_removes_are_banned_by_lint():
    banned = ROOT / "pyproject.toml"
    text = banned.read_text()
    for api in ('"mesa.space"', '"mesa.batch_run"', '"mesa.time"'):
        assert api in text
    result = _ruff_banned_apis(str(ROOT / "sim"), str(ROOT / "tests"), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_banned_mesa_api_fails_the_lint(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from mesa.space import MultiGrid\n")
    result = _ruff_banned_apis("--config", str(ROOT / "pyproject.toml"), str(probe))
    assert result.returncode != 0 and "mesa.space" in result.stdout
