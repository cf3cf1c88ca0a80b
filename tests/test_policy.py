"""Verification of the adaptive policy (docs/ODD.md §7.14): the review moves budget toward
the lever answering the most-reported signal, never changes the outlay, and what the
holdings buy reaches the engine."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import build, frictionless_scenario

from sim.core.codes import DIMENSION_LEVER, DIMENSIONS, POLICY_LEVERS
from sim.engine.week import Engine
from sim.rules.policy import BASIS_POINTS, review, shares_of

pytestmark = pytest.mark.verification

COST = DIMENSIONS.index("cost")
FEE_REDUCTION = POLICY_LEVERS.index("fee_reduction")


def test_a_review_moves_a_share_of_every_other_lever_to_the_answering_one():
    holdings = [10_000, 3_001, 0, 7, 500]
    signals = [0] * len(DIMENSIONS)
    signals[DIMENSIONS.index("trust")] = 40  # brokers
    signals[DIMENSIONS.index("stigma")] = 90  # no lever: not acted on
    signals[COST] = 40  # fee reduction, as often as trust
    moved, top = review(holdings, signals, BASIS_POINTS // 4)
    assert top == COST  # cost comes before trust in DIMENSIONS: the first on ties
    assert sum(moved) == sum(holdings)
    assert moved == [7_500, 3_001 + 2_500 + 1 + 125, 0, 6, 375]
    # nothing with a lever reported: nothing moves
    quiet = [0] * len(DIMENSIONS)
    quiet[DIMENSIONS.index("hours")] = 5
    assert review(holdings, quiet, 2_500) == (holdings, -1)
    assert all(DIMENSION_LEVER[d] == -1 for d in (2, 5, 8, 10))  # matching, hours, stigma, fit


def test_shares_are_whole_units_by_largest_remainder():
    assert shares_of([5, 3, 2], 7) == [4, 2, 1]
    assert shares_of([1, 1, 1], 2) == [1, 1, 0]
    assert shares_of([4, 0], 0) == [0, 0] and shares_of([0, 0], 3) == [0, 0]
    for total in range(0, 11):
        parts = shares_of([3, 4, 3], total)
        assert sum(parts) == total and all(p <= w for p, w in zip(parts, [3, 4, 3], strict=True))


def _cost_city(adaptive: bool):
    """Everything open and free but childcare, parenting support and the help desk, whose
    fees few can pay: cost is the barrier families in contact report most."""
    return frictionless_scenario(
        run={"burn_in_weeks": 0, "weeks": 40},
        population={
            "cost_share_threshold_median": 0.08,
            "initial_awareness": {
                t: 1.0 for t in ("childcare", "health", "parenting", "admin_help")
            },
        },
        market={"places_per_100": 0.0},
        policy={"adaptive": adaptive, "flexible_eur_week": 20_000.0, "move_share": 0.5},
        **{
            "provision.childcare": {
                "places_per_100": 60.0,
                "site_capacity": 30,
                "fee": {"kind": "flat", "flat_eur_week": 120.0, "bands": []},
            },
            # parenting support and the help desk charge too, so cost is everywhere
            "provision.parenting": {"fee": {"kind": "flat", "flat_eur_week": 60.0, "bands": []}},
            "provision.admin_help": {"fee": {"kind": "flat", "flat_eur_week": 60.0, "bands": []}},
        },
    )


def test_the_adaptive_policy_moves_budget_to_the_dominant_signal_and_keeps_the_outlay():
    engine = Engine(build(_cost_city(True), seed=31))
    static = Engine(build(_cost_city(False), seed=31))
    flexible = 2_000_000  # cents
    fees_before = engine.fee_tables.flat_cents.copy()
    acted = []
    for _ in range(40):
        engine.step()
        static.step()
        holdings = engine.adaptive.holdings
        assert sum(holdings) == flexible  # the outlay never changes
        assert all(h >= 0 for h in holdings)
        if (engine.week) % 13 == 0:
            acted.append(engine.adaptive.top)
    assert acted and all(top == COST for top in acted)
    holdings = engine.adaptive.holdings
    assert holdings[FEE_REDUCTION] == max(holdings) > flexible // 2
    # what the fee reduction buys reaches the fee the families are charged
    childcare = engine.adaptive.schedules
    assert (engine.fee_tables.flat_cents[childcare] < fees_before[childcare]).all()
    # ... and the places it came from are fewer
    places = engine.adaptive.childcare
    assert engine.capacity_units[places].sum() < static.capacity_units[places].sum()
    out, twin = engine.accumulator.result(), static.accumulator.result()
    assert out["public_outlay_eur_week"] == twin["public_outlay_eur_week"]
    assert out["u3_participation_all"] > twin["u3_participation_all"]
    assert np.isfinite(out["u3_participation_all"])
