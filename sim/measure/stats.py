"""Intervals and paired differences over replications, in one place: the mean and two-sided
95 % t-interval of a measure, the interval cut to the range the measure can take, the
per-replication differences of two scenarios run with common random numbers, and the
summary table of a runs table. Reports, figures, patterns and comparisons all read them
from here, so every interval in the results is computed the same way."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from sim.measure.metrics import KINDS, Kind, kind_of


def interval(values: pd.Series | np.ndarray) -> tuple[float, float, float]:
    """Mean and two-sided 95 % t-interval over replications (NaN bounds with one value).
    Values that are not finite are left out."""
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(data.mean())
    if data.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, data.size - 1) * data.std(ddof=1) / math.sqrt(data.size))
    return mean, mean - half, mean + half


def clipped(lo: float, hi: float, kind: Kind) -> tuple[float, float]:
    """An interval cut to the values the measure can take (a share within [0, 1], a count
    or money not negative, the concentration index within [-1, 1]). Both ends are cut, so
    an interval lying wholly outside the range (a ratio's t-interval over two replications
    can end below zero) becomes a point at the nearest end, never an upside-down one."""

    def cut(value: float) -> float:
        return min(max(value, kind.lower), kind.upper)

    return cut(lo), cut(hi)


def paired_values(
    runs: pd.DataFrame,
    scenario: str,
    baseline: str,
    column: str,
    baseline_column: str | None = None,
) -> pd.Series:
    """Per replication (the index), `column` of `scenario` minus `baseline_column` (default
    `column`) of `baseline`, over the replications both have a value for. With scenario ==
    baseline it is a difference of two measures of the same runs (e.g. Q5 - Q1)."""
    left = runs[runs["scenario"] == scenario].set_index("replication")[column]
    right = runs[runs["scenario"] == baseline].set_index("replication")[baseline_column or column]
    joined = pd.concat([left, right], axis=1, join="inner").dropna()
    return joined.iloc[:, 0] - joined.iloc[:, 1]


def paired_difference(
    runs: pd.DataFrame,
    scenario: str,
    baseline: str,
    column: str,
    baseline_column: str | None = None,
) -> tuple[float, float, float]:
    """Mean and 95 % interval of (scenario - baseline) over replications paired by seed
    (`paired_values`)."""
    return interval(paired_values(runs, scenario, baseline, column, baseline_column))


def summary_table(runs: pd.DataFrame, measures: list[str] | None = None) -> pd.DataFrame:
    """measure, unit, mean, low, high (95 % t-interval over replications, cut to the range
    the measure can take) and n (replications with a value) for each measure column of a
    runs table, in metric_columns() order. Values are in the measure's own unit (shares in
    0-1, not percent)."""
    columns = measures or [c for c in KINDS if c in runs.columns]
    rows = []
    for column in columns:
        kind = kind_of(column)
        mean, low, high = interval(runs[column])
        low, high = clipped(low, high, kind)
        n = int(np.isfinite(np.asarray(runs[column], dtype=float)).sum())
        rows.append(
            {"measure": column, "unit": kind.unit, "mean": mean, "low": low, "high": high, "n": n}
        )
    return pd.DataFrame(rows, columns=["measure", "unit", "mean", "low", "high", "n"])
