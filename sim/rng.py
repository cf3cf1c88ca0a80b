"""Keyed random streams: every draw is a pure function of (seed, stream, week, family, service).

A counter-based generator (splitmix64 finaliser applied to a combination of the keys) gives
each decision its own uniform number, so the order in which families are stored or visited,
the chunk size, or the presence of an unrelated family never changes anyone's draw.
The same functions serve the fast engine and the per-agent reference.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy.special import ndtri

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV_2_53 = 1.0 / float(1 << 53)

NO_SERVICE = -1


def stream_id(name: str) -> int:
    """A stable 32-bit id for a stream name (crc32 of its UTF-8 bytes)."""
    return zlib.crc32(name.encode("utf-8"))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    x = x ^ (x >> _S30)
    x = x * _M1
    x = x ^ (x >> _S27)
    x = x * _M2
    return x ^ (x >> _S31)


def keyed_bits(
    seed: int,
    stream: str,
    week: int | np.ndarray,
    family: int | np.ndarray,
    service: int | np.ndarray = NO_SERVICE,
) -> np.ndarray:
    """64 random bits per key tuple; arguments broadcast like numpy arrays."""
    with np.errstate(over="ignore"):
        parts = (
            np.uint64(seed & 0xFFFFFFFFFFFFFFFF),
            np.uint64(stream_id(stream)),
            np.asarray(week, dtype=np.int64).astype(np.uint64),
            np.asarray(family, dtype=np.int64).astype(np.uint64),
            np.asarray(service, dtype=np.int64).astype(np.uint64),
        )
        h = np.uint64(0x6A09E667F3BCC909)
        for part in parts:
            h = _mix(np.asarray(h ^ part, dtype=np.uint64) + _GOLDEN)
        return np.asarray(h, dtype=np.uint64)


def uniform(seed, stream, week, family, service=NO_SERVICE) -> np.ndarray:
    """Uniform floats in [0, 1) with 53 random bits, keyed (see module docstring)."""
    bits = keyed_bits(seed, stream, week, family, service)
    return (bits >> np.uint64(11)).astype(np.float64) * _INV_2_53


_MASK = (1 << 64) - 1


def uniform_one(seed: int, stream: str, week: int, family: int, service: int = NO_SERVICE) -> float:
    """One keyed uniform in plain Python (no numpy): the same 64-bit arithmetic as `uniform`,
    so the same number. The per-agent reference draws with this."""
    return (bits_one(seed, stream, week, family, service) >> 11) * _INV_2_53


def bits_one(seed: int, stream: str, week: int, family: int, service: int = NO_SERVICE) -> int:
    """`keyed_bits` for one key tuple, in plain Python integers."""
    h = 0x6A09E667F3BCC909
    for part in (seed & _MASK, stream_id(stream), week & _MASK, family & _MASK, service & _MASK):
        x = ((h ^ part) + 0x9E3779B97F4A7C15) & _MASK
        x ^= x >> 30
        x = (x * 0xBF58476D1CE4E5B9) & _MASK
        x ^= x >> 27
        x = (x * 0x94D049BB133111EB) & _MASK
        h = x ^ (x >> 31)
    return h


def normal(seed, stream, week, family, service=NO_SERVICE) -> np.ndarray:
    """Standard normal draws by the inverse CDF of a keyed uniform (never infinite)."""
    u = uniform(seed, stream, week, family, service)
    return ndtri(np.clip(u, 1e-16, 1.0 - 1e-16))


def logit_normal(
    seed: int, stream: str, family, median: float | np.ndarray, spread: float
) -> np.ndarray:
    """Draws in (0, 1) whose logit is normal: median `median`, logit standard deviation `spread`.

    Used for bounded family traits (trust, proficiency, paperwork capacity, sensitivities);
    week is fixed at 0 because these are drawn once per family generation.
    """
    z = normal(seed, stream, 0, family)
    centre = np.log(median / (1.0 - median))
    return 1.0 / (1.0 + np.exp(-(centre + spread * z)))
