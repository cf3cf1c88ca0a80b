"""Provenance written into every manifest: the versions of the packages a result depends on
and the commit of the source tree that computed it."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

# the packages whose version can change a run's numbers or its files
RUN_PACKAGES = (
    "famsim",
    "mesa",
    "numpy",
    "numba",
    "llvmlite",
    "scipy",
    "pandas",
    "pyarrow",
    "pydantic",
    "matplotlib",
)
# and, for sweeps, the design and the scheduler
SWEEP_PACKAGES = ("SALib", "dask", "distributed")
SOURCE_ROOT = Path(__file__).resolve().parent.parent.parent


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Python's version and each package's ("not installed" when absent)."""
    return {"python": platform.python_version()} | {
        name: package_version(name) for name in (*RUN_PACKAGES, *extra)
    }


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=SOURCE_ROOT, capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def git_state() -> dict[str, Any]:
    """Commit of the source tree and whether it had uncommitted changes (None, None outside
    a git checkout)."""
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}
