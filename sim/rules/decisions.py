"""Compiled weekly kernels of the fast engine (numba, `sim.core.compiled`): one loop over families,
one decision at a time. Phase A's kernels read last week's state and write its plan; phase
B's and the life course's apply the week to the column store in the fixed order.

Each kernel applies the rule the per-agent reference applies, with the same integers, the
same float64 formulas in the same order (`sim.rules.barriers.pair_barriers`) and the same keyed
draws (`sim.core.rng`: a draw is a pure function of its keys, so a kernel computes it only where
a decision needs it). Rows are global table indices; a kernel touches only the rows it is
given, so any partition of the families gives the same plan.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from sim.core.codes import (
    CHILDCARE,
    DROPPED,
    ENROLLED,
    N_TYPES,
    NO_HUB,
    NO_SERVICE,
    NONE,
    PAIR_DIMENSIONS,
    REJECTED,
    WAITLISTED,
)
from sim.core.compiled import inline, kernel
from sim.core.rng import uniform_from
from sim.rules.barriers import pair_barriers
from sim.rules.fees import fee_cents, trip_cents

# what the kernels read of the column store (see sim.world.population.FamilyTable for units)
FamilyColumns = namedtuple(
    "FamilyColumns",
    [
        "key",
        "youngest_age_weeks",
        "care_start_age_weeks",
        "income_q",
        "cost_share_bp",
        "mode",
        "max_travel_minutes",
        "atypical_hours",
        "hours_severity",
        "hours_tolerance",
        "paperwork",
        "admin_tolerance",
        "language",
        "is_local_language",
        "proficiency",
        "broker_contacted",
        "language_tolerance",
        "stigma_sensitivity",
        "trust",
        "stigma_tolerance",
        "perceived_fit",
        "fit_threshold",
        "coordinated",
        "aware",
        "status",
        "service",
        "status_week",
        "excluded_service",
    ],
)
# what they read of the services (sim.world.services.ServiceTable)
ServiceColumns = namedtuple(
    "ServiceColumns",
    [
        "hub",
        "stigma_label",
        "speaks",
        "interpreters",
        "extended_hours",
        "admin_complexity",
        "schedule",
        "trips_per_week",
        "quality",
        "means_tested",
        "means_line_q",
        "waitlist",
    ],
)
# scenario constants the barrier formulas read
BarrierParams = namedtuple(
    "BarrierParams",
    [
        "factor_tenths",
        "hub_stigma_factor",
        "interpreter_comprehension",
        "broker_comprehension_gain",
        "car_cents_per_minute",
        "transit_fare_cents",
    ],
)
# per type, the most favourable value of each service attribute (see `could_accept`)
TypeBounds = namedtuple(
    "TypeBounds",
    [
        "n_schedules",
        "schedules",
        "trips",
        "extended",
        "admin",
        "speaks",
        "interpreter",
        "stigma",
        "quality",
    ],
)

_PAIR_BITS = len(PAIR_DIMENSIONS)


# -- one pair ------------------------------------------------------------------------------


@inline
def service_barriers(fam, svc, fees, params, r, t, s, minutes, enrolled_hub):
    """`pair_barriers` for family row r and service s of type t at `minutes` of travel: the
    hub's intake is waived once the family uses a service of the same hub or was assessed
    by its coordinator, and a hub's mixed clientele lowers the stigma label."""
    hub = svc.hub[s]
    in_hub = hub != NO_HUB
    intake_done = False
    if in_hub:
        if fam.coordinated[r]:
            intake_done = True
        for k in range(N_TYPES):
            if enrolled_hub[r, k] == hub:
                intake_done = True
    complexity = 0.0 if intake_done else svc.admin_complexity[s]
    label_factor = params.hub_stigma_factor if in_hub else 1.0
    weekly = fee_cents(fees, svc.schedule[s], fam.income_q[r]) + np.int64(
        svc.trips_per_week[s]
    ) * trip_cents(params, fam.mode[r], minutes)
    return _barriers_of(
        fam,
        params,
        r,
        t,
        weekly,
        minutes,
        svc.extended_hours[s],
        complexity,
        svc.speaks[s, fam.language[r]],
        params.interpreter_comprehension if svc.interpreters[s] else 0.0,
        svc.stigma_label[s] * label_factor,
        svc.quality[s],
    )


@inline
def _barriers_of(
    fam, params, r, t, weekly, minutes, extended, complexity, speaks, interpreter, label, quality
):
    """`pair_barriers` for family row r and type t beside the given service side."""
    return pair_barriers(
        fam.income_q[r],
        params.factor_tenths,
        fam.cost_share_bp[r],
        weekly,
        minutes,
        fam.max_travel_minutes[r],
        fam.atypical_hours[r],
        fam.hours_severity[r],
        extended,
        fam.hours_tolerance[r],
        complexity,
        fam.paperwork[r],
        fam.admin_tolerance[r],
        speaks,
        fam.proficiency[r],
        interpreter,
        params.broker_comprehension_gain if fam.broker_contacted[r] else 0.0,
        fam.language_tolerance[r],
        label,
        fam.stigma_sensitivity[r],
        fam.trust[r],
        fam.stigma_tolerance[r],
        fam.perceived_fit[r, t],
        quality,
        fam.fit_threshold[r],
    )


@inline
def could_accept(fam, fees, params, bounds, r, t, nearest_minutes):
    """False only where no candidate of type t can be acceptable to family r: the barriers
    at the most favourable value of every attribute among the type's services (cheapest fee,
    fewest trips, the nearest candidate, extended hours, waived intake, the family's
    language, least stigma, best quality). Every barrier grows monotonically with each
    attribute, so this never rules out an acceptable candidate."""
    fee = np.int64(0)
    for k in range(bounds.n_schedules[t]):
        f = fee_cents(fees, bounds.schedules[t, k], fam.income_q[r])
        fee = f if k == 0 else min(fee, f)
    minutes = nearest_minutes[r, t]
    weekly = fee + bounds.trips[t] * trip_cents(params, fam.mode[r], minutes)
    mask, _ = _barriers_of(
        fam,
        params,
        r,
        t,
        weekly,
        minutes,
        bounds.extended[t],
        bounds.admin[t],
        bounds.speaks[t, fam.language[r]],
        bounds.interpreter[t],
        bounds.stigma[t],
        bounds.quality[t],
    )
    return mask == 0


@inline
def _ready(fam, r, t):
    """A place can be taken now (childcare: only once leave has ended)."""
    return t != CHILDCARE or fam.youngest_age_weeks[r] >= fam.care_start_age_weeks[r]


@inline
def _eligible(fam, svc, r, s):
    """Means-tested services admit only families below the line (families know their income)."""
    return not svc.means_tested[s] or fam.income_q[r] < svc.means_line_q[s]


# -- state read by phase A ----------------------------------------------------------------


@kernel
def enrolled_hubs(status, service, service_hub, out):
    """out[f, t]: the hub of the service family f uses for type t, NO_HUB if none."""
    for r in range(status.shape[0]):
        for t in range(N_TYPES):
            out[r, t] = service_hub[service[r, t]] if status[r, t] == ENROLLED else NO_HUB


# -- phase A -------------------------------------------------------------------------------


@kernel
def applications(
    rows,
    fam,
    svc,
    fees,
    params,
    bounds,
    applicable,
    enrolled_hub,
    cand_indptr,
    cand_service,
    cand_minutes,
    nearest_minutes,
    chosen,
    chosen_minutes,
):
    """Each aware family with an open need applies to its best acceptable candidate: the
    first in (minutes, service id) order that it is eligible for, has not left this spell,
    can register now (before the child can start, only services keeping a waiting list) and
    where no barrier reaches its threshold."""
    for r in rows:
        for t in range(N_TYPES):
            if not (applicable[r, t] and fam.aware[r, t] and fam.status[r, t] == NONE):
                continue
            indptr = cand_indptr[t]
            lo, hi = indptr[r], indptr[r + 1]
            if lo == hi or not could_accept(fam, fees, params, bounds, r, t, nearest_minutes):
                continue
            ready = _ready(fam, r, t)
            services = cand_service[t]
            minutes = cand_minutes[t]
            for j in range(lo, hi):
                s = services[j]
                if not _eligible(fam, svc, r, s) or s == fam.excluded_service[r, t]:
                    continue
                if not (ready or svc.waitlist[s]):
                    continue
                mask, _ = service_barriers(
                    fam, svc, fees, params, r, t, s, minutes[j], enrolled_hub
                )
                if mask == 0:
                    chosen[r, t] = s
                    chosen_minutes[r, t] = minutes[j]
                    break


@kernel
def exits(
    rows,
    fam,
    svc,
    fees,
    params,
    enrolled_hub,
    service_minutes,
    week,
    dropout_prefix,
    dropout_base,
    dropout_slope,
    patience_weeks,
    dropout,
    give_up,
):
    """Drop-out with a weekly hazard that grows with the felt barriers of the service in
    use; give-up once a ready family has waited `patience_weeks` on a waiting list."""
    for r in rows:
        for t in range(N_TYPES):
            status = fam.status[r, t]
            if status == ENROLLED:
                s = fam.service[r, t]
                _, felt = service_barriers(
                    fam, svc, fees, params, r, t, s, service_minutes[r, t], enrolled_hub
                )
                hazard = min(1.0, dropout_base + dropout_slope * felt)
                if uniform_from(dropout_prefix, fam.key[r], t) < hazard:
                    dropout[r, t] = True
            elif status == WAITLISTED:
                since = fam.status_week[r, t]
                if t == CHILDCARE:
                    ready_since = week - (fam.youngest_age_weeks[r] - fam.care_start_age_weeks[r])
                else:
                    ready_since = since
                waited_from = max(ready_since, since)
                if _ready(fam, r, t) and week - waited_from >= patience_weeks:
                    give_up[r, t] = True


@kernel
def preferred_blocks(
    rows,
    fam,
    svc,
    fees,
    params,
    need,
    enrolled_hub,
    pref_service,
    pref_minutes,
    none_eligible,
    pair_to_dimension,
    capacity_dimension,
    blocks,
):
    """Barrier log: every dimension blocking the preferred candidate of each unmet need (the
    nearest eligible service within reach, else the nearest of the type anywhere); capacity
    where the city has no service of the type, or none open to the family."""
    for r in rows:
        for t in range(N_TYPES):
            if not need[r, t] or fam.status[r, t] == ENROLLED:
                continue
            s = pref_service[r, t]
            if s >= 0:
                mask, _ = service_barriers(
                    fam, svc, fees, params, r, t, s, pref_minutes[r, t], enrolled_hub
                )
                for k in range(_PAIR_BITS):
                    blocks[r, t, pair_to_dimension[k]] = (mask >> k) & 1 == 1
            if s < 0 or none_eligible[r, t]:
                blocks[r, t, capacity_dimension] = True


# -- phase B -------------------------------------------------------------------------------


@kernel
def settle_exits_and_applications(
    status,
    status_week,
    service,
    excluded_service,
    applied_week,
    service_minutes,
    youngest_age_weeks,
    dropout,
    give_up,
    chosen,
    chosen_minutes,
    week,
    cooldown_weeks,
    counts,
):
    """Phase B steps 2-5a for every (family, type), in that order: a rejection's or drop-out's
    cooldown ends; a drop-out leaves its service; a give-up leaves its waiting list (neither
    service is chosen again this spell); a new application joins the service's queue.
    counts: drop-outs, give-ups, applications, applications before birth."""
    for r in range(status.shape[0]):
        for t in range(N_TYPES):
            st = status[r, t]
            if (st == REJECTED or st == DROPPED) and status_week[r, t] + cooldown_weeks <= week:
                st = NONE
            if dropout[r, t] and st == ENROLLED:
                st = DROPPED
                status_week[r, t] = week
                excluded_service[r, t] = service[r, t]
                counts[0] += 1
            elif give_up[r, t] and st == WAITLISTED:
                st = NONE
                excluded_service[r, t] = service[r, t]
                counts[1] += 1
            elif chosen[r, t] != NO_SERVICE and st == NONE:
                st = WAITLISTED
                service[r, t] = chosen[r, t]
                service_minutes[r, t] = chosen_minutes[r, t]
                applied_week[r, t] = week
                status_week[r, t] = week
                counts[2] += 1
                if t == CHILDCARE and youngest_age_weeks[r] < 0:
                    counts[3] += 1
            status[r, t] = st


# -- at renewal ----------------------------------------------------------------------------


@kernel
def nearest_eligible(
    rows,
    t,
    fam,
    svc,
    indptr,
    services,
    minutes,
    nearest_service,
    nearest_minutes,
    pref_service,
    pref_minutes,
    none_eligible,
):
    """The service the barrier log evaluates for (family, type t): the first candidate the
    family is eligible for, else the nearest of the type anywhere; `none_eligible` where it
    has candidates but none it may use."""
    for r in rows:
        found = -1
        for j in range(indptr[r], indptr[r + 1]):
            if _eligible(fam, svc, r, services[j]):
                found = j
                break
        if found >= 0:
            pref_service[r, t] = services[found]
            pref_minutes[r, t] = minutes[found]
        else:
            pref_service[r, t] = nearest_service[r, t]
            pref_minutes[r, t] = nearest_minutes[r, t]
        none_eligible[r, t] = indptr[r + 1] > indptr[r] and found < 0


@kernel
def pair_barrier_masks(
    fam, svc, fees, params, rows, types, services, minutes, enrolled_hub, masks, felt
):
    """`service_barriers` for given pairs into `masks` and `felt` (inspection and tests)."""
    for i in range(len(rows)):
        masks[i], felt[i] = service_barriers(
            fam, svc, fees, params, rows[i], types[i], services[i], minutes[i], enrolled_hub
        )


@kernel
def bound_masks(fam, fees, params, bounds, rows, types, nearest_minutes, out):
    """`could_accept` for given (family, type) pairs into `out` (verification tests)."""
    for i in range(len(rows)):
        out[i] = could_accept(fam, fees, params, bounds, rows[i], types[i], nearest_minutes)
