"""Scenario files: TOML, validated against a pydantic schema, with `extends` inheritance.

Every number a run uses lives here, with its unit in the field name or description.
Money is always in euro in the file (`*_eur_*` keys) and converted to integer cents by the
model, so multiplying every amount of money by a constant changes no decision.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sim.errors import ScenarioError

SERVICE_TYPES: tuple[str, ...] = ("childcare", "health", "parenting", "admin_help")
DIMENSIONS: tuple[str, ...] = (
    "information",
    "capacity",
    "cost",
    "travel",
    "hours",
    "admin",
    "language",
    "stigma",
    "fit",
)
ACCESSIBILITY_DIMENSION: dict[str, str] = {
    "information": "comprehensibility",
    "language": "comprehensibility",
    "capacity": "availability",
    "hours": "availability",
    "cost": "affordability",
    "travel": "accessibility",
    "admin": "accessibility",
    "stigma": "accessibility",
    "fit": "usefulness",
}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

Share = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]
Money = Annotated[float, Field(ge=0.0, le=1e10)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


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
    cell_size_m: Annotated[float, Field(gt=0.0, le=5_000.0)] = 125.0
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

    @model_validator(mode="after")
    def _check(self) -> CitySpec:
        total = sum(self.languages.values())
        if "local" not in self.languages:
            raise ValueError("languages must include 'local' (the municipality's language)")
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"language shares must sum to 1 (they sum to {total:.6g})")
        if self.source == "file" and not self.cells_file:
            raise ValueError("source = 'file' needs cells_file (and usually services_file)")
        return self


class PopulationSpec(Strict):
    median_equiv_income_eur_year: Money = 28_997.0
    income_log_sd: Annotated[float, Field(gt=0.0, le=3.0)] = 0.55
    income_deprivation_effect: Annotated[float, Field(ge=0.0, le=5.0)] = 0.7
    poverty_line_eur_year: Money = 17_398.0
    low_work_intensity_base: Share = 0.05
    low_work_intensity_deprivation_effect: Share = 0.12
    employed_share_non_arope: Share = 0.88
    employed_share_arope: Share = 0.40
    formal_care_preference_employed: Share = 0.80
    formal_care_preference_not_employed: Share = 0.40
    leave_weeks_min: Annotated[int, Field(ge=0, le=156)] = 14
    leave_weeks_max: Annotated[int, Field(ge=0, le=156)] = 40
    gestation_weeks: Annotated[int, Field(ge=30, le=44)] = 40
    pregnancy_known_weeks: Annotated[int, Field(ge=0, le=40)] = 28
    childcare_entry_age_weeks: Annotated[int, Field(ge=0, le=156)] = 14
    childcare_exit_age_weeks: Annotated[int, Field(ge=26, le=312)] = 156
    health_need_until_age_weeks: Annotated[int, Field(ge=1, le=312)] = 130
    youngest_child_max_age_weeks: Annotated[int, Field(ge=156, le=936)] = 624
    next_birth_hazard_week: Annotated[float, Field(ge=0.0, le=0.2)] = 0.0013
    min_birth_spacing_weeks: Annotated[int, Field(ge=52, le=520)] = 156
    parenting_need_share: Share = 0.25
    parenting_need_until_age_weeks: Annotated[int, Field(ge=1, le=936)] = 312
    admin_need_base: Share = 0.08
    admin_need_low_paperwork_effect: Share = 0.35
    car_share_high_income: Share = 0.75
    car_share_low_income: Share = 0.30
    max_travel_minutes_median: Annotated[float, Field(gt=0.0, le=600.0)] = 20.0
    max_travel_minutes_log_sd: Annotated[float, Field(ge=0.0, le=3.0)] = 0.35
    atypical_hours_share_employed: Share = 0.20
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
    admin_tolerance_median: Share = 0.30
    hours_tolerance_median: Share = 0.40
    fit_threshold_median: Share = 0.35
    initial_fit_median: Share = 0.5
    ties_spatial: Annotated[int, Field(ge=0, le=50)] = 4
    ties_community: Annotated[int, Field(ge=0, le=50)] = 3
    tie_radius_cells: Annotated[int, Field(ge=1, le=100)] = 6
    tie_homophily: Share = 0.7
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
        if self.leave_weeks_max < self.leave_weeks_min:
            raise ValueError("leave_weeks_max must be at least leave_weeks_min")
        if self.childcare_exit_age_weeks <= self.childcare_entry_age_weeks:
            raise ValueError("childcare_exit_age_weeks must exceed childcare_entry_age_weeks")
        if self.pregnancy_known_weeks > self.gestation_weeks:
            raise ValueError("pregnancy_known_weeks cannot exceed gestation_weeks")
        unknown = set(self.initial_awareness) - set(SERVICE_TYPES)
        if unknown:
            raise ValueError(f"initial_awareness: unknown service types {sorted(unknown)}")
        return self


class TravelSpec(Strict):
    detour_factor: Annotated[float, Field(ge=1.0, le=3.0)] = 1.3
    walk_minutes_per_km: PositiveFloat = 12.5
    transit_minutes_per_km: PositiveFloat = 3.0
    transit_access_minutes: NonNegFloat = 4.0
    transit_wait_minutes_max: NonNegFloat = 12.0
    car_minutes_per_km: PositiveFloat = 2.0
    car_overhead_minutes: NonNegFloat = 3.0
    transit_fare_eur_trip: Money = 0.0
    car_cost_eur_per_minute: Money = 0.05


class FeeBand(Strict):
    income_below_eur_year: Money
    fee_eur_week: Money


class FeeSpec(Strict):
    kind: Literal["free", "flat", "income_related", "means_tested"] = "free"
    flat_eur_week: Money = 0.0
    bands: list[FeeBand] = Field(default_factory=list)
    means_test_line_eur_year: Money = 17_398.0

    @model_validator(mode="after")
    def _check(self) -> FeeSpec:
        if self.kind == "income_related":
            if not self.bands:
                raise ValueError("an income_related fee needs bands")
            limits = [b.income_below_eur_year for b in self.bands]
            if limits != sorted(limits) or len(set(limits)) != len(limits):
                raise ValueError("fee bands must have strictly increasing income_below_eur_year")
        return self


class ProvisionSpec(Strict):
    places_per_100: NonNegFloat
    site_capacity: Annotated[int, Field(ge=1, le=100_000)]
    deprived_capacity_ratio: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0
    fee: FeeSpec = Field(default_factory=FeeSpec)
    eligibility: Literal["all", "means_tested"] = "all"
    means_test_line_eur_year: Money = 17_398.0
    languages: Literal["local", "local_plus_largest", "all"] = "local"
    interpreters: bool = False
    stigma_label: Share = 0.1
    admin_complexity: Share = 0.3
    extended_hours_share: Share = 0.0
    quality: Share = 0.5
    priority: Literal["first_come", "working_parents_first", "need_weighted"] = "first_come"
    priority_deprived_share: Share = 0.3
    waitlist: bool = True
    trips_per_week: Annotated[int, Field(ge=0, le=28)] = 2
    unit_cost_eur_week: Money = 0.0
    means_test_admin_eur_place_week: Money = 0.0


class MarketSpec(Strict):
    places_per_100: NonNegFloat = 9.0
    site_capacity: Annotated[int, Field(ge=1, le=100_000)] = 18
    fee_eur_week: Money = 150.0
    quality: Share = 0.5
    extended_hours_share: Share = 0.3
    admin_complexity: Share = 0.15
    trips_per_week: Annotated[int, Field(ge=0, le=28)] = 10


class HubSpec(Strict):
    count: Annotated[int, Field(ge=0, le=10_000)] = 0
    types: list[Literal["childcare", "health", "parenting", "admin_help"]] = Field(
        default_factory=lambda: ["health", "parenting", "admin_help"]
    )
    coordinator: bool = False
    stigma_factor: Share = 0.5
    referral_prob_week: Share = 0.15
    overhead_eur_week: Money = 385.0
    coordinator_eur_week: Money = 1_700.0


class InformationSpec(Strict):
    first_contact_reach: Share = 0.94
    first_contact_informs: list[Literal["childcare", "parenting", "admin_help"]] = Field(
        default_factory=lambda: ["childcare", "parenting", "admin_help"]
    )
    wom_prob_per_tie_week: Share = 0.02
    wom_fit_gain: Share = 0.02
    referral_prob_week: Share = 0.02
    outreach_workers: NonNegFloat = 0.0
    outreach_visits_per_worker_week: NonNegFloat = 8.0
    outreach_targeting: Literal["all", "deprived_neighbourhoods"] = "deprived_neighbourhoods"
    outreach_deprived_share: Share = 0.3
    outreach_worker_eur_week: Money = 1_700.0
    brokers: dict[str, NonNegFloat] = Field(default_factory=dict)
    broker_contacts_per_week: NonNegFloat = 6.0
    broker_comprehension_gain: Share = 0.4
    broker_eur_week: Money = 900.0
    interpreter_comprehension: Share = 0.85
    interpreter_eur_week_per_site: Money = 150.0


class BudgetSpec(Strict):
    """Equal outlay: with a target, the number of public childcare places is solved so the
    ex-ante outlay (sim/costs.py) matches it to within one place's weekly cost."""

    target_outlay_eur_week: Money | None = None
    balance: Literal["childcare_places"] = "childcare_places"


class BehaviourSpec(Strict):
    trust_gain_enrolled_week: Share = 0.003
    trust_loss_rejection: Share = 0.10
    fit_gain_enrolled_week: Share = 0.01
    dropout_base_week: Share = 0.001
    dropout_barrier_slope: Annotated[float, Field(ge=0.0, le=1.0)] = 0.001
    cooldown_weeks: Annotated[int, Field(ge=0, le=520)] = 8
    waitlist_patience_weeks: Annotated[int, Field(ge=1, le=520)] = 26


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
            places_per_100=95.0,
            site_capacity=150,
            admin_complexity=0.05,
            stigma_label=0.02,
            trips_per_week=1,
            unit_cost_eur_week=6.0,
            quality=0.6,
        ),
        "parenting": ProvisionSpec(
            places_per_100=6.0,
            site_capacity=40,
            admin_complexity=0.10,
            stigma_label=0.15,
            trips_per_week=1,
            unit_cost_eur_week=18.0,
        ),
        "admin_help": ProvisionSpec(
            places_per_100=3.0,
            site_capacity=40,
            admin_complexity=0.20,
            stigma_label=0.30,
            trips_per_week=1,
            unit_cost_eur_week=30.0,
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

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(
                f"name {self.name!r} may use only letters, digits, '_' and '-' "
                "(at most 64 characters, not starting with '-' or '_')"
            )
        missing = [t for t in SERVICE_TYPES if t not in self.provision]
        extra = [t for t in self.provision if t not in SERVICE_TYPES]
        if missing or extra:
            raise ValueError(
                f"provision must define exactly {list(SERVICE_TYPES)} "
                f"(missing {missing}, unknown {extra})"
            )
        unknown = set(self.information.brokers) - set(self.city.languages)
        if unknown:
            raise ValueError(f"information.brokers: languages {sorted(unknown)} are not in city.languages")
        return self

    def resolved_dict(self) -> dict[str, Any]:
        """The fully resolved scenario as plain data (what the manifest records)."""
        data = self.model_dump(mode="json")
        data.pop("extends", None)
        return data

    def content_hash(self) -> str:
        """sha256 of the resolved scenario, canonical JSON; names excluded so renames don't count."""
        data = self.resolved_dict()
        data.pop("name", None)
        data.pop("description", None)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------------------------------
# loading


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path, origin: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(origin, "", f"file {str(path)!r} not found") from None
    except (UnicodeDecodeError, IsADirectoryError, PermissionError) as exc:
        raise ScenarioError(origin, "", f"cannot read {str(path)!r}: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(path), "", f"not valid TOML: {exc}") from None


def resolve_document(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a scenario file and merge it over the files it `extends` (paths relative to it)."""
    path = path.resolve()
    if path in _seen:
        chain = " -> ".join(p.name for p in (*_seen, path))
        raise ScenarioError(str(path), "extends", f"circular extends chain: {chain}")
    data = _read_toml(path, str(_seen[-1]) if _seen else str(path))
    parent = data.get("extends")
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError(str(path), "extends", f"must be a file path string, got {parent!r}")
    base = resolve_document(path.parent / parent, (*_seen, path))
    merged = _deep_merge(base, {k: v for k, v in data.items() if k != "extends"})
    merged["extends"] = parent
    return merged


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names valid at a location, for 'did you mean' suggestions."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            if current is ProvisionSpec or (isinstance(part, str) and part in SERVICE_TYPES):
                current = ProvisionSpec
                continue
            return []
        annotation = fields[part].annotation
        current = _model_in(annotation)
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    return list(fields) if fields else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _format_error(err: dict[str, Any], raw: dict[str, Any]) -> tuple[str, str]:
    loc = tuple(err.get("loc", ()))
    key_path = ".".join(str(p) for p in loc)
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        options = _known_keys(Scenario, loc)
        guess = difflib.get_close_matches(str(loc[-1]), options, n=1)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        allowed = f" (allowed here: {', '.join(options)})" if options and not guess else ""
        return key_path, f"unknown key{hint}{allowed}"
    value: Any = raw
    for part in loc:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            value = err.get("input")
            break
    msg = err.get("msg", "invalid value")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    shown = json.dumps(value, default=str)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return key_path, f"value {shown}: {msg}"


def scenario_from_dict(data: dict[str, Any], origin: str = "<scenario>") -> Scenario:
    """Validate a resolved scenario document; errors become one-line ScenarioErrors."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        key_path, message = _format_error(errors[0], data)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ScenarioError(origin, key_path, message + more) from None


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Load, resolve `extends`, apply dotted-path overrides and validate a scenario file."""
    path = Path(path)
    data = resolve_document(path)
    data.setdefault("name", path.stem)
    if overrides:
        for dotted, value in overrides.items():
            data = _deep_merge(data, _nest(dotted, value))
    scenario = scenario_from_dict(data, str(path))
    city = scenario.city
    if city.source == "file":
        base_dir = path.resolve().parent
        resolved = {
            "cells_file": str((base_dir / city.cells_file).resolve()) if city.cells_file else None,
            "services_file": (
                str((base_dir / city.services_file).resolve()) if city.services_file else None
            ),
        }
        scenario = scenario.model_copy(update={"city": city.model_copy(update=resolved)})
    return scenario


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def cents(eur: float) -> int:
    """Euro to integer cents (values in scenario files have at most two decimals)."""
    return int(round(eur * 100.0))
