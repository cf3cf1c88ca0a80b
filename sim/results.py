"""Writing a results directory: manifest.json, runs.parquet, timeseries.parquet, figures/, report.md.

Files are written under temporary names and renamed into place, so an interrupted write
leaves no partial file behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from sim import plots
from sim.errors import ScenarioError
from sim.report import run_report
from sim.runner import RunResult

RESULTS_ROOT = Path("results")


def default_out_dir(name: str) -> Path:
    """results/<name>; names are validated (letters, digits, '_' and '-') so this cannot
    leave results/."""
    path = (RESULTS_ROOT / name).resolve()
    root = RESULTS_ROOT.resolve()
    if path.parent != root:
        raise ScenarioError("<command line>", "name", f"value {name!r} would write outside {root}")
    return RESULTS_ROOT / name


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"_tmp-{path.name}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _atomic_parquet(frame, path: Path) -> None:
    tmp = path.with_name(f"_tmp-{path.name}")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def write_run(result: RunResult, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    figures_dir = out / "figures"
    figures_dir.mkdir(exist_ok=True)
    name = result.scenario.name
    _atomic_parquet(result.runs, out / "runs.parquet")
    _atomic_parquet(result.timeseries, out / "timeseries.parquet")
    figures = []
    if not result.timeseries.empty:
        plots.participation_over_time(
            result.timeseries,
            result.scenario.run.burn_in_weeks,
            figures_dir / "participation_over_time.png",
            f"{name}: under-3 participation by group",
        )
        figures.append("participation_over_time.png")
    if result.unmet_maps:
        stacked = np.stack(result.unmet_maps)
        seen = np.isfinite(stacked).sum(axis=0)
        total = np.where(np.isfinite(stacked), stacked, 0.0).sum(axis=0)
        mean_map = np.divide(total, seen, out=np.full(total.shape, np.nan), where=seen > 0)
        plots.unmet_need_map(
            mean_map, figures_dir / "unmet_need_map.png", f"{name}: unmet need per cell"
        )
        figures.append("unmet_need_map.png")
    if len(result.runs):
        plots.quintile_gradient(
            result.runs,
            figures_dir / "quintile_gradient.png",
            f"{name}: participation by income quintile",
        )
        plots.barrier_attribution(
            result.runs,
            figures_dir / "barrier_attribution.png",
            f"{name}: main barrier of unmet needs",
        )
        figures += ["quintile_gradient.png", "barrier_attribution.png"]
    report = run_report(result.runs, result.manifest, figures)
    _atomic_write_bytes(out / "report.md", report.encode("utf-8"))
    manifest = dict(
        result.manifest,
        files=["manifest.json", "runs.parquet", "timeseries.parquet", "report.md"]
        + [f"figures/{f}" for f in figures],
    )
    _atomic_write_bytes(
        out / "manifest.json", json.dumps(manifest, indent=2, default=_json_default).encode("utf-8")
    )
    return [out / f for f in manifest["files"]]


def mean_map(maps: list[np.ndarray]) -> np.ndarray:
    """Cell-wise mean over replications, ignoring cells without need (NaN)."""
    stacked = np.stack(maps)
    seen = np.isfinite(stacked).sum(axis=0)
    total = np.where(np.isfinite(stacked), stacked, 0.0).sum(axis=0)
    return np.divide(total, seen, out=np.full(total.shape, np.nan), where=seen > 0)


def write_comparison(comparison, out: Path) -> list[Path]:
    from sim.report import comparison_report

    out.mkdir(parents=True, exist_ok=True)
    figures_dir = out / "figures"
    figures_dir.mkdir(exist_ok=True)
    names = [s.name for s in comparison.scenarios]
    runs = comparison.runs
    _atomic_parquet(runs, out / "runs.parquet")
    _atomic_parquet(comparison.timeseries, out / "timeseries.parquet")
    if comparison.supplement:
        _atomic_parquet(comparison.supplement_runs, out / "analysis_runs.parquet")
    figures = []
    if len(runs):
        plots.participation_by_scenario(runs, names, figures_dir / "participation_by_group.png")
        plots.quintile_gradient_by_scenario(runs, names, figures_dir / "quintile_gradient.png")
        plots.barrier_attribution_by_scenario(runs, names, figures_dir / "barrier_attribution.png")
        figures += [
            "participation_by_group.png",
            "quintile_gradient.png",
            "barrier_attribution.png",
        ]
    timeseries = comparison.timeseries
    if not timeseries.empty:
        burn_in = comparison.scenarios[0].run.burn_in_weeks
        plots.participation_over_time_by_scenario(
            timeseries, names, burn_in, figures_dir / "participation_over_time.png"
        )
        figures.append("participation_over_time.png")
    maps = {r.scenario.name: mean_map(r.unmet_maps) for r in comparison.results if r.unmet_maps}
    if maps:
        plots.unmet_maps_side_by_side(maps, figures_dir / "unmet_need_maps.png")
        figures.append("unmet_need_maps.png")
    report = comparison_report(comparison, figures)
    _atomic_write_bytes(out / "report.md", report.encode("utf-8"))
    files = ["manifest.json", "runs.parquet", "timeseries.parquet", "report.md"] + [
        f"figures/{f}" for f in figures
    ]
    if comparison.supplement:
        files.append("analysis_runs.parquet")
    manifest = dict(comparison.manifest, files=files)
    _atomic_write_bytes(
        out / "manifest.json", json.dumps(manifest, indent=2, default=_json_default).encode("utf-8")
    )
    return [out / f for f in files]


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
