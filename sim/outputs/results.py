"""Writing a results directory: manifest.json, runs.parquet, timeseries.parquet, figures/, report.md.

The folder is written whole into a staging folder beside it and renamed into place
(sim/outputs/folders.py), so an interrupted or failed write leaves the previous complete result, or
nothing: never a mix of two runs, never a file without its manifest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.core.codes import POLICY_LEVERS
from sim.measure.findings import ComparisonFindings
from sim.outputs import geo, plots
from sim.outputs.differences import with_differences
from sim.outputs.folders import job_identity, staged
from sim.outputs.report import comparison_report, run_report
from sim.scenario.schema import Scenario


class RunRecord(Protocol):
    """What a results folder of `famsim run` is written from (sim.studies.runner.RunResult
    has it): the scenario, one row per replication, the weekly time series, the manifest,
    and per replication one row per service site, neighbourhood and cell."""

    @property
    def scenario(self) -> Scenario: ...
    @property
    def runs(self) -> pd.DataFrame: ...
    @property
    def timeseries(self) -> pd.DataFrame: ...
    @property
    def manifest(self) -> dict[str, Any]: ...
    @property
    def sites(self) -> pd.DataFrame: ...
    @property
    def areas(self) -> pd.DataFrame: ...
    @property
    def cells(self) -> pd.DataFrame: ...


class ComparisonRecord(Protocol):
    """What a results folder of `famsim compare` is written from
    (sim.studies.comparison.Comparison has it): the scenarios and their results, the
    supplementary analysis runs, the stacked tables, what the comparison found and the
    manifest."""

    @property
    def scenarios(self) -> list[Scenario]: ...
    @property
    def results(self) -> Sequence[RunRecord]: ...
    @property
    def supplement(self) -> Sequence[RunRecord]: ...
    @property
    def baseline(self) -> str: ...
    @property
    def runs(self) -> pd.DataFrame: ...
    @property
    def supplement_runs(self) -> pd.DataFrame: ...
    @property
    def timeseries(self) -> pd.DataFrame: ...
    @property
    def findings(self) -> ComparisonFindings: ...
    @property
    def manifest(self) -> dict[str, Any]: ...


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=_json_default), encoding="utf-8")


def write_run(result: RunRecord, out: Path) -> list[Path]:
    """Write a run's results folder, replacing `out` whole."""
    out = Path(out)
    with staged(out) as staging:
        files = _write_run_files(result, staging)
    return [out / f for f in files]


RUN_FIGURES = (
    "participation_over_time",
    "unmet_need_map",
    "quintile_gradient",
    "barrier_attribution",
)
COMPARISON_FIGURES = (
    "participation_by_group",
    "quintile_gradient",
    "barrier_attribution",
    "participation_over_time",
    "unmet_need_maps",
    "budget_path",
)


def run_figures(result: RunRecord) -> list[str]:
    """The standard figures a run has data for, in the order they are written."""
    has = {
        "participation_over_time": not result.timeseries.empty,
        "unmet_need_map": not result.cells.empty,
        "quintile_gradient": len(result.runs) > 0,
        "barrier_attribution": len(result.runs) > 0,
    }
    return [kind for kind in RUN_FIGURES if has[kind]]


def run_figure(result: RunRecord, kind: str, path: Path | None = None) -> Figure | None:
    """One standard figure of a run: saved to `path`, or returned when no path is given."""
    name = result.scenario.name
    if kind not in run_figures(result):
        raise ValueError(
            f"no figure {kind!r} for this run; allowed: {', '.join(run_figures(result))}"
        )
    if kind == "participation_over_time":
        return plots.participation_over_time(
            result.timeseries,
            result.scenario.run.burn_in_weeks,
            path,
            f"{name}: under-3 participation by group",
        )
    if kind == "unmet_need_map":
        cells = result_cells(result)
        return plots.unmet_need_maps(
            geo.grid(cells, "unmet_needs_per_week"),
            geo.grid(cells, "unmet_share"),
            result.scenario.city.cell_size_m,
            first_replication(result.sites),
            path,
            f"{name}: unmet needs per cell over the measured weeks",
        )
    if kind == "quintile_gradient":
        return plots.quintile_gradient(
            result.runs, path, f"{name}: participation by income quintile"
        )
    return plots.barrier_attribution(result.runs, path, f"{name}: main barrier of unmet needs")


def _write_run_files(result: RunRecord, out: Path) -> list[str]:
    figures_dir = out / "figures"
    figures_dir.mkdir()
    result.runs.to_parquet(out / "runs.parquet", index=False)
    result.timeseries.to_parquet(out / "timeseries.parquet", index=False)
    result.sites.to_parquet(out / "sites.parquet", index=False)
    result.areas.to_parquet(out / "neighbourhoods.parquet", index=False)
    tables = []
    if not result.cells.empty:
        tables, _ = geo.write_tables(
            result.cells,
            result.sites,
            result.scenario.city.cell_size_m,
            result.scenario.run.weeks,
            out,
        )
    figures = []
    for kind in run_figures(result):
        run_figure(result, kind, figures_dir / f"{kind}.png")
        figures.append(f"{kind}.png")
    report = run_report(result.runs, result.manifest, figures)
    (out / "report.md").write_text(report, encoding="utf-8")
    files = [
        "manifest.json",
        "runs.parquet",
        "timeseries.parquet",
        "sites.parquet",
        "neighbourhoods.parquet",
        *tables,
        "report.md",
    ] + [f"figures/{f}" for f in figures]
    job = job_identity("run", [result.scenario.name])
    _write_json(out / "manifest.json", dict(result.manifest, job=job, files=files))
    return files


def result_cells(result: RunRecord) -> pd.DataFrame:
    """A run's cells, means over its replications (sim.outputs.geo.cell_summary)."""
    return geo.cell_summary(
        result.cells, result.scenario.city.cell_size_m, result.scenario.run.weeks
    )


def first_replication(sites: pd.DataFrame) -> pd.DataFrame:
    """The site table of one replication (where sites are and what they offer is the same
    in every replication; the maps draw it)."""
    if sites.empty:
        return sites
    return sites[sites["replication"] == sites["replication"].min()]


def comparison_figures(comparison: ComparisonRecord) -> list[str]:
    """The standard figures a comparison has data for, in the order they are written."""
    has_runs = len(comparison.runs) > 0
    has = {
        "participation_by_group": has_runs,
        "quintile_gradient": has_runs,
        "barrier_attribution": has_runs,
        "participation_over_time": not comparison.timeseries.empty,
        "unmet_need_maps": any(not r.cells.empty for r in comparison.results),
        "budget_path": any(a.path for a in comparison.findings.supplementary.adaptive),
    }
    return [kind for kind in COMPARISON_FIGURES if has[kind]]


def comparison_figure(
    comparison: ComparisonRecord, kind: str, path: Path | None = None
) -> Figure | None:
    """One standard figure of a comparison: saved to `path`, or returned without a path."""
    available = comparison_figures(comparison)
    if kind not in available:
        raise ValueError(f"no figure {kind!r} for this comparison; allowed: {', '.join(available)}")
    names = [s.name for s in comparison.scenarios]
    runs = comparison.runs
    if kind == "participation_by_group":
        return plots.participation_by_scenario(runs, names, path)
    if kind == "quintile_gradient":
        return plots.quintile_gradient_by_scenario(runs, names, path)
    if kind == "barrier_attribution":
        return plots.barrier_attribution_by_scenario(runs, names, path)
    if kind == "participation_over_time":
        burn_in = comparison.scenarios[0].run.burn_in_weeks
        return plots.participation_over_time_by_scenario(
            comparison.timeseries, names, burn_in, path
        )
    if kind == "budget_path":
        run = next(a for a in comparison.findings.supplementary.adaptive if a.path)
        return plots.budget_path(
            run.path, POLICY_LEVERS, f"{run.scenario}: the flexible budget by lever", path
        )
    shown = [r for r in comparison.results if not r.cells.empty]
    cells = {r.scenario.name: result_cells(r) for r in shown}
    return plots.unmet_maps_side_by_side(
        {name: geo.grid(c, "unmet_needs_per_week") for name, c in cells.items()},
        {name: geo.grid(c, "unmet_share") for name, c in cells.items()},
        comparison.scenarios[0].city.cell_size_m,
        {r.scenario.name: first_replication(r.sites) for r in shown},
        path,
    )


def write_comparison(comparison: ComparisonRecord, out: Path) -> list[Path]:
    """Write a comparison's results folder, replacing `out` whole."""
    out = Path(out)
    with staged(out) as staging:
        files = _write_comparison_files(comparison, staging)
    return [out / f for f in files]


def _write_comparison_files(comparison: ComparisonRecord, out: Path) -> list[str]:
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
    tables = []
    shown = [r for r in comparison.results if not r.cells.empty]
    if shown:
        tables, _ = geo.write_tables(
            pd.concat([r.cells for r in shown], ignore_index=True),
            pd.concat([r.sites for r in shown], ignore_index=True),
            comparison.scenarios[0].city.cell_size_m,
            comparison.scenarios[0].run.weeks,
            out,
        )
    figures = []
    for kind in comparison_figures(comparison):
        comparison_figure(comparison, kind, figures_dir / f"{kind}.png")
        figures.append(f"{kind}.png")
    report = comparison_report(comparison.scenarios, runs, comparison.findings, figures)
    (out / "report.md").write_text(report, encoding="utf-8")
    files = ["manifest.json", "runs.parquet", "timeseries.parquet", *tables, "report.md"] + [
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
