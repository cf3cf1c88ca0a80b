"""The validation patterns file (issue 15): its checks, and the fast subset of its patterns
on the shipped defaults (validation tests: figures the model was not fitted to)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import famsim_run

from sim.core.errors import ScenarioError
from sim.studies.validation import load_patterns

ROOT = Path(__file__).resolve().parent.parent
PATTERNS = ROOT / "validation" / "patterns.toml"


@pytest.mark.verification
def test_a_pattern_that_is_a_calibration_target_is_refused(tmp_path):
    text = PATTERNS.read_text().replace("../scenarios/", f"{ROOT}/scenarios/")
    text = text.replace('"targets/', f'"{ROOT}/validation/targets/')
    text += f"""
[[pattern]]
name = "requests without an offer"
scenario = "{ROOT}/scenarios/base.toml"
measure = "requests_without_offer_share"
band = [0.3, 0.45]
source = "C20"
"""
    path = tmp_path / "patterns.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match="is a calibration target"):
        load_patterns(path)


@pytest.mark.verification
def test_every_shipped_pattern_names_its_source_and_a_band():
    specs = load_patterns(PATTERNS)
    assert len(specs) >= 6 and any(s.fast for s in specs)
    for s in specs:
        assert s.source and s.low < s.high


@pytest.mark.validation
def test_the_fast_patterns_pass_on_the_shipped_defaults():
    done = famsim_run("patterns", "--fast", "--reps", "3", "--quiet")
    lines = done.stdout.strip().splitlines()[:-1]
    assert len(lines) >= 4, done.stdout + done.stderr
    verdicts = {line.split("  ", 1)[1].split(" [")[0]: line.split()[0] for line in lines}
    assert set(verdicts.values()) == {"pass"}, done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
