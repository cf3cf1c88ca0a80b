"""Small worlds for tests: built from the default scenario with a few overrides."""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.scenario import Scenario, scenario_from_dict
from sim.week import Engine
from sim.world import World, build_world

SMALL_CITY = {"families": 1500, "width": 30, "height": 30, "neighbourhoods": 6}


def small_scenario(**sections: dict[str, Any]) -> Scenario:
    """The default scenario on a 1,500-family city, with section overrides merged in."""
    data = Scenario().resolved_dict()
    data["name"] = "small"
    data["city"].update(SMALL_CITY)
    data["run"].update({"burn_in_weeks": 40, "weeks": 20, "replications": 2})
    for section, values in sections.items():
        target = data
        *parents, last = section.split(".")
        for part in parents:
            target = target[part]
        if isinstance(values, dict) and isinstance(target.get(last), dict):
            target[last] = {**target[last], **values}
        else:
            target[last] = values
    return scenario_from_dict(data, "<test>")


def run_engine(world: World, weeks: int | None = None, chunk_size: int | None = None) -> Engine:
    engine = Engine(world, chunk_size=chunk_size)
    total = (
        weeks if weeks is not None else world.scenario.run.burn_in_weeks + world.scenario.run.weeks
    )
    for _ in range(total):
        engine.step()
    return engine


STATE_COLUMNS = (
    "status",
    "service",
    "status_week",
    "applied_week",
    "aware",
    "trust",
    "perceived_fit",
    "youngest_age_weeks",
    "generation",
    "income_q",
    "is_arope",
    "broker_contacted",
    "staff_contacted",
)


def state_by_key(engine: Engine) -> dict[str, np.ndarray]:
    """Family state sorted by slot, so storage order does not matter."""
    f = engine.families
    order = np.argsort(f.slot, kind="stable")
    out = {name: getattr(f, name)[order] for name in STATE_COLUMNS}
    out["slot"] = f.slot[order]
    return out


def build(scenario: Scenario, seed: int = 11) -> World:
    return build_world(scenario, seed)
