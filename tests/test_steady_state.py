"""Time (DESIGN §2): the initial age profile is stationary and a 156-week burn-in fills the
under-3 childcare stock, so participation is flat over the measured window."""

from __future__ import annotations

import numpy as np
from helpers import build, small_scenario

from sim.engine.week import Engine


def test_participation_is_steady_over_the_measured_window():
    scenario = small_scenario(run={"burn_in_weeks": 156, "weeks": 52})
    slopes, children = [], []
    for seed in (31, 32, 33):  # seed set declared in advance
        engine = Engine(build(scenario, seed))
        weekly, counts = [], []
        for _ in range(156 + 52):
            engine.step()
            if engine.week > 156:
                weekly.append(engine.last["u3_participation_all"])
                counts.append(engine.last["children_u3"])
        slopes.append(np.polyfit(np.arange(52), weekly, 1)[0] * 52)
        children.append(counts)
    # drift over the window below 2 percentage points a year in every replication
    assert max(abs(s) for s in slopes) < 0.02, slopes
    # the number of children under 3 is steady too (stationary demography)
    counts = np.array(children, dtype=float)
    assert (np.abs(counts[:, -1] / counts[:, 0] - 1) < 0.1).all()
