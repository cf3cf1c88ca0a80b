"""FamilyAccessModel: the Mesa shell around the compiled weekly engine (sim.engine.week).

Mesa supplies the frame: a seeded `mesa.Model` (rng= plain int), a `discrete_space` grid with
property layers for cell data, services as `FixedAgent`s on their cells, families as agents
that are *views* onto the per-model column store (one source of truth), and a DataCollector
of weekly aggregates. The hot path never loops over agent objects.
"""

from __future__ import annotations

import mesa
import numpy as np
from mesa.discrete_space import FixedAgent, OrthogonalMooreGrid

from sim.core.codes import CHILDCARE, ENROLLED, SERVICE_TYPES
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
        return int(self.model.engine.svc.capacity[self.service_id])

    @property
    def enrolled(self) -> int:
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

    @property
    def enrolled_types(self) -> list[str]:
        status = self["status"]
        return [name for t, name in enumerate(SERVICE_TYPES) if status[t] == ENROLLED]


class FamilyAccessModel(mesa.Model):
    """One replication: build (or receive) a World, then step weeks.

    Args:
        scenario: the validated scenario.
        rng: the replication seed (a plain int; keyed streams derive every draw from it).
        world: a prebuilt World (tests transform worlds); built from the scenario if None.
        chunk_size: process phase A in chunks of this many families (results identical).
        materialise_agents: make FamilyAgent views and a Mesa grid; None decides by size.
    """

    def __init__(
        self,
        scenario: Scenario,
        rng: int = 1,
        world: World | None = None,
        chunk_size: int | None = None,
        materialise_agents: bool | None = None,
    ) -> None:
        super().__init__(rng=int(rng))
        self.scenario_spec = scenario
        self.world = world if world is not None else build_world(scenario, int(rng))
        self.engine = Engine(self.world, chunk_size=chunk_size)
        city = self.world.city
        if materialise_agents is None:
            materialise_agents = (
                city.n_cells <= MAX_MESA_CELLS and self.world.families.size <= MAX_FAMILY_AGENTS
            )
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
            for row in range(self.world.families.size):
                FamilyAgent(self, row)
        self.datacollector = mesa.DataCollector(
            model_reporters={
                name: _reporter(name) for name in self.engine.accumulator.snapshot(self.engine.week)
            }
        )

    @property
    def week(self) -> int:
        return self.engine.week

    def step(self) -> None:
        """One week: phase A (decide) then phase B (apply), then collect aggregates."""
        self.engine.step()
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


def _reporter(name: str):
    def report(model: FamilyAccessModel) -> int | bool | float:
        return model.engine.last.get(name, float("nan"))

    report.__name__ = f"report_{name}"
    return report
