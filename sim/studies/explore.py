"""The Python API's ways into one city and one family (notebooks; `import sim`).

`city_world` builds a scenario's city, services and families as one replication sees them;
`trace_families` follows families through a run, week by week: which services each needs,
knows of, waits for and uses, and which thresholds (the *drempels* of docs/ODD.md §7) stand
between it and the service it would go to. Both read the engine as it runs; neither changes
a rule, so a traced run gives the same measures as any other run of the same seed.

The rest are the command line's jobs as functions that return tables instead of printing:
`access_map` (`famsim accessibility`), `place_hubs` (`famsim place-hubs`), `sweep` and
`sensitivity` (`famsim sweep --resume`, `famsim sensitivity`), `calibrate` (`famsim
calibrate`) and `read_calibration` (a calibration folder's tables).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from sim.core.codes import (
    DIMENSIONS,
    DROPPED,
    ENROLLED,
    NO_SERVICE,
    REJECTED,
    SERVICE_TYPES,
    WAITLISTED,
)
from sim.core.errors import ScenarioError
from sim.engine.model import FamilyAccessModel
from sim.outputs.calibration import write_calibration, write_manifest
from sim.scenario.schema import Scenario
from sim.studies.calibration import Calibration, calibrated_toml, load_targets
from sim.studies.calibration import calibrate as _calibrate
from sim.studies.calibration import manifest as calibration_manifest
from sim.studies.placement import (
    METHODS,
    OBJECTIVES,
    PlacementFindings,
    PlacementSettings,
    PlacementStudy,
    candidate_cells,
    placement_findings,
)
from sim.studies.placement import place_hubs as placement_study
from sim.studies.runner import (
    checked,
    default_workers,
    process_pool,
    replication_seed,
    with_run_settings,
)
from sim.studies.sensitivity import analyse
from sim.studies.sweep import load_sweep, run_sweep
from sim.studies.sweep import results as sweep_results
from sim.world.accessibility import Accessibility, Catchment, accessibility
from sim.world.build import World, build_world
from sim.world.city import City, build_city
from sim.world.services import build_services

STATUS_WORDS = {
    WAITLISTED: "on the waiting list",
    ENROLLED: "using it",
    REJECTED: "refused a place",
    DROPPED: "stopped using it",
}
# what each threshold means for the family, in the words the story uses (docs/ODD.md §7)
BARRIER_WORDS = {
    "information": "does not know of it",
    "capacity": "no free place",
    "matching": "a place is free but not offered to it",
    "cost": "too expensive for its income",
    "travel": "too far for how it travels",
    "hours": "opening hours do not fit its working hours",
    "admin": "the forms are too much",
    "language": "not understood in its language",
    "stigma": "feels labelled as 'for the poor'",
    "trust": "does not trust it enough",
    "fit": "does not expect it to help",
}


def city_world(
    scenario: Scenario, families: int | None = None, seed: int = 1, replication: int = 0
) -> World:
    """The city, its services and its families as replication `replication` of run seed
    `seed` builds them (the seeds `sim.run` uses), with the city scaled per capita to
    `families` if given."""
    scenario = with_run_settings(
        checked(scenario, "<sim.city_world>"),
        families=families,
        seed=seed,
        origin="<sim.city_world>",
        by="sim.run",
    )
    return build_world(scenario, replication_seed(scenario.run.seed, replication))


CITY_LAYERS = {
    "families": "families per cell (count)",
    "deprivation": "deprivation score of the cell (0-1)",
    "transit_access": "public transport access of the cell (0-1)",
}


def plot_city(world: World, layer: str = "families", path: str | Path | None = None):
    """The city's cells coloured by `layer` (CITY_LAYERS), with every service site by type
    and the hubs as stars; a matplotlib figure (written to `path` when given)."""
    import matplotlib.pyplot as plt

    from sim.outputs import plots

    if layer not in CITY_LAYERS:
        raise ScenarioError(
            "<sim.plot_city>", "layer", f"value {layer!r}; allowed: {', '.join(CITY_LAYERS)}"
        )
    city = world.city
    values = np.asarray(getattr(city, layer), dtype=float)
    if layer == "families":
        values = np.where(values > 0, values, np.nan)
    fig, ax = plt.subplots(figsize=(7.5, 6.4))
    plots.city_map(
        ax,
        values,
        city.cell_size_m,
        world.services.services.frame(),
        label=CITY_LAYERS[layer],
        cmap="Greens" if layer == "families" else "magma_r",
    )
    ax.set_title(f"{world.scenario.name}: {CITY_LAYERS[layer]} and the services", fontsize=9)
    return plots.finish_legend(fig, ax, Path(path) if path is not None else None)


@dataclass
class FamilyTrace:
    """One family's measured weeks: `family` its fixed traits, `weeks` one row per (week,
    service type) with `need`, `aware`, `status`, `site`, `trust` and `blocked_by` (the
    thresholds blocking the site it would go to, while a need is unmet)."""

    scenario: Scenario
    seed: int
    slot: int
    family: dict[str, object]
    weeks: pd.DataFrame

    def story(self, service: str | None = None) -> list[str]:
        """The trace in words, one line per spell of unchanged state and type."""
        lines = []
        frame = self.weeks if service is None else self.weeks[self.weeks["service"] == service]
        for name, rows in frame.groupby("service", sort=False):
            state = rows.apply(_state_words, axis=1)
            spell = (state != state.shift()).cumsum()
            for _, part in rows.groupby(spell.to_numpy()):
                first, last = part.iloc[0], part.iloc[-1]
                weeks = (
                    f"week {first.week}"
                    if first.week == last.week
                    else f"weeks {first.week}-{last.week}"
                )
                age = (
                    f"child {first.child_age_weeks} weeks old"
                    if first.week == last.week
                    else f"child {first.child_age_weeks}-{last.child_age_weeks} weeks old"
                )
                lines.append(f"{name}, {weeks} ({age}): {_state_words(first)}")
        return lines


def _state_words(row: pd.Series) -> str:
    if not row["need"]:
        return "no need"
    if row["status"] == ENROLLED:
        return f"using it (site {row['site']})"
    words = [STATUS_WORDS[row["status"]]] if row["status"] in STATUS_WORDS else []
    blocked = [BARRIER_WORDS[d] for d in row["blocked_by"].split(",") if d]
    if blocked:
        words.append("unmet; at the nearest site it may use: " + "; ".join(blocked))
    elif not words:
        words.append("unmet, no application yet")
    return ", ".join(words)


def trace_families(
    scenario: Scenario,
    slots: list[int] | None = None,
    count: int = 10,
    seed: int = 1,
    families: int | None = None,
    weeks: int | None = None,
    replication: int = 0,
) -> list[FamilyTrace]:
    """Run replication `replication` of `scenario` (scaled to `families`, `weeks` measured
    weeks) and trace the families living in dwellings `slots` at the start of the measured
    window, each for as long as it lives there. With no slots, the first `count` families at
    risk of poverty whose youngest is at most 12 weeks old then, those speaking a language
    other than the local one first."""
    scenario = with_run_settings(
        checked(scenario, "<sim.trace_families>"),
        weeks=weeks,
        seed=seed,
        families=families,
        origin="<sim.trace_families>",
        by="sim.run",
    )
    rep_seed = replication_seed(scenario.run.seed, replication)
    model = FamilyAccessModel(scenario, rng=rep_seed, materialise_agents=False)
    for _ in range(scenario.run.burn_in_weeks):
        model.step()
    engine = model.engine
    f = engine.families
    slots = list(slots) if slots is not None else _default_slots(f, count)
    keys, traits = {}, {}
    for slot in slots:
        row = int(np.flatnonzero(f.slot == slot)[0])
        keys[slot] = int(f.key[row])
        traits[slot] = {
            "slot": slot,
            "at_risk_of_poverty": bool(f.is_arope[row]),
            "income_quintile": int(f.income_quintile[row]),
            "language": model.world.city.languages[int(f.language[row])],
            "local_language": bool(f.is_local_language[row]),
            "employed": bool(f.employed[row]),
            "wants_formal_care": bool(f.wants_formal_care[row]),
            "travel_mode": ("walk", "transit", "car")[int(f.mode[row])],
            "cell": (int(f.x[row]), int(f.y[row])),
        }
    captured: list = []
    measure = engine.measure

    def measure_and_keep(plan) -> None:
        captured.append(plan)
        measure(plan)

    engine.measure = measure_and_keep  # type: ignore[method-assign]
    rows: dict[int, list[dict]] = {slot: [] for slot in slots}
    try:
        for week in range(scenario.run.weeks):
            model.step()
            plan = captured.pop()
            f = engine.families
            need = plan.need if plan.need is not None else engine.needs()
            for slot in slots:
                here = np.flatnonzero(f.slot == slot)
                if not len(here) or int(f.key[here[0]]) != keys[slot]:
                    continue  # moved out: a new family lives in the slot
                rows[slot].extend(_week_rows(week, int(here[0]), f, plan, need))
    finally:
        engine.measure = measure  # type: ignore[method-assign]
    return [
        FamilyTrace(scenario, rep_seed, slot, traits[slot], pd.DataFrame(rows[slot]))
        for slot in slots
    ]


def _week_rows(week: int, r: int, f, plan, need: np.ndarray) -> list[dict]:
    """One family's state after week `week` (statuses after the week's life course; the
    child's age as it was during the week)."""
    out = []
    for t, name in enumerate(SERVICE_TYPES):
        unmet = need[r, t] and f.status[r, t] != ENROLLED
        blocked = [d for i, d in enumerate(DIMENSIONS) if unmet and plan.preferred_blocks[r, t, i]]
        site = int(f.service[r, t])
        out.append(
            {
                "week": week,
                "child_age_weeks": int(f.youngest_age_weeks[r]) - 1,
                "service": name,
                "need": bool(need[r, t]),
                "aware": bool(f.aware[r, t]),
                "status": int(f.status[r, t]),
                "site": site if site != NO_SERVICE else -1,
                "trust": float(f.trust[r]),
                "blocked_by": ",".join(blocked),
            }
        )
    return out


def _default_slots(f, count: int) -> list[int]:
    young = f.is_arope & (f.youngest_age_weeks >= 0) & (f.youngest_age_weeks <= 12)
    if not young.any():
        raise ValueError("no family at risk of poverty has a child under 13 weeks; pass slots=")
    order = np.flatnonzero(young & ~f.is_local_language).tolist()
    order += np.flatnonzero(young & f.is_local_language).tolist()
    return [int(f.slot[r]) for r in order[:count]]


# -- static access and hub placement -----------------------------------------------------


@dataclass
class AccessMap:
    """The 2SFCA index of one service type on a scenario's city (`sim.world.accessibility`):
    `index.demand` per populated cell (`access_2sfca`, places per family in need within
    reach), `index.supply` per site; `sites` every site of the city."""

    scenario: Scenario
    city: City
    sites: pd.DataFrame
    index: Accessibility

    def grid(self) -> np.ndarray:
        """The index as a [x, y] array, NaN where no family in need lives."""
        return self.index.grid(self.city.width, self.city.height)

    def demand_weighted_mean(self) -> float:
        """Places per family in need, averaged over families in need (not over cells)."""
        d = self.index.demand
        return float((d["access_2sfca"] * d["demand"]).sum() / d["demand"].sum())

    def plot(self, path: str | Path | None = None):
        from sim.outputs import plots

        c = self.index.catchment
        return plots.accessibility_map(
            self.grid(),
            self.city.cell_size_m,
            self.sites[self.sites["type"] == self.index.type_name],
            Path(path) if path is not None else None,
            f"2SFCA access to {self.index.type_name} within {c.radius:g} {c.unit} "
            f"({c.decay} decay)",
        )


def access_map(
    scenario: Scenario,
    service: str = "childcare",
    radius_m: float = 1500.0,
    minutes: float | None = None,
    mode: str = "walk",
    decay: str = "none",
    origin: str = "<sim.access_map>",
) -> AccessMap:
    """The two-step floating catchment area index (what `famsim accessibility` writes):
    within `radius_m` metres, or within `minutes` of travel by `mode` when given."""
    scenario = checked(scenario, origin)
    catchment = Catchment(radius_m, decay) if minutes is None else Catchment(minutes, decay, mode)
    city = build_city(scenario, origin)
    services = build_services(scenario, city).services
    index = accessibility(scenario, city, services, service, catchment)
    return AccessMap(scenario, city, services.frame(), index)


@dataclass
class HubPlan:
    """A placement study (`sim.studies.placement`) and what it found: `table` one row per
    method (hub cells, the objective with its 95 % interval on fresh seeds, the paired
    difference from the status quo, the probability of being best)."""

    study: PlacementStudy
    findings: PlacementFindings
    city: City
    sites: pd.DataFrame

    @property
    def table(self) -> pd.DataFrame:
        return self.findings.table

    def plot(self, path: str | Path | None = None):
        """Every method's new hubs over today's unmet needs per cell."""
        from sim.outputs import plots
        from sim.outputs.placement import method_hubs

        return plots.placements_overview(
            self.findings.unmet["status quo"],
            self.city.cell_size_m,
            self.sites,
            method_hubs(self.table),
            self.findings.existing,
            Path(path) if path is not None else None,
        )


def place_hubs(
    scenario: Scenario,
    hubs: int = 1,
    methods: tuple[str, ...] = METHODS,
    objective: str = "unmet_need",
    reps: int = 3,
    final_reps: int | None = None,
    candidates: str | Path = "auto",
    radius_m: float = 1500.0,
    time_limit_s: float = 60.0,
    workers: int | None = None,
    origin: str = "<sim.place_hubs>",
) -> HubPlan:
    """Where `hubs` new hubs should go, by each method (what `famsim place-hubs` runs):
    the field's location models (MCLP, p-median) and the behavioural model's own search,
    compared on the same fresh seeds. `candidates`: "auto" (cells with a public anchor site
    and no hub) or a candidates CSV."""
    scenario = checked(scenario, origin)
    city = build_city(scenario, origin)
    cells = candidate_cells(scenario, city, candidates, hubs, origin)
    if objective not in OBJECTIVES:
        raise ScenarioError(
            origin, "objective", f"value {objective!r}; allowed: {', '.join(OBJECTIVES)}"
        )
    settings = PlacementSettings(
        k=hubs,
        objective=OBJECTIVES[objective],
        methods=tuple(methods),
        reps=reps,
        final_reps=final_reps or max(10, 3 * reps),
        radius_m=radius_m,
        time_limit_s=time_limit_s,
        seed=scenario.run.seed,
    )
    study = placement_study(scenario, settings, cells, workers=workers or default_workers())
    sites = build_services(scenario, city).services.frame()
    return HubPlan(study, placement_findings(study, city), city, sites)


# -- sweeps, sensitivity and calibration ---------------------------------------------------


def sweep(path: str | Path, out: str | Path, workers: int | None = None) -> pd.DataFrame:
    """Run (or resume) the sweep file `path` into the folder `out`, as `famsim sweep
    --resume` does, and return one row per run: design point, replication, seed, run id,
    status and every measure."""
    plan = load_sweep(path)
    out = Path(out)
    workers = workers or default_workers()
    with process_pool(workers) as pool:
        resume = (out / "manifest.json").exists()
        run_sweep(plan, out, pool, "process-pool", workers, resume=resume, quiet=True)
    return sweep_results(out)


def sensitivity(path: str | Path, out: str | Path) -> pd.DataFrame:
    """Sobol' (or Morris) indices of every measure the sweep file names, with their 95 %
    intervals, from its finished runs in `out` (what `famsim sensitivity` writes to
    `out/sensitivity/`)."""
    plan = load_sweep(path)
    out = Path(out)
    written = analyse(plan, out, out / "sensitivity")
    return pd.read_csv(written[0])


def calibrate(
    targets: str | Path,
    out: str | Path,
    budget: int | None = None,
    families: int | None = None,
    workers: int | None = None,
) -> Calibration:
    """Fit the targets file's free parameters to its figures (what `famsim calibrate` runs:
    Latin hypercube, emulators, history matching, a second wave, the posterior, a re-check
    on fresh seeds), resuming whatever `out` holds, and write its folder there. `families`
    runs a smaller city than the targets file's (per capita), `budget` fewer runs: a quick
    look, not the committed calibration."""
    plan = load_targets(targets)
    if families is not None:
        run = {**plan.run, "families": families}
        plan = replace(plan, run=run, document={**plan.document, "run": run})
    out = Path(out)
    workers = workers or default_workers()
    with process_pool(workers) as pool:
        result = _calibrate(plan, out, pool, "process-pool", workers, budget)
    name = f"{plan.scenario_file.stem}_calibrated.toml"
    write_calibration(result, out, calibrated_toml(result, out / name), name)
    write_manifest(out, calibration_manifest(result))
    return result


@dataclass
class CalibrationRecord:
    """A calibration folder as `famsim calibrate` wrote it: `fit` (per target: the figure,
    its band, the chosen point's re-check with its interval, inside or not), `parameters`
    (prior range, posterior mean and 90 % interval, shrinkage), `plausible` (the resampled
    plausible set with the emulator's predictions), `design` (every run design point with
    its means), `sensitivity` (the emulator's Sobol' indices) and `manifest`."""

    folder: Path
    fit: pd.DataFrame
    parameters: pd.DataFrame
    plausible: pd.DataFrame
    design: pd.DataFrame
    sensitivity: pd.DataFrame
    manifest: dict

    @property
    def chosen(self) -> dict[str, float]:
        return dict(self.manifest["chosen"])


def read_calibration(folder: str | Path) -> CalibrationRecord:
    """Read a calibration folder (e.g. the committed `validation/eu27_2024`)."""
    folder = Path(folder)
    return CalibrationRecord(
        folder,
        fit=pd.read_csv(folder / "fit.csv"),
        parameters=pd.read_csv(folder / "parameters.csv"),
        plausible=pd.read_parquet(folder / "plausible.parquet"),
        design=pd.read_parquet(folder / "design.parquet"),
        sensitivity=pd.read_csv(folder / "sensitivity.csv"),
        manifest=json.loads((folder / "calibration.json").read_text(encoding="utf-8")),
    )
