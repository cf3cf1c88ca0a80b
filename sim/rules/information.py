"""Information: how families become aware of a type of service.

Channels (IAS focus groups 2020, 'How did families know about the services?'; EVIDENCE
W1-W3): a universal first contact after birth (Kind en Gezin reaches >90 % of newborns,
H1-H3); word of mouth from ties who use a service (the strongest channel in the sources);
outreach home visits targeted only by what a municipality can observe; referrals from
services a family already uses (strong inside a hub, weak between separate services);
trained community brokers inside a language community (Kortrijk). The kernels read last
week's state and write events into phase A's plan; they never write the column store.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from sim.core.codes import ENROLLED, HEALTH, N_TYPES, NO_HUB, NO_SERVICE
from sim.core.compiled import kernel
from sim.core.rng import uniform_from


def tie_matrix(ties_indptr: np.ndarray, ties_indices: np.ndarray) -> sparse.csr_matrix:
    """The tie adjacency as a sparse matrix (rows and columns are table rows)."""
    n = len(ties_indptr) - 1
    data = np.ones(len(ties_indices), dtype=np.int32)  # counts of ties: exact in int32
    return sparse.csr_matrix((data, ties_indices, ties_indptr), shape=(n, n))


def tie_user_counts(ties: sparse.csr_matrix, using: np.ndarray) -> np.ndarray:
    """How many of each family's ties use each type: int64 [F, T] (exact integer sums)."""
    return np.asarray(ties @ using.astype(np.int32)).astype(np.int64)


def word_of_mouth_probability(prob_per_tie: float, most_users: int) -> np.ndarray:
    """Chance of hearing of a type in a week from n ties who use it, 1 - (1 - p)^n, for
    n = 0 .. most_users (independent chances per tie)."""
    return 1.0 - (1.0 - prob_per_tie) ** np.arange(most_users + 1)


def contact_probability(capacity: float, eligible: np.ndarray) -> float:
    """Contacts available this week spread evenly over the eligible families."""
    count = int(eligible.sum())
    return 0.0 if count == 0 else min(1.0, capacity / count)


@kernel
def update_tie_users(status, using, ties_indptr, ties_indices, users):
    """Bring users[f, t] (how many of f's ties use type t) up to date with this week's use,
    from the families whose use of a type changed since `using` was recorded: ties are
    undirected, so each changes the counts of its neighbours by one. Exact integers, so this
    equals the full product of the tie matrix with the use matrix."""
    for r in range(status.shape[0]):
        for t in range(N_TYPES):
            now = status[r, t] == ENROLLED
            if now != using[r, t]:
                delta = 1 if now else -1
                for j in range(ties_indptr[r], ties_indptr[r + 1]):
                    users[ties_indices[j], t] += delta
                using[r, t] = now


@kernel
def channel_events(
    rows,
    fam,
    need,
    users,
    enrolled_hub,
    hub_has_type,
    coordinator,
    informs,
    first_contact_reach,
    first_contact_interpreter,
    wom_probability,
    outreach_pool,
    p_outreach,
    broker_pool,
    p_broker,
    referral_prob,
    hub_referral_prob,
    prefixes,
    new_aware,
    wom_heard,
    wom_aware,
    broker_contacted,
    staff_contacted,
    coordinated,
):
    """Information events of the week (DESIGN §2 step 1; IAS focus groups, EVIDENCE H1-H4,
    W1-W3), in the channels' order: universal first contact in the week of birth, word of
    mouth from ties who used the type last week (1 - (1 - p)^users, from `wom_probability`),
    outreach visits and brokers among the pools the municipality can target, referrals from
    services in use (warm to the types of a hub the family uses), a hub coordinator's
    assessment. `prefixes` are the streams' hash states for this week, in that order:
    first_contact, first_contact_understood, word_of_mouth, outreach, outreach_understood,
    broker, referral. Returns the number of referrals from a hub the family uses."""
    hub_referrals = 0
    for r in rows:
        key = fam.key[r]
        events = 0
        comp_local = 1.0 if fam.is_local_language[r] else fam.proficiency[r]
        if fam.youngest_age_weeks[r] == 0:
            if uniform_from(prefixes[0], key, NO_SERVICE) < first_contact_reach:
                events |= 1 << HEALTH
                comp_fc = max(comp_local, first_contact_interpreter)
                for t in range(N_TYPES):
                    if informs[t] and uniform_from(prefixes[1], key, t) < comp_fc:
                        events |= 1 << t
        for t in range(N_TYPES):
            n_users = users[r, t]
            if n_users > 0:
                wom_heard[r, t] = True
                # an event only matters for a type the family does not know yet
                if not fam.aware[r, t]:
                    if uniform_from(prefixes[2], key, t) < wom_probability[n_users]:
                        wom_aware[r, t] = True
                        events |= 1 << t
        visited = False
        if outreach_pool[r] and uniform_from(prefixes[3], key, NO_SERVICE) < p_outreach:
            visited = True
            for t in range(N_TYPES):
                if uniform_from(prefixes[4], key, t) < comp_local:
                    events |= 1 << t
        brokered = False
        p_brokered = p_broker[fam.language[r]]
        if broker_pool[r] and uniform_from(prefixes[5], key, NO_SERVICE) < p_brokered:
            brokered = True
            events = (1 << N_TYPES) - 1
        broker_contacted[r] = brokered
        staff_contacted[r] = visited or brokered
        any_enrolled = False
        in_hub = False
        for k in range(N_TYPES):
            any_enrolled |= fam.status[r, k] == ENROLLED
            in_hub |= enrolled_hub[r, k] != NO_HUB
        if any_enrolled:
            for t in range(N_TYPES):
                warm = False
                for k in range(N_TYPES):
                    h = enrolled_hub[r, k]
                    if h != NO_HUB and hub_has_type[h, t]:
                        warm = True
                p_ref = hub_referral_prob if warm else referral_prob
                if uniform_from(prefixes[6], key, t) < p_ref:
                    events |= 1 << t
                    if warm:
                        hub_referrals += 1
        if coordinator and in_hub and not fam.coordinated[r]:
            coordinated[r] = True
            for t in range(N_TYPES):
                if need[r, t]:
                    events |= 1 << t
        for t in range(N_TYPES):
            new_aware[r, t] = (events >> t) & 1 == 1 and not fam.aware[r, t]
    return hub_referrals
