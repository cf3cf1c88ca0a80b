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

# the modules with @kernel loops (an @inline helper is compiled into its callers), as paths below the package (numba keeps each one's
# cache in the __pycache__ folder beside it, files named <module>.<function>-<line>...nbi)
COMPILED_MODULES = (
    "core/rng",
    "rules/barriers",
    "rules/decisions",
    "rules/experience",
    "rules/information",
    "rules/life_course",
    "measure/metrics",
)
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def needs_compiling() -> bool:
    """True when some compiled module has no cached code yet (the first run after an install
    or an edit compiles it, about 20 s)."""
    for module in COMPILED_MODULES:
        folder, name = module.rsplit("/", 1)
        if not any((PACKAGE_DIR / folder / "__pycache__").glob(f"{name}.*.nbi")):
            return True
    return False
