"""Shared pytest configuration for the famsim tests.

Keep this file to settings every test module shares; put fixtures below the settings.
"""

from __future__ import annotations

import os

from hypothesis import settings

# --- hypothesis profiles -------------------------------------------------------------------
# "ci": CI runners are two shared cores, so no per-example deadline; derandomised so a
# failure on CI reproduces locally with CI=1. Each test sets its own max_examples.
settings.register_profile("ci", deadline=None, derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


# --- fixtures ------------------------------------------------------------------------------
