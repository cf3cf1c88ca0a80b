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
