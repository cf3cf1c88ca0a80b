"""Writing a results directory: manifest.json, runs.parquet, timeseries.parquet, figures/, report.md.

The folder is written whole into a staging folder beside it and renamed into place
(sim/outputs.py), so an interrupted or failed write leaves the previous complete result, or
nothing: never a mix of two runs, never a file without its manifest.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sim import plots
from sim.errors import ScenarioError
from sim.outputs import job_identity, staged
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


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=_json_default), encoding="utf-8")


def write_run(result: RunResult, out: Path) -> list[Path]:
    """Write a run's results folder, replacing `out` whole."""
    out = Path(out)
    with staged(out) as staging:
        files = _write_run_files(result, staging)
    return [out / f for f in files]


def _write_run_files(result: RunResult, out: Path) -> list[str]:
    figures_dir = out / "figures"
    figures_dir.mkdir()
    name = result.scenario.name
    result.runs.to_parquet(out / "runs.parquet", index=False)
    result.timeseries.to_parquet(out / "timeseries.parquet", index=False)
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
        plots.unmet_need_map(
            mean_map(result.unmet_maps),
            figures_dir / "unmet_need_map.png",
            f"{name}: unmet need per cell",
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
    (out / "report.md").write_text(report, encoding="utf-8")
    files = ["manifest.json", "runs.parquet", "timeseries.parquet", "report.md"] + [
        f"figures/{f}" for f in figures
    ]
    job = job_identity("run", [result.scenario.name])
    _write_json(out / "manifest.json", dict(result.manifest, job=job, files=files))
    return files


def mean_map(maps: list[np.ndarray]) -> np.ndarray:
    """Cell-wise mean over replications, ignoring cells without need (NaN)."""
    stacked = np.stack(maps)
    seen = np.isfinite(stacked).sum(axis=0)
    total = np.where(np.isfinite(stacked), stacked, 0.0).sum(axis=0)
    return np.divide(total, seen, out=np.full(total.shape, np.nan), where=seen > 0)


def write_comparison(comparison, out: Path) -> list[Path]:
    """Write a comparison's results folder, replacing `out` whole."""
    out = Path(out)
    with staged(out) as staging:
        files = _write_comparison_files(comparison, staging)
    return [out / f for f in files]


def _write_comparison_files(comparison, out: Path) -> list[str]:
    from sim.differences import with_differences
    from sim.report import comparison_report

    figures_dir = out / "figures"
    figures_dir.mkdir()
    names = [s.name for s in comparison.scenarios]
    runs = comparison.runs
    with_differences(runs, comparison.scenarios, comparison.baseline).to_parquet(
        out / "runs.parquet", index=False
    )
    comparison.timeseries.to_parquet(out / "timeseries.parquet", index=False)
    if comparison.supplement:
        comparison.supplement_runs.to_parquet(out / "analysis_runs.parquet", index=False)
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
    (out / "report.md").write_text(report, encoding="utf-8")
    files = ["manifest.json", "runs.parquet", "timeseries.parquet", "report.md"] + [
        f"figures/{f}" for f in figures
    ]
    if comparison.supplement:
        files.append("analysis_runs.parquet")
    job = job_identity("compare", names)
    _write_json(out / "manifest.json", dict(comparison.manifest, job=job, files=files))
    return files


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
