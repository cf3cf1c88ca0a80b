"""Barriers: each (family, candidate service) pair against the family's own thresholds.

Decisions are non-compensatory: a service is acceptable only if every dimension is within the
family's threshold (DESIGN §2; the Flemish *drempels*). Cost is compared exactly in integers
(cents, income_q units); the other dimensions are float64. `pair_barriers` is the one
definition of the formulas, compiled (numba) and called per pair by the engine's kernels;
`evaluate` applies it to arrays of pairs. The per-agent reference writes the same formulas
in plain Python, in the same arithmetic order, so both give the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.core.codes import (
    ADMIN_BIT,
    COST_BIT,
    COST_SCALE,
    FIT_BIT,
    HOURS_BIT,
    LANGUAGE_BIT,
    PAIR_DIMENSIONS,
    STIGMA_BIT,
    TRAVEL_BIT,
)
from sim.core.compiled import inline, kernel
from sim.rules.fees import FeeSchedule
from sim.rules.records import PairFamily, PairOffer

# Household income = equivalised income x equivalence factor (EVIDENCE P6; 1.8 for two adults
# and a child under 14), the factor held in tenths so the comparison stays exact:
# cost_ok  <=>  weekly_cost_cents * 52 * INCOME_SCALE * 10_000 * 10 <= income_q * factor_tenths * cost_share_bp

# order of the blocking dimensions of a pair (bit i of the mask is dimension i): the cascade
# order of DESIGN §2 after information and capacity, which are not properties of a pair


def weekly_fee_cents(
    schedules: list[FeeSchedule], schedule_of_pair: np.ndarray, income_q: np.ndarray
) -> np.ndarray:
    """Fee in integer cents per week for each pair, by each service's fee schedule."""
    fee = np.zeros(len(schedule_of_pair), dtype=np.int64)
    for index in np.unique(schedule_of_pair):
        mask = schedule_of_pair == index
        fee[mask] = schedules[int(index)].weekly_fee_cents(income_q[mask])
    return fee


@inline
def pair_barriers(family, offer):
    """One pair, from the family's side (`PairFamily`) and the service's side as the family
    meets it (`PairOffer`): (mask of blocking dimensions, bit i for PAIR_DIMENSIONS[i]; felt
    barrier, the sum of barrier-to-threshold ratios that drives the drop-out hazard).

    cost: weekly cost x 52 above the family's share of household income (exact integers);
    travel: minutes above the family's maximum; hours: the severity of an atypical schedule
    at a service without extended hours; admin: complexity x (1 - paperwork capacity);
    language: 1 - comprehension (1 in the family's own language, else its proficiency or
    the interpreter's level, plus a broker's gain, at most 1); stigma: label x sensitivity x
    (1 - trust); fit: perceived fit + quality - 0.5 clipped to [0, 1], below the threshold.
    """
    f, o = family, offer
    mask = 0
    if o.weekly_cost_cents * COST_SCALE > f.income_q * f.household_factor_tenths * f.cost_share_bp:
        mask |= 1 << COST_BIT
    if o.minutes > f.max_minutes:
        mask |= 1 << TRAVEL_BIT
    hours = f.hours_severity if (f.atypical_hours and not o.extended_hours) else 0.0
    if hours > f.hours_tolerance:
        mask |= 1 << HOURS_BIT
    admin = o.admin_complexity * (1.0 - f.paperwork)
    if admin > f.admin_tolerance:
        mask |= 1 << ADMIN_BIT
    base = 1.0 if o.speaks_language else max(f.proficiency, o.interpreter_comprehension)
    language = 1.0 - min(1.0, base + f.broker_gain)
    if language > f.language_tolerance:
        mask |= 1 << LANGUAGE_BIT
    stigma = o.stigma_label * f.stigma_sensitivity * (1.0 - f.trust)
    if stigma > f.stigma_tolerance:
        mask |= 1 << STIGMA_BIT
    fit = min(max(f.perceived_fit + o.quality - 0.5, 0.0), 1.0)
    if fit < f.fit_threshold:
        mask |= 1 << FIT_BIT
    # cost / income first (both exact in float64), so rescaling money gives the same bits
    cost_ratio = (np.float64(o.weekly_cost_cents) / np.float64(max(f.income_q, 1))) * (
        np.float64(COST_SCALE) / np.float64(f.household_factor_tenths * max(f.cost_share_bp, 1))
    )
    felt = (
        cost_ratio
        + np.float64(o.minutes) / np.float64(max(f.max_minutes, 1))
        + hours / max(f.hours_tolerance, 1e-9)
        + language / max(f.language_tolerance, 1e-9)
        + stigma / max(f.stigma_tolerance, 1e-9)
        + f.fit_threshold / max(fit, 1e-9)
    )
    return mask, felt


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


_INTEGER_INPUTS = ("income_q", "cost_share_bp", "weekly_cost_cents", "minutes", "max_minutes")
_BOOL_INPUTS = ("atypical_hours", "extended_hours", "speaks_language")


def evaluate(p: PairInputs) -> PairBarriers:
    """`pair_barriers` for every pair of the arrays (broadcast against each other)."""
    names = [name for name in PairInputs.__dataclass_fields__ if name != "household_factor_tenths"]
    arrays = np.broadcast_arrays(*[np.asarray(getattr(p, name)) for name in names])
    columns = []
    for name, values in zip(names, arrays, strict=True):
        dtype = np.int64 if name in _INTEGER_INPUTS else bool if name in _BOOL_INPUTS else float
        columns.append(np.ascontiguousarray(values.ravel(), dtype=dtype))
    masks = np.zeros(len(columns[0]), dtype=np.int64)
    felt = np.zeros(len(columns[0]))
    _evaluate_pairs(int(p.household_factor_tenths), *columns, masks, felt)
    blocks = ((masks[:, None] >> np.arange(len(PAIR_DIMENSIONS))) & 1).astype(bool)
    return PairBarriers(blocks=blocks, felt=felt)


@kernel
def _evaluate_pairs(
    factor_tenths,
    income_q,
    cost_share_bp,
    weekly_cost_cents,
    minutes,
    max_minutes,
    atypical_hours,
    hours_severity,
    extended_hours,
    hours_tolerance,
    admin_complexity,
    paperwork,
    admin_tolerance,
    speaks_language,
    proficiency,
    interpreter_comprehension,
    broker_gain,
    language_tolerance,
    stigma_label,
    stigma_sensitivity,
    trust,
    stigma_tolerance,
    perceived_fit,
    quality,
    fit_threshold,
    masks,
    felt,
):
    for i in range(len(income_q)):
        family = PairFamily(
            income_q=income_q[i],
            household_factor_tenths=factor_tenths,
            cost_share_bp=cost_share_bp[i],
            max_minutes=max_minutes[i],
            atypical_hours=atypical_hours[i],
            hours_severity=hours_severity[i],
            hours_tolerance=hours_tolerance[i],
            paperwork=paperwork[i],
            admin_tolerance=admin_tolerance[i],
            proficiency=proficiency[i],
            broker_gain=broker_gain[i],
            language_tolerance=language_tolerance[i],
            stigma_sensitivity=stigma_sensitivity[i],
            trust=trust[i],
            stigma_tolerance=stigma_tolerance[i],
            perceived_fit=perceived_fit[i],
            fit_threshold=fit_threshold[i],
        )
        offer = PairOffer(
            weekly_cost_cents=weekly_cost_cents[i],
            minutes=minutes[i],
            extended_hours=extended_hours[i],
            admin_complexity=admin_complexity[i],
            speaks_language=speaks_language[i],
            interpreter_comprehension=interpreter_comprehension[i],
            stigma_label=stigma_label[i],
            quality=quality[i],
        )
        masks[i], felt[i] = pair_barriers(family, offer)
