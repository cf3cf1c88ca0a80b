"""What a family pays to use a service: the fee by the service's schedule and the cost of the
trips, in integer cents per week (DESIGN §2 cost barrier; fee schedules of EVIDENCE C8-C11).

`FeeSchedule` is one schedule as the world builder reads it from the scenario; `fee_tables`
packs all of a world's schedules into arrays for the compiled kernels, and `fee_cents` and
`trip_cents` are the one production definition of the fee and the trip cost.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import numpy as np

from sim.core.codes import FEE_FLAT, FEE_FREE, FEE_MEANS, MODE_CAR, MODE_TRANSIT
from sim.core.compiled import inline


@dataclass
class FeeSchedule:
    """One fee schedule in integer cents per week; income bands compared exactly."""

    kind: int  # sim.core.codes.FEE_*
    flat_cents: int
    band_limits_q: np.ndarray  # int64, income_q upper limits (exclusive)
    band_fees_cents: np.ndarray  # int64
    means_line_q: int


# fee schedules as arrays: band limits and fees padded to the longest schedule
FeeTables = namedtuple(
    "FeeTables", ["kind", "flat_cents", "means_line_q", "n_bands", "band_limits_q", "band_fees"]
)


def fee_tables(schedules: list[FeeSchedule]) -> FeeTables:
    width = max([1] + [len(s.band_limits_q) for s in schedules])
    n = len(schedules)
    limits = np.full((max(n, 1), width), np.iinfo(np.int64).max, dtype=np.int64)
    fees = np.zeros((max(n, 1), width), dtype=np.int64)
    for i, s in enumerate(schedules):
        limits[i, : len(s.band_limits_q)] = s.band_limits_q
        fees[i, : len(s.band_fees_cents)] = s.band_fees_cents
    return FeeTables(
        kind=np.array([s.kind for s in schedules] or [FEE_FREE], dtype=np.int64),
        flat_cents=np.array([s.flat_cents for s in schedules] or [0], dtype=np.int64),
        means_line_q=np.array([s.means_line_q for s in schedules] or [0], dtype=np.int64),
        n_bands=np.array([len(s.band_fees_cents) for s in schedules] or [0], dtype=np.int64),
        band_limits_q=limits,
        band_fees=fees,
    )


@inline
def fee_cents(fees, schedule, income_q):
    """The weekly fee in cents of schedule `schedule` for one income: nothing, the flat fee,
    the flat fee above the means-test line only, or the fee of the income's band (the first
    band whose limit lies above the income; the last band beyond every limit)."""
    kind = fees.kind[schedule]
    if kind == FEE_FREE:
        return np.int64(0)
    if kind == FEE_FLAT:
        return fees.flat_cents[schedule]
    if kind == FEE_MEANS:
        return np.int64(0) if income_q < fees.means_line_q[schedule] else fees.flat_cents[schedule]
    n = fees.n_bands[schedule]
    band = 0
    while band < n and fees.band_limits_q[schedule, band] <= income_q:
        band += 1
    return fees.band_fees[schedule, min(band, n - 1)]


@inline
def trip_cents(params, mode, minutes):
    """The cost of one trip of `minutes` in cents: the car's cost per minute (whole cents a
    minute, so rescaling money changes no comparison), a transit fare, or nothing on foot."""
    if mode == MODE_CAR:
        return np.int64(minutes) * params.car_cents_per_minute
    if mode == MODE_TRANSIT:
        return np.int64(params.transit_fare_cents)
    return np.int64(0)
