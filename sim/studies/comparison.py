"""Comparing configurations with common random numbers (the `famsim compare` job).

Every scenario runs the same replication seeds, so replication r of each scenario sees the
same families and the same draws; differences to the baseline are paired over replications.
Scenarios must share the city and the time window, or the comparison is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.core.codes import DIMENSIONS, POLICY_LEVERS, SERVICE_TYPES
from sim.core.errors import ScenarioError
from sim.core.provenance import git_state, package_versions
from sim.measure import patterns
from sim.measure.findings import (
    AdaptiveRun,
    ComparisonFindings,
    CostPerChild,
    Difference,
    HubChange,
    LeftOut,
    LeverEffect,
    Outlay,
    Supplementary,
)
from sim.measure.stats import paired_difference, summary_table
from sim.scenario.schema import Scenario
from sim.studies.levers import LeverSet, Variant, lever_effects
from sim.studies.levers import variants as lever_variants_of
from sim.studies.runner import (
    RunResult,
    checked,
    collect,
    execute,
    prepare,
    scale_scenario,
    with_run_settings,
)

# relative difference above which two outlays count as different (the shipped
# configurations are equalised exactly; 0.5 % is the acceptance tolerance)
OUTLAY_TOLERANCE = 0.005
# the measures whose difference to the baseline a comparison reports, in report order
DIFFERENCES = (
    "u3_enrolled_arope",
    "u3_participation_arope",
    "u3_participation_non_arope",
    "u3_gap_pp",
    "concentration_index",
    "unmet_need_share",
    "multi_service_share",
    "travel_minutes_nearest",
    "travel_minutes_used",
    "net_cost_eur_week",
)


@dataclass
class Comparison:
    """Scenarios run with common random numbers: per-scenario RunResults, the baseline's
    name, the manifest and what the comparison found (`findings`: paired differences,
    outlay check, costs per additional AROPE child, patterns, crossover); `runs` and
    `timeseries` stack the results with a `scenario` column."""

    scenarios: list[Scenario]
    results: list[RunResult]
    baseline: str
    manifest: dict[str, Any]
    findings: ComparisonFindings
    supplement: list[RunResult] = field(default_factory=list)

    @property
    def runs(self) -> pd.DataFrame:
        return stacked_runs(self.results)

    @property
    def supplement_runs(self) -> pd.DataFrame:
        return stacked_runs(self.supplement)

    @property
    def timeseries(self) -> pd.DataFrame:
        frames = [r.timeseries for r in self.results if not r.timeseries.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def summary(self, measures: list[str] | None = None) -> pd.DataFrame:
        """One row per (scenario, measure): mean, 95 % interval (low, high) and n over
        replications, and the difference to the baseline paired over replications
        (diff, diff_low, diff_high; zero for the baseline itself). Units as the measures'."""
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
    levers: LeverSet | None = None,
) -> Comparison:
    """Run scenarios with common random numbers, as `famsim compare` does: replication r of
    every scenario has the same families and draws; differences to the baseline are paired.

    names: what to call each scenario in the results (default: their own names); baseline:
    the name to difference against (default: the first); reps, weeks, burn_in, families,
    seed: as for sim.run, applied to every scenario; workers: processes (results do not
    depend on it); supplement: analysis scenarios on the same city and seeds, reported
    separately (e.g. the crossover grid); origins: the files the scenarios came from (named
    in errors); levers: a lever set (`sim.studies.levers`) whose variants run as analyses
    too, each lever's own effect then reported with a paired interval. Bad input raises
    ScenarioError."""
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
    lever_variants = []
    if levers is not None:
        first = scenarios[0]
        lever_variants = []
        for v in lever_variants_of(levers):
            scenario = scale_scenario(v.scenario, first.city.families)
            scenario = scenario.model_copy(update={"run": first.run})
            lever_variants.append(replace(v, scenario=scenario))
        supplement += [checked(v.scenario, f"<lever {v.scenario.name}>") for v in lever_variants]
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
    found = findings(stacked_runs(results), stacked_runs(extra), names, baseline)
    found = replace(
        found,
        supplementary=supplementary(results, extra, lever_variants),
    )
    return Comparison(scenarios, results, baseline, manifest, found, extra)


def stacked_runs(results: list[RunResult]) -> pd.DataFrame:
    """The runs tables of several scenarios, one below the other (each has its `scenario`
    column); an empty table for none."""
    frames = [r.runs for r in results]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def findings(
    runs: pd.DataFrame, supplement_runs: pd.DataFrame, names: list[str], baseline: str
) -> ComparisonFindings:
    """What a comparison's report shows beside the per-scenario estimates: each scenario's
    difference to the baseline in every DIFFERENCES measure (paired over replications), the
    outlay check, the cost per additional AROPE child where outlays differ, and the patterns
    and crossover the compared and supplementary scenarios allow."""
    differences = [
        Difference(name, column, *paired_difference(runs, name, baseline, column))
        for name in names
        if name != baseline
        for column in DIFFERENCES
    ]
    outlays = outlay_check(runs)
    differ = outlays_differ(outlays, baseline)
    checked_outlays = [
        Outlay(
            name,
            outlays[name],
            runs[runs["scenario"] == name]["net_cost_eur_week"].mean(),
            differ[name],
        )
        for name in names
    ]
    costs = [
        cost_per_additional_arope_child(runs, name, baseline)
        for name in names
        if differ[name] and name != baseline
    ]
    both = pd.concat([runs, supplement_runs], ignore_index=True) if len(supplement_runs) else runs
    found, grid = applicable_patterns(both)
    return ComparisonFindings(baseline, differences, checked_outlays, costs, found, grid)


def applicable_patterns(
    runs: pd.DataFrame,
) -> tuple[list[patterns.Pattern], patterns.Crossover | None]:
    """The patterns the model is judged on, for whichever configurations the runs hold
    (by scenario name), and the crossover when the targeted grid and proportionate are
    there."""
    names = set(runs["scenario"])
    found: list[patterns.Pattern] = []
    if "universal" in names:
        found.append(patterns.matthew_effect(runs, "universal"))
    if "universal_free" in names:
        found.append(patterns.matthew_effect(runs, "universal_free"))
    if {"one_roof", "universal"} <= names:
        found.append(patterns.hubs_multi_service(runs, "one_roof", "universal"))
    if {"proportionate_one_roof", "proportionate"} <= names:
        found.append(patterns.hubs_multi_service(runs, "proportionate_one_roof", "proportionate"))
    for name in ("universal", "proportionate"):
        if name in names:
            found.append(patterns.travel_decay(runs, name))
    for name in ("proportionate", "targeted"):
        if name in names:
            found.append(patterns.word_of_mouth_reach(runs, name))
    grid = [n for n in names if n.startswith("targeted_stigma")]
    crossover = (
        patterns.crossover(runs, "proportionate") if grid and "proportionate" in names else None
    )
    return found, crossover


def outlay_check(runs: pd.DataFrame) -> dict[str, float]:
    """Mean ex-ante outlay per scenario."""
    return runs.groupby("scenario", sort=False)["public_outlay_eur_week"].mean().to_dict()


def outlays_differ(outlays: dict[str, float], baseline: str) -> dict[str, bool]:
    base = outlays[baseline]
    return {
        name: abs(value - base) > OUTLAY_TOLERANCE * max(abs(base), 1e-9)
        for name, value in outlays.items()
    }


def cost_per_additional_arope_child(
    runs: pd.DataFrame, scenario: str, baseline: str
) -> CostPerChild:
    """Extra outlay per extra AROPE child under 3 enrolled (asked only when outlays differ).
    Rule: when the scenario enrols no more AROPE children (paired mean difference <= 0, or
    none to pair), no cost per additional child is defined."""
    d_outlay, _, _ = paired_difference(runs, scenario, baseline, "public_outlay_eur_week")
    d_children, _, _ = paired_difference(runs, scenario, baseline, "u3_enrolled_arope")
    defined = bool(np.isfinite(d_children) and d_children > 0)
    return CostPerChild(scenario, d_outlay, d_children, d_outlay / d_children if defined else None)


# the measures an adaptive run and a hub configuration are set against their twins in
ADAPTIVE_MEASURES = ("u3_participation_arope", "u3_participation_all", "u3_gap_pp")
HUB_MEASURES = (
    "multi_service_share",
    "travel_minutes_nearest",
    "travel_minutes_used",
    "u3_participation_arope",
)


def _identity_without(scenario: Scenario, section: str) -> str:
    data = scenario.identity_dict()
    data.pop(section, None)
    return json.dumps(data, sort_keys=True, default=str)


def _twin(scenario: Scenario, others: list[Scenario], section: str, plain) -> str | None:
    """The scenario among `others` that is `scenario` but for `section`, where it is
    `plain` (no policy, no hubs)."""
    key = _identity_without(scenario, section)
    for other in others:
        if (
            other.name != scenario.name
            and plain(other)
            and _identity_without(other, section) == key
        ):
            return other.name
    return None


def supplementary(
    results: list[RunResult], extra: list[RunResult], lever_variants: list[Variant]
) -> Supplementary:
    """Lever by lever (the variants against their configurations), each adaptive run against
    its static twin with its budget path, each hub configuration against its twin without
    hubs (travel next to multi-service use), and who each compared configuration leaves
    out and why."""
    everything = results + extra
    runs = stacked_runs(everything)
    scenarios = [r.scenario for r in everything]
    levers = [LeverEffect(**row) for row in lever_effects(runs, lever_variants).to_dict("records")]
    adaptive = []
    for result in everything:
        s = result.scenario
        if not s.policy.adaptive:
            continue
        twin = _twin(s, scenarios, "policy", lambda o: not o.policy.adaptive)
        if twin is None:
            continue
        diffs = [
            Difference(s.name, m, *paired_difference(runs, s.name, twin, m))
            for m in ADAPTIVE_MEASURES
        ]
        path, acted = _budget_path(result.timeseries, s.policy.review_weeks)
        adaptive.append(AdaptiveRun(s.name, twin, diffs, path, acted))
    hubs = []
    for s in (r.scenario for r in results):
        if not s.hubs.enabled:
            continue
        twin = _twin(s, [r.scenario for r in results], "hubs", lambda o: not o.hubs.enabled)
        if twin is not None:
            hubs.append(
                HubChange(
                    s.name,
                    twin,
                    [
                        Difference(s.name, m, *paired_difference(runs, s.name, twin, m))
                        for m in HUB_MEASURES
                    ],
                )
            )
    return Supplementary(levers, adaptive, hubs, [left_out(runs, r.scenario.name) for r in results])


def _budget_path(
    timeseries: pd.DataFrame, review_weeks: int
) -> tuple[list[dict[str, float]], list[str]]:
    """Mean holdings per lever (EUR a week) over replications after each review, and the
    dimension most replications acted on there."""
    columns = [f"policy_{lever}_eur_week" for lever in POLICY_LEVERS]
    if timeseries.empty or not set(columns) <= set(timeseries.columns):
        return [], []
    reviews = timeseries[(timeseries["week"] + 1) % review_weeks == 0]
    path, acted = [], []
    for week, rows in reviews.groupby("week", sort=True):
        path.append({"week": float(week), **rows[columns].mean().to_dict()})
        top = int(rows["policy_signal"].mode().iloc[0])
        acted.append(DIMENSIONS[top] if top >= 0 else "none")
    return path, acted


def _ranked(row: pd.Series, prefix: str, suffix: str) -> list[tuple[str, float]]:
    shares = [(d, float(row[f"{prefix}{d}{suffix}"])) for d in DIMENSIONS]
    return sorted((p for p in shares if p[1] > 0), key=lambda p: -p[1])


def left_out(runs: pd.DataFrame, name: str) -> LeftOut:
    """Who `name` leaves out and why, from the means of its replications."""
    mean = runs[runs["scenario"] == name].mean(numeric_only=True)
    return LeftOut(
        scenario=name,
        arope_u3_not_in_care=1.0 - float(mean["u3_participation_arope"]),
        non_arope_u3_not_in_care=1.0 - float(mean["u3_participation_non_arope"]),
        by_group={g: _ranked(mean, "main_barrier_", f"_{g}") for g in ("arope", "non_local")},
        by_type={t: _ranked(mean, "main_barrier_", f"_{t}") for t in SERVICE_TYPES},
    )
