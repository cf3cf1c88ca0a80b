"""Validation of the calibration (issue 15): on a small city built with known parameters,
the fit recovers them.

The "observed" figures are the city's own under-3 participation (all, AROPE, non-AROPE) at
known values of the two formal-care preferences, measured on seeds the fit never sees. The
calibration is told only the figures and the prior box. Tolerance: the chosen point within
0.12 of each true value (a fifth of the smaller prior range, about the spread the small
city's replication noise allows), and every true value inside the posterior's 2-98 % range.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sim.scenario.schema import load_scenario
from sim.studies.calibration import calibrate, load_targets
from sim.studies.runner import run

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "scenarios" / "base.toml"
TRUTH = {
    "population.formal_care_preference_employed": 0.75,
    "population.formal_care_preference_not_employed": 0.30,
}
CITY = {"families": 2000, "burn_in_weeks": 52, "weeks": 26}
TOLERANCE = 0.12


def observed() -> dict[str, float]:
    overrides = {**TRUTH, "run.burn_in_weeks": CITY["burn_in_weeks"], "run.weeks": CITY["weeks"]}
    scenario = load_scenario(BASE, overrides)
    result = run(scenario, reps=6, seed=777, families=CITY["families"])
    return {
        g: float(result.runs[f"u3_participation_{g}"].mean()) for g in ("all", "arope", "non_arope")
    }


@pytest.mark.validation
def test_the_fit_recovers_the_parameters_a_city_was_built_with(tmp_path):
    figures = observed()
    targets = "\n".join(
        f'[[target]]\nname = "{g}"\nmeasure = "u3_participation_{g}"\nvalue = {v:.4f}\n'
        f'discrepancy_sd = 0.01\nsource = "the city at known parameters, seed 777"\n'
        for g, v in figures.items()
    )
    text = f"""
name = "recovery"
scenario = "{BASE}"
replications = 2
seed = 5
budget = 48
recheck_replications = 2
[run]
families = {CITY["families"]}
burn_in_weeks = {CITY["burn_in_weeks"]}
weeks = {CITY["weeks"]}
[parameters]
"population.formal_care_preference_employed" = {{ low = 0.4, high = 1.0 }}
"population.formal_care_preference_not_employed" = {{ low = 0.05, high = 0.9 }}
{targets}
"""
    path = tmp_path / "recovery.toml"
    path.write_text(text)
    with ThreadPoolExecutor(1) as pool:
        fit = calibrate(load_targets(path), tmp_path / "out", pool, "threads", 1)
    for key, truth in TRUTH.items():
        assert abs(fit.chosen[key] - truth) <= TOLERANCE, (key, fit.chosen[key], truth)
        low, high = fit.posterior[key].quantile([0.02, 0.98])
        assert low <= truth <= high, (key, low, high, truth)
