"""The cost model: ex-ante weekly public outlay of a configuration, in integer cents.

Outlay = funded public capacity x unit cost + means-test administration per funded place of
means-tested services + staff (outreach workers, community brokers, interpreters per site)
+ hubs (overhead, coordinators) + the allowance market users get per day (C11), for every
market place ex ante. Unit costs and
their sources are in scenarios/base.toml (EVIDENCE E1-E7, otherwise stated assumptions).
"""

from __future__ import annotations

import numpy as np

from sim.core.codes import INCOME_SCALE
from sim.scenario.schema import Scenario

OUTLAY_PARTS = (
    "places",
    "means_test",
    "outreach",
    "brokers",
    "interpreters",
    "hubs",
    "coordinators",
    "market_allowance",
)


def outlay_parts_cents(
    scenario: Scenario,
    is_public: np.ndarray,
    capacity: np.ndarray,
    unit_cost_cents: np.ndarray,
    means_test_admin_cents: np.ndarray,
    interpreters: np.ndarray,
    hubs: int,
) -> dict[str, int]:
    info = scenario.information
    public = is_public
    return {
        "places": int((capacity[public] * unit_cost_cents[public]).sum()),
        "means_test": int((capacity[public] * means_test_admin_cents[public]).sum()),
        "outreach": int(round(info.outreach_workers * info.outreach_worker_eur_week * 100)),
        "brokers": int(round(sum(info.brokers.values()) * info.broker_eur_week * 100)),
        "interpreters": int(interpreters[public].sum())
        * int(round(info.interpreter_eur_week_per_site * 100))
        + (
            int(round(info.outreach_workers * info.outreach_interpreter_eur_week_per_worker * 100))
            if info.outreach_interpreters
            else 0
        ),
        "hubs": hubs * int(round(scenario.hubs.overhead_eur_week * 100)),
        "coordinators": hubs * int(round(scenario.hubs.coordinator_eur_week * 100))
        if scenario.hubs.coordinator
        else 0,
        # C11's allowance for every day of every market place, ex ante (as places are)
        "market_allowance": int(capacity[~public].sum())
        * 5
        * int(round(scenario.market.allowance_eur_day * 100)),
    }


def childcare_means_line_eur_year(
    is_public: np.ndarray, kind: np.ndarray, means_tested: np.ndarray, means_line_q: np.ndarray
) -> float:
    """The equivalised income line (EUR a year) below which means-tested public childcare
    admits a family: the scenario's, or the one solved from the places
    (`means_test_line_from = "places"`); infinite where every family is eligible, NaN where
    no public childcare is means-tested."""
    reserved = is_public & (kind == 0) & means_tested  # 0: childcare (sim.core.codes)
    if not reserved.any():
        return float("nan")
    line = int(means_line_q[reserved].max())
    if line == np.iinfo(np.int64).max:
        return float("inf")
    return line / INCOME_SCALE / 100.0
