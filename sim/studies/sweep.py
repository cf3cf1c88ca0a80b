"""Scenario sweeps: a design over scenario key paths, replications with common random
numbers, results that survive interruption, any concurrent.futures executor.

A sweep file (TOML) names a base scenario, a sampler and the parameters by their scenario
key paths:

    name = "smoke"
    base = "../base.toml"           # relative to the sweep file
    replications = 2
    seed = 2026                     # replication seeds: SeedSequence(seed) children
    chunk_size = 4                  # runs per results file
    [run]                           # optional: weeks, burn_in_weeks, families
    [sampler]
    kind = "grid"                   # grid | lhs | sobol | morris
    [parameters]
    "information.outreach_workers" = [0.0, 4.0]            # grid: a list of values
    "behaviour.trust_gain_enrolled_week" = { low = 0.0, high = 0.02 }   # samplers

A grid lists whole numbers for a whole-number key (2.5 is refused); the samplers draw real
numbers and round them for such keys, which the manifest's sampler entry notes. Under
[parameters], `run.weeks` and `run.burn_in_weeks` may be swept; the seed and replications are
the sweep's own. A sweep has at most MAX_RUNS runs (design points x replications), counted
from the spec before anything is sampled.

Every run has a stable id: a hash of the design point's scenario content hash, the
replication seed and the model version (git commit and dirty flag). Replication r has the same seed at
every design point, so differences between points are not noise. Only the parent process
writes: results arrive from the executor and are written in chunks of Parquet, each under
a temporary name (`_tmp-...`, which Parquet readers skip) and renamed into place, so an
interrupted sweep resumes without recomputing a committed run. One writer at a time: the
folder is locked for the whole sweep. A part file that cannot be read is set aside
(`*.corrupt`) on resume and its runs run again; readers refuse it, naming it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import sys
import time
import tomllib
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.core.errors import MODEL_FAILURES, ScenarioError
from sim.core.provenance import SWEEP_PACKAGES, git_state, package_versions
from sim.measure.metrics import metric_columns
from sim.outputs.folders import folder_lock
from sim.outputs.progress import progress_bar
from sim.scenario.schema import (
    CITY_FILE_KEYS,
    Scenario,
    load_scenario,
    scenario_from_dict,
    set_at_path,
    suggest,
)
from sim.studies.runner import replication_seed, scale_scenario

SAMPLERS = ("grid", "lhs", "sobol", "morris")
TOP_KEYS = (
    "name",
    "base",
    "replications",
    "seed",
    "chunk_size",
    "run",
    "sampler",
    "parameters",
    "sensitivity",
)
SAMPLER_KEYS = {
    "grid": ("kind",),
    "lhs": ("kind", "samples", "seed"),
    "sobol": ("kind", "samples", "seed"),
    "morris": ("kind", "samples", "levels", "seed"),
}
RUN_KEYS = ("weeks", "burn_in_weeks", "families")
# [run] keys a design may vary: point_scenario applies them. run.seed and run.replications
# are the sweep's own (common random numbers across points), so sweeping them is refused.
SWEPT_RUN_KEYS = ("weeks", "burn_in_weeks")
RUNS_DIR = "runs"
CORRUPT_SUFFIX = ".corrupt"
# The largest sweep (design points x replications) famsim accepts. At about a second per
# run on a small city and two workers, 100,000 runs is more than half a day of computing;
# validating every point and hashing its run ids still takes well under a minute at that
# size. A larger design is a typo (a 2**40 Sobol' base) or wants splitting into sweeps.
MAX_RUNS = 100_000
# A run fails, and is recorded as a failed row, for a named model failure or for a design
# point the model cannot build (e.g. a budget that cannot be balanced). Anything else a run
# raises is a bug and stops the sweep.
RUN_FAILURES: tuple[type[BaseException], ...] = (*MODEL_FAILURES, ScenarioError)


@dataclass(frozen=True)
class Parameter:
    path: str  # scenario key path, dotted
    values: tuple[Any, ...] | None = None  # grid
    low: float | None = None  # samplers
    high: float | None = None
    integer: bool = False  # the scenario field holds whole numbers: sampled values are rounded


@dataclass
class Sweep:
    file: Path
    name: str
    base: Scenario
    replications: int
    seed: int
    chunk_size: int
    sampler: dict[str, Any]
    parameters: list[Parameter]
    sensitivity_metrics: list[str]
    document: dict[str, Any] = field(repr=False, default_factory=dict)
    # the design points, computed once (sampling and validating them is not free)
    _design: list[dict[str, Any]] | None = field(
        init=False, repr=False, compare=False, default=None
    )

    @property
    def kind(self) -> str:
        return str(self.sampler["kind"])

    def content_hash(self) -> str:
        # Which sweep a folder holds: the sweep file and the base scenario's settings, with
        # neither absolute paths (the same sweep in another checkout is the same) nor the
        # contents of its city files. An edited city file leaves the folder this sweep's, and
        # changes the run ids instead (they hash the contents), so resuming re-runs exactly
        # the runs the edit affects.
        base = self.base.resolved_dict()
        base.pop("name", None)
        base.pop("description", None)
        for key in CITY_FILE_KEYS:
            if base["city"].get(key):
                base["city"][key] = key
        doc = {"sweep": self.document, "base": base}
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()

    def problem(self) -> dict[str, Any]:
        """The SALib problem of a sampled sweep."""
        return {
            "num_vars": len(self.parameters),
            "names": [p.path for p in self.parameters],
            "bounds": [[p.low, p.high] for p in self.parameters],
        }


# ----------------------------------------------------------------------------------------
# reading and validating a sweep file


def read_toml(path: Path) -> dict[str, Any]:
    """A study file's TOML (sweep, targets, patterns); a missing, unreadable or invalid file
    is one ScenarioError naming it."""
    origin = str(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(origin, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(origin, "", f"cannot read the file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(origin, "", f"not valid TOML ({exc})") from None


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file; every error is a one-line ScenarioError naming the
    file and the key."""
    path = Path(path)
    origin = str(path)
    data = read_toml(path)
    _known(origin, "", data, TOP_KEYS)
    for key in ("base", "sampler", "parameters"):
        if key not in data:
            raise ScenarioError(origin, key, "missing; a sweep needs base, sampler and parameters")
    name = _typed(origin, "name", data.get("name", path.stem), str, "a name")
    from sim.scenario.schema import NAME_PATTERN

    if not NAME_PATTERN.match(name):
        raise ScenarioError(
            origin, "name", f"value {name!r}; allowed: letters, digits, '_' and '-' (at most 64)"
        )
    base_file = _typed(origin, "base", data["base"], str, "a path to a scenario file")
    base_path = (path.parent / base_file).resolve()
    if not base_path.is_file():
        raise ScenarioError(origin, "base", f"value {base_file!r}: no such scenario file")
    base = load_scenario(base_path)
    run = data.get("run", {})
    if not isinstance(run, dict):
        raise ScenarioError(origin, "run", "must be a table of weeks, burn_in_weeks, families")
    _known(origin, "run", run, RUN_KEYS)
    base = with_run_table(base, run, origin)
    replications = _positive_int(origin, "replications", data.get("replications", 1))
    seed = _non_negative_int(origin, "seed", data.get("seed", base.run.seed))
    chunk_size = _positive_int(origin, "chunk_size", data.get("chunk_size", 8))
    sampler = data["sampler"]
    if not isinstance(sampler, dict) or "kind" not in sampler:
        raise ScenarioError(origin, "sampler.kind", f"missing; allowed: {', '.join(SAMPLERS)}")
    kind = sampler["kind"]
    if kind not in SAMPLERS:
        raise ScenarioError(
            origin,
            "sampler.kind",
            f"value {kind!r}; {suggest(kind, SAMPLERS)}allowed: {', '.join(SAMPLERS)}",
        )
    _known(origin, "sampler", sampler, SAMPLER_KEYS[kind])
    sampler = dict(sampler)
    if kind != "grid":
        sampler["samples"] = _positive_int(origin, "sampler.samples", sampler.get("samples"))
        sampler["seed"] = _non_negative_int(origin, "sampler.seed", sampler.get("seed", 0))
    if kind == "sobol" and sampler["samples"] & (sampler["samples"] - 1):
        raise ScenarioError(
            origin,
            "sampler.samples",
            f"value {sampler['samples']}: Sobol' sampling needs a power of two (e.g. 64, 128, 256)",
        )
    if kind == "morris":
        levels = sampler.get("levels", 4)
        # SALib's Morris grid has levels / 2 starting points and a step of levels / (2 (levels
        # - 1)): an odd count biases the sample, 1 divides by zero
        if not isinstance(levels, int) or isinstance(levels, bool) or levels < 2 or levels % 2:
            raise ScenarioError(
                origin, "sampler.levels", f"value {levels!r}; allowed: an even number >= 2"
            )
        sampler["levels"] = levels
    parameters = _parameters(origin, kind, data["parameters"], base)
    _check_size(origin, kind, sampler, parameters, replications)
    sens = data.get("sensitivity", {})
    if not isinstance(sens, dict):
        raise ScenarioError(origin, "sensitivity", "must be a table with metrics = [...]")
    _known(origin, "sensitivity", sens, ("metrics",))
    metrics = sens.get("metrics", [])
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise ScenarioError(origin, "sensitivity.metrics", "must be a list of metric names")
    known = metric_columns()
    for metric in metrics:
        if metric not in known:
            raise ScenarioError(
                origin,
                "sensitivity.metrics",
                f"value {metric!r}: {suggest(metric, known)}not a measure famsim reports",
            )
    if kind in ("sobol", "morris") and not metrics:
        raise ScenarioError(
            origin, "sensitivity.metrics", "a sobol or morris sweep names the measures to analyse"
        )
    sweep = Sweep(
        path, name, base, replications, seed, chunk_size, sampler, parameters, metrics, data
    )
    # every design point must be a valid scenario: check them all before anything runs
    for point in design(sweep):
        point_scenario(sweep, point)
    return sweep


def with_run_table(base: Scenario, run: dict[str, Any], origin: str) -> Scenario:
    """The base scenario with a [run] table's weeks, burn_in_weeks and families."""
    data = base.resolved_dict()
    for key in ("weeks", "burn_in_weeks"):
        if key in run:
            data["run"][key] = run[key]
    scenario = scenario_from_dict(data, origin, strict=True)
    if "families" in run:
        families = _positive_int(origin, "run.families", run["families"])
        data["city"]["families"] = families
        scenario_from_dict(data, origin, strict=True)  # range checks on the requested size
        scenario = scenario_from_dict(scale_scenario(scenario, families).resolved_dict(), origin)
    return scenario


def _parameters(origin: str, kind: str, table: Any, base: Scenario) -> list[Parameter]:
    if not isinstance(table, dict) or not table:
        raise ScenarioError(origin, "parameters", "must be a table of scenario key paths")
    resolved = base.resolved_dict()
    out = []
    for path, spec in table.items():
        head, _, rest = path.partition(".")
        if head == "run" and rest not in SWEPT_RUN_KEYS:
            raise ScenarioError(
                origin,
                f"parameters.{path}",
                "cannot be swept: every design point runs with the sweep's own `seed` and "
                "`replications` (top-level keys) and the sweep's [run] table; allowed under "
                f"run: {', '.join('run.' + k for k in SWEPT_RUN_KEYS)}",
            )
        current = _value_at(origin, resolved, path)
        integer = isinstance(current, int) and not isinstance(current, bool)
        if not isinstance(current, int | float) or isinstance(current, bool):
            raise ScenarioError(
                origin, f"parameters.{path}", f"holds {current!r}; only numbers can be swept"
            )
        if kind == "grid":
            if not isinstance(spec, list) or not spec:
                raise ScenarioError(
                    origin, f"parameters.{path}", "a grid sweep lists the values, e.g. [0.0, 1.0]"
                )
            for value in spec:
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ScenarioError(
                        origin, f"parameters.{path}", f"value {value!r} is not a number"
                    )
                # a grid names its values: rounding 2.5 to 2 would run a point nobody asked for
                if integer and isinstance(value, float) and not value.is_integer():
                    raise ScenarioError(
                        origin,
                        f"parameters.{path}",
                        f"value {value!r}: this key holds whole numbers; allowed: whole "
                        "numbers, e.g. " + ", ".join(str(v) for v in _neighbours(value)),
                    )
            out.append(Parameter(path, values=tuple(spec), integer=integer))
        else:
            if not isinstance(spec, dict) or set(spec) != {"low", "high"}:
                raise ScenarioError(
                    origin,
                    f"parameters.{path}",
                    f"a {kind} sweep gives a range: {{ low = ..., high = ... }}",
                )
            low, high = spec["low"], spec["high"]
            for key, value in (("low", low), ("high", high)):
                if (
                    not isinstance(value, int | float)
                    or isinstance(value, bool)
                    or not math.isfinite(value)
                ):
                    raise ScenarioError(
                        origin,
                        f"parameters.{path}.{key}",
                        f"value {value!r} is not a finite number",
                    )
            if not low < high:
                raise ScenarioError(
                    origin, f"parameters.{path}", f"low {low} must be below high {high}"
                )
            out.append(Parameter(path, low=float(low), high=float(high), integer=integer))
    return out


def _neighbours(value: float) -> list[int]:
    if not math.isfinite(value):
        return [0, 1]
    return [math.floor(value), math.ceil(value)]


def design_size(kind: str, sampler: dict[str, Any], parameters: list[Parameter]) -> int:
    """The number of design points, from the spec alone (nothing sampled or built)."""
    d = len(parameters)
    if kind == "grid":
        return math.prod(len(p.values or ()) for p in parameters)
    n = int(sampler["samples"])
    if kind == "sobol":
        return n * (2 * d + 2)  # Saltelli's scheme with second-order indices
    if kind == "morris":
        return n * (d + 1)  # n trajectories of d + 1 points
    return n


def _check_size(
    origin: str,
    kind: str,
    sampler: dict[str, Any],
    parameters: list[Parameter],
    replications: int,
) -> None:
    points = design_size(kind, sampler, parameters)
    runs = points * replications
    if runs <= MAX_RUNS:
        return
    if kind == "grid":
        key = "parameters"
        sizes = " x ".join(str(len(p.values or ())) for p in parameters)
        what = f"a grid of {sizes} = {points:,} design points"
    else:
        key = "sampler.samples"
        what = f"{sampler['samples']:,} samples give {points:,} {kind} design points"
    raise ScenarioError(
        origin,
        key,
        f"{what} x {replications} replications = {runs:,} runs; allowed: at most "
        f"{MAX_RUNS:,} runs in one sweep (fewer values or samples, or several sweeps)",
    )


def _value_at(origin: str, data: dict[str, Any], path: str) -> Any:
    """The value at a dotted key path; a number indexes a list (e.g. a fee band)."""
    node: Any = data
    walked = []
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            options = (
                [str(i) for i in range(len(node))]
                if isinstance(node, list)
                else list(node)
                if isinstance(node, dict)
                else []
            )
            where = ".".join(walked) or "the scenario"
            raise ScenarioError(
                origin,
                f"parameters.{path}",
                f"{part!r} is not a key of {where}; {suggest(part, options)}"
                f"allowed: {', '.join(options) or 'nothing (it holds a value)'}",
            )
        walked.append(part)
    return node


def _known(origin: str, prefix: str, table: dict[str, Any], allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    for key in table:
        if key not in allowed:
            where = f"{prefix}.{key}" if prefix else key
            raise ScenarioError(
                origin, where, f"unknown key; {suggest(key, allowed)}allowed: {', '.join(allowed)}"
            )


def _typed(origin: str, key: str, value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        raise ScenarioError(origin, key, f"value {value!r}; allowed: {what}")
    return value


def _positive_int(origin: str, key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ScenarioError(origin, key, f"value {value!r}; allowed: a whole number >= 1")
    return value


def _non_negative_int(origin: str, key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ScenarioError(origin, key, f"value {value!r}; allowed: a whole number >= 0")
    return value


# ----------------------------------------------------------------------------------------
# the design


def design(sweep: Sweep) -> list[dict[str, Any]]:
    """Design points in a fixed order: {key path: value}; whole-number fields get whole
    numbers, the others floats."""
    if sweep._design is None:
        sweep._design = _design(sweep)
    return sweep._design


def _design(sweep: Sweep) -> list[dict[str, Any]]:
    if sweep.kind == "grid":
        rows = list(itertools.product(*(p.values for p in sweep.parameters)))
    elif sweep.kind == "points":  # explicit points (a calibration's waves), not a file's sampler
        rows = [list(row) for row in sweep.sampler["points"]]
    else:
        rows = sample_unit(sweep.kind, sweep.problem(), sweep.sampler).tolist()
    return [
        {
            p.path: int(round(value)) if p.integer else float(value)
            for p, value in zip(sweep.parameters, row, strict=True)
        }
        for row in rows
    ]


def sample_unit(kind: str, problem: dict[str, Any], sampler: dict[str, Any]) -> np.ndarray:
    """Sample matrix [rows, D] in the parameters' own ranges (lhs, sobol, morris)."""
    n = int(sampler["samples"])
    seed = int(sampler.get("seed", 0))
    bounds = np.array(problem["bounds"], dtype=float)
    if kind == "lhs":
        from scipy.stats import qmc

        unit = qmc.LatinHypercube(d=problem["num_vars"], seed=seed).random(n)
        return qmc.scale(unit, bounds[:, 0], bounds[:, 1])
    if kind == "sobol":
        from SALib.sample import sobol

        return sobol.sample(problem, n, calc_second_order=True, seed=seed)
    if kind == "morris":
        from SALib.sample import morris

        return morris.sample(problem, n, num_levels=int(sampler.get("levels", 4)), seed=seed)
    raise ValueError(f"no sampler {kind!r}")


def point_scenario(sweep: Sweep, point: dict[str, Any]) -> Scenario:
    """The base scenario with the point's values, validated (errors name the key path)."""
    data = sweep.base.resolved_dict()
    for path, value in point.items():
        set_at_path(data, path, value)
    data["run"]["seed"] = sweep.seed
    data["run"]["replications"] = sweep.replications
    return scenario_from_dict(data, str(sweep.file))


def model_version() -> dict[str, Any]:
    return git_state()


def run_id(scenario: Scenario, seed: int, version: dict[str, Any]) -> str:
    # the scenario by its content hash, never its resolved form with absolute file paths:
    # the same run in another checkout has the same id
    doc = {"scenario": scenario.content_hash(), "seed": seed, "version": version}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Task:
    run_id: str
    point: int
    replication: int
    seed: int
    scenario: Scenario
    values: dict[str, Any]


def tasks(sweep: Sweep, version: dict[str, Any] | None = None) -> list[Task]:
    version = version if version is not None else model_version()
    out = []
    for i, point in enumerate(design(sweep)):
        scenario = point_scenario(sweep, point)
        for r in range(sweep.replications):
            seed = replication_seed(sweep.seed, r)
            out.append(Task(run_id(scenario, seed, version), i, r, seed, scenario, point))
    return out


# ----------------------------------------------------------------------------------------
# running


def run_task(task: Task) -> dict[str, Any]:
    """One run in a worker: its row of results, or its error as data."""
    from sim.studies.runner import run_replication

    started = time.perf_counter()
    row: dict[str, Any] = {
        "run_id": task.run_id,
        "point": task.point,
        "replication": task.replication,
        "seed": task.seed,
        **{f"param:{k}": v for k, v in task.values.items()},
    }
    try:
        result = run_replication(task.scenario, task.replication)
    except RUN_FAILURES as exc:  # anything else is a bug: it reaches the parent and stops
        return {**row, "status": "failed", "error": f"{type(exc).__name__}: {exc}", "seconds": 0.0}
    if result.row is None:
        return {**row, "status": "failed", "error": str(result.status.get("error")), "seconds": 0.0}
    metrics = {k: result.row[k] for k in metric_columns()}
    return {
        **row,
        "status": "ok",
        "error": "",
        "seconds": round(time.perf_counter() - started, 3),
        "worker_pid": os.getpid(),
        **metrics,
    }


def _read_parts(out: Path) -> tuple[pd.DataFrame, list[tuple[Path, str]]]:
    """The committed rows of `out`, first row per run id (an old unlocked double run may
    have written a run twice), and the part files that cannot be read, with why."""
    files = sorted((out / RUNS_DIR).glob("part-*.parquet"))
    frames = []
    corrupt: list[tuple[Path, str]] = []
    for path in files:
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            corrupt.append((path, f"{type(exc).__name__}: {exc}"))
            continue
        if "run_id" not in frame.columns or "status" not in frame.columns:
            corrupt.append((path, "no run_id and status columns"))
            continue
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["run_id", "status"]), corrupt
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.drop_duplicates("run_id", keep="first").reset_index(drop=True)
    return frame, corrupt


def committed(out: Path | str) -> pd.DataFrame:
    """The runs already written to `out` (committed chunks only), one row per run id. A part
    file that cannot be read is refused, naming it: running the sweep again repairs it."""
    frame, corrupt = _read_parts(Path(out))
    if corrupt:
        path, why = corrupt[0]
        more = f" (and {len(corrupt) - 1} more part files)" if len(corrupt) > 1 else ""
        raise ScenarioError(
            str(path),
            "",
            f"not a readable results file ({_short(why)}){more}; run the sweep again "
            "(famsim sweep SWEEP --out FOLDER) to set it aside and re-run its runs",
        )
    return frame


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _set_aside_corrupt(out: Path, say: Callable[[str], None]) -> pd.DataFrame:
    """The readable committed rows; unreadable part files are renamed `*.corrupt` (kept for
    a person to look at), so the runs they held are missing and run again."""
    frame, corrupt = _read_parts(out)
    for path, why in corrupt:
        target = path.with_name(path.name + CORRUPT_SUFFIX)
        n = 1
        while target.exists():
            target = path.with_name(f"{path.name}{CORRUPT_SUFFIX}-{n}")
            n += 1
        os.replace(path, target)
        say(
            f"famsim: {path} is not a readable results file ({_short(why)}); moved aside "
            f"to {target.name}, its runs are run again"
        )
    return frame


def _write_chunk(out: Path, rows: list[dict[str, Any]]) -> Path:
    folder = out / RUNS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    index = len(list(folder.glob("part-*.parquet")))
    path = folder / f"part-{index:05d}.parquet"
    while path.exists():
        index += 1
        path = folder / f"part-{index:05d}.parquet"
    tmp = folder / f"_tmp-{path.name}"
    pd.DataFrame(rows).to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f"_tmp-{path.name}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


class _Unreadable(Exception):
    """A manifest that cannot be read; says why."""


def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _Unreadable(f"{type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict) or "sweep_hash" not in data or "git" not in data:
        raise _Unreadable("not a sweep manifest (no sweep_hash and git entries)")
    return data


def read_manifest(out: Path | str) -> dict[str, Any]:
    """The manifest of a sweep folder; an unreadable one is refused, naming the file."""
    path = Path(out) / "manifest.json"
    try:
        return _load_manifest(path)
    except _Unreadable as exc:
        raise ScenarioError(
            str(path),
            "",
            f"not a readable sweep manifest ({_short(str(exc))}); run the sweep again "
            "(famsim sweep SWEEP --out FOLDER) to rewrite it",
        ) from None


def prepare_out(
    sweep: Sweep,
    out: Path,
    resume: bool,
    run_ids: set[str] | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any] | None:
    """Refuse a folder that holds another sweep; returns its manifest when it holds this one.
    An unreadable manifest is rewritten when every readable run in the folder is one of
    `run_ids` (this sweep's runs), and refused otherwise."""
    manifest_path = out / "manifest.json"
    if out.exists() and not out.is_dir():
        raise ScenarioError("<command line>", "--out", f"{str(out)!r} exists and is not a folder")
    if manifest_path.exists():
        try:
            old = _load_manifest(manifest_path)
        except _Unreadable as exc:
            held = set(_read_parts(out)[0]["run_id"])
            foreign = held - (run_ids or set())
            if run_ids is None or foreign:
                raise ScenarioError(
                    str(manifest_path),
                    "",
                    f"not a readable sweep manifest ({_short(str(exc))}), and {len(foreign)} "
                    f"of the {len(held)} runs in {str(out / RUNS_DIR)!r} are not runs of "
                    f"{str(sweep.file)!r}; allowed: the sweep that wrote the folder, or "
                    "another folder",
                ) from None
            if say:
                say(
                    f"famsim: {manifest_path} was not readable ({_short(str(exc))}); every run "
                    "in the folder belongs to this sweep, so it is rewritten"
                )
            return {"recovered": True}
        if old.get("sweep_hash") != sweep.content_hash():
            raise ScenarioError(
                "<command line>",
                "--out",
                f"{str(out)!r} holds another sweep ({old.get('sweep_file')}); "
                "allowed: an empty folder or one holding this sweep",
            )
        return old
    if resume:
        raise ScenarioError("<command line>", "--resume", f"{str(out)!r} holds no sweep to resume")
    if out.exists() and any(out.iterdir()):
        raise ScenarioError(
            "<command line>",
            "--out",
            f"{str(out)!r} is not empty and holds no sweep; allowed: an empty or new folder",
        )
    return None


@dataclass
class SweepReport:
    total: int
    done_before: int
    ran: int
    failed: int  # runs that failed in this invocation
    seconds: float
    out: Path
    failed_before: int = 0  # failed runs committed by earlier invocations (not re-run)
    first_failure: str = ""  # "run <id> (point p, replication r): <error>"

    @property
    def failed_total(self) -> int:
        return self.failed + self.failed_before


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _describe_failure(row: dict[str, Any]) -> str:
    return (
        f"run {row['run_id']} (point {row['point']}, replication {row['replication']}): "
        f"{row.get('error', '')}"
    )


def run_sweep(
    sweep: Sweep,
    out: Path,
    executor: Executor,
    executor_label: str,
    workers: int,
    resume: bool = False,
    quiet: bool = True,
    on_commit: Callable[[Path], None] | None = None,
    lock: bool = True,
    say: Callable[[str], None] = _say,
) -> SweepReport:
    """Run every missing run of the sweep through `executor`; the caller owns the executor.

    The folder is locked against a second writer for the whole sweep; a caller that holds
    the lock already (the CLI) passes lock=False, since a second flock in one process on the
    same file would refuse itself. A run that fails (RUN_FAILURES) is a failed row; any
    other exception, and an interrupt, stops the sweep after the completed rows are
    committed. `say` receives one-line notes (a part file set aside, a manifest rewritten).
    """
    with folder_lock(out) if lock else nullcontext():
        return _run_sweep(
            sweep, out, executor, executor_label, workers, resume, quiet, on_commit, say
        )


def _run_sweep(
    sweep: Sweep,
    out: Path,
    executor: Executor,
    executor_label: str,
    workers: int,
    resume: bool,
    quiet: bool,
    on_commit: Callable[[Path], None] | None,
    say: Callable[[str], None],
) -> SweepReport:
    started = time.perf_counter()
    version = model_version()
    all_tasks = tasks(sweep, version)
    old = prepare_out(sweep, out, resume, {t.run_id for t in all_tasks}, say)
    out.mkdir(parents=True, exist_ok=True)
    sampler = dict(sweep.sampler)
    rounded = [p.path for p in sweep.parameters if p.integer]
    if sweep.kind != "grid" and rounded:
        # samplers draw real numbers; whole-number keys get the nearest whole number
        sampler["note"] = f"rounded to whole numbers: {rounded}"
    old = old or {}
    manifest = {
        "sweep_file": str(sweep.file),
        "sweep_hash": sweep.content_hash(),
        "sweep": sweep.document,
        "base_scenario": sweep.base.resolved_dict(),
        "sampler": sampler,
        "replications": sweep.replications,
        "replication_seeds": [replication_seed(sweep.seed, r) for r in range(sweep.replications)],
        "seed": sweep.seed,
        "design_points": len(all_tasks) // sweep.replications,
        "runs": len({t.run_id for t in all_tasks}),
        "versions": package_versions(SWEEP_PACKAGES),
        "git": version,
        "executor": executor_label,
        "workers": workers,
        "created": old.get("created", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
        "resumed": time.strftime("%Y-%m-%dT%H:%M:%S%z") if old else None,
    }
    _write_json(out / "manifest.json", manifest)
    if not _readable_parquet(out / "design.parquet"):
        design_rows = [
            {"point": t.point, **{f"param:{k}": v for k, v in t.values.items()}}
            for t in all_tasks
            if t.replication == 0
        ]
        tmp = out / "_tmp-design.parquet"
        pd.DataFrame(design_rows).to_parquet(tmp, index=False)
        os.replace(tmp, out / "design.parquet")
    # which invocation computed a row: a resumed sweep never rewrites an earlier session's
    session = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    held = _set_aside_corrupt(out, say)
    ids = {t.run_id for t in all_tasks}
    held = held[held["run_id"].isin(ids)]
    done = set(held["run_id"])
    earlier_failures = held[held["status"] != "ok"]
    first_failure = (
        _describe_failure(earlier_failures.iloc[0].to_dict()) if len(earlier_failures) else ""
    )
    # design points that coincide (Saltelli's matrices can repeat a point) share their runs
    unique = list({t.run_id: t for t in reversed(all_tasks)}.values())[::-1]
    todo = [t for t in unique if t.run_id not in done]
    bar = progress_bar(len(unique), sweep.name, quiet, initial=len(done))
    buffer: list[dict[str, Any]] = []
    failed = 0
    pending: dict[Future, Task] = {}
    queue = iter(todo)
    limit = max(2 * workers, 2)
    seen: set[str] = set()

    def fill() -> None:
        for task in itertools.islice(queue, limit - len(pending)):
            pending[executor.submit(run_task, task)] = task

    try:
        fill()
        while pending:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            bug: BaseException | None = None
            for future in finished:
                task = pending.pop(future)
                exc = future.exception()
                if exc is not None and not isinstance(exc, RUN_FAILURES):
                    # a bug, not data: stop, but only after keeping the runs that finished
                    # beside it (they are committed below)
                    bug = bug or exc
                    continue
                if exc is not None:
                    row = {
                        "run_id": task.run_id,
                        "point": task.point,
                        "replication": task.replication,
                        "seed": task.seed,
                        **{f"param:{k}": v for k, v in task.values.items()},
                        "status": "failed",
                        "error": f"{type(exc).__name__}: {exc}",
                        "seconds": 0.0,
                    }
                else:
                    row = future.result()
                if row["run_id"] in seen:  # an executor that delivered a run twice
                    continue
                seen.add(row["run_id"])
                row["session"] = session
                if row["status"] != "ok":
                    failed += 1
                    first_failure = first_failure or _describe_failure(row)
                buffer.append(row)
                if bar:
                    bar.update(1)
                    bar.set_postfix(failed=failed)
                if len(buffer) >= sweep.chunk_size:
                    path = _write_chunk(out, buffer)
                    buffer = []
                    if on_commit:
                        on_commit(path)
            if bug is not None:
                raise bug
            fill()
    except BaseException:
        # an interrupt, SIGTERM or a bug: keep every finished run before unwinding, so a
        # resumed sweep does not compute it again
        for future in pending:
            future.cancel()
        if buffer:
            _write_chunk(out, buffer)
        if bar:
            bar.close()
        raise
    if buffer:
        path = _write_chunk(out, buffer)
        if on_commit:
            on_commit(path)
    if bar:
        bar.close()
    return SweepReport(
        len(unique),
        len(done),
        len(todo),
        failed,
        time.perf_counter() - started,
        out,
        failed_before=len(earlier_failures),
        first_failure=first_failure,
    )


def _readable_parquet(path: Path) -> bool:
    try:
        pd.read_parquet(path)
    except (OSError, ValueError):
        return False
    return True


def results(out: Path | str) -> pd.DataFrame:
    """Every committed run of a sweep folder, one row per run id, in design order. An
    unreadable part file is refused with a ScenarioError naming it."""
    frame = committed(out)
    if frame.empty:
        return frame
    return frame.sort_values(["point", "replication"]).reset_index(drop=True)


def by_point(sweep: Sweep, out: Path) -> pd.DataFrame:
    """One row per (design point, replication), in design order: runs shared by coinciding
    design points appear at each of them. Run ids are those of the model version that ran
    the sweep (from its manifest)."""
    manifest = read_manifest(out)
    frame = committed(out).drop(columns=["point", "replication"], errors="ignore")
    keys = pd.DataFrame(
        [
            {"point": t.point, "replication": t.replication, "run_id": t.run_id}
            for t in tasks(sweep, manifest["git"])
        ]
    )
    return keys.merge(frame, on="run_id", how="left", validate="many_to_one")


def to_ema(
    out: Path | str, outcomes: list[str] | None = None
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """A sweep in the EMA Workbench's (experiments, outcomes) form: experiments has one
    column per swept parameter plus 'scenario' (the design point), 'policy' and 'model';
    outcomes maps each measure to an array aligned with the experiments' rows (successful
    runs only). A measure without a value in some run (e.g. the take-up of a group that no
    run of the design has) is left out with a SweepOutcomeWarning naming it: the Workbench's
    PRIM and feature scoring need a finite value in every row."""
    frame = results(out)
    ok = frame[frame["status"] == "ok"].reset_index(drop=True)
    params = [c for c in ok.columns if c.startswith("param:")]
    experiments = ok[params].rename(columns=lambda c: c.removeprefix("param:"))
    experiments["scenario"] = ok["point"].astype(int)
    experiments["policy"] = "none"
    experiments["model"] = "famsim"
    experiments["replication"] = ok["replication"].astype(int)
    names = outcomes or [c for c in metric_columns() if c in ok.columns]
    values = {name: ok[name].to_numpy(dtype=float) for name in names}
    missing = {name: int((~np.isfinite(v)).sum()) for name, v in values.items()}
    dropped = {name: n for name, n in missing.items() if n}
    if dropped:
        listed = ", ".join(f"{name} ({n} of {len(ok)} runs)" for name, n in dropped.items())
        warnings.warn(
            SweepOutcomeWarning(f"outcomes without a value in some runs left out: {listed}"),
            stacklevel=2,
        )
    return experiments, {name: v for name, v in values.items() if name not in dropped}


class SweepOutcomeWarning(UserWarning):
    """A sweep outcome left out of an analysis because some runs have no value for it."""


def local_cluster(workers: int):
    """A Dask cluster on this machine: `workers` processes of one thread each, listening on
    127.0.0.1 only, no dashboard (what `famsim sweep --dask local` starts)."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
