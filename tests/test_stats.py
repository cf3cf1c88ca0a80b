"""Intervals and paired differences (sim/measure/stats.py) against numbers computed by hand
(verification). With three values the t quantile has a closed form: for 2 degrees of
freedom the CDF is 1/2 + t / (2 sqrt(t^2 + 2)), so the 0.975 quantile is
a sqrt(2 / (1 - a^2)) with a = 0.95."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim.measure.metrics import SHARE
from sim.measure.stats import (
    clipped,
    interval,
    paired_difference,
    paired_values,
    summary_table,
)

pytestmark = pytest.mark.verification

# t quantile 0.975 with 2 degrees of freedom, in closed form (about 4.3027)
T_975_DF2 = 0.95 * math.sqrt(2.0 / (1.0 - 0.95**2))


def test_the_interval_of_three_values_is_the_hand_computed_t_interval():
    # 2, 4, 6: mean 4, sample standard deviation 2, standard error 2 / sqrt(3)
    mean, low, high = interval(pd.Series([2.0, 4.0, 6.0]))
    half = T_975_DF2 * 2.0 / math.sqrt(3.0)
    assert mean == 4.0
    assert low == pytest.approx(4.0 - half, rel=1e-12)
    assert high == pytest.approx(4.0 + half, rel=1e-12)
    assert half == pytest.approx(4.968275, abs=1e-6)


def test_values_that_are_not_finite_are_left_out_and_one_value_has_no_bounds():
    assert interval(np.array([2.0, np.nan, 4.0, np.inf, 6.0])) == interval(np.array([2.0, 4, 6]))
    mean, low, high = interval([0.25])
    assert mean == 0.25 and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(v) for v in interval([]))


def _runs() -> pd.DataFrame:
    """Two scenarios with common random numbers: replication 3 only in 'a', 5 only in 'b',
    and replication 4 of 'b' has no value; the pairs left are replications 0, 1 and 2."""
    rows = [
        ("a", 0, 5.0, 0.50, 0.30),
        ("a", 1, 7.0, 0.60, 0.20),
        ("a", 2, 12.0, 0.70, 0.10),
        ("a", 3, 100.0, 0.80, 0.00),
        ("a", 4, 9.0, 0.90, 0.00),
        ("b", 0, 3.0, 0.40, 0.30),
        ("b", 1, 3.0, 0.40, 0.30),
        ("b", 2, 6.0, 0.40, 0.30),
        ("b", 4, np.nan, 0.40, 0.30),
        ("b", 5, 0.0, 0.40, 0.30),
    ]
    return pd.DataFrame(rows, columns=["scenario", "replication", "x", "q5", "q1"])


def test_a_paired_difference_pairs_by_replication_and_drops_the_unpaired():
    runs = _runs()
    values = paired_values(runs, "a", "b", "x")
    assert values.index.tolist() == [0, 1, 2]
    assert values.tolist() == [2.0, 4.0, 6.0]  # 5-3, 7-3, 12-6
    mean, low, high = paired_difference(runs, "a", "b", "x")
    half = T_975_DF2 * 2.0 / math.sqrt(3.0)
    assert (mean, low, high) == pytest.approx((4.0, 4.0 - half, 4.0 + half), rel=1e-12)
    # scenario minus baseline: swapping them changes the sign
    assert paired_difference(runs, "b", "a", "x")[0] == -4.0


def test_a_paired_difference_of_two_measures_of_the_same_runs():
    # Q5 - Q1 of scenario a: 0.2, 0.4, 0.6, 0.8, 0.9 -> mean 0.58
    runs = _runs()
    values = paired_values(runs, "a", "a", "q5", "q1")
    assert values.tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8, 0.9])
    mean, _, _ = paired_difference(runs, "a", "a", "q5", "q1")
    assert mean == pytest.approx(0.58)


def test_a_summary_row_is_the_interval_cut_to_the_measure_s_range():
    runs = pd.DataFrame({"u3_participation_all": [0.0, 0.0, 0.01]})
    (row,) = summary_table(runs).to_dict("records")
    mean, low, high = interval(runs["u3_participation_all"])
    assert low < 0  # the t-interval reaches below 0 ...
    assert (row["mean"], row["low"], row["high"]) == (mean, 0.0, high)  # ... and is cut at 0
    assert row["n"] == 3 and row["unit"] == "%"
    assert clipped(-0.5, 1.5, SHARE) == (0.0, 1.0)
