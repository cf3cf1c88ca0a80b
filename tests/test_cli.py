"""The command line on bad input: `famsim run bad.toml --out X` prints exactly one line on
stderr naming the file, the key path and what is allowed, exits with code 2, shows no
traceback and leaves X non-existent. Each case runs the real CLI in a subprocess."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_scenario import toml_document

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "scenarios" / "base.toml"
EXAMPLE = ROOT / "scenarios" / "example_city.toml"
CELLS = ROOT / "scenarios" / "cities" / "example_cells.csv"
SERVICES = ROOT / "scenarios" / "cities" / "example_services.csv"

# A city small enough that a run which should have been refused would still end quickly.
TINY: dict[str, Any] = {
    "extends": str(BASE),
    "name": "tiny",
    "city": {"families": 300, "width": 20, "height": 20, "neighbourhoods": 4},
    "run": {"weeks": 2, "burn_in_weeks": 2, "replications": 1},
}
# The shipped example's tables, read from a copy in the test's folder.
TOWN: dict[str, Any] = {
    "extends": str(BASE),
    "name": "town",
    "city": {
        "source": "file",
        "width": 20,
        "height": 20,
        "families": 909,
        "cells_file": "cells.csv",
        "services_file": "services.csv",
        "languages": {"local": 0.8, "lang_a": 0.14, "lang_b": 0.06},
    },
    "run": {"weeks": 2, "burn_in_weeks": 2, "replications": 1},
}


def famsim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "sim", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def merged(base: dict[str, Any], **sections: Any) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return doc


def write_scenario(folder: Path, doc: dict[str, Any], name: str = "bad.toml") -> Path:
    path = folder / name
    path.write_text(toml_document(doc), encoding="utf-8")
    return path


def write_town(folder: Path, cells=None, services=None, **sections: Any) -> Path:
    """The example city's tables (optionally changed) next to a scenario naming them."""
    cell_table = pd.read_csv(CELLS)
    service_table = pd.read_csv(SERVICES)
    (cells or (lambda df: df))(cell_table).to_csv(folder / "cells.csv", index=False)
    (services or (lambda df: df))(service_table).to_csv(folder / "services.csv", index=False)
    return write_scenario(folder, merged(TOWN, **sections), "town.toml")


def assert_refused(done: subprocess.CompletedProcess, out: Path, *expected: str) -> str:
    """Exit code 2, exactly one non-empty line on stderr containing every expected text,
    no traceback, nothing on stdout, and no output folder."""
    assert done.returncode == 2, (done.returncode, done.stderr, done.stdout)
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.endswith("\n") and done.stderr.count("\n") == 1, done.stderr
    line = done.stderr.strip()
    assert line
    for text in expected:
        assert text in line, f"{text!r} not in {line!r}"
    assert done.stdout == ""
    assert not out.exists()
    return line


def refused_run(tmp_path: Path, scenario: Path, *expected: str, extra: tuple[str, ...] = ()):
    out = tmp_path / "out"
    done = famsim("run", str(scenario), "--out", str(out), "--quiet", *extra, cwd=tmp_path)
    return assert_refused(done, out, *expected)


# --- a run that should succeed, to show the cases below would have written ----------------


def test_a_tiny_valid_scenario_runs_and_writes_its_results(tmp_path):
    out = tmp_path / "out"
    scenario = write_scenario(tmp_path, TINY, "tiny.toml")
    done = famsim("run", str(scenario), "--out", str(out), "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (out / "runs.parquet").exists() and (out / "manifest.json").exists()


def test_without_out_the_results_go_to_results_and_the_scenario_name(tmp_path):
    scenario = write_scenario(tmp_path, TINY, "tiny.toml")
    done = famsim("run", str(scenario), "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "tiny.toml"]
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["tiny"]


def test_the_shipped_example_city_validates_and_runs(tmp_path):
    done = famsim("validate", str(EXAMPLE), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "valid scenario 'example_city'" in done.stdout
    out = tmp_path / "x"
    args = ("--reps", "1", "--weeks", "4", "--burn-in", "4", "--out", str(out), "--quiet")
    done = famsim("run", str(EXAMPLE), *args, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 1 and runs["families"].iloc[0] == 909


# --- bad scenario files ---------------------------------------------------------------------


def test_an_unknown_key_is_one_line_with_a_did_you_mean(tmp_path):
    doc = merged(TINY, city={"familes": 300})
    line = refused_run(tmp_path, write_scenario(tmp_path, doc), "bad.toml", "city.familes")
    assert "did you mean 'families'?" in line


def test_validate_reports_an_unknown_key_the_same_way(tmp_path):
    doc = merged(TINY, city={"familes": 300})
    done = famsim("validate", str(write_scenario(tmp_path, doc)), cwd=tmp_path)
    assert_refused(done, tmp_path / "out", "bad.toml", "city.familes", "did you mean")


def test_a_value_of_the_wrong_type_is_one_line(tmp_path):
    doc = merged(TINY, run={"weeks": "two"})
    scenario = write_scenario(tmp_path, doc)
    refused_run(tmp_path, scenario, "bad.toml", "run.weeks", "allowed: an integer from 1 to")


def test_a_negative_capacity_is_one_line(tmp_path):
    doc = merged(TINY, provision={"childcare": {"site_capacity": -3}})
    scenario = write_scenario(tmp_path, doc)
    refused_run(tmp_path, scenario, "bad.toml", "provision.childcare.site_capacity", "-3", "1 to")


def test_nan_for_a_number_is_one_line(tmp_path):
    doc = merged(TINY, city={"cell_size_m": float("nan")})
    scenario = write_scenario(tmp_path, doc)
    refused_run(tmp_path, scenario, "bad.toml", "city.cell_size_m", "finite number")


def test_an_array_where_a_table_belongs_is_one_line(tmp_path):
    scenario = write_scenario(tmp_path, merged(TINY, hubs=[1, 2]))
    refused_run(tmp_path, scenario, "bad.toml", "hubs", "allowed: a table")


def test_language_shares_not_summing_to_one_are_one_line(tmp_path):
    doc = merged(TINY, city={"languages": {"local": 0.5, "lang_a": 0.2}})
    scenario = write_scenario(tmp_path, doc)
    refused_run(tmp_path, scenario, "bad.toml", "city.languages", "must sum to 1")


def test_invalid_toml_is_one_line_with_the_line_number(tmp_path):
    scenario = tmp_path / "bad.toml"
    scenario.write_text("[city\nfamilies = 3\n", encoding="utf-8")
    refused_run(tmp_path, scenario, "bad.toml", "not valid TOML", "line 1")


def test_a_missing_scenario_file_is_one_line(tmp_path):
    refused_run(tmp_path, tmp_path / "absent.toml", "absent.toml", "not found")


def test_a_city_too_large_for_memory_is_refused_before_anything_is_built(tmp_path):
    families, width, height = 40_000_000, 4000, 4000
    need = families * 1_400 + width * height * 120
    with open("/proc/meminfo", encoding="ascii") as fh:
        available = next(int(x.split()[1]) * 1024 for x in fh if x.startswith("MemAvailable:"))
    if need <= 0.8 * available:
        pytest.skip("this machine could hold the city; the unit test covers the refusal")
    doc = merged(TINY, city={"families": families, "width": width, "height": height})
    scenario = write_scenario(tmp_path, doc)
    refused_run(tmp_path, scenario, "bad.toml", "city.families", "GiB", "allowed on this machine")


# --- extends ------------------------------------------------------------------------------


def test_an_error_in_an_extended_file_names_that_file_and_the_key(tmp_path):
    write_scenario(tmp_path, merged(TINY, population={"trust_mediann": 0.5}), "parent.toml")
    child = write_scenario(tmp_path, {"extends": "parent.toml", "name": "child"}, "child.toml")
    refused_run(tmp_path, child, "parent.toml", "child.toml", "population.trust_mediann")


def test_extends_of_the_wrong_type_in_a_parent_names_the_parent(tmp_path):
    write_scenario(tmp_path, {"extends": 3}, "parent.toml")
    child = write_scenario(tmp_path, {"extends": "parent.toml"}, "child.toml")
    refused_run(tmp_path, child, "parent.toml", "extends", "allowed: the path of another")


def test_circular_extends_is_one_line(tmp_path):
    write_scenario(tmp_path, {"extends": "b.toml"}, "a.toml")
    write_scenario(tmp_path, {"extends": "a.toml"}, "b.toml")
    refused_run(tmp_path, tmp_path / "a.toml", "b.toml", "extends", "circular extends chain")


# --- names cannot leave results/ ------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "/tmp/famsim-abs", "x" * 65])
def test_a_name_that_could_leave_results_is_refused_and_nothing_is_written(tmp_path, name):
    scenario = write_scenario(tmp_path, merged(TINY, name=name))
    done = famsim("run", str(scenario), "--quiet", cwd=tmp_path)
    assert_refused(done, tmp_path / "results", "bad.toml", "name", "allowed: letters, digits")
    assert [p.name for p in tmp_path.iterdir()] == ["bad.toml"]
    assert not Path("/tmp/famsim-abs").exists()


# --- a planner's own tables -------------------------------------------------------------------


def _set(column: str, value: Any, row: int = 2):
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df = df.astype({column: object})
        df.loc[row, column] = value
        return df

    return change


def test_a_negative_capacity_in_the_services_table_is_one_line(tmp_path):
    town = write_town(tmp_path, services=_set("capacity", -4))
    refused_run(tmp_path, town, "services.csv", "city.services_file", "capacity", "-4")


def test_a_service_off_the_grid_is_one_line(tmp_path):
    town = write_town(tmp_path, services=_set("y", 20))
    refused_run(tmp_path, town, "services.csv", "city.services_file", "whole numbers from 0 to 19")


def test_a_cells_table_without_a_required_column_is_one_line(tmp_path):
    town = write_town(tmp_path, cells=lambda df: df.drop(columns="families"))
    line = refused_run(tmp_path, town, "cells.csv", "city.cells_file", "missing column(s)")
    assert "required: x, y, families, arope_share" in line


def test_nan_in_the_cells_table_is_one_line(tmp_path):
    town = write_town(tmp_path, cells=_set("arope_share", float("nan")))
    refused_run(tmp_path, town, "cells.csv", "city.cells_file", "'arope_share', data row 3")


def test_validate_reports_nan_in_the_cells_table_the_same_way(tmp_path):
    town = write_town(tmp_path, cells=_set("arope_share", float("nan")))
    done = famsim("validate", str(town), cwd=tmp_path)
    assert_refused(done, tmp_path / "out", "cells.csv", "city.cells_file", "NaN")


def test_language_shares_not_summing_to_one_in_a_cell_are_one_line(tmp_path):
    town = write_town(tmp_path, cells=_set("lang_a", 0.6))
    refused_run(tmp_path, town, "cells.csv", "city.cells_file", "allowed: shares that sum to 1")


def test_city_families_differing_from_the_cells_table_is_one_line(tmp_path):
    town = write_town(tmp_path, city={"families": 1000})
    refused_run(tmp_path, town, "town.toml", "city.families", "909")


def test_rescaling_a_planners_city_from_the_command_line_is_refused(tmp_path):
    town = write_town(tmp_path)
    extra = ("--families", "300")
    refused_run(tmp_path, town, "town.toml", "city.families", "--families", extra=extra)


# --- the command line itself ----------------------------------------------------------------


def test_a_bad_command_line_argument_is_one_line(tmp_path):
    scenario = write_scenario(tmp_path, TINY, "tiny.toml")
    refused_run(tmp_path, scenario, "--reps", "must be at least 1", extra=("--reps", "0"))


def test_an_output_path_that_is_a_file_is_refused_before_running(tmp_path):
    scenario = write_scenario(tmp_path, TINY, "tiny.toml")
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me")
    done = famsim("run", str(scenario), "--out", str(blocker), "--quiet", cwd=tmp_path)
    assert_refused(done, tmp_path / "out", "--out", "not a folder")
    assert blocker.read_text() == "keep me"


def test_a_budget_that_cannot_be_balanced_is_one_line_also_when_comparing_in_workers(tmp_path):
    universal = str(ROOT / "scenarios" / "universal.toml")
    free = {"provision": {"childcare": {"unit_cost_eur_week": 0.0}}}
    for name in ("a", "b"):
        doc = merged({**TINY, "extends": universal, "name": name}, **free)
        write_scenario(tmp_path, doc, f"{name}.toml")
    out = tmp_path / "out"
    args = ("a.toml", "b.toml", "--workers", "2", "--reps", "2", "--out", str(out), "--quiet")
    done = famsim("compare", *args, cwd=tmp_path)
    assert_refused(done, out, "a.toml", "budget.target_outlay_eur_week", "cost nothing")


def test_the_install_s_compile_step_refuses_a_bad_scenario_in_one_line(tmp_path, capsys):
    """verification: `python -m sim.studies.warm` (run by make install) reads every scenario
    before it compiles anything; a bad one is one line naming the file, exit 2."""
    from sim.studies.warm import main

    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "nowhere.toml"\n')
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "bad.toml" in err


def test_the_compile_step_runs_a_scenario_through_its_burn_in_and_measured_weeks():
    """verification: warm() steps a small city of a shipped scenario past its burn-in, so the
    measurement kernels (called in measured weeks only) are compiled too."""
    from sim.scenario.schema import load_scenario
    from sim.studies.warm import WARM_FAMILIES, warm

    model = warm(load_scenario(ROOT / "scenarios" / "proportionate_adaptive.toml"))
    assert model.engine.families.size >= WARM_FAMILIES * 0.5
    assert model.engine.week >= model.world.scenario.run.burn_in_weeks + 1
