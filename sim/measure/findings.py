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
class LeverEffect:
    """One lever's own effect on one configuration in one measure, paired over
    replications: with the lever minus without (so a lever removed from a configuration is
    the configuration minus its variant), percentage points for shares."""

    lever: str
    configuration: str
    way: str  # "added to" or "removed from"
    variant: str
    measure: str
    effect_pp: float
    low_pp: float
    high_pp: float
    replications: int


@dataclass(frozen=True)
class AdaptiveRun:
    """An adaptive configuration against its static twin (the same scenario without the
    policy): paired differences, and the budget path (mean holdings per lever, EUR a week,
    at each review week, with the dimension most often acted on)."""

    scenario: str
    twin: str
    differences: list[Difference]
    path: list[dict[str, float]]
    acted_on: list[str]  # per review week, the dimension most replications acted on


@dataclass(frozen=True)
class HubChange:
    """A hub configuration against the same configuration without hubs: the travel change
    next to the multi-service change (paired differences)."""

    hubs: str
    twin: str
    differences: list[Difference]


@dataclass(frozen=True)
class LeftOut:
    """Who a configuration still leaves out and why: the share of AROPE children under 3 not
    in childcare, and the main barriers (dimension, share of the unmet need-weeks, largest
    first) of each group's and each service type's unmet needs (means over replications)."""

    scenario: str
    arope_u3_not_in_care: float
    non_arope_u3_not_in_care: float
    by_group: dict[str, list[tuple[str, float]]]
    by_type: dict[str, list[tuple[str, float]]]


@dataclass(frozen=True)
class RankingPair:
    """In how many plausible points `better` stays above `worse` (mean over replications),
    and in how many the paired 95 % interval of the difference also excludes zero."""

    better: str
    worse: str
    holds: int
    clear: int


@dataclass(frozen=True)
class RankingHolds:
    """A comparison re-run at points of a calibration's plausible set: per pair of
    configurations, ranked as at the shipped defaults, how often that ranking holds."""

    measure: str
    points: int
    replications: int
    source: str  # the plausible set's file
    parameters: list[str]
    pairs: list[RankingPair]
    default_means: dict[str, float]  # the measure at the shipped defaults, per configuration


@dataclass(frozen=True)
class Supplementary:
    """What the supplementary analyses found: lever by lever, adaptive runs, hubs, who is
    left out."""

    levers: list[LeverEffect] = field(default_factory=list)
    adaptive: list[AdaptiveRun] = field(default_factory=list)
    hubs: list[HubChange] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)
    ranking: RankingHolds | None = None  # compare --over-plausible


@dataclass(frozen=True)
class ComparisonFindings:
    """Everything a comparison's report shows beside the per-scenario estimates."""

    baseline: str
    differences: list[Difference]  # per scenario other than the baseline, per measure
    outlays: list[Outlay]  # per scenario, the baseline included
    costs: list[CostPerChild]  # for the scenarios whose outlay differs
    patterns: list[Pattern] = field(default_factory=list)  # those the runs allow
    crossover: Crossover | None = None  # when the targeted grid and proportionate were run
    supplementary: Supplementary = field(default_factory=lambda: Supplementary())
