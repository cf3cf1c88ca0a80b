"""Hub placement (sim/studies/placement.py, `famsim place-hubs`): verification of the parts
(candidate lists extended without a rebuild, the location models on a toy demand, the
probability of being best, bad candidate files) and one small study end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.app.cli import main
from sim.engine.model import FamilyAccessModel
from sim.outputs.placement import write_placements
from sim.studies.placement import (
    METHODS,
    OBJECTIVES,
    PlacementSettings,
    StaticDemand,
    auto_candidates,
    place_hubs,
    placement_findings,
    probability_best,
    solve_static,
    with_hubs,
)
from sim.world.build import build_world
from sim.world.city import build_city
from sim.world.services import build_services
from tests.helpers import small_scenario

pytestmark = pytest.mark.verification


@pytest.fixture(scope="module")
def small():
    scenario = small_scenario(run={"burn_in_weeks": 8, "weeks": 8, "replications": 2})
    city = build_city(scenario, "<test>")
    return scenario, city, auto_candidates(scenario, city)


def _same_candidates(a, b) -> None:
    for t in range(len(a.indptr)):
        assert np.array_equal(a.indptr[t], b.indptr[t])
        assert np.array_equal(a.service[t], b.service[t])
        assert np.array_equal(a.minutes[t], b.minutes[t])
    assert np.array_equal(a.nearest_service, b.nearest_service)
    assert np.array_equal(a.nearest_minutes, b.nearest_minutes)


@pytest.mark.parametrize("presence_from", ["moved", "added"])
def test_adding_hub_sites_to_a_world_equals_building_it_whole(small, presence_from):
    scenario, _city, candidates = small
    scenario = small_scenario(
        run={"burn_in_weeks": 8, "weeks": 8}, hubs={"presence_from": presence_from}
    )
    cells = [tuple(int(v) for v in c) for c in candidates[[0, len(candidates) // 2, -1]]]
    placed = with_hubs(scenario, cells)
    base = build_world(scenario, 11)
    fast = base.with_services(placed)
    whole = build_world(placed, 11)
    assert fast.services.services.size > base.services.services.size  # presences were added
    _same_candidates(fast.candidates, whole.candidates)
    # and the runs are the same bits
    runs = []
    for world in (fast, whole):
        model = FamilyAccessModel(placed, rng=11, world=world, materialise_agents=False)
        model.run_for(16)
        runs.append(model.metrics())
    pd.testing.assert_series_equal(pd.Series(runs[0]), pd.Series(runs[1]), check_exact=True)


def test_mclp_and_pmedian_choose_the_obvious_cell_on_a_toy_demand():
    # two clusters of demand 2 km apart, the heavy one at x = 0; one hub among three cells
    demand = StaticDemand(1, np.array([[50.0, 50.0], [2050.0, 50.0]]), np.array([90.0, 10.0]))
    candidates = np.array([[0, 0], [10, 0], [20, 0]])
    for method in ("mclp", "pmedian"):
        answer = solve_static(method, demand, candidates, [], 1, 100.0, 500.0, 10.0)
        assert answer.cells == [(0, 0)], method
        assert answer.status == "optimal"
        assert answer.covered_share == pytest.approx(0.9)
    # with an existing hub on the heavy cluster, the new one goes to the light one
    answer = solve_static("mclp", demand, candidates[1:], [(0, 0)], 1, 100.0, 500.0, 10.0)
    assert answer.cells == [(20, 0)]
    assert answer.covered_share == pytest.approx(1.0)


def test_probability_best_tells_a_clear_winner_and_shares_a_tie():
    rng = np.random.default_rng(3)
    common = rng.normal(size=(10, 1))
    clear = np.hstack([common + 1.0, common, common - 0.5])
    p = probability_best(clear)
    assert p[0] == pytest.approx(1.0) and p.sum() == pytest.approx(1.0)
    tie = np.hstack([common, common])
    assert probability_best(tie) == pytest.approx([0.5, 0.5])


# populated cells of the default city (its centre), so only the named fault is wrong
def _place_two(candidates, out) -> int:
    """`famsim place-hubs scenarios/base.toml --hubs 2` on a candidates file, in process."""
    args = ["place-hubs", "scenarios/base.toml", "--hubs", "2", "--candidates", str(candidates)]
    return main([*args, "--out", str(out)])


@pytest.mark.parametrize(
    "rows, expected",
    [
        ("x,y\n40,40\n999,3\n", "off the"),
        ("x,y\n40,40\n40,40\n", "named twice"),
        ("x,y\n40,40\n", "1 candidate cells for --hubs 2"),
        ("x,y\n40.5,40\n41,41\n", "whole grid cells"),
        ("a,b\n40,40\n", "column missing"),
    ],
    ids=["off-grid", "duplicate", "fewer-than-k", "not-a-cell", "no-columns"],
)
def test_bad_candidates_are_refused_with_one_line_exit_2_and_nothing_written(
    tmp_path, capsys, rows, expected
):
    file = tmp_path / "cells.csv"
    file.write_text(rows)
    out = tmp_path / "P"
    code = _place_two(file, out)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and expected in err[0] and str(file) in err[0]
    assert not out.exists()


def test_an_unpopulated_candidate_is_refused_unless_the_scenario_allows_it(tmp_path, capsys):
    from sim.scenario.schema import load_scenario
    from sim.studies.placement import read_candidates

    city = build_city(load_scenario("scenarios/base.toml"), "<test>")
    empty = np.argwhere(city.families == 0)[0]
    full = np.argwhere(city.families > 0)[:2]
    file = tmp_path / "cells.csv"
    pd.DataFrame(np.vstack([empty, full]), columns=["x", "y"]).to_csv(file, index=False)
    out = tmp_path / "P"
    code = _place_two(file, out)
    err = capsys.readouterr().err
    assert code == 2 and "hubs.unpopulated_sites" in err and not out.exists()

    allowed = read_candidates(file, load_scenario("scenarios/base.toml"), city, 2, True)
    assert len(allowed) == 3


def test_the_simulated_placement_is_at_least_every_other_method_on_the_same_seeds(small, tmp_path):
    scenario, city, candidates = small
    settings = PlacementSettings(
        k=2,
        objective=OBJECTIVES["unmet_need"],
        methods=METHODS,
        reps=2,
        final_reps=3,
        random_placements=4,
        greedy_width=3,
        swap_width=2,
        swap_rounds=1,
        final_contenders=2,
    )
    study = place_hubs(scenario, settings, candidates[:8], workers=1)
    column = settings.objective.column
    final = {
        m.method: np.mean([e.metrics[column] for e in study.final[m.cells]])
        for m in study.methods
        if m.cells
    }
    assert set(final) == {"simulated", "mclp", "pmedian", "random"}
    # lower unmet need is better
    assert all(final["simulated"] <= v + 1e-12 for v in final.values())
    assert 0.0 <= study.p_best[study.methods[0].cells] <= 1.0
    for m in study.methods:
        assert len(m.cells) == 2 and set(m.cells) <= {tuple(map(int, c)) for c in candidates[:8]}
    # the folder a planner opens: one row per method, what each hub holds, the sureness
    found = placement_findings(study, city)
    sites = build_services(scenario, city).services.frame()
    write_placements(found, city, sites, {"scenario": {"name": scenario.name}}, tmp_path / "P")
    table = pd.read_parquet(tmp_path / "P" / "placements.parquet")
    assert table["method"].tolist() == list(METHODS)
    held = pd.read_csv(tmp_path / "P" / "hub_services.csv")
    assert len(held) == 4 * 2 * len(scenario.hubs.types)
    public_childcare = {
        (int(x), int(y))
        for x, y in sites.loc[sites["public"] & (sites["type"] == "childcare"), ["x", "y"]].values
    }
    childcare = held[held["type"] == "childcare"]
    # childcare brings no presence (presence_capacity 0): a hub has it only where it is
    for row in childcare.itertuples():
        assert (row.how == "joins") == ((row.x, row.y) in public_childcare), row
        assert row.how != "brings"
    report = (tmp_path / "P" / "report.md").read_text()
    assert "## How sure the ranking is" in report and "probability that it is truly" in report
    assert "## Static measures and behaviour" in report
    for f in ("figures/placements.png", "figures/unmet_simulated.png"):
        assert (tmp_path / "P" / f).is_file()


def test_the_report_says_where_the_model_parts_from_coverage_from_what_was_measured():
    from types import SimpleNamespace

    from sim.outputs.placement import _why_they_differ

    held = pd.DataFrame(
        {
            "method": ["simulated", "simulated", "mclp", "mclp"],
            "x": [1, 2, 3, 4],
            "y": [1, 2, 3, 4],
            "type": "childcare",
            "how": ["joins", "joins", "joins", "none"],
            "places": [20, 20, 20, 0],
        }
    )
    gains = pd.DataFrame(
        {
            "method": ["simulated", "mclp"] * 3,
            "measure": ["u3_participation_arope"] * 2
            + ["unmet_need_share"] * 2
            + ["travel_minutes_used"] * 2,
            "mean": [0.02, 0.005, -0.01, -0.009, -3.0, 0.0],
        }
    )
    found = SimpleNamespace(hub_services=held, gains=gains, settings=SimpleNamespace(k=2))
    text = "\n".join(_why_they_differ(found, "simulated", "mclp"))
    assert "2 of the simulated placement's 2 hubs have childcare in them, 1 of MCLP's" in text
    # the largest difference in a share comes first; minutes are not shares
    first = text.index("simulated +2.00 pp, MCLP +0.50 pp")
    assert first < text.index("simulated -1.00 pp, MCLP -0.90 pp")
    assert "-300" not in text
