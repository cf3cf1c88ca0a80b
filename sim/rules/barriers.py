"""Barriers: each (family, candidate service) pair against the family's own thresholds.

Decisions are non-compensatory: a service is acceptable only if every dimension is within the
family's threshold (DESIGN §2; the Flemish *drempels*). Cost is compared exactly in integers
(cents, income_q units); the other dimensions are float64. `pair_barriers` is the one
definition of the formulas, compiled (numba) and called per pair by the engine's kernels
(`sim.rules.decisions.service_barriers`). The per-agent reference writes the same formulas
in plain Python, in the same arithmetic order, so both give the same bits.
"""

from __future__ import annotations

import numpy as np

from sim.core.codes import (
    ADMIN_BIT,
    COST_BIT,
    COST_SCALE,
    FIT_BIT,
    HOURS_BIT,
    LANGUAGE_BIT,
    STIGMA_BIT,
    TRAVEL_BIT,
    TRUST_BIT,
)
from sim.core.compiled import inline

# Household income = equivalised income x equivalence factor (EVIDENCE P6; 1.8 for two adults
# and a child under 14), the factor held in tenths so the comparison stays exact:
# cost_ok  <=>  weekly_cost_cents * 52 * INCOME_SCALE * 10_000 * 10 <= income_q * factor_tenths * cost_share_bp

# order of the blocking dimensions of a pair (bit i of the mask is dimension i): the cascade
# order of DESIGN §2 after information, capacity and matching, which are not properties of a pair


@inline
def pair_barriers(family, offer):
    """One pair, from the family's side (`PairFamily`) and the service's side as the family
    meets it (`PairOffer`): (mask of blocking dimensions, bit i for PAIR_DIMENSIONS[i]; felt
    barrier, the sum of barrier-to-threshold ratios that drives the drop-out hazard).

    cost: weekly cost x 52 above the family's share of household income (exact integers);
    travel: minutes above the family's maximum; hours: the severity of an atypical schedule
    at a service without extended hours, times the share of it the service's rhythm meets; admin: complexity x (1 - paperwork capacity);
    language: 1 - comprehension (1 in the family's own language, else its proficiency or
    the interpreter's level, plus a broker's gain, at most 1); stigma: label x sensitivity x
    (1 - trust); trust: the trust approaching the service takes x (1 - the family's trust),
    distrust as a barrier of its own (EU WG ECEC); fit: perceived fit + quality - 0.5 clipped to [0, 1], below the threshold.
    """
    f, o = family, offer
    mask = 0
    if o.weekly_cost_cents * COST_SCALE > f.income_q * f.household_factor_tenths * f.cost_share_bp:
        mask |= 1 << COST_BIT
    if o.minutes > f.max_minutes:
        mask |= 1 << TRAVEL_BIT
    hours = (
        f.hours_severity * o.hours_weight if (f.atypical_hours and not o.extended_hours) else 0.0
    )
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
    distrust = o.trust_required * (1.0 - f.trust)
    if distrust > f.trust_tolerance:
        mask |= 1 << TRUST_BIT
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
        + distrust / max(f.trust_tolerance, 1e-9)
        + f.fit_threshold / max(fit, 1e-9)
    )
    return mask, felt
