"""Reliability catalogue: results folders, interrupts, exit codes and the Python API
(verification). Each case is a fault a user met, and what famsim now promises instead:

Results folders
 1. an interrupt while a rerun writes leaves the previous complete result (not a mix)
 2. an interrupt while a first run writes leaves nothing at --out
 3. a full disk while writing leaves the previous result, one line, exit 1
 4. --out holding another scenario's results is refused (exit 2) unless --force
 5. --force replaces them whole: every file is the new scenario's
 5. a folder from an older famsim (manifest without "job") of the same scenario is rerun
 6. --out holding files that are not famsim results is refused, even with --force
 7. a second famsim writing to the same --out is refused while the first runs
 8. --out that is the root, empty, the current folder or unwritable is refused before work
Interrupts and exits
 9. SIGINT during a run: one line, exit 130, nothing written, no process left
10. SIGTERM during a compare on 2 workers: one line, exit 143, no process left within 5 s
11. a replication failing for a named model failure: exit 1 and the reason on stderr
12. a bug (AttributeError) in a replication: one line, exit 70, traceback in a log file
12b. a worker killed from outside (out of memory): one line, exit 1, nothing written
Provenance and entry points
13. a command-line value out of range is blamed on the option, not the scenario file
14. every manifest records numba and llvmlite versions, and a file city's file digests
15. sim.run / sim.compare re-validate a scenario copied with bad values (ScenarioError)
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import famsim_started, session_processes, wait_for
from test_cli import ROOT, TINY, assert_refused, famsim, merged, write_scenario

import sim
from sim.app import cli
from sim.core.errors import ScenarioError
from sim.outputs import plots

pytestmark = pytest.mark.verification

# A run that computes for a minute or more (every test interrupts it), so that it is still
# running when a second process has started up, on however loaded a machine.
SLOW = merged(
    TINY,
    name="slow",
    city={"families": 3000, "width": 30, "height": 30, "neighbourhoods": 6},
    run={"weeks": 52, "burn_in_weeks": 5000, "replications": 8},
)


def run_main(*args: str) -> int:
    return cli.main([*args, "--quiet"])


def tiny(tmp_path: Path, name: str = "tiny", **sections) -> Path:
    return write_scenario(tmp_path, merged(TINY, name=name, **sections), f"{name}.toml")


def manifest_of(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def leftovers(folder: Path) -> list[str]:
    """Staging folders, set-aside results or lock files left beside a results folder."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- results folders --------------------------------------------------------------------------


def _interrupt_at_the_last_figure(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "barrier_attribution", interrupted)


def test_an_interrupt_while_a_rerun_writes_leaves_the_previous_complete_result(
    tmp_path, monkeypatch
):
    scenario, out = tiny(tmp_path), tmp_path / "out"
    assert run_main("run", str(scenario), "--out", str(out), "--seed", "1") == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    _interrupt_at_the_last_figure(monkeypatch)
    assert run_main("run", str(scenario), "--out", str(out), "--seed", "2") == 130
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before
    runs = pd.read_parquet(out / "runs.parquet")
    assert manifest_of(out)["seed"] == 1 and set(runs["seed"]) == {
        r["seed"] for r in manifest_of(out)["replications"]
    }
    assert leftovers(tmp_path) == []


def test_an_interrupt_while_a_first_run_writes_leaves_nothing(tmp_path, monkeypatch):
    scenario, out = tiny(tmp_path), tmp_path / "out"
    _interrupt_at_the_last_figure(monkeypatch)
    assert run_main("run", str(scenario), "--out", str(out)) == 130
    assert not out.exists() and leftovers(tmp_path) == []


def test_a_full_disk_while_writing_leaves_the_previous_result_and_says_so(
    tmp_path, monkeypatch, capsys
):
    scenario, out = tiny(tmp_path), tmp_path / "out"
    assert run_main("run", str(scenario), "--out", str(out), "--seed", "1") == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    capsys.readouterr()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(plots, "quintile_gradient", full)
    assert run_main("run", str(scenario), "--out", str(out), "--seed", "2") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "nothing was" in err
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert all(p.stat().st_size > 0 for p in out.rglob("*.png"))
    assert manifest_of(out)["seed"] == 1 and leftovers(tmp_path) == []


def test_an_out_holding_another_scenarios_results_is_refused_without_force(tmp_path):
    out = tmp_path / "out"
    first, second = tiny(tmp_path, "first"), tiny(tmp_path, "second")
    assert famsim("run", str(first), "--out", str(out), "--quiet", cwd=tmp_path).returncode == 0
    before = (out / "runs.parquet").read_bytes()
    done = famsim("run", str(second), "--out", str(out), "--quiet", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "'first'" in done.stderr and "--force" in done.stderr
    assert (out / "runs.parquet").read_bytes() == before


def test_force_replaces_another_scenarios_results_whole(tmp_path):
    out = tmp_path / "out"
    first = tiny(tmp_path, "first")
    second = tiny(tmp_path, "second", run={"weeks": 3, "burn_in_weeks": 2, "replications": 2})
    assert famsim("run", str(first), "--out", str(out), "--quiet", cwd=tmp_path).returncode == 0
    done = famsim("run", str(second), "--out", str(out), "--quiet", "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    manifest = manifest_of(out)
    assert manifest["job"] == {"command": "run", "scenarios": ["second"]}
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.*")) == sorted(manifest["files"])
    assert set(pd.read_parquet(out / "runs.parquet")["scenario"]) == {"second"}
    assert set(pd.read_parquet(out / "timeseries.parquet")["scenario"]) == {"second"}
    assert "second" in (out / "report.md").read_text()


def test_a_folder_written_before_manifests_named_their_job_is_recognised(tmp_path):
    scenario, out = tiny(tmp_path), tmp_path / "out"
    assert run_main("run", str(scenario), "--out", str(out), "--seed", "1") == 0
    manifest = manifest_of(out)
    del manifest["job"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert run_main("run", str(scenario), "--out", str(out), "--seed", "2") == 0
    assert manifest_of(out)["seed"] == 2
    other = tiny(tmp_path, "other")
    assert run_main("run", str(other), "--out", str(out)) == 2


def test_an_out_holding_files_that_are_not_results_is_refused_even_with_force(tmp_path):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("keep me")
    done = famsim("run", str(tiny(tmp_path)), "--out", str(out), "--force", cwd=tmp_path)
    assert done.returncode == 2 and "not famsim results" in done.stderr
    assert [p.name for p in out.iterdir()] == ["chapter1.tex"]


def test_a_second_writer_to_the_same_out_is_refused_while_the_first_runs(tmp_path):
    out = tmp_path / "out"
    slow = write_scenario(tmp_path, SLOW, "slow.toml")
    first = famsim_started("run", str(slow), "--out", str(out), "--quiet", cwd=tmp_path)
    try:
        wait_for(
            lambda: (tmp_path / ".out.lock").exists() or first.poll() is not None, 120, "the lock"
        )
        assert first.poll() is None, first.communicate()
        done = famsim("run", str(tiny(tmp_path)), "--out", str(out), "--quiet", cwd=tmp_path)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "being written by another famsim process" in done.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)


@pytest.mark.parametrize(
    "out, expected",
    [
        ("/", "file-system root"),
        ("", "allowed: a path"),
        (".", "allowed: a path"),
        ("..", "current folder"),
        ("/proc/famsim-results", "cannot write to"),
    ],
)
def test_an_out_that_is_no_place_for_results_is_refused_before_any_work(tmp_path, out, expected):
    scenario = write_scenario(tmp_path, SLOW, "slow.toml")
    started = time.monotonic()
    done = famsim("run", str(scenario), "--out", out, "--quiet", cwd=tmp_path)
    assert_refused(done, tmp_path / "never", expected)
    assert time.monotonic() - started < 60  # refused at once, not after computing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow.toml"]


# --- interrupts and exits ---------------------------------------------------------------------


def test_sigint_during_a_run_is_one_line_exit_130_and_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    slow = write_scenario(tmp_path, SLOW, "slow.toml")
    job = famsim_started("run", str(slow), "--out", str(out), "--quiet", cwd=tmp_path)
    wait_for(lambda: (tmp_path / ".out.lock").exists() or job.poll() is not None, 120, "the lock")
    time.sleep(1.0)
    job.send_signal(signal.SIGINT)
    stdout, stderr = job.communicate(timeout=60)
    assert job.returncode == 130, stderr
    assert stderr.count("\n") == 1 and "interrupted" in stderr and "Traceback" not in stderr
    assert not out.exists() and leftovers(tmp_path) == []
    wait_for(lambda: not session_processes(job.pid), 5, "the job's processes to end")


def test_sigterm_during_a_compare_on_two_workers_leaves_no_process_within_5_s(tmp_path):
    out = tmp_path / "out"
    a = write_scenario(tmp_path, merged(SLOW, name="a"), "a.toml")
    b = write_scenario(
        tmp_path, merged(SLOW, name="b", information={"outreach_workers": 1.0}), "b.toml"
    )
    job = famsim_started("compare", a, b, "--workers", "2", "--out", out, "--quiet", cwd=tmp_path)
    wait_for(
        lambda: len(session_processes(job.pid)) >= 3 or job.poll() is not None, 120, "2 workers"
    )
    time.sleep(1.0)
    job.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    stdout, stderr = job.communicate(timeout=60)
    wait_for(lambda: not session_processes(job.pid), 5, "the job's processes to end")
    assert time.monotonic() - stopped < 5
    assert job.returncode == 143, stderr
    assert stderr.count("\n") == 1 and "terminated" in stderr and "Traceback" not in stderr
    assert not out.exists() and leftovers(tmp_path) == []


def test_a_named_model_failure_fails_its_replication_and_says_why(tmp_path, monkeypatch, capsys):
    from sim.studies import runner

    def overflowing(scenario, seed, progress=False):
        raise FloatingPointError("overflow in the fee schedule")

    monkeypatch.setattr(runner, "run_one", overflowing)
    out = tmp_path / "out"
    assert run_main("run", str(tiny(tmp_path)), "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 of 1 replication(s) failed" in err
    assert "FloatingPointError: overflow in the fee schedule" in err
    assert manifest_of(out)["replications"][0]["status"] == "failed"


def test_a_bug_stops_with_one_line_exit_70_and_its_traceback_in_a_log(
    tmp_path, monkeypatch, capsys
):
    from sim.studies import runner

    def broken(scenario, seed, progress=False):
        raise AttributeError("'Engine' object has no attribute 'famlies'")

    monkeypatch.setattr(runner, "run_one", broken)
    out = tmp_path / "out"
    assert run_main("run", str(tiny(tmp_path)), "--out", str(out)) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: AttributeError" in err
    log = out / "famsim-error.log"
    assert str(log) in err
    assert "Traceback" in log.read_text() and "famlies" in log.read_text()
    assert [p.name for p in out.iterdir()] == ["famsim-error.log"]
    # the folder holds no results, so the next run may write there
    monkeypatch.undo()
    assert run_main("run", str(tiny(tmp_path)), "--out", str(out)) == 0
    assert not log.exists()


# --- provenance and entry points --------------------------------------------------------------


@pytest.mark.parametrize(
    "option, value",
    [("--seed", str(2**70)), ("--weeks", "100000"), ("--families", "100000000000")],
)
def test_a_command_line_value_out_of_range_is_blamed_on_the_option(tmp_path, option, value):
    done = famsim("run", str(tiny(tmp_path)), option, value, "--out", "x", cwd=tmp_path)
    line = assert_refused(done, tmp_path / "x", f"<command line>: {option}:")
    assert "tiny.toml" not in line


def test_every_manifest_records_numba_and_llvmlite_versions(tmp_path):
    out = tmp_path / "out"
    assert run_main("run", str(tiny(tmp_path)), "--out", str(out)) == 0
    versions = manifest_of(out)["versions"]
    for package in ("numba", "llvmlite"):
        assert versions[package][0].isdigit(), versions


def test_a_file_citys_manifest_records_the_sha256_of_its_files(tmp_path):
    import hashlib

    example = ROOT / "scenarios" / "example_city.toml"
    out = tmp_path / "out"
    settings = ("--reps", "1", "--weeks", "2", "--burn-in", "2")
    assert run_main("run", str(example), *settings, "--out", str(out)) == 0
    cities = ROOT / "scenarios" / "cities"
    expected = {
        key: hashlib.sha256((cities / f"example_{table}.csv").read_bytes()).hexdigest()
        for key, table in (("cells_file", "cells"), ("services_file", "services"))
    }
    assert manifest_of(out)["file_digests"] == expected


def _copies_with_bad_values(scenario: sim.Scenario) -> dict[str, sim.Scenario]:
    def changed(section: str, **values):
        return scenario.model_copy(
            update={section: getattr(scenario, section).model_copy(update=values)}
        )

    return {
        "run.weeks": changed("run", weeks=-5),
        "behaviour.dropout_base_week": changed("behaviour", dropout_base_week=5.0),
        "city.languages": changed("city", languages={"local": 0.2}),
        "run.replications": changed("run", replications=0),
        "city.families": changed("city", families=0),
        "city.populated_radius_share": changed("city", populated_radius_share=math.nan),
    }


@pytest.mark.parametrize("key", list(_copies_with_bad_values(sim.Scenario())))
def test_the_python_api_revalidates_a_scenario_copied_with_bad_values(key):
    bad = _copies_with_bad_values(sim.load_scenario(ROOT / "scenarios" / "base.toml"))[key]
    with pytest.raises(ScenarioError, match=key.replace(".", r"\.")):
        sim.run(bad)
    with pytest.raises(ScenarioError, match=key.replace(".", r"\.")):
        sim.compare([bad, bad.model_copy(update={"name": "other"})], ["a", "b"])


def test_a_worker_killed_from_outside_is_one_line_exit_1_and_nothing_written(
    tmp_path, monkeypatch, capsys
):
    """A worker the kernel kills (out of memory) used to surface as a bug (exit 70)."""
    from sim.studies import runner

    def killed(scenario, seed, progress=False):
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(runner, "run_one", killed)  # forked workers inherit the stand-in
    a = tiny(tmp_path, "a", run={"replications": 2})
    b = tiny(tmp_path, "b", run={"replications": 2}, information={"outreach_workers": 1.0})
    out = tmp_path / "out"
    assert run_main("compare", str(a), str(b), "--workers", "2", "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a worker process died" in err
    assert not out.exists() and leftovers(tmp_path) == []
