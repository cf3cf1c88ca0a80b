"""The planners' and researchers' notebooks (04 hub placement, 05 sweeps and sensitivity,
06 calibration), executed as tests/test_notebooks.py executes the first three (a file of
their own, so the two test workers share the six).

verification: each runs from a fresh kernel without error, draws a figure, and the
assertions on its own teaching claims hold.
"""

from __future__ import annotations

import pytest
from test_notebooks import EXPECTED, executed_with_checks


@pytest.mark.parametrize("name", EXPECTED[3:])
def test_a_notebook_runs_draws_a_figure_and_its_teaching_claims_hold(name):
    executed_with_checks(name)
