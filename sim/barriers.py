"""Barriers: each (family, candidate service) pair against the family's own thresholds.

Pure, vectorised kernels over pair arrays. Decisions are non-compensatory: a service is
acceptable only if every dimension is within the family's threshold (DESIGN §2; the Flemish
*drempels*). Cost is compared exactly in integers (cents, income_q units); the other
dimensions are float64 computed by one formula shared with the reference engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.population import INCOME_SCALE
from sim.services import FeeSchedule

WEEKS_PER_YEAR = 52
BASIS_POINTS = 10_000
# Household income = equivalised income x equivalence factor (EVIDENCE P6; 1.8 for two adults
# and a child under 14), the factor held in tenths so the comparison stays exact:
# cost_ok  <=>  weekly_cost_cents * 52 * INCOME_SCALE * 10_000 * 10 <= income_q * factor_tenths * cost_share_bp
COST_SCALE = WEEKS_PER_YEAR * INCOME_SCALE * BASIS_POINTS * 10

# order of the boolean 'blocks' columns: the cascade order of DESIGN §2 after information and
# capacity, which are not properties of a (family, service) pair
PAIR_DIMENSIONS = ("cost", "travel", "hours", "admin", "language", "stigma", "fit")


def weekly_fee_cents(
    schedules: list[FeeSchedule], schedule_of_pair: np.ndarray, income_q: np.ndarray
) -> np.ndarray:
    """Fee in integer cents per week for each pair, by each service's fee schedule."""
    fee = np.zeros(len(schedule_of_pair), dtype=np.int64)
    for index in np.unique(schedule_of_pair):
        mask = schedule_of_pair == index
        fee[mask] = schedules[int(index)].weekly_fee_cents(income_q[mask])
    return fee


@dataclass
class PairInputs:
    """Everything the barrier formulas read, one entry per (family, service) pair."""

    income_q: np.ndarray
    household_factor_tenths: int
    cost_share_bp: np.ndarray
    weekly_cost_cents: np.ndarray  # fee + trips x trip cost
    minutes: np.ndarray
    max_minutes: np.ndarray
    atypical_hours: np.ndarray
    hours_severity: np.ndarray
    extended_hours: np.ndarray
    hours_tolerance: np.ndarray
    admin_complexity: np.ndarray  # after any hub-intake or coordinator waiver
    paperwork: np.ndarray
    admin_tolerance: np.ndarray
    speaks_language: np.ndarray
    proficiency: np.ndarray
    interpreter_comprehension: np.ndarray  # 0 where the service has no interpreters
    broker_gain: np.ndarray  # 0 unless the family was contacted by its group's broker
    language_tolerance: np.ndarray
    stigma_label: np.ndarray  # after the hub's mixed-clientele factor
    stigma_sensitivity: np.ndarray
    trust: np.ndarray
    stigma_tolerance: np.ndarray
    perceived_fit: np.ndarray
    quality: np.ndarray
    fit_threshold: np.ndarray


@dataclass
class PairBarriers:
    blocks: np.ndarray  # bool [n, 7] in PAIR_DIMENSIONS order
    felt: np.ndarray  # float64 [n]: sum of barrier-to-threshold ratios (drop-out hazard)

    @property
    def acceptable(self) -> np.ndarray:
        return ~self.blocks.any(axis=1)


def comprehension(p: PairInputs) -> np.ndarray:
    """1 where the service speaks the family's language; otherwise the family's proficiency or
    the interpreter's level, whichever is higher; a broker's explanation adds to it (IAS
    focus groups: Kortrijk's trained community advisers)."""
    return comprehension_of(
        p.speaks_language, p.proficiency, p.interpreter_comprehension, p.broker_gain
    )


# One function per dimension, shared by `evaluate` and the engine's staged acceptability
# check, so both compute the same float64 values.


def comprehension_of(speaks, proficiency, interpreter, broker_gain) -> np.ndarray:
    base = np.where(speaks, 1.0, np.maximum(proficiency, interpreter))
    return np.minimum(1.0, base + broker_gain)


def cost_blocked(weekly_cost_cents, income_q, factor_tenths, cost_share_bp) -> np.ndarray:
    """Exact in integers: weekly cost x 52 against the family's share of household income."""
    return weekly_cost_cents * COST_SCALE > income_q * factor_tenths * cost_share_bp


def hours_level(atypical_hours, extended_hours, hours_severity) -> np.ndarray:
    return np.where(atypical_hours & ~extended_hours, hours_severity, 0.0)


def admin_level(admin_complexity, paperwork) -> np.ndarray:
    return admin_complexity * (1.0 - paperwork)


def stigma_level(stigma_label, stigma_sensitivity, trust) -> np.ndarray:
    return stigma_label * stigma_sensitivity * (1.0 - trust)


def fit_level(perceived_fit, quality) -> np.ndarray:
    return np.clip(perceived_fit + quality - 0.5, 0.0, 1.0)


def evaluate(p: PairInputs) -> PairBarriers:
    cost_block = cost_blocked(
        p.weekly_cost_cents, p.income_q, p.household_factor_tenths, p.cost_share_bp
    )
    travel_block = p.minutes > p.max_minutes
    hours = hours_level(p.atypical_hours, p.extended_hours, p.hours_severity)
    hours_block = hours > p.hours_tolerance
    admin = admin_level(p.admin_complexity, p.paperwork)
    admin_block = admin > p.admin_tolerance
    language = 1.0 - comprehension(p)
    language_block = language > p.language_tolerance
    stigma = stigma_level(p.stigma_label, p.stigma_sensitivity, p.trust)
    stigma_block = stigma > p.stigma_tolerance
    fit = fit_level(p.perceived_fit, p.quality)
    fit_block = fit < p.fit_threshold
    blocks = np.column_stack(
        [
            cost_block,
            travel_block,
            hours_block,
            admin_block,
            language_block,
            stigma_block,
            fit_block,
        ]
    )
    # cost / income first (both exact in float64), so rescaling money gives the same bits
    cost_ratio = (p.weekly_cost_cents / np.maximum(p.income_q, 1)) * (
        COST_SCALE / (p.household_factor_tenths * np.maximum(p.cost_share_bp, 1))
    )
    felt = (
        cost_ratio
        + p.minutes / np.maximum(p.max_minutes, 1)
        + hours / np.maximum(p.hours_tolerance, 1e-9)
        + language / np.maximum(p.language_tolerance, 1e-9)
        + stigma / np.maximum(p.stigma_tolerance, 1e-9)
        + p.fit_threshold / np.maximum(fit, 1e-9)
    )
    return PairBarriers(blocks=blocks, felt=felt)
