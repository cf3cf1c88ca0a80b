"""Keyed random streams: every draw is a pure function of (seed, stream, week, family, service).

A counter-based generator (splitmix64 finaliser applied to a combination of the keys) gives
each decision its own uniform number, so the order in which families are stored or visited,
the chunk size, or the presence of an unrelated family never changes anyone's draw.
The same functions serve the fast engine and the per-agent reference: arrays of draws are
computed by a compiled loop (numba), single draws in plain Python integers, bit for bit the
same.
"""

from __future__ import annotations

import functools
import warnings
import zlib
from collections import namedtuple

import numpy as np
from numba import config as numba_config
from scipy.special import ndtri

from sim.core.codes import NO_SERVICE
from sim.core.compiled import inline, kernel

_INITIAL = np.uint64(0x6A09E667F3BCC909)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV_2_53 = 1.0 / float(1 << 53)

_MASK = (1 << 64) - 1

if numba_config.DISABLE_JIT:
    # the kernels run as plain Python (debugging, see sim.core.compiled): numpy warns about
    # the uint64 wrap-around the hash rounds are defined by
    warnings.filterwarnings(
        "ignore", "overflow encountered in scalar", RuntimeWarning, module=__name__
    )


@functools.cache
def stream_id(name: str) -> int:
    """A stable 32-bit id for a stream name (crc32 of its UTF-8 bytes)."""
    return zlib.crc32(name.encode("utf-8"))


@inline
def mix_round(h, part):
    """One round: splitmix64 finaliser of (h ^ part) + golden, in wrapping uint64 arithmetic."""
    x = (h ^ part) + _GOLDEN
    x = x ^ (x >> _S30)
    x = x * _M1
    x = x ^ (x >> _S27)
    x = x * _M2
    return x ^ (x >> _S31)


@inline
def uniform_from(prefix, family, service):
    """`uniform(seed, stream, week, family, service)` from `prefix_bits(seed, stream, week)`:
    the family and service rounds, then the top 53 bits as a float in [0, 1). The keys go
    through int64 so that -1 (NO_SERVICE) wraps to 2^64 - 1 also as plain Python
    (NUMBA_DISABLE_JIT=1), as it does compiled."""
    h = mix_round(mix_round(prefix, np.uint64(np.int64(family))), np.uint64(np.int64(service)))
    return np.float64(h >> _S11) * _INV_2_53


@kernel
def _keyed_bits_into(seed, stream, week, family, service, out):
    """Every draw of `out`; an input of length 1 is the same for all."""
    for i in range(len(out)):
        h = mix_round(_INITIAL, seed)
        h = mix_round(h, stream)
        h = mix_round(h, np.uint64(week[i if len(week) > 1 else 0]))
        h = mix_round(h, np.uint64(family[i if len(family) > 1 else 0]))
        out[i] = mix_round(h, np.uint64(service[i if len(service) > 1 else 0]))


def keyed_bits(
    seed: int,
    stream: str,
    week: int | np.ndarray,
    family: int | np.ndarray,
    service: int | np.ndarray = NO_SERVICE,
) -> np.ndarray:
    """64 random bits per key tuple; arguments broadcast like numpy arrays."""
    parts = [np.asarray(k, dtype=np.int64) for k in (week, family, service)]
    sizes = {p.size for p in parts if p.ndim}
    if all(p.ndim <= 1 for p in parts) and len(sizes) <= 1:
        # scalars beside 1-D arrays of one length: no broadcast copies needed
        shape = (sizes.pop(),) if sizes else ()
    else:
        parts = [p.copy() for p in np.broadcast_arrays(*parts)]
        shape = parts[0].shape
    out = np.empty(shape, dtype=np.uint64)
    if out.size:
        _keyed_bits_into(
            np.uint64(seed & _MASK),
            np.uint64(stream_id(stream)),
            *(p.reshape(-1) for p in parts),
            out.reshape(-1),
        )
    return out


def uniform(seed, stream, week, family, service=NO_SERVICE) -> np.ndarray:
    """Uniform floats in [0, 1) with 53 random bits, keyed (see module docstring)."""
    one_week_and_service = not isinstance(week, np.ndarray) and not isinstance(service, np.ndarray)
    if one_week_and_service and isinstance(family, np.ndarray) and family.ndim == 1:
        # the common case, one stream and week for a list of families: no key arrays built
        prefix = np.array([prefix_bits(seed, stream, int(week))], dtype=np.uint64)
        out = np.empty((1, len(family)))
        _uniform_table(prefix, family.astype(np.int64, copy=False), int(service), out)
        return out[0]
    bits = keyed_bits(seed, stream, week, family, service)
    return (bits >> np.uint64(11)).astype(np.float64) * _INV_2_53


def uniform_one(seed: int, stream: str, week: int, family: int, service: int = NO_SERVICE) -> float:
    """One keyed uniform in plain Python (no numpy): the same 64-bit arithmetic as `uniform`,
    so the same number. The per-agent reference draws with this."""
    return (bits_one(seed, stream, week, family, service) >> 11) * _INV_2_53


def bits_one(seed: int, stream: str, week: int, family: int, service: int = NO_SERVICE) -> int:
    """`keyed_bits` for one key tuple, in plain Python integers."""
    return _rounds((seed & _MASK, stream_id(stream), week & _MASK, family & _MASK, service & _MASK))


@functools.lru_cache(maxsize=1 << 16)
def prefix_bits(seed: int, stream: str, week: int) -> int:
    """The hash state after the (seed, stream, week) rounds. The rounds for family and service
    follow it, so code that draws many numbers of one stream and week starts from here."""
    return _rounds((seed & _MASK, stream_id(stream), week & _MASK))


# the weekly streams the compiled kernels draw from, each field named after its stream:
# a field holds `prefix_bits(seed, <field name>, week)` as np.uint64, so a kernel reads
# `streams.referral`, never a position. In the order the week draws them: the information
# channels (`sim.rules.information.channel_events`), drop-out (`sim.rules.decisions.exits`),
# declined offers (`sim.rules.allocation.offer_places`) and conception (`sim.rules.life_course.age_one_week`).
WeekStreams = namedtuple(
    "WeekStreams",
    [
        "first_contact",  # reached by the universal first contact after a birth
        "first_contact_understood",  # per type: understood what it told of
        "word_of_mouth",  # per type: hears of it from ties who use it
        "outreach_tie",  # per type: hears of it from a tie an outreach worker visited
        "outreach",  # visited by an outreach worker
        "outreach_understood",  # per type: understood the visit
        "broker",  # contacted by the community's broker
        "referral",  # per type: referred by a service in use
        "dropout",  # per type: leaves the service in use
        "offer_decline",  # per type: declines an offer from a centre not its first choice
        "conception",  # a next pregnancy starts
    ],
)


def week_streams(seed: int, week: int) -> WeekStreams:
    """The hash states of every `WeekStreams` stream for this seed and week."""
    return WeekStreams(*(np.uint64(prefix_bits(seed, name, week)) for name in WeekStreams._fields))


def _rounds(parts: tuple[int, ...]) -> int:
    """The rounds of `keyed_bits` in plain Python integers: per part, splitmix64 of
    (h ^ part) + golden."""
    h = 0x6A09E667F3BCC909
    for part in parts:
        x = ((h ^ part) + 0x9E3779B97F4A7C15) & _MASK
        x ^= x >> 30
        x = (x * 0xBF58476D1CE4E5B9) & _MASK
        x ^= x >> 27
        x = (x * 0x94D049BB133111EB) & _MASK
        h = x ^ (x >> 31)
    return h


def uniforms(seed: int, streams: tuple[str, ...], week: int, family: np.ndarray) -> dict:
    """`uniform(seed, stream, week, family)` for several streams at once, by stream name."""
    family = np.asarray(family, dtype=np.int64)
    prefixes = np.array([prefix_bits(seed, stream, week) for stream in streams], dtype=np.uint64)
    out = np.empty((len(streams), len(family)))
    _uniform_table(prefixes, family, NO_SERVICE, out)
    return dict(zip(streams, out, strict=True))


@kernel
def _uniform_table(prefixes, family, service, out):
    """out[k, i]: the uniform of stream k (its prefix) for family i and the given service."""
    for k in range(len(prefixes)):
        for i in range(len(family)):
            out[k, i] = uniform_from(prefixes[k], family[i], service)


def normal(seed, stream, week, family, service=NO_SERVICE) -> np.ndarray:
    """Standard normal draws by the inverse CDF of a keyed uniform (never infinite)."""
    return normal_of(uniform(seed, stream, week, family, service))


def normal_of(u: np.ndarray) -> np.ndarray:
    """The standard normal whose CDF is `u`, clipped to [1e-16, 1 - 1e-16] (never infinite)."""
    return ndtri(np.minimum(np.maximum(u, 1e-16), 1.0 - 1e-16))


def logit_normal_of(u: np.ndarray, median: float | np.ndarray, spread: float) -> np.ndarray:
    """Draws in (0, 1) whose logit is normal (median `median`, logit standard deviation
    `spread`), from their keyed uniforms `u`. Used for bounded family traits (trust,
    proficiency, paperwork capacity, sensitivities, tolerances), drawn with week 0 because
    they are drawn once per family generation."""
    z = normal_of(u)
    centre = np.log(median / (1.0 - median))
    return 1.0 / (1.0 + np.exp(-(centre + spread * z)))


def logit_normals_of(uniforms: dict, traits: dict) -> dict:
    """`logit_normal_of(uniforms[name], median, spread)` for every trait name -> (median,
    spread), computed in one pass over a stacked array (the same operations per element)."""
    names = list(traits)
    n = len(uniforms[names[0]])
    u = np.stack([uniforms[name] for name in names])
    median = np.stack([np.broadcast_to(np.asarray(traits[name][0], float), n) for name in names])
    spread = np.array([[traits[name][1]] for name in names], dtype=float)
    return dict(zip(names, logit_normal_of(u, median, spread), strict=True))
