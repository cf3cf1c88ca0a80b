"""Planning quantities a world is built from before any family is drawn: the stationary age
profile of the youngest child, the share of families each service type is planned for, and
the exact apportioning of a total over weights. They depend on the scenario only, never on
one replication, so the service map is the same in every replication."""

from __future__ import annotations

import numpy as np

from sim.scenario.schema import Scenario


def stationary_age_distribution(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Stationary distribution of the youngest child's age at the start of a week.

    Each week every age rises by one; a family whose youngest is at least
    min_birth_spacing_weeks conceives with probability next_birth_hazard_week (the youngest
    becomes the unborn child, age -gestation); a family whose youngest reaches
    youngest_child_max_age_weeks leaves and a new family with a first pregnancy takes the
    slot. Every reset returns to the same state, so the stationary probability of an age is
    proportional to the chance of reaching it without a reset: (1 - h)^(checks passed).
    Returns (ages, probabilities).
    """
    pop = scenario.population
    ages = np.arange(-pop.gestation_weeks, pop.youngest_child_max_age_weeks)
    checks = np.maximum(0, ages - pop.min_birth_spacing_weeks + 1)
    survival = (1.0 - pop.next_birth_hazard_week) ** checks
    return ages, survival / survival.sum()


def planned_share(type_name: str, scenario: Scenario) -> float:
    """Share of families a type's capacity is planned for: those with a child in the type's
    age range under the stationary age profile (`stationary_age_distribution`), or
    all families for parenting support and the help desk. Planning uses these expectations,
    so the service map depends on the city and scenario only, never on one replication."""
    pop = scenario.population
    ages, prob = stationary_age_distribution(scenario)
    if type_name == "childcare":
        return float(prob[(ages >= 0) & (ages < pop.childcare_exit_age_weeks)].sum())
    if type_name == "health":
        return float(prob[(ages >= 0) & (ages < pop.health_need_until_age_weeks)].sum())
    return 1.0


def apportion(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer counts proportional to weights summing exactly to total (largest remainder,
    ties by index)."""
    if weights.sum() <= 0:
        raise ValueError("no populated cells")
    # beyond 2**53 float64 counts lose whole units and the int64 cast can wrap around to
    # nonsense (issue 10: 1e20 places gave zero); the schema's bounds keep totals far below
    if not 0 <= total < 2**53:
        raise OverflowError(f"cannot apportion {total} units: allowed: 0 to 2**53")
    exact = weights / weights.sum() * total
    base = np.floor(exact).astype(np.int64)
    remainder = exact - base
    short = total - int(base.sum())
    order = np.lexsort((np.arange(len(weights)), -remainder))
    base[order[:short]] += 1
    return base
