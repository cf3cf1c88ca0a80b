"""The per-cell and per-site tables a planner opens in a spreadsheet or QGIS: cells.csv,
sites.csv and cells.geojson, written beside every run and comparison (docs/ODD.md §7.13).

Coordinates are the city's own metres from the grid's lower-left corner
(sim.world.geometry): a synthetic or planner's grid has no geographic reference, so the
GeoJSON names no EPSG code (which would claim longitude and latitude) but a local
engineering CRS in metres, in the `crs` member GDAL, geopandas and QGIS read. Every figure is a
mean over the replications; the unmet share is pooled (the replications' unmet need-weeks
over their need-weeks), so a cell with little need in one replication does not count as
much as a busy one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sim.world.geometry import centre_m

# what each column of cells.csv is, in its unit (also the README's table)
CELL_COLUMNS = {
    "cell_id": "x * height + y",
    "x": "cell column, 0 at the west edge",
    "y": "cell row, 0 at the south edge",
    "x_m": "metres east of the grid's origin to the cell centre",
    "y_m": "metres north of the grid's origin to the cell centre",
    "neighbourhood": "neighbourhood index",
    "deprivation": "observable deprivation score, 0-1",
    "families": "families living in the cell at the end of the run",
    "arope_families": "of them at risk of poverty or social exclusion (AROPE)",
    "need_weeks": "(family, service type) needs summed over the measured weeks",
    "unmet_need_weeks": "of them unmet",
    "unmet_needs_per_week": "unmet (family, service type) needs in an average measured week",
    "unmet_share": "unmet need-weeks over need-weeks (empty where no need)",
}
# the grid's own metric frame, as WKT2 (RFC 7946 dropped `crs`; GDAL still honours it)
LOCAL_CRS = (
    'ENGCRS["famsim city grid",EDATUM["lower-left corner of the grid"],CS[Cartesian,2],'
    'AXIS["easting (X)",east,ORDER[1],LENGTHUNIT["metre",1]],'
    'AXIS["northing (Y)",north,ORDER[2],LENGTHUNIT["metre",1]]]'
)
SUMMED = ["families", "arope_families", "need_weeks", "unmet_need_weeks"]


def cell_summary(cells: pd.DataFrame, cell_size_m: float, weeks: int) -> pd.DataFrame:
    """Means over replications per (scenario, cell) of the stacked per-replication cell
    tables (sim.measure.metrics.cell_table), with the cell's centre in metres, unmet needs
    per measured week (the count map) and the pooled unmet share (the share map)."""
    keys = ["scenario", "cell_id", "x", "y", "neighbourhood", "deprivation"]
    table = cells.groupby(keys, sort=False, as_index=False)[SUMMED].mean()
    table.insert(4, "x_m", centre_m(table["x"], cell_size_m))
    table.insert(5, "y_m", centre_m(table["y"], cell_size_m))
    table["unmet_needs_per_week"] = table["unmet_need_weeks"] / max(weeks, 1)
    need = table["need_weeks"].to_numpy(dtype=float)
    unmet = table["unmet_need_weeks"].to_numpy(dtype=float)
    table["unmet_share"] = np.divide(unmet, need, out=np.full(need.shape, np.nan), where=need > 0)
    return table[["scenario", *CELL_COLUMNS]]


def site_summary(sites: pd.DataFrame, cell_size_m: float) -> pd.DataFrame:
    """Means over replications per (scenario, site) of the stacked site tables: where the
    site is (cell and metres), what it offers and how full it is."""
    fixed = ["scenario", "site_id", "type", "x", "y", "public", "hub", "places"]
    measured = [c for c in sites.columns if c not in fixed and c != "replication"]
    table = sites.groupby(fixed, sort=False, as_index=False)[measured].mean()
    table.insert(5, "x_m", centre_m(table["x"], cell_size_m))
    table.insert(6, "y_m", centre_m(table["y"], cell_size_m))
    return table


def grid(summary: pd.DataFrame, column: str) -> np.ndarray:
    """One scenario's cell summary as a [x, y] array of `column` (the maps draw it), NaN
    (blank on a map) where no family needed a service in the measured weeks."""
    width, height = int(summary["x"].max()) + 1, int(summary["y"].max()) + 1
    values = np.full((width, height), np.nan)
    shown = summary[summary["need_weeks"] > 0]
    values[shown["x"].to_numpy(), shown["y"].to_numpy()] = shown[column].to_numpy()
    return values


def cells_geojson(summary: pd.DataFrame, cell_size_m: float) -> dict:
    """A GeoJSON FeatureCollection: one square polygon per (scenario, cell) with a family
    or a need, in the city's metres, carrying every column of `summary`."""
    shown = summary[(summary["families"] > 0) | (summary["need_weeks"] > 0)]
    features = []
    for row in shown.to_dict("records"):
        x0, y0 = row["x"] * cell_size_m, row["y"] * cell_size_m
        x1, y1 = x0 + cell_size_m, y0 + cell_size_m
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        properties = {k: _plain(v) for k, v in row.items()}
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": properties,
            }
        )
    return {
        "type": "FeatureCollection",
        "name": "famsim_cells",
        "crs": {"type": "name", "properties": {"name": LOCAL_CRS}},
        "features": features,
    }


def _plain(value):
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else round(float(value), 6)
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value


def write_tables(
    cells: pd.DataFrame, sites: pd.DataFrame, cell_size_m: float, weeks: int, out: Path
) -> tuple[list[str], pd.DataFrame]:
    """Write cells.csv, sites.csv and cells.geojson into `out` (a staging folder); returns
    the files written and the cell summary (the maps draw it)."""
    summary = cell_summary(cells, cell_size_m, weeks)
    summary.to_csv(out / "cells.csv", index=False)
    site_summary(sites, cell_size_m).to_csv(out / "sites.csv", index=False)
    (out / "cells.geojson").write_text(
        json.dumps(cells_geojson(summary, cell_size_m), allow_nan=False), encoding="utf-8"
    )
    return ["cells.csv", "sites.csv", "cells.geojson"], summary
