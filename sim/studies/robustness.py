"""Rankings over what we do not know: a comparison re-run at parameter points drawn from a
calibration's plausible set (`famsim compare --over-plausible N`).

At each of N points (the first N draws of the calibration's `plausible.parquet`, which are
draws from its posterior) every configuration runs the same replication seeds, so each
point's comparison is paired. Per pair of configurations, the finding is in how many of the
N points the ranking the comparison found at the shipped defaults holds, and in how many its
paired 95 % interval also excludes zero. Each configuration's runs at the points form a sweep
(`sim.studies.sweep`): stable run ids, committed chunks, resume.
"""

from __future__ import annotations

import hashlib
import json
import math
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import pandas as pd

from sim.core.errors import ScenarioError
from sim.measure.findings import RankingHolds, RankingPair
from sim.measure.stats import interval
from sim.scenario.schema import Scenario, scenario_from_dict, set_at_path
from sim.studies.sweep import Parameter, Sweep, committed, run_sweep

# the headline measure whose ranking is checked (DESIGN §2: under-3 participation of AROPE
# children is the comparison's first measure)
RANKED_MEASURE = "u3_participation_arope"


def load_plausible(path: Path, scenario: Scenario, n: int) -> pd.DataFrame:
    """The first `n` draws of a calibration's plausible set: one column per scenario key
    path. Refused with one line when the file is missing, has fewer draws, or names a key the
    scenario does not hold."""
    origin = str(path)
    try:
        frame = pd.read_parquet(path)
    except FileNotFoundError:
        raise ScenarioError(
            origin,
            "",
            "no such file; run famsim calibrate first (its folder holds plausible.parquet)",
        ) from None
    except (OSError, ValueError) as exc:
        raise ScenarioError(
            origin, "", f"not a readable plausible set ({type(exc).__name__})"
        ) from None
    keys = [c for c in frame.columns if not c.startswith("predicted:") and c != "implausibility"]
    if not keys:
        raise ScenarioError(origin, "", "holds no parameter columns")
    data = scenario.resolved_dict()
    for key in keys:
        node = data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ScenarioError(origin, key, f"not a key of scenario {scenario.name!r}")
            node = node[part]
    if len(frame) < n:
        raise ScenarioError(
            "<command line>", "--over-plausible", f"value {n}: {origin} holds {len(frame)} draws"
        )
    return frame[keys].iloc[:n].reset_index(drop=True)


def _sweep(scenario: Scenario, points: pd.DataFrame, source: str) -> Sweep:
    values = points.round(6).to_numpy().tolist()
    keys = list(points.columns)
    for row in values:  # every point must make a valid scenario of this configuration
        data = scenario.resolved_dict()
        for key, value in zip(keys, row, strict=True):
            set_at_path(data, key, value)
        scenario_from_dict(data, f"{source} (point {row})")
    document = {
        "over_plausible": source,
        "scenario": scenario.content_hash(),
        "parameters": keys,
        "points": values,
        "seed": scenario.run.seed,
        "replications": scenario.run.replications,
    }
    return Sweep(
        Path(source),
        f"plausible-{scenario.name}",
        scenario,
        scenario.run.replications,
        scenario.run.seed,
        4,
        {"kind": "points", "points": values},
        [Parameter(k, low=float(points[k].min()), high=float(points[k].max())) for k in keys],
        [],
        document,
    )


def over_plausible(
    scenarios: list[Scenario],
    default_means: dict[str, float],
    points: pd.DataFrame,
    source: str,
    out: Path,
    executor: Executor,
    executor_label: str,
    workers: int,
    quiet: bool = True,
) -> RankingHolds:
    """Run every configuration at every point; how often each ranking holds."""
    frames = []
    for scenario in scenarios:
        sweep = _sweep(scenario, points, source)
        digest = hashlib.sha256(json.dumps(sweep.document, sort_keys=True).encode()).hexdigest()
        folder = out / f"{scenario.name}-{digest[:10]}"
        report = run_sweep(sweep, folder, executor, executor_label, workers, quiet=quiet)
        if report.failed_total:
            raise ScenarioError(source, "", f"a run failed: {report.first_failure}")
        runs = committed(folder)
        runs = runs[runs["status"] == "ok"][["point", "replication", RANKED_MEASURE]]
        frames.append(runs.assign(scenario=scenario.name))
    runs = pd.concat(frames, ignore_index=True)
    names = [s.name for s in scenarios]
    order = sorted(names, key=lambda n: -default_means[n])
    pairs = []
    for i, better in enumerate(order):
        for worse in order[i + 1 :]:
            holds = clear = 0
            for _, at in runs.groupby("point"):
                a = at[at["scenario"] == better].set_index("replication")[RANKED_MEASURE]
                b = at[at["scenario"] == worse].set_index("replication")[RANKED_MEASURE]
                diff = (a - b).dropna()
                mean, lo, _ = interval(diff)
                holds += bool(mean > 0)
                clear += bool(math.isfinite(lo) and lo > 0)
            pairs.append(RankingPair(better, worse, holds, clear))
    return RankingHolds(
        RANKED_MEASURE,
        len(points),
        scenarios[0].run.replications,
        source,
        list(points.columns),
        pairs,
        {n: float(np.round(default_means[n], 4)) for n in names},
    )
