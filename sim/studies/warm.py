"""Compile the engine's kernels once, at install (`python -m sim.studies.warm SCENARIO...`).

Numba compiles a kernel the first time it is called and caches the code beside its module
(`sim.core.compiled`). Without this step the first jobs after an install each compile the
kernels themselves: every process that starts before the cache is written (the workers of a
pool, a test runner's workers, a command run in a subprocess) pays the same 20-40 s. Here
one process runs a small city of each given scenario through its burn-in and two measured
weeks, so every kernel each configuration calls (means tests, hubs, the adaptive policy, a
planner's file city) is compiled and cached before any job starts. Results of later runs do
not depend on it: a cached kernel is the same code.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sim.core.compiled import needs_compiling
from sim.core.errors import ScenarioError
from sim.engine.model import FamilyAccessModel
from sim.scenario.schema import Scenario, load_scenario
from sim.studies.runner import with_run_settings

# a city just large enough that every kind of site and family exists (smaller cities are
# refused for a file city's fixed size; it runs at its own size)
WARM_FAMILIES = 400
MEASURED_WEEKS = 2


def warm(scenario: Scenario) -> FamilyAccessModel:
    """Run one small replication of `scenario` through its burn-in and two measured weeks;
    returns the model."""
    families = None if scenario.city.source == "file" else WARM_FAMILIES
    small = with_run_settings(scenario, weeks=MEASURED_WEEKS, families=families, by="sim.run")
    model = FamilyAccessModel(small, rng=1, materialise_agents=False)
    for _ in range(small.run.burn_in_weeks + small.run.weeks):
        model.step()
    model.metrics()
    return model


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    try:
        scenarios = [load_scenario(path) for path in paths]
    except ScenarioError as error:
        print(f"famsim: {error}", file=sys.stderr)
        return 2
    if not needs_compiling():
        print("famsim: the engine's kernels are compiled already")
        return 0
    started = time.perf_counter()
    for scenario in scenarios:
        warm(scenario)
    print(
        f"famsim: compiled the engine's kernels on {len(paths)} scenarios "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
