"""Running replications of a scenario and collecting their results (the `famsim run` job).

Replication seeds come from numpy's SeedSequence spawned from the scenario seed, so the
same seed gives the same families and draws in every scenario (common random numbers).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.core.errors import MODEL_FAILURES, ScenarioError
from sim.core.provenance import git_state, package_versions
from sim.engine.model import FamilyAccessModel
from sim.measure.metrics import metric_columns
from sim.measure.stats import summary_table
from sim.outputs.progress import progress_bar
from sim.scenario.schema import Scenario, scenario_from_dict
from sim.world.build import build_world, prepare


def replication_seed(seed: int, replication: int) -> int:
    """The seed of replication r: SeedSequence(seed) spawned child r, as a 63-bit int."""
    state = np.random.SeedSequence(seed, spawn_key=(replication,)).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def scale_scenario(scenario: Scenario, families: int) -> Scenario:
    """Scale the city per capita: families, grid area and neighbourhoods, the staff (outreach
    workers, brokers), hubs and any outlay target grow with the population; places per child
    and all per-family settings stay the same."""
    base = scenario.city.families
    if families == base:
        return scenario
    factor = families / base
    side = math.sqrt(factor)
    city = scenario.city.model_copy(
        update={
            "families": families,
            "width": max(4, int(round(scenario.city.width * side))),
            "height": max(4, int(round(scenario.city.height * side))),
            "neighbourhoods": max(1, int(round(scenario.city.neighbourhoods * factor))),
        }
    )
    info = scenario.information
    information = info.model_copy(
        update={
            "outreach_workers": info.outreach_workers * factor,
            "brokers": {lang: count * factor for lang, count in info.brokers.items()},
        }
    )
    hubs = scenario.hubs
    # a number of hubs grows with the population; one per neighbourhood does by itself;
    # explicit hub cells move with the grid
    hub_count = hubs.count
    if isinstance(hubs.count, int) and hubs.count:
        hub_count = max(1, int(round(hubs.count * factor)))
    hub_sites = [
        [min(city.width - 1, int(x * side)), min(city.height - 1, int(y * side))]
        for x, y in hubs.sites
    ]
    policy = scenario.policy.model_copy(
        update={"flexible_eur_week": round(scenario.policy.flexible_eur_week * factor, 2)}
    )
    budget = scenario.budget
    if budget.target_outlay_eur_week is not None:
        target = round(budget.target_outlay_eur_week * factor, 2)
        budget = budget.model_copy(update={"target_outlay_eur_week": target})
    return scenario.model_copy(
        update={
            "city": city,
            "information": information,
            "hubs": hubs.model_copy(update={"count": hub_count, "sites": hub_sites}),
            "budget": budget,
            "policy": policy,
        }
    )


def with_run_settings(
    scenario: Scenario,
    weeks: int | None = None,
    burn_in: int | None = None,
    seed: int | None = None,
    replications: int | None = None,
    families: int | None = None,
    origin: str = "<command line>",
    by: str = "command line",
) -> Scenario:
    """Apply command-line settings, validated like the scenario file itself; a value out of
    range is blamed on its option (`by` = "command line") or keyword (`by` = "sim.run")."""
    if families is not None and scenario.city.source == "file":
        # a planner's city takes its size from its cells
        option = "--families" if by == "command line" else "families"
        raise ScenarioError(
            origin,
            "city.families",
            f"{option} {families} cannot rescale a city read from files (city.source = "
            f"'file'); allowed: leave {option} out, or change the cells file",
        )
    data = scenario.resolved_dict()
    given = {}
    for key, value in (
        ("weeks", weeks),
        ("burn_in_weeks", burn_in),
        ("seed", seed),
        ("replications", replications),
    ):
        if value is not None:
            data["run"][key] = value
            given[f"run.{key}"] = value
    if families is not None:
        given["city.families"] = families
    with _blamed_on_settings(given, by):
        if families is not None:
            data["city"]["families"] = families
            scenario_from_dict(data, origin)  # range checks on the requested size
            data["city"]["families"] = scenario.city.families
            return scenario_from_dict(
                scale_scenario(scenario_from_dict(data, origin), families).resolved_dict(), origin
            )
        return scenario_from_dict(data, origin)


# the command-line option that sets each run setting (errors name the option, not the file)
SETTING_OPTIONS: dict[str, str] = {
    "run.weeks": "--weeks",
    "run.burn_in_weeks": "--burn-in",
    "run.seed": "--seed",
    "run.replications": "--reps",
    "city.families": "--families",
}


# ... and the keyword of sim.run / sim.compare
SETTING_KEYWORDS: dict[str, str] = {
    "run.weeks": "weeks",
    "run.burn_in_weeks": "burn_in",
    "run.seed": "seed",
    "run.replications": "reps",
    "city.families": "families",
}


@contextmanager
def _blamed_on_settings(given: dict[str, Any], by: str) -> Iterator[None]:
    """A value given on the command line (or as a keyword) that fails validation is the
    setting's fault, not the scenario file's."""
    try:
        yield
    except ScenarioError as exc:
        if exc.key_path in given:
            names = SETTING_OPTIONS if by == "command line" else SETTING_KEYWORDS
            raise ScenarioError(f"<{by}>", names[exc.key_path], exc.message) from None
        raise


def checked(scenario: Scenario, origin: str = "<scenario>") -> Scenario:
    """Re-validate a scenario at an entry point of the Python API. One made with
    `model_copy(update=...)` skips the schema, so a bad value (weeks = -5, a probability of
    5, NaN) would otherwise run and give NaN instead of being refused with a ScenarioError."""
    if not isinstance(scenario, Scenario):
        raise ScenarioError(
            origin, "", f"expected a Scenario (sim.load_scenario), got {type(scenario).__name__}"
        )
    data = scenario.model_dump()  # python mode: NaN and infinities stay visible to the schema
    data.pop("extends", None)
    return scenario_from_dict(data, origin)


@dataclass
class RunResult:
    """A scenario's replications: `runs` (one row per replication, every measure),
    `timeseries` (weekly aggregates, burn-in included), the manifest (resolved scenario,
    seeds, versions) and, per replication, one row per service site, neighbourhood and
    cell (docs/ODD.md §7.13)."""

    scenario: Scenario
    runs: pd.DataFrame
    timeseries: pd.DataFrame
    manifest: dict[str, Any]
    counters: list[dict[str, int]] = field(default_factory=list)
    sites: pd.DataFrame = field(default_factory=pd.DataFrame)
    areas: pd.DataFrame = field(default_factory=pd.DataFrame)
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)

    def summary(self, measures: list[str] | None = None) -> pd.DataFrame:
        """One row per measure: mean over replications, 95 % t-interval (`low`, `high`; NaN
        with one replication) and the number of replications `n` with a value. Units are
        the measures' own (shares in 0-1, counts, EUR a week: docs/ODD.md "Measures")."""
        return summary_table(self.runs, measures)

    def plot(self, kind: str = "participation_over_time", path: str | Path | None = None):
        """A standard figure: participation_over_time, unmet_need_map, quintile_gradient or
        barrier_attribution. Returns the matplotlib figure, or saves it to `path` (PNG)."""
        from sim.outputs.results import run_figure

        return run_figure(self, kind, Path(path) if path is not None else None)

    def write(self, out: str | Path) -> list[Path]:
        """Write the results folder (manifest.json, runs.parquet, timeseries.parquet,
        figures/, report.md), replacing `out` whole; returns the files written."""
        from sim.outputs.results import write_run

        return write_run(self, Path(out))


@dataclass
class Replication:
    """What one replication returns (plain data, so it can cross process boundaries)."""

    scenario_name: str
    replication: int
    seed: int
    status: dict[str, Any]
    row: dict[str, Any] | None = None
    timeseries: pd.DataFrame | None = None
    counters: dict[str, int] | None = None
    sites: pd.DataFrame | None = None
    areas: pd.DataFrame | None = None
    cells: pd.DataFrame | None = None


# cities from this size on say how their world build goes (it takes seconds to minutes)
PROGRESS_FAMILIES = 200_000


def _say(line: str) -> None:
    print(f"famsim: {line}", file=sys.stderr, flush=True)


def run_one(scenario: Scenario, seed: int, progress: bool = False) -> FamilyAccessModel:
    """Build and run one replication: burn-in then the measured window. With `progress`,
    each part of the world build is said on stderr as it is done."""
    say = None
    if progress:
        _say(f"building the world of {scenario.city.families:,} families ...")

        def say(part: str) -> None:
            _say(f"  built: {part}")

    world = build_world(scenario, seed, progress=say)
    model = FamilyAccessModel(
        scenario, rng=seed, world=world, materialise_agents=False, take_world=True
    )
    model.run_for(scenario.run.burn_in_weeks + scenario.run.weeks)
    model.update_unmet_layer()
    return model


def run_replication(scenario: Scenario, replication: int, progress: bool = False) -> Replication:
    """One replication as a task; a numerical failure is recorded as data, not raised.
    `progress`: say how the world build goes (run_one)."""
    seed = replication_seed(scenario.run.seed, replication)
    started = time.perf_counter()
    try:
        model = run_one(scenario, seed, progress)
    except MODEL_FAILURES as exc:
        status = {
            "replication": replication,
            "seed": seed,
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}",
        }
        return Replication(scenario.name, replication, seed, status)
    metrics = model.metrics()
    row = {
        "scenario": scenario.name,
        "replication": replication,
        "seed": seed,
        **_parameters(scenario, model.public_childcare_places),
        **metrics,
    }
    ts = model.datacollector.get_model_vars_dataframe().reset_index(drop=True)
    ts.insert(0, "replication", replication)
    ts.insert(0, "scenario", scenario.name)
    status = {
        "replication": replication,
        "seed": seed,
        "status": "ok",
        "seconds": round(time.perf_counter() - started, 3),
    }
    return Replication(
        scenario.name,
        replication,
        seed,
        status,
        row,
        ts,
        dict(model.engine.counters),
        _tagged(model.engine.accumulator.site_table(), scenario.name, replication),
        _tagged(model.engine.accumulator.area_table(), scenario.name, replication),
        _tagged(model.engine.accumulator.cell_table(), scenario.name, replication),
    )


def _tagged(table: pd.DataFrame, scenario_name: str, replication: int) -> pd.DataFrame:
    table.insert(0, "replication", replication)
    table.insert(0, "scenario", scenario_name)
    return table


def execute(
    tasks: list[tuple[Scenario, int]], workers: int, quiet: bool, label: str
) -> list[Replication]:
    """Run (scenario, replication) tasks, in a process pool when workers > 1; results come
    back in task order whatever the completion order."""
    bar = progress_bar(len(tasks), label, quiet)
    results: list[Replication | None] = [None] * len(tasks)
    # a large city's first world build is said part by part (the others take as long)
    progress = [
        not quiet and i == 0 and scenario.city.families >= PROGRESS_FAMILIES
        for i, (scenario, _) in enumerate(tasks)
    ]
    if workers <= 1 or len(tasks) == 1:
        for i, (scenario, r) in enumerate(tasks):
            results[i] = run_replication(scenario, r, progress[i])
            if bar:
                bar.update(1)
    else:
        from concurrent.futures import as_completed

        with process_pool(workers) as pool:
            futures = {
                pool.submit(run_replication, scenario, r, progress[i]): i
                for i, (scenario, r) in enumerate(tasks)
            }
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if bar:
                    bar.update(1)
    if bar:
        bar.close()
    return [r for r in results if r is not None]


def _quiet_worker() -> None:
    """Workers leave SIGINT to the parent (Ctrl-C reaches the whole process group) and die
    on SIGTERM, whatever handler they inherited: the parent stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def process_pool(workers: int, start_method: str | None = None) -> Iterator[ProcessPoolExecutor]:
    """A process pool whose workers are stopped, not waited for, when the block is left by an
    exception (Ctrl-C, SIGTERM, an error): no worker outlives its job. `start_method` is a
    multiprocessing start method (default: the platform's)."""
    context = multiprocessing.get_context(start_method) if start_method else None
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_quiet_worker)
    finished = False
    try:
        yield pool
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            _stop_workers(pool)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Stop a pool's workers mid-task (after an interrupt or an error in the parent)."""
    # the executor keeps its worker processes in a private mapping; it has no public way to
    # stop them mid-task
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=3)
        if process.is_alive():
            process.kill()


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def collect(scenario: Scenario, replications: list[Replication]) -> RunResult:
    """Assemble one scenario's replications into tables and a manifest."""
    ok = [r for r in replications if r.row is not None]
    columns = ["scenario", "replication", "seed", *_parameters(scenario), *metric_columns()]
    runs = pd.DataFrame([r.row for r in ok], columns=columns)
    timeseries = pd.concat([r.timeseries for r in ok], ignore_index=True) if ok else pd.DataFrame()

    def stacked(tables: list[pd.DataFrame | None]) -> pd.DataFrame:
        present = [t for t in tables if t is not None]
        return pd.concat(present, ignore_index=True) if present else pd.DataFrame()

    return RunResult(
        scenario,
        runs,
        timeseries,
        manifest(scenario, [r.status for r in replications]),
        [r.counters for r in ok],
        stacked([r.sites for r in ok]),
        stacked([r.areas for r in ok]),
        stacked([r.cells for r in ok]),
    )


def run(
    scenario: Scenario,
    *,
    reps: int | None = None,
    weeks: int | None = None,
    burn_in: int | None = None,
    families: int | None = None,
    seed: int | None = None,
    workers: int = 1,
    quiet: bool = True,
    origin: str = "<scenario>",
) -> RunResult:
    """Run every replication of a scenario, as `famsim run` does.

    reps: replications (default run.replications); weeks: measured weeks (run.weeks);
    burn_in: weeks simulated before measuring (run.burn_in_weeks); families: scale a
    synthetic city per capita to this many families; seed: the run seed (replication seeds
    are spawned from it); workers: processes running replications in parallel (results do
    not depend on it); quiet: no progress bar. A failed replication (errors.MODEL_FAILURES)
    is recorded in the manifest, not raised; bad input raises ScenarioError."""
    scenario = checked(scenario, origin)
    if any(v is not None for v in (reps, weeks, burn_in, families, seed)):
        scenario = with_run_settings(
            scenario, weeks, burn_in, seed, reps, families, origin, by="sim.run"
        )
    prepare(scenario, origin)
    tasks = [(scenario, r) for r in range(scenario.run.replications)]
    return collect(scenario, execute(tasks, workers, quiet, scenario.name))


def _parameters(scenario: Scenario, public_childcare_places: int | None = None) -> dict[str, Any]:
    """A few identifying parameters per row (the full scenario is in the manifest), and the
    public childcare places the replication's services have (what the budget solver chose)."""
    return {
        "scenario_hash": scenario.content_hash()[:16],
        "families": scenario.city.families,
        "weeks": scenario.run.weeks,
        "burn_in_weeks": scenario.run.burn_in_weeks,
        "public_childcare_places": public_childcare_places,
    }


def manifest(scenario: Scenario, statuses: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "scenario": scenario.resolved_dict(),
        "scenario_hash": scenario.content_hash(),
        "seed": scenario.run.seed,
        "replication_seeds": [s["seed"] for s in statuses],
        "replications": statuses,
        # sha256 of the planner's city files (the scenario records their paths)
        "file_digests": scenario.file_digests(),
        "versions": package_versions(),
        "git": git_state(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
