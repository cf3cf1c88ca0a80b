"""The municipal grid: a seeded synthetic city, or a planner's own cells from CSV/Parquet.

Arrays are indexed [x, y] like Mesa's grid coordinates. A City holds only what is known
about places (households, neighbourhood, deprivation, transit, language mix, the log-income
shift that produces the neighbourhood's poverty rate); families are drawn in population.py.
"""

from __future__ import annotations

import codecs
import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.spatial import cKDTree
from scipy.special import ndtri

from sim.core import rng
from sim.core.errors import ScenarioError
from sim.scenario.schema import PopulationSpec, Scenario, missing_file_problem
from sim.world.planning import apportion, planned_share

# Bytes a family costs in the fast engine (columns, candidate lists, ties); used to refuse a
# city too large for memory before building it. Measured on the default city, rounded up;
# that city has about PAIRS_PER_FAMILY_MEASURED candidate (family, service) pairs a family,
# so only pairs beyond those are counted again.
BYTES_PER_FAMILY = 1_400
BYTES_PER_CELL = 120
PAIRS_PER_FAMILY_MEASURED = 96
# A candidate pair is stored as an int32 service and int16 minutes, and while one type's
# lists are assembled its pieces are held twice: 12 bytes a pair at the peak.
BYTES_PER_PAIR = 12
# A service site: its table columns, the engine's per-service state and the Python lists
# that place it (one entry a site), rounded up.
BYTES_PER_SERVICE = 400
# Sites are placed one at a time (a keyed draw each), about 10 microseconds a site; beyond
# this many a run would spend minutes before its first week. A real city has thousands.
MAX_SITES = 2_000_000

# The generated city's shape (synthetic_city, ODD §5.1). Like the [city] keys they shape,
# these are assumptions: a stylised European city, not a measured one.
#
# Standard deviation of a neighbourhood's deprivation around the centre-periphery gradient
# when segregation is 1 (scaled by city.segregation): one standard deviation is a quarter of
# the score's 0-1 range (EU WG ECEC: poverty concentrates in some neighbourhoods; the size is
# assumed).
NEIGHBOURHOOD_DEPRIVATION_SD = 0.25
# Width of a cell's own deprivation noise, uniform and centred, U(-0.1, 0.1), when
# segregation is 0 (scaled by 1 - city.segregation): cells of one neighbourhood differ a little.
CELL_DEPRIVATION_NOISE_WIDTH = 0.2
# A cell's household density is its share of the radial profile times U(0.75, 1.25): the
# lowest factor and the width of the range; the mean factor is 1, so the profile holds on
# average.
CELL_DENSITY_NOISE_LOW = 0.75
CELL_DENSITY_NOISE_WIDTH = 0.5
# Log-affinity of a non-local language group for a neighbourhood per unit of deprivation
# above the mean, at language_deprivation_link = segregation = 1: with the default link and
# segregation (0.6 each) a neighbourhood 0.1 more deprived has 1.1 times the share
# (P10: poverty 32.4 % with non-Belgian mothers vs 5.7 %; the size is assumed).
LANGUAGE_DEPRIVATION_AFFINITY = 3.0
# The most a neighbourhood's non-local languages may hold together; the local language
# always keeps the rest (every neighbourhood has some families speaking the local language).
MAX_NON_LOCAL_SHARE = 0.95


@dataclass
class City:
    width: int
    height: int
    cell_size_m: float
    families: np.ndarray  # int32 [x, y]: households with children 0-12 per cell
    neighbourhood: np.ndarray  # int32 [x, y]
    deprivation: np.ndarray  # float64 [x, y] in [0, 1]: the observable neighbourhood score
    transit_access: np.ndarray  # float64 [x, y] in [0, 1]: 1 = frequent service at the door
    language_share: np.ndarray  # float64 [L, x, y]: home-language shares, sum to 1 per cell
    languages: tuple[str, ...]
    log_income_shift: np.ndarray  # float64 [x, y]: added to log equivalised income
    services_table: pd.DataFrame | None = None  # a planner's services, if given
    # a planner's neighbourhood labels, by index (empty: neighbourhoods are numbered)
    neighbourhood_names: tuple[str, ...] = ()

    @property
    def n_cells(self) -> int:
        return self.width * self.height

    def neighbourhood_name(self, index: int) -> str:
        """A neighbourhood as a planner names it: the cells file's label, else its number."""
        if 0 <= index < len(self.neighbourhood_names):
            return self.neighbourhood_names[index]
        return str(index)

    def mirrored(self) -> City:
        """The same city reflected left-right (a metamorphic test input)."""
        return City(
            width=self.width,
            height=self.height,
            cell_size_m=self.cell_size_m,
            families=self.families[::-1].copy(),
            neighbourhood=self.neighbourhood[::-1].copy(),
            deprivation=self.deprivation[::-1].copy(),
            transit_access=self.transit_access[::-1].copy(),
            language_share=self.language_share[:, ::-1].copy(),
            languages=self.languages,
            log_income_shift=self.log_income_shift[::-1].copy(),
            services_table=None
            if self.services_table is None
            else self.services_table.assign(x=self.width - 1 - self.services_table["x"]),
            neighbourhood_names=self.neighbourhood_names,
        )


@dataclass(frozen=True)
class WorldEstimate:
    """What a scenario's world will hold, estimated from its settings before anything is
    built: sites and candidate (family, service) pairs by source key, and the bytes."""

    families: int
    cells: int
    sites: dict[str, int]  # key path that sets the sites -> number of sites
    pairs: dict[str, int]  # the same keys -> candidate pairs (an upper-side estimate)

    @property
    def bytes(self) -> int:
        extra_pairs = max(0, sum(self.pairs.values()) - self.families * PAIRS_PER_FAMILY_MEASURED)
        return (
            self.families * BYTES_PER_FAMILY
            + self.cells * BYTES_PER_CELL
            + sum(self.sites.values()) * BYTES_PER_SERVICE
            + extra_pairs * BYTES_PER_PAIR
        )


def _reach_share(scenario: Scenario) -> float:
    """Share of a family's city that lies within its reach, on the upper side: the larger of
    the two car-ownership shares drives, everyone else takes the faster of walking and
    transit at its best (the centre's transit access); the maximum travel time is its
    root-mean-square (areas grow with its square); services are taken to be as
    concentrated as families are."""
    spec, pop, travel = scenario.city, scenario.population, scenario.travel
    minutes = pop.max_travel_minutes_median * math.exp(pop.max_travel_minutes_log_sd**2)
    walk = minutes / travel.walk_minutes_per_km
    wait = travel.transit_wait_minutes_max * (1.0 - spec.transit_access_centre)
    transit = (minutes - travel.transit_access_minutes - wait) / travel.transit_minutes_per_km
    car = (minutes - travel.car_overhead_minutes) / travel.car_minutes_per_km
    car_share = max(pop.car_share_high_income, pop.car_share_low_income)

    def disc(km: float) -> float:
        radius = max(km, walk) / travel.detour_factor * 1000.0 / spec.cell_size_m + 1.0
        return math.pi * radius * radius

    if spec.source == "synthetic":
        half = min(spec.width, spec.height) / 2.0
        area = min(math.pi * (spec.populated_radius_share * half) ** 2, spec.width * spec.height)
        # density falls linearly to 1/c of the centre's: a family sees, on average over
        # families, this multiple of the mean density; 1.25 covers the cell noise and the
        # deprived-capacity tilt of where sites go
        a, b = spec.centre_density_ratio, spec.centre_density_ratio - 1.0
        concentration = 1.25 * (a * a - 4 * a * b / 3 + b * b / 2) / (a - 2 * b / 3) ** 2
    else:
        # a planner's cells are not read yet: the whole grid, with a margin of 4 for a town
        # that fills only part of it
        area, concentration = float(spec.width * spec.height), 4.0
    area = max(area, 1.0)
    return car_share * min(1.0, concentration * disc(car) / area) + (1.0 - car_share) * min(
        1.0, concentration * disc(transit) / area
    )


def _file_rows(path: str | None) -> int:
    """Data rows of a services table, counted without parsing it (0 if it cannot be read:
    reading it later says why)."""
    if not path:
        return 0
    try:
        if Path(path).suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        newlines, last = 0, b"\n"
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                newlines, last = newlines + chunk.count(b"\n"), chunk[-1:]
        # lines less the header; a last line without its newline still counts
        return max(0, newlines + (last != b"\n") - 1)
    except (OSError, ValueError, pa.ArrowException):
        return 0


def estimate_world(scenario: Scenario) -> WorldEstimate:
    """Sites per type (from places_per_100 and site_capacity, as sim/world/services.py plans them,
    or the rows of a planner's services file) and the candidate pairs the engine will list:
    every service of a type within a family's reach (sim/world/travel.py)."""
    from sim.core.codes import SERVICE_TYPES
    from sim.scenario.schema import cents

    spec = scenario.city
    families = spec.families
    k = spec.neighbourhoods if spec.source == "synthetic" else max(1, spec.width * spec.height)
    sites: dict[str, int] = {}
    if spec.source == "file":
        if spec.services_file:
            sites["city.services_file"] = _file_rows(spec.services_file)
    else:
        kinds = [(f"provision.{t}", scenario.provision[t], t) for t in SERVICE_TYPES]
        kinds.append(("market", scenario.market, "childcare"))
        for key, kind, type_name in kinds:
            places = kind.places_per_100 * planned_share(type_name, scenario) * families / 100.0
            if key == "provision.childcare" and scenario.budget.target_outlay_eur_week:
                # the places a budget buys: at most the target over one place's weekly cost
                per_place = cents(kind.unit_cost_eur_week) + (
                    cents(kind.means_test_admin_eur_place_week)
                    if kind.eligibility == "means_tested"
                    else 0
                )
                if per_place > 0:
                    places = scenario.budget.target_outlay_eur_week * 100.0 / per_place
            # each neighbourhood's remainder makes at most one smaller site more
            count = math.ceil(places / kind.site_capacity) + min(k, math.ceil(places))
            sites[f"{key}.places_per_100"] = count
    share = _reach_share(scenario)
    pairs = {key: int(math.ceil(families * count * share)) for key, count in sites.items()}
    return WorldEstimate(families, spec.width * spec.height, sites, pairs)


def check_memory(scenario: Scenario, origin: str, available_bytes: int | None = None) -> None:
    """Refuse a world whose estimated footprint exceeds the memory this machine has, or whose
    sites are too many to place: families and cells, service sites and candidate pairs."""
    city = scenario.city
    estimate = estimate_world(scenario)
    for key, count in estimate.sites.items():
        if count > MAX_SITES:
            raise ScenarioError(origin, key, _sites_message(scenario, key, count, "more than"))
    if available_bytes is None:
        available_bytes = _available_memory()
    budget = 0.8 * available_bytes
    need = estimate.bytes
    if need <= budget:
        return
    gib = (
        f"{need / 2**30:.1f} GiB, more than 80 % of the {available_bytes / 2**30:.1f} GiB available"
    )
    heavy = _heaviest_services(scenario, estimate)
    if heavy is not None:
        raise ScenarioError(
            origin,
            heavy,
            _sites_message(scenario, heavy, estimate.sites[heavy], "and")
            + f" about {sum(estimate.pairs.values()):,} candidate (family, service) pairs need "
            f"about {gib}; allowed on this machine: fewer places or larger sites",
        )
    room = _families_that_fit(scenario, budget)
    allowed = (
        f"at most about {room:,} families on this grid"
        if room >= 10
        else "a smaller grid (city.width x city.height)"
    )
    raise ScenarioError(
        origin,
        "city.families",
        f"value {city.families} (grid {city.width}x{city.height}) needs about {gib}; "
        f"allowed on this machine: {allowed}",
    )


def _sites_message(scenario: Scenario, key: str, count: int, joiner: str) -> str:
    if key == "city.services_file":
        return f"{count:,} service rows {joiner}"
    table = key.rsplit(".", 1)[0]
    kind = scenario.market if table == "market" else scenario.provision[table.split(".")[1]]
    text = (
        f"value {_shown(kind.places_per_100)} with {table}.site_capacity = {kind.site_capacity} "
        f"makes about {count:,} sites"
    )
    if joiner == "more than":
        return f"{text}, more than the {MAX_SITES:,} that can be placed before a run; allowed: fewer places (places_per_100) or larger sites (site_capacity)"
    return f"{text}; with them"


def _heaviest_services(scenario: Scenario, estimate: WorldEstimate) -> str | None:
    """The key whose sites make the world too big, or None when it is the families: sites per
    family far above (4x) those of the default provision mean the provision is to blame."""
    if not estimate.sites:
        return None
    default = estimate_world(
        scenario.model_copy(
            update={
                "provision": Scenario().provision,
                "market": Scenario().market,
                "budget": Scenario().budget,
            }
        )
    )
    usual = sum(default.sites.values())
    key, count = max(estimate.sites.items(), key=lambda item: item[1])
    return key if sum(estimate.sites.values()) > 4 * max(usual, 1) else None


def _families_that_fit(scenario: Scenario, budget: float) -> int:
    """The largest family count on this grid whose estimate fits (the estimate grows with
    families), found by bisection."""
    low, high = 0, scenario.city.families
    while high - low > max(1, low // 100):
        mid = (low + high) // 2
        city = scenario.city.model_copy(update={"families": max(mid, 1)})
        if estimate_world(scenario.model_copy(update={"city": city})).bytes <= budget:
            low = mid
        else:
            high = mid
    return low


def _available_memory() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def build_city(scenario: Scenario, origin: str = "<scenario>") -> City:
    if scenario.city.source == "file":
        return load_city(scenario, origin)
    return synthetic_city(scenario)


def synthetic_city(scenario: Scenario) -> City:
    """A circular city: dense centre, neighbourhoods as Voronoi cells, segregated poverty
    and language groups, transit that thins out towards the periphery."""
    spec = scenario.city
    seed = spec.seed
    width, height = spec.width, spec.height
    xs, ys = np.meshgrid(np.arange(width), np.arange(height), indexing="ij")
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    half = min(width, height) / 2.0
    radius = np.hypot(xs - cx, ys - cy) / half  # 0 at the centre, 1 at the inscribed edge
    cell_ids = (xs * height + ys).ravel()

    # Neighbourhoods: seed points spread over the populated disc (keyed draws per point).
    k = spec.neighbourhoods
    idx = np.arange(k)
    r_seed = spec.populated_radius_share * np.sqrt(rng.uniform(seed, "nbhd_r", 0, idx))
    a_seed = 2 * math.pi * rng.uniform(seed, "nbhd_a", 0, idx)
    seeds_xy = np.column_stack(
        [cx + r_seed * half * np.cos(a_seed), cy + r_seed * half * np.sin(a_seed)]
    )
    _, nearest = cKDTree(seeds_xy).query(np.column_stack([xs.ravel(), ys.ravel()]))
    neighbourhood = nearest.reshape(width, height).astype(np.int32)

    # Deprivation: a centre-periphery gradient plus a neighbourhood effect whose weight is
    # the segregation setting (EU WG ECEC: poverty concentrates in some neighbourhoods); the
    # 1e-9 keeps a populated radius of 0 from dividing by zero.
    gradient_n = spec.deprivation_centre + (
        spec.deprivation_periphery - spec.deprivation_centre
    ) * np.clip(r_seed / max(spec.populated_radius_share, 1e-9), 0, 1)
    nbhd_effect = (
        rng.normal(seed, "nbhd_deprivation", 0, idx)
        * NEIGHBOURHOOD_DEPRIVATION_SD
        * spec.segregation
    )
    dep_n = np.clip(gradient_n + nbhd_effect, 0.0, 1.0)
    cell_noise = (
        rng.uniform(seed, "cell_deprivation", 0, cell_ids).reshape(width, height) - 0.5
    ) * CELL_DEPRIVATION_NOISE_WIDTH
    deprivation = np.clip(dep_n[neighbourhood] + (1.0 - spec.segregation) * cell_noise, 0.0, 1.0)

    # Households: density falls linearly from the centre to the populated edge.
    populated = radius <= spec.populated_radius_share
    density = np.where(
        populated,
        1.0 + (spec.centre_density_ratio - 1.0) * (1.0 - radius / spec.populated_radius_share),
        0.0,
    )
    density *= CELL_DENSITY_NOISE_LOW + CELL_DENSITY_NOISE_WIDTH * rng.uniform(
        seed, "cell_density", 0, cell_ids
    ).reshape(width, height)
    families = apportion(density.ravel(), spec.families).reshape(width, height)

    transit = spec.transit_access_centre + (
        spec.transit_access_periphery - spec.transit_access_centre
    ) * np.clip(radius, 0, 1)
    transit = np.clip(transit, 0.0, 1.0)

    languages = tuple(spec.languages)
    language_share = _language_mix(spec, seed, languages, deprivation, neighbourhood, families)

    pop = scenario.population
    shift = -pop.income_deprivation_effect * (deprivation - _weighted_mean(deprivation, families))
    return City(
        width=width,
        height=height,
        cell_size_m=spec.cell_size_m,
        families=families.astype(np.int32),
        neighbourhood=neighbourhood,
        deprivation=deprivation,
        transit_access=transit,
        language_share=language_share,
        languages=languages,
        log_income_shift=shift,
    )


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    total = float(weights.sum())
    return float((values * weights).sum() / total) if total > 0 else 0.0


def _language_mix(spec, seed, languages, deprivation, neighbourhood, families) -> np.ndarray:
    """Per-cell language shares: non-local groups concentrate in deprived neighbourhoods
    (link), each group in neighbourhoods of its own (segregation); city totals match spec."""
    n_lang = len(languages)
    k = int(neighbourhood.max()) + 1
    fam_n = np.bincount(neighbourhood.ravel(), weights=families.ravel(), minlength=k)
    dep_n = np.bincount(
        neighbourhood.ravel(), weights=(deprivation * families).ravel(), minlength=k
    )
    dep_n = np.divide(dep_n, fam_n, out=np.zeros(k), where=fam_n > 0)
    mean_dep = float((dep_n * fam_n).sum() / max(fam_n.sum(), 1))
    shares = np.zeros((n_lang, k))
    for li, lang in enumerate(languages):
        target = spec.languages[lang]
        if lang == "local":
            continue
        affinity = np.exp(
            LANGUAGE_DEPRIVATION_AFFINITY
            * spec.language_deprivation_link
            * spec.segregation
            * (dep_n - mean_dep)
            + spec.segregation * rng.normal(seed, f"lang_affinity_{lang}", 0, np.arange(k))
        )
        # the 1e-12 keeps a city without families from dividing by zero
        shares[li] = (
            target * affinity / max(float((affinity * fam_n).sum() / max(fam_n.sum(), 1)), 1e-12)
        )
    local = languages.index("local")
    nonlocal_total = shares.sum(axis=0)
    over = nonlocal_total > MAX_NON_LOCAL_SHARE
    shares[:, over] *= MAX_NON_LOCAL_SHARE / nonlocal_total[over]
    shares[local] = 1.0 - shares.sum(axis=0)
    return shares[:, neighbourhood]


# ---------------------------------------------------------------------------------------
# a planner's own city
#
# Every check below runs before anything is built or written, and every failure is one
# ScenarioError naming the file, the scenario key that points at it, the column, the data
# row (1 = the first row after the header) and what is allowed.

CELL_COLUMNS_REQUIRED = ("x", "y", "families", "arope_share")
CELL_COLUMNS_OPTIONAL = ("deprivation", "transit_access", "neighbourhood")
SERVICE_COLUMNS_REQUIRED = ("x", "y", "type", "capacity")
SERVICE_COLUMNS_OPTIONAL = ("fee_eur_week", "languages", "market")
MAX_FAMILIES_PER_CELL = 1_000_000
MAX_SERVICE_CAPACITY = 1_000_000
MAX_FEE_EUR_WEEK = 1e10
SHARE_ALLOWED = "numbers from 0 to 1"
# How far a row's language shares may miss 1 (rounding in the file): the tolerance the
# schema allows city.languages.
SHARE_SUM_TOLERANCE = 1e-6
# Transit access of a cell the table gives none for: halfway between none and frequent
# service at the door (assumption; ODD §6.2).
DEFAULT_TRANSIT_ACCESS = 0.5
# Without a neighbourhood column, neighbourhoods are square blocks of this many cells a side
# (at the default 125 m cells, 1.25 km: about a district).
NEIGHBOURHOOD_BLOCK_CELLS = 10
# An AROPE share of 0 or 1 would put the poverty line at an infinite distance from the cell's
# median (the normal quantile of 0 or 1); within half a percentage point of either end a
# cell is taken to be at that limit.
AROPE_SHARE_CLIP = (0.005, 0.995)
TRUE_WORDS = frozenset({"true", "yes", "1", "1.0"})
FALSE_WORDS = frozenset({"false", "no", "0", "0.0"})


def language_column(name: str) -> str:
    """The cells-file column holding a language's share: lang_<name>, or the name itself
    when it already starts with 'lang_' (the default city's lang_a, lang_b, ...)."""
    return name if name.startswith("lang_") else f"lang_{name}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _shown(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_table(path: str, origin: str, key: str) -> pd.DataFrame:
    p = Path(path)
    what = missing_file_problem(p)
    if what is not None:
        raise ScenarioError(
            origin,
            key,
            f"file {path!r} {what} (a path in a scenario is relative to the file that names it)",
        )
    parquet = p.suffix.lower() in (".parquet", ".pq")
    kind = _not_a_table(p, parquet)
    if kind is not None:
        # say what the file is not; its contents are not the user's table, never print them
        raise ScenarioError(path, key, f"{kind}; allowed: {TABLE_FORMATS}")
    try:
        if parquet:
            table = pd.read_parquet(p)
        else:
            table = pd.read_csv(p, skipinitialspace=True)
    except (ValueError, OSError, NotImplementedError, pa.ArrowException) as exc:
        # pandas' ParserError and EmptyDataError and pyarrow's ArrowInvalid are ValueErrors
        raise ScenarioError(
            path,
            key,
            f"cannot read the table ({_one_line(exc)}); allowed: {TABLE_FORMATS}",
        ) from None
    table.columns = [str(c).strip() for c in table.columns]
    return table.reset_index(drop=True)


TABLE_FORMATS = "a CSV file with a header row (UTF-8, comma-separated) or a Parquet file (.parquet)"
# A column name as a table has it; a header that is not made of such names is not a header.
_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .-]{0,63}\Z")


def _not_a_table(path: Path, parquet: bool) -> str | None:
    """What a file plainly is not, judged from its first bytes: a Parquet file starts with
    PAR1; a CSV file is UTF-8 text without NUL bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(65_536)
    except OSError:
        return None  # reading it properly reports why
    if parquet:
        return None if head.startswith(b"PAR1") else "not a Parquet file (no PAR1 header)"
    if head.startswith(b"PAR1"):
        return "a Parquet file named like a CSV file (rename it to .parquet)"
    text_error = b"\x00" in head
    if not text_error:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            text_error = True
    return "not a CSV file (binary or not UTF-8 text)" if text_error else None


def _check_columns(
    table: pd.DataFrame,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    path: str,
    key: str,
    note: str = "",
) -> None:
    found = list(table.columns)
    allowed = f"required: {', '.join(required)}; optional: {', '.join(optional)}"
    if not all(_COLUMN_NAME.match(c) for c in found):
        # e.g. a TOML or text file: its first line is not the user's table, do not echo it
        raise ScenarioError(
            path,
            key,
            f"the first line is not a header of comma-separated column names, so this is "
            f"not a CSV table; allowed: {TABLE_FORMATS} with columns {allowed}{note}",
        )
    missing = [c for c in required if c not in found]
    if missing:
        raise ScenarioError(
            path,
            key,
            f"missing column(s) {', '.join(missing)}; {allowed}{note}; found: {', '.join(found)}",
        )
    for column in found:
        if column not in required and column not in optional:
            guess = difflib.get_close_matches(column, [*required, *optional], n=1)
            hint = f"did you mean {guess[0]!r}? " if guess else ""
            raise ScenarioError(path, key, f"unknown column {column!r}; {hint}{allowed}{note}")
    if len(set(found)) != len(found):
        raise ScenarioError(path, key, f"a column appears twice; found: {', '.join(found)}")
    if table.empty:
        raise ScenarioError(path, key, "the table has no data rows; allowed: at least one row")


def _no_missing(table: pd.DataFrame, path: str, key: str) -> None:
    for column in table.columns:
        missing = table[column].isna().to_numpy()
        if missing.any():
            row = int(np.flatnonzero(missing)[0]) + 1
            raise ScenarioError(
                path,
                key,
                f"column {column!r}, data row {row}: value is empty or NaN; allowed: a value "
                "in every row",
            )


def _numbers(
    table: pd.DataFrame,
    column: str,
    path: str,
    key: str,
    low: float,
    high: float,
    allowed: str,
    integer: bool = False,
) -> np.ndarray:
    """A numeric column as float64, every value finite and within [low, high] (and whole if
    integer); otherwise an error naming the first offending row."""
    series = table[column]
    if pd.api.types.is_bool_dtype(series):
        converted = pd.Series(np.nan, index=series.index)
    else:
        converted = pd.to_numeric(series, errors="coerce")
    values = converted.to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values < low) | (values > high)
        if integer:
            bad |= values != np.floor(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ScenarioError(
            path,
            key,
            f"column {column!r}, data row {row + 1}: value {_shown(series.iloc[row])} is not "
            f"allowed; allowed: {allowed}",
        )
    return values


def _grid_axis(
    table: pd.DataFrame, axis: str, limit: int, width: int, height: int, path: str, key: str
) -> np.ndarray:
    allowed = (
        f"whole numbers from 0 to {limit - 1} (the grid is {width}x{height} cells, "
        "city.width x city.height)"
    )
    return _numbers(table, axis, path, key, 0, limit - 1, allowed, integer=True).astype(np.int64)


@dataclass(frozen=True)
class _CellRows:
    """The checked rows of a cells table: one entry per data row."""

    x: np.ndarray  # int64
    y: np.ndarray  # int64
    families: np.ndarray  # int64
    arope_share: np.ndarray  # float64
    language_shares: np.ndarray  # float64 [L, rows]


def load_city(scenario: Scenario, origin: str) -> City:
    """Cells (x, y, families, arope_share and one share column per language in
    city.languages, see language_column; optional deprivation, transit_access,
    neighbourhood) and optionally services (x, y, type, capacity; optional fee_eur_week,
    languages as a ';'-separated list, market) from CSV or Parquet.

    The cells file decides the city's size: city.families must equal its family total."""
    spec = scenario.city
    path = spec.cells_file or ""
    width, height = spec.width, spec.height
    languages = tuple(spec.languages)
    lang_cols = _language_columns(languages, origin)
    cells = _read_cells(path, origin, lang_cols)
    rows = _cell_rows(cells, lang_cols, width, height, path)
    _check_cell_rows(rows, spec.families, height, origin, path)
    families = _family_grid(rows, width, height)
    arope = _on_grid(rows, rows.arope_share, width, height)
    deprivation = _deprivation_grid(cells, rows, width, height, path)
    transit = _transit_grid(cells, rows, width, height, path)
    neighbourhood, names = _neighbourhood_grid(cells, rows, width, height)
    language_share = _language_grid(rows, languages, width, height)
    shift = _poverty_income_shift(arope, scenario.population)
    services = None
    if spec.services_file:
        services = load_services(spec.services_file, origin, languages, width, height)
    return City(
        width=width,
        height=height,
        cell_size_m=spec.cell_size_m,
        families=families,
        neighbourhood=neighbourhood,
        deprivation=deprivation,
        transit_access=transit,
        language_share=language_share,
        languages=languages,
        log_income_shift=shift,
        services_table=services,
        neighbourhood_names=names,
    )


def _language_columns(languages: tuple[str, ...], origin: str) -> tuple[str, ...]:
    """The cells-file column of each language of city.languages; two languages may not
    share one."""
    lang_cols = tuple(language_column(name) for name in languages)
    if len(set(lang_cols)) != len(lang_cols):
        raise ScenarioError(
            origin,
            "city.languages",
            f"names {list(languages)} give the same cells-file column twice ({list(lang_cols)})",
        )
    return lang_cols


def _read_cells(path: str, origin: str, lang_cols: tuple[str, ...]) -> pd.DataFrame:
    """The cells table with its columns checked and no value missing."""
    key = "city.cells_file"
    cells = _read_table(path, origin, key)
    _check_columns(
        cells,
        CELL_COLUMNS_REQUIRED + lang_cols,
        CELL_COLUMNS_OPTIONAL,
        path,
        key,
        note=" (one lang_ column per language in city.languages)",
    )
    _no_missing(cells, path, key)
    return cells


def _cell_rows(
    cells: pd.DataFrame, lang_cols: tuple[str, ...], width: int, height: int, path: str
) -> _CellRows:
    """The required columns, each value within its range; the language shares of a row
    must sum to 1."""
    key = "city.cells_file"
    x = _grid_axis(cells, "x", width, width, height, path, key)
    y = _grid_axis(cells, "y", height, width, height, path, key)
    counts = _numbers(
        cells,
        "families",
        path,
        key,
        0,
        MAX_FAMILIES_PER_CELL,
        f"whole numbers from 0 to {MAX_FAMILIES_PER_CELL:,}",
        integer=True,
    ).astype(np.int64)
    arope_values = _numbers(cells, "arope_share", path, key, 0, 1, SHARE_ALLOWED)
    shares = np.vstack([_numbers(cells, c, path, key, 0, 1, SHARE_ALLOWED) for c in lang_cols])
    sums = shares.sum(axis=0)
    off = np.abs(sums - 1.0) > SHARE_SUM_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise ScenarioError(
            path,
            key,
            f"data row {row + 1}: language shares ({' + '.join(lang_cols)}) sum to "
            f"{sums[row]:.6g}; allowed: shares that sum to 1 in every row",
        )
    return _CellRows(x=x, y=y, families=counts, arope_share=arope_values, language_shares=shares)


def _check_cell_rows(rows: _CellRows, families: int, height: int, origin: str, path: str) -> None:
    """One row per cell, and the family total is the scenario's city.families."""
    key = "city.cells_file"
    cell_id = rows.x * height + rows.y
    repeated = pd.Series(cell_id).duplicated().to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        raise ScenarioError(
            path,
            key,
            f"data row {row + 1}: cell x={rows.x[row]}, y={rows.y[row]} appears twice; allowed: "
            "one row per cell",
        )
    total = int(rows.families.sum())
    if total < 1:
        raise ScenarioError(path, key, "no families in any cell; allowed: a positive total")
    if total != families:
        raise ScenarioError(
            origin,
            "city.families",
            f"value {families} does not match the {total:,} families in {path}; allowed: "
            f"{total} (a planner's city takes its size from the cells file)",
        )


def _on_grid(rows: _CellRows, values: np.ndarray, width: int, height: int) -> np.ndarray:
    """Per-row values as a float64 [x, y] grid; cells not listed are 0."""
    grid = np.zeros((width, height))
    grid[rows.x, rows.y] = values
    return grid


def _family_grid(rows: _CellRows, width: int, height: int) -> np.ndarray:
    families = np.zeros((width, height), dtype=np.int32)
    families[rows.x, rows.y] = rows.families
    return families


def _deprivation_grid(
    cells: pd.DataFrame, rows: _CellRows, width: int, height: int, path: str
) -> np.ndarray:
    """The optional deprivation column; without it, the AROPE share is the score."""
    values = (
        _numbers(cells, "deprivation", path, "city.cells_file", 0, 1, SHARE_ALLOWED)
        if "deprivation" in cells
        else rows.arope_share
    )
    return _on_grid(rows, values, width, height)


def _transit_grid(
    cells: pd.DataFrame, rows: _CellRows, width: int, height: int, path: str
) -> np.ndarray:
    """The optional transit_access column; cells without a value get the default."""
    transit = np.full((width, height), DEFAULT_TRANSIT_ACCESS)
    if "transit_access" in cells:
        transit[rows.x, rows.y] = _numbers(
            cells, "transit_access", path, "city.cells_file", 0, 1, SHARE_ALLOWED
        )
    return transit


def _neighbourhood_grid(
    cells: pd.DataFrame, rows: _CellRows, width: int, height: int
) -> tuple[np.ndarray, tuple[str, ...]]:
    """The optional neighbourhood labels (numbers or names, numbered in order of first
    appearance) and the labels by number; without them, square blocks of
    NEIGHBOURHOOD_BLOCK_CELLS cells, numbered."""
    if "neighbourhood" in cells:
        codes, labels = pd.factorize(cells["neighbourhood"].astype(str).str.strip())
        neighbourhood = np.zeros((width, height), dtype=np.int32)
        neighbourhood[rows.x, rows.y] = codes
        return neighbourhood, tuple(str(label) for label in labels)
    block = NEIGHBOURHOOD_BLOCK_CELLS
    grid = (
        (np.arange(width)[:, None] // block) * ((height + block - 1) // block)
        + np.arange(height)[None, :] // block
    ).astype(np.int32)
    return grid, ()


def _language_grid(
    rows: _CellRows, languages: tuple[str, ...], width: int, height: int
) -> np.ndarray:
    """[L, x, y] language shares; a cell not listed speaks only the local language."""
    language_share = np.zeros((len(languages), width, height))
    language_share[languages.index("local")] = 1.0
    language_share[:, rows.x, rows.y] = rows.language_shares
    return language_share


def _poverty_income_shift(arope: np.ndarray, pop: PopulationSpec) -> np.ndarray:
    """Log-income shift that makes the share of families below the poverty line equal the
    cell's AROPE share (low work intensity adds a little on top; documented in ODD)."""
    target = np.clip(arope, *AROPE_SHARE_CLIP)
    return np.log(
        pop.poverty_line_eur_year / pop.median_equiv_income_eur_year
    ) - pop.income_log_sd * ndtri(target)


def _flags(series: pd.Series, path: str, key: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=bool)
    words = series.astype(str).str.strip().str.lower()
    known = words.isin(TRUE_WORDS | FALSE_WORDS).to_numpy()
    if not known.all():
        row = int(np.flatnonzero(~known)[0])
        raise ScenarioError(
            path,
            key,
            f"column {series.name!r}, data row {row + 1}: value {_shown(series.iloc[row])} is "
            "not allowed; allowed: true or false",
        )
    return words.isin(TRUE_WORDS).to_numpy()


def load_services(
    path: str, origin: str, languages: tuple[str, ...], width: int, height: int
) -> pd.DataFrame:
    """A planner's services table, checked and normalised: x, y, capacity as integers, type
    as one of SERVICE_TYPES, optional fee_eur_week (float), languages (';'-separated names
    from city.languages; empty = local only) and market (bool, childcare only)."""
    from sim.core.codes import SERVICE_TYPES

    key = "city.services_file"
    table = _read_table(path, origin, key)
    _check_columns(table, SERVICE_COLUMNS_REQUIRED, SERVICE_COLUMNS_OPTIONAL, path, key)
    if "languages" in table:
        table["languages"] = table["languages"].astype(object).where(table["languages"].notna(), "")
    _no_missing(table, path, key)
    out = pd.DataFrame(
        {
            "x": _grid_axis(table, "x", width, width, height, path, key),
            "y": _grid_axis(table, "y", height, width, height, path, key),
        }
    )
    kinds = table["type"].astype(str).str.strip()
    unknown = ~kinds.isin(SERVICE_TYPES).to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        guess = difflib.get_close_matches(kinds.iloc[row], SERVICE_TYPES, n=1)
        hint = f"did you mean {guess[0]!r}? " if guess else ""
        raise ScenarioError(
            path,
            key,
            f"column 'type', data row {row + 1}: value {_shown(table['type'].iloc[row])} is not "
            f"allowed; {hint}allowed: {', '.join(SERVICE_TYPES)}",
        )
    out["type"] = kinds.to_numpy(dtype=object)
    out["capacity"] = _numbers(
        table,
        "capacity",
        path,
        key,
        0,
        MAX_SERVICE_CAPACITY,
        f"whole numbers from 0 to {MAX_SERVICE_CAPACITY:,} (places or concurrent users)",
        integer=True,
    ).astype(np.int64)
    if "fee_eur_week" in table:
        out["fee_eur_week"] = _numbers(
            table, "fee_eur_week", path, key, 0, MAX_FEE_EUR_WEEK, "euro a week, 0 or more"
        )
    if "languages" in table:
        normalised = []
        for row, entry in enumerate(table["languages"].astype(str)):
            names = [n.strip() for n in entry.split(";") if n.strip()]
            for name in names:
                if name not in languages:
                    guess = difflib.get_close_matches(name, languages, n=1)
                    hint = f"did you mean {guess[0]!r}? " if guess else ""
                    raise ScenarioError(
                        path,
                        key,
                        f"column 'languages', data row {row + 1}: language {name!r} is not in "
                        f"city.languages; {hint}allowed: names from {', '.join(languages)} "
                        "separated by ';' (empty = local only)",
                    )
            normalised.append(";".join(names) if names else "local")
        out["languages"] = normalised
    if "market" in table:
        market = _flags(table["market"], path, key)
        wrong = market & (out["type"] != "childcare").to_numpy()
        if wrong.any():
            row = int(np.flatnonzero(wrong)[0])
            raise ScenarioError(
                path,
                key,
                f"column 'market', data row {row + 1}: a {out['type'].iloc[row]} service cannot "
                "be market provision; allowed: market = true only for childcare",
            )
        out["market"] = market
    return out
