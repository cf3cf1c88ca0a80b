"""famsim: how families with young children reach early-childhood and family-support services.

Python API for notebooks: `load_scenario`, `run`.
"""

from sim.errors import ScenarioError
from sim.runner import run
from sim.scenario import Scenario, load_scenario

__all__ = ["Scenario", "ScenarioError", "load_scenario", "run"]
