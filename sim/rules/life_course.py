"""Life course: children age a week, needs tied to a child's age end, families conceive
with a weekly hazard (keyed draw) and births are counted (DESIGN §2 "life course").
"""

from __future__ import annotations

from sim.core.codes import N_TYPES, NO_SERVICE, NONE
from sim.core.compiled import kernel
from sim.core.rng import uniform_from


@kernel
def age_one_week(
    youngest_age_weeks,
    status,
    excluded_service,
    n_children,
    need_ends_at,
    min_birth_spacing_weeks,
    conception_prefix,
    conception_hazard,
    key,
    conceived,
):
    """Every youngest child ages a week; an age-bound need that ends closes its status and
    clears its excluded service (need_ends_at[t] < 0: the need does not end with age); a
    birth counts a child; a family whose youngest is old enough conceives with the weekly
    hazard (keyed draw). Returns the number of births."""
    births = 0
    for r in range(len(youngest_age_weeks)):
        youngest_age_weeks[r] += 1
        age = youngest_age_weeks[r]
        for t in range(N_TYPES):
            if need_ends_at[t] >= 0 and age >= need_ends_at[t]:
                status[r, t] = NONE
                excluded_service[r, t] = NO_SERVICE
        if age == 0:
            births += 1
            n_children[r] += 1
        if age >= min_birth_spacing_weeks:
            if uniform_from(conception_prefix, key[r], NO_SERVICE) < conception_hazard:
                conceived[r] = True
    return births
