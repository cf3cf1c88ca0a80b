"""Information: how families become aware of a type of service.

Channels (IAS focus groups 2020, 'How did families know about the services?'; EVIDENCE
W1-W3): a universal first contact after birth (Kind en Gezin reaches >90 % of newborns,
H1-H3); word of mouth from ties who use a service (the strongest channel in the sources);
outreach home visits targeted only by what a municipality can observe; referrals from
services a family already uses (strong inside a hub, weak between separate services);
trained community brokers inside a language community (Kortrijk). All kernels read last
week's state and return events; they never write the column store.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from sim import rng
from sim.population import N_TYPES


def tie_matrix(ties_indptr: np.ndarray, ties_indices: np.ndarray) -> sparse.csr_matrix:
    """The tie adjacency as a sparse matrix (rows and columns are table rows)."""
    n = len(ties_indptr) - 1
    data = np.ones(len(ties_indices), dtype=np.int32)  # counts of ties: exact in int32
    return sparse.csr_matrix((data, ties_indices, ties_indptr), shape=(n, n))


def tie_user_counts(ties: sparse.csr_matrix, using: np.ndarray) -> np.ndarray:
    """How many of each family's ties use each type: int64 [F, T] (exact integer sums)."""
    return np.asarray(ties @ using.astype(np.int32)).astype(np.int64)


def word_of_mouth(
    seed: int, week: int, keys: np.ndarray, users: np.ndarray, prob_per_tie: float
) -> np.ndarray:
    """Aware through ties this week: 1 - (1 - p)^(number of ties using the type). bool [n, T]."""
    rows, types = np.nonzero(users > 0)
    out = np.zeros(users.shape, dtype=bool)
    out[rows, types] = word_of_mouth_pairs(
        seed, week, keys[rows], types, users[rows, types], prob_per_tie
    )
    return out


def word_of_mouth_pairs(
    seed: int,
    week: int,
    keys: np.ndarray,
    types: np.ndarray,
    users: np.ndarray,
    prob_per_tie: float,
) -> np.ndarray:
    """`word_of_mouth` for given (family key, type) pairs with at least one user among ties;
    the same keyed draw, so drawing only for the pairs that matter changes no outcome."""
    p = 1.0 - (1.0 - prob_per_tie) ** users
    return rng.uniform(seed, "word_of_mouth", week, keys, types) < p


def understood(
    seed: int, stream: str, week: int, keys: np.ndarray, comprehension: np.ndarray
) -> np.ndarray:
    """Whether information passed on in the local language is understood, per type."""
    u = rng.uniform(seed, stream, week, keys[:, None], np.arange(N_TYPES)[None, :])
    return u < comprehension[:, None]


def contact_probability(capacity: float, eligible: np.ndarray) -> float:
    """Contacts available this week spread evenly over the eligible families."""
    count = int(eligible.sum())
    return 0.0 if count == 0 else min(1.0, capacity / count)
