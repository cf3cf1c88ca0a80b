"""The world builders: scenario -> city, families, services, candidate sets.

The fast engine and the per-agent reference both start from a World, so they see the same
families and services. Tests transform a built World (permute storage, delete a family,
mirror the city) and run it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from sim.scenario.schema import Scenario
from sim.world.city import City, build_city, check_memory
from sim.world.population import (
    FamilyTable,
    assign_quintiles,
    initial_families,
    quintile_cut_points,
)
from sim.world.services import ServiceWorld, build_services
from sim.world.travel import CandidateSets, add_sites, build_candidates, tolerance_percent


@dataclass
class World:
    scenario: Scenario
    seed: int
    city: City
    families: FamilyTable
    services: ServiceWorld
    candidates: CandidateSets
    quintile_cuts: np.ndarray

    def with_families(self, families: FamilyTable) -> World:
        """The same world with another family table (candidate sets rebuilt)."""
        return replace(
            self,
            families=families,
            candidates=_candidates(self.scenario, self.city, families, self.services),
        )

    def with_services(self, scenario: Scenario) -> World:
        """The same city and families under a scenario that differs from this world's in
        its hubs only (a placement): the service map is rebuilt (cheap), and the candidate
        lists gain the new sites only (`travel.add_sites`) when the old sites kept their
        ids and cells, as co-located hubs append theirs; otherwise they are rebuilt."""
        services = build_services(scenario, self.city)
        old, new = self.services.services, services.services
        n = old.size
        kept = new.size >= n and all(
            np.array_equal(getattr(old, f), getattr(new, f)[:n]) for f in ("type", "x", "y")
        )
        if kept:
            candidates = add_sites(
                self.candidates,
                self.families,
                n,
                new.type,
                new.x,
                new.y,
                self.city.transit_access,
                self.city.cell_size_m,
                scenario.travel,
                tolerance_percent(scenario),
            )
        else:
            candidates = _candidates(scenario, self.city, self.families, services)
        return replace(self, scenario=scenario, services=services, candidates=candidates)

    def take(self, rows: np.ndarray) -> World:
        """Rows of the family table, in that order (permutation or deletion)."""
        return self.with_families(self.families.take(rows))

    def mirrored(self) -> World:
        """The world reflected left-right: families, services, hubs and cell data."""
        width = self.city.width
        fam = self.families.take(np.arange(self.families.size))
        fam.x = (width - 1 - fam.x).astype(np.int32)
        svc = replace(
            self.services.services, x=(width - 1 - self.services.services.x).astype(np.int32)
        )
        hubs = self.services.hub_cells.copy()
        if len(hubs):
            hubs[:, 0] = width - 1 - hubs[:, 0]
        services = replace(self.services, services=svc, hub_cells=hubs)
        city = self.city.mirrored()
        return replace(
            self,
            city=city,
            families=fam,
            services=services,
            candidates=_candidates(self.scenario, city, fam, services),
        )


def _candidates(
    scenario: Scenario, city: City, families: FamilyTable, services: ServiceWorld
) -> CandidateSets:
    svc = services.services
    return build_candidates(
        families,
        svc.type,
        svc.x,
        svc.y,
        city.transit_access,
        city.cell_size_m,
        scenario.travel,
        tolerance_percent(scenario),
    )


def build_world(
    scenario: Scenario,
    seed: int,
    origin: str = "<scenario>",
    progress: Callable[[str], None] | None = None,
) -> World:
    """Build everything a run needs. The city and the service map depend on the city seed
    and settings only; families depend on the replication seed, so scenarios that share the
    city and population settings share their families (common random numbers).
    `progress`, if given, is told each part as it is done, with its seconds."""
    started = time.perf_counter()

    def done(part: str) -> None:
        nonlocal started
        if progress is not None:
            progress(f"{part} {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()

    check_memory(scenario, origin)
    city = build_city(scenario, origin)
    done("city")
    families = initial_families(scenario, seed, city)
    cuts = quintile_cut_points(families)
    families.income_quintile = assign_quintiles(families.income_q, cuts)
    done(f"{families.size:,} families and their ties")
    services = build_services(scenario, city)
    done(f"{services.services.type.size:,} services")
    candidates = _candidates(scenario, city, families, services)
    done("candidate lists")
    return World(
        scenario=scenario,
        seed=seed,
        city=city,
        families=families,
        services=services,
        candidates=candidates,
        quintile_cuts=cuts,
    )


# content hashes of scenarios that passed prepare() in this process: the command line checks
# its input before taking the output lock, and sim.run / sim.compare check again for callers
# that did not; the second check of the same content would only rebuild the city
_PREPARED: set[str] = set()


def prepare(scenario: Scenario, origin: str, file_target: float | None = None) -> None:
    """Every check that can fail on input, before anything is written: the memory estimate
    first, then the city and its tables, then the services (e.g. a budget that cannot be
    balanced). file_target: the outlay target as the file gives it, when --families scaled
    it (an error then quotes both). A scenario whose content passed once is not checked
    again (the hash covers its city files' bytes, so an edited file is); the memory estimate
    is made every time."""
    check_memory(scenario, origin)  # before any table is read
    identity = scenario.content_hash()
    if identity in _PREPARED:
        return
    build_services(scenario, build_city(scenario, origin), file_target)
    _PREPARED.add(identity)
