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

from sim.core.codes import (
    CHANNEL_BROKER,
    CHANNEL_COORDINATOR,
    CHANNEL_FIRST_CONTACT,
    CHANNEL_OUTREACH,
    CHANNEL_REFERRAL,
    CHANNEL_WORD_OF_MOUTH,
    ENROLLED,
    HEALTH,
    N_TYPES,
    NO_HUB,
    NO_SERVICE,
    NONE,
    PARENTING,
)
from sim.core.compiled import inline, kernel
from sim.core.rng import uniform_from


def tie_matrix(ties: np.ndarray, tie_count: np.ndarray) -> sparse.csr_matrix:
    """The tie adjacency as a sparse matrix (rows and columns are table rows), from the tie
    structure of `sim.rules.ties` (row r's ties are ties[r, :tie_count[r]])."""
    n = len(tie_count)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(tie_count, out=indptr[1:])
    held = np.arange(ties.shape[1])[None, :] < tie_count[:, None]
    indices = ties[held].astype(np.int64)
    data = np.ones(len(indices), dtype=np.int32)  # counts of ties: exact in int32
    return sparse.csr_matrix((data, indices, indptr), shape=(n, n))


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
def update_tie_users(status, using, ties, tie_count, users):
    """Bring users[f, t] (how many of f's ties use type t) up to date with this week's use,
    from the families whose use of a type changed since `using` was recorded: ties are
    undirected, so each changes the counts of its neighbours by one. Exact integers, so this
    equals the full product of the tie matrix with the use matrix. A tie added or removed
    since keeps the counts exact itself (`sim.rules.ties`)."""
    for r in range(status.shape[0]):
        for t in range(N_TYPES):
            now = status[r, t] == ENROLLED
            if now != using[r, t]:
                delta = 1 if now else -1
                for j in range(tie_count[r]):
                    users[ties[r, j], t] += delta
                using[r, t] = now


@kernel
def channel_events(rows, fam, state, channels, contacts, events):
    """Information events of the week (DESIGN §2 step 1; IAS focus groups, EVIDENCE H1-H4,
    W1-W3), in the channels' order: universal first contact in the week of birth, word of
    mouth from ties who used the type last week (1 - (1 - p)^users, from
    `channels.wom_probability`), outreach visits and brokers among the pools the
    municipality can target (`contacts`), referrals from services in use (warm to the types
    of a hub the family uses), a hub coordinator's assessment. Each channel draws from its
    own keyed stream (`state.streams`, named after the stream). Reads `state` (`WeekState`)
    and `channels` (`InformationChannels`), writes `events` (`InformationEvents`); returns
    the number of referrals from a hub the family uses."""
    streams = state.streams
    hub_referrals = 0
    for r in rows:
        key = fam.key[r]
        heard = 0  # bit t: the family hears of type t this week
        first = _NO_CHANNELS  # nibble t: the first channel that told of type t this week
        comp_local = 1.0 if fam.is_local_language[r] else fam.proficiency[r]
        if fam.youngest_age_weeks[r] == 0:
            if uniform_from(streams.first_contact, key, NO_SERVICE) < channels.first_contact_reach:
                heard, first = _hear(heard, first, HEALTH, CHANNEL_FIRST_CONTACT)
                events.first_contact[r] = True
                comp_fc = max(comp_local, channels.first_contact_interpreter)
                for t in range(N_TYPES):
                    if (
                        channels.informs[t]
                        and uniform_from(streams.first_contact_understood, key, t) < comp_fc
                    ):
                        heard, first = _hear(heard, first, t, CHANNEL_FIRST_CONTACT)
        for t in range(N_TYPES):
            n_users = state.tie_users[r, t]
            if n_users > 0:
                events.wom_heard[r, t] = True
                # an event only matters for a type the family does not know yet
                if not fam.aware[r, t]:
                    p_heard = channels.wom_probability[n_users]
                    if uniform_from(streams.word_of_mouth, key, t) < p_heard:
                        events.wom_aware[r, t] = True
                        heard, first = _hear(heard, first, t, CHANNEL_WORD_OF_MOUTH)
        # a tie visited by an outreach worker last week brings the family along to a
        # parenting meeting place: it hears of it (as word of mouth, through a tie)
        n_visited = 0
        for j in range(fam.tie_count[r]):
            if fam.visited_week[fam.ties[r, j]] == state.week - 1:
                n_visited += 1
        if n_visited > 0 and not fam.aware[r, PARENTING]:
            p_along = channels.outreach_tie_probability[n_visited]
            if uniform_from(streams.outreach_tie, key, PARENTING) < p_along:
                events.wom_aware[r, PARENTING] = True
                heard, first = _hear(heard, first, PARENTING, CHANNEL_WORD_OF_MOUTH)
        visited = False
        if (
            contacts.outreach_pool[r]
            and uniform_from(streams.outreach, key, NO_SERVICE) < contacts.p_outreach
        ):
            visited = True
            comp_visit = max(comp_local, channels.outreach_interpreter)
            for t in range(N_TYPES):
                if uniform_from(streams.outreach_understood, key, t) < comp_visit:
                    heard, first = _hear(heard, first, t, CHANNEL_OUTREACH)
        brokered = False
        p_brokered = contacts.p_broker[fam.language[r]]
        if contacts.broker_pool[r] and uniform_from(streams.broker, key, NO_SERVICE) < p_brokered:
            brokered = True
            for t in range(N_TYPES):
                heard, first = _hear(heard, first, t, CHANNEL_BROKER)
        events.broker_contacted[r] = brokered
        events.staff_contacted[r] = visited or brokered
        events.visited[r] = visited
        any_enrolled = False
        in_hub = False
        for k in range(N_TYPES):
            any_enrolled |= fam.status[r, k] == ENROLLED
            in_hub |= state.enrolled_hub[r, k] != NO_HUB
        if any_enrolled:
            for t in range(N_TYPES):
                # a referral is to a type the family needs and neither uses nor waits for,
                # from a service of another type that it uses (warm inside that one's hub)
                if not (state.applicable[r, t] and fam.status[r, t] == NONE):
                    continue
                referrer = False
                warm = False
                for k in range(N_TYPES):
                    if k == t or fam.status[r, k] != ENROLLED:
                        continue
                    referrer = True
                    h = state.enrolled_hub[r, k]
                    if h != NO_HUB and channels.hub_has_type[h, t]:
                        warm = True
                if not referrer:
                    continue
                p_ref = channels.hub_referral_prob if warm else channels.referral_prob
                if uniform_from(streams.referral, key, t) < p_ref:
                    heard, first = _hear(heard, first, t, CHANNEL_REFERRAL)
                    events.referred[r] = True
                    if warm:
                        hub_referrals += 1
        if channels.coordinator and in_hub and not fam.coordinated[r]:
            events.coordinated[r] = True
            for t in range(N_TYPES):
                if state.need[r, t]:
                    heard, first = _hear(heard, first, t, CHANNEL_COORDINATOR)
        for t in range(N_TYPES):
            events.new_aware[r, t] = (heard >> t) & 1 == 1 and not fam.aware[r, t]
            if events.new_aware[r, t]:
                events.channel[r, t] = (first >> (4 * t)) & 15
    return hub_referrals


# the first channel per type, 4 bits a type (15: none yet)
_NO_CHANNELS = (1 << (4 * N_TYPES)) - 1


@inline
def _hear(heard, first, t, channel):
    """Type t is heard of this week through `channel`: its bit in `heard`, and its nibble in
    `first` if no channel told of it before this week's."""
    if (first >> (4 * t)) & 15 == 15:
        first = (first & ~(15 << (4 * t))) | (channel << (4 * t))
    return heard | (1 << t), first
