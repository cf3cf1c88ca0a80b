"""Verification of the tables and maps a planner opens: the per-cell table the measures
keep, its means over replications, the GeoJSON (loaded back with geopandas) and the map
furniture (kilometres, scale bar, services by type, hubs)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from sim.core.codes import SERVICE_TYPES
from sim.engine.model import FamilyAccessModel
from sim.outputs import geo, plots
from sim.world.geometry import cell_id
from tests.helpers import small_scenario

CELL = 125.0


@pytest.fixture(scope="module")
def model():
    scenario = small_scenario(**{"run": {"burn_in_weeks": 10, "weeks": 10}})
    m = FamilyAccessModel(scenario, rng=3, materialise_agents=False)
    m.run_for(20)
    return m


def test_the_cell_table_counts_every_family_once_and_adds_up_to_the_neighbourhoods(model):
    acc = model.engine.accumulator
    cells = acc.cell_table()
    f = acc.inputs.families
    city = acc.inputs.city
    assert len(cells) == city.n_cells
    assert cells["families"].sum() == len(f.x)
    assert cells["arope_families"].sum() == int(f.is_arope.sum())
    # the id is the geometry's: the cell of each family is where it is counted
    home = cell_id(f.x, f.y, city.height)
    assert (cells["families"].to_numpy() == np.bincount(home, minlength=city.n_cells)).all()
    assert (cells["cell_id"] == cells["x"] * city.height + cells["y"]).all()
    # per neighbourhood, the cells sum to the neighbourhood table
    areas = acc.area_table().set_index("neighbourhood")
    by_hood = cells.groupby("neighbourhood")[["need_weeks", "unmet_need_weeks"]].sum()
    assert (by_hood["need_weeks"] == areas.loc[by_hood.index, "need_weeks"]).all()
    assert (by_hood["unmet_need_weeks"] == areas.loc[by_hood.index, "unmet_need_weeks"]).all()
    assert cells["need_weeks"].sum() > 0
    assert (cells["unmet_need_weeks"] <= cells["need_weeks"]).all()


def _hand_cells() -> pd.DataFrame:
    """Two replications of a 2 x 1 grid: cell 0 has need, cell 1 none."""
    columns = ["scenario", "replication", "cell_id", "x", "y", "neighbourhood", "deprivation"]
    columns += ["families", "arope_families", "need_weeks", "unmet_need_weeks"]
    rows = [
        ("s", 0, 0, 0, 0, 0, 0.5, 3, 1, 10, 4),
        ("s", 0, 1, 1, 0, 0, 0.1, 0, 0, 0, 0),
        ("s", 1, 0, 0, 0, 0, 0.5, 5, 1, 30, 6),
        ("s", 1, 1, 1, 0, 0, 0.1, 0, 0, 0, 0),
    ]
    return pd.DataFrame(rows, columns=columns)


def test_the_cell_summary_is_a_mean_over_replications_with_a_pooled_share():
    summary = geo.cell_summary(_hand_cells(), CELL, weeks=5)
    first = summary.iloc[0]
    assert first["families"] == 4.0 and first["need_weeks"] == 20.0
    assert first["unmet_need_weeks"] == 5.0
    assert first["unmet_needs_per_week"] == 1.0  # 5 unmet need-weeks over 5 weeks
    assert first["unmet_share"] == pytest.approx(10 / 40)  # pooled, not (0.4 + 0.2) / 2
    assert (first["x_m"], first["y_m"]) == (62.5, 62.5)
    assert np.isnan(summary.iloc[1]["unmet_share"])
    assert list(summary.columns) == ["scenario", *geo.CELL_COLUMNS]
    # the map leaves the cell without need blank
    shares = geo.grid(summary, "unmet_share")
    assert shares.shape == (2, 1) and shares[0, 0] == pytest.approx(0.25)
    assert np.isnan(shares[1, 0])


def test_the_geojson_loads_in_geopandas_as_cell_squares_in_local_metres(tmp_path):
    cells = _hand_cells()
    sites = pd.DataFrame(
        {
            "scenario": "s",
            "replication": [0, 1],
            "site_id": 0,
            "type": "childcare",
            "x": 1,
            "y": 0,
            "public": True,
            "hub": -1,
            "places": 20,
            "occupancy": [0.5, 1.0],
        }
    )
    files, summary = geo.write_tables(cells, sites, CELL, 5, tmp_path)
    assert files == ["cells.csv", "sites.csv", "cells.geojson"]
    frame = gpd.read_file(tmp_path / "cells.geojson")
    assert len(frame) == 1  # the cell with no family and no need is left out
    assert frame.crs is not None and not frame.crs.is_geographic
    assert frame.crs.axis_info[0].unit_name == "metre"
    assert frame.geometry.iloc[0].area == pytest.approx(CELL**2)
    assert tuple(frame.total_bounds) == (0.0, 0.0, CELL, CELL)
    assert frame["unmet_share"].iloc[0] == pytest.approx(0.25)
    table = pd.read_csv(tmp_path / "cells.csv")
    assert len(table) == 2 and table["unmet_needs_per_week"].tolist() == [1.0, 0.0]
    site_table = pd.read_csv(tmp_path / "sites.csv")
    assert site_table["occupancy"].tolist() == [0.75]
    assert (site_table["x_m"].iloc[0], site_table["y_m"].iloc[0]) == (187.5, 62.5)
    # strict JSON: an empty share is null, never NaN
    assert json.loads((tmp_path / "cells.geojson").read_text())["features"][0]["properties"]


def test_every_service_type_has_a_marker_and_the_map_is_in_km_with_hubs_starred():
    assert set(plots.SERVICE_MARKERS) == set(SERVICE_TYPES)
    values = np.random.default_rng(0).random((40, 20))
    sites = pd.DataFrame(
        {
            "type": ["childcare", "health", "childcare"],
            "x": [3, 10, 10],
            "y": [4, 12, 12],
            "hub": [-1, 0, 0],
        }
    )
    fig = plots.plt.figure()
    ax = fig.add_subplot()
    plots.city_map(ax, values, 250.0, sites, hubs_xy=[(30, 5)], label="x")
    assert ax.get_xlim() == (0.0, 10.0) and ax.get_ylim() == (0.0, 5.0)
    assert ax.get_xlabel() == "km east"
    labels = [c.get_label() for c in ax.collections]
    assert labels == ["childcare", "health", "hub"]
    hub_xy = ax.collections[-1].get_offsets()
    # the existing hub's cell and the proposed one, at cell centres in km
    assert sorted(map(tuple, np.asarray(hub_xy).tolist())) == [(2.625, 3.125), (7.625, 1.375)]
    assert any(t.get_text().strip() == "2 km" for t in ax.texts)  # a fifth of 10 km
    plots.plt.close(fig)
