"""Cells in metres: the one convention every table a planner opens uses (cells.csv,
cells.geojson, the accessibility inputs). A cell [x, y] has the id x * height + y (the
order of a [x, y] array raveled), its lower-left corner at (x, y) * cell_size_m and its
centre half a cell further; x grows to the east, y to the north, origin at the grid's
lower-left corner."""

from __future__ import annotations

import numpy as np


def cell_id(x: np.ndarray, y: np.ndarray, height: int) -> np.ndarray:
    """The id of cell [x, y] in a grid `height` cells tall."""
    return np.asarray(x, dtype=np.int64) * height + np.asarray(y, dtype=np.int64)


def cell_xy(ids: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The cell [x, y] of each id (inverse of `cell_id`)."""
    ids = np.asarray(ids, dtype=np.int64)
    return ids // height, ids % height


def centre_m(index: np.ndarray, cell_size_m: float) -> np.ndarray:
    """Metres from the grid's origin to the centre of the cell at this x (or y) index."""
    return (np.asarray(index, dtype=float) + 0.5) * cell_size_m
