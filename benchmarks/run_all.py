"""Run every benchmark and write benchmarks/RESULTS.md (what `make bench` does).

    .venv/bin/python benchmarks/run_all.py [--quick]

Each benchmark runs in its own process (so peak memory is its own) with *_NUM_THREADS=1.
RESULTS.md gets the machine, the measured lines, a table against the targets, a profile of
where the time goes (pyinstrument, aggregated by function), and the hand-written analysis
kept in benchmarks/ANALYSIS.md. --quick runs small sizes only, to check the harness.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
THREADS = {
    name: "1"
    for name in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    )
}
SCALE_SIZES = (12_000, 60_000, 250_000, 1_000_000)
# functions whose inclusive time the profile section reports, in this order
PROFILED = (
    ("build_world", "world build"),
    ("initial_families", "  families and their traits"),
    ("build_ties", "    social ties"),
    ("build_services", "  services"),
    ("build_candidates", "  candidate lists"),
    ("Engine.__init__", "engine set-up (barrier-log targets)"),
    ("Engine.step", "weekly steps"),
    ("Engine.decide", "  phase A: decide"),
    ("Engine.tie_users", "    tie user counts"),
    ("channel_events", "    information channels (kernel)"),
    ("applications", "    applications (kernel)"),
    ("exits", "    drop-outs and give-ups (kernel)"),
    ("preferred_blocks", "    barrier log (kernel)"),
    ("Engine.information", "  phase B: awareness"),
    ("Engine.settle", "  exits and new applications"),
    ("settle_exits_and_applications", "    (kernel)"),
    ("Engine.allocate", "  allocation"),
    ("offer_places", "    the desks' offers (kernel)"),
    ("Engine.experience", "  experience"),
    ("Engine.meet", "  attendance ties"),
    ("Engine.measure", "  measurement"),
    ("_record_week", "    the window's sums (kernel)"),
    ("WindowAccumulator.snapshot", "    weekly snapshot"),
    ("Engine.life_course", "  life course"),
    ("Engine.end_episodes", "    help-desk episodes"),
    ("Engine._renew", "    new families in renewed slots"),
    ("Engine._redraw_ties", "      their ties"),
)
# compiled kernels the engine calls through a module attribute: the profile wraps each in a
# Python function of the same name, so the sampling profiler sees them as frames
KERNELS = (
    ("sim.engine.week", "channel_events"),
    ("sim.rules.decisions", "applications"),
    ("sim.rules.decisions", "exits"),
    ("sim.rules.decisions", "preferred_blocks"),
    ("sim.rules.decisions", "settle_exits_and_applications"),
    ("sim.engine.week", "offer_places"),
    ("sim.measure.metrics", "_record_week"),
)


def run(args: list[str], timeout: float = 3600) -> tuple[str, float]:
    env = {**os.environ, **THREADS}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark failed: {' '.join(args)}\n{done.stderr[-2000:]}")
    return done.stdout, time.perf_counter() - started


def fields(line: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", line))


def machine() -> list[str]:
    import numpy as np
    import scipy

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{mem_kb / 1024**2:.1f} GiB"
    except OSError:
        memory = "unknown"
    blas = "unknown"
    try:
        config = np.show_config(mode="dicts")
        info = config["Build Dependencies"]["blas"]
        blas = f"{info.get('name')} {info.get('version', '')}".strip()
    except (KeyError, TypeError):
        pass
    return [
        f"- CPU: {model}, {os.cpu_count()} logical cores ({platform.machine()})",
        f"- Memory: {memory}",
        f"- OS: {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, numpy {np.__version__} (BLAS: {blas}), "
        f"scipy {scipy.__version__}",
        f"- Threads: {', '.join(f'{k}=1' for k in THREADS)}; the world build "
        "makes candidate lists and ties on two threads",
    ]


def profile(families: int, weeks: int) -> list[tuple[str, float]]:
    """Inclusive seconds per reported function over one build and `weeks` steps."""
    code = f"""
import importlib, json
from pyinstrument import Profiler
from sim.engine.model import FamilyAccessModel
from sim.studies.runner import replication_seed, with_run_settings
from sim.scenario.schema import load_scenario
from sim.engine.week import Engine
from sim.world.build import build_world
for module_name, name in {KERNELS!r}:
    module = importlib.import_module(module_name)
    namespace = {{"kernel": getattr(module, name)}}
    exec(f"def {{name}}(*args):\\n    return kernel(*args)", namespace)
    setattr(module, name, namespace[name])
# load the compiled kernels first, so the profile shows the engine, not the compiler
tiny = with_run_settings(load_scenario("scenarios/base.toml"), weeks=2, burn_in=1, families=400)
FamilyAccessModel(tiny, rng=1).run_for(3)
scenario = with_run_settings(load_scenario("scenarios/base.toml"), weeks={weeks}, burn_in=0,
                             families={families})
profiler = Profiler(interval=0.005)
profiler.start()
engine = Engine(build_world(scenario, replication_seed(scenario.run.seed, 0)))
for _ in range({weeks}):
    engine.step()
profiler.stop()
totals = {{}}
def walk(frame, active):
    name = frame.function
    if frame.class_name:
        name = frame.class_name + "." + name
    if name not in active:
        totals[name] = totals.get(name, 0.0) + frame.time
    for child in frame.children:
        walk(child, active | {{name}})
walk(profiler.last_session.root_frame(), frozenset())
print(json.dumps({{"total": profiler.last_session.duration, "by": totals}}))
"""
    import json

    out, _ = run(["-c", code])
    data = json.loads(out.strip().splitlines()[-1])
    rows = [("total (build + weeks)", data["total"])]
    rows += [(label, data["by"].get(name, 0.0)) for name, label in PROFILED]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to test the harness")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    sizes = (3_000, 12_000) if args.quick else SCALE_SIZES
    started = time.strftime("%Y-%m-%d %H:%M %Z")

    print("speedup ...", flush=True)
    speed_families, speed_weeks = (1000, 4) if args.quick else (5000, 13)
    out, _ = run(
        ["benchmarks/speedup.py", "--families", str(speed_families), "--weeks", str(speed_weeks)]
    )
    speed_lines = out.strip().splitlines()[-2:]
    speed = fields(speed_lines[-1])

    scale_rows = []
    for n in sizes:
        print(f"scale {n:,} ...", flush=True)
        out, _ = run(["benchmarks/scale.py", "--families", str(n), "--weeks", "52"])
        detail, last = out.strip().splitlines()[-2:]
        scale_rows.append((fields(last), fields(detail)))

    sweep_line = None
    if (HERE / "sweep_throughput.py").exists():
        print("sweep throughput ...", flush=True)
        out, _ = run(["benchmarks/sweep_throughput.py", *(["--quick"] if args.quick else [])])
        sweep_lines = out.strip().splitlines()[-2:]
        sweep_line = sweep_lines[-1]

    print("calibration ...", flush=True)
    out, _ = run(["benchmarks/calibration_time.py", *(["--quick"] if args.quick else [])])
    calibration_line = out.strip().splitlines()[-1]

    print("hub placement ...", flush=True)
    out, _ = run(["benchmarks/place_hubs.py", *(["--quick"] if args.quick else [])])
    placement_lines = out.strip().splitlines()

    print("web app frames ...", flush=True)
    out, _ = run(["benchmarks/app_frame.py", *(["--quick"] if args.quick else [])])
    app_line = out.strip().splitlines()[-1]

    print("start-up ...", flush=True)
    out, _ = run(["benchmarks/startup.py"])
    startup_lines = out.strip().splitlines()
    startup = {fields(line)["command"]: fields(line) for line in startup_lines}

    print("profile ...", flush=True)
    prof_families, prof_weeks = (3_000, 4) if args.quick else (250_000, 26)
    prof = profile(prof_families, prof_weeks)

    lines = ["# Benchmarks", ""]
    lines += [
        f"Written by `benchmarks/run_all.py` (`make bench`) on {started}"
        + (" with --quick (harness check, not the real sizes)." if args.quick else "."),
        "",
        "## Machine",
        "",
        *machine(),
        "",
        "## Fast engine against the per-agent reference",
        "",
        f"`benchmarks/speedup.py --families {speed_families} --weeks {speed_weeks}` "
        "(proportionate_one_roof, weekly steps only, best of 3):",
        "",
        "```",
        *speed_lines,
        "```",
        "",
        "## Scale (base scenario scaled per capita, 52 weeks, world build included)",
        "",
        "| families | grid | services | build s | weeks s | ms/week | total s "
        "| µs per family-week | peak RSS GB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for last, detail in scale_rows:
        lines.append(
            f"| {int(last['families']):,} | {detail['grid']} | {detail['services']} "
            f"| {detail['build_s']} | {detail['weeks_s']} | {detail['ms_per_week']} "
            f"| {last['seconds']} | {last['us_per_family_week']} | {last['peak_rss_gb']} |"
        )
    lines += ["", "Last lines as printed:", "", "```"]
    lines += [" ".join(f"{k}={v}" for k, v in last.items()) for last, _ in scale_rows]
    lines += ["```", ""]
    if sweep_line:
        lines += [
            "## Sweep throughput",
            "",
            "`benchmarks/sweep_throughput.py` (`famsim sweep` on a process pool, 1 then 2 "
            "workers, one thread each):",
            "",
            "```",
            *sweep_lines,
            "```",
            "",
        ]

    lines += [
        "## Calibration",
        "",
        "`benchmarks/calibration_time.py` (`famsim calibrate` of the default city on Flanders' "
        "targets, from scratch, 2 workers):",
        "",
        "```",
        calibration_line,
        "```",
        "",
        "## Hub placement",
        "",
        "`benchmarks/place_hubs.py` (`famsim place-hubs scenarios/base.toml --hubs 3 --method "
        "all --reps 3`, 2 workers; one line per method, then the totals):",
        "",
        "```",
        *placement_lines,
        "```",
        "",
        "## Web app",
        "",
        "`benchmarks/app_frame.py` (`famsim app scenarios/proportionate.toml` on the default "
        "city in headless Debian chromium: Step clicked 10 times, each frame timed in the page "
        "from the click until the map and the three plots show the new week; then the same "
        "step and redraws in one process):",
        "",
        "```",
        app_line,
        "```",
        "",
        "## Start-up",
        "",
        "`benchmarks/startup.py` (a new process each time, median of 7 after a warm-up):",
        "",
        "```",
        *startup_lines,
        "```",
        "",
    ]

    by_size = {int(last["families"]): last for last, _ in scale_rows}
    lines += ["## Targets", "", "| target | measured | met |", "|---|---|---|"]
    lines.append(
        f"| speedup over the reference >= 100 at 5,000 families | "
        f"{speed.get('speedup_vs_reference')} (identical={speed.get('identical')}) | "
        f"{'yes' if float(speed.get('speedup_vs_reference', 0)) >= 100 else 'no'} |"
    )
    if 1_000_000 in by_size:
        big = by_size[1_000_000]
        seconds, rss = float(big["seconds"]), float(big["peak_rss_gb"])
        lines.append(
            f"| 1,000,000 families x 52 weeks < 120 s | {seconds:.1f} s | "
            f"{'yes' if seconds < 120 else f'no ({seconds / 120:.2f}x the target)'} |"
        )
        lines.append(
            f"| ... with peak memory < 6 GB | {rss:.2f} GB | {'yes' if rss < 6 else 'no'} |"
        )
        if 60_000 in by_size:
            ratio = float(big["us_per_family_week"]) / float(by_size[60_000]["us_per_family_week"])
            lines.append(
                f"| cost per family-week at 1M <= 1.5x that at 60k | {ratio:.2f}x | "
                f"{'yes' if ratio <= 1.5 else 'no'} |"
            )
    if sweep_line:
        sweep = fields(sweep_line)
        shortest = float(sweep.get("min_run_s", 0))
        lines.append(
            f"| sweep: every run at least 10 s | shortest {shortest:.1f} s | "
            f"{'yes' if shortest >= 10 else 'no'} |"
        )
        ratio_text = sweep.get("ratio", "?")
        try:
            met = "yes" if float(ratio_text) >= 1.6 else "no"
        except ValueError:
            met = "?"
        lines.append(
            f"| sweep: 2 workers >= 1.6x the runs per minute of 1 | {ratio_text}x | {met} |"
        )
    calibration = fields(calibration_line)
    minutes = float(calibration["minutes"])
    lines.append(
        f"| a full calibration of the default city < 60 min on 2 cores | {minutes:.1f} min "
        f"({calibration['runs_per_min']} runs a minute) | {'yes' if minutes < 60 else 'no'} |"
    )
    placement = fields(placement_lines[-1])
    minutes = float(placement["minutes"])
    lines.append(
        f"| `place-hubs base --hubs 3 --method all --reps 3` < 10 min on 2 cores | "
        f"{minutes:.1f} min ({placement['runs_per_min']} runs a minute; simulated best on the "
        f"same seeds: {placement['simulated_best']}) | {'yes' if minutes < 10 else 'no'} |"
    )
    app = fields(app_line)
    frame = float(app["median_s"])
    lines.append(
        f"| web app: a step plus its redraw on the default city < 1 s | median {frame:.2f} s, "
        f"longest {float(app['max_s']):.2f} s (through Playwright {app['driven_median_s']} s) | "
        f"{'yes' if float(app['max_s']) < 1 else 'no'} |"
    )
    for command in ("help", "validate"):
        seconds = float(startup[command]["median_s"])
        lines.append(
            f"| `famsim {command}` starts in < 0.5 s | {seconds:.2f} s | "
            f"{'yes' if seconds < 0.5 else 'no'} |"
        )
    lines += [
        "",
        f"## Where the time goes ({prof_families:,} families, world build + {prof_weeks} weeks)",
        "",
        "pyinstrument (sampling every 5 ms), inclusive seconds per function, summed over calls:",
        "",
        "| part | seconds | share |",
        "|---|---:|---:|",
    ]
    total = prof[0][1]
    for label, seconds in prof:
        name = label.replace("  ", "&nbsp;&nbsp;")
        lines.append(f"| {name} | {seconds:.2f} | {100 * seconds / total:.0f} % |")
    analysis = HERE / "ANALYSIS.md"
    if analysis.exists():
        lines += ["", analysis.read_text().strip(), ""]
    tmp = args.out.with_name(f"_tmp-{args.out.name}")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
