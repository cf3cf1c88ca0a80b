"""How the engine's loops are compiled (numba), in one place.

`kernel` compiles a loop that the Python side calls; `inline` a helper that is inlined into
the kernels calling it. Both skip numba's reference counting (its `_nrt` option): the
kernels allocate nothing and only read and write arrays their caller owns, while counting
references to every array a loop reads costs more than the rules themselves (about 300 ns a
(family, service) pair against 40 ns). Compiled code is cached next to the sources, so it
is compiled once per install.
"""

from __future__ import annotations

from numba import njit

kernel = njit(cache=True, _nrt=False)
inline = njit(cache=True, inline="always", _nrt=False)
