"""The Python API and the command line's conveniences, as a notebook user and a researcher
reach them (verification): sim.run / sim.compare with the CLI's options, summaries with
intervals, figures and folders; validate --resolved, --version, --workers, help texts."""

from __future__ import annotations

import re
import tomllib

import pandas as pd
import pytest
from matplotlib.figure import Figure
from test_cli import ROOT, TINY, famsim, merged, write_scenario

import sim
from sim.core.errors import ScenarioError

pytestmark = pytest.mark.verification

SCENARIOS = ROOT / "scenarios"
SMALL = {"reps": 2, "weeks": 8, "burn_in": 30, "families": 1500}


@pytest.fixture(scope="module")
def result() -> sim.studies.runner.RunResult:
    return sim.run(sim.load_scenario(SCENARIOS / "base.toml"), **SMALL)


@pytest.fixture(scope="module")
def comparison():
    universal = sim.load_scenario(SCENARIOS / "universal.toml")
    proportionate = sim.load_scenario(SCENARIOS / "proportionate.toml")
    return sim.compare([universal, proportionate], ["uni", "prop"], **SMALL)


def test_sim_run_takes_the_command_lines_options(result):
    runs = result.runs
    assert len(runs) == 2 and set(runs["weeks"]) == {8} and set(runs["families"]) == {1500}
    assert set(runs["burn_in_weeks"]) == {30}


def test_sim_run_gives_the_same_numbers_as_famsim_run(tmp_path, result):
    done = famsim(
        "run",
        str(SCENARIOS / "base.toml"),
        *("--reps", "2", "--weeks", "8", "--burn-in", "30", "--families", "1500"),
        *("--out", str(tmp_path / "out"), "--quiet"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    from_cli = pd.read_parquet(tmp_path / "out" / "runs.parquet")
    pd.testing.assert_frame_equal(from_cli, result.runs, check_dtype=False)


def test_a_run_summary_has_a_mean_and_interval_per_measure(result):
    summary = result.summary()
    assert list(summary.columns) == ["measure", "unit", "mean", "low", "high", "n"]
    shares = summary[summary["measure"].str.startswith("u3_participation")]
    assert (shares["low"] >= 0).all() and (shares["high"] <= 1).all()  # cut to the range
    row = summary.set_index("measure").loc["u3_participation_all"]
    assert row["n"] == 2 and row["low"] <= row["mean"] <= row["high"]
    assert row["mean"] == pytest.approx(result.runs["u3_participation_all"].mean())


@pytest.mark.parametrize(
    "kind",
    ["participation_over_time", "unmet_need_map", "quintile_gradient", "barrier_attribution"],
)
def test_a_runs_standard_figures_are_returned_for_a_notebook(result, kind):
    assert isinstance(result.plot(kind), Figure)


def test_a_run_writes_its_folder_and_saves_a_figure(result, tmp_path):
    written = result.write(tmp_path / "out")
    assert (tmp_path / "out" / "manifest.json") in written
    assert result.plot("quintile_gradient", tmp_path / "q.png") is None
    assert (tmp_path / "q.png").stat().st_size > 0


def test_an_unknown_figure_names_the_ones_there_are(result):
    with pytest.raises(ValueError, match="allowed: participation_over_time"):
        result.plot("pie")


def test_compare_names_the_scenarios_and_pairs_differences_with_the_baseline(comparison):
    summary = comparison.summary(["u3_participation_arope"]).set_index("scenario")
    assert list(summary.index) == ["uni", "prop"]
    assert summary.loc["uni", "diff"] == 0.0
    runs = comparison.runs.set_index(["scenario", "replication"])["u3_participation_arope"]
    expected = (runs["prop"] - runs["uni"]).mean()
    assert summary.loc["prop", "diff"] == pytest.approx(expected)
    assert summary.loc["prop", "diff_low"] <= expected <= summary.loc["prop", "diff_high"]


def test_a_comparisons_figures_and_folder(comparison, tmp_path):
    assert isinstance(comparison.plot("participation_by_group"), Figure)
    assert isinstance(comparison.plot("unmet_need_maps"), Figure)
    comparison.write(tmp_path / "cmp")
    assert set(pd.read_parquet(tmp_path / "cmp" / "runs.parquet")["scenario"]) == {"uni", "prop"}


def test_a_keyword_out_of_range_is_blamed_on_the_keyword():
    base = sim.load_scenario(SCENARIOS / "base.toml")
    with pytest.raises(ScenarioError, match=r"^<sim.run>: reps: value 0"):
        sim.run(base, reps=0)
    with pytest.raises(ScenarioError, match=r"^<sim.compare>: weeks:"):
        sim.compare([base, base], ["a", "b"], weeks=10**6)


def test_a_planners_city_cannot_be_rescaled_from_python():
    with pytest.raises(ScenarioError, match="families"):
        sim.run(sim.load_scenario(SCENARIOS / "example_city.toml"), families=2000)


# --- the command line's conveniences ---------------------------------------------------------


@pytest.mark.parametrize("name", ["base", "proportionate", "example_city"])
def test_validate_resolved_prints_toml_that_loads_back_to_the_same_hash(tmp_path, name):
    path = SCENARIOS / f"{name}.toml"
    done = famsim("validate", str(path), "--resolved", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    tomllib.loads(done.stdout)  # plain TOML
    copy = tmp_path / f"{name}.toml"
    copy.write_text(done.stdout, encoding="utf-8")
    assert sim.load_scenario(copy).content_hash() == sim.load_scenario(path).content_hash()
    assert "extends" not in tomllib.loads(done.stdout)


def test_famsim_version_prints_the_installed_version(tmp_path):
    done = famsim("--version", cwd=tmp_path)
    assert done.returncode == 0 and re.fullmatch(r"famsim \d+\.\d+\.\d+\S*\n", done.stdout)


def test_a_sweep_file_given_to_run_says_to_use_famsim_sweep(tmp_path):
    sweep = SCENARIOS / "sweeps" / "smoke.toml"
    done = famsim("run", str(sweep), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "this is a sweep file" in done.stderr and "famsim sweep" in done.stderr


def test_run_workers_change_no_result(tmp_path):
    scenario = write_scenario(
        tmp_path, merged(TINY, run={"replications": 3, "weeks": 3, "burn_in_weeks": 3}), "t.toml"
    )
    frames = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        args = ("--workers", workers, "--out", str(out), "--quiet")
        done = famsim("run", str(scenario), *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        frames.append(pd.read_parquet(out / "runs.parquet"))
    pd.testing.assert_frame_equal(frames[0], frames[1])


@pytest.mark.parametrize("command", ["run", "compare", "validate", "sweep", "sensitivity", "demo"])
def test_every_subcommand_has_an_example_and_help_for_its_arguments(command):
    from sim.app.cli import build_parser

    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    assert sub.epilog and sub.epilog.startswith("example: famsim ")
    for action in sub._actions:
        assert action.help, (command, action.dest)


def _readme_row(column: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (row,) = [line for line in readme.splitlines() if line.startswith(f"| `{column}` (optional)")]
    return row


def test_the_readme_describes_the_example_citys_neighbourhood_labels_as_they_are():
    cells = pd.read_csv(SCENARIOS / "cities" / "example_cells.csv")
    labels = cells["neighbourhood"]
    assert not pd.api.types.is_numeric_dtype(labels)  # names such as West
    row = _readme_row("neighbourhood")
    assert "a name or a number" in row and str(labels.iloc[0]) in row


def test_the_readme_describes_a_services_languages_as_the_example_uses_them():
    from sim.world.city import build_city
    from sim.world.services import build_services

    services = pd.read_csv(SCENARIOS / "cities" / "example_services.csv")
    assert any("local;" in str(v) for v in services["languages"])  # local is listed
    row = _readme_row("languages")
    assert "local;lang_a" in row and "always spoken" in row
    scenario = sim.load_scenario(SCENARIOS / "example_city.toml")
    services_built = build_services(scenario, build_city(scenario)).services
    local = list(scenario.city.languages).index("local")
    assert services_built.speaks[:, local].all()


def test_a_missing_kernel_cache_is_announced_as_compiling(tmp_path, monkeypatch, capsys):
    from sim.app import cli
    from sim.core import compiled

    monkeypatch.setattr(compiled, "PACKAGE_DIR", tmp_path)
    assert compiled.needs_compiling()
    cli._announce_compiling(quiet=False)
    assert "compiling the engine" in capsys.readouterr().err
    for module in compiled.COMPILED_MODULES:
        folder, name = module.rsplit("/", 1)
        (tmp_path / folder / "__pycache__").mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "__pycache__" / f"{name}.some_loop-12.py313.nbi").write_bytes(b"")
        assert compiled.needs_compiling() == (module != compiled.COMPILED_MODULES[-1])
    assert not compiled.needs_compiling()
    cli._announce_compiling(quiet=False)
    assert capsys.readouterr().err == ""


def test_every_module_with_compiled_loops_is_listed_for_the_compile_notice():
    from sim.core import compiled

    with_loops = {
        str(path.relative_to(compiled.PACKAGE_DIR).with_suffix(""))
        for path in compiled.PACKAGE_DIR.rglob("*.py")
        if "\n@kernel\n" in path.read_text()  # @inline helpers are compiled into their callers
    }
    assert with_loops == set(compiled.COMPILED_MODULES)


def test_a_large_citys_world_build_is_said_part_by_part(monkeypatch, capsys):
    """verification: from PROGRESS_FAMILIES on, the first replication's world build says
    each part with its seconds (the threshold is lowered here to keep the city small)."""
    from sim.studies import runner

    monkeypatch.setattr(runner, "PROGRESS_FAMILIES", 1000)
    scenario = runner.with_run_settings(
        sim.load_scenario(SCENARIOS / "base.toml"),
        weeks=1,
        burn_in=1,
        replications=2,
        families=1500,
    )
    runner.execute([(scenario, 0), (scenario, 1)], workers=1, quiet=False, label="t")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "famsim: building the world of 1,500 families ..."
    parts = [line for line in lines if line.startswith("famsim:   built: ")]
    assert [p.split(": ", 2)[2].split(" ")[-3] for p in parts][-1] == "lists"
    assert len(parts) == 4 and all(p.endswith(" s") for p in parts)
    assert sum("building the world" in line for line in lines) == 1  # the first replication only


def test_a_traced_family_s_weeks_follow_the_engine_s_state_and_rules():
    """verification: trace_families reads one measured week per row and type; a family using
    a service has no barrier logged for it, a family with no need has none either, and the
    traced families are the default's (AROPE, youngest at most 12 weeks old at the start)."""
    scenario = sim.load_scenario(SCENARIOS / "base.toml")
    traces = sim.trace_families(scenario, count=4, families=800, weeks=6, seed=3)
    assert 1 <= len(traces) <= 4  # as many as the city has, at most count
    for trace in traces:
        w = trace.weeks
        assert trace.family["at_risk_of_poverty"]
        assert set(w.week) <= set(range(6)) and len(w) % 4 == 0
        assert (w.loc[w.status == 2, "blocked_by"] == "").all()
        assert (w.loc[~w.need, "blocked_by"] == "").all()
        assert w.child_age_weeks.min() >= 0 and w.child_age_weeks.iloc[0] <= 12
        assert len(trace.story()) >= 4  # at least one spell per service type


def test_plot_city_names_an_unknown_layer_in_one_line():
    scenario = sim.load_scenario(SCENARIOS / "base.toml")
    world = sim.city_world(scenario, families=600)
    with pytest.raises(sim.ScenarioError, match="layer.*allowed: families, deprivation"):
        sim.plot_city(world, "income")
