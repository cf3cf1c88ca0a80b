"""Comparing configurations with common random numbers (the `famsim compare` job).

Every scenario runs the same replication seeds, so replication r of each scenario sees the
same families and the same draws; differences to the baseline are paired over replications.
Scenarios must share the city and the time window, or the comparison is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.core.errors import ScenarioError
from sim.core.provenance import git_state, package_versions
from sim.outputs.report import interval
from sim.scenario.schema import Scenario
from sim.studies.runner import (
    RunResult,
    checked,
    collect,
    execute,
    prepare,
    with_run_settings,
)

# relative difference above which two outlays count as different (the shipped
# configurations are equalised exactly; 0.5 % is the acceptance tolerance)
OUTLAY_TOLERANCE = 0.005


@dataclass
class Comparison:
    """Scenarios run with common random numbers: per-scenario RunResults, the baseline's
    name and the manifest; `runs` and `timeseries` stack them with a `scenario` column."""

    scenarios: list[Scenario]
    results: list[RunResult]
    baseline: str
    manifest: dict[str, Any]
    supplement: list[RunResult] = field(default_factory=list)

    @property
    def runs(self) -> pd.DataFrame:
        return pd.concat([r.runs for r in self.results], ignore_index=True)

    @property
    def supplement_runs(self) -> pd.DataFrame:
        frames = [r.runs for r in self.supplement]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def timeseries(self) -> pd.DataFrame:
        frames = [r.timeseries for r in self.results if not r.timeseries.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def summary(self, measures: list[str] | None = None) -> pd.DataFrame:
        """One row per (scenario, measure): mean, 95 % interval (low, high) and n over
        replications, and the difference to the baseline paired over replications
        (diff, diff_low, diff_high; zero for the baseline itself). Units as the measures'."""
        from sim.outputs.report import summary_table

        frames = []
        runs = self.runs
        for scenario in self.scenarios:
            table = summary_table(runs[runs["scenario"] == scenario.name], measures)
            diffs = [
                paired_difference(runs, scenario.name, self.baseline, m) for m in table["measure"]
            ]
            table[["diff", "diff_low", "diff_high"]] = pd.DataFrame(diffs, index=table.index)
            table.insert(0, "scenario", scenario.name)
            frames.append(table)
        return pd.concat(frames, ignore_index=True)

    def plot(self, kind: str = "participation_by_group", path: str | Path | None = None):
        """A standard figure: participation_by_group, quintile_gradient,
        barrier_attribution, participation_over_time or unmet_need_maps. Returns the
        matplotlib figure, or saves it to `path` (PNG)."""
        from sim.outputs.results import comparison_figure

        return comparison_figure(self, kind, Path(path) if path is not None else None)

    def write(self, out: str | Path) -> list[Path]:
        """Write the results folder (manifest.json, runs.parquet, timeseries.parquet,
        figures/, report.md), replacing `out` whole; returns the files written."""
        from sim.outputs.results import write_comparison

        return write_comparison(self, Path(out))


def city_identity(scenario: Scenario) -> str:
    """A hash of everything that makes the city: its settings and, for a planner's city,
    the bytes of its files."""
    city = scenario.identity_dict()["city"]
    return hashlib.sha256(json.dumps(city, sort_keys=True).encode()).hexdigest()


def check_comparable(scenarios: list[Scenario], origins: list[str]) -> None:
    """Refuse scenarios on different cities, with different windows or duplicate names."""
    if len(scenarios) < 2:
        raise ScenarioError("<command line>", "", "compare needs at least two scenarios")
    names = [s.name for s in scenarios]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ScenarioError(
            "<command line>", "name", f"scenario names must differ; repeated: {duplicates}"
        )
    first, origin0 = scenarios[0], origins[0]
    identity = city_identity(first)
    for scenario, origin in zip(scenarios[1:], origins[1:], strict=True):
        if city_identity(scenario) != identity:
            raise ScenarioError(
                origin,
                "city",
                f"scenario {scenario.name!r} is built on a different city than {first.name!r} ({origin0}); "
                "compare only scenarios on the same city (same [city] table and files)",
            )
        for key in ("weeks", "burn_in_weeks"):
            a, b = getattr(first.run, key), getattr(scenario.run, key)
            if a != b:
                raise ScenarioError(
                    origin,
                    f"run.{key}",
                    f"value {b} differs from {a} in {origin0}; compared scenarios must share the time window",
                )


def compare(
    scenarios: list[Scenario],
    names: list[str] | None = None,
    *,
    baseline: str | None = None,
    reps: int | None = None,
    weeks: int | None = None,
    burn_in: int | None = None,
    families: int | None = None,
    seed: int | None = None,
    workers: int = 1,
    quiet: bool = True,
    supplement: list[Scenario] | None = None,
    origins: list[str] | None = None,
) -> Comparison:
    """Run scenarios with common random numbers, as `famsim compare` does: replication r of
    every scenario has the same families and draws; differences to the baseline are paired.

    names: what to call each scenario in the results (default: their own names); baseline:
    the name to difference against (default: the first); reps, weeks, burn_in, families,
    seed: as for sim.run, applied to every scenario; workers: processes (results do not
    depend on it); supplement: analysis scenarios on the same city and seeds, reported
    separately (e.g. the crossover grid); origins: the files the scenarios came from (named
    in errors). Bad input raises ScenarioError."""
    if names is not None:
        if len(names) != len(scenarios):
            raise ScenarioError(
                "<sim.compare>", "names", f"{len(names)} names for {len(scenarios)} scenarios"
            )
        scenarios = [
            s.model_copy(update={"name": n}) for s, n in zip(scenarios, names, strict=True)
        ]
    origins = origins or [f"<scenario {s.name}>" for s in scenarios]
    scenarios = [checked(s, o) for s, o in zip(scenarios, origins, strict=True)]
    if any(v is not None for v in (reps, weeks, burn_in, families, seed)):
        scenarios = [
            with_run_settings(s, weeks, burn_in, seed, reps, families, o, by="sim.compare")
            for s, o in zip(scenarios, origins, strict=True)
        ]
    supplement = [checked(s, f"<analysis {s.name}>") for s in supplement or []]
    check_comparable(scenarios + supplement, origins + [f"<analysis {s.name}>" for s in supplement])
    names = [s.name for s in scenarios]
    baseline = baseline or names[0]
    if baseline not in names:
        raise ScenarioError(
            "<command line>", "--baseline", f"value {baseline!r} is not one of {names}"
        )
    reps = {s.run.replications for s in scenarios}
    seeds = {s.run.seed for s in scenarios + supplement}
    if len(reps) > 1 or len(seeds) > 1:
        raise ScenarioError(
            origins[0],
            "run",
            "compared scenarios must share run.seed and run.replications (common random numbers)",
        )
    for scenario, origin in zip(scenarios, origins, strict=True):
        prepare(scenario, origin)
    tasks = [(s, r) for s in scenarios + supplement for r in range(s.run.replications)]
    done = execute(tasks, workers, quiet, "compare")
    results = [collect(s, [d for d in done if d.scenario_name == s.name]) for s in scenarios]
    extra = [collect(s, [d for d in done if d.scenario_name == s.name]) for s in supplement]
    manifest = {
        "scenarios": {r.scenario.name: r.manifest for r in results},
        "origins": dict(zip(names, origins, strict=True)),
        "baseline": baseline,
        "seed": scenarios[0].run.seed,
        "replication_seeds": [d.seed for d in done if d.scenario_name == baseline],
        "city_identity": city_identity(scenarios[0]),
        "versions": package_versions(),
        "git": git_state(),
    }
    manifest["supplement"] = {r.scenario.name: r.manifest for r in extra}
    return Comparison(scenarios, results, baseline, manifest, extra)


def paired_difference(
    runs: pd.DataFrame, scenario: str, baseline: str, column: str
) -> tuple[float, float, float]:
    """Mean and 95 % interval of (scenario - baseline) over replications paired by seed."""
    a = runs[runs["scenario"] == scenario].set_index("replication")[column]
    b = runs[runs["scenario"] == baseline].set_index("replication")[column]
    joined = pd.concat([a, b], axis=1, join="inner").dropna()
    return interval(joined.iloc[:, 0] - joined.iloc[:, 1])


def outlay_check(runs: pd.DataFrame) -> dict[str, float]:
    """Mean ex-ante outlay per scenario."""
    return runs.groupby("scenario", sort=False)["public_outlay_eur_week"].mean().to_dict()


def outlays_differ(outlays: dict[str, float], baseline: str) -> dict[str, bool]:
    base = outlays[baseline]
    return {
        name: abs(value - base) > OUTLAY_TOLERANCE * max(abs(base), 1e-9)
        for name, value in outlays.items()
    }


def cost_per_additional_arope_child(runs: pd.DataFrame, scenario: str, baseline: str) -> str:
    """Extra outlay per extra AROPE child under 3 enrolled, only when outlays differ. Rule: when
    the scenario enrols no more AROPE children (paired mean difference <= 0), no cost per
    additional child is defined, and the report says so."""
    d_outlay, _, _ = paired_difference(runs, scenario, baseline, "public_outlay_eur_week")
    d_children, lo, hi = paired_difference(runs, scenario, baseline, "u3_enrolled_arope")
    if not np.isfinite(d_children) or d_children <= 0:
        return f"not defined: {d_children:+.1f} AROPE children enrolled (no additional child)"
    return f"{d_outlay / d_children:,.0f} EUR per week per additional AROPE child ({d_outlay:+,.0f} EUR / {d_children:+.1f} children)"
