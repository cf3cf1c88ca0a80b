"""What a comparison found, as plain records: the paired differences to the baseline, the
outlay check, the cost per additional AROPE child, the patterns that apply and the
crossover. A comparison (sim/studies/comparison.py) computes them once; a report
(sim/outputs/report.py) writes them in words and tables and computes none of them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sim.measure.patterns import Crossover, Pattern


@dataclass(frozen=True)
class Difference:
    """A scenario minus the baseline in one measure, paired over replications: mean and
    95 % interval (NaN bounds with one pair), in the measure's own unit (shares in 0-1)."""

    scenario: str
    measure: str
    mean: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        """The unrounded, unclipped interval lies above or below zero."""
        return bool(math.isfinite(self.low) and (self.low > 0 or self.high < 0))


@dataclass(frozen=True)
class Outlay:
    """A scenario's mean ex-ante outlay and ex-post net cost (EUR a week), and whether the
    outlay differs from the baseline's by more than the comparison's tolerance."""

    scenario: str
    outlay_eur_week: float
    net_cost_eur_week: float
    differs: bool


@dataclass(frozen=True)
class CostPerChild:
    """Extra outlay per additional AROPE child under 3 enrolled, for a scenario whose outlay
    differs from the baseline's: the paired mean differences in outlay (EUR a week) and in
    AROPE children enrolled (mean per measured week), and their ratio (None when the scenario
    enrols no additional child: then no cost per additional child is defined)."""

    scenario: str
    outlay_difference_eur_week: float
    children_difference: float
    eur_week_per_child: float | None


@dataclass(frozen=True)
class ComparisonFindings:
    """Everything a comparison's report shows beside the per-scenario estimates."""

    baseline: str
    differences: list[Difference]  # per scenario other than the baseline, per measure
    outlays: list[Outlay]  # per scenario, the baseline included
    costs: list[CostPerChild]  # for the scenarios whose outlay differs
    patterns: list[Pattern] = field(default_factory=list)  # those the runs allow
    crossover: Crossover | None = None  # when the targeted grid and proportionate were run
