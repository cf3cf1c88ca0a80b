"""Sensitivity indices of a Sobol' or Morris sweep (SALib), with the checks SALib skips.

Replications are aggregated explicitly: the analysis uses the mean over replications per
design point, and the replication variance is reported beside it. Sample sizes are checked
(Sobol': N x (2D + 2) rows with N a power of two; Morris: r x (D + 1)), and a NaN in any
output is refused (SALib would silently return zeros).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from sim.core.errors import ScenarioError
from sim.studies.sweep import Sweep, by_point, design


def indices(kind: str, problem: dict, x: np.ndarray, y: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """First- and total-order Sobol' indices, or Morris mu* and sigma, with confidence
    intervals: one row per parameter. The pipeline shared by sweeps and the Ishigami test."""
    check_size(kind, problem["num_vars"], len(y))
    if not np.all(np.isfinite(y)):
        bad = np.flatnonzero(~np.isfinite(y))
        raise ScenarioError(
            "<sensitivity>",
            "outputs",
            f"{bad.size} design points have no finite value (first: {bad[:5].tolist()}); "
            "SALib would return zeros for them, so no indices are computed",
        )
    names = problem["names"]
    if kind == "sobol":
        from SALib.analyze import sobol

        res = sobol.analyze(problem, y, calc_second_order=True, print_to_console=False, seed=seed)
        return pd.DataFrame(
            {
                "parameter": names,
                "S1": res["S1"],
                "S1_conf": res["S1_conf"],
                "ST": res["ST"],
                "ST_conf": res["ST_conf"],
            }
        )
    if kind == "morris":
        from SALib.analyze import morris

        res = morris.analyze(problem, x, y, print_to_console=False, seed=seed)
        return pd.DataFrame(
            {
                "parameter": names,
                "mu_star": res["mu_star"],
                "mu_star_conf": res["mu_star_conf"],
                "mu": res["mu"],
                "sigma": res["sigma"],
            }
        )
    raise ScenarioError("<sensitivity>", "sampler.kind", f"value {kind!r}; allowed: sobol, morris")


def check_size(kind: str, d: int, rows: int) -> None:
    if kind == "sobol":
        n, rest = divmod(rows, 2 * d + 2)
        if rest or n < 1 or n & (n - 1):
            raise ScenarioError(
                "<sensitivity>",
                "outputs",
                f"{rows} rows: Sobol' analysis needs N x (2D + 2) = N x {2 * d + 2} rows "
                "with N a power of two",
            )
    elif kind == "morris":
        if rows % (d + 1):
            raise ScenarioError(
                "<sensitivity>", "outputs", f"{rows} rows: Morris needs r x (D + 1) = r x {d + 1}"
            )


def aggregate(sweep: Sweep, frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and variance over replications per design point, and how many replications."""
    points = len(design(sweep))
    ok = frame[frame["status"] == "ok"]
    grouped = ok.groupby("point")[metric]
    table = pd.DataFrame(
        {
            "mean": grouped.mean(),
            "replication_variance": grouped.var(ddof=1),
            "replications": grouped.count(),
        }
    ).reindex(range(points))
    table.index.name = "point"
    return table


def analyse(sweep: Sweep, out: Path, dest: Path, notes: list[str] | None = None) -> list[Path]:
    """Indices for every measure the sweep names; writes a table and a plot per measure.
    A measure that does not vary over the design has no indices: it is skipped with a note
    (appended to `notes`) when another measure varies, and refused when none does."""
    if sweep.kind not in ("sobol", "morris"):
        raise ScenarioError(
            str(sweep.file),
            "sampler.kind",
            f"value {sweep.kind!r}; sensitivity needs sobol or morris",
        )
    if not (out / "manifest.json").exists():
        raise ScenarioError(
            "<command line>", "--out", f"{str(out)!r} holds no results of this sweep"
        )
    frame = by_point(sweep, out)
    missing = int(frame["status"].isna().sum())
    if missing:
        raise ScenarioError(
            "<command line>",
            "--out",
            f"{str(out)!r} lacks {missing} of {len(frame)} runs; finish the sweep first "
            "(famsim sweep ... --resume)",
        )
    problem = sweep.problem()
    x = np.array([[p[name] for name in problem["names"]] for p in design(sweep)], dtype=float)
    # every check before anything is written: a refused analysis leaves no files
    outputs = {}
    constant = {}
    for metric in sweep.sensitivity_metrics:
        agg = aggregate(sweep, frame, metric)
        y = agg["mean"].to_numpy(dtype=float)
        if np.isnan(y).any():
            bad = agg.index[np.isnan(y)].tolist()
            raise ScenarioError(
                str(sweep.file),
                f"sensitivity.metrics.{metric}",
                f"no value at {len(bad)} design points (first: {bad[:5]}; failed runs or an "
                "undefined measure); SALib would silently return zeros, so nothing is computed",
            )
        if np.all(y == y[0]):
            # zero variance: SALib divides by it and returns zeros under runtime warnings
            constant[metric] = float(y[0])
        else:
            outputs[metric] = (agg, y)
    for metric, value in constant.items():
        message = (
            f"measure {metric} does not vary over the design (all values {value:.6g}): "
            "no sensitivity to compute"
        )
        if not outputs:
            raise ScenarioError(str(sweep.file), f"sensitivity.metrics.{metric}", message)
        if notes is not None:
            notes.append(f"{message}; skipped")
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    tables = []
    for metric, (agg, y) in outputs.items():
        table = indices(sweep.kind, problem, x, y, seed=int(sweep.sampler.get("seed", 0)))
        table.insert(0, "metric", metric)
        table["replication_variance_mean"] = float(agg["replication_variance"].mean())
        table["output_variance"] = float(np.var(y, ddof=1))
        tables.append(table)
        written.append(_plot(sweep.kind, table, metric, dest))
        agg_path = dest / f"aggregate_{metric}.csv"
        _atomic_csv(agg.reset_index(), agg_path)
        written.append(agg_path)
    all_path = dest / "indices.csv"
    _atomic_csv(pd.concat(tables, ignore_index=True), all_path)
    written.insert(0, all_path)
    return written


def _atomic_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f"_tmp-{path.name}")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _plot(kind: str, table: pd.DataFrame, metric: str, dest: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 0.5 * len(table) + 1.5))
    ax = fig.subplots()
    pos = np.arange(len(table))
    if kind == "sobol":
        ax.barh(pos - 0.2, table["S1"], 0.4, xerr=table["S1_conf"], label="first order (S1)")
        ax.barh(pos + 0.2, table["ST"], 0.4, xerr=table["ST_conf"], label="total order (ST)")
        ax.set_xlabel("Sobol' index (95 % interval)")
    else:
        ax.barh(pos, table["mu_star"], 0.6, xerr=table["mu_star_conf"], label="mu*")
        ax.set_xlabel("Morris mu* (95 % interval)")
    ax.set_yticks(pos, table["parameter"])
    ax.set_title(metric)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = dest / f"indices_{metric}.png"
    tmp = path.with_name(f"_tmp-{path.name}")
    fig.savefig(tmp, dpi=110, format="png")
    os.replace(tmp, path)
    return path
