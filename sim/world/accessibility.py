"""The field's standard static measure of spatial access: the two-step floating catchment
area index (2SFCA; Luo and Wang 2003, with Dai 2010's Gaussian decay as an option), per
cell and service type. It knows places, children and distance only: no fee, language,
stigma, trust, word of mouth or queue (docs/ODD.md §7.16). famsim writes it so a planner
sees the field's measure next to the behavioural one, and its inputs so anyone can
recompute it with another tool (PySAL `access`; tests/test_accessibility.py checks this
kernel against it on the same inputs).

Step 1: each site j's ratio R_j = S_j / sum_k w(d_kj) D_k over demand cells k within the
catchment (d_kj <= radius); a site with no demand in reach has no ratio (its places reach
nobody). Step 2: each cell i's index A_i = sum_j w(d_ij) R_j over the sites within reach.
With w = 1 (no decay), sum_i D_i A_i = sum of S_j over the sites with demand in reach: every
place is shared out over the children who can reach it.

Demand D_k is the expected number of families in cell k with a child the type serves (the
cell's families times the type's planned share under the stationary age profile,
`planning.planned_share`): the same expectation the service map is planned with, with no
replication's draw in it. Supply S_j is the site's capacity in the type's units (places,
appointments or visits a week, cases).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from sim.core.codes import MODE_CAR, MODE_TRANSIT, MODE_WALK, SERVICE_TYPES
from sim.scenario.schema import Scenario
from sim.world.city import City
from sim.world.geometry import cell_id, centre_m
from sim.world.planning import planned_share
from sim.world.services import ServiceTable
from sim.world.travel import max_reach_cells, travel_minutes_by

DECAYS = ("none", "gaussian")
MODES = {"walk": MODE_WALK, "transit": MODE_TRANSIT, "car": MODE_CAR}


def gaussian_weight(cost: np.ndarray, radius: float) -> np.ndarray:
    """Dai's (2010) Gaussian decay: 1 at zero cost, falling to 0 at the catchment's edge,
    (exp(-(c/r)^2 / 2) - exp(-1/2)) / (1 - exp(-1/2)); 0 beyond the radius."""
    edge = np.exp(-0.5)
    w = (np.exp(-0.5 * (np.asarray(cost, dtype=float) / radius) ** 2) - edge) / (1.0 - edge)
    return np.where(np.asarray(cost) <= radius, np.maximum(w, 0.0), 0.0)


def demand_table(scenario: Scenario, city: City, type_name: str) -> pd.DataFrame:
    """One row per populated cell: cell_id, x, y, x_m, y_m (centre) and demand (expected
    families with a child the type serves)."""
    x, y = np.nonzero(city.families > 0)
    share = planned_share(type_name, scenario)
    return pd.DataFrame(
        {
            "cell_id": cell_id(x, y, city.height),
            "x": x.astype(np.int32),
            "y": y.astype(np.int32),
            "x_m": centre_m(x, city.cell_size_m),
            "y_m": centre_m(y, city.cell_size_m),
            "demand": city.families[x, y].astype(float) * share,
        }
    )


def supply_table(services: ServiceTable, type_name: str, cell_size_m: float) -> pd.DataFrame:
    """One row per site of the type with capacity: site_id (the service id), x, y, x_m, y_m,
    places (capacity in the type's units), public (False: market childcare), hub."""
    t = SERVICE_TYPES.index(type_name)
    ids = np.flatnonzero((services.type == t) & (services.capacity > 0))
    return pd.DataFrame(
        {
            "site_id": ids.astype(np.int64),
            "x": services.x[ids].astype(np.int32),
            "y": services.y[ids].astype(np.int32),
            "x_m": centre_m(services.x[ids], cell_size_m),
            "y_m": centre_m(services.y[ids], cell_size_m),
            "places": services.capacity[ids].astype(float),
            "public": services.is_public[ids],
            "hub": services.hub[ids],
        }
    )


@dataclass(frozen=True)
class Catchment:
    """How a cost between a cell and a site is measured, and the catchment's edge: metres
    in a straight line between cell centres, or the model's door-to-door minutes by one
    travel mode (`sim.world.travel`)."""

    radius: float  # metres, or minutes when mode is set
    decay: str = "none"
    mode: str | None = None  # None: straight-line metres; "walk", "transit" or "car": minutes

    @property
    def unit(self) -> str:
        return "m" if self.mode is None else "min"


def pairs_in_reach(
    demand: pd.DataFrame,
    supply: pd.DataFrame,
    catchment: Catchment,
    city: City,
    scenario: Scenario,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(demand row, supply row, cost) of every pair within the catchment, by demand row."""
    dxy = demand[["x_m", "y_m"]].to_numpy(float)
    sxy = supply[["x_m", "y_m"]].to_numpy(float)
    if len(dxy) == 0 or len(sxy) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    if catchment.mode is None:
        bound = catchment.radius
    else:  # the fastest mode's reach bounds the straight-line distance
        bound = (
            max_reach_cells(np.array([catchment.radius]), city.cell_size_m, scenario.travel)[0]
            * city.cell_size_m
        )
    found = cKDTree(dxy).sparse_distance_matrix(cKDTree(sxy), bound, output_type="ndarray")
    i, j, metres = found["i"].astype(np.int64), found["j"].astype(np.int64), found["v"]
    if catchment.mode is None:
        cost = metres
    else:
        transit = city.transit_access[demand["x"].to_numpy()[i], demand["y"].to_numpy()[i]]
        cost = travel_minutes_by(
            metres / city.cell_size_m,
            MODES[catchment.mode],
            transit,
            city.cell_size_m,
            scenario.travel,
        ).astype(float)
    keep = cost <= catchment.radius
    order = np.lexsort((j[keep], i[keep]))
    return i[keep][order], j[keep][order], cost[keep][order]


def two_step_fca(
    demand: np.ndarray,
    places: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    weight: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The 2SFCA index per demand point and the ratio per site, from the pairs in reach
    (demand row i, supply row j, weight w of their cost). A site with no demand in reach
    gets ratio NaN and adds nothing."""
    reached = np.bincount(j, weights=weight * demand[i], minlength=len(places))
    ratio = np.divide(places, reached, out=np.full(len(places), np.nan), where=reached > 0)
    index = np.bincount(i, weights=weight * np.nan_to_num(ratio)[j], minlength=len(demand))
    return index, ratio


@dataclass
class Accessibility:
    """The index and its inputs: demand (per populated cell) with `access_2sfca` (places per
    family in need within reach), supply (per site) with `demand_in_reach` and `ratio`."""

    type_name: str
    catchment: Catchment
    demand: pd.DataFrame
    supply: pd.DataFrame

    def grid(self, width: int, height: int) -> np.ndarray:
        """The index as a [x, y] array of the city's size, NaN where no family in need lives."""
        grid = np.full((width, height), np.nan)
        grid[self.demand["x"].to_numpy(), self.demand["y"].to_numpy()] = self.demand[
            "access_2sfca"
        ].to_numpy()
        return grid


def accessibility(
    scenario: Scenario,
    city: City,
    services: ServiceTable,
    type_name: str,
    catchment: Catchment,
) -> Accessibility:
    """The 2SFCA index of one service type on a built city and service map."""
    demand = demand_table(scenario, city, type_name)
    supply = supply_table(services, type_name, city.cell_size_m)
    i, j, cost = pairs_in_reach(demand, supply, catchment, city, scenario)
    weight = (
        gaussian_weight(cost, catchment.radius)
        if catchment.decay == "gaussian"
        else np.ones(len(cost))
    )
    d = demand["demand"].to_numpy(float)
    index, ratio = two_step_fca(d, supply["places"].to_numpy(float), i, j, weight)
    demand = demand.assign(access_2sfca=index)
    supply = supply.assign(
        demand_in_reach=np.bincount(j, weights=weight * d[i], minlength=len(supply)),
        ratio=ratio,
    )
    return Accessibility(type_name, catchment, demand, supply)
