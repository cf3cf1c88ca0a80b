"""FamilyAccessModel: the Mesa model of one replication around the compiled weekly engine.

Mesa supplies the frame: a seeded `mesa.Model`, its clock (`time`, one week a step), a
`discrete_space` grid with property layers for cell data, services as `FixedAgent`s on their
cells, families as agents that are *views* onto the engine's family table (one source of
truth), and a DataCollector of weekly aggregates. `FamilyAccessModel.step` is the week's
schedule, calling the engine's phases (sim.engine.week) by name. The hot path never loops
over agent objects.
"""

from __future__ import annotations

import mesa
import numpy as np
from mesa.discrete_space import FixedAgent, OrthogonalMooreGrid

from sim.core.codes import CHILDCARE, SERVICE_TYPES
from sim.engine.week import Engine
from sim.scenario.schema import Scenario
from sim.world.build import World, build_world

# Above this many cells the model keeps the city as plain arrays (Mesa cell objects cost
# seconds and about half a gigabyte at 250,000 cells); results are identical.
MAX_MESA_CELLS = 40_000
# Above this many families no Python object per family is made; results are identical.
MAX_FAMILY_AGENTS = 200_000


class ServiceAgent(FixedAgent):
    """A service site on its cell; its attributes are read from the model's service table."""

    def __init__(self, model: FamilyAccessModel, service_id: int, cell) -> None:
        super().__init__(model)
        self.service_id = service_id
        if cell is not None:
            self.cell = cell

    @property
    def service_type(self) -> str:
        return SERVICE_TYPES[int(self.model.engine.svc.type[self.service_id])]

    @property
    def capacity(self) -> int:
        """In the unit of the type's rhythm: places, appointments or visits a week, cases."""
        return int(self.model.engine.svc.capacity[self.service_id])

    @property
    def capacity_units(self) -> int:
        """What its users can take: childcare days, users by appointment or drop-in (a
        week's appointments or visits times the weeks between one user's), cases."""
        return int(self.model.engine.capacity_units[self.service_id])

    @property
    def units_in_use(self) -> int:
        return int(self.model.engine.used_units()[self.service_id])

    @property
    def enrolled(self) -> int:
        """Families using it now (part-time children and regular visitors share capacity)."""
        return int(self.model.engine.enrolled_counts()[self.service_id])

    @property
    def is_public(self) -> bool:
        return bool(self.model.engine.svc.is_public[self.service_id])

    @property
    def hub(self) -> int:
        return int(self.model.engine.svc.hub[self.service_id])


class FamilyAgent(mesa.Agent):
    """A view onto one row of the column store: it holds no state of its own."""

    def __init__(self, model: FamilyAccessModel, row: int) -> None:
        super().__init__(model)
        self.row = row

    def __getitem__(self, column: str):
        return getattr(self.model.engine.families, column)[self.row]

    @property
    def family_key(self) -> int:
        return int(self.model.engine.families.key[self.row])

    @property
    def is_arope(self) -> bool:
        return bool(self["is_arope"])

    @property
    def youngest_age_weeks(self) -> int:
        return int(self["youngest_age_weeks"])


class FamilyAccessModel(mesa.Model):
    """One replication: build (or receive) a World, then step weeks.

    Args:
        scenario: the validated famsim scenario.
        rng: the replication seed, a non-negative integer below 2**64. It is the seed used:
            the world is built from it (a given world must have been), every keyed stream of
            the rules derives from it, and Mesa seeds its own generators with it (`rng`,
            `random`, and `scenario.rng`). No rule draws from Mesa's generators.
        world: a prebuilt World (tests transform worlds) of this scenario and seed; built
            from them if None.
        chunk_size: process phase A in chunks of this many families (results identical).
        materialise_agents: make FamilyAgent views and a Mesa grid; None decides by size.
        take_world: the given world is the model's to change (nothing else reads it): its
            family table is changed in place, not copied (a built world always is).

    One clock: Mesa's `time`. Mesa runs the k-th step at time k, so week w (0 first) runs at
    time w + 1, and after n steps `time` is n weeks. The engine keeps no week counter of its
    own here: it reads the week in progress from this clock.

    One scenario attribute: Mesa 3.5's `mesa.Model` owns `scenario`, a Mesa scenario (the
    parameter object Mesa made from `rng`, which it ties to the model and freezes while the
    model runs, and which Mesa's visualisation reads). A famsim Scenario is not one, so it is
    not put there, nor under another name on the model: the model's `scenario` stays Mesa's,
    and the famsim Scenario is read where the rules read it, `model.world.scenario`.

    One family table: the engine's (`model.engine.families`); `model.world` is the engine's
    World, which holds that table, so no initial copy is left beside it.
    """

    def __init__(
        self,
        scenario: Scenario,
        rng: int = 1,
        world: World | None = None,
        chunk_size: int | None = None,
        materialise_agents: bool | None = None,
        take_world: bool = False,
    ) -> None:
        seed = _seed(rng)
        super().__init__(rng=seed)
        # a world built here, or one handed over, is the model's alone: its engine then
        # changes the world's family table in place instead of copying it
        own_world = world is None or take_world
        if world is None:
            world = build_world(scenario, seed)
        elif world.seed != seed:
            raise ValueError(f"the world was built with seed {world.seed}, not rng={seed}")
        elif world.scenario != scenario:
            raise ValueError("the world was built from another scenario")
        self.engine = Engine(
            world, chunk_size=chunk_size, clock=self._week_in_progress, copy_families=not own_world
        )
        city = self.world.city
        n_families = self.engine.families.size
        if materialise_agents is None:
            materialise_agents = city.n_cells <= MAX_MESA_CELLS and n_families <= MAX_FAMILY_AGENTS
        self.grid: OrthogonalMooreGrid | None = None
        if materialise_agents and city.n_cells <= MAX_MESA_CELLS:
            self.grid = OrthogonalMooreGrid(
                (city.width, city.height), torus=False, random=self.random
            )
            self.grid.create_property_layer("families", default_value=0, dtype=int)
            self.grid.families.data[:] = city.families  # type: ignore[attr-defined]
            for name in ("deprivation", "transit_access"):
                self.grid.create_property_layer(name, default_value=0.0, dtype=float)
                getattr(self.grid, name).data[:] = getattr(city, name)
            self.grid.create_property_layer("neighbourhood", default_value=0, dtype=int)
            self.grid.neighbourhood.data[:] = city.neighbourhood  # type: ignore[attr-defined]
            self.grid.create_property_layer("unmet_need_share", default_value=0.0, dtype=float)
        svc = self.engine.svc
        self.services = [
            ServiceAgent(
                self,
                i,
                self.grid[(int(svc.x[i]), int(svc.y[i]))] if self.grid is not None else None,
            )
            for i in range(svc.size)
        ]
        if materialise_agents:
            for row in range(n_families):
                FamilyAgent(self, row)
        names = list(self.engine.accumulator.snapshot(self.engine.week))
        if self.engine.adaptive is not None:  # the budget path of an adaptive policy
            names += list(self.engine.adaptive.snapshot())
        self.datacollector = mesa.DataCollector(
            model_reporters={name: _reporter(name) for name in names}
        )

    @property
    def world(self) -> World:
        """The World the engine runs: city, services, candidate lists and the engine's own
        family table."""
        return self.engine.world

    def _week_in_progress(self) -> int:
        """The engine's clock: the week a step runs is Mesa's time less one."""
        return int(self.time) - 1

    def step(self) -> None:
        """One week (docs/ODD.md §3.1). Phase A, `decide`, reads only last week's state: every
        family's information events and decisions go into the week's plan. Phase B applies
        the plan in a fixed order, then the life course ends the week."""
        engine = self.engine
        plan = engine.decide()  # information events; applications, drop-outs, give-ups
        engine.information(plan)  # new awareness and contacts
        engine.settle(plan)  # cooldowns end; drop-outs, give-ups; applications join queues
        engine.allocate(plan)  # queues ranked, places filled, rejections
        engine.experience(plan)  # use raises trust and fit; word of mouth raises fit
        engine.meet(plan)  # families at the same childcare or parenting site form ties
        engine.measure(plan)  # the window's sums (measured weeks) and the week's aggregates
        engine.life_course()  # ageing, births, conceptions, new families in renewed slots
        self.datacollector.collect(self)

    @property
    def public_childcare_places(self) -> int:
        """Places (concurrent children) in public childcare: what the budget solver chose
        under `budget.target_outlay_eur_week`, else planned from `places_per_100` or read
        from the services file. Fixed by the configuration, the same in every replication."""
        svc = self.engine.svc
        public_childcare = svc.is_public & (svc.type == CHILDCARE)
        return int(svc.capacity[public_childcare].sum())

    def metrics(self) -> dict[str, float]:
        return self.engine.accumulator.result()

    def update_unmet_layer(self) -> None:
        if self.grid is not None:
            self.grid.unmet_need_share.data[:] = np.nan_to_num(self.engine.accumulator.unmet_map())  # type: ignore[attr-defined]


def _seed(rng: object) -> int:
    """`rng` as the replication seed: a non-negative integer below 2**64, the range the keyed
    streams take whole (numpy's generators refuse a negative one; a larger one would wrap)."""
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer):
        raise TypeError(f"rng must be an integer seed, not {type(rng).__name__}")
    seed = int(rng)
    if not 0 <= seed < 2**64:
        raise ValueError(f"rng must be a seed from 0 to 2**64 - 1, not {seed}")
    return seed


def _reporter(name: str):
    def report(model: FamilyAccessModel) -> int | bool | float:
        return model.engine.last.get(name, float("nan"))

    report.__name__ = f"report_{name}"
    return report
