"""Sweep throughput on 1 and 2 worker processes (`famsim sweep`, process pool).

    .venv/bin/python benchmarks/sweep_throughput.py [--runs 8] [--families 100000] [--quick]

The same sweep (a grid over one parameter, replications with common random numbers) runs
twice from scratch, with --workers 1 and --workers 2, with *_NUM_THREADS=1 and
FAMSIM_BUILD_THREADS=1, so each worker uses one core (its world builds included). Runs last at least 10 s each (the script checks and says so). The last line:
    workers1_runs_per_min=<f> workers2_runs_per_min=<f> ratio=<f> min_run_s=<f>
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run_all import THREADS  # the same one-thread settings as every benchmark

from sim.world.population import BUILD_THREADS_VARIABLE

ROOT = Path(__file__).resolve().parent.parent


def sweep_file(folder: Path, runs: int, families: int, weeks: int, burn_in: int) -> Path:
    values = ", ".join(f"{0.01 + 0.01 * i:.2f}" for i in range(runs // 2))
    path = folder / "throughput.toml"
    path.write_text(
        f'name = "throughput"\nbase = "{(ROOT / "scenarios" / "base.toml").as_posix()}"\n'
        "replications = 2\nseed = 99\nchunk_size = 2\n"
        f"[run]\nfamilies = {families}\nburn_in_weeks = {burn_in}\nweeks = {weeks}\n"
        '[sampler]\nkind = "grid"\n'
        f'[parameters]\n"information.wom_prob_per_tie_week" = [{values}]\n'
    )
    return path


def timed_sweep(path: Path, out: Path, workers: int) -> float:
    # one thread per worker, the world build's own thread pool included
    env = {**os.environ, **THREADS, BUILD_THREADS_VARIABLE: "1"}
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sim",
            "sweep",
            str(path),
            "--out",
            str(out),
            "--quiet",
            "--workers",
            str(workers),
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="runs per sweep (even)")
    parser.add_argument("--families", type=int, default=100_000)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--burn-in", type=int, default=156)
    parser.add_argument("--quick", action="store_true", help="tiny runs, to test the harness")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.families, args.weeks, args.burn_in = 4, 1200, 8, 8
    from sim.studies.sweep import results

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = sweep_file(folder, args.runs, args.families, args.weeks, args.burn_in)
        seconds = {w: timed_sweep(path, folder / f"w{w}", w) for w in (1, 2)}
        runs = results(folder / "w1")
        per_run = runs["seconds"].astype(float)
        same = runs.drop(columns=["session", "seconds", "worker_pid"]).equals(
            results(folder / "w2").drop(columns=["session", "seconds", "worker_pid"])
        )
    rate = {w: 60.0 * len(runs) / s for w, s in seconds.items()}
    print(
        f"runs={len(runs)} families={args.families} weeks={args.burn_in}+{args.weeks} "
        f"run_s_mean={per_run.mean():.1f} wall_1={seconds[1]:.1f}s wall_2={seconds[2]:.1f}s "
        f"identical_results={'true' if same else 'false'}"
    )
    print(
        f"workers1_runs_per_min={rate[1]:.2f} workers2_runs_per_min={rate[2]:.2f} "
        f"ratio={rate[2] / rate[1]:.2f} min_run_s={per_run.min():.1f}"
    )


if __name__ == "__main__":
    main()
