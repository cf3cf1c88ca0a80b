"""Compiled weekly kernels of the fast engine (numba, `sim.core.compiled`): one loop over families,
one decision at a time. Phase A's kernels read last week's state and write its plan; phase
B's and the life course's apply the week to the column store in the fixed order.

Each kernel applies the rule the per-agent reference applies, with the same integers, the
same float64 formulas in the same order (`sim.rules.barriers.pair_barriers`) and the same keyed
draws (`sim.core.rng`: a draw is a pure function of its keys, so a kernel computes it only where
a decision needs it). Rows are global table indices; a kernel touches only the rows it is
given, so any partition of the families gives the same plan. Inputs come as the named records
of `sim.rules.records` (the family and service columns, the week's state, the constants);
r, t and s are a family row, a type and a service id.
"""

from __future__ import annotations

import numpy as np

from sim.core.codes import (
    CHILDCARE,
    DAYS_PER_WEEK,
    DIMENSIONS,
    DROPPED,
    ENROLLED,
    N_TYPES,
    NO_HUB,
    NO_SERVICE,
    NONE,
    PAIR_DIMENSIONS,
    REJECTED,
    TRAVEL_MINUTES_CAP,
    WAITLISTED,
)
from sim.core.compiled import inline, kernel
from sim.core.rng import uniform_from
from sim.rules.barriers import pair_barriers
from sim.rules.fees import fee_cents, trip_cents
from sim.rules.records import PairFamily, PairOffer

_PAIR_BITS = len(PAIR_DIMENSIONS)
# the barrier log's dimension of each pair bit, and of capacity
_PAIR_TO_DIMENSION = np.array([DIMENSIONS.index(d) for d in PAIR_DIMENSIONS], dtype=np.int64)
_CAPACITY = DIMENSIONS.index("capacity")
# what `settle_exits_and_applications` counts, by position in its `counts`
SETTLED_COUNTS = ("dropouts", "give_ups", "applications", "pre_birth_applications")
# (a give-up is a request that ended without an offer)
_DROPOUTS, _GIVE_UPS, _APPLICATIONS, _PRE_BIRTH_APPLICATIONS = range(len(SETTLED_COUNTS))


# -- one pair ------------------------------------------------------------------------------


@inline
def service_barriers(fam, svc, fees, params, r, t, s, minutes, enrolled_hub):
    """`pair_barriers` for family row r and service s of type t at `minutes` of travel. One
    gate: the hub's intake is waived once the family registered at the hub (its file), uses
    a service of it or was assessed by its coordinator. Trust carries over: a family using
    a service of the hub needs `hub_trust_carryover` less of the trust the others require.
    A hub's mixed clientele lowers the stigma label."""
    hub = svc.hub[s]
    in_hub = hub != NO_HUB
    intake_done = False
    user = False
    if in_hub:
        if fam.coordinated[r] or fam.hub_file[r] == hub:
            intake_done = True
        for k in range(N_TYPES):
            if enrolled_hub[r, k] == hub:
                intake_done = True
                user = True
    trust_required = svc.trust_required[s]
    if user:
        trust_required = trust_required * (1.0 - params.hub_trust_carryover)
    # an outreach worker walks the family through its next application (form_help)
    complexity = 0.0 if (intake_done or fam.form_help[r]) else svc.admin_complexity[s]
    label_factor = params.hub_stigma_factor if in_hub else 1.0
    days = week_days(fam, r, t)
    weekly = fee_cents(fees, svc.schedule[s], fam.income_q[r]) * days // DAYS_PER_WEEK + (
        (np.int64(svc.trips_per_week[s]) * days // DAYS_PER_WEEK)
        * trip_cents(params, fam.mode[r], minutes)
        // svc.visit_interval_weeks[s]
    )
    # numba reads no conditional expression as a keyword argument: each is a local first
    interpreter = params.interpreter_comprehension if svc.interpreters[s] else 0.0
    offer = PairOffer(
        weekly_cost_cents=weekly,
        minutes=minutes,
        extended_hours=svc.extended_hours[s],
        hours_weight=svc.hours_weight[s],
        admin_complexity=complexity,
        speaks_language=svc.speaks[s, fam.language[r]],
        interpreter_comprehension=interpreter,
        stigma_label=svc.stigma_label[s] * label_factor,
        trust_required=trust_required,
        quality=svc.quality[s],
    )
    return pair_barriers(pair_family(fam, params, r, t), offer)


@inline
def pair_family(fam, params, r, t):
    """The family side of the barriers (`PairFamily`) of family row r for a service of type t."""
    broker_gain = params.broker_comprehension_gain if fam.broker_contacted[r] else 0.0
    return PairFamily(
        income_q=fam.income_q[r],
        household_factor_tenths=params.factor_tenths,
        cost_share_bp=fam.cost_share_bp[r],
        max_minutes=type_max_minutes(fam, params, r, t),
        atypical_hours=fam.atypical_hours[r],
        hours_severity=fam.hours_severity[r],
        hours_tolerance=fam.hours_tolerance[r],
        paperwork=fam.paperwork[r],
        admin_tolerance=fam.admin_tolerance[r],
        proficiency=fam.proficiency[r],
        broker_gain=broker_gain,
        language_tolerance=fam.language_tolerance[r],
        stigma_sensitivity=fam.stigma_sensitivity[r],
        trust=fam.trust[r],
        stigma_tolerance=fam.stigma_tolerance[r],
        trust_tolerance=fam.trust_tolerance[r],
        perceived_fit=fam.perceived_fit[r, t],
        fit_threshold=fam.fit_threshold[r],
    )


@inline
def could_accept(fam, fees, params, bounds, r, t, nearest_minutes):
    """False only where no candidate of type t can be acceptable to family r: the barriers
    at the most favourable value of every attribute among the type's services (cheapest fee,
    fewest trips at the longest visit interval, the nearest candidate, extended hours, the least hours weight, waived intake, the family's
    language, least stigma, best quality). Every barrier grows monotonically with each
    attribute, so this never rules out an acceptable candidate."""
    fee = np.int64(0)
    for k in range(bounds.n_schedules[t]):
        f = fee_cents(fees, bounds.schedules[t, k], fam.income_q[r])
        fee = f if k == 0 else min(fee, f)
    minutes = nearest_minutes[r, t]
    days = week_days(fam, r, t)
    weekly = fee * days // DAYS_PER_WEEK + (
        (bounds.trips[t] * days // DAYS_PER_WEEK)
        * trip_cents(params, fam.mode[r], minutes)
        // bounds.interval[t]
    )
    admin = 0.0 if fam.form_help[r] else bounds.admin[t]
    offer = PairOffer(
        weekly_cost_cents=weekly,
        minutes=minutes,
        extended_hours=bounds.extended[t],
        hours_weight=bounds.hours_weight[t],
        admin_complexity=admin,
        speaks_language=bounds.speaks[t, fam.language[r]],
        interpreter_comprehension=bounds.interpreter[t],
        stigma_label=bounds.stigma[t],
        trust_required=bounds.trust_required[t],
        quality=bounds.quality[t],
    )
    mask, _ = pair_barriers(pair_family(fam, params, r, t), offer)
    return mask == 0


@inline
def type_max_minutes(fam, params, r, t):
    """Family row r's maximum travel minutes to a service of type t: its own maximum (for a
    daily trip) at the type's tolerance percentage (`sim.world.travel.tolerance_percent`),
    at most TRAVEL_MINUTES_CAP."""
    return min(
        np.int64(fam.max_travel_minutes[r]) * params.tolerance_pct[t] // 100,
        np.int64(TRAVEL_MINUTES_CAP),
    )


@inline
def week_days(fam, r, t):
    """Days a week family row r uses a service of type t: its childcare days (fees and trips
    are per day), a full week for every other type (its fee and trips are weekly)."""
    return np.int64(fam.care_days[r]) if t == CHILDCARE else np.int64(DAYS_PER_WEEK)


@inline
def units(fam, r, t):
    """Capacity units family row r takes at a service of type t: childcare days (a place is
    DAYS_PER_WEEK days), one user at any other type."""
    return np.int64(fam.care_days[r]) if t == CHILDCARE else np.int64(1)


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
def enrolled_hubs(fam, svc, out):
    """out[f, t]: the hub of the service family f uses for type t, NO_HUB if none."""
    for r in range(fam.status.shape[0]):
        for t in range(N_TYPES):
            out[r, t] = svc.hub[fam.service[r, t]] if fam.status[r, t] == ENROLLED else NO_HUB


# -- phase A -------------------------------------------------------------------------------


@kernel
def applications(rows, fam, svc, fees, params, bounds, state, cand, chosen):
    """Each aware family with an open need registers with the desk (EVIDENCE C20-C22): it
    lists up to K acceptable centres in (minutes, service id) order, each one it is eligible
    for, has not left this spell, can register at now (before the child can start, only
    services keeping a waiting list) and where no barrier reaches its threshold. Writes
    `chosen` (`Chosen`; K is the width of `chosen.registered`)."""
    choices = chosen.registered.shape[2]
    for r in rows:
        for t in range(N_TYPES):
            if not (state.applicable[r, t] and fam.aware[r, t] and fam.status[r, t] == NONE):
                continue
            indptr = cand.indptr[t]
            lo, hi = indptr[r], indptr[r + 1]
            if lo == hi or not could_accept(fam, fees, params, bounds, r, t, cand.nearest_minutes):
                continue
            ready = _ready(fam, r, t)
            services = cand.service[t]
            minutes = cand.minutes[t]
            listed = 0
            for j in range(lo, hi):
                s = services[j]
                if not _eligible(fam, svc, r, s) or s == fam.excluded_service[r, t]:
                    continue
                if not (ready or svc.waitlist[s]):
                    continue
                mask, _ = service_barriers(
                    fam, svc, fees, params, r, t, s, minutes[j], state.enrolled_hub
                )
                if mask == 0:
                    if listed == 0:
                        chosen.service[r, t] = s
                        chosen.minutes[r, t] = minutes[j]
                    chosen.registered[r, t, listed] = s
                    chosen.registered_minutes[r, t, listed] = minutes[j]
                    listed += 1
                    if listed == choices:
                        break


@kernel
def exits(rows, fam, svc, fees, params, behaviour, state, out):
    """Drop-out with a weekly hazard that grows with the felt barriers of the service in
    use (keyed stream `dropout`); a request ends without an offer once a ready family has
    waited `behaviour.patience_weeks` for one. Writes `out` (`ExitFlags`)."""
    week = state.week
    for r in rows:
        for t in range(N_TYPES):
            status = fam.status[r, t]
            if status == ENROLLED:
                s = fam.service[r, t]
                _, felt = service_barriers(
                    fam, svc, fees, params, r, t, s, state.service_minutes[r, t], state.enrolled_hub
                )
                hazard = min(1.0, behaviour.dropout_base + behaviour.dropout_slope * felt)
                if uniform_from(state.streams.dropout, fam.key[r], t) < hazard:
                    out.dropout[r, t] = True
            elif status == WAITLISTED:
                since = fam.status_week[r, t]
                if t == CHILDCARE:
                    ready_since = week - (fam.youngest_age_weeks[r] - fam.care_start_age_weeks[r])
                else:
                    ready_since = since
                waited_from = max(ready_since, since)
                if _ready(fam, r, t) and week - waited_from >= behaviour.patience_weeks:
                    out.give_up[r, t] = True


@kernel
def preferred_blocks(
    rows, fam, svc, fees, params, bounds, state, cand, preferred, blocks, empty_place
):
    """Barrier log: every dimension blocking the preferred candidate of each unmet need (the
    nearest eligible service within reach, else the nearest of the type anywhere; see
    `Preferred`); capacity where the city has no service of the type, or none open to the
    family. blocks: bool [F, T, DIMENSIONS]. For an unmet need of an aware family,
    `empty_place` [F, T] marks whether some candidate it would accept (eligible, not left
    this spell, no barrier at its threshold) had room for it at the end of last week: a
    family kept waiting then is blocked by matching, not by capacity."""
    for r in rows:
        for t in range(N_TYPES):
            if not state.need[r, t] or fam.status[r, t] == ENROLLED:
                continue
            s = preferred.service[r, t]
            if s >= 0:
                mask, _ = service_barriers(
                    fam, svc, fees, params, r, t, s, preferred.minutes[r, t], state.enrolled_hub
                )
                for k in range(_PAIR_BITS):
                    blocks[r, t, _PAIR_TO_DIMENSION[k]] = (mask >> k) & 1 == 1
            if s < 0 or preferred.none_eligible[r, t]:
                blocks[r, t, _CAPACITY] = True
            if fam.aware[r, t]:
                empty_place[r, t] = _room_at_acceptable(
                    fam, svc, fees, params, bounds, state, cand, r, t
                )


@inline
def _room_at_acceptable(fam, svc, fees, params, bounds, state, cand, r, t):
    """Whether a candidate of type t that family row r would accept had its units free
    (none can be where the type's best attributes are not acceptable, `could_accept`)."""
    if not could_accept(fam, fees, params, bounds, r, t, cand.nearest_minutes):
        return False
    need_units = units(fam, r, t)
    services, minutes = cand.service[t], cand.minutes[t]
    for j in range(cand.indptr[t][r], cand.indptr[t][r + 1]):
        s = services[j]
        if state.free_units[s] < need_units:
            continue
        if not _eligible(fam, svc, r, s) or s == fam.excluded_service[r, t]:
            continue
        mask, _ = service_barriers(fam, svc, fees, params, r, t, s, minutes[j], state.enrolled_hub)
        if mask == 0:
            return True
    return False


# -- phase B -------------------------------------------------------------------------------


@kernel
def settle_exits_and_applications(
    fam, service_hub, service_minutes, registered_minutes, leaving, chosen, behaviour, week, counts
):
    """Phase B steps 2-5a for every (family, type), in that order: a rejection's or drop-out's
    cooldown ends; a drop-out leaves its service (not chosen again this spell); a request
    that waited too long ends without an offer (the family may register again once the
    cooldown is over); both lower trust by `behaviour.trust_loss` x trust; a new
    registration joins the desk's list (its centres into `fam.registered`, their minutes
    into `registered_minutes`, the first choice's into `service_minutes`), and a family
    without a hub file gets one at the hub of the first listed centre in a hub
    (`service_hub`, by service id): one registration for all the hub offers. `leaving` is the week's `ExitFlags`, `chosen` its `Chosen`;
    counts, by position, are SETTLED_COUNTS."""
    status, status_week, service = fam.status, fam.status_week, fam.service
    cooldown_weeks = behaviour.cooldown_weeks
    choices = fam.registered.shape[2]
    for r in range(status.shape[0]):
        for t in range(N_TYPES):
            st = status[r, t]
            if (st == REJECTED or st == DROPPED) and status_week[r, t] + cooldown_weeks <= week:
                st = NONE
            if leaving.dropout[r, t] and st == ENROLLED:
                st = DROPPED
                status_week[r, t] = week
                fam.excluded_service[r, t] = service[r, t]
                fam.trust[r] -= behaviour.trust_loss * fam.trust[r]
                counts[_DROPOUTS] += 1
            elif leaving.give_up[r, t] and st == WAITLISTED:
                st = REJECTED
                status_week[r, t] = week
                fam.trust[r] -= behaviour.trust_loss * fam.trust[r]
                counts[_GIVE_UPS] += 1
            elif chosen.service[r, t] != NO_SERVICE and st == NONE:
                st = WAITLISTED
                fam.form_help[r] = False  # the help with the forms is used up
                service[r, t] = chosen.service[r, t]
                service_minutes[r, t] = chosen.minutes[r, t]
                for k in range(choices):
                    listed = chosen.registered[r, t, k]
                    fam.registered[r, t, k] = listed
                    registered_minutes[r, t, k] = chosen.registered_minutes[r, t, k]
                    if listed != NO_SERVICE and fam.hub_file[r] == NO_HUB:
                        fam.hub_file[r] = service_hub[listed]
                fam.applied_week[r, t] = week
                status_week[r, t] = week
                counts[_APPLICATIONS] += 1
                if t == CHILDCARE and fam.youngest_age_weeks[r] < 0:
                    counts[_PRE_BIRTH_APPLICATIONS] += 1
            status[r, t] = st


# -- at renewal ----------------------------------------------------------------------------


@kernel
def nearest_eligible(rows, fam, svc, cand, preferred):
    """The service the barrier log evaluates for each (family, type), into `preferred`: the
    first candidate the family is eligible for, else the nearest of the type anywhere;
    `none_eligible` where it has candidates but none it may use."""
    for t in range(N_TYPES):
        indptr, services, minutes = cand.indptr[t], cand.service[t], cand.minutes[t]
        for r in rows:
            found = -1
            for j in range(indptr[r], indptr[r + 1]):
                if _eligible(fam, svc, r, services[j]):
                    found = j
                    break
            if found >= 0:
                preferred.service[r, t] = services[found]
                preferred.minutes[r, t] = minutes[found]
            else:
                preferred.service[r, t] = cand.nearest_service[r, t]
                preferred.minutes[r, t] = cand.nearest_minutes[r, t]
            preferred.none_eligible[r, t] = indptr[r + 1] > indptr[r] and found < 0
