"""Scenario files: bad input fails with one ScenarioError naming the file, the key path and
what is allowed; `extends` chains are resolved and their errors traced to the right file;
the loader never raises anything else, whatever the TOML (hypothesis)."""

from __future__ import annotations

import copy
import math
import tempfile
import tomllib
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from sim.core.codes import SERVICE_TYPES
from sim.core.errors import ScenarioError
from sim.outputs.folders import default_out_dir
from sim.scenario.schema import (
    Scenario,
    ScenarioWarning,
    format_key_path,
    load_scenario,
    resolve_document,
    scenario_from_dict,
)

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
BASE = SCENARIOS / "base.toml"


def shipped_scenarios() -> list[Path]:
    """Every scenario file under scenarios/ except sweep and lever definitions."""
    return sorted(
        p
        for p in SCENARIOS.rglob("*.toml")
        if not any(part.startswith(("sweep", "levers")) for part in p.relative_to(SCENARIOS).parts)
    )


# --- a small TOML writer (tomllib only reads) ------------------------------------------------


def toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{toml_string(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"no TOML form for {value!r}")


def toml_document(doc: dict[str, Any]) -> str:
    return "".join(f"{toml_string(str(k))} = {toml_value(v)}\n" for k, v in doc.items())


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def scenario_file(tmp_path: Path, body: str, name: str = "bad.toml") -> Path:
    """A scenario extending the shipped base.toml (absolute path), plus `body`."""
    return write(tmp_path / name, f"extends = {toml_string(str(BASE))}\n{body}")


def load_error(path: Path) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    error = info.value
    assert "\n" not in str(error), str(error)
    return error


# --- the shipped scenarios -----------------------------------------------------------------


def test_every_shipped_scenario_loads_and_validates():
    files = shipped_scenarios()
    assert BASE in files and SCENARIOS / "example_city.toml" in files
    for path in files:
        scenario = load_scenario(path)
        assert scenario.name


def test_the_toml_writer_used_by_these_tests_round_trips_the_shipped_scenarios():
    for path in shipped_scenarios():
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        assert tomllib.loads(toml_document(doc)) == doc


# --- the defaults: the schema's and base.toml's ----------------------------------------------
#
# The schema holds every default (Scenario() is a complete city, and a file sets only what it
# changes); scenarios/base.toml spells the same values out with their sources, as the
# documented default city. These tests hold the two equal, so a default lives in two places
# but cannot differ between them.

# Keys base.toml deliberately sets to something else than the schema's default, and why.
BASE_OVERRIDES: dict[tuple[str, ...], str] = {
    ("name",): "the shipped city's own name (names its results folder)",
    ("description",): "the shipped city's own one-line description",
}


def _leaves(doc: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Key path -> value of every leaf of a document; a table of names (city.languages,
    population.initial_awareness, information.brokers) is one value."""
    out: dict[tuple[str, ...], Any] = {}
    for key, value in doc.items():
        here = (*prefix, key)
        named = here in {
            ("city", "languages"),
            ("population", "initial_awareness"),
            ("information", "brokers"),
        }
        if isinstance(value, dict) and not named:
            out.update(_leaves(value, here))
        else:
            out[here] = value
    return out


def test_every_key_base_toml_sets_is_the_schema_default_or_a_listed_override():
    base = _leaves(tomllib.loads(BASE.read_text(encoding="utf-8")))
    default = _leaves(Scenario().model_dump(mode="json"))
    differ = {
        format_key_path(path): (value, default.get(path, "<not in the schema>"))
        for path, value in base.items()
        if path not in BASE_OVERRIDES and value != default.get(path, object())
    }
    assert differ == {}, f"base.toml (value, schema default): {differ}"
    assert set(BASE_OVERRIDES) <= set(base), "an override base.toml no longer sets"


def test_base_toml_spells_out_every_default_toml_can_write():
    """Every key of the schema is in base.toml with its source, except those whose default
    is 'not set' (TOML has no null: no outlay target, no city files, no parent)."""
    base = _leaves(tomllib.loads(BASE.read_text(encoding="utf-8")))
    default = _leaves(Scenario().model_dump(mode="json"))
    unwritten = sorted(
        format_key_path(path)
        for path, value in default.items()
        if path not in base and value is not None
    )
    assert unwritten == []


def test_the_default_city_loaded_from_base_toml_is_the_schemas():
    overridden = {path[0] for path in BASE_OVERRIDES}  # top-level keys only
    assert all(len(path) == 1 for path in BASE_OVERRIDES)
    loaded = {k: v for k, v in load_scenario(BASE).model_dump().items() if k not in overridden}
    default = {k: v for k, v in Scenario().model_dump().items() if k not in overridden}
    assert loaded == default


# --- one bad value, one clear error ----------------------------------------------------------


def test_an_unknown_key_is_refused_with_a_did_you_mean(tmp_path):
    error = load_error(scenario_file(tmp_path, "[city]\nfamiles = 300\n"))
    assert error.file == str(tmp_path / "bad.toml")
    assert error.key_path == "city.familes"
    assert "did you mean 'families'?" in error.message
    assert "allowed here:" in error.message and "width" in error.message


def test_an_unknown_top_level_table_is_refused_with_a_did_you_mean(tmp_path):
    error = load_error(scenario_file(tmp_path, "[popluation]\ntrust_median = 0.5\n"))
    assert error.key_path == "popluation"
    assert "did you mean 'population'?" in error.message


def test_a_misspelt_service_type_is_named_as_such(tmp_path):
    error = load_error(scenario_file(tmp_path, "[provision.childcar]\nplaces_per_100 = 3\n"))
    assert error.key_path == "provision.childcar"
    assert "did you mean 'childcare'?" in error.message
    assert "admin_help" in error.message


def test_a_value_of_the_wrong_type_is_refused_not_converted(tmp_path):
    error = load_error(scenario_file(tmp_path, '[run]\nweeks = "52"\n'))
    assert error.key_path == "run.weeks"
    assert '"52"' in error.message
    assert "allowed: an integer from 1 to 5,200" in error.message


def test_a_whole_number_field_refuses_a_boolean_and_a_fraction(tmp_path):
    assert load_error(scenario_file(tmp_path, "[city]\nwidth = true\n")).key_path == "city.width"
    assert load_error(scenario_file(tmp_path, "[city]\nwidth = 20.5\n")).key_path == "city.width"


def test_a_negative_capacity_is_refused_with_the_allowed_range(tmp_path):
    error = load_error(scenario_file(tmp_path, "[provision.childcare]\nsite_capacity = -3\n"))
    assert error.key_path == "provision.childcare.site_capacity"
    assert "value -3" in error.message
    assert "allowed: an integer from 1 to 100,000" in error.message


@pytest.mark.parametrize("literal", ["nan", "inf", "-inf", "+nan"])
def test_nan_and_infinity_are_refused_for_numbers(tmp_path, literal):
    error = load_error(scenario_file(tmp_path, f"[population]\nincome_log_sd = {literal}\n"))
    assert error.key_path == "population.income_log_sd"
    assert "finite number" in error.message


def test_nan_inside_a_table_of_shares_is_refused(tmp_path):
    body = "[population.initial_awareness]\nhealth = nan\n"
    error = load_error(scenario_file(tmp_path, body))
    assert error.key_path == "population.initial_awareness.health"


def test_language_shares_that_do_not_sum_to_one_are_refused(tmp_path):
    body = "[city.languages]\nlocal = 0.5\nlang_a = 0.2\n"
    error = load_error(scenario_file(tmp_path, body))
    assert error.key_path == "city.languages"
    assert "sum to 1" in error.message and "0.7" in error.message


def test_the_local_language_is_required(tmp_path):
    error = load_error(scenario_file(tmp_path, "[city.languages]\nlang_a = 1.0\n"))
    assert error.key_path == "city.languages.local"


def test_a_language_name_that_cannot_be_a_column_is_refused(tmp_path):
    body = '[city.languages]\nlocal = 0.9\n"lang a" = 0.1\n'
    error = load_error(scenario_file(tmp_path, body))
    assert error.key_path == 'city.languages."lang a"'


def test_an_array_where_a_table_belongs_is_refused(tmp_path):
    error = load_error(scenario_file(tmp_path, "city = [1, 2]\n"))
    assert error.key_path == "city"
    assert "allowed: a table with keys" in error.message


def test_a_table_where_a_number_belongs_is_refused(tmp_path):
    error = load_error(scenario_file(tmp_path, "[run.weeks]\nx = 1\n"))
    assert error.key_path == "run.weeks"


def test_a_missing_key_in_a_fee_band_is_named(tmp_path):
    body = "[provision.childcare.fee]\nbands = [{income_below_eur_year = 1.0}]\n"
    error = load_error(scenario_file(tmp_path, body))
    assert error.key_path == "provision.childcare.fee.bands.0.fee_eur_week"
    assert "required key is missing" in error.message


def test_fee_bands_out_of_order_are_refused_at_the_bands(tmp_path):
    body = (
        "[provision.childcare.fee]\nbands = [{income_below_eur_year = 2.0, fee_eur_week = 1.0},"
        " {income_below_eur_year = 1.0, fee_eur_week = 2.0}]\n"
    )
    error = load_error(scenario_file(tmp_path, body))
    assert error.key_path == "provision.childcare.fee.bands"
    assert "strictly increasing" in error.message


def test_an_income_related_fee_without_bands_is_refused_at_its_table(tmp_path):
    error = load_error(scenario_file(tmp_path, "[provision.childcare.fee]\nbands = []\n"))
    assert error.key_path == "provision.childcare.fee"
    assert "needs bands" in error.message


def test_two_keys_that_contradict_each_other_are_reported_at_their_table(tmp_path):
    error = load_error(scenario_file(tmp_path, "[population]\nleave_weeks_max = 10\n"))
    assert error.key_path == "population"
    assert "leave_weeks_max (10)" in error.message and "leave_weeks_min (14)" in error.message


def test_a_broker_for_a_language_the_city_lacks_is_named(tmp_path):
    error = load_error(scenario_file(tmp_path, "[information.brokers]\nlang_z = 1.0\n"))
    assert error.key_path == "information.brokers.lang_z"
    assert "allowed: local, lang_a, lang_b, lang_c" in error.message


def test_a_scenario_without_a_provision_type_is_refused(tmp_path):
    doc = Scenario().resolved_dict()
    del doc["provision"]["health"]
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(doc, "<test>")
    assert info.value.key_path == "provision.health"


def test_invalid_toml_names_the_file_and_the_line(tmp_path):
    error = load_error(write(tmp_path / "broken.toml", "[city\nwidth = 3\n"))
    assert error.file == str(tmp_path / "broken.toml")
    assert "not valid TOML" in error.message and "line 1" in error.message


def test_a_missing_scenario_file_is_named(tmp_path):
    error = load_error(tmp_path / "absent.toml")
    assert "absent.toml" in str(error) and "not found" in error.message


def test_a_folder_is_not_a_scenario_file(tmp_path):
    (tmp_path / "folder.toml").mkdir()
    error = load_error(tmp_path / "folder.toml")
    assert "not a regular file" in error.message


def test_a_file_that_is_not_text_is_refused(tmp_path):
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00name")
    assert "cannot be read" in load_error(path).message


def test_scenario_from_dict_refuses_a_non_table_and_non_string_keys():
    with pytest.raises(ScenarioError):
        scenario_from_dict([1, 2], "<test>")
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict({1: 2}, "<test>")
    assert info.value.key_path == "1"
    doc = Scenario().resolved_dict()
    doc["city"]["languages"][7] = 0.0
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(doc, "<test>", strict=True)
    assert info.value.key_path == "city.languages.7"


# --- extends ------------------------------------------------------------------------------


def test_an_error_in_an_extended_file_names_that_file_and_the_key(tmp_path):
    write(tmp_path / "parent.toml", "[population]\nleave_weeks_minn = 3\n")
    child = write(tmp_path / "child.toml", 'extends = "parent.toml"\nname = "child"\n')
    error = load_error(child)
    assert error.key_path == "population.leave_weeks_minn"
    assert "parent.toml" in error.file and "child.toml" in error.file
    assert "did you mean 'leave_weeks_min'?" in error.message


def test_an_error_in_the_extending_file_names_that_file_only(tmp_path):
    write(tmp_path / "parent.toml", f"extends = {toml_string(str(BASE))}\n")
    child = write(tmp_path / "child.toml", 'extends = "parent.toml"\n[run]\nweeks = -1\n')
    error = load_error(child)
    assert error.file == str(child)
    assert error.key_path == "run.weeks"


def test_extends_of_the_wrong_type_is_refused_also_in_a_parent(tmp_path):
    assert load_error(write(tmp_path / "a.toml", "extends = 5\n")).key_path == "extends"
    write(tmp_path / "parent.toml", 'extends = ["base.toml"]\n')
    child = write(tmp_path / "child.toml", 'extends = "parent.toml"\n')
    error = load_error(child)
    assert error.key_path == "extends"
    assert error.file.endswith("parent.toml")


def test_extends_pointing_nowhere_names_the_key(tmp_path):
    error = load_error(write(tmp_path / "a.toml", 'extends = "missing.toml"\n'))
    assert error.key_path == "extends"
    assert "missing.toml" in error.message and "not found" in error.message


@pytest.mark.parametrize("target", ["", ".", "..", "a\u0000b"])
def test_extends_pointing_at_no_file_is_refused(tmp_path, target):
    error = load_error(write(tmp_path / "a.toml", f"extends = {toml_string(target)}\n"))
    assert error.key_path == "extends"


def test_a_file_extending_itself_is_circular(tmp_path):
    error = load_error(write(tmp_path / "self.toml", 'extends = "self.toml"\n'))
    assert error.key_path == "extends"
    assert "circular extends chain: self.toml -> self.toml" in error.message


def test_a_longer_extends_cycle_is_circular(tmp_path):
    write(tmp_path / "a.toml", 'extends = "b.toml"\n')
    write(tmp_path / "b.toml", 'extends = "sub/c.toml"\n')
    write(tmp_path / "sub" / "c.toml", 'extends = "../a.toml"\n')
    error = load_error(tmp_path / "a.toml")
    assert error.key_path == "extends"
    assert "a.toml -> b.toml -> c.toml -> a.toml" in error.message


def test_an_extending_file_replaces_the_language_list_whole(tmp_path):
    body = "[city.languages]\nlocal = 0.9\nlang_x = 0.1\n"
    scenario = load_scenario(scenario_file(tmp_path, body, "langs.toml"))
    assert scenario.city.languages == {"local": 0.9, "lang_x": 0.1}


def test_other_tables_merge_key_by_key(tmp_path):
    scenario = load_scenario(scenario_file(tmp_path, "[city]\nwidth = 20\n", "merge.toml"))
    assert scenario.city.width == 20 and scenario.city.height == 80
    assert scenario.provision["childcare"].fee.kind == "income_related"


def test_city_files_are_relative_to_the_file_that_names_them(tmp_path):
    write(
        tmp_path / "town" / "town.toml",
        f'extends = {toml_string(str(BASE))}\n[city]\nsource = "file"\n'
        'cells_file = "data/cells.csv"\n',
    )
    child = write(tmp_path / "variant.toml", 'extends = "town/town.toml"\nname = "variant"\n')
    scenario = load_scenario(child)
    assert scenario.city.cells_file == str(tmp_path / "town" / "data" / "cells.csv")
    assert resolve_document(child)["city"]["cells_file"] == scenario.city.cells_file


# --- names and the results folder ----------------------------------------------------------

BAD_NAMES = [
    "../x",
    "a/b",
    "..",
    ".",
    "/tmp/abs",
    "x" * 65,
    "",
    "-x",
    "_x",
    "a b",
    "a\\b",
    "x\n",
    "ü",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_that_is_not_a_plain_folder_name_is_refused(tmp_path, name):
    error = load_error(scenario_file(tmp_path, f"name = {toml_string(name)}\n"))
    assert error.key_path == "name"
    assert "allowed: letters, digits, '_' and '-'" in error.message


def test_the_longest_allowed_name_loads(tmp_path):
    assert load_scenario(scenario_file(tmp_path, f'name = "{"x" * 64}"\n')).name == "x" * 64


def test_a_file_name_that_cannot_be_a_scenario_name_needs_an_explicit_name(tmp_path):
    path = write(tmp_path / "my town.toml", f"extends = {toml_string(str(BASE))}\n")
    error = load_error(path)
    assert error.key_path == "name" and "my town" in error.message


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".", "/tmp/abs", "", "x/../../y"])
def test_the_default_output_folder_never_leaves_results(name):
    with pytest.raises(ScenarioError):
        default_out_dir(name)


def test_the_default_output_folder_of_a_valid_name_is_inside_results():
    assert default_out_dir("my-scenario_2") == Path("results") / "my-scenario_2"


# --- hypothesis: whatever the TOML, a ScenarioError or a scenario ----------------------------


def _schema_words(model: type[BaseModel] = Scenario, seen: set | None = None) -> set[str]:
    """Every key name the schema knows, to make random documents hit real fields."""
    seen = set() if seen is None else seen
    words = set(model.model_fields)
    for field in model.model_fields.values():
        for sub in _models_in(field.annotation):
            if sub not in seen:
                seen.add(sub)
                words |= _schema_words(sub, seen)
    return words


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) or () for m in _models_in(arg)]


WORDS = sorted(_schema_words() | set(SERVICE_TYPES) | {"extends", "local", "lang_a"})
keys = st.one_of(st.sampled_from(WORDS), st.text(max_size=8))
scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=12),
    st.booleans(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)
sections = st.fixed_dictionaries(
    {},
    optional={
        name: st.dictionaries(st.sampled_from(WORDS), values, max_size=5)
        for name in Scenario.model_fields
    },
)
documents = st.one_of(st.dictionaries(keys, values, max_size=6), sections)


def _load_text(text: str) -> tuple[Scenario | None, ScenarioError | None]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.toml"
        path.write_text(text, encoding="utf-8")
        try:
            return load_scenario(path), None
        except ScenarioError as error:
            assert "\n" not in str(error), str(error)
            return None, error


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_a_random_toml_document_loads_or_raises_a_scenario_error(doc):
    _, error = _load_text(toml_document(doc))
    if error is not None and error.key_path:
        heads = [format_key_path((k,)) for k in doc]
        named = [h for h in heads if error.key_path == h or error.key_path.startswith(h + ".")]
        assert named, (error.key_path, doc)


@settings(max_examples=50)
@given(st.text(max_size=200))
def test_random_text_loads_or_raises_a_scenario_error(text):
    _load_text(text)


@settings(max_examples=50)
@given(
    st.dictionaries(st.one_of(st.integers(), st.text(max_size=6), st.sampled_from(WORDS)), values)
)
def test_a_python_document_with_any_keys_raises_only_scenario_errors(doc):
    for strict in (False, True):
        try:
            scenario_from_dict(doc, "<test>", strict=strict)
        except ScenarioError as error:
            assert "\n" not in str(error)


# --- hypothesis: mutated shipped scenarios name the mutated key ------------------------------

SHIPPED = {path: tomllib.loads(path.read_text(encoding="utf-8")) for path in shipped_scenarios()}
RESOLVED = {path: resolve_document(path) for path in SHIPPED}
OUT_OF_RANGE = [-1, -0.5, -(10**9), 10**12, 2**62, -1e12, 1e300, math.nan, math.inf, -math.inf]


def key_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a document, list elements included (as integer indices)."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        here = (*prefix, key)
        found.append(here)
        if isinstance(item, dict | list):
            found.extend(key_paths(item, here))
    return found


def tables(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if isinstance(value, dict) else []
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            found.extend(tables(item, (*prefix, key)))
    return found


def at(doc: Any, path: tuple) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def wrong_type(original: Any) -> st.SearchStrategy:
    kinds = {
        bool: st.booleans(),
        int: st.integers(min_value=-5, max_value=10**6),
        float: st.floats(min_value=-1e3, max_value=1e3),
        str: st.text(max_size=10),
        list: st.lists(st.integers(0, 3), max_size=3),
        dict: st.dictionaries(st.text(max_size=5), st.integers(0, 3), max_size=2),
    }
    same = type(original)
    banned = {same} | ({int} if same is float else set())
    return st.one_of([s for t, s in kinds.items() if t not in banned])


@st.composite
def mutations(draw, documents: dict[Path, dict], keep_extends: bool):
    """(file, mutated document, mutated key path): one key dropped, one value replaced by
    another type or an out-of-range number, or one unknown key inserted."""
    path = draw(st.sampled_from(sorted(documents)))
    doc = copy.deepcopy(documents[path])
    everything = key_paths(doc)
    # keys of tables only (not array elements); dropping `extends` changes what the file
    # means rather than breaking a key, so in a file that extends another it stays
    droppable = [p for p in everything if isinstance(p[-1], str)]
    if keep_extends:
        droppable = [p for p in droppable if p != ("extends",)]
    numeric = [
        p
        for p in everything
        if isinstance(at(doc, p), int | float) and not isinstance(at(doc, p), bool)
    ]
    candidates = {"drop": droppable, "wrong_type": everything, "out_of_range": numeric}
    kinds = [k for k, options in candidates.items() if options] + ["insert"]
    kind = draw(st.sampled_from(kinds))
    if kind == "insert":
        table = draw(st.sampled_from(tables(doc)))
        existing = at(doc, table)
        key = draw(st.one_of(st.sampled_from(WORDS), st.text(max_size=10)))
        if key in existing:
            key = f"{key}_unknown"
        existing[key] = draw(values)
        return path, doc, (*table, key)
    target = draw(st.sampled_from(candidates[kind]))
    if kind == "drop":
        del at(doc, target[:-1])[target[-1]]
    elif kind == "out_of_range":
        at(doc, target[:-1])[target[-1]] = draw(st.sampled_from(OUT_OF_RANGE))
    else:
        at(doc, target[:-1])[target[-1]] = draw(wrong_type(at(doc, target)))
    return path, doc, target


def assert_names_the_key(error: ScenarioError, target: tuple) -> None:
    expected = format_key_path(target)
    got = error.key_path
    related = got == expected or expected.startswith(got + ".") or got.startswith(expected + ".")
    # a rule across two keys of one table (e.g. a means-test line for a childcare whose
    # eligibility was dropped back to "all") names one key and quotes the other's value
    sibling = got.rpartition(".")[0] == expected.rpartition(".")[0] and (
        f"{target[-1]} " in error.message or f"{target[-1]}=" in error.message
    )
    related = related or sibling
    assert got and related, f"mutated {expected!r}, error names {got!r}: {error}"
    assert "\n" not in str(error)


def _load_mutant(doc: dict, original: Path) -> Scenario:
    doc = dict(doc)
    if doc.get("extends") == SHIPPED[original].get("extends") and "extends" in doc:
        doc["extends"] = str(original.parent / doc["extends"])  # absolute: the file moved
    with tempfile.TemporaryDirectory() as folder:
        mutant = Path(folder) / "mutant.toml"
        mutant.write_text(toml_document(doc), encoding="utf-8")
        return load_scenario(mutant)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(mutations(SHIPPED, keep_extends=True))
def test_a_mutated_shipped_file_loads_or_names_the_mutated_key(case):
    original, doc, target = case
    try:
        _load_mutant(doc, original)
    except ScenarioError as error:
        assert_names_the_key(error, target)


def test_dropping_a_key_another_key_depends_on_names_one_and_quotes_the_other():
    """verification: targeted's childcare drawing its line from the places, with its
    means-tested eligibility dropped (back to "all"), is refused naming a key of that table
    and quoting the dropped key's value (found by the mutation test above)."""
    original = next(p for p in SHIPPED if p.name == "targeted.toml")
    doc = copy.deepcopy(SHIPPED[original])
    del doc["provision"]["childcare"]["eligibility"]
    with pytest.raises(ScenarioError) as caught:
        _load_mutant(doc, original)
    assert_names_the_key(caught.value, ("provision", "childcare", "eligibility"))
    assert 'eligibility "all"' in caught.value.message


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    mutations(
        {p: {k: v for k, v in d.items() if k != "extends"} for p, d in RESOLVED.items()},
        keep_extends=False,
    )
)
def test_a_mutated_resolved_scenario_loads_or_names_the_mutated_key(case):
    original, doc, target = case
    try:
        _load_mutant(doc, original)
    except ScenarioError as error:
        assert_names_the_key(error, target)


def test_a_fee_schedule_whose_last_band_stops_short_of_every_income_is_refused(tmp_path):
    """verification: one band below 14,000 EUR would have charged its fee to every income
    above it; the schedule must say so by reaching 10,000,000 EUR."""
    body = (
        "[provision.childcare.fee]\nkind = 'income_related'\n"
        "bands = [{income_below_eur_year = 14000.0, fee_eur_week = 0.0}]\n"
    )
    error = load_error(scenario_file(tmp_path, body))
    assert error.key_path == "provision.childcare.fee.bands.0.income_below_eur_year"
    assert "the last band must cover every income" in error.message
    assert "10,000,000" in error.message


def _child_of(tmp_path, parent_body: str, child_body: str):
    base = Path(__file__).resolve().parent.parent / "scenarios" / "base.toml"
    head = f'extends = "{base}"\nname = "parent"\ndescription = "The parent city."\n'
    (tmp_path / "parent.toml").write_text(head + parent_body, encoding="utf-8")
    child = tmp_path / "child.toml"
    child.write_text('extends = "parent.toml"\nname = "child"\n' + child_body, encoding="utf-8")
    return child


TWO_BANDS = (
    "[provision.childcare.fee]\nkind = 'income_related'\nbands = ["
    "{income_below_eur_year = 14000.0, fee_eur_week = 10.0},"
    "{income_below_eur_year = 10000000.0, fee_eur_week = 100.0}]\n"
)
ONE_BAND = (
    "[provision.childcare.fee]\n"
    "bands = [{income_below_eur_year = 10000000.0, fee_eur_week = 5.0}]\n"
)


def test_a_child_replacing_a_parents_list_is_warned_about_with_both_files(tmp_path):
    child = _child_of(tmp_path, TWO_BANDS, ONE_BAND)
    with pytest.warns(ScenarioWarning) as caught:
        scenario = load_scenario(child)
    (message,) = [str(w.message) for w in caught if "child.toml:" in str(w.message)]
    assert "child.toml: provision.childcare.fee.bands" in message and "parent.toml" in message
    assert "(2 entries) with 1 entries" in message and "lists are replaced" in message
    assert len(scenario.provision["childcare"].fee.bands) == 1  # the documented rule


def test_a_child_setting_an_empty_list_or_only_tables_is_not_warned_about(tmp_path):
    child = _child_of(tmp_path, "", "[provision.childcare.fee]\nkind = 'flat'\nbands = []\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScenarioWarning)
        load_scenario(child)


def test_the_command_line_prints_a_list_replacement_as_one_warning_line(tmp_path):
    from test_cli import famsim

    child = _child_of(tmp_path, "", ONE_BAND)
    done = famsim("validate", str(child), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("famsim: warning: ")
    assert "child.toml: provision.childcare.fee.bands" in done.stderr


def test_a_child_without_a_description_is_described_by_what_it_changes(tmp_path):
    child = _child_of(tmp_path, "", "[information]\noutreach_workers = 3.0\n[hubs]\ncount = 2\n")
    description = load_scenario(child).description
    assert description == ("The parent city. — changed: information.outreach_workers, hubs.count")
    own = _child_of(tmp_path, "", 'description = "Mine."\n')
    assert load_scenario(own).description == "Mine."
