"""famsim: how families with young children reach early-childhood and family-support services.

Python API for notebooks: `load_scenario`, `run`, `compare` (and `Scenario`,
`ScenarioError`). They are imported on first use, so the command line starts fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.core.errors import ScenarioError
    from sim.scenario.schema import Scenario, load_scenario
    from sim.studies.comparison import compare
    from sim.studies.runner import run

# public name -> module that defines it
_API = {
    "Scenario": "sim.scenario.schema",
    "ScenarioError": "sim.core.errors",
    "compare": "sim.studies.comparison",
    "load_scenario": "sim.scenario.schema",
    "run": "sim.studies.runner",
}

__all__ = ["Scenario", "ScenarioError", "compare", "load_scenario", "run"]


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
