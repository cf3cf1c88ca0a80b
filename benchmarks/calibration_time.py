"""A full calibration of the default city on 2 workers: runs per minute and wall time.

    .venv/bin/python benchmarks/calibration_time.py [--quick]

Runs `famsim calibrate scenarios/base.toml --targets validation/targets/flanders.toml` from
scratch into a temporary folder (12,000 families, full 156-week burn-in, 52 measured weeks;
the file's budget of 240 runs plus 10 re-check runs). --quick uses a 2,000-family city and
a budget of 16 runs, to check the harness. The last line:
    runs=<n> seconds=<f> runs_per_min=<f> minutes=<f>
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ROOT / "validation" / "targets" / "flanders.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        targets = TARGETS
        extra: list[str] = []
        if args.quick:
            text = TARGETS.read_text().replace(
                'scenario = "../../scenarios/base.toml"', f'scenario = "{ROOT}/scenarios/base.toml"'
            )
            text = text.replace("\n[parameters]", "\n[run]\nfamilies = 2000\n\n[parameters]", 1)
            targets = Path(tmp) / "quick.toml"
            targets.write_text(text)
            extra = ["--budget", "16"]
        out = Path(tmp) / "out"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "sim", "calibrate", "scenarios/base.toml", "--targets",
             str(targets), "--out", str(out), "--workers", "2", "--quiet", *extra],
            cwd=ROOT, check=True,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        runs = json.loads((out / "calibration.json").read_text())["runs_total"]
    print(
        f"runs={runs} seconds={seconds:.1f} runs_per_min={60 * runs / seconds:.1f} "
        f"minutes={seconds / 60:.1f}"
    )


if __name__ == "__main__":
    main()
