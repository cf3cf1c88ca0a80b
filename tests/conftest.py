"""Shared pytest configuration for the famsim tests.

Keep this file to settings every test module shares; put fixtures below the settings.
"""

from __future__ import annotations

import os

from hypothesis import settings

# --- hypothesis profiles -------------------------------------------------------------------
# No per-example deadline anywhere: the first example that reaches a compiled kernel may
# compile it (seconds, once per install), and CI runners are two shared cores. "ci" is also
# derandomised, so a failure on CI reproduces locally with CI=1. Each test sets its own
# max_examples.
settings.register_profile("local", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "local")


# --- fixtures ------------------------------------------------------------------------------


# --- scheduling ----------------------------------------------------------------------------
# `make test` runs the files on two processes (xdist --dist loadfile), each file whole. A
# file is handed to whichever process is free, in collection order, so a long file collected
# last leaves the other process idle at the end. Collecting the longest files first (longest
# processing time first) keeps both busy. Seconds per file on 2 cores, measured with
# --junitxml on 2026-12-07; a file not listed counts as short. Only the order changes.
FILE_SECONDS = {
    "test_reliability_sweeps.py": 200,
    "test_sweep.py": 110,
    "test_reliability_outputs.py": 90,
    "test_docking.py": 74,
    "test_cli.py": 67,
    "test_configurations.py": 57,
    "test_run.py": 46,
    "test_calibration.py": 41,
    "test_api.py": 34,
    "test_app.py": 30,
    "test_access.py": 27,
    "test_app_browser.py": 25,
    "test_calibration_recovery.py": 25,
}


def pytest_collection_modifyitems(session, config, items) -> None:
    weight = {}
    for item in items:
        name = item.path.name
        weight.setdefault(name, (-FILE_SECONDS.get(name, 0), len(weight)))
    items.sort(key=lambda item: weight[item.path.name])  # stable: tests keep their order
