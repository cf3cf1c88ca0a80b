"""Families: the per-model column store, its initial draw, and the life course.

One row per family. A row is a dwelling *slot*: when the youngest child leaves the 0-12
range the household moves on and a new family with a first pregnancy takes the slot
(a new *generation*, drawn afresh), so the number of families is conserved. Every draw is
keyed by the family key = slot * 4096 + generation (see rng.py), never by the row.
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields

import numpy as np

from sim.core import rng
from sim.core.codes import (
    DAYS_PER_WEEK,
    INCOME_SCALE,
    MODE_CAR,
    MODE_TRANSIT,
    N_TYPES,
    NEVER,
    NO_HUB,
    NO_SERVICE,
    SERVICE_TYPES,
    U3_WEEKS,
)
from sim.rules.ties import TIE_OUTCOMES, TIE_OVER_LIMIT, add_ties
from sim.scenario.schema import PopulationSpec, Scenario, cents
from sim.world.city import City
from sim.world.planning import stationary_age_distribution

# A family key is slot * 4096 + generation: 4,096 generations a dwelling slot. A generation
# lasts at least gestation + youngest_child_max_age_weeks (about 13 years at the defaults),
# so the counter runs out only after tens of thousands of simulated years.
GENERATION_BITS = 12
BUILD_THREADS_VARIABLE = "FAMSIM_BUILD_THREADS"
# threads of the world build unless FAMSIM_BUILD_THREADS says otherwise (README: 1 makes the
# build single-threaded, with the same world)
DEFAULT_BUILD_THREADS = 2

# Implementation limits of the draw, not behaviour:
#
# the median of trust stays inside (0, 1), where its logit is finite, whatever the gaps; at
# the defaults (0.65 - 0.10 - 0.10 = 0.45 at the lowest) the clip never binds
TRUST_MEDIAN_RANGE = (0.02, 0.98)
# a share of income in whole basis points: at least one (a tiny share does not round to a
# threshold of nothing), at most 1,000 times household income (no draw at the defaults,
# 0.15 x exp(0.4 z), comes near it)
BASIS_POINTS = 10_000
COST_SHARE_BP_RANGE = (1, 10_000_000)
# a tolerance above 32,000 minutes (three weeks) reaches every service of any city the same
# as 32,000 does; the cap keeps the candidate lists' int16 minutes valid
MAX_TRAVEL_MINUTES_RANGE = (1, 32_000)
# income cut points of the quintiles: the 20th, 40th, 60th and 80th percentiles
QUINTILE_SHARES = (0.2, 0.4, 0.6, 0.8)


@dataclass
class FamilyTable:
    """The column store. Scalars per family are 1-D arrays; per-type state is [F, T]."""

    slot: np.ndarray  # int64, stable dwelling id
    generation: np.ndarray  # int64
    x: np.ndarray  # int32
    y: np.ndarray  # int32
    neighbourhood: np.ndarray  # int32
    deprivation: np.ndarray  # float64, observable score of the family's cell
    deprivation_rank: (
        np.ndarray
    )  # float64 in [0, 1): share of the city's families in less deprived cells
    language: np.ndarray  # int16 index into city.languages; 0 is never assumed local
    is_local_language: np.ndarray  # bool
    proficiency: np.ndarray  # float64 in [0, 1], comprehension of the local language
    income_q: np.ndarray  # int64, equivalised income in cents/year x INCOME_SCALE
    low_work_intensity: np.ndarray  # bool
    employed: np.ndarray  # bool: parent(s) in work or training
    is_arope: np.ndarray  # bool, fixed for the generation
    income_quintile: np.ndarray  # int8 1..5 by the cut points fixed at initialisation
    youngest_age_weeks: np.ndarray  # int32; negative while pregnant
    n_children: np.ndarray  # int16
    wants_formal_care: np.ndarray  # bool
    care_start_age_weeks: np.ndarray  # int32, end of leave / earliest use
    care_days: np.ndarray  # int8 1..DAYS_PER_WEEK: childcare days a week wanted
    private_health: (
        np.ndarray
    )  # bool: the youngest's preventive care is private (no need of the public service)
    parenting_need: np.ndarray  # bool
    admin_need: np.ndarray  # bool: prone to administrative problems (the help desk's need)
    # week from which the family's current administrative problem is open (NEVER: open since
    # the family came); a help-desk episode that ends closes it until a next one (Engine.needs)
    admin_problem_week: np.ndarray  # int32
    mode: np.ndarray  # int8 walk / transit / car
    max_travel_minutes: np.ndarray  # int32
    atypical_hours: np.ndarray  # bool
    hours_severity: np.ndarray  # float64 in [0, 1]
    trust: np.ndarray  # float64 in [0, 1]
    stigma_sensitivity: np.ndarray  # float64 in [0, 1]
    paperwork: np.ndarray  # float64 in [0, 1]
    cost_share_bp: np.ndarray  # int64, max share of income for a service, basis points
    language_tolerance: np.ndarray  # float64
    stigma_tolerance: np.ndarray  # float64
    trust_tolerance: np.ndarray  # float64: acceptable distrust, required trust x (1 - trust)
    admin_tolerance: np.ndarray  # float64
    hours_tolerance: np.ndarray  # float64
    fit_threshold: np.ndarray  # float64
    perceived_fit: np.ndarray  # float64 [F, T]
    aware: np.ndarray  # bool [F, T]
    status: np.ndarray  # int8 [F, T]
    service: np.ndarray  # int32 [F, T]: service enrolled at / waitlisted for / last left
    status_week: np.ndarray  # int32 [F, T]: week the status was entered
    applied_week: np.ndarray  # int32 [F, T]
    excluded_service: np.ndarray  # int32 [F, T]: not to be chosen again this spell
    registered: (
        np.ndarray
    )  # int32 [F, T, K]: the centres listed with the desk, nearest first (valid while waitlisted)
    broker_contacted: np.ndarray  # bool
    staff_contacted: np.ndarray  # bool: ever visited by outreach or a broker
    coordinated: np.ndarray  # bool: assessed by a hub coordinator
    form_help: np.ndarray  # bool: an outreach visit will walk it through its next application
    visited_week: np.ndarray  # int32: week of its last outreach visit (NEVER: none)
    hub_file: np.ndarray  # int32: the hub it registered at, one file for all it offers (NO_HUB)
    # social ties (sim.rules.ties): row r's ties are ties[r, :tie_count[r]] (table rows),
    # undirected; the width is the limit on a family's ties (max_tie_degree)
    ties: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int32))
    tie_count: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    @property
    def size(self) -> int:
        return len(self.slot)

    @property
    def key(self) -> np.ndarray:
        return (self.slot << GENERATION_BITS) | self.generation

    def column_names(self) -> list[str]:
        return [f.name for f in fields(self) if f.name not in _TIE_FIELDS]

    def tie_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Every tie as (row, neighbour), in row order and within a row in stored order."""
        owner = np.repeat(np.arange(self.size), self.tie_count)
        held = np.arange(self.ties.shape[1])[None, :] < self.tie_count[:, None]
        return owner, self.ties[held].astype(np.int64)

    def take(self, rows: np.ndarray) -> FamilyTable:
        """A new table with the given rows in the given order; ties are remapped and ties
        to dropped rows removed (used to permute storage or delete a family in tests)."""
        rows = np.asarray(rows, dtype=np.int64)
        columns = {name: getattr(self, name)[rows].copy() for name in self.column_names()}
        new_index = np.full(self.size, -1, dtype=np.int64)
        new_index[rows] = np.arange(len(rows))
        ties, tie_count = _kept_ties(self.ties[rows], self.tie_count[rows], new_index)
        return FamilyTable(**columns, ties=ties, tie_count=tie_count)


_TIE_FIELDS = ("ties", "tie_count")


def _kept_ties(
    ties: np.ndarray, tie_count: np.ndarray, new_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Ties with every neighbour renamed by new_index, those mapped to -1 dropped, each row's
    remaining ties moved to its front in their order."""
    width = ties.shape[1]
    held = np.arange(width)[None, :] < tie_count[:, None]
    mapped = np.where(held, new_index[np.where(held, ties, 0)], -1)
    keep = mapped >= 0
    # a stable sort of each row on 'dropped' moves the kept entries to the front in order
    front = np.argsort(~keep, axis=1, kind="stable")
    out = np.take_along_axis(mapped, front, axis=1)
    count = keep.sum(axis=1).astype(np.int32)
    out[np.arange(width)[None, :] >= count[:, None]] = 0
    return out.astype(np.int32), count


# ---------------------------------------------------------------------------------------
# drawing families


# the keyed streams of a generation's traits (week 0, by family key)
_GENERATION_STREAMS = (
    "income",
    "low_work_intensity",
    "employed",
    "proficiency",
    "paperwork",
    "trust",
    "stigma_sensitivity",
    "parenting_need",
    "admin_need",
    "atypical_hours",
    "hours_severity",
    "cost_threshold",
    *(f"fit_{t}" for t in SERVICE_TYPES),
    *(f"initial_awareness_{t}" for t in SERVICE_TYPES),
    "language_tol",
    "stigma_tol",
    "trust_tol",
    "admin_tol",
    "hours_tol",
    "fit_threshold",
)


def draw_generation(
    scenario: Scenario,
    seed: int,
    keys: np.ndarray,
    log_income_shift: np.ndarray,
    deprivation: np.ndarray,
    is_local: np.ndarray,
    youngest_age_weeks: np.ndarray,
) -> dict[str, np.ndarray]:
    """Draw a family generation's traits. Pure: same keys, same inputs, same families.

    Sources: income lognormal around the Belgian median with the 60 % poverty line (EVIDENCE
    P4); AROPE = below the line or low work intensity (EU-SILC definition, P2); needs follow
    circumstances, not vulnerability (DESIGN §2); trait medians and spreads are assumptions
    to calibrate or sweep (EVIDENCE 'No evidence found').
    """
    pop = scenario.population
    u = rng.uniforms(seed, _GENERATION_STREAMS, 0, keys)
    income_q, below_line = _income(pop, u, log_income_shift)
    low_work_intensity, is_arope, employed = _work(pop, u, deprivation, below_line)
    bounded = _bounded_traits(pop, u, is_arope, is_local)
    proficiency = np.where(is_local, 1.0, bounded["proficiency"])
    paperwork = bounded["paperwork"] * (
        1.0 - pop.paperwork_gap_low_proficiency * (1.0 - proficiency)
    )
    parenting_need, admin_need = _needs(pop, u, paperwork, below_line)
    atypical_hours, hours_severity = _working_hours(pop, u, employed)
    perceived_fit, aware = _initial_view_of_services(pop, u, bounded, is_local, proficiency)
    columns = {
        "income_q": income_q,
        "low_work_intensity": low_work_intensity,
        "employed": employed,
        "is_arope": is_arope,
        "proficiency": proficiency,
        "paperwork": paperwork,
        "trust": bounded["trust"],
        "stigma_sensitivity": bounded["stigma_sensitivity"],
        "parenting_need": parenting_need,
        "admin_need": admin_need,
        "atypical_hours": atypical_hours,
        "hours_severity": hours_severity,
        "cost_share_bp": _cost_share_bp(pop, u),
        "language_tolerance": bounded["language_tol"],
        "stigma_tolerance": bounded["stigma_tol"],
        "trust_tolerance": bounded["trust_tol"],
        "admin_tolerance": bounded["admin_tol"],
        "hours_tolerance": bounded["hours_tol"],
        "fit_threshold": bounded["fit_threshold"],
        "perceived_fit": perceived_fit,
        "aware": aware,
        **_fresh_state(youngest_age_weeks, scenario.behaviour.registration_choices),
    }
    columns.update(birth_plan(scenario, seed, keys, 0, employed, is_arope))
    return columns


def _income(
    pop: PopulationSpec, u: dict[str, np.ndarray], log_income_shift: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Equivalised income (income_q units): lognormal around the median, shifted by the
    cell (EVIDENCE P4); and whether it is below the poverty line."""
    z_income = rng.normal_of(u["income"])
    log_ratio = log_income_shift + pop.income_log_sd * z_income
    ratio_q = np.round(np.exp(log_ratio) * INCOME_SCALE).astype(np.int64)
    median_cents = cents(pop.median_equiv_income_eur_year)
    income_q = median_cents * np.maximum(ratio_q, 1)
    below_line = income_q < cents(pop.poverty_line_eur_year) * INCOME_SCALE
    return income_q, below_line


def _work(
    pop: PopulationSpec, u: dict[str, np.ndarray], deprivation: np.ndarray, below_line: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Low work intensity (more likely in deprived cells and below the line), AROPE (below
    the line or low work intensity, EU-SILC definition, P2) and employment."""
    lwi_p = pop.low_work_intensity_base + pop.low_work_intensity_deprivation_effect * deprivation
    lwi_p = np.where(
        below_line, np.minimum(1.0, pop.low_work_intensity_below_line_factor * lwi_p), lwi_p
    )
    low_work_intensity = u["low_work_intensity"] < lwi_p
    is_arope = below_line | low_work_intensity
    employed_p = np.where(is_arope, pop.employed_share_arope, pop.employed_share_non_arope)
    employed = (u["employed"] < employed_p) & ~low_work_intensity
    return low_work_intensity, is_arope, employed


def _bounded_traits(
    pop: PopulationSpec, u: dict[str, np.ndarray], is_arope: np.ndarray, is_local: np.ndarray
) -> dict[str, np.ndarray]:
    """Every trait in [0, 1]: logit-normal around its median with the common spread; trust
    is lower for AROPE and non-local families. The tolerances' medians are assumptions. The
    common level of four is calibrated: `tolerance_shift_logit` moves the language, trust
    and hours tolerances by the same amount on the logit scale (and the lowest acceptable fit
    by as much the other way), so their relative sizes stay as set. The stigma and paperwork
    tolerances are not moved: the non-take-up of means-tested offers (EVIDENCE N1, N3) is the
    evidence on them, held back for validation (docs/ODD.md §7.15)."""
    trust_median = (
        pop.trust_median - pop.trust_gap_arope * is_arope - pop.trust_gap_non_local * ~is_local
    )
    sd = pop.trait_logit_sd
    shift = pop.tolerance_shift_logit
    return rng.logit_normals_of(
        u,
        {
            "proficiency": (pop.proficiency_median_non_local, sd),
            "paperwork": (pop.paperwork_capacity_median, sd),
            "trust": (np.clip(trust_median, *TRUST_MEDIAN_RANGE), sd),
            "stigma_sensitivity": (pop.stigma_sensitivity_median, sd),
            **{f"fit_{t}": (pop.initial_fit_median, sd) for t in SERVICE_TYPES},
            "language_tol": (_shifted(pop.language_tolerance_median, shift), sd),
            "stigma_tol": (pop.stigma_tolerance_median, sd),
            "trust_tol": (_shifted(pop.trust_tolerance_median, shift), sd),
            "admin_tol": (pop.admin_tolerance_median, sd),
            "hours_tol": (_shifted(pop.hours_tolerance_median, shift), sd),
            "fit_threshold": (_shifted(pop.fit_threshold_median, -shift), sd),
        },
    )


def _shifted(median: float, shift: float) -> float:
    """A 0-1 median moved by `shift` on the logit scale (0 and 1 stay where they are)."""
    if shift == 0.0 or median <= 0.0 or median >= 1.0:
        return median
    return 1.0 / (1.0 + math.exp(-(math.log(median / (1.0 - median)) + shift)))


def _needs(
    pop: PopulationSpec, u: dict[str, np.ndarray], paperwork: np.ndarray, below_line: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Parenting support and administrative help needed: circumstances, not vulnerability
    (DESIGN §2); help is needed more below the line with little capacity for paperwork."""
    parenting_need = u["parenting_need"] < pop.parenting_need_share
    admin_p = (
        pop.admin_need_base + pop.admin_need_low_paperwork_effect * (1.0 - paperwork) * below_line
    )
    admin_need = u["admin_need"] < admin_p
    return parenting_need, admin_need


def _working_hours(
    pop: PopulationSpec, u: dict[str, np.ndarray], employed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Atypical working hours among the employed, and how severe the mismatch with usual
    opening hours is (uniform from hours_severity_min to 1; 0 for usual hours)."""
    atypical_hours = employed & (u["atypical_hours"] < pop.atypical_hours_share_employed)
    hours_severity = np.where(
        atypical_hours,
        pop.hours_severity_min + (1.0 - pop.hours_severity_min) * u["hours_severity"],
        0.0,
    )
    return atypical_hours, hours_severity


def _cost_share_bp(pop: PopulationSpec, u: dict[str, np.ndarray]) -> np.ndarray:
    """The largest share of household income a family will pay for a service, lognormal,
    in whole basis points."""
    cost_share = pop.cost_share_threshold_median * np.exp(
        pop.cost_share_threshold_log_sd * rng.normal_of(u["cost_threshold"])
    )
    return np.clip(np.round(cost_share * BASIS_POINTS), *COST_SHARE_BP_RANGE).astype(np.int64)


def _initial_view_of_services(
    pop: PopulationSpec,
    u: dict[str, np.ndarray],
    bounded: dict[str, np.ndarray],
    is_local: np.ndarray,
    proficiency: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Perceived fit of each type before any experience, and which types the family already
    knows of (less often without the local language); a type initial_awareness does not
    list is unknown."""
    perceived_fit = np.stack([bounded[f"fit_{t}"] for t in SERVICE_TYPES], axis=1)
    aware = np.stack(
        [
            u[f"initial_awareness_{t}"]
            < pop.initial_awareness.get(t, 0.0) * np.where(is_local, 1.0, proficiency)
            for t in SERVICE_TYPES
        ],
        axis=1,
    )
    return perceived_fit, aware


def _fresh_state(youngest_age_weeks: np.ndarray, choices: int) -> dict[str, np.ndarray]:
    """A new generation's state: its youngest child (a child once born), no contact with
    staff, no status at any service, no registration (`choices` centres a registration
    may list)."""
    n = len(youngest_age_weeks)
    return {
        "youngest_age_weeks": youngest_age_weeks.astype(np.int32),
        "n_children": np.where(youngest_age_weeks < 0, 0, 1).astype(np.int16),
        "broker_contacted": np.zeros(n, dtype=bool),
        "staff_contacted": np.zeros(n, dtype=bool),
        "coordinated": np.zeros(n, dtype=bool),
        "form_help": np.zeros(n, dtype=bool),
        "visited_week": np.full(n, NEVER, dtype=np.int32),
        "hub_file": np.full(n, NO_HUB, dtype=np.int32),
        "admin_problem_week": np.full(n, NEVER, dtype=np.int32),
        "status": np.zeros((n, N_TYPES), dtype=np.int8),
        "service": np.full((n, N_TYPES), NO_SERVICE, dtype=np.int32),
        "status_week": np.full((n, N_TYPES), NEVER, dtype=np.int32),
        "applied_week": np.full((n, N_TYPES), NEVER, dtype=np.int32),
        "excluded_service": np.full((n, N_TYPES), NO_SERVICE, dtype=np.int32),
        "registered": np.full((n, N_TYPES, choices), NO_SERVICE, dtype=np.int32),
    }


def draw_travel(
    scenario: Scenario, seed: int, slot_keys: np.ndarray, income_q: np.ndarray
) -> dict[str, np.ndarray]:
    """Travel mode and maximum acceptable travel time, drawn once per dwelling slot: candidate
    sets are built once from them (DESIGN §4), so a family taking over a slot keeps them.
    Car ownership rises with the first family's income (EVIDENCE T3); acceptable travel time
    has no source (EVIDENCE 'No evidence found': calibrate or sweep)."""
    pop = scenario.population
    median_cents = cents(pop.median_equiv_income_eur_year)
    ratio = income_q / (median_cents * INCOME_SCALE)
    income_rank = np.clip(
        (np.log(ratio) + pop.car_share_log_income_half_range)
        / (2.0 * pop.car_share_log_income_half_range),
        0.0,
        1.0,
    )
    car_p = (
        pop.car_share_low_income
        + (pop.car_share_high_income - pop.car_share_low_income) * income_rank
    )
    has_car = rng.uniform(seed, "car", 0, slot_keys) < car_p
    max_minutes = pop.max_travel_minutes_median * np.exp(
        pop.max_travel_minutes_log_sd * rng.normal(seed, "max_travel", 0, slot_keys)
    )
    return {
        "mode": np.where(has_car, MODE_CAR, MODE_TRANSIT).astype(np.int8),
        "max_travel_minutes": np.clip(np.round(max_minutes), *MAX_TRAVEL_MINUTES_RANGE).astype(
            np.int32
        ),
    }


def birth_plan(
    scenario: Scenario,
    seed: int,
    keys: np.ndarray,
    week: int | np.ndarray,
    employed: np.ndarray,
    is_arope: np.ndarray,
):
    """Plans made for each pregnancy: formal care wanted, when leave ends, how many days a
    week of care, and whether the child's preventive care is private.

    Leave: 15 weeks of maternity leave and up to 4 months of parental leave (EVIDENCE C24),
    spread uniformly between leave_weeks_min and leave_weeks_max (assumption). Preference
    for formal care depends on employment (need is not vulnerability; informal care is the
    alternative, EVIDENCE C12). Days a week: 1 + Binomial(4, p) with the mean of the
    parents' employment (`care_days_mean_*`, assumption; most children attend part time,
    EVIDENCE C1 vs C12-C13: about 1.5 children per place), drawn by inverting the binomial
    distribution at one keyed uniform. Private preventive care (a paediatrician instead of
    the consultation service, `private_health_share_*` by AROPE status): the child then has
    no need of the public health service (EVIDENCE H3: 90.9 % of Flemish children enrol at
    a consultation bureau, 98.1 % of disadvantaged non-Belgian families).
    """
    pop = scenario.population
    pref = np.where(
        employed, pop.formal_care_preference_employed, pop.formal_care_preference_not_employed
    )
    wants = rng.uniform(seed, "wants_formal_care", week, keys) < pref
    span = pop.leave_weeks_max - pop.leave_weeks_min + 1
    leave = pop.leave_weeks_min + np.floor(
        rng.uniform(seed, "leave_weeks", week, keys) * span
    ).astype(np.int32)
    start = np.maximum(leave, pop.childcare_entry_age_weeks).astype(np.int32)
    mean_days = np.where(employed, pop.care_days_mean_employed, pop.care_days_mean_not_employed)
    p = (mean_days - 1.0) / (DAYS_PER_WEEK - 1)
    u = rng.uniform(seed, "care_days", week, keys)
    trials = DAYS_PER_WEEK - 1
    extra = np.zeros(len(keys), dtype=np.int64)
    cdf = np.zeros(len(keys))
    for k in range(trials):  # extra days = the number of CDF values at or below u
        cdf = cdf + math.comb(trials, k) * p**k * (1.0 - p) ** (trials - k)
        extra += u >= cdf
    days = (1 + extra).astype(np.int8)
    private_p = np.where(
        is_arope, pop.private_health_share_arope, pop.private_health_share_non_arope
    )
    private = rng.uniform(seed, "private_health", week, keys) < private_p
    return {
        "wants_formal_care": wants,
        "care_start_age_weeks": start,
        "care_days": days,
        "private_health": private,
    }


def initial_families(
    scenario: Scenario, seed: int, city: City, with_ties: bool = True
) -> FamilyTable:
    """Place families in cells (slot ids in x-major cell order) and draw generation 0 (and
    their ties unless `with_ties` is False: a planning draw needs none)."""
    counts = city.families.ravel()
    cell_index = np.repeat(np.arange(counts.size), counts)
    x = (cell_index // city.height).astype(np.int32)
    y = (cell_index % city.height).astype(np.int32)
    n = len(cell_index)
    slot = np.arange(n, dtype=np.int64)
    generation = np.zeros(n, dtype=np.int64)
    keys = (slot << GENERATION_BITS) | generation

    # home language: a keyed categorical draw against the cell's language shares
    shares = city.language_share[:, x, y]  # [L, F]
    u = rng.uniform(seed, "language", 0, keys)
    language = np.minimum(
        (u[None, :] >= np.cumsum(shares, axis=0)).sum(axis=0), len(city.languages) - 1
    ).astype(np.int16)
    is_local = language == city.languages.index("local")

    # Ages drawn from the stationary distribution of the youngest-age process, so the
    # demography is steady from week 0 (the burn-in is for service stocks, not for births).
    ages, weights = stationary_age_distribution(scenario)
    cdf = np.cumsum(weights)
    u = rng.uniform(seed, "initial_age", 0, keys)
    age = ages[np.minimum(np.searchsorted(cdf, u * cdf[-1], side="right"), len(ages) - 1)].astype(
        np.int32
    )

    columns = draw_generation(
        scenario, seed, keys, city.log_income_shift[x, y], city.deprivation[x, y], is_local, age
    )
    columns.update(draw_travel(scenario, seed, keys, columns["income_q"]))
    columns["n_children"] = np.where(
        age < 0,
        0,
        1
        + (rng.uniform(seed, "older_siblings", 0, keys) < scenario.population.older_siblings_share),
    ).astype(np.int16)
    table = FamilyTable(
        slot=slot,
        generation=generation,
        x=x,
        y=y,
        neighbourhood=city.neighbourhood[x, y].astype(np.int32),
        deprivation=city.deprivation[x, y].astype(np.float64),
        deprivation_rank=deprivation_rank(city)[x, y],
        language=language,
        is_local_language=is_local,
        income_quintile=np.zeros(n, dtype=np.int8),
        **columns,
    )
    if with_ties:
        table.ties, table.tie_count, _ = build_ties(scenario, seed, table)
    return table


def deprivation_rank(city: City) -> np.ndarray:
    """Per cell [x, y]: the share of the city's families living in strictly less deprived
    cells. Targeting 'the most deprived 30 %' is then rank >= 0.7 whatever the score scale."""
    flat_dep = city.deprivation.ravel()
    weight = city.families.ravel().astype(np.float64)
    order = np.argsort(flat_dep, kind="stable")
    sorted_dep = flat_dep[order]
    below = np.cumsum(weight[order]) - weight[order]
    # cells with equal scores share the rank of the first of them
    first = np.searchsorted(sorted_dep, sorted_dep, side="left")
    rank_sorted = below[first] / max(weight.sum(), 1.0)
    rank = np.empty_like(rank_sorted)
    rank[order] = rank_sorted
    return rank.reshape(city.deprivation.shape)


def quintile_cut_points(table: FamilyTable) -> np.ndarray:
    """Income cut points (income_q units) of families with a child under 3, at initialisation."""
    u3 = (table.youngest_age_weeks >= 0) & (table.youngest_age_weeks < U3_WEEKS)
    values = np.sort(table.income_q[u3]) if u3.any() else np.sort(table.income_q)
    positions = (np.array(QUINTILE_SHARES) * len(values)).astype(np.int64)
    return values[np.minimum(positions, len(values) - 1)]


def assign_quintiles(income_q: np.ndarray, cut_points: np.ndarray) -> np.ndarray:
    return (np.searchsorted(cut_points, income_q, side="right") + 1).astype(np.int8)


# ---------------------------------------------------------------------------------------
# social ties
#
# Implementation limit, not behaviour: a family holds at most max_tie_degree ties, a fixed
# width for the mutable tie structure (sim.rules.ties). It is TIE_DEGREE_FACTOR times the
# ties a family draws itself (about 28 at the defaults, twice the mean of about 14 a family
# has once the others' draws are counted), and at least MIN_TIE_DEGREE so that families meet
# at sites even in a scenario that draws no ties. A tie that would exceed it is not formed
# and is counted (`ties_over_limit` in the build and in the weekly counters).
TIE_DEGREE_FACTOR = 4
MIN_TIE_DEGREE = 8


def max_tie_degree(pop: PopulationSpec) -> int:
    """The most ties a family can hold (see TIE_DEGREE_FACTOR)."""
    return max(TIE_DEGREE_FACTOR * (pop.ties_spatial + pop.ties_community), MIN_TIE_DEGREE)


def build_ties(
    scenario: Scenario, seed: int, table: FamilyTable
) -> tuple[np.ndarray, np.ndarray, int]:
    """Undirected ties: spatial neighbours within a radius (same language with probability
    `tie_homophily`, IAS focus groups: mothers meet mothers of their own community) plus
    same-language community ties anywhere in the city (Kortrijk's community advisers work
    through such networks). Every pick is a keyed uniform index into a canonical order of
    the candidates that does not depend on storage order. Returns the tie structure
    (`FamilyTable.ties`, `tie_count`) and the number of ties the limit kept from forming;
    the ties are added in (row, neighbour) order, rows being slots at the build."""
    pop = scenario.population
    n = table.size
    keys = table.key
    edges_a: list[np.ndarray] = []
    edges_b: list[np.ndarray] = []
    if pop.ties_spatial > 0 and n > 1:
        for a, b in _spatial_ties(pop, seed, table):
            edges_a.append(a)
            edges_b.append(b)
    if pop.ties_community > 0:
        index = TieIndex.of(table, pop.tie_radius_cells)
        for members in index.language_groups():
            if members.size < 2:
                continue
            for k in range(pop.ties_community):
                u = rng.uniform(seed, "tie_community", k, keys[members])
                picks = members[np.minimum((u * members.size).astype(np.int64), members.size - 1)]
                edges_a.append(members)
                edges_b.append(picks)
    ties = np.zeros((n, max_tie_degree(pop)), dtype=np.int32)
    tie_count = np.zeros(n, dtype=np.int32)
    if not edges_a:
        return ties, tie_count, 0
    a = np.concatenate(edges_a)
    b = np.concatenate(edges_b)
    keep = a != b
    a, b = a[keep], b[keep]
    # each undirected tie once, as (lower row, higher row), in that order
    pair = np.unique(np.minimum(a, b) * n + np.maximum(a, b))
    outcome = np.zeros(len(TIE_OUTCOMES), dtype=np.int64)
    no_users = np.zeros((0, 0), dtype=np.int64)
    add_ties(pair // n, pair % n, ties, tie_count, no_users.astype(bool), no_users, outcome)
    return ties, tie_count, int(outcome[TIE_OVER_LIMIT])


def redraw_ties(
    scenario: Scenario, seed: int, index: TieIndex, keys: np.ndarray, rows: np.ndarray, week: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ties new families draw when they take their slots in `week`: the rules of
    `build_ties` (spatial picks with homophily, community picks; a pick of oneself is no
    tie), keyed by the new family key and the week (tie k in the draw's service place), over
    the current population. A spatial pick indexes the neighbours in key order
    (`TieIndex.neighbour_picks_by_key`), an order that neither storage nor a reflection of
    the city changes. Returns (family, partner) rows in the order the ties are to be added:
    families by key, each its spatial ties k = 0, 1, ... then its community ties."""
    pop = scenario.population
    rows = np.asarray(rows, dtype=np.int64)
    rows = rows[np.argsort(keys[rows], kind="stable")]
    own = keys[rows]
    picks = np.full((rows.size, pop.ties_spatial + pop.ties_community), -1, dtype=np.int64)
    if pop.ties_spatial > 0 and index.size > 1:
        draws = [
            (
                rng.uniform(seed, "tie_homophily", week, own, k),
                rng.uniform(seed, "tie_spatial", week, own, k),
            )
            for k in range(pop.ties_spatial)
        ]
        chosen = index.neighbour_picks_by_key(rows, draws, pop.tie_homophily)
        for k, (ok, pick) in enumerate(chosen):
            picks[ok, k] = pick[ok]
    if pop.ties_community > 0:
        groups = index.language_groups()
        for lang in np.unique(index.lang[rows]):
            members = groups[lang]
            if members.size < 2:
                continue
            of = np.flatnonzero(index.lang[rows] == lang)
            for k in range(pop.ties_community):
                u = rng.uniform(seed, "tie_community", week, own[of], k)
                chosen = np.minimum((u * members.size).astype(np.int64), members.size - 1)
                picks[of, pop.ties_spatial + k] = members[chosen]
    family = np.repeat(rows, picks.shape[1])
    partner = picks.ravel()
    drawn = partner >= 0
    return family[drawn], partner[drawn]


@dataclass(frozen=True)
class TieIndex:
    """Where each family sits in the canonical orders the tie draws index into: the members
    of each cell by (language, key), and of each language group by key. Family keys sort as
    their slots do (the generation is in the low bits), and slots keep their cell and
    language, so an index built once holds for every later generation."""

    lang: np.ndarray  # int64 [F]
    cell: np.ndarray  # int64 [F]: x * height + y
    x: np.ndarray  # int32 [F]
    y: np.ndarray  # int32 [F]
    width: int
    height: int
    order: np.ndarray  # int64 [F]: rows by (cell, language, key)
    rank: np.ndarray  # int64 [F]: each row's place in `order`
    cell_start: np.ndarray  # int64 [cells]: first place of the cell in `order`
    lang_start: np.ndarray  # int64 [cells, L]: first place of a language within its cell
    occupancy: np.ndarray  # int32 [cells]
    by_lang: np.ndarray  # int32 [cells, L]
    by_language: np.ndarray  # int64 [F]: rows by (language, key)
    language_first: np.ndarray  # int64 [L + 1]: each language's first place in by_language
    key_rank: np.ndarray  # int64 [F]: each row's place in key order
    radius: int  # tie_radius_cells

    @property
    def size(self) -> int:
        return len(self.lang)

    @classmethod
    def of(cls, table: FamilyTable, radius: int) -> TieIndex:
        keys = table.key
        x = table.x.astype(np.int64)
        y = table.y.astype(np.int64)
        lang = table.language.astype(np.int64)
        width, height = int(x.max(initial=0)) + 1, int(y.max(initial=0)) + 1
        n_lang = int(lang.max(initial=0)) + 1
        cell = x * height + y
        n_cells = width * height
        # sorted by (cell, language, key): a cell's members, and its same-language members,
        # are contiguous and in key order
        order = np.lexsort((keys, lang, cell))
        occupancy = np.bincount(cell, minlength=n_cells)
        by_lang = np.bincount(cell * n_lang + lang, minlength=n_cells * n_lang).reshape(
            n_cells, n_lang
        )
        rank = np.empty(len(keys), dtype=np.int64)
        rank[order] = np.arange(len(keys))
        by_language = np.lexsort((keys, lang))
        language_first = np.zeros(n_lang + 1, dtype=np.int64)
        np.cumsum(np.bincount(lang, minlength=n_lang), out=language_first[1:])
        return cls(
            lang=lang,
            cell=cell,
            x=table.x.astype(np.int32),
            y=table.y.astype(np.int32),
            width=width,
            height=height,
            order=order,
            rank=rank,
            cell_start=np.cumsum(occupancy) - occupancy,
            lang_start=np.cumsum(by_lang, axis=1) - by_lang,
            occupancy=occupancy.astype(np.int32),
            by_lang=by_lang.astype(np.int32),
            by_language=by_language,
            language_first=language_first,
            key_rank=np.argsort(np.argsort(keys, kind="stable"), kind="stable"),
            radius=radius,
        )

    def language_groups(self) -> list[np.ndarray]:
        """Per language index, its families' rows in key order."""
        first = self.language_first
        return [self.by_language[first[i] : first[i + 1]] for i in range(len(first) - 1)]

    def neighbour_picks_by_key(
        self, rows: np.ndarray, draws: list[tuple[np.ndarray, np.ndarray]], homophily: float
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per draw k, (has a neighbour, the picked neighbour's row) for each of `rows`, the
        neighbours (as in `spatial_picks`) listed and put in key order: a same-language pick
        (draw k's first uniform below `homophily`, if there is any) indexes the
        same-language neighbours in key order, any other pick all neighbours in key order.
        Meant for the few new families of a week: it lists their neighbours."""
        dx, dy, _ = _offsets(self.radius)
        bx = self.x[rows, None] + dx[None, :]
        by = self.y[rows, None] + dy[None, :]
        inside = (bx >= 0) & (bx < self.width) & (by >= 0) & (by < self.height)
        bcell = np.where(inside, bx.astype(np.int64) * self.height + by, 0)
        counts = np.where(inside, self.occupancy[bcell], 0).astype(np.int64).ravel()
        owner = np.repeat(np.repeat(np.arange(len(rows)), len(dx)), counts)
        first = self.cell_start[bcell.ravel()]
        offsets = np.repeat(first - np.cumsum(counts) + counts, counts)
        member = self.order[offsets + np.arange(int(counts.sum()))]
        other = member != rows[owner]
        owner, member = owner[other], member[other]
        by_key = np.lexsort((self.key_rank[member], owner))
        owner, member = owner[by_key], member[by_key]
        same = self.lang[member] == self.lang[rows[owner]]
        pools = {}
        for use_same in (False, True):
            o = owner[same] if use_same else owner
            m = member[same] if use_same else member
            size = np.bincount(o, minlength=len(rows))
            pools[use_same] = (m, np.cumsum(size) - size, size)
        out = []
        for u_homophily, u_pick in draws:
            use_same = (u_homophily < homophily) & (pools[True][2] > 0)
            size = np.where(use_same, pools[True][2], pools[False][2])
            j = np.minimum(np.floor(u_pick * size).astype(np.int64), np.maximum(size - 1, 0))
            pick = np.full(len(rows), -1, dtype=np.int64)
            for flag in (False, True):
                i = np.flatnonzero((use_same == flag) & (size > 0))
                m, start, _ = pools[flag]
                pick[i] = m[start[i] + j[i]]
            out.append((size > 0, pick))
        return out

    def spatial_picks(
        self, rows: np.ndarray, draws: list[tuple[np.ndarray, np.ndarray]], homophily: float
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per draw k, (has a neighbour, the picked neighbour's row) for each of `rows`.

        A family's neighbours are the other families in cells whose offset (dx, dy) from its
        own satisfies dx^2 + dy^2 <= tie_radius_cells^2 (exact in integers). Their canonical
        order is by offset (dx, then dy), then within a cell by language and key; a
        same-language pick (draw k's first uniform below `homophily`, if there is any) uses
        the same-language members in that order; the second uniform is the index into the
        pool. The j-th neighbour is found from cumulative cell counts, so no list of
        neighbours is ever built."""
        n = self.size
        width, height = self.width, self.height
        dx, dy, own = _offsets(self.radius)
        bx = self.x[rows, None] + dx[None, :]
        by = self.y[rows, None] + dy[None, :]
        inside = (bx >= 0) & (bx < width) & (by >= 0) & (by < height)
        bcell = np.where(inside, bx * np.int32(height) + by, 0)
        la = self.lang[rows]
        count = {
            False: np.where(inside, self.occupancy[bcell], 0),
            True: np.where(inside, self.by_lang[bcell, la[:, None]], 0),
        }
        for c in count.values():
            c[:, own] -= 1  # not oneself
        cum = {same: np.cumsum(c, axis=1, dtype=np.int32) for same, c in count.items()}
        total_all, total_same = cum[False][:, -1], cum[True][:, -1]
        own_cell = self.cell[rows]
        self_all = self.rank[rows] - self.cell_start[own_cell]
        self_same = self_all - self.lang_start[own_cell, la]
        out = []
        for u_homophily, u_pick in draws:
            use_same = (u_homophily < homophily) & (total_same > 0)
            pool = np.where(use_same, total_same, total_all)
            j = np.floor(u_pick * pool).astype(np.int64)
            j = np.minimum(j, np.maximum(pool - 1, 0))
            o = np.zeros(len(rows), dtype=np.int64)
            before = np.zeros(len(rows), dtype=np.int64)
            for same in (False, True):
                i = np.flatnonzero(use_same == same)
                oi = np.minimum((cum[same][i] <= j[i, None]).sum(axis=1), len(dx) - 1)
                o[i] = oi
                before[i] = cum[same][i, oi] - count[same][i, oi]
            pos = j - before
            # in one's own cell the members after oneself move up by one
            pos += (o == own) & (pos >= np.where(use_same, self_same, self_all))
            target = bcell[np.arange(len(rows)), o]
            first = self.cell_start[target] + np.where(use_same, self.lang_start[target, la], 0)
            pick = self.order[np.minimum(first + pos, n - 1)]
            out.append((pool > 0, pick))
        return out


@functools.cache
def _offsets(radius: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The cell offsets within the radius (dx, then dy) as int32, and where (0, 0) is."""
    offsets = np.array(
        [
            (dx, dy)
            for dx in range(-radius, radius + 1)
            for dy in range(-radius, radius + 1)
            if dx * dx + dy * dy <= radius * radius
        ]
    )
    own = int(np.flatnonzero((offsets[:, 0] == 0) & (offsets[:, 1] == 0))[0])
    return offsets[:, 0].astype(np.int32), offsets[:, 1].astype(np.int32), own


# families handled at once when drawing spatial ties (bounds memory to a few hundred MB)
_TIE_BLOCK = 50_000


def _spatial_ties(pop: PopulationSpec, seed: int, table: FamilyTable):
    """Spatial ties of the build, block by block: yields (rows, picked neighbours) per
    block and tie k (`TieIndex.spatial_picks`; draws keyed by week k and the family key)."""
    n = table.size
    keys = table.key
    index = TieIndex.of(table, pop.tie_radius_cells)

    def block(start: int) -> list[tuple[np.ndarray, np.ndarray]]:
        rows = np.arange(start, min(n, start + _TIE_BLOCK))
        draws = [
            (
                rng.uniform(seed, "tie_homophily", k, keys[rows]),
                rng.uniform(seed, "tie_spatial", k, keys[rows]),
            )
            for k in range(pop.ties_spatial)
        ]
        return [
            (rows[ok], pick[ok]) for ok, pick in index.spatial_picks(rows, draws, pop.tie_homophily)
        ]

    # blocks are independent; numpy releases the GIL in the array work
    with ThreadPoolExecutor(max_workers=build_threads()) as pool_of_threads:
        for pairs in pool_of_threads.map(block, range(0, n, _TIE_BLOCK)):
            yield from pairs


def build_threads() -> int:
    """Threads for the world build's independent blocks (social ties, candidate lists; numpy
    releases the GIL in them): DEFAULT_BUILD_THREADS, or the environment's
    FAMSIM_BUILD_THREADS. Results do not depend on it."""
    value = os.environ.get(BUILD_THREADS_VARIABLE, "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_BUILD_THREADS
