"""Scenario files: TOML, validated against a pydantic schema, with `extends` inheritance.

Every number a run uses lives here, with its unit in the field name or description.
Money is always in euro in the file (`*_eur_*` keys) and converted to integer cents by the
model, so multiplying every amount of money by a constant changes no decision.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import json
import math
import os
import re
import stat
import time
import tomllib
import types
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from sim.core.codes import SERVICE_TYPES
from sim.core.errors import ScenarioError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")  # \Z: no trailing newline
# Language names become column names of a planner's cells file (lang_<name>).
LANGUAGE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}\Z")
# Tables that an extending file replaces whole instead of merging key by key: a language
# mix is one distribution, so a child that lists its own languages drops the parent's.
REPLACED_WHOLE: frozenset[tuple[str, ...]] = frozenset({("city", "languages")})

Share = Annotated[float, Field(ge=0.0, le=1.0)]
# Every number has a range a real city can have. The bounds are plausibility bounds, not
# evidence: wide enough for any municipality (and for tests that rescale money tenfold or
# ask for unlimited capacity), narrow enough that no value can overflow an integer, make a
# travel time vanish or build a world no machine can hold (issue 10).
#
# A weekly amount for one place, fee, site or worker: the dearest real one is a full-time
# worker at about 2,000 EUR a week, so 100,000 leaves room for any city and for rescaling.
EurWeekEach = Annotated[float, Field(ge=0.0, le=100_000.0)]
# An income limit of a fee band or a means test; the top band's limit stands for "no limit"
# (base.toml uses 10 million), so the ceiling is far above any real income.
EurYearLimit = Annotated[float, Field(ge=0.0, le=1e9)]
# A typical income (median, poverty line): positive, since the income model takes its log.
EurYearIncome = Annotated[float, Field(ge=100.0, le=10_000_000.0)]
# Places per 100 planned families: real provision is at most about 100 (health reaches
# nearly every family); up to 10,000 (100 places a family) lets a test make capacity
# unlimited. The memory estimate (sim/world/city.py) refuses a world with too many sites.
PlacesPer100 = Annotated[float, Field(ge=0.0, le=10_000.0)]
# Minutes per km: 0.5 is 120 km/h (a train or motorway), 60 is 1 km/h (a toddler's pace);
# zero or near-zero speeds up reach without limit and the travel model breaks down.
MinutesPerKm = Annotated[float, Field(ge=0.5, le=60.0)]
# Fixed parts of a trip (walking to a stop, waiting, parking): at most a few hours.
TripMinutes = Annotated[float, Field(ge=0.0, le=240.0)]
# Staff in full-time equivalents (outreach workers, brokers per language). They grow with
# --families up to city.families' ceiling of 50 million families: 100,000 is one per 500
# families there, far more than any city employs.
StaffFte = Annotated[float, Field(ge=0.0, le=100_000.0)]
# Contacts a week for one worker: 200 is forty a working day.
ContactsPerWeek = Annotated[float, Field(ge=0.0, le=200.0)]


class FieldProblem(ValueError):
    """A validator's complaint about one key, given relative to the model being checked, so
    the error names the key path a person has to fix (not just the enclosing table)."""

    def __init__(self, key: str | tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.key: tuple[str, ...] = (key,) if isinstance(key, str) else tuple(key)
        self.message = message


def _quoted(value: Any) -> str:
    """A value as it would be written in the file, on one line."""
    return json.dumps(value, default=str, ensure_ascii=False)


def suggest(word: Any, options: list[str] | tuple[str, ...]) -> str:
    guess = difflib.get_close_matches(str(word), list(options), n=1)
    return f"did you mean {guess[0]!r}? " if guess else ""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, allow_inf_nan=False)


class RunSpec(Strict):
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 1
    replications: Annotated[int, Field(ge=1, le=10_000)] = 5
    weeks: Annotated[int, Field(ge=1, le=5_200)] = 52
    burn_in_weeks: Annotated[int, Field(ge=0, le=5_200)] = 156


class CitySpec(Strict):
    source: Literal["synthetic", "file"] = "synthetic"
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 20_251
    width: Annotated[int, Field(ge=4, le=4_000)] = 80
    height: Annotated[int, Field(ge=4, le=4_000)] = 80
    # a cell below 10 m is smaller than a house; above 5 km a city is a handful of cells
    cell_size_m: Annotated[float, Field(ge=10.0, le=5_000.0)] = 125.0
    # source = "file": must equal the family total of cells_file (the file decides the size)
    families: Annotated[int, Field(ge=10, le=50_000_000)] = 12_000
    neighbourhoods: Annotated[int, Field(ge=1, le=10_000)] = 16
    populated_radius_share: Share = 0.85
    centre_density_ratio: Annotated[float, Field(ge=1.0, le=100.0)] = 4.0
    deprivation_centre: Share = 0.55
    deprivation_periphery: Share = 0.35
    segregation: Share = 0.6
    languages: dict[str, Share] = Field(
        default_factory=lambda: {"local": 0.69, "lang_a": 0.14, "lang_b": 0.10, "lang_c": 0.07}
    )
    language_deprivation_link: Share = 0.6
    transit_access_centre: Share = 0.95
    transit_access_periphery: Share = 0.25
    cells_file: str | None = None
    services_file: str | None = None

    @field_validator("languages")
    @classmethod
    def _language_names(cls, value: dict[str, float]) -> dict[str, float]:
        for name in value:
            if not LANGUAGE_PATTERN.match(name):
                raise FieldProblem(
                    name,
                    f"language name {_quoted(name)} is not allowed; allowed: a letter, then "
                    "letters, digits or '_' (at most 32 characters)",
                )
        if "local" not in value:
            raise FieldProblem(
                "local",
                "required key is missing: languages must include 'local' (the "
                f"municipality's language) next to {sorted(value)}",
            )
        return value

    @field_validator("cells_file", "services_file")
    @classmethod
    def _file_name(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or "\x00" in value):
            raise ValueError("not a file path; allowed: a non-empty path")
        return value

    @model_validator(mode="after")
    def _check(self) -> CitySpec:
        total = sum(self.languages.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise FieldProblem(
                "languages",
                f"language shares must sum to 1 (they sum to {total:.6g}); "
                f"shares given: {_quoted(self.languages)}",
            )
        if self.source == "file" and not self.cells_file:
            raise FieldProblem(
                "cells_file",
                "source = 'file' needs cells_file (a CSV or Parquet file of cells, relative "
                "to the scenario file) and usually services_file",
            )
        return self


class PopulationSpec(Strict):
    median_equiv_income_eur_year: EurYearIncome = 28_997.0
    income_log_sd: Annotated[float, Field(gt=0.0, le=3.0)] = 0.5
    income_deprivation_effect: Annotated[float, Field(ge=0.0, le=5.0)] = 0.7
    poverty_line_eur_year: EurYearIncome = 17_398.0
    low_work_intensity_base: Share = 0.04
    low_work_intensity_deprivation_effect: Share = 0.12
    # assumption (to be calibrated/swept): the chance of low work intensity is this many
    # times larger below the poverty line (at most 1); P2 gives only the population shares
    low_work_intensity_below_line_factor: Annotated[float, Field(ge=1.0, le=20.0)] = 3.0
    employed_share_non_arope: Share = 0.88
    employed_share_arope: Share = 0.40
    formal_care_preference_employed: Share = 0.95
    # calibrated on Flanders (validation/flanders: C12-C13, C16, C20)
    formal_care_preference_not_employed: Share = 0.4582
    # days a week of childcare wanted (1-5), mean by employment. Derived: 44 places per 100
    # children (C1) used by 64.8 % of them (C13) is 5 x 44 / 64.8 = 3.4 days a week on
    # average; the split by employment is an assumption (C15: Belgium 32.2 % of under-3s in
    # care 30 h a week or more); swept
    care_days_mean_employed: Annotated[float, Field(ge=1.0, le=5.0)] = 3.318  # calibrated
    care_days_mean_not_employed: Annotated[float, Field(ge=1.0, le=5.0)] = 2.6
    leave_weeks_min: Annotated[int, Field(ge=0, le=156)] = 14
    leave_weeks_max: Annotated[int, Field(ge=0, le=156)] = 40
    gestation_weeks: Annotated[int, Field(ge=30, le=44)] = 40
    pregnancy_known_weeks: Annotated[int, Field(ge=0, le=40)] = 28
    childcare_entry_age_weeks: Annotated[int, Field(ge=0, le=156)] = 14
    childcare_exit_age_weeks: Annotated[int, Field(ge=26, le=312)] = 156
    health_need_until_age_weeks: Annotated[int, Field(ge=1, le=312)] = 130
    # preventive child health outside the public consultation service (a private
    # paediatrician) chosen with each pregnancy's plan, by AROPE status. H3: 90.9 % of
    # Flemish children enrol at a consultation bureau but 98.1 % of disadvantaged non-Belgian
    # families do, so the better-off have another provider. AROPE families: 0 (assumption,
    # H2-H3: up to 98 % of the target group reached); others: calibrated on H3 (Flanders)
    private_health_share_arope: Share = 0.0
    private_health_share_non_arope: Share = 0.1028
    youngest_child_max_age_weeks: Annotated[int, Field(ge=156, le=936)] = 624
    next_birth_hazard_week: Annotated[float, Field(ge=0.0, le=0.2)] = 0.0013
    min_birth_spacing_weeks: Annotated[int, Field(ge=52, le=520)] = 156
    parenting_need_share: Share = 0.25
    parenting_need_until_age_weeks: Annotated[int, Field(ge=1, le=936)] = 312
    admin_need_base: Share = 0.08
    admin_need_low_paperwork_effect: Share = 0.35
    # weeks from the end of a help-desk episode to the family's next administrative problem,
    # on average (uniform from 1 to twice this less 1; assumption: no evidence; swept). A
    # family with an administrative need starts with a problem open
    admin_problem_gap_weeks: Annotated[int, Field(ge=1, le=520)] = 26
    car_share_high_income: Share = 0.75
    car_share_low_income: Share = 0.30
    # assumption (to be calibrated/swept): car ownership rises linearly with log income from
    # car_share_low_income at exp(-h) times the median to car_share_high_income at exp(h)
    # times it, h this half-range in log units (T3 gives a share of trips, not its gradient)
    car_share_log_income_half_range: Annotated[float, Field(ge=0.1, le=5.0)] = 1.0
    max_travel_minutes_median: Annotated[float, Field(gt=0.0, le=600.0)] = 20.0
    # a spread of 1 already puts a tenth of families below a quarter of the median time and
    # a tenth above 3.6 times it; wider tails exceed the engine's int16 travel minutes
    max_travel_minutes_log_sd: Annotated[float, Field(ge=0.0, le=1.0)] = 0.35
    atypical_hours_share_employed: Share = 0.20
    # assumption (to be calibrated/swept): an atypical schedule's mismatch with usual opening
    # hours is uniform from this minimum to 1
    hours_severity_min: Share = 0.3
    trust_median: Share = 0.65
    trust_gap_arope: Share = 0.10
    trust_gap_non_local: Share = 0.10
    stigma_sensitivity_median: Share = 0.5
    paperwork_capacity_median: Share = 0.75
    paperwork_gap_low_proficiency: Share = 0.25
    proficiency_median_non_local: Share = 0.45
    trait_logit_sd: Annotated[float, Field(ge=0.0, le=5.0)] = 1.0
    household_equivalence_factor: Annotated[float, Field(ge=1.0, le=5.0)] = 1.8
    cost_share_threshold_median: Annotated[float, Field(gt=0.0, le=1.0)] = 0.15
    cost_share_threshold_log_sd: Annotated[float, Field(ge=0.0, le=3.0)] = 0.4
    language_tolerance_median: Share = 0.45
    stigma_tolerance_median: Share = 0.25
    # acceptable distrust, trust_required x (1 - trust): distrust as a barrier of its own
    # (EU WG ECEC barrier list); no evidence on its distribution (assumption; swept)
    trust_tolerance_median: Share = 0.25
    admin_tolerance_median: Share = 0.30
    hours_tolerance_median: Share = 0.40
    fit_threshold_median: Share = 0.35
    # the common level of the language, trust and hours tolerances and of the fit threshold
    # (the other way), as a shift on the logit scale: their medians are assumptions, their
    # relative sizes set, their level calibrated (ODD §7.15). Stigma and paperwork tolerances
    # are not shifted: non-take-up of means-tested offers (N1, N3) validates them.
    tolerance_shift_logit: Annotated[float, Field(ge=-5.0, le=5.0)] = 4.5705  # calibrated
    initial_fit_median: Share = 0.5
    # assumption: share of families with a born child who also have an older one (n_children,
    # bookkeeping only: no rule reads it)
    older_siblings_share: Share = 0.55
    ties_spatial: Annotated[int, Field(ge=0, le=50)] = 4
    ties_community: Annotated[int, Field(ge=0, le=50)] = 3
    tie_radius_cells: Annotated[int, Field(ge=1, le=100)] = 6
    tie_homophily: Share = 0.7
    # assumption (no evidence; swept): weekly chance that a family enrolled at a childcare or
    # parenting site forms a tie with another family enrolled there (IAS focus groups:
    # meeting other parents is 'the most powerful way' to support parents)
    attendance_tie_prob_week: Share = 0.02
    initial_awareness: dict[str, Share] = Field(
        default_factory=lambda: {
            "childcare": 0.70,
            "health": 0.60,
            "parenting": 0.20,
            "admin_help": 0.25,
        }
    )

    @model_validator(mode="after")
    def _check(self) -> PopulationSpec:
        # A clash between two keys is reported at their table: either key may be the mistake.
        if self.leave_weeks_max < self.leave_weeks_min:
            raise ValueError(
                f"leave_weeks_max ({self.leave_weeks_max}) must be at least leave_weeks_min "
                f"({self.leave_weeks_min})"
            )
        if self.childcare_exit_age_weeks <= self.childcare_entry_age_weeks:
            raise ValueError(
                f"childcare_exit_age_weeks ({self.childcare_exit_age_weeks}) must exceed "
                f"childcare_entry_age_weeks ({self.childcare_entry_age_weeks})"
            )
        if self.pregnancy_known_weeks > self.gestation_weeks:
            raise ValueError(
                f"pregnancy_known_weeks ({self.pregnancy_known_weeks}) cannot exceed "
                f"gestation_weeks ({self.gestation_weeks})"
            )
        for name in self.initial_awareness:
            if name not in SERVICE_TYPES:
                raise FieldProblem(
                    ("initial_awareness", name),
                    f"unknown service type; {suggest(name, SERVICE_TYPES)}"
                    f"allowed: {', '.join(SERVICE_TYPES)}",
                )
        return self


class TravelSpec(Strict):
    detour_factor: Annotated[float, Field(ge=1.0, le=3.0)] = 1.3
    walk_minutes_per_km: MinutesPerKm = 12.5
    transit_minutes_per_km: MinutesPerKm = 3.0
    transit_access_minutes: TripMinutes = 4.0
    transit_wait_minutes_max: TripMinutes = 12.0
    car_minutes_per_km: MinutesPerKm = 2.0
    car_overhead_minutes: TripMinutes = 3.0
    # a single fare or a taxi's cost per minute is a few euro; tenfold for rescaling tests
    transit_fare_eur_trip: Annotated[float, Field(ge=0.0, le=100.0)] = 0.0
    car_cost_eur_per_minute: Annotated[float, Field(ge=0.0, le=10.0)] = 0.05
    # a family's max travel minutes is its tolerance for a trip made REFERENCE_TRIPS_PER_WEEK
    # times a week (daily childcare); for a type whose trips are rarer it is multiplied by
    # (REFERENCE_TRIPS_PER_WEEK / trips a week) ** this, at most MAX_TOLERANCE_FACTOR (a trip
    # made ten times a week is judged differently from one made once in ten weeks;
    # assumption: no evidence on the elasticity; 0 judges every trip alike; swept)
    tolerance_trip_elasticity: Annotated[float, Field(ge=0.0, le=1.0)] = 0.15


class FeeBand(Strict):
    income_below_eur_year: EurYearLimit
    fee_eur_week: EurWeekEach


# An equivalised income no household reaches: a fee schedule's last band must reach it, so
# that every income is visibly inside a band (the shipped schedules end at this value).
TOP_BAND_EUR_YEAR = 10_000_000.0


class FeeSpec(Strict):
    kind: Literal["free", "flat", "income_related", "means_tested"] = "free"
    flat_eur_week: EurWeekEach = 0.0
    bands: list[FeeBand] = Field(default_factory=list)
    means_test_line_eur_year: EurYearLimit = 17_398.0

    @model_validator(mode="after")
    def _check(self) -> FeeSpec:
        if self.kind == "income_related":
            if not self.bands:
                raise ValueError(
                    "kind = 'income_related' needs bands (an array of {income_below_eur_year, "
                    "fee_eur_week} tables); allowed: at least one band, or another kind"
                )
            limits = [b.income_below_eur_year for b in self.bands]
            if limits != sorted(limits) or len(set(limits)) != len(limits):
                raise FieldProblem(
                    "bands",
                    f"income_below_eur_year values {limits} must be strictly increasing",
                )
            # The last band's fee is charged to every income above the band before it
            # (sim/rules/decisions.py fee_cents), so a schedule that stops short reads as if higher
            # incomes paid nothing, or the last band's fee: it must visibly cover them all.
            if limits[-1] < TOP_BAND_EUR_YEAR:
                raise FieldProblem(
                    ("bands", len(limits) - 1, "income_below_eur_year"),
                    f"value {limits[-1]:,.0f}: the last band must cover every income; allowed: "
                    f"a last band with income_below_eur_year >= {TOP_BAND_EUR_YEAR:,.0f} (its "
                    "fee is what every income above the band before it pays)",
                )
        return self


class ProvisionSpec(Strict):
    places_per_100: PlacesPer100
    site_capacity: Annotated[int, Field(ge=1, le=100_000)]
    deprived_capacity_ratio: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0
    fee: FeeSpec = Field(default_factory=FeeSpec)
    eligibility: Literal["all", "means_tested"] = "all"
    means_test_line_eur_year: EurYearLimit = 17_398.0
    # "places" (means-tested childcare only): the line is set where the expected eligible
    # demand fills the public places (a planning draw of the families with the city seed,
    # lowest incomes first), so no reserved place is planned empty
    means_test_line_from: Literal["scenario", "places"] = "scenario"
    languages: Literal["local", "local_plus_largest", "all"] = "local"
    interpreters: bool = False
    stigma_label: Share = 0.1
    admin_complexity: Share = 0.3
    extended_hours_share: Share = 0.0
    quality: Share = 0.5
    priority: Literal["first_come", "working_parents_first", "need_weighted"] = "first_come"
    priority_deprived_share: Share = 0.3
    waitlist: bool = True
    # trips in a week of use: a week of daily care (childcare, by its days) or of a help-desk
    # episode; for services by visit (health appointments, parenting drop-in), the trips of
    # one visit, made once every visit_interval_weeks
    trips_per_week: Annotated[int, Field(ge=0, le=28)] = 2
    # the service's rhythm (docs/ODD.md §7.6): weeks between one user's visits at a service
    # by appointment (health: H4's schedule of contacts) or drop-in (parenting); 1 for daily
    # childcare and the help desk. Capacity is then counted per week (appointments, visits)
    # and a site serves capacity x visit_interval_weeks regular users
    visit_interval_weeks: Annotated[int, Field(ge=1, le=104)] = 1
    # weeks of help per problem at the help desk (episodes); 0: help lasts while the need
    # does. Only admin_help works in episodes
    episode_weeks: Annotated[int, Field(ge=0, le=104)] = 0
    # share of an atypical working schedule's mismatch that applies to this service's
    # rhythm: 1 for a daily service at set hours (childcare), 0 for appointments a family
    # books around its work, in between for fixed weekly sessions or office-hours episodes
    # (assumption: no evidence on opening-hours mismatch by rhythm; swept)
    hours_mismatch_weight: Share = 1.0
    # the trust approaching the service takes, 0-1: what distrust of institutions weighs
    # against this service (assumption: no evidence; swept)
    trust_required: Share = 0.3
    unit_cost_eur_week: EurWeekEach = 0.0
    means_test_admin_eur_place_week: EurWeekEach = 0.0


class MarketSpec(Strict):
    places_per_100: PlacesPer100 = 9.0
    site_capacity: Annotated[int, Field(ge=1, le=100_000)] = 18
    fee_eur_week: EurWeekEach = 150.0
    # a public allowance per day of market care (C11: 3.29 EUR a day for free-price users),
    # deducted from the user's fee and paid in the outlay for every market place ex ante
    allowance_eur_day: Annotated[float, Field(ge=0.0, le=10_000.0)] = 3.29
    quality: Share = 0.5
    extended_hours_share: Share = 0.3
    admin_complexity: Share = 0.15
    trips_per_week: Annotated[int, Field(ge=0, le=28)] = 10
    trust_required: Share = 0.3


class HubSpec(Strict):
    """Hubs "under one roof" as the sources describe them: existing services connected at an
    existing site (Huis van het Kind: 're-use and connect already available services and
    resources, instead of inventing new structures', IAS community network; NRW Family
    Centres built on daycare centres, EU WG ECEC §4.4). No site moves: at each hub site the
    public services already there join the hub, and every other hub type adds a presence
    (a session, a desk, places) of `presence_capacity` units."""

    # how many hubs: 0 none; a number (greedy family-weighted median over the existing
    # sites of `anchor_types`); or one per neighbourhood at its best-placed existing site
    count: int | str = 0
    # explicit hub cells [x, y] (an existing site, or a community centre where none is);
    # when given they are the hubs and `count` must be 0
    sites: list[list[Annotated[int, Field(ge=0, le=100_000)]]] = Field(default_factory=list)
    # the services a hub connects; childcare can be one (NRW Family Centres are daycare centres)
    types: list[Literal["childcare", "health", "parenting", "admin_help"]] = Field(
        default_factory=lambda: list(SERVICE_TYPES)
    )
    # which existing public sites may host a hub (consultation sites, NRW's daycare centres)
    anchor_types: list[Literal["childcare", "health", "parenting", "admin_help"]] = Field(
        default_factory=lambda: ["childcare", "health"]
    )
    # units a hub type's presence brings where the hub site has none of that type: places,
    # appointments or visits a week, cases (assumption, swept)
    presence_capacity: dict[str, Annotated[int, Field(ge=0, le=100_000)]] = Field(
        default_factory=lambda: {"childcare": 0, "health": 15, "parenting": 10, "admin_help": 10}
    )
    # where a presence's units come from: "moved" from the type's nearest public sites
    # (each gives at most half its units; the sites stay), or "added" (new units, paid at
    # the type's unit cost)
    presence_from: Literal["moved", "added"] = "moved"
    coordinator: bool = False
    # whether a hub may stand on a cell where no family lives (a community centre on a
    # park's or an industrial zone's edge): false refuses such cells among the candidates
    # of famsim place-hubs (a planner's choice, not a behavioural parameter)
    unpopulated_sites: bool = False
    stigma_factor: Share = 0.5
    referral_prob_week: Share = 0.15
    # share of a hub service's trust requirement a family already using a service of the
    # same hub no longer needs: trust in one carries over to the others (assumption, swept)
    trust_carryover: Share = 1.0
    overhead_eur_week: EurWeekEach = 385.0
    coordinator_eur_week: EurWeekEach = 1_700.0

    @field_validator("count")
    @classmethod
    def _count(cls, value: int | str) -> int | str:
        if value != "per_neighbourhood" and not (isinstance(value, int) and 0 <= value <= 10_000):
            raise ValueError('allowed: 0-10000 or "per_neighbourhood"')
        return value

    @field_validator("sites")
    @classmethod
    def _cells(cls, value: list[list[int]]) -> list[list[int]]:
        for i, cell in enumerate(value):
            if len(cell) != 2:
                raise FieldProblem((str(i),), f"value {cell}: allowed: a cell [x, y]")
        return value

    @field_validator("presence_capacity")
    @classmethod
    def _presence_types(cls, value: dict[str, int]) -> dict[str, int]:
        for name in value:
            if name not in SERVICE_TYPES:
                raise FieldProblem(
                    (str(name),),
                    f"unknown service type; {suggest(name, SERVICE_TYPES)}"
                    f"allowed: {', '.join(SERVICE_TYPES)}",
                )
        return value

    @model_validator(mode="after")
    def _check(self) -> HubSpec:
        if self.sites and self.count != 0:
            raise FieldProblem(
                ("sites",),
                f"{len(self.sites)} sites given with count = {self.count!r}: give the hub "
                "sites or a count, not both; allowed: count = 0 with sites",
            )
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.sites) or self.count != 0


class InformationSpec(Strict):
    first_contact_reach: Share = 0.94
    first_contact_informs: list[Literal["childcare", "parenting", "admin_help"]] = Field(
        default_factory=lambda: ["childcare", "parenting", "admin_help"]
    )
    wom_prob_per_tie_week: Share = 0.02
    wom_fit_gain: Share = 0.02
    referral_prob_week: Share = 0.02
    outreach_workers: StaffFte = 0.0
    outreach_visits_per_worker_week: ContactsPerWeek = 8.0
    outreach_targeting: Literal["all", "deprived_neighbourhoods"] = "deprived_neighbourhoods"
    outreach_deprived_share: Share = 0.3
    outreach_worker_eur_week: EurWeekEach = 1_700.0
    # KOALA's home visits (IAS focus groups): the worker brings an interpreter (or
    # tele-interpreting) where the scenario funds it, so a family understands the visit at
    # interpreter_comprehension whatever its own proficiency; cost per worker a week
    # (assumption, as an interpreter per site)
    outreach_interpreters: bool = False
    outreach_interpreter_eur_week_per_worker: EurWeekEach = 150.0
    # a visit raises trust by this x (1 - trust): a worker who comes to the home and keeps
    # coming (KOALA; size: assumption, swept)
    outreach_trust_gain: Share = 0.1
    # a visit walks the family through its next application: the admin barrier of the next
    # registration it makes is waived once (IAS focus groups: professionals 'help with
    # documents/papers'; as with a hub's intake)
    outreach_form_help: bool = True
    # the visit invites the family to a parenting meeting place (KOALA: 'we will go on a home
    # visit to invite them'): its perceived fit of parenting support rises by this x (1 - fit)
    # (assumption, swept)
    outreach_invitation_fit_gain: Share = 0.1
    # 'some of them bring friends along': in the week after a visit, each tie of the visited
    # family hears of parenting support from it with this chance (assumption, swept)
    outreach_tie_prob: Share = 0.2
    brokers: dict[str, StaffFte] = Field(default_factory=dict)
    broker_contacts_per_week: ContactsPerWeek = 6.0
    broker_comprehension_gain: Share = 0.4
    # trust gained (x (1 - trust)) from a broker of the family's community and from a referral
    # by a service it uses (Kortrijk: trained advisers brought 'half of the Somali community
    # at the counter'; sizes: assumption, swept)
    broker_trust_gain: Share = 0.2
    referral_trust_gain: Share = 0.05
    broker_eur_week: EurWeekEach = 900.0
    interpreter_comprehension: Share = 0.85
    interpreter_eur_week_per_site: EurWeekEach = 150.0


class BudgetSpec(Strict):
    """Equal outlay: with a target, the number of public childcare places is solved so the
    ex-ante outlay (sim/world/costs.py) matches it to within one place's weekly cost."""

    # a whole city's weekly outlay; 1e10 EUR a week is above any country's spending, and
    # the target grows with --families up to 50 million families
    target_outlay_eur_week: Annotated[float, Field(ge=0.0, le=1e10)] | None = None
    balance: Literal["childcare_places"] = "childcare_places"


class PolicySpec(Strict):
    """The adaptive policy (DESIGN §2 step 6, docs/ODD.md §7.14): every `review_weeks` the
    municipality reads the barrier signals of families in contact with some service and
    moves `move_share` of what the other levers hold of a flexible budget to the lever that
    answers the most-reported barrier. The flexible budget is part of the outlay: it starts
    in childcare places (the configuration as it is), so the static twin is the same
    configuration with adaptive = false."""

    adaptive: bool = False
    review_weeks: Annotated[int, Field(ge=1, le=520)] = 13
    # EUR a week of the outlay the municipality may move (assumption: about 5 % of the
    # default city's outlay; swept); grows with --families
    flexible_eur_week: Annotated[float, Field(ge=0.0, le=1e10)] = 18_000.0
    move_share: Share = 0.25


class BehaviourSpec(Strict):
    trust_gain_enrolled_week: Share = 0.003
    trust_loss_rejection: Share = 0.10
    fit_gain_enrolled_week: Share = 0.01
    dropout_base_week: Share = 0.001
    dropout_barrier_slope: Annotated[float, Field(ge=0.0, le=1.0)] = 0.001
    cooldown_weeks: Annotated[int, Field(ge=0, le=520)] = 8
    waitlist_patience_weeks: Annotated[int, Field(ge=1, le=520)] = 26
    # acceptable centres a family lists when it registers with the desk (EVIDENCE C20-C22:
    # one local registration desk; how many centres a family lists: assumption, swept)
    registration_choices: Annotated[int, Field(ge=1, le=16)] = 3
    # chance a family declines an offer from a centre other than its first choice and keeps
    # waiting (no evidence: assumption, swept)
    offer_decline_prob: Share = 0.2


def _default_provision() -> dict[str, ProvisionSpec]:
    bands = [
        FeeBand(income_below_eur_year=14_000, fee_eur_week=27.5),
        FeeBand(income_below_eur_year=20_000, fee_eur_week=45.0),
        FeeBand(income_below_eur_year=26_000, fee_eur_week=65.0),
        FeeBand(income_below_eur_year=32_000, fee_eur_week=85.0),
        FeeBand(income_below_eur_year=40_000, fee_eur_week=110.0),
        FeeBand(income_below_eur_year=10_000_000, fee_eur_week=165.0),
    ]
    return {
        "childcare": ProvisionSpec(
            places_per_100=35.0,
            site_capacity=28,
            deprived_capacity_ratio=0.57,
            fee=FeeSpec(kind="income_related", bands=bands),
            priority="working_parents_first",
            admin_complexity=0.35,
            trips_per_week=10,
            unit_cost_eur_week=260.0,
            stigma_label=0.05,
            quality=0.55,
        ),
        "health": ProvisionSpec(
            places_per_100=11.0,
            site_capacity=15,
            admin_complexity=0.05,
            stigma_label=0.02,
            trips_per_week=2,
            visit_interval_weeks=10,
            unit_cost_eur_week=60.0,
            quality=0.6,
            hours_mismatch_weight=0.0,
            interpreters=True,
            trust_required=0.1,
        ),
        "parenting": ProvisionSpec(
            places_per_100=6.0,
            site_capacity=40,
            admin_complexity=0.10,
            stigma_label=0.15,
            waitlist=False,
            trips_per_week=2,
            visit_interval_weeks=2,
            unit_cost_eur_week=18.0,
            hours_mismatch_weight=0.5,
        ),
        "admin_help": ProvisionSpec(
            places_per_100=3.0,
            site_capacity=40,
            admin_complexity=0.20,
            stigma_label=0.30,
            trips_per_week=2,
            episode_weeks=6,
            unit_cost_eur_week=30.0,
            hours_mismatch_weight=0.5,
            trust_required=0.5,
        ),
    }


class Scenario(Strict):
    name: str = "scenario"
    description: str = ""
    extends: str | None = None
    run: RunSpec = Field(default_factory=RunSpec)
    city: CitySpec = Field(default_factory=CitySpec)
    population: PopulationSpec = Field(default_factory=PopulationSpec)
    travel: TravelSpec = Field(default_factory=TravelSpec)
    provision: dict[str, ProvisionSpec] = Field(default_factory=_default_provision)
    market: MarketSpec = Field(default_factory=MarketSpec)
    hubs: HubSpec = Field(default_factory=HubSpec)
    information: InformationSpec = Field(default_factory=InformationSpec)
    behaviour: BehaviourSpec = Field(default_factory=BehaviourSpec)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    policy: PolicySpec = Field(default_factory=PolicySpec)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(
                "not allowed as a name (it names the results folder); allowed: "
                "letters, digits, '_' and '-', at most 64 characters, starting with a letter "
                "or digit"
            )
        return value

    @field_validator("provision", mode="before")
    @classmethod
    def _provision_types(cls, value: Any) -> Any:
        # before the tables are checked, so a misspelt type is reported as such
        if isinstance(value, dict):
            for name in value:
                if name not in SERVICE_TYPES:
                    raise FieldProblem(
                        str(name),
                        f"unknown service type; {suggest(name, SERVICE_TYPES)}"
                        f"allowed: {', '.join(SERVICE_TYPES)}",
                    )
        return value

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        for name in SERVICE_TYPES:
            if name not in self.provision:
                raise FieldProblem(
                    ("provision", name),
                    f"required table is missing: provision must define each of "
                    f"{', '.join(SERVICE_TYPES)}",
                )
        for name, spec in self.provision.items():
            if name in ("childcare", "admin_help") and spec.visit_interval_weeks != 1:
                rhythm = "daily" if name == "childcare" else "in episodes"
                raise FieldProblem(
                    ("provision", name, "visit_interval_weeks"),
                    f"value {spec.visit_interval_weeks}: {name} works {rhythm}, not by "
                    "visits; allowed: 1 (visit_interval_weeks applies to health and parenting)",
                )
            if spec.means_test_line_from == "places" and (
                name != "childcare" or spec.eligibility != "means_tested"
            ):
                raise FieldProblem(
                    ("provision", name, "means_test_line_from"),
                    f'value "places" for {name} with eligibility "{spec.eligibility}": '
                    'allowed: "scenario" (a line from the places applies to means-tested '
                    "childcare only)",
                )
            if name != "admin_help" and spec.episode_weeks != 0:
                raise FieldProblem(
                    ("provision", name, "episode_weeks"),
                    f"value {spec.episode_weeks}: only the help desk works in episodes; "
                    "allowed: 0 (episode_weeks applies to admin_help)",
                )
        languages = list(self.city.languages)
        for name in self.information.brokers:
            if name not in languages:
                raise FieldProblem(
                    ("information", "brokers", name),
                    f"language is not in city.languages; {suggest(name, languages)}"
                    f"allowed: {', '.join(languages)}",
                )
        return self

    def resolved_dict(self) -> dict[str, Any]:
        """The fully resolved scenario as plain data (what the manifest records)."""
        data = self.model_dump(mode="json")
        data.pop("extends", None)
        return data

    def file_digests(self) -> dict[str, str]:
        """sha256 (hex) of the bytes of each city file the scenario names, by key
        ("cells_file", "services_file"); a key that is not set is absent. A file that
        cannot be read is a ScenarioError naming its key."""
        out = {}
        for key in CITY_FILE_KEYS:
            path = getattr(self.city, key)
            if path is not None:
                out[key] = city_file_digest(path, f"city.{key}")
        return out

    def identity_dict(self) -> dict[str, Any]:
        """Everything that decides results, as plain data: the resolved scenario without its
        name and description, and with each city file's path replaced by the digest of its
        bytes, so an edited file counts and the same files in another folder do not."""
        data = self.resolved_dict()
        data.pop("name", None)
        data.pop("description", None)
        for key, digest in self.file_digests().items():
            data["city"][key] = f"sha256:{digest}"
        return data

    def content_hash(self) -> str:
        """sha256 of identity_dict() as canonical JSON: renames and moves don't count, an
        edited value or city file does."""
        blob = json.dumps(self.identity_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------------------------------
# digests of city files

# A file is rehashed unless its (size, mtime, ctime, inode) are those of the cached digest;
# content_hash runs once per replication row, and a city file can be tens of megabytes.
_DIGEST_CACHE: dict[str, tuple[tuple[int, int, int, int], str]] = {}
# A file modified this recently is never served from the cache: a second edit within the
# file system's timestamp resolution would leave (size, mtime) unchanged (git's "racy" case).
_RACY_NS = 2_000_000_000


def city_file_digest(path: str | os.PathLike[str], key: str = "city.cells_file") -> str:
    """sha256 (hex) of a city file's bytes; an unreadable file is a one-line ScenarioError
    naming the file and the scenario key that points at it."""
    name = os.fspath(path)
    try:
        stat = os.stat(name)
        stamp = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
        cached = _DIGEST_CACHE.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        digest = hashlib.sha256()
        with open(name, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ScenarioError(
            name,
            key,
            f"file {_quoted(name)} cannot be read to hash its contents ({reason}); allowed: "
            "a readable CSV or Parquet file",
        ) from None
    hexdigest = digest.hexdigest()
    if time.time_ns() - stamp[1] > _RACY_NS:
        _DIGEST_CACHE[name] = (stamp, hexdigest)
    return hexdigest


# ---------------------------------------------------------------------------------------
# loading

CITY_FILE_KEYS: tuple[str, ...] = ("cells_file", "services_file")
MAX_NESTING = 32  # tables and arrays nested deeper than this are not a scenario
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+\Z")

# Which file set each key (key path -> file as shown to the user), so an error in a file
# reached through `extends` names that file. A table is attributed to the most derived file
# that mentions it.
Provenance = dict[tuple[Any, ...], str]


def format_key_path(parts: tuple[Any, ...] | list[Any]) -> str:
    """Dotted key path as errors show it; a key that is not a plain word is quoted."""
    out = []
    for part in parts:
        text = str(part)
        out.append(text if _PLAIN_KEY.match(text) else _quoted(text))
    return ".".join(out)


def _deep_merge(
    base: dict[str, Any], override: dict[str, Any], _path: tuple[Any, ...] = ()
) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        here = (*_path, key)
        if (
            isinstance(value, dict)
            and isinstance(out.get(key), dict)
            and here not in REPLACED_WHOLE
        ):
            out[key] = _deep_merge(out[key], value, here)
        else:
            out[key] = value
    return out


def _record(data: dict[Any, Any], file: str, prefix: tuple[Any, ...], out: Provenance) -> None:
    for key, value in data.items():
        here = (*prefix, key)
        out[here] = file
        if isinstance(value, dict):
            _record(value, file, here, out)


def _too_deep(data: Any) -> bool:
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_NESTING:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return False


def _read_toml(path: Path, display: str, blame: tuple[str, str]) -> dict[str, Any]:
    """Parse one scenario file. `blame` is (file, key path) to name if it cannot be read:
    the file itself, or the file whose `extends` points here."""
    file, key = blame
    problem = None
    try:
        problem = missing_file_problem(path)
        if problem is None:
            text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = f"cannot be read ({type(exc).__name__}: {exc})"
    if problem is not None:
        raise ScenarioError(file, key, f"file {_quoted(display)} {problem}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(display, "", f"not valid TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(display, "", "not a scenario: nested too deeply") from None
    if _too_deep(data):
        raise ScenarioError(
            display, "", f"not a scenario: tables or arrays nested deeper than {MAX_NESTING}"
        )
    return data


def missing_file_problem(path: Path) -> str | None:
    """Why a path is not a readable regular file, in words ("not found", "is a symlink
    loop", ...), or None when it is one. A symlink loop is not "not found": the link is
    there, it points back at itself (ELOOP)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symlink loop (a link that leads back to itself)"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return "not found"
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    except ValueError:
        return "not found"
    return None if stat.S_ISREG(mode) else "is not a regular file"


def _rebase_city_files(data: dict[str, Any], base_dir: Path) -> None:
    """city.cells_file / city.services_file are relative to the file that names them."""
    city = data.get("city")
    if not isinstance(city, dict):
        return
    for key in CITY_FILE_KEYS:
        value = city.get(key)
        if isinstance(value, str) and value.strip() and "\x00" not in value:
            city[key] = os.path.normpath(base_dir / value)


def _resolve(
    path: Path, display: str, seen: tuple[Path, ...], blame: tuple[str, str]
) -> tuple[dict[str, Any], Provenance]:
    try:
        real = path.resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise ScenarioError(blame[0], blame[1], f"cannot open {_quoted(display)}: {exc}") from None
    if real in seen:
        chain = " -> ".join(p.name for p in (*seen, real))
        raise ScenarioError(blame[0], "extends", f"circular extends chain: {chain}")
    data = _read_toml(real, display, blame)
    if {"base", "sampler", "parameters"} <= set(data):
        raise ScenarioError(
            display,
            "",
            "this is a sweep file (it has base, sampler and parameters), not a scenario; "
            f"use: famsim sweep {display}",
        )
    _rebase_city_files(data, real.parent)
    provenance: Provenance = {}
    _record(data, display, (), provenance)
    parent = data.get("extends")
    if parent is None:
        return data, provenance
    if not isinstance(parent, str) or not parent.strip() or "\x00" in parent:
        raise ScenarioError(
            display,
            "extends",
            f"value {_shown(parent)}: allowed: the path of another scenario file, relative "
            "to this one (a string)",
        )
    parent_display = os.path.normpath(os.path.join(os.path.dirname(display), parent))
    base, base_provenance = _resolve(
        real.parent / parent, parent_display, (*seen, real), (display, "extends")
    )
    # a name is never inherited: it names the results folder, and two scenarios sharing one
    # would overwrite each other's results (a file without a name takes its file name)
    base.pop("name", None)
    base_provenance.pop(("name",), None)
    own = {k: v for k, v in data.items() if k != "extends"}
    for path, old, new in _replaced_lists(base, own):
        warnings.warn(
            ScenarioWarning(
                f"{display}: {format_key_path(path)}: replaces the whole list of "
                f"{_file_of(path, base_provenance, parent_display)} ({len(old)} entries) with "
                f"{len(new)} entries; lists are replaced, not merged (tables merge key by key)"
            ),
            stacklevel=2,
        )
    merged = _deep_merge(base, own)
    merged["extends"] = parent
    if "description" not in data and base.get("description"):
        # a child without its own description is described as what it changes
        changed = [format_key_path(p) for p in _changed_leaves(base, own)]
        merged["description"] = (
            f"{base['description']} — changed: {', '.join(changed) or 'nothing'}"
        )
    return merged, {**base_provenance, **provenance}


class ScenarioWarning(UserWarning):
    """Something in a scenario file that is allowed but probably not meant (the command line
    prints it as one line on stderr)."""


def _replaced_lists(
    base: dict[str, Any], override: dict[str, Any], _path: tuple[Any, ...] = ()
) -> list[tuple[tuple[Any, ...], list[Any], list[Any]]]:
    """Where `override` replaces a non-empty list of `base` by a shorter non-empty one (a
    child giving one fee band drops the parent's other bands). Setting [] is deliberate,
    and a list at least as long as the parent's is a whole new schedule."""
    out = []
    for key, value in override.items():
        here, old = (*_path, key), base.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and here not in REPLACED_WHOLE:
            out += _replaced_lists(old, value, here)
        elif isinstance(value, list) and isinstance(old, list) and 0 < len(value) < len(old):
            out.append((here, old, value))
    return out


def _changed_leaves(
    base: dict[str, Any], override: dict[str, Any], _path: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """Key paths of the values `override` sets differently from `base` (tables walked)."""
    out = []
    for key, value in override.items():
        if key in ("name", "description"):
            continue
        here, old = (*_path, key), base.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and here not in REPLACED_WHOLE:
            out += _changed_leaves(old, value, here)
        elif value != old:
            out.append(here)
    return out


def resolve_document(path: Path) -> dict[str, Any]:
    """Read a scenario file and merge it over the files it `extends` (paths relative to it)."""
    return _resolve(Path(path), str(path), (), (str(path), ""))[0]


# --- error messages --------------------------------------------------------------------


def _shown(value: Any) -> str:
    shown = _quoted(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _unwrap(annotation: Any, meta: list[Any]) -> tuple[Any, list[Any]]:
    """Strip Annotated (collecting its constraints) and Optional from a type."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            base, *extra = get_args(annotation)
            for item in extra:
                meta = [*meta, *(item.metadata if isinstance(item, FieldInfo) else [item])]
            annotation = base
        elif origin is Union or origin is types.UnionType:
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation, meta
            annotation = args[0]
        else:
            return annotation, meta


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _schema_at(loc: tuple[Any, ...]) -> tuple[Any, list[Any]] | None:
    """The type (and constraints) the schema expects at a key path, if the path exists."""
    annotation, meta = Scenario, []
    for part in loc:
        annotation, meta = _unwrap(annotation, meta)
        if _is_model(annotation):
            field = annotation.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            annotation, meta = field.annotation, list(field.metadata)
        elif get_origin(annotation) is dict:
            annotation, meta = get_args(annotation)[1], []
        elif get_origin(annotation) is list and isinstance(part, int):
            annotation, meta = get_args(annotation)[0], []
        else:
            return None
    return _unwrap(annotation, meta)


def _number(value: Any) -> str:
    # whole bounds read as counts ("10,000", not "10000"); others as written ("0.5", "1e+10")
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e9:
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _range_text(meta: list[Any]) -> str:
    bounds = {
        name: getattr(m, name)
        for m in meta
        for name in ("ge", "gt", "le", "lt")
        if hasattr(m, name)
    }
    low = (
        (">=", bounds["ge"]) if "ge" in bounds else (">", bounds["gt"]) if "gt" in bounds else None
    )
    high = (
        ("<=", bounds["le"]) if "le" in bounds else ("<", bounds["lt"]) if "lt" in bounds else None
    )
    if low and high and low[0] == ">=" and high[0] == "<=":
        return f" from {_number(low[1])} to {_number(high[1])}"
    parts = [f"{bound[0]} {_number(bound[1])}" for bound in (low, high) if bound]
    return (" " + " and ".join(parts)) if parts else ""


def _describe(annotation: Any, meta: list[Any]) -> str:
    annotation, meta = _unwrap(annotation, meta)
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer" + _range_text(meta)
    if annotation is float:
        return "a number" + _range_text(meta)
    if annotation is str:
        return "a string"
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(_quoted(a) for a in get_args(annotation))
    if _is_model(annotation):
        return "a table with keys " + ", ".join(annotation.model_fields)
    if origin is dict:
        return "a table of name = " + _describe(get_args(annotation)[1], [])
    if origin is list:
        return "an array of " + _describe(get_args(annotation)[0], [])
    return ""


def _clean_loc(loc: tuple[Any, ...], kind: str) -> tuple[tuple[Any, ...], bool]:
    """Drop the '[key]' marker pydantic appends to an error about a table's key (not its
    value); a key that is itself spelt '[key]' stays."""
    about_key = len(loc) >= 2 and loc[-1] == "[key]" and kind != "extra_forbidden"
    return (loc[:-1] if about_key else loc), about_key


def _describe_error(err: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
    kind = err.get("type", "")
    loc, about_key = _clean_loc(tuple(err.get("loc", ())), kind)
    problem = (err.get("ctx") or {}).get("error")
    if isinstance(problem, FieldProblem):
        return (*loc, *problem.key), problem.message
    if kind == "extra_forbidden":
        node = _schema_at(loc[:-1])
        options = list(node[0].model_fields) if node and _is_model(node[0]) else []
        allowed = f"allowed here: {', '.join(options)}" if options else "no keys are allowed here"
        return loc, f"unknown key; {suggest(loc[-1], options)}{allowed}"
    node = _schema_at(loc)
    allowed = "a string" if about_key else (_describe(*node) if node else "")
    if kind == "missing":
        return loc, "required key is missing" + (f"; allowed: {allowed}" if allowed else "")
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
        given = err.get("input")
        return loc, msg if isinstance(given, dict | list) else f"value {_shown(given)}: {msg}"
    subject = "key" if about_key or kind == "invalid_key" else "value"
    text = f"{subject} {_shown(err.get('input'))}: {msg}"
    return loc, text + (f"; allowed: {allowed}" if allowed else "")


def _file_of(parts: tuple[Any, ...], provenance: Provenance | None, origin: str) -> str:
    """The file that set the key (or its nearest enclosing table) at a key path."""
    for n in range(len(parts), 0, -1):
        found = (provenance or {}).get(tuple(parts[:n]))
        if found is not None:
            return found if found == origin else f"{found} (extended by {origin})"
    return origin


def scenario_from_dict(
    data: Any,
    origin: str = "<scenario>",
    *,
    strict: bool = False,
    provenance: Provenance | None = None,
) -> Scenario:
    """Validate a resolved scenario document; errors become one-line ScenarioErrors naming the
    file, the key path, the value and what is allowed. strict=True (files) refuses values of
    the wrong type instead of converting them (a string "12" where a number belongs)."""
    if not isinstance(data, dict):
        raise ScenarioError(origin, "", f"a scenario is a table of keys, got {_shown(data)}")
    try:
        return Scenario.model_validate(data, strict=strict)
    except ValidationError as exc:
        errors = exc.errors()
        parts, message = _describe_error(errors[0])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ScenarioError(
            _file_of(parts, provenance, origin), format_key_path(parts), message + more
        ) from None


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Load, resolve `extends`, apply dotted-path overrides and validate a scenario file.
    city.cells_file and city.services_file become absolute paths, each resolved against the
    file that names it (overrides: against `path`)."""
    path = Path(path)
    origin = str(path)
    data, provenance = _resolve(path, origin, (), (origin, ""))
    if "name" not in data:
        if not NAME_PATTERN.match(path.stem):
            raise ScenarioError(
                origin,
                "name",
                f"no name is set and the file name {_quoted(path.stem)} cannot serve as one; "
                "add name = \"...\" using letters, digits, '_' and '-' (at most 64 characters)",
            )
        data["name"] = path.stem
    if overrides:
        for dotted, value in overrides.items():
            nested = _nest(dotted, value)
            data = _deep_merge(data, nested)
            _record(nested, "<overrides>", (), provenance)
        _rebase_city_files(data, path.resolve().parent)
    return scenario_from_dict(data, origin, strict=True, provenance=provenance)


def set_at_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set the value at a dotted key path of a resolved scenario document in place; a number
    indexes a list (e.g. a fee band)."""
    node: Any = data
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def cents(eur: float) -> int:
    """Euro to integer cents (values in scenario files have at most two decimals)."""
    return int(round(eur * 100.0))
