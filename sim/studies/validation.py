"""Validation: patterns the model was not fitted to, each with its source and a band on its
size (`validation/patterns.toml`, run by `famsim patterns`).

A patterns file lists the calibration targets files it must stay apart from, and patterns:

    targets = ["targets/flanders.toml", "targets/eu27_2024.toml"]
    [[pattern]]
    name = "health reach of non-local-language families"
    scenario = "../scenarios/base.toml"
    measure = "takeup_health_by_language_non_local"   # or "a / b", "a - b"
    band = [0.85, 1.0]                                # acceptance band on the size
    fast = true                                       # in the subset `make test` runs
    source = "EVIDENCE H3 ..."

A pattern passes when the mean over replications lies inside its band; its 95 % interval
is printed beside it. A pattern whose scenario and measure are a calibration target is
refused: a figure the model was fitted to is no validation of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.core.errors import ScenarioError
from sim.measure.stats import interval
from sim.scenario.schema import load_scenario
from sim.studies.calibration import check_expression, evaluate, load_targets
from sim.studies.runner import run
from sim.studies.sweep import read_toml

PATTERN_KEYS = ("name", "scenario", "measure", "band", "fast", "source", "note")


@dataclass(frozen=True)
class PatternSpec:
    name: str
    scenario_file: Path
    measure: str
    low: float
    high: float
    fast: bool
    source: str


@dataclass(frozen=True)
class PatternResult:
    spec: PatternSpec
    mean: float
    low: float  # 95 % interval over replications
    high: float
    replications: int

    @property
    def passes(self) -> bool:
        return self.spec.low <= self.mean <= self.spec.high


def load_patterns(path: str | Path) -> list[PatternSpec]:
    path = Path(path)
    origin = str(path)
    data: dict[str, Any] = read_toml(path)
    for key in data:
        if key not in ("targets", "pattern"):
            raise ScenarioError(origin, key, "unknown key; allowed: targets, pattern")
    fitted: set[tuple[Path, str]] = set()
    for name in data.get("targets", []):
        targets = load_targets(path.parent / name)
        fitted |= {(targets.scenario_file, t.measure) for t in targets.targets}
    out = []
    for i, p in enumerate(data.get("pattern", [])):
        label = f"pattern[{i}]"
        if not isinstance(p, dict):
            raise ScenarioError(origin, label, "must be a table")
        for key in p:
            if key not in PATTERN_KEYS:
                raise ScenarioError(
                    origin, f"{label}.{key}", f"unknown key; allowed: {', '.join(PATTERN_KEYS)}"
                )
        for key in ("name", "scenario", "measure", "band", "source"):
            if key not in p:
                raise ScenarioError(origin, f"{label}.{key}", "missing")
        scenario_file = (path.parent / str(p["scenario"])).resolve()
        if not scenario_file.is_file():
            raise ScenarioError(
                origin, f"{label}.scenario", f"value {p['scenario']!r}: no such file"
            )
        measure = check_expression(origin, f"{label}.measure", p["measure"])
        band = p["band"]
        if (
            not isinstance(band, list)
            or len(band) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in band)
            or band[0] > band[1]
        ):
            raise ScenarioError(origin, f"{label}.band", f"value {band!r}; allowed: [low, high]")
        if (scenario_file, measure) in fitted:
            raise ScenarioError(
                origin,
                f"{label}.measure",
                f"{measure!r} on {scenario_file.name} is a calibration target; allowed: "
                "figures the model was not fitted to",
            )
        out.append(
            PatternSpec(
                str(p["name"]),
                scenario_file,
                measure,
                float(band[0]),
                float(band[1]),
                bool(p.get("fast", False)),
                str(p["source"]),
            )
        )
    if not out:
        raise ScenarioError(origin, "pattern", "lists no pattern")
    return out


def run_patterns(
    specs: list[PatternSpec], reps: int, workers: int, quiet: bool = True
) -> list[PatternResult]:
    """Run each scenario the patterns name once (`reps` replications, its own seed) and
    measure every pattern on its runs."""
    runs: dict[Path, pd.DataFrame] = {}
    for spec in specs:
        if spec.scenario_file not in runs:
            scenario = load_scenario(spec.scenario_file)
            result = run(
                scenario, reps=reps, workers=workers, quiet=quiet, origin=str(spec.scenario_file)
            )
            runs[spec.scenario_file] = result.runs
    out = []
    for spec in specs:
        table = runs[spec.scenario_file]
        mean, lo, hi = interval(evaluate(spec.measure, table))
        out.append(PatternResult(spec, mean, lo, hi, len(table)))
    return out
