"""Patterns the model is judged on, computed from runs with common random numbers.

Each pattern is a paired difference over replications with a 95 % interval (DESIGN §8):
- the Matthew effect: under-3 participation rises with income quintile (Q5 - Q1) under
  universal provision with scarce places, also when fees are zero;
- hubs and multi-service use: one_roof - universal among families with two or more needs;
- take-up falls with travel time: childcare take-up of needs whose nearest centre is 0-5
  minutes away minus those 11-15 minutes away (C19 and T2 are about childcare; the health
  service's home visit registers a newborn whatever the distance, so pooling every type
  would mix in a service that comes to the family; with 44 places per 100 children almost
  no childcare need lies beyond 15 minutes, so the 16-20 band holds a handful of needs);
- word of mouth reaches families no outreach worker or broker ever contacted.
And the unsettled comparison: where targeted and proportionate swap ranks in AROPE under-3
participation as the targeted offer's stigma label and means-test complexity rise.

They are records of numbers and verdicts; sim/outputs/report.py writes them in words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.measure.stats import interval, paired_difference, paired_values
from sim.scenario.schema import Scenario

CROSSOVER_STIGMA = (0.0, 0.5, 1.0)
CROSSOVER_ADMIN = (0.0, 0.5, 1.0)


@dataclass
class Pattern:
    """A pattern's paired difference over replications: mean, 95 % interval, and whether
    the pattern holds."""

    name: str
    statement: str
    mean: float
    low: float
    high: float
    holds: bool  # the lower end of the 95 % interval is above zero


def positive(name: str, statement: str, differences: pd.Series) -> Pattern:
    """A pattern that holds when the 95 % interval of `differences` lies above zero."""
    mean, lo, hi = interval(differences)
    return Pattern(name, statement, mean, lo, hi, bool(np.isfinite(lo) and lo > 0))


def matthew_effect(runs: pd.DataFrame, scenario: str) -> Pattern:
    diff = paired_values(runs, scenario, scenario, "u3_participation_q5", "u3_participation_q1")
    return positive(
        f"Matthew effect ({scenario})",
        "under-3 participation in the richest income quintile minus the poorest (Q5 - Q1)",
        diff,
    )


def hubs_multi_service(runs: pd.DataFrame, hubs: str, baseline: str) -> Pattern:
    return positive(
        f"Hubs and multi-service use ({hubs} - {baseline})",
        "share of families with two or more needs who use two or more services",
        paired_values(runs, hubs, baseline, "multi_service_share"),
    )


def travel_decay(runs: pd.DataFrame, scenario: str) -> Pattern:
    return positive(
        f"Take-up falls with travel time ({scenario})",
        "childcare take-up of needs whose nearest centre is 0-5 minutes away minus 11-15 minutes away",
        paired_values(
            runs,
            scenario,
            scenario,
            "takeup_travel_childcare_00_05",
            "takeup_travel_childcare_11_15",
        ),
    )


def word_of_mouth_reach(runs: pd.DataFrame, scenario: str) -> Pattern:
    return positive(
        f"Word of mouth beyond staff contact ({scenario})",
        "families never visited by an outreach worker or broker who learnt of a service through word of mouth, per week",
        runs[runs["scenario"] == scenario].set_index("replication")[
            "wom_awareness_uncontacted_week"
        ],
    )


def crossover_name(stigma: float, admin: float) -> str:
    """The name of one crossover cell, e.g. targeted_stigma0p5_admin1p0 ('p' for the decimal
    point: scenario names are letters, digits, '_' and '-', since they can name folders)."""
    return f"targeted_stigma{stigma:.1f}_admin{admin:.1f}".replace(".", "p")


def crossover_scenarios(targeted: Scenario, replications: int) -> list[Scenario]:
    """The targeted configuration over a grid of its childcare offer's stigma label and
    admin complexity (means test), every other setting unchanged."""
    out = []
    for stigma in CROSSOVER_STIGMA:
        for admin in CROSSOVER_ADMIN:
            childcare = targeted.provision["childcare"].model_copy(
                update={"stigma_label": stigma, "admin_complexity": admin}
            )
            provision = {**targeted.provision, "childcare": childcare}
            run = targeted.run.model_copy(update={"replications": replications})
            out.append(
                targeted.model_copy(
                    update={
                        "name": crossover_name(stigma, admin),
                        "provision": provision,
                        "run": run,
                    }
                )
            )
    return out


# what a crossover grid shows, from Crossover.verdict()
CROSSES = "crosses"  # targeted ranks higher in some cells, proportionate in others
PROPORTIONATE_HIGHER = "proportionate higher"  # in some cells, targeted in none
TARGETED_HIGHER = "targeted higher"  # in some cells, proportionate in none
UNDECIDED = "undecided"  # every cell's interval includes zero


@dataclass
class Crossover:
    """The targeted configuration's stigma x admin-complexity grid against proportionate:
    per cell, the paired difference in AROPE under-3 participation (targeted minus
    proportionate, share units) with its 95 % interval; and `change`, the paired difference
    of the targeted offer's own AROPE under-3 participation between the highest cell and
    the lowest (mean, low, high)."""

    table: pd.DataFrame  # stigma (rows) x admin (columns): mean difference
    low: pd.DataFrame
    high: pd.DataFrame
    lowest: tuple[float, float]  # (stigma, admin) of the lowest cell
    highest: tuple[float, float]  # (stigma, admin) of the highest cell
    change: tuple[float, float, float]

    def ranking(self) -> pd.DataFrame:
        """+1 targeted ranks higher (interval above 0), -1 lower (below 0), 0 undecided."""
        return pd.DataFrame(
            np.where(self.low > 0, 1, np.where(self.high < 0, -1, 0)),
            index=self.table.index,
            columns=self.table.columns,
        )

    def crosses(self) -> bool:
        ranks = self.ranking().to_numpy()
        return bool((ranks > 0).any() and (ranks < 0).any())

    def verdict(self) -> str:
        """CROSSES, PROPORTIONATE_HIGHER, TARGETED_HIGHER or UNDECIDED (by the intervals)."""
        ranks = self.ranking().to_numpy()
        if self.crosses():
            return CROSSES
        if (ranks < 0).any():
            return PROPORTIONATE_HIGHER
        if (ranks > 0).any():
            return TARGETED_HIGHER
        return UNDECIDED

    def cells_ranked(self, rank: int) -> int:
        """How many cells have this ranking (+1, -1 or 0)."""
        return int((self.ranking().to_numpy() == rank).sum())

    def targeted_higher_at_lower_barriers(self) -> bool:
        """Where the ranking crosses: do the cells where targeted ranks higher have, on
        average, a lower stigma label plus admin complexity than those where proportionate
        does? (The expected direction: N1, N3, N5.)"""
        ranks = self.ranking().to_numpy()
        level = np.add.outer(
            self.table.index.to_numpy(dtype=float), self.table.columns.to_numpy(dtype=float)
        )
        higher, lower = level[ranks > 0], level[ranks < 0]
        return bool(higher.size and lower.size and higher.mean() < lower.mean())


def crossover(runs: pd.DataFrame, proportionate: str) -> Crossover:
    """The crossover grid from runs holding every crossover_scenarios() cell and
    `proportionate`, with common random numbers."""
    means, lows, highs = {}, {}, {}
    for stigma in CROSSOVER_STIGMA:
        for admin in CROSSOVER_ADMIN:
            name = crossover_name(stigma, admin)
            m, lo, hi = paired_difference(runs, name, proportionate, "u3_participation_arope")
            means[(stigma, admin)], lows[(stigma, admin)], highs[(stigma, admin)] = m, lo, hi

    def frame(values):
        return pd.Series(values).unstack()

    lowest = (min(CROSSOVER_STIGMA), min(CROSSOVER_ADMIN))
    highest = (max(CROSSOVER_STIGMA), max(CROSSOVER_ADMIN))
    change = paired_difference(
        runs, crossover_name(*highest), crossover_name(*lowest), "u3_participation_arope"
    )
    return Crossover(frame(means), frame(lows), frame(highs), lowest, highest, change)
