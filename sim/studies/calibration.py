"""Calibration to observed figures: targets with their uncertainty, a space-filling design,
history matching with a Gaussian-process emulator, and a posterior over what survives.

A targets file (TOML, `validation/targets/*.toml`) names the scenario it applies to, the
free parameters with their prior ranges, and the figures, each with its source:

    name = "flanders"
    scenario = "../../scenarios/base.toml"
    replications = 4                 # common random numbers: these seeds at every point
    seed = 2026
    [parameters]
    "population.tolerance_shift_logit" = { low = 0.0, high = 5.0, why = "..." }
    [[target]]
    name = "formal_care_u3"
    measure = "u3_participation_all"          # or "a / b", "a - b" of two measures
    value = 0.707
    band = [0.648, 0.766]                     # 95 % range of the true value (the source's)
    n = 6594                                  # sample size, where the source has one
    discrepancy_sd = 0.01                     # model discrepancy (assumption)
    source = "EVIDENCE C12 ..., C13 ..."
    [[plausibility]]                          # a range every plausible point must respect
    [[report]]                                # a figure the report states the distance to

The fit (DESIGN §8, ODD §1.2):

1. wave 1, a Latin hypercube over the prior box; every point runs the same replication
   seeds, so the objective is deterministic;
2. one Gaussian process per target on the point means (scikit-learn), and the
   implausibility of a candidate, |z - E[f(x)]| / sqrt(emulator + replication + source +
   discrepancy variance); candidates with I > 3 for some target are ruled out (the usual
   three-sigma cut of history matching);
3. wave 2, spread over the not-ruled-out region by a maximin choice among candidates;
4. the posterior on the final emulator by importance sampling of the prior: a beta-binomial
   likelihood for a count of n (the model's share uncertain by the emulator's, the
   replications' and the discrepancy variance), a normal one for a figure without n;
5. the emulator's MAP point re-run on fresh seeds, Sobol' indices of the emulator per target
   (SALib), the posterior's shrinkage per parameter, a report and the calibrated scenario as
   a TOML that `extends` the input.

Every wave is a sweep (`sim.studies.sweep`): stable run ids, chunks committed as they finish,
resume after an interruption, any executor.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.core.errors import ScenarioError
from sim.measure.metrics import metric_columns
from sim.measure.stats import interval
from sim.scenario.schema import Scenario, load_scenario, scenario_from_dict, set_at_path, suggest
from sim.studies.runner import replication_seed
from sim.studies.sweep import (
    Parameter,
    Sweep,
    committed,
    read_toml,
    run_sweep,
    with_run_table,
)

TOP_KEYS = (
    "name",
    "description",
    "scenario",
    "replications",
    "seed",
    "budget",
    "recheck_replications",
    "run",
    "parameters",
    "target",
    "plausibility",
    "report",
)
TARGET_KEYS = ("name", "measure", "value", "band", "n", "discrepancy_sd", "source", "note")
PLAUSIBILITY_KEYS = ("name", "measure", "low", "high", "source", "note")
REPORT_KEYS = ("name", "measure", "value", "source", "note")
PARAMETER_KEYS = ("low", "high", "why")
# the three-sigma rule of history matching (Pukelsheim 1994; Vernon et al. 2010): a
# candidate whose output lies more than three standard deviations from a target is ruled out
IMPLAUSIBILITY_CUT = 3.0
# a band is a 95 % range of the true value: its half-width is 1.96 standard deviations
BAND_Z = 1.96
# candidates the emulator is evaluated at (Sobol' points in the prior box), the posterior
# sample kept, the Sobol' base sample on the emulator: fixed sizes, so the fit is the same
# wherever it runs
CANDIDATES = 2**14
POSTERIOR_SAMPLE = 1000
SOBOL_BASE = 512
# the share of the run budget spent on wave 1 (the rest goes to wave 2)
WAVE_ONE_SHARE = 0.6
# an offset that sets the re-check's replication seeds apart from the fit's
RECHECK_SEED_OFFSET = 1_000_003


@dataclass(frozen=True)
class Target:
    name: str
    measure: str  # a measure, or "a / b" or "a - b" of two measures
    value: float
    low: float | None  # the source's 95 % range of the true value
    high: float | None
    n: int | None  # sample size behind the figure, where the source has one
    discrepancy_sd: float  # model discrepancy (assumption)
    source: str

    def range(self) -> tuple[float, float]:
        """The values a faithful model may give: the source's band, or for a figure without
        one the value +- 1.96 standard deviations of its sampling and discrepancy."""
        if self.low is not None and self.high is not None:
            return self.low, self.high
        half = BAND_Z * math.sqrt(self.source_variance() + self.discrepancy_sd**2)
        return self.value - half, self.value + half

    def source_variance(self) -> float:
        """The variance of the observed figure about the truth: the band's, and the
        binomial sampling variance of a count of n."""
        var = 0.0
        if self.low is not None and self.high is not None:
            var += ((self.high - self.low) / (2 * BAND_Z)) ** 2
        if self.n:
            var += self.value * (1.0 - self.value) / self.n
        return var


@dataclass(frozen=True)
class Bound:
    name: str
    measure: str
    low: float
    high: float
    source: str


@dataclass(frozen=True)
class Reference:
    name: str
    measure: str
    value: float
    source: str


@dataclass
class Targets:
    file: Path
    name: str
    description: str
    scenario_file: Path
    replications: int
    seed: int
    budget: int
    recheck_replications: int
    run: dict[str, Any]
    parameters: list[Parameter]
    why: dict[str, str]
    targets: list[Target]
    bounds: list[Bound]
    references: list[Reference]
    document: dict[str, Any] = field(repr=False, default_factory=dict)

    def content_hash(self) -> str:
        doc = {k: v for k, v in self.document.items() if k not in ("description",)}
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


# ----------------------------------------------------------------------------------------
# measures named by expressions


def measure_names(expression: str) -> list[str]:
    """The measures an expression reads: "m", "a / b" or "a - b"."""
    for op in (" / ", " - "):
        if op in expression:
            return [part.strip() for part in expression.split(op)]
    return [expression.strip()]


def evaluate(expression: str, runs: pd.DataFrame) -> pd.Series:
    """The expression per run (row) of a runs table."""
    names = measure_names(expression)
    if len(names) == 1:
        return runs[names[0]].astype(float)
    a, b = (runs[n].astype(float) for n in names)
    if " / " in expression:
        return a / b.where(b != 0)
    return a - b


def check_expression(origin: str, key: str, expression: Any) -> str:
    if not isinstance(expression, str):
        raise ScenarioError(origin, key, f"value {expression!r}; allowed: a measure's name")
    names = measure_names(expression)
    known = metric_columns()
    if len(names) > 2:
        raise ScenarioError(origin, key, f"value {expression!r}; allowed: m, a / b or a - b")
    for name in names:
        if name not in known:
            raise ScenarioError(
                origin, key, f"value {name!r}: {suggest(name, known)}not a measure famsim reports"
            )
    return expression


# ----------------------------------------------------------------------------------------
# reading a targets file


def _number(origin: str, key: str, value: Any, low: float = -math.inf) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ScenarioError(origin, key, f"value {value!r}; allowed: a number")
    if value < low:
        raise ScenarioError(origin, key, f"value {value!r}; allowed: a number >= {low}")
    return float(value)


def _whole(origin: str, key: str, value: Any, low: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ScenarioError(origin, key, f"value {value!r}; allowed: a whole number >= {low}")
    return value


def _known(origin: str, prefix: str, table: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ScenarioError(origin, prefix, "must be a table")
    for key in table:
        if key not in allowed:
            raise ScenarioError(
                origin,
                f"{prefix}.{key}" if prefix else key,
                f"unknown key; {suggest(key, allowed)}allowed: {', '.join(allowed)}",
            )
    return table


def parameter_from(origin: str, key: str, spec: Any, base: Scenario) -> Parameter:
    """A free parameter: a numeric scenario key path and its prior range."""
    label = f"parameters.{key}"
    spec = _known(origin, label, spec, PARAMETER_KEYS)
    if "low" not in spec or "high" not in spec:
        raise ScenarioError(origin, label, "a parameter gives its range: { low = ..., high = ... }")
    low = _number(origin, f"{label}.low", spec["low"])
    high = _number(origin, f"{label}.high", spec["high"])
    if not low < high:
        raise ScenarioError(origin, label, f"low {low} is not below high {high}")
    node: Any = base.resolved_dict()
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ScenarioError(origin, label, "no such scenario key")
        node = node[part]
    if not isinstance(node, float) or key.startswith("run."):
        raise ScenarioError(
            origin, label, f"holds {node!r}; allowed: a real-valued behaviour or provision key"
        )
    for value in (low, high):  # both ends must be valid scenarios (the schema's bounds)
        data = base.resolved_dict()
        set_at_path(data, key, value)
        scenario_from_dict(data, f"{origin} ({label} = {value})")
    return Parameter(key, low=low, high=high)


def _named_tables(
    origin: str, data: dict[str, Any], key: str, allowed: tuple[str, ...]
) -> list[tuple[str, dict[str, Any], str, str, str]]:
    """Each [[key]] table checked: (label, table, name, measure, source)."""
    out = []
    for i, table in enumerate(data.get(key, [])):
        label = f"{key}[{i}]"
        table = _known(origin, label, table, allowed)
        measure = check_expression(origin, f"{label}.measure", table.get("measure"))
        out.append(
            (label, table, str(table.get("name", measure)), measure, str(table.get("source", "")))
        )
    return out


def load_targets(path: str | Path, params: list[str] | None = None) -> Targets:
    """Read and validate a targets file. `params` (the command line's --params) picks some
    of the file's parameters, or adds a key with its range as KEY=LOW:HIGH."""
    path = Path(path)
    origin = str(path)
    data = read_toml(path)
    _known(origin, "", data, TOP_KEYS)
    for key in ("scenario", "parameters", "target"):
        if key not in data:
            raise ScenarioError(
                origin, key, "missing; a targets file needs scenario, parameters and targets"
            )
    name = data.get("name", path.stem)
    scenario_file = (path.parent / str(data["scenario"])).resolve()
    if not scenario_file.is_file():
        raise ScenarioError(
            origin, "scenario", f"value {data['scenario']!r}: no such scenario file"
        )
    run = _known(origin, "run", data.get("run", {}), ("weeks", "burn_in_weeks", "families"))
    base = with_run_table(load_scenario(scenario_file), run, origin)
    table = _known(origin, "parameters", data["parameters"], tuple(data["parameters"]))
    chosen = dict(table)
    if params:
        chosen = {}
        for item in params:
            key, _, rng = item.partition("=")
            if rng:
                low, _, high = rng.partition(":")
                try:
                    chosen[key] = {"low": float(low), "high": float(high)}
                except ValueError:
                    raise ScenarioError(
                        "<command line>",
                        "--params",
                        f"value {item!r}; allowed: KEY or KEY=LOW:HIGH",
                    ) from None
            elif key in table:
                chosen[key] = table[key]
            else:
                raise ScenarioError(
                    "<command line>",
                    "--params",
                    f"value {key!r}: {suggest(key, list(table))}not a parameter of {origin}; "
                    "give its range as KEY=LOW:HIGH",
                )
    parameters = [parameter_from(origin, key, spec, base) for key, spec in chosen.items()]
    why = {key: str(spec.get("why", "")) for key, spec in chosen.items()}
    if not parameters:
        raise ScenarioError(origin, "parameters", "names no parameter")
    targets = []
    raw_targets = data["target"]
    if not isinstance(raw_targets, list) or not raw_targets:
        raise ScenarioError(origin, "target", "must be a list of [[target]] tables")
    for i, t in enumerate(raw_targets):
        label = f"target[{i}]"
        t = _known(origin, label, t, TARGET_KEYS)
        for key in ("name", "measure", "value", "source"):
            if key not in t:
                raise ScenarioError(origin, f"{label}.{key}", "missing")
        measure = check_expression(origin, f"{label}.measure", t["measure"])
        value = _number(origin, f"{label}.value", t["value"])
        low = high = None
        if "band" in t:
            band = t["band"]
            if not isinstance(band, list) or len(band) != 2:
                raise ScenarioError(
                    origin, f"{label}.band", f"value {band!r}; allowed: [low, high]"
                )
            low = _number(origin, f"{label}.band", band[0])
            high = _number(origin, f"{label}.band", band[1])
            if not low <= value <= high:
                raise ScenarioError(origin, f"{label}.band", f"{band} does not hold value {value}")
        n = _whole(origin, f"{label}.n", t["n"]) if "n" in t else None
        if n is not None and not 0.0 <= value <= 1.0:
            raise ScenarioError(origin, f"{label}.n", "a count of n needs a share (0-1) as value")
        disc = _number(origin, f"{label}.discrepancy_sd", t.get("discrepancy_sd", 0.0), 0.0)
        targets.append(Target(str(t["name"]), measure, value, low, high, n, disc, str(t["source"])))
    if len(parameters) > len(targets):
        raise ScenarioError(
            origin,
            "parameters",
            f"{len(parameters)} free parameters for {len(targets)} targets; allowed: at most "
            "as many parameters as targets identify",
        )
    bounds = [
        Bound(
            name,
            measure,
            _number(origin, f"{label}.low", b.get("low")),
            _number(origin, f"{label}.high", b.get("high")),
            source,
        )
        for label, b, name, measure, source in _named_tables(
            origin, data, "plausibility", PLAUSIBILITY_KEYS
        )
    ]
    references = [
        Reference(name, measure, _number(origin, f"{label}.value", r.get("value")), source)
        for label, r, name, measure, source in _named_tables(origin, data, "report", REPORT_KEYS)
    ]
    replications = _whole(origin, "replications", data.get("replications", 4))
    budget = _whole(origin, "budget", data.get("budget", 60 * replications), 2 * replications)
    document = {**data, "parameters": chosen}
    return Targets(
        path,
        str(name),
        str(data.get("description", "")),
        scenario_file,
        replications,
        _whole(origin, "seed", data.get("seed", base.run.seed), 0),
        budget,
        _whole(origin, "recheck_replications", data.get("recheck_replications", 10)),
        run,
        parameters,
        why,
        targets,
        bounds,
        references,
        document,
    )


# ----------------------------------------------------------------------------------------
# waves as sweeps


def points_sweep(
    targets: Targets,
    base: Scenario,
    label: str,
    unit_points: np.ndarray,
    seed: int,
    replications: int,
) -> Sweep:
    """A sweep over explicit points (rows of the unit cube, scaled to the prior box)."""
    lows = np.array([p.low for p in targets.parameters])
    highs = np.array([p.high for p in targets.parameters])
    values = (lows + unit_points * (highs - lows)).round(6).tolist()
    sampler = {"kind": "points", "points": values}
    document = {
        "calibration": targets.content_hash(),
        "wave": label,
        "parameters": [p.path for p in targets.parameters],
        "points": values,
        "seed": seed,
        "replications": replications,
    }
    return Sweep(
        targets.file,
        f"{targets.name}-{label}",
        base,
        replications,
        seed,
        4,
        sampler,
        list(targets.parameters),
        [],
        document,
    )


def wave_folder(out: Path, sweep: Sweep) -> Path:
    digest = hashlib.sha256(json.dumps(sweep.document, sort_keys=True).encode()).hexdigest()
    return out / "waves" / f"{sweep.document['wave']}-{digest[:10]}"


@dataclass
class WaveResult:
    label: str
    unit: np.ndarray  # [P, D] design in the unit cube
    runs: pd.DataFrame  # one row per run
    means: np.ndarray  # [P, K] per point and target
    variances: np.ndarray  # [P, K] variance of the point mean over replications
    ran: int
    done_before: int


def run_wave(
    targets: Targets,
    base: Scenario,
    label: str,
    unit: np.ndarray,
    seed: int,
    replications: int,
    out: Path,
    executor: Executor,
    executor_label: str,
    workers: int,
    quiet: bool,
) -> WaveResult:
    sweep = points_sweep(targets, base, label, unit, seed, replications)
    folder = wave_folder(out, sweep)
    report = run_sweep(sweep, folder, executor, executor_label, workers, quiet=quiet)
    runs = committed(folder)
    runs = runs[runs["status"] == "ok"].sort_values(["point", "replication"])
    failed = int(report.failed_total)
    if failed:
        raise ScenarioError(
            str(targets.file),
            "parameters",
            f"{failed} run(s) of {label} failed, e.g. {report.first_failure}; narrow the ranges",
        )
    means, variances = point_summaries(targets.targets, runs, len(unit))
    return WaveResult(label, unit, runs, means, variances, report.ran, report.done_before)


def point_summaries(
    targets: list[Target], runs: pd.DataFrame, points: int
) -> tuple[np.ndarray, np.ndarray]:
    means = np.full((points, len(targets)), np.nan)
    variances = np.full((points, len(targets)), np.nan)
    for k, target in enumerate(targets):
        values = evaluate(target.measure, runs)
        grouped = values.groupby(runs["point"].to_numpy())
        m, v, c = grouped.mean(), grouped.var(ddof=1), grouped.count()
        for p in m.index:
            means[int(p), k] = m[p]
            variances[int(p), k] = v[p] / c[p] if c[p] > 1 else np.nan
    return means, variances


# ----------------------------------------------------------------------------------------
# the emulator and history matching


class Emulator:
    """One Gaussian process per target (scikit-learn), on the unit cube: a constant times an
    anisotropic Matern 5/2 kernel, the point means' replication variance as known noise."""

    def __init__(self, x: np.ndarray, y: np.ndarray, noise: np.ndarray, seed: int) -> None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern

        self.models = []
        self.scale = []
        d = x.shape[1]
        for k in range(y.shape[1]):
            ok = np.isfinite(y[:, k])
            yk = y[ok, k]
            centre, spread = float(yk.mean()), float(yk.std()) or 1.0
            alpha = np.nan_to_num(noise[ok, k], nan=np.nanmean(noise[:, k]))
            alpha = np.maximum(alpha, 1e-10) / spread**2
            kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
                length_scale=np.full(d, 0.5), length_scale_bounds=(0.03, 20.0), nu=2.5
            )
            gp = GaussianProcessRegressor(
                kernel=kernel, alpha=alpha, n_restarts_optimizer=3, random_state=seed + k
            )
            with warnings.catch_warnings():
                # a length scale at its upper bound says the measure is flat along that
                # parameter (the sensitivity table shows it): not a failure of the fit
                warnings.simplefilter("ignore", ConvergenceWarning)
                gp.fit(x[ok], (yk - centre) / spread)
            self.models.append(gp)
            self.scale.append((centre, spread))

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Means and variances [N, K] of the targets' measures at unit points x."""
        means, variances = [], []
        for gp, (centre, spread) in zip(self.models, self.scale, strict=True):
            m, s = gp.predict(x, return_std=True)
            means.append(centre + spread * m)
            variances.append((spread * s) ** 2)
        return np.column_stack(means), np.column_stack(variances)

    def kernels(self) -> list[str]:
        return [str(gp.kernel_) for gp in self.models]


def implausibility(
    targets: list[Target], mean: np.ndarray, var: np.ndarray, replication_var: np.ndarray
) -> np.ndarray:
    """|z - E[f(x)]| / sd per candidate and target [N, K]."""
    z = np.array([t.value for t in targets])
    obs = np.array([t.source_variance() + t.discrepancy_sd**2 for t in targets])
    return np.abs(z - mean) / np.sqrt(var + replication_var + obs)


def log_likelihood(
    targets: list[Target], mean: np.ndarray, var: np.ndarray, replication_var: np.ndarray
) -> np.ndarray:
    """The log likelihood of the observed figures at each candidate [N]: a beta-binomial for
    a count of n (the model's share uncertain by the emulator's, the replications' and the
    discrepancy variance, plus the source's band), a normal for a figure without n."""
    from scipy import stats

    out = np.zeros(mean.shape[0])
    for k, t in enumerate(targets):
        band = ((t.high - t.low) / (2 * BAND_Z)) ** 2 if t.low is not None else 0.0
        s2 = var[:, k] + replication_var[k] + t.discrepancy_sd**2 + band
        if t.n:
            p = np.clip(mean[:, k], 1e-4, 1 - 1e-4)
            concentration = np.maximum(p * (1 - p) / np.maximum(s2, 1e-12) - 1.0, 1e-3)
            count = round(t.value * t.n)
            out += stats.betabinom.logpmf(count, t.n, p * concentration, (1 - p) * concentration)
        else:
            out += stats.norm.logpdf(t.value, mean[:, k], np.sqrt(s2))
    return out


def maximin(candidates: np.ndarray, start: np.ndarray, count: int) -> np.ndarray:
    """`count` candidates chosen one by one, each the farthest from those chosen before (and
    from `start`, the points already run)."""
    if len(candidates) <= count:
        return candidates
    chosen: list[int] = []
    dist = np.min(((candidates[:, None, :] - start[None, :, :]) ** 2).sum(-1), axis=1)
    for _ in range(count):
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, ((candidates - candidates[i]) ** 2).sum(-1))
    return candidates[chosen]


# ----------------------------------------------------------------------------------------
# the calibration


@dataclass
class Calibration:
    targets: Targets
    waves: list[WaveResult]
    kernels: list[str]
    nroy_share: float
    posterior: pd.DataFrame  # the resampled plausible set: parameters and predicted outputs
    ess: float
    chosen: dict[str, float]
    recheck: pd.DataFrame  # runs of the chosen point on fresh seeds
    summary: pd.DataFrame  # per parameter: prior, posterior mean, interval, shrinkage
    fit: pd.DataFrame  # per target: value, band, recheck mean and interval, inside
    bounds_check: pd.DataFrame
    references: pd.DataFrame
    sensitivity: pd.DataFrame  # Sobol' indices of the emulator per target and parameter
    seconds: float
    runs_total: int
    runs_now: int
    design: pd.DataFrame  # every design point with its means


def calibrate(
    targets: Targets,
    out: Path,
    executor: Executor,
    executor_label: str,
    workers: int,
    budget: int | None = None,
    quiet: bool = True,
    say: Callable[[str], None] | None = None,
) -> Calibration:
    """Run the waves (resuming whatever is committed in `out`), then fit the posterior."""
    from scipy.stats import qmc

    started = time.perf_counter()
    base = with_run_table(load_scenario(targets.scenario_file), targets.run, str(targets.file))
    reps = targets.replications
    d = len(targets.parameters)
    points = max((budget or targets.budget) // reps, 2 * d + 2)
    first = max(int(round(points * WAVE_ONE_SHARE)), d + 2)
    second = max(points - first, 0)
    unit1 = qmc.LatinHypercube(d=d, seed=targets.seed).random(first)
    common = (executor, executor_label, workers, quiet)
    waves = [run_wave(targets, base, "wave-1", unit1, targets.seed, reps, out, *common)]
    candidates = qmc.Sobol(d=d, scramble=True, seed=targets.seed).random(CANDIDATES)

    def fitted(waves: list[WaveResult]) -> tuple[Emulator, np.ndarray, np.ndarray]:
        x = np.vstack([w.unit for w in waves])
        y = np.vstack([w.means for w in waves])
        noise = np.vstack([w.variances for w in waves])
        emulator = Emulator(x, y, noise, targets.seed)
        rep_var = np.nanmean(noise, axis=0)
        return emulator, rep_var, x

    emulator, rep_var, x = fitted(waves)
    if second:
        mean, var = emulator.predict(candidates)
        imp = implausibility(targets.targets, mean, var, rep_var).max(axis=1)
        keep = candidates[imp <= IMPLAUSIBILITY_CUT]
        if len(keep) < second:
            # nothing (or little) survives: look where the targets are least implausible
            keep = candidates[np.argsort(imp)[: max(second * 10, 50)]]
        unit2 = maximin(keep, x, second)
        waves.append(run_wave(targets, base, "wave-2", unit2, targets.seed, reps, out, *common))
        emulator, rep_var, x = fitted(waves)
    mean, var = emulator.predict(candidates)
    imp = implausibility(targets.targets, mean, var, rep_var)
    alive = imp.max(axis=1) <= IMPLAUSIBILITY_CUT
    for b in targets.bounds:  # plausibility ranges of measures that are also targets
        for k, t in enumerate(targets.targets):
            if t.measure == b.measure:
                alive &= (mean[:, k] >= b.low) & (mean[:, k] <= b.high)
    nroy_share = float(alive.mean())
    pool = np.flatnonzero(alive) if alive.any() else np.argsort(imp.max(axis=1))[:500]
    if say and not alive.any():
        say(
            "famsim: note: no candidate is within three standard deviations of every target; "
            "the posterior is taken over the 500 least implausible (see the report)"
        )
    loglik = log_likelihood(targets.targets, mean[pool], var[pool], rep_var)
    weights = np.exp(loglik - loglik.max())
    weights /= weights.sum()
    ess = float(1.0 / (weights**2).sum())
    rng = np.random.default_rng(targets.seed)
    draw = rng.choice(pool, size=POSTERIOR_SAMPLE, replace=True, p=weights)
    lows = np.array([p.low for p in targets.parameters])
    highs = np.array([p.high for p in targets.parameters])
    names = [p.path for p in targets.parameters]

    def scaled(unit: np.ndarray) -> np.ndarray:
        return lows + unit * (highs - lows)

    posterior = pd.DataFrame(scaled(candidates[draw]), columns=names)
    for k, t in enumerate(targets.targets):
        posterior[f"predicted:{t.name}"] = mean[draw, k]
    posterior["implausibility"] = imp[draw].max(axis=1)
    best = pool[int(np.argmax(loglik))]
    chosen = {n: float(round(v, 4)) for n, v in zip(names, scaled(candidates[best]), strict=True)}
    recheck_sweep_unit = ((np.array(list(chosen.values())) - lows) / (highs - lows))[None, :]
    recheck = run_wave(
        targets,
        base,
        "recheck",
        recheck_sweep_unit,
        targets.seed + RECHECK_SEED_OFFSET,
        targets.recheck_replications,
        out,
        *common,
    )
    summary = _parameter_summary(targets, posterior, lows, highs)
    fit = _fit_table(targets, recheck.runs, posterior)
    bounds_check = _bounds_table(targets.bounds, recheck.runs)
    references = _reference_table(targets.references, recheck.runs)
    sensitivity = _sensitivity(targets, emulator)
    design_rows = []
    for w in waves:
        for i, u in enumerate(w.unit):
            row = {"wave": w.label, **dict(zip(names, scaled(u), strict=True))}
            row |= {f"mean:{t.name}": w.means[i, k] for k, t in enumerate(targets.targets)}
            design_rows.append(row)
    runs_total = sum(len(w.runs) for w in [*waves, recheck])
    runs_now = sum(w.ran for w in [*waves, recheck])
    return Calibration(
        targets,
        waves,
        emulator.kernels(),
        nroy_share,
        posterior,
        ess,
        chosen,
        recheck.runs,
        summary,
        fit,
        bounds_check,
        references,
        sensitivity,
        time.perf_counter() - started,
        runs_total,
        runs_now,
        pd.DataFrame(design_rows),
    )


def _parameter_summary(
    targets: Targets, posterior: pd.DataFrame, lows: np.ndarray, highs: np.ndarray
) -> pd.DataFrame:
    rows = []
    for i, p in enumerate(targets.parameters):
        values = posterior[p.path].to_numpy()
        prior_sd = (highs[i] - lows[i]) / math.sqrt(12.0)
        rows.append(
            {
                "parameter": p.path,
                "prior_low": lows[i],
                "prior_high": highs[i],
                "posterior_mean": float(values.mean()),
                "posterior_q05": float(np.quantile(values, 0.05)),
                "posterior_q95": float(np.quantile(values, 0.95)),
                # 1 - posterior sd / prior sd: 0 = the targets say nothing about it
                "shrinkage": float(1.0 - values.std() / prior_sd),
                "why": targets.why.get(p.path, ""),
            }
        )
    return pd.DataFrame(rows)


def _fit_table(targets: Targets, runs: pd.DataFrame, posterior: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for t in targets.targets:
        mean, lo, hi = interval(evaluate(t.measure, runs))
        predicted = posterior[f"predicted:{t.name}"]
        low, high = t.range()
        rows.append(
            {
                "target": t.name,
                "measure": t.measure,
                "value": t.value,
                "band_low": low,
                "band_high": high,
                "band_from_source": t.low is not None,
                "n": t.n,
                "simulated": mean,
                "simulated_low": lo,
                "simulated_high": hi,
                "plausible_q05": float(predicted.quantile(0.05)),
                "plausible_q95": float(predicted.quantile(0.95)),
                "inside_band": bool(low <= mean <= high),
                "source": t.source,
            }
        )
    return pd.DataFrame(rows)


def _bounds_table(bounds: list[Bound], runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for b in bounds:
        mean, lo, hi = interval(evaluate(b.measure, runs))
        rows.append(
            {
                "name": b.name,
                "measure": b.measure,
                "low": b.low,
                "high": b.high,
                "simulated": mean,
                "inside": bool(b.low <= mean <= b.high),
                "source": b.source,
            }
        )
    return pd.DataFrame(
        rows, columns=["name", "measure", "low", "high", "simulated", "inside", "source"]
    )


def _reference_table(references: list[Reference], runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in references:
        mean, lo, hi = interval(evaluate(r.measure, runs))
        rows.append(
            {
                "name": r.name,
                "measure": r.measure,
                "value": r.value,
                "simulated": mean,
                "distance_pp": 100 * (mean - r.value),
                "distance_low_pp": 100 * (lo - r.value),
                "distance_high_pp": 100 * (hi - r.value),
                "source": r.source,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "name", "measure", "value", "simulated", "distance_pp", "distance_low_pp",
            "distance_high_pp", "source",
        ],
    )  # fmt: skip


def _sensitivity(targets: Targets, emulator: Emulator) -> pd.DataFrame:
    """First-order and total Sobol' indices of each target's emulated measure over the prior
    box (SALib's Saltelli sample on the emulator mean)."""
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    d = len(targets.parameters)
    problem = {"num_vars": d, "names": [p.path for p in targets.parameters], "bounds": [[0, 1]] * d}
    x = sobol_sample.sample(problem, SOBOL_BASE, calc_second_order=False, seed=targets.seed)
    mean, _ = emulator.predict(x)
    rows = []
    for k, t in enumerate(targets.targets):
        si = sobol_analyze.analyze(
            problem, mean[:, k], calc_second_order=False, seed=targets.seed, print_to_console=False
        )
        for i, p in enumerate(targets.parameters):
            rows.append(
                {
                    "target": t.name,
                    "parameter": p.path,
                    "S1": float(si["S1"][i]),
                    "ST": float(si["ST"][i]),
                }
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------
# the calibrated scenario


def calibrated_toml(calibration: Calibration, out_file: Path) -> str:
    """A scenario that `extends` the input with the chosen point's values."""
    import tomli_w

    targets = calibration.targets
    parent = os.path.relpath(targets.scenario_file, out_file.parent)
    nested: dict[str, Any] = {}
    for path, value in calibration.chosen.items():
        node = nested
        *heads, last = path.split(".")
        for head in heads:
            node = node.setdefault(head, {})
        node[last] = value
    header = (
        f"# written by famsim calibrate from {targets.file.name} ({targets.name}): the MAP point of\n"
        f"# the emulator posterior, re-checked on {targets.recheck_replications} fresh seeds; the\n"
        "# report beside this file gives the plausible set and the fit.\n"
    )
    body = tomli_w.dumps({"extends": parent, **nested})
    return header + body


def manifest(calibration: Calibration) -> dict[str, Any]:
    t = calibration.targets
    return {
        "targets_file": str(t.file),
        "targets_hash": t.content_hash(),
        "scenario": str(t.document["scenario"]),  # as the targets file names it
        "replications": t.replications,
        "replication_seeds": [replication_seed(t.seed, r) for r in range(t.replications)],
        "recheck_seeds": [
            replication_seed(t.seed + RECHECK_SEED_OFFSET, r) for r in range(t.recheck_replications)
        ],
        "parameters": {p.path: [p.low, p.high] for p in t.parameters},
        "chosen": calibration.chosen,
        "nroy_share": calibration.nroy_share,
        "effective_sample_size": calibration.ess,
        "kernels": calibration.kernels,
        "runs_total": calibration.runs_total,
        "runs_now": calibration.runs_now,
        "seconds": round(calibration.seconds, 1),
        "waves": {w.label: len(w.unit) for w in calibration.waves},
    }
