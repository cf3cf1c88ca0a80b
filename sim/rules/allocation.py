"""Allocation: the registration desk of each type offers places as they fall vacant.

The Flemish local registration desk is one gate for childcare (EVIDENCE C20-C22): a family
registers its need (from the third month of pregnancy, C21) for a list of acceptable centres
(`sim.rules.decisions.applications`); each week the desk goes through the open requests of
families ready to start in its priority order and offers each the first centre of its list
with room for it. Order: priority class (working parents first, or need as the municipality
observes it: means test on application, then neighbourhood deprivation — KOALA's proactive
admissions; C22), then request week (first come), then a keyed random draw, then family key;
storage order never matters. An offer from a centre other than the first choice may be
declined (the family keeps waiting and the place goes to the next request). Capacity is
counted in units: childcare in days (a full-time place is DAYS_PER_WEEK days, so part-time
children share places), every other type in users.
"""

from __future__ import annotations

import numpy as np

from sim.core import rng
from sim.core.codes import (
    CHILDCARE,
    ENROLLED,
    N_TYPES,
    NO_SERVICE,
    PRIORITY_NEED,
    PRIORITY_WORKING,
)
from sim.core.compiled import inline, kernel
from sim.core.rng import uniform_from
from sim.rules.decisions import units

# what `offer_places` sums per type, by position in its `sums` [T, ...]: offers accepted,
# weeks from request to offer and from the desired start to offer (over accepted offers),
# requests whose desired start is this week and, of them, those still without an offer
OFFER_SUMS = ("offers", "wait_from_request", "wait_from_start", "due", "due_without_offer")
_OFFERS, _WAIT_REQUEST, _WAIT_START, _DUE, _DUE_WITHOUT = range(len(OFFER_SUMS))


def priority_class(
    rule: np.ndarray,
    employed: np.ndarray,
    passes_means_test: np.ndarray,
    deprivation_rank: np.ndarray,
    rank_min: np.ndarray,
) -> np.ndarray:
    """0 is offered first. Only what a municipality can observe is used."""
    working = np.where(employed, 0, 1)
    need = np.where(passes_means_test, 0, np.where(deprivation_rank >= rank_min, 1, 2))
    return np.where(
        rule == PRIORITY_WORKING, working, np.where(rule == PRIORITY_NEED, need, 0)
    ).astype(np.int64)


def desk_order(
    seed: int,
    week: int,
    types: np.ndarray,
    family_key: np.ndarray,
    priority: np.ndarray,
    applied_week: np.ndarray,
) -> np.ndarray:
    """The order in which the desks go through the requests (type by type; within a type by
    priority class, request week, keyed draw, family key): indices into the requests."""
    draw = rng.keyed_bits(seed, "admission", week, family_key, types)
    return np.lexsort((family_key, draw, applied_week, priority, types))


@kernel
def used_units(fam, out):
    """out[s]: the capacity units in use at service s (childcare days, users elsewhere)."""
    for r in range(fam.status.shape[0]):
        for t in range(N_TYPES):
            if fam.status[r, t] == ENROLLED:
                out[fam.service[r, t]] += units(fam, r, t)


@inline
def _desired_start(fam, r, t, week):
    """The week a ready request wanted its place from: the request week, for childcare not
    before the week the child reached its planned start age."""
    applied = fam.applied_week[r, t]
    if t != CHILDCARE:
        return applied
    start = week - (fam.youngest_age_weeks[r] - fam.care_start_age_weeks[r])
    return max(applied, start)


@kernel
def offer_places(rows, types, fam, registered_minutes, service_minutes, free, offers, sums):
    """The desks' week: requests (rows[i], types[i]) in desk order, each of a family ready to
    start; each is offered the first centre of its list with its units free (`free`, per
    service, updated as places are taken). An offer from a centre other than the first
    choice is declined with `offers.decline_prob` (keyed stream `offer_decline`): the place
    stays free for the next request. An accepted offer enrols the family. Then the requests
    whose desired start (the request week, for childcare not before the child can start) is
    this week are counted, with those still without an offer. Adds to `sums` [T, OFFER_SUMS];
    returns the number of declined offers."""
    week = offers.week
    choices = fam.registered.shape[2]
    declined = 0
    for i in range(len(rows)):
        r, t = rows[i], types[i]
        need_units = units(fam, r, t)
        for k in range(choices):
            s = fam.registered[r, t, k]
            if s == NO_SERVICE:
                break
            if free[s] < need_units:
                continue
            if k > 0 and (uniform_from(offers.decline_stream, fam.key[r], t) < offers.decline_prob):
                declined += 1
                break
            free[s] -= need_units
            fam.status[r, t] = ENROLLED
            fam.status_week[r, t] = week
            fam.service[r, t] = s
            service_minutes[r, t] = registered_minutes[r, t, k]
            sums[t, _OFFERS] += 1
            sums[t, _WAIT_REQUEST] += week - fam.applied_week[r, t]
            sums[t, _WAIT_START] += week - _desired_start(fam, r, t, week)
            break
    for i in range(len(rows)):
        r, t = rows[i], types[i]
        if _desired_start(fam, r, t, week) == week:
            sums[t, _DUE] += 1
            if fam.status[r, t] != ENROLLED:
                sums[t, _DUE_WITHOUT] += 1
    return declined
