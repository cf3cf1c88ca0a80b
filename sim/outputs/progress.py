"""The one progress bar of runs and sweeps: on standard error, only when it is a terminal."""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(total: int, name: str, quiet: bool, initial: int = 0) -> Any | None:
    """A tqdm bar counting runs (None when quiet or when standard error is not a terminal,
    so logs and pipes get no control characters); `initial` counts runs already done."""
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm  # tqdm is imported only when a bar is drawn (start-up time)

    return tqdm(
        total=total, initial=initial, desc=name, unit="run", leave=False, dynamic_ncols=True
    )
