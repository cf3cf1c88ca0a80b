"""famsim: how families with young children reach early-childhood and family-support services.

Python API for notebooks: `load_scenario`, `run`, `compare`.
"""

from sim.compare import compare
from sim.errors import ScenarioError
from sim.runner import run
from sim.scenario import Scenario, load_scenario

__all__ = ["Scenario", "ScenarioError", "compare", "load_scenario", "run"]
