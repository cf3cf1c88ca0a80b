"""Verification of the 2SFCA index (sim/world/accessibility.py) and `famsim accessibility`:
a hand-computed example, the conservation of places, and agreement with PySAL `access` on
the same inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.app.cli import main
from sim.scenario.schema import load_scenario
from sim.world.accessibility import Catchment, accessibility, gaussian_weight, two_step_fca
from sim.world.city import build_city
from sim.world.services import build_services

pytestmark = pytest.mark.verification


def test_two_step_fca_equals_a_hand_computed_example():
    # three cells of demand 10, 20, 30 on a line 1 km apart; site A (12 places) at the
    # first cell, site B (6 places) at the third; catchment 1 km:
    # A reaches cells 1-2 (30 families): R_A = 12 / 30 = 0.4
    # B reaches cells 2-3 (50 families): R_B = 6 / 50 = 0.12
    # cell 1: 0.4; cell 2: 0.4 + 0.12 = 0.52; cell 3: 0.12
    demand = np.array([10.0, 20.0, 30.0])
    places = np.array([12.0, 6.0])
    i = np.array([0, 1, 1, 2])
    j = np.array([0, 0, 1, 1])
    index, ratio = two_step_fca(demand, places, i, j, np.ones(4))
    assert ratio == pytest.approx([0.4, 0.12])
    assert index == pytest.approx([0.4, 0.52, 0.12])
    # every place is shared out over the families who can reach it
    assert (demand * index).sum() == pytest.approx(places.sum())


def test_gaussian_weight_is_one_at_the_site_and_zero_at_the_edge():
    w = gaussian_weight(np.array([0.0, 500.0, 1000.0, 1500.0]), 1000.0)
    assert w[0] == 1.0 and w[2] == pytest.approx(0.0, abs=1e-12) and w[3] == 0.0
    assert w[1] == pytest.approx((np.exp(-0.125) - np.exp(-0.5)) / (1 - np.exp(-0.5)))


@pytest.fixture(scope="module")
def base_city():
    scenario = load_scenario("scenarios/base.toml")
    city = build_city(scenario, "<test>")
    return scenario, city, build_services(scenario, city).services


@pytest.mark.parametrize(
    "catchment",
    [Catchment(1500.0), Catchment(1500.0, "gaussian"), Catchment(15.0, mode="transit")],
    ids=["metres", "gaussian", "transit-minutes"],
)
@pytest.mark.parametrize("type_name", ["childcare", "health"])
def test_places_are_conserved_over_the_children_in_reach(base_city, catchment, type_name):
    scenario, city, services = base_city
    result = accessibility(scenario, city, services, type_name, catchment)
    d, s = result.demand, result.supply
    reached = s["demand_in_reach"] > 0
    assert (d["demand"] * d["access_2sfca"]).sum() == pytest.approx(s.loc[reached, "places"].sum())
    assert (d["access_2sfca"] >= 0).all()


@pytest.mark.parametrize("decay", ["none", "gaussian"])
def test_the_kernel_agrees_with_pysal_access(base_city, decay):
    from access import Access

    scenario, city, services = base_city
    radius = 1200.0
    ours = accessibility(scenario, city, services, "childcare", Catchment(radius, decay))
    demand = ours.demand.set_index("cell_id")
    # PySAL `access` locates supply on the demand's own ids: sum the places per cell
    cells = dict(zip(zip(demand["x"], demand["y"], strict=True), demand.index, strict=True))
    supply = ours.supply.assign(
        cell_id=[cells[(x, y)] for x, y in zip(ours.supply["x"], ours.supply["y"], strict=True)]
    )
    supply = supply.groupby("cell_id")[["places"]].sum()
    xy = demand[["x_m", "y_m"]].to_numpy()
    origin, dest = np.meshgrid(np.arange(len(xy)), np.arange(len(xy)), indexing="ij")
    near = np.isin(demand.index.to_numpy()[dest], supply.index.to_numpy())
    o, t = origin[near], dest[near]
    cost = pd.DataFrame(
        {
            "origin": demand.index.to_numpy()[o],
            "dest": demand.index.to_numpy()[t],
            "cost": np.hypot(xy[o, 0] - xy[t, 0], xy[o, 1] - xy[t, 1]),
        }
    )
    model = Access(
        demand_df=demand[["demand"]],
        demand_index=True,
        demand_value="demand",
        supply_df=supply,
        supply_index=True,
        supply_value="places",
        cost_df=cost,
        cost_origin="origin",
        cost_dest="dest",
        cost_name="cost",
    )
    weight = (lambda c: gaussian_weight(np.asarray(c), radius)) if decay == "gaussian" else None
    theirs = model.two_stage_fca(name="a", max_cost=radius, weight_fn=weight)["a_places"]
    theirs = theirs.reindex(demand.index).fillna(0.0)
    assert np.allclose(demand["access_2sfca"].to_numpy(), theirs.to_numpy(), rtol=1e-9, atol=1e-12)


def test_famsim_accessibility_writes_its_inputs_and_index(tmp_path):
    out = tmp_path / "A"
    assert (
        main(
            [
                "accessibility",
                "scenarios/base.toml",
                "--radius-m",
                "1500",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    demand = pd.read_parquet(out / "demand.parquet")
    supply = pd.read_parquet(out / "supply.parquet")
    index = pd.read_parquet(out / "access.parquet")
    assert {"cell_id", "x_m", "y_m", "demand"} <= set(demand.columns)
    assert {"site_id", "x_m", "y_m", "places"} <= set(supply.columns)
    assert list(index.columns) == ["cell_id", "access_2sfca"]
    assert (out / "access_map.png").stat().st_size > 0
    # Σ demand × access = Σ places of every site with demand in reach
    joined = demand.merge(index, on="cell_id")
    reached = supply["demand_in_reach"] > 0
    assert (joined["demand"] * joined["access_2sfca"]).sum() == pytest.approx(
        supply.loc[reached, "places"].sum()
    )


def test_a_bad_radius_is_refused_with_exit_2_and_nothing_written(tmp_path, capsys):
    out = tmp_path / "A"
    with pytest.raises(SystemExit) as stop:
        main(["accessibility", "scenarios/base.toml", "--radius-m", "-5", "--out", str(out)])
    assert stop.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not out.exists()
