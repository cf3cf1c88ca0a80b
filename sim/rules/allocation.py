"""Allocation: capacity-limited services admit applicants in the scenario's priority order.

Order within a service: priority class (working parents first, or need as the municipality
observes it: means test on application, then neighbourhood deprivation — KOALA's proactive
admissions), then application week (Flemish first-come registration, EVIDENCE C21-C22),
then a keyed random draw, then family key. Storage order never matters.
"""

from __future__ import annotations

import numpy as np

from sim.core import rng
from sim.core.codes import PRIORITY_NEED, PRIORITY_WORKING


def priority_class(
    rule: np.ndarray,
    employed: np.ndarray,
    passes_means_test: np.ndarray,
    deprivation_rank: np.ndarray,
    rank_min: np.ndarray,
) -> np.ndarray:
    """0 is admitted first. Only what a municipality can observe is used."""
    working = np.where(employed, 0, 1)
    need = np.where(passes_means_test, 0, np.where(deprivation_rank >= rank_min, 1, 2))
    return np.where(
        rule == PRIORITY_WORKING, working, np.where(rule == PRIORITY_NEED, need, 0)
    ).astype(np.int64)


def admit(
    seed: int,
    week: int,
    service: np.ndarray,
    family_key: np.ndarray,
    priority: np.ndarray,
    applied_week: np.ndarray,
    ready: np.ndarray,
    free_places: np.ndarray,
) -> np.ndarray:
    """Admit the first `free_places[s]` ready applicants of each service s in order;
    returns a bool per applicant."""
    n = len(service)
    admitted = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(ready)
    if idx.size == 0:
        return admitted
    draw = rng.keyed_bits(seed, "admission", week, family_key[idx], service[idx])
    order = np.lexsort((family_key[idx], draw, applied_week[idx], priority[idx], service[idx]))
    ordered = idx[order]
    svc = service[ordered]
    # rank within service
    boundaries = np.r_[0, np.flatnonzero(svc[1:] != svc[:-1]) + 1]
    group_start = np.repeat(boundaries, np.diff(np.r_[boundaries, len(svc)]))
    rank = np.arange(len(svc)) - group_start
    admitted[ordered] = rank < free_places[svc]
    return admitted
