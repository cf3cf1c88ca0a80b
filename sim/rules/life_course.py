"""Life course: children age a week, needs tied to a child's age end, families conceive
with a weekly hazard (keyed draw) and births are counted (DESIGN §2 "life course").
"""

from __future__ import annotations

from sim.core.codes import N_TYPES, NO_SERVICE, NONE
from sim.core.compiled import kernel
from sim.core.rng import uniform_from


@kernel
def age_one_week(fam, life, streams, conceived):
    """Every youngest child ages a week; an age-bound need that ends closes its status and
    clears its excluded service (`life.need_ends_at[t]` < 0: the need does not end with age);
    a birth counts a child; a family whose youngest is old enough conceives with the weekly
    hazard (keyed stream `conception`, from `streams`), marked in `conceived`. `life` is the
    `LifeCourse`. Returns the number of births."""
    age_weeks, status, excluded = fam.youngest_age_weeks, fam.status, fam.excluded_service
    need_ends_at = life.need_ends_at
    births = 0
    for r in range(len(age_weeks)):
        age_weeks[r] += 1
        age = age_weeks[r]
        for t in range(N_TYPES):
            if need_ends_at[t] >= 0 and age >= need_ends_at[t]:
                status[r, t] = NONE
                excluded[r, t] = NO_SERVICE
        if age == 0:
            births += 1
            fam.n_children[r] += 1
        if age >= life.min_birth_spacing_weeks:
            if uniform_from(streams.conception, fam.key[r], NO_SERVICE) < life.conception_hazard:
                conceived[r] = True
    return births
