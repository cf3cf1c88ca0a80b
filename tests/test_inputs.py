"""A planner's own city (CSV or Parquet cells and services): the shipped example loads and
builds, and every kind of bad table fails with one ScenarioError naming the file, the
scenario key, the column, the row and what is allowed. Also: memory is estimated before
anything is read, and sim/ has no blanket exception handlers."""

from __future__ import annotations

import ast
import math
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.core.errors import ScenarioError
from sim.scenario.schema import Scenario, load_scenario
from sim.studies.runner import prepare
from sim.world import city as city_module
from sim.world.city import check_memory, language_column, load_city

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "scenarios" / "example_city.toml"
CELLS = ROOT / "scenarios" / "cities" / "example_cells.csv"
SERVICES = ROOT / "scenarios" / "cities" / "example_services.csv"


@pytest.fixture(scope="module")
def example() -> Scenario:
    return load_scenario(EXAMPLE)


def with_files(scenario: Scenario, cells: Path | None = None, services: Path | None = None, **city):
    update = dict(city)
    if cells is not None:
        update["cells_file"] = str(cells)
    if services is not None:
        update["services_file"] = str(services)
    return scenario.model_copy(update={"city": scenario.city.model_copy(update=update)})


def city_error(scenario: Scenario) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_city(scenario, "town.toml")
    assert "\n" not in str(info.value)
    return info.value


# --- the shipped example ------------------------------------------------------------------


def test_the_example_city_takes_its_cells_languages_and_services_from_the_tables(example):
    cells = pd.read_csv(CELLS)
    town = load_city(example, str(EXAMPLE))
    assert (town.width, town.height) == (20, 20)
    assert town.families.sum() == cells["families"].sum() == example.city.families == 909
    assert town.languages == ("local", "lang_a", "lang_b")
    np.testing.assert_allclose(town.language_share.sum(axis=0), 1.0)
    row = cells.iloc[0]
    x, y = int(row["x"]), int(row["y"])
    assert town.families[x, y] == row["families"]
    assert town.language_share[1, x, y] == row["lang_a"]
    assert town.deprivation[x, y] == row["deprivation"]
    assert len(np.unique(town.neighbourhood[town.families > 0])) == 5
    # the planner's labels name the neighbourhoods in reports
    label = str(row["neighbourhood"]).strip()
    assert town.neighbourhood_name(int(town.neighbourhood[x, y])) == label
    assert set(town.neighbourhood_names) == set(cells["neighbourhood"].astype(str).str.strip())
    services = town.services_table
    assert len(services) == len(pd.read_csv(SERVICES))
    assert services["market"].dtype == bool and services["market"].sum() == 2
    assert set(services["languages"]) == {"local", "local;lang_a", "local;lang_a;lang_b"}


def test_cells_left_out_of_the_table_are_empty_and_speak_the_local_language(example):
    town = load_city(example, str(EXAMPLE))
    assert town.families[0, 0] == 0
    assert town.language_share[0, 0, 0] == 1.0 and town.language_share[1:, 0, 0].sum() == 0


def test_the_example_city_builds_a_world_with_exactly_the_listed_services(example):
    from sim.world.build import build_world

    world = build_world(example, seed=3, origin=str(EXAMPLE))
    listed = pd.read_csv(SERVICES)
    assert world.families.size == 909
    assert world.services.services.capacity.sum() == listed["capacity"].sum()


def test_parquet_tables_give_the_same_city_as_csv(example, tmp_path):
    cells, services = tmp_path / "cells.parquet", tmp_path / "services.parquet"
    pd.read_csv(CELLS).to_parquet(cells)
    pd.read_csv(SERVICES).to_parquet(services)
    from_csv = load_city(example, str(EXAMPLE))
    from_parquet = load_city(with_files(example, cells, services), str(EXAMPLE))
    for name in ("families", "neighbourhood", "deprivation", "transit_access", "language_share"):
        np.testing.assert_array_equal(getattr(from_parquet, name), getattr(from_csv, name))
    np.testing.assert_array_equal(from_parquet.log_income_shift, from_csv.log_income_shift)
    pd.testing.assert_frame_equal(from_parquet.services_table, from_csv.services_table)


def test_a_language_named_with_the_lang_prefix_keeps_its_name_as_column():
    assert language_column("local") == "lang_local"
    assert language_column("lang_a") == "lang_a"
    assert language_column("polish") == "lang_polish"


def test_the_cells_file_must_hold_exactly_city_families(example):
    error = city_error(with_files(example, families=1000))
    assert error.file == "town.toml"
    assert error.key_path == "city.families"
    assert "909" in error.message and "value 1000" in error.message


# --- bad cells ----------------------------------------------------------------------------


def _set(df: pd.DataFrame, column: str, value, row: int = 2) -> pd.DataFrame:
    df = df.astype({column: object})
    df.loc[row, column] = value
    return df


BAD_CELLS = {
    "a required column is missing": (
        lambda df: df.drop(columns="arope_share"),
        "missing column(s) arope_share",
    ),
    "a value is NaN": (lambda df: _set(df, "families", np.nan), "'families', data row 3"),
    "a value is text": (lambda df: _set(df, "families", "many"), "value 'many' is not allowed"),
    "families are negative": (lambda df: _set(df, "families", -2), "value -2 is not allowed"),
    "families are fractional": (lambda df: _set(df, "families", 2.5), "whole numbers"),
    "a cell is off the grid": (lambda df: _set(df, "x", 20), "allowed: whole numbers from 0 to 19"),
    "a cell has a negative coordinate": (lambda df: _set(df, "y", -1), "column 'y', data row 3"),
    "an AROPE share is above 1": (lambda df: _set(df, "arope_share", 1.5), "numbers from 0 to 1"),
    "a deprivation score is infinite": (
        lambda df: _set(df, "deprivation", math.inf),
        "column 'deprivation', data row 3: value inf",
    ),
    "language shares do not sum to 1": (
        lambda df: _set(df, "lang_a", 0.5),
        "data row 3: language shares (lang_local + lang_a + lang_b) sum to",
    ),
    "a language share is negative": (
        lambda df: _set(df, "lang_a", -0.1),
        "column 'lang_a', data row 3: value -0.1",
    ),
    "a cell appears twice": (
        lambda df: pd.concat([df, df.iloc[[4]]], ignore_index=True),
        "appears twice",
    ),
    "a column name is misspelt": (
        lambda df: df.rename(columns={"transit_access": "transit_acces"}),
        "did you mean 'transit_access'?",
    ),
    "a language column is not in city.languages": (
        lambda df: df.assign(lang_c=0.0),
        "unknown column 'lang_c'",
    ),
    "a language column is missing": (lambda df: df.drop(columns="lang_b"), "lang_b"),
    "no cell has families": (lambda df: df.assign(families=0), "no families in any cell"),
    "there are no rows": (lambda df: df.iloc[0:0], "no data rows"),
}


@pytest.mark.parametrize("case", sorted(BAD_CELLS))
def test_a_bad_cells_table_is_refused_naming_the_file_column_and_row(example, tmp_path, case):
    mutate, expected = BAD_CELLS[case]
    path = tmp_path / "cells.csv"
    mutate(pd.read_csv(CELLS)).to_csv(path, index=False)
    error = city_error(with_files(example, cells=path))
    assert error.file == str(path)
    assert error.key_path == "city.cells_file"
    assert expected in error.message
    assert "allowed" in error.message or "required" in error.message


def test_an_empty_cell_in_a_csv_is_a_missing_value(example, tmp_path):
    lines = CELLS.read_text().splitlines()
    fields = lines[5].split(",")
    fields[3] = ""
    lines[5] = ",".join(fields)
    path = tmp_path / "cells.csv"
    path.write_text("\n".join(lines) + "\n")
    error = city_error(with_files(example, cells=path))
    assert "column 'arope_share', data row 5: value is empty or NaN" in error.message


def test_a_missing_cells_file_is_named_with_the_scenario_key(example, tmp_path):
    error = city_error(with_files(example, cells=tmp_path / "absent.csv"))
    assert error.file == "town.toml" and error.key_path == "city.cells_file"
    assert "absent.csv" in error.message and "not found" in error.message


@pytest.mark.parametrize(
    "name, content",
    [
        ("ragged.csv", b"x,y,families\n1,2,3,4,5\n"),
        ("binary.csv", b"\xff\xfe\x00\x01\x02"),
        ("empty.csv", b""),
        ("fake.parquet", b"x,y\n1,2\n"),
    ],
)
def test_an_unreadable_table_is_refused_in_one_line(example, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    error = city_error(with_files(example, cells=path))
    assert error.file == str(path) and error.key_path == "city.cells_file"
    assert any(
        what in error.message
        for what in ("cannot read the table", "missing column", "not a CSV", "not a Parquet")
    )
    assert "\n" not in error.message


# --- bad services -------------------------------------------------------------------------

BAD_SERVICES = {
    "a capacity is negative": (lambda df: _set(df, "capacity", -4), "value -4 is not allowed"),
    "a capacity is fractional": (lambda df: _set(df, "capacity", 2.5), "whole numbers from 0"),
    "a service is off the grid": (
        lambda df: _set(df, "x", 25),
        "column 'x', data row 3: value 25 is not allowed; allowed: whole numbers from 0 to 19",
    ),
    "a type is misspelt": (lambda df: _set(df, "type", "childcar"), "did you mean 'childcare'?"),
    "a language is unknown": (
        lambda df: _set(df, "languages", "local;lang_q"),
        "language 'lang_q' is not in city.languages",
    ),
    "a health service is marked market": (
        lambda df: _set(df, "market", True, row=6),
        "allowed: market = true only for childcare",
    ),
    "market is not true or false": (
        lambda df: _set(df, "market", "maybe"),
        "allowed: true or false",
    ),
    "a fee is negative": (lambda df: df.assign(fee_eur_week=-1.0), "column 'fee_eur_week'"),
    "a fee is missing": (
        lambda df: _set(df.assign(fee_eur_week=10.0), "fee_eur_week", np.nan),
        "value is empty or NaN",
    ),
    "a required column is missing": (
        lambda df: df.drop(columns="capacity"),
        "missing column(s) capacity",
    ),
    "a column is not used by the model": (
        lambda df: df.assign(extended_hours=True),
        "unknown column 'extended_hours'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SERVICES))
def test_a_bad_services_table_is_refused_naming_the_file_column_and_row(example, tmp_path, case):
    mutate, expected = BAD_SERVICES[case]
    path = tmp_path / "services.csv"
    mutate(pd.read_csv(SERVICES)).to_csv(path, index=False)
    error = city_error(with_files(example, services=path))
    assert error.file == str(path)
    assert error.key_path == "city.services_file"
    assert expected in error.message


def test_an_empty_languages_entry_means_local_only(example, tmp_path):
    path = tmp_path / "services.csv"
    _set(pd.read_csv(SERVICES), "languages", np.nan).to_csv(path, index=False)
    town = load_city(with_files(example, services=path), "town.toml")
    assert town.services_table["languages"].iloc[2] == "local"


def test_market_accepts_yes_and_no_words(example, tmp_path):
    path = tmp_path / "services.csv"
    table = pd.read_csv(SERVICES)
    table["market"] = np.where(table["market"], "Yes", "no")
    table.to_csv(path, index=False)
    town = load_city(with_files(example, services=path), "town.toml")
    assert town.services_table["market"].tolist() == pd.read_csv(SERVICES)["market"].tolist()


# --- hypothesis: any single bad value in the cells table -----------------------------------

CELL_TABLE = pd.read_csv(CELLS)
odd_values = st.one_of(
    st.floats(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.text(max_size=6),
    st.booleans(),
)


@settings(max_examples=60)
@given(
    row=st.integers(0, len(CELL_TABLE) - 1),
    column=st.sampled_from(list(CELL_TABLE.columns)),
    value=odd_values,
)
def test_one_odd_value_in_the_cells_table_loads_or_is_refused_cleanly(row, column, value):
    table = CELL_TABLE.astype({column: object})
    table.loc[row, column] = value
    scenario = load_scenario(EXAMPLE)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cells.csv"
        table.to_csv(path, index=False)
        try:
            load_city(with_files(scenario, cells=path), "town.toml")
        except ScenarioError as error:
            assert error.key_path in {"city.cells_file", "city.families"}
            assert "\n" not in str(error)


# --- memory -------------------------------------------------------------------------------


def test_a_city_too_large_for_memory_is_refused_with_what_would_fit():
    scenario = Scenario().model_copy(
        update={"city": Scenario().city.model_copy(update={"families": 5_000_000})}
    )
    with pytest.raises(ScenarioError) as info:
        check_memory(scenario, "big.toml", available_bytes=2 * 2**30)
    error = info.value
    assert error.file == "big.toml" and error.key_path == "city.families"
    room = re.search(r"allowed on this machine: at most about ([\d,]+) families", error.message)
    assert room is not None, error.message
    # what the message offers fits: on a 10 km square every family reaches every service,
    # so the candidate pairs, not the families' columns, decide how many fit
    fits = int(room.group(1).replace(",", ""))
    assert 10_000 < fits < 5_000_000
    smaller = scenario.city.model_copy(update={"families": fits})
    check_memory(scenario.model_copy(update={"city": smaller}), "big.toml", 2 * 2**30)


def test_memory_is_estimated_before_any_table_is_read(example, tmp_path, monkeypatch):
    monkeypatch.setattr(city_module, "_available_memory", lambda: 8 * 2**30)
    huge = with_files(example, cells=tmp_path / "absent.csv", families=40_000_000)
    with pytest.raises(ScenarioError) as info:
        prepare(huge, "huge.toml")
    assert info.value.key_path == "city.families" and "GiB" in info.value.message


# --- no blanket exception handlers ---------------------------------------------------------


def _reraises(handler: ast.ExceptHandler) -> bool:
    """The handler ends by raising (a bug logged and passed on is not swallowed)."""
    return bool(handler.body) and isinstance(handler.body[-1], ast.Raise)


def test_sim_has_no_blanket_exception_handlers():
    """A blanket handler is allowed only where it re-raises: the command line's bug logger."""
    offenders = []
    for path in sorted((ROOT / "sim").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            if re.search(r"\bexcept\s*:", line):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ExceptHandler) and not _reraises(node):
                caught = node.type
                names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
                for name in names:
                    if name is None or (
                        isinstance(name, ast.Name) and name.id in {"Exception", "BaseException"}
                    ):
                        offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, offenders
