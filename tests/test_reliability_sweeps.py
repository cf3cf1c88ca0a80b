"""Reliability catalogue for sweeps (issue 10): each case is a fault or a bad input that a
sweep must meet with one line (exit 2 for bad input), a kept result, or a clean stop.

Cases:
 1. a second `famsim sweep` into a running sweep's folder is refused (one line, exit 2) and
    the folder ends with one row per run id
 2. a truncated part file is moved aside on resume (said on stderr) and its runs run again
 3. `results()` and `famsim sensitivity` name an unreadable part file in one line
 4. an unreadable manifest is rewritten on resume when every run in the folder is this
    sweep's
 5. an unreadable manifest beside another sweep's runs is refused in one line
 6. run ids written twice (an old unlocked double run) keep the first row, for results,
    sensitivity and resume
 7. run.seed, run.replications and other [run] keys cannot be swept (one line, exit 2)
 8. run.weeks and run.burn_in_weeks can be swept and are applied
 9. designs too large to run are refused from their size alone, promptly: a 10^7-point
    grid, Sobol' samples = 2**40, a huge LHS
10. Morris levels must be an even number >= 2
11. a grid value that is not a whole number, for a whole-number key, is refused
12. sampled whole-number keys are rounded and the manifest says which
13. a sweep with a failed run exits 1 with a one-line summary of the failures
14. SIGTERM to a sweep leaves no process of its session behind within 5 s, exit 143, one
    line; the same command then resumes and finishes
15. SIGINT (Ctrl-C to the process group): the same, exit 130
16. a bug in a run (AttributeError) stops the sweep after committing the finished rows; it
    is not recorded as a failed run
17. a bug at the command line: exit 70, one line, the traceback in out/famsim-error.log
18. a Dask address that does not answer: one line, exit 2, within seconds
19. sensitivity of a measure that does not vary is refused in one line (no SALib warnings);
    beside a varying one it is skipped with a note
20. run ids are a function of the scenario's content hash, seed and model version (a
    renamed scenario keeps its run ids)
21. a sweep and its scenarios moved to another folder keep their run ids and sweep hash
22. a planner's city: editing one number of its services file changes `famsim validate`'s
    hash and the run ids, and resuming re-runs every affected run; the sweep, scenario and
    city copied elsewhere keep every hash and run id
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from helpers import famsim_run, famsim_started, session_processes, wait_for

import sim.studies.runner
from sim.core.errors import ScenarioError
from sim.scenario.schema import load_scenario
from sim.studies.sweep import MAX_RUNS, by_point, load_sweep, results, run_sweep, tasks

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "scenarios" / "base.toml"

# A city small enough that each run takes a fraction of a second.
TINY_BASE = f"""extends = "{BASE.as_posix()}"
name = "tiny"
[city]
families = 300
width = 20
height = 20
neighbourhoods = 4
[run]
weeks = 2
burn_in_weeks = 2
replications = 1
"""
# A sweep slow enough to be caught running: 4 points x 4 replications of a 2,000-family
# city for 80 + 40 weeks (about two seconds each), committed in chunks of 2.
SLOW = """name = "slow"
base = "base.toml"
replications = 4
seed = 7
chunk_size = 2
[run]
families = 2000
burn_in_weeks = 80
weeks = 40
[sampler]
kind = "grid"
[parameters]
"information.outreach_workers" = [0.0, 2.0, 4.0, 6.0]
"""
GRID = """name = "grid"
base = "base.toml"
replications = 2
seed = 3
chunk_size = 2
[sampler]
kind = "grid"
[parameters]
"information.outreach_workers" = [0.0, 2.0, 4.0]
"""
MORRIS = """name = "morris"
base = "base.toml"
[sampler]
kind = "morris"
samples = 2
levels = 2
[parameters]
"behaviour.trust_gain_enrolled_week" = {{ low = 0.0, high = 0.02 }}
"information.outreach_workers" = {{ low = 0.0, high = 4.0 }}
[sensitivity]
metrics = {metrics}
"""


def famsim(*args: object, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    return famsim_run(*args, cwd=cwd, timeout=timeout)


def start(*args: object) -> subprocess.Popen:
    return famsim_started(*args)


def one_line(stderr: str) -> bool:
    return stderr.count("\n") == 1 and "Traceback" not in stderr


def folder(tmp_path: Path, sweep: str, base: str = TINY_BASE) -> Path:
    """A sweep file beside its base scenario, in a folder of their own."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "base.toml").write_text(base)
    path = tmp_path / "sweep.toml"
    path.write_text(sweep)
    return path


def run_in_threads(path: Path, out: Path, workers: int = 2):
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return run_sweep(load_sweep(path), out, pool, "threads", workers)


def parts(out: Path) -> list[Path]:
    return sorted((out / "runs").glob("part-*.parquet"))


# --- 1. one writer per sweep folder -----------------------------------------------------


# The first writer must still be running when the second has started up and validated its
# input (a few seconds on a loaded machine): runs ten times as long as SLOW's, interrupted
# once the second writer has been refused.
LONG = SLOW.replace("burn_in_weeks = 80", "burn_in_weeks = 800")
# For the signal tests: SLOW's runs, but 3 points x 2 replications. After the first
# committed chunk (2 runs) four runs are left, two waves of about two seconds on 2 workers:
# time enough for the signal to land first, and the resume only has those four to run.
SIGNALLED = SLOW.replace("replications = 4", "replications = 2").replace(
    "[0.0, 2.0, 4.0, 6.0]", "[0.0, 2.0, 4.0]"
)


def test_a_second_sweep_into_a_running_sweeps_folder_is_refused(tmp_path):
    path = folder(tmp_path, LONG)
    out = tmp_path / "out"
    first = start("sweep", path, "--out", out, "--quiet", "--workers", "2")
    try:
        # the manifest is written under the lock: once it is there, the lock is held
        wait_for(lambda: (out / "manifest.json").exists(), 60, "the first sweep to start")
        second = famsim("sweep", path, "--out", out, "--quiet")
        assert first.poll() is None, "the first sweep ended before the second started"
        assert second.returncode == 2 and one_line(second.stderr), second.stderr
        assert "--out" in second.stderr and "another famsim process" in second.stderr
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=60) == 130, first.stderr.read()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    frame = results(out)
    assert frame["run_id"].is_unique
    raw = pd.concat([pd.read_parquet(p) for p in parts(out)]) if parts(out) else frame
    assert len(raw) == len(frame)  # no run written twice


# --- 2-6. corrupt and duplicated files ----------------------------------------------------


@pytest.fixture
def finished(tmp_path) -> tuple[Path, Path, pd.DataFrame]:
    """A finished 6-run grid sweep (3 part files of 2 runs), run in threads."""
    path = folder(tmp_path, GRID)
    out = tmp_path / "out"
    run_in_threads(path, out)
    assert len(parts(out)) == 3
    return path, out, results(out)


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in frame.columns if c not in ("session", "seconds", "worker_pid")]
    return frame[keep].sort_values("run_id").reset_index(drop=True)


def test_a_truncated_part_file_is_moved_aside_on_resume_and_its_runs_run_again(finished):
    path, out, before = finished
    broken = parts(out)[1]
    lost = set(pd.read_parquet(broken)["run_id"])
    broken.write_bytes(broken.read_bytes()[:100])
    done = famsim("sweep", path, "--out", out)
    assert done.returncode == 0, done.stderr
    assert broken.name in done.stderr and "moved aside" in done.stderr and one_line(done.stderr)
    assert (broken.parent / f"{broken.name}.corrupt").exists()
    assert f"{len(before) - len(lost)} already done, {len(lost)} run now" in done.stdout
    after = results(out)
    assert after["run_id"].is_unique
    pd.testing.assert_frame_equal(comparable(after), comparable(before))


def test_results_and_sensitivity_name_an_unreadable_part_file_in_one_line(tmp_path):
    path = folder(tmp_path, MORRIS.format(metrics='["u3_enrolled_all"]'))
    out = tmp_path / "out"
    run_in_threads(path, out)
    broken = parts(out)[0]
    broken.write_bytes(b"")
    with pytest.raises(ScenarioError, match="run the sweep again") as caught:
        results(out)
    assert caught.value.file == str(broken)
    done = famsim("sensitivity", path, "--out", out)
    assert done.returncode == 2 and one_line(done.stderr), done.stderr
    assert str(broken) in done.stderr and "run the sweep again" in done.stderr
    assert not (out / "sensitivity").exists()


@pytest.mark.parametrize("content", ["", '{"sweep_hash": "abc', "[1, 2]"])
def test_an_unreadable_manifest_is_rewritten_on_resume_when_the_runs_are_this_sweeps(
    finished, content
):
    path, out, before = finished
    (out / "manifest.json").write_text(content)
    # what sensitivity reads: refused, naming the file
    with pytest.raises(ScenarioError, match="run the sweep again") as caught:
        by_point(load_sweep(path), out)
    assert caught.value.file == str(out / "manifest.json")
    done = famsim("sweep", path, "--out", out)
    assert done.returncode == 0, done.stderr
    assert "manifest.json" in done.stderr and "rewritten" in done.stderr
    assert f"{len(before)} already done, 0 run now" in done.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sweep_hash"] == load_sweep(path).content_hash()


def test_an_unreadable_manifest_beside_another_sweeps_runs_is_refused(finished, tmp_path):
    path, out, _ = finished
    (out / "manifest.json").write_text("{")
    other = tmp_path / "other.toml"
    other.write_text(GRID.replace("seed = 3", "seed = 4"))
    names = sorted(p.name for p in (out / "runs").iterdir())
    done = famsim("sweep", other, "--out", out)
    assert done.returncode == 2 and one_line(done.stderr), done.stderr
    assert "manifest.json" in done.stderr and "are not runs of" in done.stderr
    assert sorted(p.name for p in (out / "runs").iterdir()) == names
    assert (out / "manifest.json").read_text() == "{"


def test_run_ids_written_twice_keep_the_first_row(tmp_path):
    path = folder(tmp_path, MORRIS.format(metrics='["u3_enrolled_all"]'))
    out = tmp_path / "out"
    run_in_threads(path, out)
    first = results(out)
    # what two unlocked sweeps into one folder left: the same runs again in a later part
    copy = first.assign(u3_enrolled_all=-1.0, session="second")
    copy.to_parquet(out / "runs" / "part-09999.parquet", index=False)
    after = results(out)
    assert after["run_id"].is_unique and (after["u3_enrolled_all"] >= 0).all()
    again = famsim("sweep", path, "--out", out)
    assert again.returncode == 0 and f"{len(first)} already done, 0 run now" in again.stdout
    done = famsim("sensitivity", path, "--out", out, "--quiet")
    assert done.returncode == 0, done.stderr


# --- 7-12. design checks --------------------------------------------------------------------


@pytest.mark.parametrize("key", ["run.seed", "run.replications"])
def test_run_seed_and_replications_cannot_be_swept(tmp_path, key):
    path = folder(tmp_path, GRID.replace('"information.outreach_workers"', f'"{key}"'))
    done = famsim("sweep", path, "--out", tmp_path / "out")
    assert done.returncode == 2 and one_line(done.stderr), done.stderr
    assert f"parameters.{key}" in done.stderr and "`seed`" in done.stderr
    assert "[run]" in done.stderr
    assert not (tmp_path / "out").exists()


def test_swept_run_weeks_and_burn_in_are_applied(tmp_path):
    body = GRID.replace(
        '"information.outreach_workers" = [0.0, 2.0, 4.0]',
        '"run.weeks" = [2, 3]\n"run.burn_in_weeks" = [1, 4]',
    )
    sweep = load_sweep(folder(tmp_path, body))
    applied = {(t.scenario.run.weeks, t.scenario.run.burn_in_weeks) for t in tasks(sweep)}
    assert applied == {(2, 1), (2, 4), (3, 1), (3, 4)}
    assert {t.scenario.run.seed for t in tasks(sweep)} == {3}


# seven real-valued keys: ten values each make a grid of 10^7 points
GRID_KEYS = (
    "behaviour.trust_gain_enrolled_week",
    "behaviour.trust_loss_rejection",
    "behaviour.fit_gain_enrolled_week",
    "behaviour.dropout_base_week",
    "behaviour.dropout_barrier_slope",
    "information.outreach_workers",
    "information.wom_prob_per_tie_week",
)


@pytest.mark.parametrize(
    ("parameters", "sampler", "key", "size"),
    [
        (
            "\n".join(f'"{key}" = {[0.001 * v for v in range(10)]}' for key in GRID_KEYS),
            'kind = "grid"',
            "parameters",
            "10,000,000 design points",
        ),
        (
            '"information.outreach_workers" = { low = 0.0, high = 1.0 }',
            f'kind = "sobol"\nsamples = {2**40}',
            "sampler.samples",
            f"{2**40 * 4:,} sobol design points",
        ),
        (
            '"information.outreach_workers" = { low = 0.0, high = 1.0 }',
            f'kind = "lhs"\nsamples = {MAX_RUNS // 2 + 1}',
            "sampler.samples",
            f"{MAX_RUNS + 2:,} runs",
        ),
    ],
)
def test_designs_too_large_to_run_are_refused_from_their_size(
    tmp_path, parameters, sampler, key, size
):
    body = (
        'base = "base.toml"\nreplications = 2\n'
        f"[sampler]\n{sampler}\n[parameters]\n{parameters}\n"
        '[sensitivity]\nmetrics = ["u3_enrolled_all"]\n'
    )
    path = folder(tmp_path, body)
    started = time.monotonic()
    with pytest.raises(ScenarioError) as caught:
        load_sweep(path)
    assert time.monotonic() - started < 5
    assert caught.value.key_path == key and size in caught.value.message, caught.value
    assert f"at most {MAX_RUNS:,} runs" in caught.value.message
    done = famsim("sweep", path, "--out", tmp_path / "out", timeout=60)
    assert done.returncode == 2 and one_line(done.stderr), done.stderr


@pytest.mark.parametrize("levels", [1, 3, 0, 2.5])
def test_morris_levels_must_be_an_even_number_of_at_least_2(tmp_path, levels):
    path = folder(tmp_path, MORRIS.format(metrics='["u3_enrolled_all"]'))
    path.write_text(path.read_text().replace("levels = 2", f"levels = {levels}"))
    done = famsim("sweep", path, "--out", tmp_path / "out")
    assert done.returncode == 2 and one_line(done.stderr), done.stderr
    assert "sampler.levels" in done.stderr and "an even number >= 2" in done.stderr


def test_a_fractional_grid_value_for_a_whole_number_key_is_refused(tmp_path):
    body = GRID.replace(
        '"information.outreach_workers" = [0.0, 2.0, 4.0]',
        '"behaviour.waitlist_patience_weeks" = [8.0, 12.5]',
    )
    done = famsim("sweep", folder(tmp_path, body), "--out", tmp_path / "out")
    assert done.returncode == 2 and one_line(done.stderr), done.stderr
    assert "behaviour.waitlist_patience_weeks" in done.stderr and "12.5" in done.stderr
    assert "whole numbers" in done.stderr
    # a whole number written as a float is that number
    sweep = load_sweep(folder(tmp_path, body.replace("12.5", "12.0")))
    assert [p["behaviour.waitlist_patience_weeks"] for p in sweep_points(sweep)] == [8, 12]


def sweep_points(sweep) -> list[dict]:
    from sim.studies.sweep import design

    return design(sweep)


def test_sampled_whole_number_keys_are_rounded_and_the_manifest_says_so(tmp_path):
    body = MORRIS.format(metrics='["u3_enrolled_all"]').replace(
        '"information.outreach_workers" = { low = 0.0, high = 4.0 }',
        '"behaviour.waitlist_patience_weeks" = { low = 8, high = 52 }',
    )
    path = folder(tmp_path, body)
    out = tmp_path / "out"
    run_in_threads(path, out)
    weeks = results(out)["param:behaviour.waitlist_patience_weeks"]
    assert all(float(w).is_integer() for w in weeks)
    note = json.loads((out / "manifest.json").read_text())["sampler"]["note"]
    assert note == "rounded to whole numbers: ['behaviour.waitlist_patience_weeks']"


# --- 13-17. exits, signals, bugs ------------------------------------------------------------


def test_a_sweep_with_a_failed_run_exits_1_with_a_one_line_summary(tmp_path):
    # a budget of 1 EUR a week cannot be balanced: that design point fails in its worker
    base = TINY_BASE + "[budget]\ntarget_outlay_eur_week = 50000.0\n"
    body = GRID.replace(
        '"information.outreach_workers" = [0.0, 2.0, 4.0]',
        '"budget.target_outlay_eur_week" = [50000.0, 1.0]',
    )
    path = folder(tmp_path, body, base)
    out = tmp_path / "out"
    done = famsim("sweep", path, "--out", out, "--quiet")
    assert done.returncode == 1 and one_line(done.stderr), done.stderr
    assert "2 of 4 run(s) failed" in done.stderr
    assert "budget.target_outlay_eur_week" in done.stderr
    frame = results(out)
    assert (frame.groupby("point")["status"].first() == ["ok", "failed"]).all()
    # resumed, the failed runs are still the sweep's result: still exit 1
    again = famsim("sweep", path, "--out", out, "--quiet")
    assert again.returncode == 1 and "2 of 4 run(s) failed" in again.stderr


@pytest.mark.parametrize(
    ("signum", "code", "word", "group"),
    [(signal.SIGTERM, 143, "SIGTERM", False), (signal.SIGINT, 130, "SIGINT", True)],
)
def test_a_signal_stops_every_process_of_the_sweep_and_the_sweep_resumes(
    tmp_path, signum, code, word, group
):
    path = folder(tmp_path, SIGNALLED)
    out = tmp_path / "out"
    proc = start("sweep", path, "--out", out, "--quiet", "--workers", "2")
    try:
        # a committed chunk: both workers have started and are running the next runs
        wait_for(lambda: bool(parts(out)), 90, "a committed chunk")
        # SIGTERM to the parent only (a service manager); SIGINT to the group (Ctrl-C)
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        sent = time.monotonic()
        assert proc.wait(timeout=5) == code
        wait_for(lambda: not session_processes(proc.pid), 5 - (time.monotonic() - sent), "exit")
        stderr = proc.stderr.read()
        assert one_line(stderr) and word in stderr, stderr
    finally:
        if session_processes(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    kept = len(results(out)) if parts(out) else 0
    total = len(tasks(load_sweep(path)))
    assert kept < total, "the signal came after the sweep had finished"
    resumed = famsim("sweep", path, "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{kept} already done, {total - kept} run now" in resumed.stdout
    frame = results(out)
    assert frame["run_id"].is_unique and len(frame) == total


def broken_replication(scenario, replication):
    raise AttributeError("'NoneType' object has no attribute 'week'")


def test_a_bug_in_a_run_stops_the_sweep_after_committing_finished_rows(tmp_path, monkeypatch):
    path = folder(tmp_path, GRID)
    out = tmp_path / "out"
    real = sim.studies.runner.run_replication
    calls = []

    def second_point_is_broken(scenario, replication):
        calls.append(1)
        if scenario.information.outreach_workers == 2.0:
            return broken_replication(scenario, replication)
        return real(scenario, replication)

    monkeypatch.setattr(sim.studies.runner, "run_replication", second_point_is_broken)
    sweep = load_sweep(path)
    with ThreadPoolExecutor(max_workers=1) as pool:
        with pytest.raises(AttributeError, match="no attribute 'week'"):
            run_sweep(sweep, out, pool, "serial", 1)
    frame = results(out)
    # the first point's two runs were finished and are kept; no failed row for the bug
    assert list(frame["point"]) == [0, 0] and (frame["status"] == "ok").all()
    assert len(calls) <= 4  # the sweep stopped: the third point was never started or ran


def test_a_bug_at_the_command_line_is_exit_70_with_the_traceback_in_the_folder(
    tmp_path, monkeypatch, capsys
):
    from sim.app import cli

    @contextmanager
    def threads(workers, start_method=None):
        with ThreadPoolExecutor(max_workers=workers) as pool:
            yield pool

    monkeypatch.setattr(sim.studies.runner, "process_pool", threads)
    monkeypatch.setattr(sim.studies.runner, "run_replication", broken_replication)
    out = tmp_path / "out"
    code = cli.main(["sweep", str(folder(tmp_path, GRID)), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 70 and one_line(err), err
    assert "AttributeError" in err and "famsim-error.log" in err
    assert "no attribute 'week'" in (out / "famsim-error.log").read_text()
    assert not parts(out)  # not a single run recorded as data


def test_a_dask_address_that_does_not_answer_is_one_line_promptly(tmp_path):
    out = tmp_path / "out"
    started = time.monotonic()
    done = famsim("sweep", folder(tmp_path, GRID), "--dask", "tcp://127.0.0.1:1", "--out", out)
    assert time.monotonic() - started < 20
    assert done.returncode == 2 and one_line(done.stderr), done.stderr
    assert "--dask" in done.stderr and "tcp://127.0.0.1:1" in done.stderr
    assert not out.exists()


# --- 19. sensitivity of a constant -----------------------------------------------------------


def test_sensitivity_of_a_measure_that_does_not_vary_is_refused_or_skipped(tmp_path):
    # these parameters do not change how many public childcare places are paid for
    path = folder(tmp_path, MORRIS.format(metrics='["outlay_places_eur_week"]'))
    out = tmp_path / "out"
    run_in_threads(path, out)
    done = famsim("sensitivity", path, "--out", out)
    assert done.returncode == 2 and one_line(done.stderr), done.stderr
    assert "measure outlay_places_eur_week does not vary over the design" in done.stderr
    assert "no sensitivity to compute" in done.stderr and "Warning" not in done.stderr
    assert not (out / "sensitivity").exists()
    both = '["outlay_places_eur_week", "u3_enrolled_all"]'
    path.write_text(MORRIS.format(metrics=both))
    shutil.rmtree(out)
    run_in_threads(path, out)
    done = famsim("sensitivity", path, "--out", out, "--quiet")
    assert done.returncode == 0 and one_line(done.stderr), done.stderr
    assert "note:" in done.stderr and "skipped" in done.stderr
    table = pd.read_csv(out / "sensitivity" / "indices.csv")
    assert set(table["metric"]) == {"u3_enrolled_all"}


# --- 20-21. run ids without absolute paths ----------------------------------------------------


def test_run_ids_are_a_function_of_the_scenario_content_hash(tmp_path):
    path = folder(tmp_path, GRID)
    renamed = folder(
        tmp_path / "renamed",
        GRID,
        TINY_BASE.replace('name = "tiny"', 'name = "other"\ndescription = "a copy"'),
    )
    first, second = tasks(load_sweep(path)), tasks(load_sweep(renamed))
    assert [t.scenario.content_hash() for t in first] == [t.scenario.content_hash() for t in second]
    assert [t.run_id for t in first] == [t.run_id for t in second]
    assert first[0].scenario.name != second[0].scenario.name


def test_a_moved_sweep_keeps_its_run_ids_and_hash(tmp_path):
    here = tmp_path / "here"
    here.mkdir()
    path = folder(here, GRID)
    there = tmp_path / "somewhere" / "else"
    shutil.copytree(here, there)
    a, b = load_sweep(path), load_sweep(there / "sweep.toml")
    assert a.file != b.file
    assert [t.run_id for t in tasks(a)] == [t.run_id for t in tasks(b)]
    assert a.content_hash() == b.content_hash()


FILE_CITY_SWEEP = """name = "town"
base = "example_city.toml"
replications = 2
seed = 5
[run]
weeks = 2
burn_in_weeks = 2
[sampler]
kind = "grid"
[parameters]
"information.outreach_workers" = [0.0, 1.0]
"""


def _hash_line(scenario: Path) -> str:
    """The hash `famsim validate` prints (checked once against the command below); the
    rest of the test reads it in-process, as validate computes it."""
    return load_scenario(scenario).content_hash()[:16]


def _printed_hash(scenario: Path) -> str:
    done = famsim("validate", scenario)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("(hash ", 1)[1].split(")")[0]


def test_an_edited_city_file_changes_the_hash_and_a_resumed_sweep_reruns_its_runs(tmp_path):
    town = tmp_path / "town"
    shutil.copytree(ROOT / "scenarios" / "cities", town / "cities")
    for name in ("example_city.toml", "base.toml"):
        shutil.copy(ROOT / "scenarios" / name, town / name)
    (town / "sweep.toml").write_text(FILE_CITY_SWEEP)
    scenario, sweep_file, out = town / "example_city.toml", town / "sweep.toml", tmp_path / "out"

    before = _printed_hash(scenario)
    assert before == _hash_line(scenario) == _hash_line(ROOT / "scenarios" / "example_city.toml")
    ids_before = {t.run_id for t in tasks(load_sweep(sweep_file))}
    done = famsim("sweep", sweep_file, "--out", out, "--workers", 1)
    assert done.returncode == 0, done.stderr
    assert "(0 already done, 4 run now, 0 failed)" in done.stdout

    # the same files elsewhere: the same hash, the same run ids, nothing to run again
    moved = tmp_path / "elsewhere"
    shutil.copytree(town, moved)
    assert _hash_line(moved / "example_city.toml") == before
    assert {t.run_id for t in tasks(load_sweep(moved / "sweep.toml"))} == ids_before
    again = famsim("sweep", moved / "sweep.toml", "--out", out, "--workers", 1)
    assert again.returncode == 0 and "(4 already done, 0 run now" in again.stdout

    services = pd.read_csv(town / "cities" / "example_services.csv")
    services.loc[0, "capacity"] += 1  # one number
    services.to_csv(town / "cities" / "example_services.csv", index=False)
    assert _hash_line(scenario) != before
    ids_after = {t.run_id for t in tasks(load_sweep(sweep_file))}
    assert ids_after.isdisjoint(ids_before)
    resumed = famsim("sweep", sweep_file, "--out", out, "--workers", 1)
    assert resumed.returncode == 0, resumed.stderr
    assert "(0 already done, 4 run now, 0 failed)" in resumed.stdout
    assert ids_after <= set(results(out)["run_id"])
