"""Where should the next hubs go? Placements of K new "under one roof" hubs chosen four ways
on one city, then compared on the behavioural model with common random numbers (DESIGN §7,
docs/ODD.md §7.16):

- `simulated`: simulation-optimisation. Every candidate cell is screened alone on the search
  seeds; a greedy pass adds the best of the most promising candidates one hub at a time; a
  local search swaps hubs, starting from the best of the greedy answer and the other
  methods' answers; the best few placements are then compared on fresh final seeds, and
  the best there is the answer, with the probability that it is truly best.
- `mclp`, `pmedian`: PySAL spopt's maximal covering and p-median models on the cells'
  need-weighted demand, aggregated to blocks, with the scenario's existing hubs as
  predefined facilities, a solver time limit and the solver's own status ("optimal" only
  when CBC proved it; a timed-out answer is "feasible, not proven optimal").
- `random`: placements drawn uniformly from the candidates; the distribution of their
  objective, and the best of them.

Existing services stay; each new hub co-locates at its cell as the scenario's [hubs] table
defines (`sim.world.services._co_locate_hubs`): its services, presence capacity and costs
come from the scenario, so every placement of K hubs has the same outlay. A placement's
world reuses the replication's city and families and only adds the hub's new sites to the
families' candidate lists (`World.with_services`), so an evaluation costs the weeks, not a
world build.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sim.core.codes import SERVICE_TYPES
from sim.core.errors import ScenarioError
from sim.engine.model import FamilyAccessModel
from sim.measure.stats import interval
from sim.outputs.progress import progress_bar
from sim.scenario.schema import Scenario, scenario_from_dict
from sim.studies.runner import process_pool, replication_seed
from sim.world.build import World, build_world
from sim.world.city import City, build_city
from sim.world.geometry import centre_m
from sim.world.planning import planned_share
from sim.world.services import build_services

METHODS = ("simulated", "mclp", "pmedian", "random")


@dataclass(frozen=True)
class Objective:
    name: str
    column: str  # the run measure it reads (docs/ODD.md "Measures")
    sign: int  # +1: more is better; -1: less is better
    text: str

    def score(self, value: float) -> float:
        """The value in the direction of better (higher is better)."""
        return self.sign * value


OBJECTIVES = {
    o.name: o
    for o in (
        Objective(
            "unmet_need",
            "unmet_need_share",
            -1,
            "share of (family, service) needs unmet in the measured window (lower is better)",
        ),
        Objective(
            "arope_u3_reached",
            "u3_enrolled_arope",
            +1,
            "AROPE children under 3 in childcare, mean per measured week (higher is better)",
        ),
        Objective(
            "gap",
            "u3_gap_pp",
            -1,
            "gap in under-3 participation, non-AROPE minus AROPE, percentage points "
            "(lower is better)",
        ),
    )
}


def _cell_key(cells: Sequence[Sequence[int]]) -> tuple[tuple[int, int], ...]:
    """A placement as a canonical key: its cells sorted."""
    return tuple(sorted((int(x), int(y)) for x, y in cells))


def with_hubs(scenario: Scenario, cells: Sequence[Sequence[int]]) -> Scenario:
    """The scenario with hubs at exactly these cells (its [hubs] settings otherwise)."""
    data = scenario.resolved_dict()
    data["hubs"]["count"] = 0
    data["hubs"]["sites"] = [[int(x), int(y)] for x, y in cells]
    return scenario_from_dict(data, "<place-hubs>")


def existing_hub_cells(scenario: Scenario, city: City) -> list[tuple[int, int]]:
    """The cells of the hubs the scenario already has (by count or by site)."""
    if not scenario.hubs.enabled:
        return []
    return [(int(x), int(y)) for x, y in build_services(scenario, city).hub_cells]


def auto_candidates(scenario: Scenario, city: City) -> np.ndarray:
    """The cells of the existing public sites of the scenario's hub anchor types
    (`hubs.anchor_types`: a hub co-locates at an existing site), less the cells that are
    hubs already: [C, 2], by x then y."""
    services = build_services(scenario, city).services
    anchors = [SERVICE_TYPES.index(t) for t in scenario.hubs.anchor_types]
    mask = services.is_public & np.isin(services.type, anchors)
    cells = np.unique(np.column_stack([services.x[mask], services.y[mask]]), axis=0)
    taken = set(existing_hub_cells(scenario, city))
    keep = [i for i, (x, y) in enumerate(cells) if (int(x), int(y)) not in taken]
    return cells[keep].astype(np.int64).reshape(-1, 2)


def read_candidates(
    path: Path, scenario: Scenario, city: City, k: int, allow_unpopulated: bool
) -> np.ndarray:
    """Candidate cells from a CSV file with columns x and y (grid cells). Refused, with one
    line naming the file, the row and what is allowed: a missing column, a value that is not
    a whole cell, a cell off the grid, a cell named twice, a cell that is already a hub,
    fewer than K candidates, or a cell where no family lives unless allowed."""
    origin = str(path)
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise ScenarioError(
            origin, "", "no such file; allowed: a CSV file with columns x, y"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ScenarioError(
            origin, "", f"not a readable CSV file ({exc}); allowed: columns x, y"
        ) from None
    missing = [c for c in ("x", "y") if c not in table.columns]
    if missing:
        raise ScenarioError(
            origin,
            missing[0],
            f"column missing (columns: {', '.join(map(str, table.columns))}); allowed: a CSV "
            "file with columns x, y (grid cells)",
        )
    cells: list[tuple[int, int]] = []
    seen: dict[tuple[int, int], int] = {}
    hubs = set(existing_hub_cells(scenario, city))
    for row, (x, y) in enumerate(zip(table["x"], table["y"], strict=True), start=2):
        where = f"line {row}"
        try:
            fx, fy = float(x), float(y)
        except (TypeError, ValueError):
            raise ScenarioError(
                origin, where, f"value {x!r}, {y!r}: allowed: whole grid cells"
            ) from None
        if not (math.isfinite(fx) and math.isfinite(fy) and fx.is_integer() and fy.is_integer()):
            raise ScenarioError(origin, where, f"value {x}, {y}: allowed: whole grid cells")
        cell = (int(fx), int(fy))
        if not (0 <= cell[0] < city.width and 0 <= cell[1] < city.height):
            raise ScenarioError(
                origin,
                where,
                f"cell {list(cell)} is off the {city.width} x {city.height} grid; allowed: "
                f"0 <= x < {city.width}, 0 <= y < {city.height}",
            )
        if cell in seen:
            raise ScenarioError(
                origin,
                where,
                f"cell {list(cell)} is named twice (first on line {seen[cell]}); allowed: "
                "distinct cells",
            )
        if cell in hubs:
            raise ScenarioError(
                origin,
                where,
                f"cell {list(cell)} is a hub already in {scenario.name!r}; allowed: cells "
                "without a hub",
            )
        if not allow_unpopulated and city.families[cell] == 0:
            raise ScenarioError(
                origin,
                where,
                f"cell {list(cell)} has no families and hubs.unpopulated_sites is false in "
                f"{scenario.name!r}; allowed: populated cells, or set hubs.unpopulated_sites",
            )
        seen[cell] = row
        cells.append(cell)
    if len(cells) < k:
        raise ScenarioError(
            origin,
            "",
            f"{len(cells)} candidate cells for --hubs {k}; allowed: at least {k} cells",
        )
    return np.array(cells, dtype=np.int64).reshape(-1, 2)


# ---------------------------------------------------------------- static location models


def candidate_cells(
    scenario: Scenario, city: City, candidates: str | Path, hubs: int, origin: str
) -> np.ndarray:
    """The cells a placement may choose: "auto" (every cell with a public site of an anchor
    type and no hub yet) or a candidates CSV (`read_candidates`)."""
    if str(candidates) != "auto":
        return read_candidates(
            Path(candidates), scenario, city, hubs, scenario.hubs.unpopulated_sites
        )
    cells = auto_candidates(scenario, city)
    if len(cells) < hubs:
        raise ScenarioError(
            origin,
            "hubs.anchor_types",
            f"{len(cells)} cells with a public site of "
            f"{', '.join(scenario.hubs.anchor_types)} and no hub for {hubs} hubs; "
            "allowed: fewer hubs, or a candidates file",
        )
    return cells


def need_weights(scenario: Scenario, city: City) -> np.ndarray:
    """Expected (family, service) needs per cell [x, y] over the hub's service types: the
    cell's families times each type's planned share (the stationary age profile)."""
    share = sum(planned_share(t, scenario) for t in scenario.hubs.types)
    return city.families.astype(float) * share


@dataclass
class StaticDemand:
    """Need-weighted demand aggregated to square blocks of cells: the weighted centroid of
    each block in metres, and its weight."""

    block_cells: int
    xy_m: np.ndarray  # [B, 2]
    weight: np.ndarray  # [B]


def aggregated_demand(scenario: Scenario, city: City, block_cells: int) -> StaticDemand:
    weights = need_weights(scenario, city)
    x, y = np.nonzero(weights > 0)
    w = weights[x, y]
    bx, by = x // block_cells, y // block_cells
    key = bx * (city.height // block_cells + 1) + by
    uniq, inverse = np.unique(key, return_inverse=True)
    total = np.bincount(inverse, weights=w)
    cx = np.bincount(inverse, weights=w * centre_m(x, city.cell_size_m)) / total
    cy = np.bincount(inverse, weights=w * centre_m(y, city.cell_size_m)) / total
    return StaticDemand(block_cells, np.column_stack([cx, cy]), total)


@dataclass
class StaticAnswer:
    method: str
    cells: list[tuple[int, int]]
    status: str  # "optimal", "feasible, not proven optimal (time limit)", or why none
    seconds: float
    covered_share: float  # need-weighted demand within the radius of a hub (new or old)
    mean_distance_m: float  # need-weighted mean distance to the nearest hub


def _distances(demand: StaticDemand, cells: np.ndarray, cell_size_m: float) -> np.ndarray:
    fx = centre_m(cells[:, 0], cell_size_m)
    fy = centre_m(cells[:, 1], cell_size_m)
    return np.hypot(demand.xy_m[:, 0, None] - fx[None, :], demand.xy_m[:, 1, None] - fy[None, :])


def coverage(
    demand: StaticDemand, cells: np.ndarray, cell_size_m: float, radius_m: float
) -> tuple[float, float]:
    """(need-weighted share of demand within radius_m of a hub, need-weighted mean distance
    in metres to the nearest hub) for hubs at these cells."""
    if len(cells) == 0:
        return 0.0, float("nan")
    nearest = _distances(demand, np.asarray(cells), cell_size_m).min(axis=1)
    w = demand.weight
    return float(w[nearest <= radius_m].sum() / w.sum()), float((w * nearest).sum() / w.sum())


def solve_static(
    method: str,
    demand: StaticDemand,
    candidates: np.ndarray,
    existing: list[tuple[int, int]],
    k: int,
    cell_size_m: float,
    radius_m: float,
    time_limit_s: float,
) -> StaticAnswer:
    """MCLP (maximise need-weighted demand within radius_m of a hub) or p-median (minimise
    the need-weighted distance to the nearest hub) with spopt, existing hubs predefined."""
    facilities = np.concatenate([np.asarray(existing, dtype=np.int64).reshape(-1, 2), candidates])
    cost = _distances(demand, facilities, cell_size_m)
    predefined = np.arange(len(facilities)) < len(existing)
    started = time.perf_counter()
    import pulp
    from spopt.locate import MCLP, PMedian

    p = k + len(existing)
    given = predefined if len(existing) else None
    with warnings.catch_warnings():
        # PuLP 3 announces its version 4 (bundled CBC removed, variables built another way);
        # pyproject.toml keeps PuLP below 4, and spopt builds the variables
        warnings.simplefilter("ignore", DeprecationWarning)
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s)
        if method == "mclp":
            model = MCLP.from_cost_matrix(
                cost,
                demand.weight,
                service_radius=radius_m,
                p_facilities=p,
                predefined_facilities_arr=given,
            )
        else:
            model = PMedian.from_cost_matrix(
                cost, demand.weight, p_facilities=p, predefined_facilities_arr=given
            )
        try:
            model.solve(solver, results=False)
        except RuntimeError as exc:  # spopt: the problem is not solved (no solution in time)
            seconds = time.perf_counter() - started
            return StaticAnswer(
                method, [], f"no solution ({exc})", seconds, float("nan"), float("nan")
            )
    seconds = time.perf_counter() - started
    # PuLP reports a timed-out CBC answer as status "Optimal"; its solution status tells
    status = (
        "optimal"
        if model.problem.sol_status == pulp.LpSolutionOptimal
        else f"feasible, not proven optimal (stopped at the {time_limit_s:g} s time limit)"
    )
    chosen = [
        j for j, var in enumerate(model.fac_vars) if (var.value() or 0) > 0.5 and not predefined[j]
    ]
    cells = [(int(facilities[j, 0]), int(facilities[j, 1])) for j in chosen]
    covered, mean_d = coverage(
        demand, np.array(existing + cells).reshape(-1, 2), cell_size_m, radius_m
    )
    return StaticAnswer(method, list(_cell_key(cells)), status, seconds, covered, mean_d)


# ---------------------------------------------------------------- simulation evaluations

# per process: the replication's world without new hubs, by (scenario hash, seed)
_WORLDS: dict[tuple[str, int], World] = {}


def _base_world(scenario: Scenario, seed: int) -> World:
    key = (scenario.content_hash(), seed)
    if key not in _WORLDS:
        if len(_WORLDS) >= 16:
            _WORLDS.pop(next(iter(_WORLDS)))
        _WORLDS[key] = build_world(scenario, seed)
    return _WORLDS[key]


@dataclass
class Evaluation:
    """One run of one placement on one seed: every run measure, and (final runs only) the
    unmet need-weeks per cell and the neighbourhood table."""

    cells: tuple[tuple[int, int], ...]
    seed: int
    metrics: dict[str, float]
    unmet_weeks: np.ndarray | None = None
    need_weeks: np.ndarray | None = None
    areas: pd.DataFrame | None = None


def evaluate_one(
    scenario: Scenario,
    existing: tuple[tuple[int, int], ...],
    cells: tuple[tuple[int, int], ...],
    seed: int,
    detail: bool,
) -> Evaluation:
    """Run one placement (existing hubs plus `cells`) on one seed."""
    base = _base_world(scenario, seed)
    placed = with_hubs(scenario, list(existing) + list(cells)) if cells or existing else scenario
    world = base if placed is scenario else base.with_services(placed)
    model = FamilyAccessModel(placed, rng=seed, world=world, materialise_agents=False)
    model.run_for(placed.run.burn_in_weeks + placed.run.weeks)
    metrics = model.metrics()
    acc = model.engine.accumulator
    if not detail:
        return Evaluation(cells, seed, metrics)
    return Evaluation(
        cells,
        seed,
        metrics,
        acc.cell_unmet_weeks.copy(),
        acc.cell_need_weeks.copy(),
        acc.area_table(),
    )


class Evaluator:
    """Runs placements on seeds, in a process pool, and keeps every result (a placement is
    never run twice on one seed). `evaluations` counts placement-seed runs."""

    def __init__(
        self,
        scenario: Scenario,
        existing: list[tuple[int, int]],
        workers: int,
        quiet: bool,
    ) -> None:
        self.scenario = scenario
        self.existing = tuple(existing)
        self.workers = workers
        self.quiet = quiet
        self.results: dict[tuple[tuple[tuple[int, int], ...], int], Evaluation] = {}
        self.evaluations = 0
        self.seconds = 0.0
        self._pool = None
        self._pool_cm = None

    def __enter__(self) -> Evaluator:
        if self.workers > 1:
            self._pool_cm = process_pool(self.workers)
            self._pool = self._pool_cm.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._pool_cm is not None:
            self._pool_cm.__exit__(*exc)

    def run(
        self,
        placements: Sequence[tuple[tuple[int, int], ...]],
        seeds: Sequence[int],
        label: str,
        detail: bool = False,
    ) -> None:
        todo = []
        for cells in dict.fromkeys(placements):
            for seed in seeds:
                have = self.results.get((cells, seed))
                if have is None or (detail and have.areas is None):
                    todo.append((cells, seed))
        if not todo:
            return
        started = time.perf_counter()
        bar = progress_bar(len(todo), label, self.quiet)
        if self._pool is None:
            for cells, seed in todo:
                self.results[(cells, seed)] = evaluate_one(
                    self.scenario, self.existing, cells, seed, detail
                )
                if bar:
                    bar.update(1)
        else:
            from concurrent.futures import as_completed

            futures = {
                self._pool.submit(
                    evaluate_one, self.scenario, self.existing, cells, seed, detail
                ): (cells, seed)
                for cells, seed in todo
            }
            for future in as_completed(futures):
                self.results[futures[future]] = future.result()
                if bar:
                    bar.update(1)
        if bar:
            bar.close()
        self.evaluations += len(todo)
        self.seconds += time.perf_counter() - started

    def values(self, cells, seeds: Sequence[int], column: str) -> np.ndarray:
        return np.array([self.results[(cells, s)].metrics[column] for s in seeds], dtype=float)


# ---------------------------------------------------------------- the study


@dataclass
class PlacementSettings:
    k: int
    objective: Objective
    methods: tuple[str, ...]
    reps: int  # search seeds
    final_reps: int  # fresh seeds of the final comparison
    radius_m: float = 1500.0  # MCLP's covering radius and the coverage the report quotes
    block_cells: int = 4  # demand aggregation for the location models
    time_limit_s: float = 60.0
    random_placements: int = 20
    greedy_width: int = 8  # candidates tried at each greedy step (the best screened)
    swap_width: int = 6  # replacements tried per hub in a swap round
    swap_rounds: int = 2
    final_contenders: int = 3  # search placements taken to the final comparison
    seed: int = 1


@dataclass
class MethodResult:
    method: str
    cells: tuple[tuple[int, int], ...]
    status: str
    evaluations: int
    seconds: float
    coverage_share: float = float("nan")
    mean_distance_m: float = float("nan")
    random_means: list[float] = field(default_factory=list)  # random: each placement's mean


@dataclass
class PlacementStudy:
    scenario: Scenario
    settings: PlacementSettings
    candidates: np.ndarray
    existing: list[tuple[int, int]]
    methods: list[MethodResult]
    search_seeds: list[int]
    final_seeds: list[int]
    # final comparison: every contender's runs on the final seeds (status quo included)
    final: dict[tuple[tuple[int, int], ...], list[Evaluation]]
    status_quo: tuple[tuple[int, int], ...] = ()
    p_best: dict[tuple[tuple[int, int], ...], float] = field(default_factory=dict)
    screened: pd.DataFrame = field(default_factory=pd.DataFrame)
    evaluations: int = 0
    seconds: float = 0.0

    def runs(self) -> pd.DataFrame:
        """One row per (placement, final seed): the methods that chose it, its cells and
        every run measure."""
        rows = []
        for cells, evals in self.final.items():
            names = [m.method for m in self.methods if m.cells == cells] or (
                ["status_quo"] if cells == self.status_quo else ["contender"]
            )
            for r, ev in enumerate(evals):
                rows.append(
                    {
                        "placement": _cells_text(cells) or "status quo",
                        "methods": ",".join(names),
                        "replication": r,
                        "seed": ev.seed,
                        **ev.metrics,
                    }
                )
        return pd.DataFrame(rows)


def _cells_text(cells: Sequence[Sequence[int]]) -> str:
    return "; ".join(f"{x},{y}" for x, y in cells)


def probability_best(scores: np.ndarray, draws: int = 4000, seed: int = 0) -> np.ndarray:
    """Per placement (column), the share of Bayesian-bootstrap draws over the paired
    replications (rows; Dirichlet weights on the seeds, so the common random numbers stay
    paired) in which its weighted mean score is the highest (ties shared)."""
    n, m = scores.shape
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(n), size=draws)  # [draws, n]
    means = weights @ scores  # [draws, m]
    best = means.max(axis=1, keepdims=True)
    top = np.isclose(means, best, rtol=0, atol=1e-12)
    return (top / top.sum(axis=1, keepdims=True)).mean(axis=0)


def place_hubs(
    scenario: Scenario,
    settings: PlacementSettings,
    candidates: np.ndarray,
    workers: int = 1,
    quiet: bool = True,
    say: Callable[[str], None] | None = None,
) -> PlacementStudy:
    """Choose K new hub cells among `candidates` by each of `settings.methods`, and compare
    the answers on the model with common random numbers (module docstring)."""
    say = say or (lambda line: None)
    city = build_city(scenario, "<place-hubs>")
    existing = existing_hub_cells(scenario, city)
    k = settings.k
    objective = settings.objective
    column = objective.column
    # search and final seeds are disjoint streams of the run seed: the final comparison
    # never reuses the seeds a placement was chosen on
    search_seeds = [replication_seed(settings.seed, r) for r in range(settings.reps)]
    final_seeds = [replication_seed(settings.seed, 10_000 + r) for r in range(settings.final_reps)]
    status_quo: tuple[tuple[int, int], ...] = ()
    results: list[MethodResult] = []
    cand_keys = [(int(x), int(y)) for x, y in candidates]
    started_all = time.perf_counter()
    with Evaluator(scenario, existing, workers, quiet) as ev:

        def mean_score(cells) -> float:
            return float(
                np.mean([objective.score(v) for v in ev.values(cells, search_seeds, column)])
            )

        ev.run([status_quo], search_seeds, "status quo")
        static: dict[str, StaticAnswer] = {}
        demand = aggregated_demand(scenario, city, settings.block_cells)
        for method in ("mclp", "pmedian"):
            if method in settings.methods or "simulated" in settings.methods:
                static[method] = solve_static(
                    method,
                    demand,
                    candidates,
                    existing,
                    k,
                    city.cell_size_m,
                    settings.radius_m,
                    settings.time_limit_s,
                )
                say(f"{method}: {static[method].status} in {static[method].seconds:.1f} s")
        for method in ("mclp", "pmedian"):
            if method in static and static[method].cells:
                before = ev.evaluations, ev.seconds
                ev.run([_cell_key(static[method].cells)], search_seeds, method)
                if method in settings.methods:
                    a = static[method]
                    results.append(
                        MethodResult(
                            method,
                            _cell_key(a.cells),
                            a.status,
                            ev.evaluations - before[0],
                            a.seconds + ev.seconds - before[1],
                            a.covered_share,
                            a.mean_distance_m,
                        )
                    )
            elif method in settings.methods:
                a = static[method]
                results.append(MethodResult(method, (), a.status, 0, a.seconds))
        random_best: tuple[tuple[int, int], ...] | None = None
        if "random" in settings.methods or "simulated" in settings.methods:
            rng = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(7,)))
            draws = []
            for _ in range(settings.random_placements):
                pick = rng.choice(len(cand_keys), size=k, replace=False)
                draws.append(_cell_key([cand_keys[i] for i in pick]))
            before = ev.evaluations, ev.seconds
            ev.run(draws, search_seeds, "random placements")
            means = [mean_score(d) for d in draws]
            random_best = draws[int(np.argmax(means))]
            if "random" in settings.methods:
                results.append(
                    MethodResult(
                        "random",
                        random_best,
                        f"best of {len(draws)} random placements on the search seeds",
                        ev.evaluations - before[0],
                        ev.seconds - before[1],
                        *coverage(
                            demand, np.array(random_best), city.cell_size_m, settings.radius_m
                        ),
                        random_means=[objective.sign * m for m in means],
                    )
                )
        screened = pd.DataFrame()
        contenders: list[tuple[tuple[int, int], ...]] = []
        if "simulated" in settings.methods:
            before = ev.evaluations, ev.seconds
            singles = [((c),) for c in cand_keys]
            ev.run(singles, search_seeds, "screening candidates")
            base = mean_score(status_quo)
            gain = np.array([mean_score(s) - base for s in singles])
            order = np.argsort(-gain, kind="stable")
            screened = pd.DataFrame(
                {
                    "x": [c[0] for c in cand_keys],
                    "y": [c[1] for c in cand_keys],
                    "gain": objective.sign * gain,
                    "rank": np.argsort(order) + 1,
                }
            )
            ranked = [cand_keys[i] for i in order]
            current: list[tuple[int, int]] = [ranked[0]]
            for step in range(1, k):
                options = [c for c in ranked if c not in current][: settings.greedy_width]
                tries = [_cell_key(current + [c]) for c in options]
                ev.run(tries, search_seeds, f"greedy step {step + 1} of {k}")
                current = list(max(tries, key=mean_score))
            greedy = _cell_key(current)
            seeds_from = [greedy] + [
                _cell_key(m.cells) for m in results if m.method in ("mclp", "pmedian") and m.cells
            ]
            for method in ("mclp", "pmedian"):
                if method in static and static[method].cells and method not in settings.methods:
                    seeds_from.append(_cell_key(static[method].cells))
            if random_best is not None:
                seeds_from.append(random_best)
            incumbent = max(dict.fromkeys(seeds_from), key=mean_score)
            for rnd in range(settings.swap_rounds):
                swaps = []
                for hub in incumbent:
                    others = [c for c in ranked if c not in incumbent][: settings.swap_width]
                    swaps += [_cell_key([h for h in incumbent if h != hub] + [c]) for c in others]
                ev.run(swaps, search_seeds, f"swap round {rnd + 1}")
                best = max(swaps, key=mean_score) if swaps else incumbent
                if mean_score(best) <= mean_score(incumbent):
                    break
                incumbent = best
            searched = sorted(
                {cells for (cells, _s) in ev.results if len(cells) == k},
                key=mean_score,
                reverse=True,
            )
            contenders = list(dict.fromkeys([incumbent] + searched[: settings.final_contenders]))
            results.insert(
                0,
                MethodResult(
                    "simulated",
                    incumbent,
                    "search best; final choice below",
                    ev.evaluations - before[0],
                    ev.seconds - before[1],
                ),
            )
        # the final comparison: fresh seeds, every method's answer and the search's best few
        finalists = list(
            dict.fromkeys([status_quo] + contenders + [m.cells for m in results if m.cells])
        )
        ev.run(finalists, final_seeds, "final comparison", detail=True)
        scores = np.column_stack(
            [[objective.score(v) for v in ev.values(c, final_seeds, column)] for c in finalists]
        )
        placed = [i for i, c in enumerate(finalists) if c != status_quo]
        p_best = probability_best(scores[:, placed], seed=settings.seed)
        p_of = {finalists[i]: float(p) for i, p in zip(placed, p_best, strict=True)}
        if "simulated" in settings.methods:
            # the simulated answer is the best on the final seeds among everything it was
            # seeded with or found (the other methods' answers included)
            pool = [finalists[i] for i in placed]
            final_mean = {c: float(scores[:, finalists.index(c)].mean()) for c in pool}
            chosen = max(pool, key=lambda c: final_mean[c])
            results[0].cells = chosen
            results[0].status = (
                f"best of {len(pool)} placements on {len(final_seeds)} fresh seeds "
                f"(probability truly best {p_of[chosen]:.2f})"
            )
            results[0].coverage_share, results[0].mean_distance_m = coverage(
                demand, np.array(chosen), city.cell_size_m, settings.radius_m
            )
        final = {c: [ev.results[(c, s)] for s in final_seeds] for c in finalists}
        evaluations = ev.evaluations
    return PlacementStudy(
        scenario=scenario,
        settings=settings,
        candidates=candidates,
        existing=existing,
        methods=results,
        search_seeds=search_seeds,
        final_seeds=final_seeds,
        final=final,
        status_quo=status_quo,
        p_best=p_of,
        screened=screened,
        evaluations=evaluations,
        seconds=time.perf_counter() - started_all,
    )


def placement_table(study: PlacementStudy) -> pd.DataFrame:
    """One row per method: hub cells, the objective's mean and 95 % interval on the final
    seeds, its paired difference from the status quo and from the simulated answer, the
    probability of being best, every run measure's mean, solver status, evaluations and
    seconds."""
    objective = study.settings.objective
    column = objective.column
    sq = study.final[study.status_quo]
    rows = []
    sim_cells = next((m.cells for m in study.methods if m.method == "simulated"), None)
    for m in study.methods:
        row: dict[str, object] = {
            "method": m.method,
            "hub_cells": _cells_text(m.cells),
            "hubs_x": [c[0] for c in m.cells],
            "hubs_y": [c[1] for c in m.cells],
            "objective": objective.name,
            "objective_column": column,
        }
        evals = study.final.get(m.cells)
        if evals:
            values = np.array([e.metrics[column] for e in evals])
            mean, lo, hi = interval(values)
            base = np.array([e.metrics[column] for e in sq])
            d_mean, d_lo, d_hi = interval(values - base)
            row.update(
                objective_mean=mean,
                objective_low=lo,
                objective_high=hi,
                vs_status_quo_mean=d_mean,
                vs_status_quo_low=d_lo,
                vs_status_quo_high=d_hi,
            )
            if sim_cells is not None and sim_cells in study.final:
                other = np.array([e.metrics[column] for e in study.final[sim_cells]])
                s_mean, s_lo, s_hi = interval(values - other)
                row.update(vs_simulated_mean=s_mean, vs_simulated_low=s_lo, vs_simulated_high=s_hi)
            row["p_best"] = study.p_best.get(m.cells, float("nan"))
        row.update(
            solver_status=m.status,
            evaluations=m.evaluations,
            seconds=round(m.seconds, 2),
            coverage_share=m.coverage_share,
            mean_distance_m=m.mean_distance_m,
        )
        if m.random_means:
            q = np.quantile(m.random_means, [0.05, 0.5, 0.95])
            row.update(random_p05=q[0], random_median=q[1], random_p95=q[2])
        if evals:
            for key in evals[0].metrics:
                row[key] = float(np.mean([e.metrics[key] for e in evals]))
        rows.append(row)
    return pd.DataFrame(rows)


# the measures the report reads for "what each placement gains for whom" (docs/ODD.md)
GAIN_MEASURES = (
    "unmet_need_share",
    "unmet_need_share_by_language_local",
    "unmet_need_share_by_language_non_local",
    "u3_participation_arope",
    "u3_participation_non_arope",
    *(f"takeup_{t}_{g}" for t in SERVICE_TYPES for g in ("arope", "non_arope")),
    "travel_minutes_used",
    "travel_minutes_nearest",
)


def hub_services(study: PlacementStudy, city: City) -> pd.DataFrame:
    """What each method's new hubs hold, from the placed scenario's services (the world the
    runs had): per hub cell and hub type, `joins` (a public service of the type already at
    the cell, its places), `brings` (a presence the hub adds, its units) or `none` (the
    scenario's presence_capacity for the type is 0 and the cell has none: NRW's centres are
    daycare centres, so childcare is in a hub only where it already is)."""
    scenario = study.scenario
    before = build_services(scenario, city).services.frame()
    rows = []
    for m in study.methods:
        if not m.cells:
            continue
        placed = with_hubs(scenario, list(study.existing) + list(m.cells))
        after = build_services(placed, city).services.frame()
        for x, y in m.cells:
            at = after[(after["x"] == x) & (after["y"] == y) & (after["hub"] >= 0)]
            old = before[(before["x"] == x) & (before["y"] == y) & before["public"]]
            for t in scenario.hubs.types:
                here = at[at["type"] == t]
                how = "none"
                if len(here):
                    how = "joins" if (old["type"] == t).any() else "brings"
                rows.append(
                    {
                        "method": m.method,
                        "x": int(x),
                        "y": int(y),
                        "type": t,
                        "how": how,
                        "places": int(here["places"].sum()),
                    }
                )
    return pd.DataFrame(rows, columns=["method", "x", "y", "type", "how", "places"])


@dataclass
class PlacementFindings:
    """What a placement study found, as plain tables a report renders: `table` (one row per
    method, `placement_table`), `runs` (every final run), `gains` (per method and measure,
    the paired difference from the status quo on the final seeds: mean, low, high),
    `areas` (per method and neighbourhood, the change in the unmet share), `unmet` (per
    method, and "status quo", the unmet needs per cell [x, y], mean per measured week),
    `screened` (each candidate's gain alone on the search seeds), `hub_services` (per
    method and new hub, each hub type: the places of the service it joins there, or of the
    presence it brings, or none), and the settings."""

    scenario: Scenario
    settings: PlacementSettings
    table: pd.DataFrame
    runs: pd.DataFrame
    gains: pd.DataFrame
    areas: pd.DataFrame
    unmet: dict[str, np.ndarray]
    screened: pd.DataFrame
    hub_services: pd.DataFrame
    candidates: np.ndarray
    existing: list[tuple[int, int]]
    search_seeds: list[int]
    final_seeds: list[int]
    evaluations: int
    seconds: float


def placement_findings(study: PlacementStudy, city: City) -> PlacementFindings:
    sq = study.final[study.status_quo]
    weeks = max(study.scenario.run.weeks, 1)

    def unmet_map(evals: list[Evaluation]) -> np.ndarray:
        """Unmet needs per cell in a measured week, mean over the final seeds; NaN where
        no family needed a service (blank on the map)."""
        mean = np.mean([e.unmet_weeks for e in evals], axis=0) / weeks
        need = np.sum([e.need_weeks for e in evals], axis=0)
        return np.where(need > 0, mean, np.nan).reshape(city.width, city.height)

    gains, areas = [], []
    unmet = {"status quo": unmet_map(sq)}
    base_areas = pd.concat([e.areas.assign(r=i) for i, e in enumerate(sq)])
    for m in study.methods:
        evals = study.final.get(m.cells)
        if not evals:
            continue
        unmet[m.method] = unmet_map(evals)
        for measure in GAIN_MEASURES:
            diff = np.array([e.metrics[measure] for e in evals]) - np.array(
                [b.metrics[measure] for b in sq]
            )
            mean, lo, hi = interval(diff)
            gains.append(
                {"method": m.method, "measure": measure, "mean": mean, "low": lo, "high": hi}
            )
        these = pd.concat([e.areas.assign(r=i) for i, e in enumerate(evals)])
        both = these.merge(base_areas, on=["neighbourhood", "r"], suffixes=("", "_sq"))
        both["change"] = both["unmet_share"] - both["unmet_share_sq"]
        for hood, part in both.groupby("neighbourhood"):
            mean, lo, hi = interval(part["change"])
            areas.append(
                {
                    "method": m.method,
                    "neighbourhood": int(hood),
                    "neighbourhood_name": city.neighbourhood_name(int(hood)),
                    "unmet_share_status_quo": float(part["unmet_share_sq"].mean()),
                    "change_mean": mean,
                    "change_low": lo,
                    "change_high": hi,
                }
            )
    return PlacementFindings(
        hub_services=hub_services(study, city),
        scenario=study.scenario,
        settings=study.settings,
        table=placement_table(study),
        runs=study.runs(),
        gains=pd.DataFrame(gains),
        areas=pd.DataFrame(areas),
        unmet=unmet,
        screened=study.screened,
        candidates=study.candidates,
        existing=study.existing,
        search_seeds=study.search_seeds,
        final_seeds=study.final_seeds,
        evaluations=study.evaluations,
        seconds=study.seconds,
    )
