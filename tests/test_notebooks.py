"""The teaching notebooks (notebooks/*.ipynb), executed as a student would run them.

verification: each notebook runs from a fresh kernel without error, draws at least one
figure, and its last code cell's assertions on its own computed figures (its teaching
claims, with the seed stated) hold; a notebook whose story no longer holds fails here. Each
is stored without outputs, states what it teaches, for whom and how long it takes, and
expands every abbreviation where it first uses it.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED = [
    "01_quickstart.ipynb",
    "02_configurations.ipynb",
    "03_thresholds.ipynb",
    "04_hub_placement.ipynb",
    "05_sweeps_and_sensitivity.ipynb",
    "06_calibration.ipynb",
]
# abbreviation -> words its first use must be expanded with (in the same cell)
ABBREVIATIONS = {
    "AROPE": "at risk of poverty or social exclusion",
    "2SFCA": "two-step floating catchment area",
    "ECEC": "early childhood education and care",
    "EU-SILC": "statistics on income and living conditions",
    "MCLP": "maximal covering location problem",
    "FTE": "full-time equivalent",
    "NROY": "not ruled out yet",
    "CRN": "common random numbers",
}


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def test_the_six_notebooks_are_there():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_a_notebook_is_stored_without_outputs_and_says_what_for_whom_and_how_long(name):
    nb = read(name)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, name
    head = nb.cells[0].source
    for part in ("**What you learn.**", "**For whom.**", "**Time.**"):
        assert part in head, f"{name}: its first cell lacks {part}"


@pytest.mark.parametrize("name", EXPECTED)
def test_every_abbreviation_is_expanded_where_a_notebook_first_uses_it(name):
    for abbreviation, words in ABBREVIATIONS.items():
        pattern = re.compile(rf"(?<![\w-]){re.escape(abbreviation)}(?![\w-])")
        first = next((c.source for c in read(name).cells if pattern.search(c.source)), None)
        if first is not None:
            text = " ".join(first.lower().split())
            assert words in text, f"{name}: {abbreviation} first used without '{words}'"


@pytest.mark.parametrize("name", EXPECTED)
def test_a_notebook_runs_draws_a_figure_and_its_teaching_claims_hold(name):
    nb = read(name)
    checks = nb.cells[-2].source if nb.cells[-1].cell_type == "markdown" else nb.cells[-1].source
    assert sum(c.source.count("assert ") for c in nb.cells if c.cell_type == "code") >= 1
    assert "assert " in checks, f"{name}: its checks cell holds no assertion"
    # a fresh kernel in notebooks/, as `make notebooks` opens them; an error in any cell
    # (a failed assertion among them) raises CellExecutionError here
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{name}: no figure drawn"
    assert any("all checks hold" in o.get("text", "") for o in outputs), name
