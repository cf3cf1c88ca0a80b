"""The README's EMA Workbench snippet, run as written against the installed Workbench
(verification of a documented client path). The Workbench is the `famsim[ema]` extra, which
`make test` installs: if it is missing, this module fails to import (it does not skip)."""

from __future__ import annotations

import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ema_workbench  # noqa: F401 - a missing Workbench fails here, in CI too
import numpy as np
import pandas as pd
import pytest

from sim.studies.sweep import SweepOutcomeWarning, load_sweep, run_sweep, to_ema

pytestmark = pytest.mark.verification

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

SWEEP = """name = "ema"
base = "{base}"
replications = 2
seed = 11
chunk_size = 4
[run]
families = 1500
burn_in_weeks = 30
weeks = 8
[sampler]
kind = "grid"
[parameters]
"information.outreach_workers" = [0.0, 3.0, 6.0]
"provision.childcare.fee.flat_eur_week" = [0.0, 60.0]
"""


def readme_snippet() -> str:
    """The README's Python block that uses ema_workbench."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    (snippet,) = [b for b in blocks if "ema_workbench" in b]
    return snippet


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ema")
    path = folder / "ema.toml"
    path.write_text(SWEEP.format(base=(ROOT / "scenarios" / "universal.toml").as_posix()))
    out = folder / "out"
    with ThreadPoolExecutor(max_workers=2) as pool:
        run_sweep(load_sweep(path), out, pool, "threads", 2)
    return out


def test_the_readme_ema_snippet_runs_against_the_installed_workbench(sweep_folder, capsys):
    snippet = readme_snippet()
    assert '"results/sweeps/outreach_vs_fees"' in snippet
    code = snippet.replace('"results/sweeps/outreach_vs_fees"', repr(str(sweep_folder)))
    scope: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SweepOutcomeWarning)
        exec(compile(code, str(README), "exec"), scope)  # noqa: S102 - the documented snippet
    printed = capsys.readouterr().out
    assert "information.outreach_workers" in printed  # the feature scores name the levers
    assert scope["box"] is not None


def test_to_ema_leaves_out_outcomes_without_a_value_in_every_run_and_says_so(sweep_folder):
    """An outcome with no value in any run (as the take-up of a group that no run has) once
    reached feature scoring, which then failed."""
    parts = sorted((sweep_folder / "runs").glob("part-*.parquet"))
    originals = {p: p.read_bytes() for p in parts}
    try:
        for p in parts:
            frame = pd.read_parquet(p)
            frame["u3_participation_q1"] = np.nan
            frame.to_parquet(p, index=False)
        with pytest.warns(SweepOutcomeWarning, match=r"u3_participation_q1 \(12 of 12 runs\)"):
            experiments, outcomes = to_ema(sweep_folder)
    finally:
        for p, data in originals.items():
            p.write_bytes(data)
    assert "u3_participation_q1" not in outcomes and "u3_participation_arope" in outcomes
    assert all(np.isfinite(v).all() and len(v) == len(experiments) for v in outcomes.values())
