"""How the engine's loops are compiled (numba), in one place.

`kernel` compiles a loop that the Python side calls; `inline` a helper that is inlined into
the kernels calling it. Both skip numba's reference counting (its `_nrt` option): the
kernels allocate nothing and only read and write arrays their caller owns, while counting
references to every array a loop reads costs more than the rules themselves (about 300 ns a
(family, service) pair against 40 ns). Compiled code is cached next to the sources, so it
is compiled once per install.
"""

from __future__ import annotations

from pathlib import Path

from numba import njit

kernel = njit(cache=True, _nrt=False)
inline = njit(cache=True, inline="always", _nrt=False)

# the modules whose loops are compiled, and where numba keeps their cache
COMPILED_MODULES = ("kernels", "information", "metrics", "rng")
CACHE_DIR = Path(__file__).resolve().parent / "__pycache__"


def needs_compiling() -> bool:
    """True when some compiled module has no cached code yet (the first run after an install
    or an edit compiles it, about 20 s)."""
    if not CACHE_DIR.is_dir():
        return True
    cached = {p.name.split(".", 1)[0] for p in CACHE_DIR.glob("*.nbi")}
    return not set(COMPILED_MODULES) <= cached
