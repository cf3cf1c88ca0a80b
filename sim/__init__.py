"""famsim: how families with young children reach early-childhood and family-support services.

Python API for notebooks: `load_scenario`, `run`, `compare` (and `Scenario`,
`ScenarioError`); one city and its families: `city_world`, `plot_city`, `trace_families`; the planners' and
researchers' jobs as functions returning tables: `access_map`, `place_hubs`, `sweep`,
`sensitivity`, `calibrate`, `read_calibration`. They are imported on first use, so the
command line starts fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.core.errors import ScenarioError
    from sim.scenario.schema import Scenario, load_scenario
    from sim.studies.comparison import compare
    from sim.studies.explore import (
        access_map,
        calibrate,
        city_world,
        place_hubs,
        plot_city,
        read_calibration,
        sensitivity,
        sweep,
        trace_families,
    )
    from sim.studies.runner import run

# public name -> module that defines it
_API = {
    "Scenario": "sim.scenario.schema",
    "ScenarioError": "sim.core.errors",
    "compare": "sim.studies.comparison",
    "load_scenario": "sim.scenario.schema",
    "run": "sim.studies.runner",
    **{
        name: "sim.studies.explore"
        for name in (
            "access_map",
            "calibrate",
            "place_hubs",
            "read_calibration",
            "sensitivity",
            "sweep",
            "trace_families",
            "city_world",
            "plot_city",
        )
    },
}

__all__ = [
    "Scenario",
    "ScenarioError",
    "access_map",
    "calibrate",
    "city_world",
    "compare",
    "load_scenario",
    "place_hubs",
    "plot_city",
    "read_calibration",
    "run",
    "sensitivity",
    "sweep",
    "trace_families",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
