"""Sweeps: design, stable run ids, common random numbers, interruption and resume, Dask, and
the sensitivity pipeline (validated on the Ishigami function)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.core.errors import ScenarioError
from sim.studies.sensitivity import indices
from sim.studies.sweep import (
    load_sweep,
    local_cluster,
    results,
    run_sweep,
    sample_unit,
    tasks,
    to_ema,
)

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "sweeps" / "smoke.toml"
FAMSIM = [sys.executable, "-m", "sim"]
VARYING = ("session", "seconds", "worker_pid")


def famsim(*args: str, cwd: Path = ROOT, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*FAMSIM, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600, **kw
    )


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in frame.columns if c not in VARYING]].reset_index(drop=True)


@pytest.fixture(scope="module")
def uninterrupted_folder(tmp_path_factory) -> Path:
    """The smoke sweep run once, uninterrupted, by the command line: its folder is the
    module's reference. Tests that need a finished folder of their own copy it rather than
    run the same 18 runs again."""
    out = tmp_path_factory.mktemp("sweeps") / "plain"
    done = famsim("sweep", SMOKE, "--out", out, "--quiet")
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def uninterrupted(uninterrupted_folder) -> pd.DataFrame:
    return results(uninterrupted_folder)


def write_sweep(path: Path, body: str) -> Path:
    path.write_text(f'base = "{(ROOT / "scenarios" / "base.toml").as_posix()}"\n' + body)
    return path


# --- design and identity ------------------------------------------------------------------


@pytest.mark.verification
def test_smoke_is_at_most_24_runs_and_run_ids_are_stable_and_distinct():
    sweep = load_sweep(SMOKE)
    first, second = tasks(sweep), tasks(load_sweep(SMOKE))
    assert len(first) <= 24
    assert [t.run_id for t in first] == [t.run_id for t in second]
    assert len({t.run_id for t in first}) == len(first)
    # the model version is part of the id
    other = tasks(sweep, {"commit": "0" * 40, "dirty": False})
    assert not {t.run_id for t in first} & {t.run_id for t in other}


@pytest.mark.verification
def test_every_design_point_uses_the_same_replication_seeds(uninterrupted):
    seeds = uninterrupted.groupby("replication")["seed"].nunique()
    assert (seeds == 1).all()
    per_point = uninterrupted.groupby("point")["seed"].apply(tuple)
    assert per_point.nunique() == 1


@pytest.mark.verification
def test_samplers_give_the_documented_number_of_rows(tmp_path):
    body = (
        '[run]\nfamilies = 600\n[sampler]\nkind = "{kind}"\nsamples = {n}\n{extra}\n'
        "[parameters]\n"
        '"information.referral_prob_week" = {{ low = 0.0, high = 0.05 }}\n'
        '"behaviour.waitlist_patience_weeks" = {{ low = 8, high = 52 }}\n'
        '[sensitivity]\nmetrics = ["u3_participation_arope"]\n'
    )
    cases = {
        "sobol": (8, "", 8 * (2 * 2 + 2)),
        "morris": (5, "levels = 4", 5 * 3),
        "lhs": (7, "", 7),
    }
    for kind, (n, extra, rows) in cases.items():
        sweep = load_sweep(
            write_sweep(tmp_path / f"{kind}.toml", body.format(kind=kind, n=n, extra=extra))
        )
        points = tasks(sweep)
        assert len(points) == rows, kind
        # whole-number fields are sampled as whole numbers, within the range
        waits = [t.values["behaviour.waitlist_patience_weeks"] for t in points]
        assert all(isinstance(w, int) and 8 <= w <= 52 for w in waits), kind


@pytest.mark.verification
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '[sampler]\nkind = "grid"\n[parameters]\n"information.outreach_worker" = [1.0]\n',
            "did you mean 'outreach_workers'",
        ),
        (
            '[sampler]\nkind = "gird"\n[parameters]\n"information.outreach_workers" = [1.0]\n',
            "did you mean 'grid'",
        ),
        (
            '[sampler]\nkind = "sobol"\nsamples = 12\n[parameters]\n'
            '"information.outreach_workers" = { low = 0.0, high = 2.0 }\n'
            '[sensitivity]\nmetrics = ["u3_gap_pp"]\n',
            "power of two",
        ),
        (
            '[sampler]\nkind = "lhs"\nsamples = 4\n[parameters]\n'
            '"information.outreach_workers" = { low = 2.0, high = 1.0 }\n',
            "must be below high",
        ),
        (
            '[sampler]\nkind = "grid"\n[parameters]\n"information.outreach_workers" = [-1.0]\n',
            "information.outreach_workers",
        ),
        (
            '[sampler]\nkind = "grid"\n[parameters]\n"information.outreach_workers" = [1.0]\n'
            '[sensitivity]\nmetrics = ["u3_participation_arop"]\n',
            "did you mean",
        ),
        (
            '[sampler]\nkind = "grid"\nwhatever = 1\n[parameters]\n"information.outreach_workers" = [1.0]\n',
            "unknown key",
        ),
    ],
)
def test_bad_sweep_files_get_one_line_exit_2_and_nothing_written(tmp_path, body, expected):
    path = write_sweep(tmp_path / "bad.toml", body)
    out = tmp_path / "out"
    done = famsim("sweep", path, "--out", out)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


@pytest.mark.verification
def test_a_folder_holding_another_sweep_is_refused(tmp_path, uninterrupted_folder, uninterrupted):
    # a copy of the finished smoke sweep's folder: the same files `famsim sweep` wrote, without
    # running its 18 runs a second time
    out = tmp_path / "out"
    shutil.copytree(uninterrupted_folder, out)
    other = SMOKE.read_text().replace("seed = 2026", "seed = 2027")
    other_path = tmp_path / "other.toml"
    other_path.write_text(
        other.replace('"../base.toml"', f'"{(ROOT / "scenarios" / "base.toml").as_posix()}"')
    )
    before = sorted(p.name for p in (out / "runs").iterdir())
    done = famsim("sweep", other_path, "--out", out)
    assert done.returncode == 2 and "holds another sweep" in done.stderr
    assert sorted(p.name for p in (out / "runs").iterdir()) == before
    # the same sweep again: nothing left to run, nothing rewritten
    again = famsim("sweep", SMOKE, "--out", out, "--resume")
    assert again.returncode == 0
    assert sorted(p.name for p in (out / "runs").iterdir()) == before
    pd.testing.assert_frame_equal(comparable(results(out)), comparable(uninterrupted))


# --- interruption and resume ----------------------------------------------------------------


@pytest.mark.verification
def test_a_sweep_killed_with_sigkill_resumes_without_recomputing_and_matches(
    tmp_path, uninterrupted
):
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [*FAMSIM, "sweep", str(SMOKE), "--out", str(out), "--quiet", "--workers", "2"],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if list((out / "runs").glob("part-*.parquet")) if (out / "runs").exists() else []:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    before = results(out)
    total = len(uninterrupted)
    assert 0 < len(before) < total, "the kill came after the sweep had finished"
    assert not list(out.rglob("part-*.parquet.tmp"))  # only whole files are visible
    resumed = famsim("sweep", SMOKE, "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(before)} already done, {total - len(before)} run now" in resumed.stdout
    after = results(out)
    # every run id exactly once; committed rows untouched (same session); same metrics
    assert after["run_id"].is_unique and len(after) == total
    kept = after.set_index("run_id").loc[before["run_id"], "session"]
    assert (kept.to_numpy() == before["session"].to_numpy()).all()
    assert after["session"].nunique() == 2
    pd.testing.assert_frame_equal(comparable(after), comparable(uninterrupted))


# --- Dask ---------------------------------------------------------------------------------


@pytest.mark.verification
def test_dask_local_gives_the_same_run_ids_and_metrics(tmp_path, uninterrupted):
    out = tmp_path / "dask"
    done = famsim("sweep", SMOKE, "--dask", "local", "--out", out, "--quiet")
    assert done.returncode == 0, done.stderr
    manifest = (out / "manifest.json").read_text()
    assert '"executor": "dask-local"' in manifest
    pd.testing.assert_frame_equal(comparable(results(out)), comparable(uninterrupted))


@pytest.mark.verification
def test_killing_a_dask_worker_mid_task_loses_no_run_and_duplicates_none(tmp_path, uninterrupted):
    from distributed import Client

    sweep = load_sweep(SMOKE)
    out = tmp_path / "dask-kill"
    with local_cluster(2) as cluster, Client(cluster) as client:
        pid_of = client.run(os.getpid)  # worker address -> process id
        killed: list[int] = []

        def kill_one(_path: Path) -> None:
            if not killed:  # after the first committed chunk, while other runs are under way
                processing = client.processing()
                busy = [addr for addr in pid_of if processing.get(addr)]
                assert busy, "no worker was running a task"
                os.kill(pid_of[busy[0]], signal.SIGKILL)
                killed.append(pid_of[busy[0]])

        report = run_sweep(
            sweep, out, client.get_executor(), "dask-local", 2, quiet=True, on_commit=kill_one
        )
    assert killed
    assert report.failed == 0
    after = results(out)
    assert after["run_id"].is_unique and len(after) == len(uninterrupted)
    pd.testing.assert_frame_equal(comparable(after), comparable(uninterrupted))


# --- sensitivity ----------------------------------------------------------------------------


ISHIGAMI = {
    "num_vars": 3,
    "names": ["x1", "x2", "x3"],
    "bounds": [[-np.pi, np.pi]] * 3,
}
# a = 7, b = 0.1: analytic first- and total-order indices
ISHIGAMI_S1 = np.array([0.3139, 0.4424, 0.0])
ISHIGAMI_ST = np.array([0.5576, 0.4424, 0.2437])


def ishigami(x: np.ndarray) -> np.ndarray:
    return np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])


@pytest.mark.validation
def test_the_sensitivity_pipeline_recovers_the_ishigami_indices():
    x = sample_unit("sobol", ISHIGAMI, {"samples": 2048, "seed": 1})
    table = indices("sobol", ISHIGAMI, x, ishigami(x), seed=1)
    assert np.allclose(table["S1"], ISHIGAMI_S1, atol=0.05), table
    assert np.allclose(table["ST"], ISHIGAMI_ST, atol=0.05), table
    assert (table["S1_conf"] > 0).all() and (table["ST_conf"] > 0).all()
    # the same data in the wrong row order gives indices far from the truth: the check bites
    shuffled = ishigami(x)[np.random.default_rng(0).permutation(len(x))]
    wrong = indices("sobol", ISHIGAMI, x, shuffled, seed=1)
    assert not np.allclose(wrong["ST"], ISHIGAMI_ST, atol=0.05)


@pytest.mark.verification
def test_nan_outputs_and_wrong_sample_sizes_are_refused():
    x = sample_unit("sobol", ISHIGAMI, {"samples": 64, "seed": 1})
    y = ishigami(x)
    y[5] = np.nan
    with pytest.raises(ScenarioError, match="no finite value"):
        indices("sobol", ISHIGAMI, x, y)
    with pytest.raises(ScenarioError, match="power of two"):
        indices("sobol", ISHIGAMI, x[:-8], ishigami(x[:-8]))


@pytest.mark.verification
def test_famsim_sensitivity_writes_indices_with_intervals_and_a_plot_per_measure(tmp_path):
    body = (
        "replications = 2\nseed = 5\nchunk_size = 16\n"
        "[run]\nfamilies = 600\nburn_in_weeks = 6\nweeks = 6\n"
        '[sampler]\nkind = "sobol"\nsamples = 4\nseed = 2\n'
        "[parameters]\n"
        '"information.wom_prob_per_tie_week" = { low = 0.005, high = 0.05 }\n'
        '"behaviour.trust_gain_enrolled_week" = { low = 0.0, high = 0.01 }\n'
        '[sensitivity]\nmetrics = ["u3_participation_all", "takeup_health_arope"]\n'
    )
    path = write_sweep(tmp_path / "tiny_sobol.toml", body)
    out = tmp_path / "out"
    assert famsim("sweep", path, "--out", out, "--quiet").returncode == 0
    done = famsim("sensitivity", path, "--out", out)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out / "sensitivity" / "indices.csv")
    assert set(table["metric"]) == {"u3_participation_all", "takeup_health_arope"}
    for column in ("S1", "S1_conf", "ST", "ST_conf", "replication_variance_mean"):
        assert table[column].notna().all(), column
    assert (out / "sensitivity" / "indices_u3_participation_all.png").stat().st_size > 1000
    agg = pd.read_csv(out / "sensitivity" / "aggregate_u3_participation_all.csv")
    assert len(agg) == 4 * (2 * 2 + 2) and (agg["replications"] == 2).all()


@pytest.mark.verification
def test_the_ema_workbench_form_aligns_experiments_and_outcomes(
    uninterrupted_folder, uninterrupted
):
    # to_ema only reads the folder: the module's finished sweep serves (that a second sweep
    # reproduces it is checked by the resume, Dask and executor tests)
    experiments, outcomes = to_ema(uninterrupted_folder)
    assert len(experiments) == len(uninterrupted)
    assert {"information.outreach_workers", "scenario", "policy", "model"} <= set(experiments)
    for values in outcomes.values():
        assert values.shape == (len(experiments),)
    assert np.array_equal(
        outcomes["u3_participation_arope"], uninterrupted["u3_participation_arope"].to_numpy()
    )


def test_run_sweep_takes_any_executor_from_python(tmp_path, uninterrupted):
    """The Python API: run_sweep with a caller's executor (a forkserver process pool)."""
    out = tmp_path / "api"
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        report = run_sweep(load_sweep(SMOKE), out, pool, "api", 2)
    assert report.ran == len(uninterrupted) and report.failed == 0
    pd.testing.assert_frame_equal(comparable(results(out)), comparable(uninterrupted))
