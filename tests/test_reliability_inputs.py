"""Reliability catalogue, inputs (issue 10, items 2, 3 and part of 9): the scenario hash
follows the contents of a planner's city files and never their location; every number that
sizes the world has a range a real city can have, and a world too large for memory is
refused before it is built; errors about files say what is wrong without echoing them."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from test_cli import TINY, famsim, merged, refused_run, write_scenario

from sim.core.errors import ScenarioError
from sim.scenario import schema as scenario_module
from sim.scenario.schema import Scenario, _schema_at, _unwrap, load_scenario, scenario_from_dict
from sim.studies.comparison import city_identity
from sim.world.city import MAX_SITES, check_memory, estimate_world, load_city
from sim.world.planning import apportion

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
EXAMPLE = SCENARIOS / "example_city.toml"


def copy_example(folder: Path) -> Path:
    """The example city scenario, its base and its tables, copied into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SCENARIOS / "base.toml", folder / "base.toml")
    shutil.copy(EXAMPLE, folder / "example_city.toml")
    shutil.copytree(SCENARIOS / "cities", folder / "cities")
    return folder / "example_city.toml"


def edit_one_capacity(services: Path) -> None:
    """Double the capacity of the first site (one number in the file changes)."""
    lines = services.read_text(encoding="utf-8").splitlines(keepends=True)
    fields = lines[1].split(",")
    fields[3] = str(int(fields[3]) * 2)
    lines[1] = ",".join(fields)
    services.write_text("".join(lines), encoding="utf-8")


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# --- provenance of file cities (item 2) ---------------------------------------------------


def test_editing_one_number_in_the_services_file_changes_the_content_hash(tmp_path):
    path = copy_example(tmp_path / "town")
    before = load_scenario(path).content_hash()
    edit_one_capacity(tmp_path / "town" / "cities" / "example_services.csv")
    after = load_scenario(path).content_hash()
    assert before != after


def test_an_edit_within_the_same_second_and_size_is_not_hidden_by_the_digest_cache(tmp_path):
    table = tmp_path / "services.csv"
    table.write_text("x,y,type,capacity\n1,1,childcare,24\n", encoding="utf-8")
    first = scenario_module.city_file_digest(table)
    table.write_text("x,y,type,capacity\n1,1,childcare,42\n", encoding="utf-8")
    assert scenario_module.city_file_digest(table) != first


def test_an_old_file_is_hashed_once_and_served_from_the_cache(tmp_path, monkeypatch):
    table = tmp_path / "services.csv"
    table.write_text("x,y,type,capacity\n1,1,childcare,24\n", encoding="utf-8")
    old = time.time_ns() - 3_600 * 10**9
    os.utime(table, ns=(old, old))
    first = scenario_module.city_file_digest(table)
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    assert scenario_module.city_file_digest(table) == first
    assert str(table) not in [str(p) for p in opened]


def test_the_same_city_copied_to_another_folder_has_the_same_content_hash(tmp_path):
    shipped = load_scenario(EXAMPLE)
    here = load_scenario(copy_example(tmp_path / "one" / "place"))
    there = load_scenario(copy_example(tmp_path / "elsewhere"))
    assert here.content_hash() == there.content_hash() == shipped.content_hash()
    assert city_identity(here) == city_identity(there)


def test_the_content_hash_holds_no_absolute_path(tmp_path):
    scenario = load_scenario(copy_example(tmp_path / "town"))
    text = str(scenario.identity_dict())
    assert str(tmp_path) not in text and "example_services.csv" not in text


def test_file_digests_are_the_sha256_of_each_file_named_by_its_key():
    import hashlib

    scenario = load_scenario(EXAMPLE)
    digests = scenario.file_digests()
    assert set(digests) == {"cells_file", "services_file"}
    for key, digest in digests.items():
        data = Path(getattr(scenario.city, key)).read_bytes()
        assert digest == hashlib.sha256(data).hexdigest()
    assert Scenario().file_digests() == {}


def test_a_synthetic_city_keeps_the_hash_it_had_before_file_digests():
    # without city files the hash is the one of the resolved scenario less its names, as
    # before, so the scenario_hash column of existing results stays the same
    import hashlib
    import json

    data = load_scenario(SCENARIOS / "base.toml").resolved_dict()
    del data["name"], data["description"]
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    assert load_scenario(SCENARIOS / "base.toml").content_hash() == (
        hashlib.sha256(blob).hexdigest()
    )


def test_an_edited_city_file_changes_the_city_identity(tmp_path):
    path = copy_example(tmp_path / "town")
    before = city_identity(load_scenario(path))
    edit_one_capacity(tmp_path / "town" / "cities" / "example_services.csv")
    assert city_identity(load_scenario(path)) != before


def test_a_city_file_missing_at_hash_time_is_refused_with_one_line_naming_the_key(tmp_path):
    path = copy_example(tmp_path / "town")
    scenario = load_scenario(path)
    (tmp_path / "town" / "cities" / "example_services.csv").unlink()
    with pytest.raises(ScenarioError) as info:
        scenario.content_hash()
    error = info.value
    assert error.key_path == "city.services_file"
    assert "example_services.csv" in str(error) and "\n" not in str(error)


def test_famsim_validate_prints_a_different_hash_after_the_services_file_is_edited(tmp_path):
    path = copy_example(tmp_path / "town")
    before = famsim("validate", str(path), cwd=tmp_path)
    assert before.returncode == 0, before.stderr
    edit_one_capacity(tmp_path / "town" / "cities" / "example_services.csv")
    after = famsim("validate", str(path), cwd=tmp_path)
    assert after.returncode == 0, after.stderr
    assert "hash " in before.stdout and before.stdout != after.stdout


# --- numbers that size the world have ranges a real city can have (item 3) ----------------

WORLD_SIZERS = {
    "zero public places from an int64 overflow": (
        {"provision": {"childcare": {"places_per_100": 1e20}}},
        "provision.childcare.places_per_100",
        "from 0 to 10,000",
    ),
    "a hundred million one-place sites": (
        {"provision": {"childcare": {"places_per_100": 1e8, "site_capacity": 1}}},
        "provision.childcare.places_per_100",
        "from 0 to 10,000",
    ),
    "walking that takes no time": (
        {"travel": {"walk_minutes_per_km": 1e-300}},
        "travel.walk_minutes_per_km",
        "from 0.5 to 60",
    ),
    "a car that takes no time": (
        {"travel": {"car_minutes_per_km": 1e-300}},
        "travel.car_minutes_per_km",
        "from 0.5 to 60",
    ),
    "an outlay of 2e302 EUR from outreach workers": (
        {"information": {"outreach_workers": 1e300}},
        "information.outreach_workers",
        "from 0 to 100,000",
    ),
    "brokers beyond any city": (
        {"information": {"brokers": {"lang_a": 1e12}}},
        "information.brokers.lang_a",
        "from 0 to 100,000",
    ),
    "a weekly cost per place beyond any city": (
        {"provision": {"childcare": {"unit_cost_eur_week": 1e9}}},
        "provision.childcare.unit_cost_eur_week",
        "from 0 to 100,000",
    ),
    "a cell of a micrometre": (
        {"city": {"cell_size_m": 1e-6}},
        "city.cell_size_m",
        "from 10 to 5,000",
    ),
}


@pytest.mark.parametrize("case", list(WORLD_SIZERS), ids=list(WORLD_SIZERS))
def test_a_number_beyond_what_a_city_can_have_is_refused_with_one_line(tmp_path, case):
    sections, key, allowed = WORLD_SIZERS[case]
    scenario = write_scenario(tmp_path, merged(TINY, **sections))
    started = time.perf_counter()
    refused_run(tmp_path, scenario, "bad.toml", key, f"allowed: a number {allowed}")
    assert time.perf_counter() - started < 60  # refused, not built


def _numeric_leaves(model, prefix=()):
    for name, field in model.model_fields.items():
        annotation, meta = _unwrap(field.annotation, list(field.metadata))
        if annotation in (int, float):
            yield (*prefix, name), meta
        elif isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            yield from _numeric_leaves(annotation, (*prefix, name))
        elif getattr(annotation, "__origin__", None) in (dict, list):
            inner = _schema_at((*prefix, name, "x" if annotation.__origin__ is dict else 0))
            if inner is not None and inner[0] in (int, float):
                yield (*prefix, name, "*"), inner[1]
            elif inner is not None and hasattr(inner[0], "model_fields"):
                yield from _numeric_leaves(inner[0], (*prefix, name, 0))


def test_every_numeric_key_of_the_schema_has_a_lower_and_an_upper_bound():
    from sim.scenario.schema import ProvisionSpec

    leaves = list(_numeric_leaves(Scenario)) + [
        (("provision", "*", *path), meta) for path, meta in _numeric_leaves(ProvisionSpec)
    ]
    assert len(leaves) > 100
    unbounded = []
    for path, meta in leaves:
        names = {
            n for m in meta for n in ("ge", "gt", "le", "lt") if getattr(m, n, None) is not None
        }
        if not names & {"ge", "gt"} or not names & {"le", "lt"}:
            unbounded.append(".".join(map(str, path)))
    assert unbounded == []


def test_every_shipped_scenario_and_sweep_point_lies_within_the_ranges():
    from sim.studies.sweep import design, load_sweep, point_scenario

    files = sorted(SCENARIOS.glob("*.toml")) + sorted((SCENARIOS / "ablations").glob("*.toml"))
    for path in files:
        load_scenario(path)
    for path in sorted((SCENARIOS / "sweeps").glob("*.toml")):
        sweep = load_sweep(path)
        for point in design(sweep):
            point_scenario(sweep, point)
    from sim.studies.levers import load_levers, variants

    for path in sorted((SCENARIOS / "levers").glob("*.toml")):
        assert variants(load_levers(path))  # every variant validates


# --- the size estimate counts services and candidate pairs (item 3) -----------------------


def _with(scenario: Scenario, **sections) -> Scenario:
    data = scenario.resolved_dict()
    for path, values in sections.items():
        node = data
        for part in path.split("."):
            node = node[part]
        node.update(values)
    return scenario_from_dict(data, "<test>")


def test_the_estimate_counts_the_sites_each_type_plans_and_their_candidate_pairs():
    from sim.world.build import build_world

    scenario = load_scenario(SCENARIOS / "base.toml")
    estimate = estimate_world(scenario)
    world = build_world(scenario, 1)
    kinds = world.services.services.type
    counts = np.bincount(kinds, minlength=4)
    childcare_public = int((world.services.services.is_public & (kinds == 0)).sum())
    assert set(estimate.sites) == {
        "provision.childcare.places_per_100",
        "provision.health.places_per_100",
        "provision.parenting.places_per_100",
        "provision.admin_help.places_per_100",
        "market.places_per_100",
    }
    # at least the sites the planner builds, at most one more per neighbourhood and kind
    assert childcare_public <= estimate.sites["provision.childcare.places_per_100"]
    assert counts[1] <= estimate.sites["provision.health.places_per_100"]
    assert sum(estimate.sites.values()) <= world.services.services.size + 5 * 16
    built = sum(int(indptr[-1]) for indptr in world.candidates.indptr)
    assert built <= sum(estimate.pairs.values()) <= 3 * built


def test_smaller_sites_mean_more_sites_and_more_pairs_in_the_estimate():
    scenario = load_scenario(SCENARIOS / "base.toml")
    small = _with(scenario, **{"provision.childcare": {"site_capacity": 1}})
    key = "provision.childcare.places_per_100"
    assert estimate_world(small).sites[key] > 20 * estimate_world(scenario).sites[key]
    assert estimate_world(small).bytes > estimate_world(scenario).bytes


def test_a_file_city_counts_the_rows_of_its_services_file():
    estimate = estimate_world(load_scenario(EXAMPLE))
    rows = len((SCENARIOS / "cities" / "example_services.csv").read_text().splitlines()) - 1
    assert estimate.sites == {"city.services_file": rows}


def test_too_many_sites_to_place_are_refused_naming_the_key_before_anything_is_built():
    scenario = load_scenario(SCENARIOS / "base.toml")
    huge = _with(
        scenario,
        city={"families": 5_000_000, "width": 1_600, "height": 1_600, "neighbourhoods": 5_000},
        **{"provision.health": {"places_per_100": 1_000.0, "site_capacity": 1}},
    )
    started = time.perf_counter()
    with pytest.raises(ScenarioError) as info:
        check_memory(huge, "big.toml", available_bytes=2**50)
    assert time.perf_counter() - started < 5
    error = info.value
    assert error.key_path == "provision.health.places_per_100"
    assert f"more than the {MAX_SITES:,}" in error.message and "site_capacity" in error.message


def test_sites_too_many_for_memory_are_refused_naming_the_provision_key():
    scenario = load_scenario(SCENARIOS / "base.toml")
    heavy = _with(
        scenario, **{"provision.childcare": {"places_per_100": 10_000.0, "site_capacity": 1}}
    )
    check_memory(scenario, "city.toml", available_bytes=2 * 2**30)
    with pytest.raises(ScenarioError) as info:
        check_memory(heavy, "city.toml", available_bytes=2 * 2**30)
    error = info.value
    assert error.key_path == "provision.childcare.places_per_100"
    assert "candidate (family, service) pairs" in error.message
    assert "allowed on this machine: fewer places or larger sites" in error.message


def test_site_heavy_provision_is_refused_by_the_cli_with_one_line(tmp_path, monkeypatch):
    doc = merged(TINY, provision={"health": {"places_per_100": 10_000.0, "site_capacity": 1}})
    doc["city"] = {**doc["city"], "families": 60_000, "width": 200, "height": 200}
    scenario = write_scenario(tmp_path, doc)
    refused_run(tmp_path, scenario, "bad.toml", "provision.health.places_per_100", "GiB")


def test_apportioning_refuses_a_total_that_would_overflow():
    with pytest.raises(OverflowError):
        apportion(np.ones(4), 10**20)
    assert apportion(np.ones(4), 10).sum() == 10


# --- smaller items of 9: the budget's value, symlink loops, files that are not tables -------


def _unbalanceable() -> Scenario:
    return _with(
        load_scenario(SCENARIOS / "universal.toml"),
        budget={"target_outlay_eur_week": 100.0},
    )


def test_a_budget_error_quotes_the_target_and_the_city_size_it_is_for():
    from sim.world.city import build_city
    from sim.world.services import build_services

    scenario = _unbalanceable()
    with pytest.raises(ScenarioError) as info:
        build_services(scenario, build_city(scenario))
    assert "value 100 (EUR a week for this city's 12,000 families)" in info.value.message


def test_a_budget_error_after_scaling_quotes_the_files_value_and_says_it_was_scaled():
    from sim.studies.runner import scale_scenario
    from sim.world.city import build_city
    from sim.world.services import build_services

    scaled = scale_scenario(_unbalanceable(), 24_000)
    with pytest.raises(ScenarioError) as info:
        build_services(scaled, build_city(scaled), file_target=100.0)
    message = info.value.message
    assert "value 100 in the file, scaled to 200.00 EUR a week for 24,000 families" in message
    assert "--families" in message


def test_a_scenario_that_is_a_symlink_loop_is_reported_as_a_loop_with_one_line(tmp_path):
    loop = tmp_path / "loop.toml"
    loop.symlink_to(loop)
    with pytest.raises(ScenarioError) as info:
        load_scenario(loop)
    assert "symlink loop" in str(info.value) and "not found" not in str(info.value)
    done = famsim("validate", str(loop), cwd=tmp_path)
    assert "symlink loop" in one_line_error(done)


def test_an_extends_that_is_a_symlink_loop_is_reported_as_a_loop(tmp_path):
    (tmp_path / "a.toml").symlink_to(tmp_path / "b.toml")
    (tmp_path / "b.toml").symlink_to(tmp_path / "a.toml")
    child = tmp_path / "child.toml"
    child.write_text('extends = "a.toml"\n', encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(child)
    assert info.value.key_path == "extends" and "symlink loop" in info.value.message


def test_a_city_table_that_is_a_symlink_loop_is_reported_as_a_loop(tmp_path):
    path = copy_example(tmp_path / "town")
    services = tmp_path / "town" / "cities" / "example_services.csv"
    services.unlink()
    services.symlink_to(services)
    with pytest.raises(ScenarioError) as info:
        load_city(load_scenario(path), str(path))
    assert info.value.key_path == "city.services_file"
    assert "symlink loop" in info.value.message and "not found" not in info.value.message


NOT_TABLES = {
    "a TOML file": ("cells.csv", b'extends = "secret-base.toml"\nname = "private"\n'),
    "a binary file": ("cells.csv", b"\x89PNG\r\n\x1a\nsecret-bytes\x00\x00"),
    "text that is not UTF-8": ("cells.csv", b"x;y\n\xe9t\xe9 secret\n"),
    "a Parquet file named .csv": ("cells.csv", b"PAR1secret-bytes"),
    "a CSV file named .parquet": ("cells.parquet", b"x,y\nsecret,2\n"),
}


@pytest.mark.parametrize("case", list(NOT_TABLES), ids=list(NOT_TABLES))
def test_a_city_file_that_is_not_a_table_is_refused_without_echoing_its_contents(tmp_path, case):
    name, content = NOT_TABLES[case]
    path = copy_example(tmp_path / "town")
    table = tmp_path / "town" / "cities" / name
    table.write_bytes(content)
    scenario = load_scenario(path, {"city.cells_file": f"cities/{name}"})
    with pytest.raises(ScenarioError) as info:
        load_city(scenario, str(path))
    text = str(info.value)
    assert info.value.key_path == "city.cells_file" and "\n" not in text
    assert "secret" not in text and "PNG" not in text
    assert "allowed: a CSV file with a header row" in text


def test_famsim_run_with_families_quotes_the_files_budget_target_when_it_cannot_be_balanced(
    tmp_path,
):
    from test_cli import TINY, assert_refused, famsim, merged, write_scenario

    doc = merged(
        {**TINY, "extends": str(SCENARIOS / "universal.toml")},
        budget={"target_outlay_eur_week": 100.0},
    )
    scenario = write_scenario(tmp_path, doc, "cheap.toml")
    out = tmp_path / "out"
    done = famsim("run", str(scenario), "--families", "600", "--out", str(out), cwd=tmp_path)
    assert_refused(
        done, out, "budget.target_outlay_eur_week", "value 100 in the file, scaled to", "--families"
    )


def test_the_largest_travel_tolerance_the_schema_allows_never_exceeds_the_candidate_lists_range():
    """verification: median 600 minutes with log-sd 1 (both at their bounds) draws a few
    tolerances above 32,766 minutes in 200,000 slots; they are capped at 32,000, which reaches
    every service of any city, instead of failing the candidate build."""
    import numpy as np

    from sim.world.population import draw_travel

    scenario = _with(
        load_scenario(SCENARIOS / "base.toml"),
        population={"max_travel_minutes_median": 600.0, "max_travel_minutes_log_sd": 1.0},
    )
    slots = np.arange(200_000, dtype=np.int64)
    income = np.full(slots.size, 10**6, dtype=np.int64)
    minutes = draw_travel(scenario, 5, slots, income)["max_travel_minutes"]
    assert minutes.max() == 32_000 and minutes.min() >= 1
