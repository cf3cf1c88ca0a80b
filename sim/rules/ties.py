"""Social ties as a mutable structure: adding and removing ties, and the ties families form
where they meet (IAS focus groups 2020: meeting other parents is "the most powerful way to
support parents"; word of mouth flows through these ties).

A family's ties are the first `tie_count[r]` entries of row r of `ties` (int32 [F, D], table
rows), D = the implementation limit on a family's number of ties
(`sim.world.population.max_tie_degree`). Ties are undirected: b is in a's row exactly when a
is in b's, each once. The order of a row is the order ties were added in (a removal moves
the row's last entry into the gap); no rule reads it, they only count and test membership.

Every change keeps the tie-user counts of word of mouth exact: `users[f, t]` is the number of
f's ties whose recorded use of type t (`using[g, t]`, the use `information.update_tie_users`
last saw) is true, so a tie added or removed changes both ends' counts by the other's
recorded use. An empty `users` (zero rows) means the counts are not kept yet.
"""

from __future__ import annotations

import numpy as np

from sim.core.compiled import inline, kernel
from sim.core.rng import uniform_from

# positions in the outcome counts of `add_ties`
TIE_FORMED, TIE_ALREADY, TIE_OVER_LIMIT = 0, 1, 2
TIE_OUTCOMES = ("formed", "already_tied", "over_limit")


@inline
def _tied(ties, tie_count, a, b):
    """Whether b is among a's ties."""
    for j in range(tie_count[a]):
        if ties[a, j] == b:
            return True
    return False


@kernel
def add_ties(a, b, ties, tie_count, using, users, outcome):
    """Add the ties (a[i], b[i]) in the order given (the caller's canonical order, never
    storage order). A self-tie is skipped silently (a draw may pick its own family); a tie
    that exists is not added again (`outcome[TIE_ALREADY]`); a tie that would give either
    family more than D ties is not formed (`outcome[TIE_OVER_LIMIT]`); the others are added
    in both directions (`outcome[TIE_FORMED]`), with the tie-user counts."""
    limit = ties.shape[1]
    keep_users = users.shape[0] > 0
    for i in range(len(a)):
        x, y = a[i], b[i]
        if x == y:
            continue
        if _tied(ties, tie_count, x, y):
            outcome[TIE_ALREADY] += 1
            continue
        if tie_count[x] >= limit or tie_count[y] >= limit:
            outcome[TIE_OVER_LIMIT] += 1
            continue
        ties[x, tie_count[x]] = y
        tie_count[x] += 1
        ties[y, tie_count[y]] = x
        tie_count[y] += 1
        outcome[TIE_FORMED] += 1
        if keep_users:
            for t in range(users.shape[1]):
                if using[y, t]:
                    users[x, t] += 1
                if using[x, t]:
                    users[y, t] += 1


@kernel
def remove_ties_of(rows, ties, tie_count, using, users):
    """Remove every tie of the given families, in both directions, with the tie-user counts;
    returns the number of ties removed. A tie between two of the rows is removed once."""
    keep_users = users.shape[0] > 0
    removed = 0
    for r in rows:
        for j in range(tie_count[r]):
            o = ties[r, j]
            last = tie_count[o] - 1
            for k in range(last + 1):
                if ties[o, k] == r:
                    ties[o, k] = ties[o, last]
                    break
            tie_count[o] = last
            removed += 1
            if keep_users:
                for t in range(users.shape[1]):
                    if using[r, t]:
                        users[o, t] -= 1
                    if using[o, t]:
                        users[r, t] -= 1
        tie_count[r] = 0
    return removed


@kernel
def attendance_partners(site_start, members, member_type, key, prob, meets, partner, met, chosen):
    """The week's meetings at the sites (one call for every childcare and parenting site):
    site s's enrolled families are members[site_start[s]:site_start[s + 1]] in key order,
    each enrolled there for type member_type[i]. Each meets another member with
    probability `prob` (keyed draw of stream `meets`, by family key and type); the partner
    is a keyed uniform pick (stream `partner`) among the site's other members, in key order.
    Writes the n-th meeting's place in `members` to met[n] and the partner's row to
    chosen[n]; returns the number of meetings, in site order."""
    n = 0
    for s in range(len(site_start) - 1):
        first, stop = site_start[s], site_start[s + 1]
        size = stop - first
        if size < 2:
            continue
        for i in range(first, stop):
            r = members[i]
            t = member_type[i]
            if uniform_from(meets, key[r], t) < prob:
                j = np.int64(uniform_from(partner, key[r], t) * (size - 1))
                j = min(j, size - 2)
                if j >= i - first:
                    j += 1  # the members after oneself move down by one
                met[n] = i
                chosen[n] = members[first + j]
                n += 1
    return n
