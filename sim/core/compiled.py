"""How the engine's loops are compiled (numba), in one place.

`kernel` compiles a loop that the Python side calls; `inline` a helper that is inlined into
the kernels calling it. Both are `njit(cache=True, _nrt=False)`: nopython mode, without
numba's runtime (NRT, its reference counting of arrays). The kernels allocate nothing and only
read and write arrays their caller owns, while counting references to every array a loop
reads costs more than the rules themselves (about 300 ns a (family, service) pair against
40 ns). A kernel takes its inputs as arrays, scalars and named records
(`sim.rules.records`, named tuples of arrays or scalars) and returns at most scalars.

Errors you may meet when editing a kernel, and what they mean:

- **"NRT required but not enabled"** (`NumbaRuntimeError`, at "native lowering"): the edit
  needs the runtime the kernels run without. Typical causes: raising an exception with a
  runtime value (`raise ValueError(n)`; a constant message is fine), building a list, dict
  or string in the loop, or passing a Python list where an array belongs (a record field set
  to a list). Pass a numpy array instead, allocate outside (the caller creates the output
  array), or return a code and raise on the Python side.
- **A `TypingError` naming `zeros`, `empty` or "Only accept returning of array passed into
  the function as argument"**: the kernel allocates an array (np.zeros, a + b on arrays, a
  copy). Allocate it in Python and pass it in; views (`out[1:]`) are fine.
- **A `TypingError` "No implementation of function ... for signature" naming a record's
  field** (e.g. `mul(float64, none)`): a field of a record changed type, or is None or
  missing. A record's field types are part of the kernel's compiled signature: an int32
  array where there was an int64 one, or an int where there was a float, compiles the kernel
  again (once, then cached) and may change the arithmetic; a type the kernel cannot use does
  not compile. Build the field with the dtype the record documents.
- **`UnsupportedBytecodeError` about a conditional expression in a call**: numba reads no
  `a if c else b` as a keyword argument (`PairOffer(x=a if c else b)`); compute it into a
  local first.

Debugging: with `NUMBA_DISABLE_JIT=1` in the environment every kernel and helper runs as the
plain Python function it is written as, so `breakpoint()`, pdb and `print` work inside a
kernel, and results are the same bits (the hash rounds of `sim.core.rng` wrap in uint64 as
compiled: a 200-family, 4-week and a 2,000-family, 3-week run give the same state and
measures both ways). It is slow, about 60 us a family-week against 1-2 us compiled on a
small city, so keep the city small (`--families 200 --weeks 4`).

Caching: compiled code is kept in the `__pycache__` folder beside each module that defines
kernels (`sim/core`, `sim/rules`, `sim/measure`), so it is compiled once per install: `make install` runs
`python -m sim.studies.warm scenarios/*.toml` (about 45 s), which runs a small city of each
shipped scenario so that no later process, pool worker or test worker compiles again. Numba checks only the kernel's own source file: after editing an `inline` helper
used by kernels of another module (`pair_barriers` in `rules/barriers.py` is inlined into
`rules/decisions.py`; `uniform_from` in `core/rng.py` into every rule module), delete the
cached `*.nbi` and `*.nbc` files under `sim/`, or the other module's kernels keep the old
helper.
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
    "rules/allocation",
    "rules/decisions",
    "rules/experience",
    "rules/information",
    "rules/life_course",
    "rules/policy",
    "rules/ties",
    "measure/metrics",
)
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def needs_compiling() -> bool:
    """True when some compiled module has no cached code yet (after an edit of the engine, or
    an install that skipped `python -m sim.studies.warm`; the first run compiles it)."""
    for module in COMPILED_MODULES:
        folder, name = module.rsplit("/", 1)
        if not any((PACKAGE_DIR / folder / "__pycache__").glob(f"{name}.*.nbi")):
            return True
    return False
