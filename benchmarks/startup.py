"""Start-up time of the command line: how long a person waits for `famsim --help`,
`famsim --version` and `famsim validate` (median wall time of 7 runs after one warm-up, each
a new process, as a shell starts it).

    .venv/bin/python benchmarks/startup.py

Prints one line per command, `command=<name> median_s=<s> min_s=<s>`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "help": ["--help"],
    "version": ["--version"],
    "validate": ["validate", "scenarios/base.toml", "--quiet"],
}
REPEATS = 7


def wall_seconds(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sim", *args], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    for name, args in COMMANDS.items():
        wall_seconds(args)  # warm-up: file-system caches and compiled bytecode
        times = [wall_seconds(args) for _ in range(REPEATS)]
        print(f"command={name} median_s={statistics.median(times):.3f} min_s={min(times):.3f}")


if __name__ == "__main__":
    main()
