"""The web app's model: what a person chooses in the app, as a scenario, and the runs that
answer it, stepped week by week.

`explorer_scenario` turns the app's choices (a shipped configuration, then lever overrides
and hubs placed by hand) into a validated Scenario with the public API only: each lever takes
its keys from the configuration that has it (`sim.studies.levers.with_lever`, the keys of
`scenarios/levers/proportionate.toml`), so "language support on" in the app is exactly
proportionate's language support. `ExplorerModel` is a Mesa model that holds the runs: one
`FamilyAccessModel` per replication, and as many again for a configuration shown side by
side, all with the replication seeds of `famsim run` (common random numbers). It keeps a
growing weekly record, so a plot appends a week instead of rereading the history. No
behaviour is decided here: every week is `FamilyAccessModel.step`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import mesa
import numpy as np

from sim.core.codes import ACCESSIBILITY_DIMENSION, DIMENSIONS
from sim.engine.model import FamilyAccessModel
from sim.measure.metrics import u3_care_by_cell
from sim.measure.stats import interval
from sim.scenario.schema import Scenario, load_scenario, scenario_from_dict, set_at_path
from sim.studies.levers import load_levers, with_lever
from sim.studies.placement import existing_hub_cells, with_hubs
from sim.studies.runner import replication_seed, with_run_settings
from sim.world.accessibility import Catchment, accessibility
from sim.world.build import build_world
from sim.world.city import build_city

# the shipped configurations the app offers, by file name in the scenarios folder
CONFIGURATIONS = (
    "universal",
    "universal_free",
    "targeted",
    "proportionate",
    "one_roof",
    "proportionate_one_roof",
    "proportionate_adaptive",
)
AS_CONFIGURED = "as configured"
# fee schedules, each the childcare fee of the configuration that has it (C5-C8)
FEE_SCHEDULES = {
    "income-related (universal)": "universal",
    "income-graded to a token fee (proportionate)": "proportionate",
    "free (universal_free)": "universal_free",
}
# outreach staff in full-time equivalents (proportionate has 2, targeted 4)
OUTREACH_FTE = ("0", "1", "2", "4", "8")
TARGETING = ("all", "deprived_neighbourhoods")
ADMISSION = ("first_come", "working_parents_first", "need_weighted")
ON_OFF = ("on", "off")
# the layers the map can show: name -> (title with the unit, colormap)
LAYERS: dict[str, tuple[str, str]] = {
    "families": ("families per cell", "Greys"),
    "arope_share": ("AROPE share of families (0-1)", "Oranges"),
    "unmet_needs": ("unmet need-weeks per cell, measured weeks", "Reds"),
    "unmet_share": ("share of need-weeks unmet (0-1)", "Reds"),
    "takeup": ("children under 3 in childcare, share (0-1)", "Greens"),
    "access_2sfca": ("2SFCA childcare places per child under 3 within 1.5 km", "Blues"),
}
ACCESS_RADIUS_M = 1500.0  # the planner's default catchment (famsim accessibility --radius-m)
GROUPS = ("all", "arope", "non_arope")
FIVE_DIMENSIONS = tuple(dict.fromkeys(ACCESSIBILITY_DIMENSION.values()))


def catalogue(scenario: str | Path | None = None) -> dict[str, Path]:
    """The configurations the app offers: the shipped ones found beside `scenario` (or in
    ./scenarios), and `scenario` itself under its own name, first."""
    folder = Path(scenario).parent if scenario is not None else Path("scenarios")
    found = {name: folder / f"{name}.toml" for name in CONFIGURATIONS}
    found = {name: path for name, path in found.items() if path.exists()}
    if scenario is not None:
        own = load_scenario(scenario).name
        found = {own: Path(scenario), **{k: v for k, v in found.items() if k != own}}
    if not found:
        raise FileNotFoundError(f"no configuration found in {folder}")
    return found


@dataclass(frozen=True)
class Choices:
    """What a person chose in the app; every lever is AS_CONFIGURED or an override."""

    configuration: str = "proportionate"
    fee_schedule: str = AS_CONFIGURED
    outreach_fte: str = AS_CONFIGURED
    outreach_targeting: str = AS_CONFIGURED
    admission: str = AS_CONFIGURED
    language_support: str = AS_CONFIGURED
    brokers: str = AS_CONFIGURED
    hubs: str = AS_CONFIGURED
    adaptive: str = AS_CONFIGURED
    hub_cells: tuple[tuple[int, int], ...] = ()
    weeks: int | None = None  # measured weeks (None: the scenario's)
    burn_in: int | None = None


@dataclass
class Donors:
    """The configurations the levers take their keys from, read once, each scaled per
    capita to `families` when given (so a lever brings the staff of its configuration at
    this city's size; an FTE set directly is taken as it is)."""

    paths: dict[str, Path]
    families: int | None = None
    cache: dict[str, Scenario] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Scenario:
        if name not in self.cache:
            scenario = load_scenario(self.paths[name])
            if self.families is not None:
                scenario = with_run_settings(
                    scenario, families=self.families, origin="<app>", by="app"
                )
            self.cache[name] = scenario
        return self.cache[name]

    def lever_keys(self) -> dict[str, list[str]]:
        folder = next(iter(self.paths.values())).parent
        lever_file = folder / "levers" / "proportionate.toml"
        return load_levers(lever_file).levers if lever_file.exists() else {}


def explorer_scenario(choices: Choices, donors: Donors) -> Scenario:
    """The scenario the app runs for these choices (validated by the schema)."""
    scenario = donors[choices.configuration]
    keys = donors.lever_keys()

    def take(source: str, lever_keys: list[str]) -> None:
        nonlocal scenario
        if source in donors.paths:
            scenario = with_lever(scenario, donors[source], lever_keys, scenario.name)

    def setting(key: str, value: object) -> None:
        nonlocal scenario
        data = scenario.resolved_dict()
        set_at_path(data, key, value)
        scenario = scenario_from_dict(data, "<app>")

    if choices.fee_schedule != AS_CONFIGURED:
        take(FEE_SCHEDULES[choices.fee_schedule], ["provision.childcare.fee"])
    if choices.outreach_fte != AS_CONFIGURED:
        setting("information.outreach_workers", float(choices.outreach_fte))
    if choices.outreach_targeting != AS_CONFIGURED:
        setting("information.outreach_targeting", choices.outreach_targeting)
    if choices.admission != AS_CONFIGURED:
        setting("provision.childcare.priority", choices.admission)
    language = keys.get("language_support", [])
    if choices.language_support == "on":
        take("proportionate", language)
    elif choices.language_support == "off":
        take("universal", language)
    if choices.brokers == "on":
        take("proportionate", keys.get("brokers", ["information.brokers"]))
    elif choices.brokers == "off":
        setting("information.brokers", {})
    if choices.hubs == "on":
        take("one_roof", ["hubs"])
    elif choices.hubs == "off":
        setting("hubs.count", 0)
        setting("hubs.sites", [])
    if choices.adaptive == "on":
        take("proportionate_adaptive", ["policy"])
    elif choices.adaptive == "off":
        setting("policy.adaptive", False)
    if choices.weeks is not None or choices.burn_in is not None:
        scenario = with_run_settings(
            scenario, weeks=choices.weeks, burn_in=choices.burn_in, origin="<app>", by="app"
        )
    if choices.hub_cells:
        city = build_city(scenario, "<app>")
        cells = list(dict.fromkeys(existing_hub_cells(scenario, city) + list(choices.hub_cells)))
        scenario = with_hubs(scenario, cells)
    return scenario


class ExplorerModel(mesa.Model):
    """The app's runs: `replications` runs of the chosen scenario and, when `compare_with`
    names a configuration, as many of it with the same seeds. One step is one week of every
    run. `burn_in` first runs the burn-in weeks (no drawing); `step` does it if needed.

    The Mesa grid (`grid`, for Mesa's SpaceRenderer) is the first run's, with the app's
    extra property layers; `time` counts measured weeks.
    """

    def __init__(
        self,
        configuration: str = "proportionate",
        fee_schedule: str = AS_CONFIGURED,
        outreach_fte: str = AS_CONFIGURED,
        outreach_targeting: str = AS_CONFIGURED,
        admission: str = AS_CONFIGURED,
        language_support: str = AS_CONFIGURED,
        brokers: str = AS_CONFIGURED,
        hubs: str = AS_CONFIGURED,
        adaptive: str = AS_CONFIGURED,
        compare_with: str = "none",
        replications: int = 1,
        seed: int = 7,
        hub_cells: Sequence[Sequence[int]] = (),
        weeks: int | None = None,
        burn_in: int | None = None,
        families: int | None = None,
        configurations: dict[str, Path] | None = None,
    ) -> None:
        super().__init__(rng=int(seed))
        # the arguments, to rebuild the same runs with one thing changed (a hub placed)
        self.params = {
            "configuration": configuration,
            "fee_schedule": fee_schedule,
            "outreach_fte": outreach_fte,
            "outreach_targeting": outreach_targeting,
            "admission": admission,
            "language_support": language_support,
            "brokers": brokers,
            "hubs": hubs,
            "adaptive": adaptive,
            "compare_with": compare_with,
            "replications": replications,
            "seed": seed,
            "hub_cells": [tuple(c) for c in hub_cells],
            "weeks": weeks,
            "burn_in": burn_in,
            "families": families,
            "configurations": configurations,
        }
        self.donors = Donors(dict(configurations or catalogue()), families)
        self.choices = Choices(
            configuration,
            fee_schedule,
            outreach_fte,
            outreach_targeting,
            admission,
            language_support,
            brokers,
            hubs,
            adaptive,
            tuple((int(x), int(y)) for x, y in hub_cells),
            weeks,
            burn_in,
        )
        self.seed = int(seed)
        self.compare_with = compare_with
        self.scenario_run = explorer_scenario(self.choices, self.donors)
        self.runs = self._runs(self.scenario_run, int(replications), materialise_first=True)
        self.twin_scenario: Scenario | None = None
        self.twins: list[FamilyAccessModel] = []
        if compare_with not in ("none", "", None):
            twin = replace(
                self.choices,
                configuration=compare_with,
                **{k: AS_CONFIGURED for k in _LEVER_FIELDS},
                hub_cells=(),
            )
            self.twin_scenario = explorer_scenario(twin, self.donors)
            self.twins = self._runs(self.twin_scenario, int(replications), materialise_first=False)
        self.burnt_in = False
        self.lock = threading.RLock()
        self.history = WeeklyRecord(len(self.runs), len(self.twins))
        self._access: np.ndarray | None = None
        first = self.runs[0]
        self.grid = first.grid
        self.services = first.services  # Mesa agents on the grid, drawn by the renderer
        self._add_layers()

    # -- building --------------------------------------------------------------------------

    def _runs(
        self, scenario: Scenario, replications: int, materialise_first: bool
    ) -> list[FamilyAccessModel]:
        runs = []
        for r in range(replications):
            seed = replication_seed(self.seed, r)
            world = build_world(scenario, seed)
            runs.append(
                FamilyAccessModel(
                    scenario,
                    rng=seed,
                    world=world,
                    take_world=True,
                    materialise_agents=materialise_first and r == 0,
                )
            )
        return runs

    def _add_layers(self) -> None:
        grid = self.grid
        if grid is None:
            return
        for name in LAYERS:
            if not hasattr(grid, name):
                grid.create_property_layer(name, default_value=0.0, dtype=float)
        self.refresh_layers()

    # -- running ---------------------------------------------------------------------------

    @property
    def all_runs(self) -> list[FamilyAccessModel]:
        return self.runs + self.twins

    @property
    def burn_in_weeks(self) -> int:
        return self.scenario_run.run.burn_in_weeks

    @property
    def measured_weeks(self) -> int:
        return self.scenario_run.run.weeks

    def burn_in(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Run the burn-in weeks of every run, saying (done, total) weeks as it goes."""
        with self.lock:
            if self.burnt_in:
                return
            total = self.burn_in_weeks
            done = 0
            while done < total:
                n = min(8, total - done)
                for run in self.all_runs:
                    run.run_for(n)
                done += n
                if progress is not None:
                    progress(done, total)
            self.burnt_in = True
            self.refresh_layers()

    def step(self) -> None:
        """One measured week of every run (after the burn-in, run first if need be)."""
        with self.lock:
            self.burn_in()
            for run in self.all_runs:
                run.step()
            self.history.append(self)
            self.refresh_layers()
            # the measured window is the scenario's: Mesa's controls stop at its end
            self.running = self.time < self.measured_weeks

    # -- what the page shows ---------------------------------------------------------------

    def refresh_layers(self) -> None:
        """The map's property layers from the first run's state and measures."""
        grid = self.grid
        if grid is None:
            return
        run = self.runs[0]
        city = run.world.city
        table = run.engine.accumulator.cell_table()
        families = table["families"].to_numpy(float).reshape(city.width, city.height)
        arope = table["arope_families"].to_numpy(float).reshape(city.width, city.height)
        unmet = table["unmet_need_weeks"].to_numpy(float).reshape(city.width, city.height)
        grid.families.data[:] = families
        grid.arope_share.data[:] = _share(arope, families)
        grid.unmet_needs.data[:] = unmet
        grid.unmet_share.data[:] = np.nan_to_num(run.engine.accumulator.unmet_map())
        children, in_care = u3_care_by_cell(run.engine.families, city)
        grid.takeup.data[:] = _share(in_care, children)
        grid.access_2sfca.data[:] = self.access_layer()

    def access_layer(self) -> np.ndarray:
        """2SFCA childcare places per child under 3 in reach (the static index of
        `famsim accessibility`, on the run's own service map); computed once."""
        if self._access is None:
            run = self.runs[0]
            city = run.world.city
            access = accessibility(
                run.world.scenario,
                city,
                run.world.services.services,
                "childcare",
                Catchment(ACCESS_RADIUS_M),
            )
            layer = np.zeros((city.width, city.height))
            d = access.demand
            layer[d["x"].to_numpy(), d["y"].to_numpy()] = d["access_2sfca"].to_numpy()
            self._access = layer
        return self._access

    def outlay(self) -> dict[str, float]:
        """The first run's ex-ante outlay and public childcare places."""
        run = self.runs[0]
        return {
            "public_childcare_places": float(run.public_childcare_places),
            "public_outlay_eur_week": run.engine.accumulator.outlay_cents / 100.0,
        }

    def window(self, twins: bool = False) -> list[dict[str, float]]:
        """Each run's measures over the measured weeks so far (empty before the first)."""
        if self.time < 1:
            return []
        return [run.metrics() for run in (self.twins if twins else self.runs)]


_LEVER_FIELDS = (
    "fee_schedule",
    "outreach_fte",
    "outreach_targeting",
    "admission",
    "language_support",
    "brokers",
    "hubs",
    "adaptive",
)


class WeeklyRecord:
    """Under-3 participation by group, week by week, per run: preallocated arrays that a
    step appends one row to (a plot reads the rows it has not drawn yet)."""

    def __init__(self, runs: int, twins: int) -> None:
        self.size = 0
        self.weeks = np.zeros(64, dtype=np.int64)
        self.values = {
            group: np.full((64, runs + twins), np.nan) for group in GROUPS
        }  # columns: runs, then twins
        self.runs = runs

    def append(self, model: ExplorerModel) -> None:
        if self.size == len(self.weeks):
            self.weeks = np.concatenate([self.weeks, np.zeros_like(self.weeks)])
            for group, v in self.values.items():
                self.values[group] = np.concatenate([v, np.full_like(v, np.nan)])
        self.weeks[self.size] = int(model.time)
        for c, run in enumerate(model.all_runs):
            last = run.engine.last
            for group in GROUPS:
                self.values[group][self.size, c] = float(last[f"u3_participation_{group}"])
        self.size += 1

    def band(self, group: str, twins: bool = False) -> tuple[np.ndarray, ...]:
        """Weeks, mean and 95 % interval (lo, hi; the mean when one run) of a group."""
        v = self.values[group][: self.size]
        v = v[:, self.runs :] if twins else v[:, : self.runs]
        weeks = self.weeks[: self.size]
        if v.shape[1] < 2 or self.size == 0:
            mean = v[:, 0] if v.shape[1] else np.full(len(weeks), np.nan)
            return weeks, mean, mean, mean
        rows = [interval(row) for row in v]
        mean, lo, hi = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
        return weeks, mean, lo, hi


def quintile_gradient(windows: list[dict[str, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Under-3 participation by income quintile over the measured weeks: mean, lo, hi."""
    if not windows:  # no measured week yet
        return np.zeros(5), np.zeros(5), np.zeros(5)
    rows = [interval(np.array([w[f"u3_participation_q{q}"] for w in windows])) for q in range(1, 6)]
    mean, lo, hi = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
    return mean, lo, hi


def barrier_shares(windows: list[dict[str, float]], group: str = "") -> dict[str, float]:
    """Main-barrier shares summed into the five accessibility dimensions (mean over runs);
    `group` "" (all families), "arope" or "non_local"."""
    suffix = f"_{group}" if group else ""
    out = dict.fromkeys(FIVE_DIMENSIONS, 0.0)
    for d in DIMENSIONS:
        values = [w.get(f"main_barrier_{d}{suffix}", np.nan) for w in windows]
        out[ACCESSIBILITY_DIMENSION[d]] += float(np.nanmean(values)) if values else 0.0
    return out


def _share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    return np.divide(part, whole, out=np.zeros_like(part, dtype=float), where=whole > 0)
