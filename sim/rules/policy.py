"""The municipality's adaptive policy (DESIGN §2 step 6; docs/ODD.md §7.14): every
`review_weeks` it reads the barrier signals of the families in contact with some service,
and moves a set share of a flexible budget to the lever that answers the most-reported
barrier. The budget is held in integer cents per lever, so moving it never changes the
outlay.

Signals follow the Ghent signal report (IAS focus groups 2020, "Main points on
accessibility": practitioners "capturing, bundling and following up on" the signals parents
give them, "a necessary structural element of policy making"): what a family tells a
professional it is in contact with — the barriers of its unmet needs as the barrier log
records them. Families in contact with no service send no signal.
"""

from __future__ import annotations

from sim.core.codes import (
    CAPACITY_DIM,
    DIMENSION_LEVER,
    DROPPED,
    ENROLLED,
    FIT_DIM,
    INFORMATION_DIM,
    MATCHING_DIM,
    N_TYPES,
    POLICY_LEVERS,
    REJECTED,
    WAITLISTED,
)
from sim.core.compiled import inline, kernel

PLACES, FEE_REDUCTION, OUTREACH, BROKERS, FORMS_HELP = range(len(POLICY_LEVERS))
NO_LEVER = -1
BASIS_POINTS = 10_000


@inline
def unmet_block(d, logged, aware, new_aware, waiting, room):
    """Whether dimension d blocks an unmet need in the barrier log: the preferred
    candidate's pair barriers (`logged`), unawareness when the week's decisions were made
    (information), waiting with no acceptable place free (capacity) or with one free
    (matching)."""
    if d == INFORMATION_DIM:
        return logged or not aware or new_aware
    if d == CAPACITY_DIM:
        return logged or (waiting and not room)
    if d == MATCHING_DIM:
        return waiting and room
    return logged


@inline
def unmet_fallback(status, room):
    """The dimension of an unmet need that nothing blocks: after a drop-out the offer did
    not fit; otherwise the family did not get a place — one stood empty (matching) or none
    (capacity)."""
    if status == DROPPED:
        return FIT_DIM
    return MATCHING_DIM if room else CAPACITY_DIM


@kernel
def contact_signals(
    status,
    aware,
    staff_contacted,
    coordinated,
    need,
    new_aware,
    preferred_blocks,
    empty_place,
    signals,
):
    """Add this week's signals to `signals` [D]: for each family in contact with some
    service (using or waiting for one, or visited by staff, or assessed by a coordinator),
    every barrier dimension blocking each of its unmet needs (several per need, as in
    `blocked_by_*`). The arrays are the family table's columns of those names."""
    n_dims = signals.shape[0]
    for r in range(status.shape[0]):
        contact = staff_contacted[r] or coordinated[r]
        for t in range(N_TYPES):
            if status[r, t] == ENROLLED or status[r, t] == WAITLISTED:
                contact = True
        if not contact:
            continue
        for t in range(N_TYPES):
            st = status[r, t]
            if not need[r, t] or st == ENROLLED:
                continue
            waiting = st == WAITLISTED or st == REJECTED
            room = empty_place[r, t]
            found = False
            for d in range(n_dims):
                if unmet_block(
                    d, preferred_blocks[r, t, d], aware[r, t], new_aware[r, t], waiting, room
                ):
                    signals[d] += 1
                    found = True
            if not found:
                signals[unmet_fallback(st, room)] += 1


def review(holdings: list[int], signals: list[int], move_bp: int) -> tuple[list[int], int]:
    """One review: the most-reported dimension that has a lever (ties to the first in
    DIMENSIONS order) draws `move_bp` basis points of what every other lever holds (integer
    cents, rounded down per lever). Returns the new holdings and the dimension acted on
    (-1: no signal with a lever, nothing moves)."""
    top, best = -1, 0
    for d, count in enumerate(signals):
        if DIMENSION_LEVER[d] != NO_LEVER and count > best:
            top, best = d, count
    if top < 0:
        return list(holdings), -1
    lever = int(DIMENSION_LEVER[top])
    out = list(holdings)
    for k, held in enumerate(holdings):
        if k != lever:
            taken = held * move_bp // BASIS_POINTS
            out[k] -= taken
            out[lever] += taken
    return out, top


def shares_of(weights: list[int], total: int) -> list[int]:
    """`total` units split in proportion to integer `weights` by largest remainder (ties to
    the lower index), in integers only."""
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    base = [w * total // whole for w in weights]
    remainders = [w * total % whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[: total - sum(base)]:
        base[i] += 1
    return base
