"""The municipal grid: a seeded synthetic city, or a planner's own cells from CSV/Parquet.

Arrays are indexed [x, y] like Mesa's grid coordinates. A City holds only what is known
about places (households, neighbourhood, deprivation, transit, language mix, the log-income
shift that produces the neighbourhood's poverty rate); families are drawn in population.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from scipy.special import ndtri

from sim import rng
from sim.errors import ScenarioError
from sim.scenario import Scenario

# Bytes a family costs in the fast engine (columns, candidate lists, ties); used to refuse a
# city too large for memory before building it. Measured on the default city, rounded up.
BYTES_PER_FAMILY = 1_400
BYTES_PER_CELL = 120


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

    @property
    def n_cells(self) -> int:
        return self.width * self.height

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
        )


def check_memory(scenario: Scenario, origin: str, available_bytes: int | None = None) -> None:
    """Refuse a city whose estimated footprint exceeds the memory this machine has."""
    city = scenario.city
    need = city.families * BYTES_PER_FAMILY + city.width * city.height * BYTES_PER_CELL
    if available_bytes is None:
        available_bytes = _available_memory()
    if need > 0.8 * available_bytes:
        raise ScenarioError(
            origin,
            "city.families",
            f"value {city.families} (grid {city.width}x{city.height}) needs about "
            f"{need / 2**30:.1f} GiB, more than 80 % of the {available_bytes / 2**30:.1f} GiB "
            "available; use fewer families or a smaller grid",
        )


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
    seeds_xy = np.column_stack([cx + r_seed * half * np.cos(a_seed), cy + r_seed * half * np.sin(a_seed)])
    _, nearest = cKDTree(seeds_xy).query(np.column_stack([xs.ravel(), ys.ravel()]))
    neighbourhood = nearest.reshape(width, height).astype(np.int32)

    # Deprivation: a centre-periphery gradient plus a neighbourhood effect whose weight is
    # the segregation setting (EU WG ECEC: poverty concentrates in some neighbourhoods).
    gradient_n = spec.deprivation_centre + (spec.deprivation_periphery - spec.deprivation_centre) * np.clip(
        r_seed / max(spec.populated_radius_share, 1e-9), 0, 1
    )
    nbhd_effect = rng.normal(seed, "nbhd_deprivation", 0, idx) * 0.25 * spec.segregation
    dep_n = np.clip(gradient_n + nbhd_effect, 0.0, 1.0)
    cell_noise = (rng.uniform(seed, "cell_deprivation", 0, cell_ids).reshape(width, height) - 0.5) * 0.2
    deprivation = np.clip(dep_n[neighbourhood] + (1.0 - spec.segregation) * cell_noise, 0.0, 1.0)

    # Households: density falls linearly from the centre to the populated edge.
    populated = radius <= spec.populated_radius_share
    density = np.where(
        populated,
        1.0 + (spec.centre_density_ratio - 1.0) * (1.0 - radius / spec.populated_radius_share),
        0.0,
    )
    density *= 0.75 + 0.5 * rng.uniform(seed, "cell_density", 0, cell_ids).reshape(width, height)
    families = _apportion(density.ravel(), spec.families).reshape(width, height)

    transit = spec.transit_access_centre + (spec.transit_access_periphery - spec.transit_access_centre) * np.clip(
        radius, 0, 1
    )
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


def _apportion(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer counts proportional to weights summing exactly to total (largest remainder,
    ties by index)."""
    if weights.sum() <= 0:
        raise ValueError("no populated cells")
    exact = weights / weights.sum() * total
    base = np.floor(exact).astype(np.int64)
    remainder = exact - base
    short = total - int(base.sum())
    order = np.lexsort((np.arange(len(weights)), -remainder))
    base[order[:short]] += 1
    return base


def _language_mix(spec, seed, languages, deprivation, neighbourhood, families) -> np.ndarray:
    """Per-cell language shares: non-local groups concentrate in deprived neighbourhoods
    (link), each group in neighbourhoods of its own (segregation); city totals match spec."""
    n_lang = len(languages)
    k = int(neighbourhood.max()) + 1
    fam_n = np.bincount(neighbourhood.ravel(), weights=families.ravel(), minlength=k)
    dep_n = np.bincount(neighbourhood.ravel(), weights=(deprivation * families).ravel(), minlength=k)
    dep_n = np.divide(dep_n, fam_n, out=np.zeros(k), where=fam_n > 0)
    mean_dep = float((dep_n * fam_n).sum() / max(fam_n.sum(), 1))
    shares = np.zeros((n_lang, k))
    for li, lang in enumerate(languages):
        target = spec.languages[lang]
        if lang == "local":
            continue
        affinity = np.exp(
            3.0 * spec.language_deprivation_link * spec.segregation * (dep_n - mean_dep)
            + spec.segregation * rng.normal(seed, f"lang_affinity_{lang}", 0, np.arange(k))
        )
        shares[li] = target * affinity / max(float((affinity * fam_n).sum() / max(fam_n.sum(), 1)), 1e-12)
    local = languages.index("local")
    nonlocal_total = shares.sum(axis=0)
    over = nonlocal_total > 0.95
    shares[:, over] *= 0.95 / nonlocal_total[over]
    shares[local] = 1.0 - shares.sum(axis=0)
    return shares[:, neighbourhood]


# ---------------------------------------------------------------------------------------
# a planner's own city

CELL_COLUMNS_REQUIRED = ("x", "y", "families", "arope_share")
SERVICE_COLUMNS_REQUIRED = ("x", "y", "type", "capacity")


def _read_table(path: str, origin: str, key: str) -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise ScenarioError(origin, key, f"file {path!r} not found")
    try:
        if p.suffix.lower() == ".parquet":
            return pd.read_parquet(p)
        return pd.read_csv(p)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise ScenarioError(path, key, f"cannot read table: {exc}") from None


def _require(df: pd.DataFrame, columns, path: str, key: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ScenarioError(
            path, key, f"missing column(s) {missing}; required: {list(columns)}, found {list(df.columns)}"
        )
    for column in df.columns:
        if df[column].isna().any():
            row = int(np.flatnonzero(df[column].isna().to_numpy())[0])
            raise ScenarioError(path, key, f"column {column!r} has a missing/NaN value in data row {row + 1}")


def load_city(scenario: Scenario, origin: str) -> City:
    """Cells (x, y, families, arope_share, lang_<name>...; optional deprivation, transit_access,
    neighbourhood) and optionally services (x, y, type, capacity; optional fee_eur_week,
    languages, market, extended_hours) from CSV or Parquet."""
    spec = scenario.city
    path = spec.cells_file or ""
    cells = _read_table(path, origin, "city.cells_file")
    _require(cells, CELL_COLUMNS_REQUIRED, path, "city.cells_file")
    width, height = spec.width, spec.height
    for axis, limit in (("x", width), ("y", height)):
        values = cells[axis].to_numpy()
        bad = (values < 0) | (values >= limit) | (values != np.floor(values))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ScenarioError(
                path,
                "city.cells_file",
                f"cell {axis}={values[row]!r} in data row {row + 1} is off the {width}x{height} grid "
                f"(allowed 0..{limit - 1}, integers)",
            )
    if (cells["families"] < 0).any():
        raise ScenarioError(path, "city.cells_file", "column 'families' must be >= 0")
    if ((cells["arope_share"] < 0) | (cells["arope_share"] > 1)).any():
        raise ScenarioError(path, "city.cells_file", "column 'arope_share' must lie in [0, 1]")
    languages = tuple(spec.languages)
    lang_cols = [f"lang_{name}" for name in languages]
    _require(cells, lang_cols, path, "city.cells_file")
    extra_langs = [c for c in cells.columns if c.startswith("lang_") and c not in lang_cols]
    if extra_langs:
        raise ScenarioError(path, "city.cells_file", f"language columns {extra_langs} are not in city.languages")
    lang_sum = cells[lang_cols].sum(axis=1).to_numpy()
    bad = np.abs(lang_sum - 1.0) > 1e-6
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ScenarioError(
            path, "city.cells_file", f"language shares in data row {row + 1} sum to {lang_sum[row]:.6g}, must sum to 1"
        )
    if cells.duplicated(["x", "y"]).any():
        raise ScenarioError(path, "city.cells_file", "duplicate (x, y) cells")

    x = cells["x"].to_numpy(dtype=np.int64)
    y = cells["y"].to_numpy(dtype=np.int64)
    families = np.zeros((width, height), dtype=np.int32)
    families[x, y] = cells["families"].to_numpy(dtype=np.int64)
    if families.sum() < 1:
        raise ScenarioError(path, "city.cells_file", "no families in any cell")
    arope = np.zeros((width, height))
    arope[x, y] = cells["arope_share"].to_numpy(dtype=float)
    deprivation = np.zeros((width, height))
    deprivation[x, y] = (
        cells["deprivation"].to_numpy(dtype=float) if "deprivation" in cells else cells["arope_share"].to_numpy(dtype=float)
    )
    transit = np.full((width, height), 0.5)
    if "transit_access" in cells:
        transit[x, y] = cells["transit_access"].to_numpy(dtype=float)
    neighbourhood = np.zeros((width, height), dtype=np.int32)
    if "neighbourhood" in cells:
        neighbourhood[x, y] = cells["neighbourhood"].to_numpy(dtype=np.int64)
    else:
        neighbourhood = ((np.arange(width)[:, None] // 10) * ((height + 9) // 10) + np.arange(height)[None, :] // 10).astype(np.int32)
    language_share = np.zeros((len(languages), width, height))
    language_share[languages.index("local")] = 1.0
    for li, column in enumerate(lang_cols):
        language_share[li, x, y] = cells[column].to_numpy(dtype=float)

    # Log-income shift that makes the share of families below the poverty line equal the
    # cell's AROPE share (low work intensity adds a little on top; documented in ODD).
    pop = scenario.population
    target = np.clip(arope, 0.005, 0.995)
    shift = np.log(pop.poverty_line_eur_year / pop.median_equiv_income_eur_year) - pop.income_log_sd * ndtri(target)

    services = None
    if spec.services_file:
        services = _load_services(spec.services_file, width, height)
    return City(
        width=width,
        height=height,
        cell_size_m=spec.cell_size_m,
        families=families,
        neighbourhood=neighbourhood,
        deprivation=np.clip(deprivation, 0, 1),
        transit_access=np.clip(transit, 0, 1),
        language_share=language_share,
        languages=languages,
        log_income_shift=shift,
        services_table=services,
    )


def _load_services(path: str, width: int, height: int) -> pd.DataFrame:
    from sim.scenario import SERVICE_TYPES

    table = _read_table(path, path, "city.services_file")
    _require(table, SERVICE_COLUMNS_REQUIRED, path, "city.services_file")
    for axis, limit in (("x", width), ("y", height)):
        values = table[axis].to_numpy()
        bad = (values < 0) | (values >= limit) | (values != np.floor(values))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ScenarioError(
                path,
                "city.services_file",
                f"service cell {axis}={values[row]!r} in data row {row + 1} is off the {width}x{height} grid "
                f"(allowed 0..{limit - 1})",
            )
    bad_type = ~table["type"].isin(SERVICE_TYPES)
    if bad_type.any():
        row = int(np.flatnonzero(bad_type.to_numpy())[0])
        raise ScenarioError(
            path, "city.services_file", f"type {table['type'].iloc[row]!r} in data row {row + 1}; allowed {list(SERVICE_TYPES)}"
        )
    if (table["capacity"] < 0).any():
        row = int(np.flatnonzero((table["capacity"] < 0).to_numpy())[0])
        raise ScenarioError(path, "city.services_file", f"capacity {table['capacity'].iloc[row]} in data row {row + 1} must be >= 0")
    return table.reset_index(drop=True)
