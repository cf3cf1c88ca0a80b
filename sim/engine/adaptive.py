"""The adaptive policy in the fast engine (`sim.rules.policy`; docs/ODD.md §7.14): the
signals of each week, a review every `review_weeks`, and what the levers' holdings buy —
public childcare places, a fee reduction on public childcare, outreach workers, community
brokers, help-desk cases — applied to the engine's capacity, fee tables and contact
capacities in place (every record that holds them sees the change)."""

from __future__ import annotations

import numpy as np

from sim.core.codes import ADMIN_HELP, CHILDCARE, DAYS_PER_WEEK, DIMENSIONS, POLICY_LEVERS
from sim.rules import policy
from sim.scenario.schema import cents


class AdaptivePolicy:
    """A flexible budget in integer cents per lever (`policy.LEVERS`), all in childcare
    places at the start, moved at each review toward the lever that answers the
    most-reported signal."""

    def __init__(self, engine) -> None:
        scenario = engine.scenario
        spec = scenario.policy
        info = scenario.information
        svc = engine.svc
        self.engine = engine
        self.review_weeks = spec.review_weeks
        self.move_bp = int(round(spec.move_share * policy.BASIS_POINTS))
        flexible = cents(spec.flexible_eur_week)
        self.holdings = [flexible] + [0] * (len(POLICY_LEVERS) - 1)
        self.signals = np.zeros(len(DIMENSIONS), dtype=np.int64)
        self.top = -1
        self.base_units = engine.capacity_units.copy()
        self.childcare = np.flatnonzero(svc.is_public & (svc.type == CHILDCARE))
        self.desks = np.flatnonzero(svc.is_public & (svc.type == ADMIN_HELP))
        self.childcare_places = [int(c) for c in svc.capacity[self.childcare]]
        self.desk_cases = [int(c) for c in svc.capacity[self.desks]]
        # a place's weekly cost, means-test administration included
        self.place_cents = (
            int(
                svc.unit_cost_cents[self.childcare[0]]
                + svc.means_test_admin_cents[self.childcare[0]]
            )
            if self.childcare.size
            else 0
        )
        self.case_cents = int(svc.unit_cost_cents[self.desks[0]]) if self.desks.size else 0
        self.initial_places = flexible // self.place_cents if self.place_cents else 0
        tables = engine.fee_tables
        self.schedules = np.unique(svc.schedule[self.childcare]).astype(np.int64)
        self.base_flat = tables.flat_cents.copy()
        self.base_bands = tables.band_fees.copy()
        self.worker_cents = cents(info.outreach_worker_eur_week) + (
            cents(info.outreach_interpreter_eur_week_per_worker)
            if info.outreach_interpreters
            else 0
        )
        self.broker_cents = cents(info.broker_eur_week)
        self.visits_per_worker = info.outreach_visits_per_worker_week
        self.contacts_per_broker = info.broker_contacts_per_week
        self.base_outreach = engine.outreach_capacity
        self.base_brokers = engine.broker_capacity.copy()
        # brokers go to the communities by their number of families (at the start; a slot
        # keeps its language)
        language = engine.families.language
        counts = np.bincount(language, minlength=len(engine.languages))
        counts[engine.local] = 0
        self.community = [int(c) for c in counts]

    def week(self, plan, need: np.ndarray) -> None:
        """This week's signals; at the end of a review period, the review and its effect."""
        engine = self.engine
        f = engine.families
        policy.contact_signals(
            f.status,
            f.aware,
            f.staff_contacted,
            f.coordinated,
            need,
            plan.new_aware,
            plan.preferred_blocks,
            plan.empty_place,
            self.signals,
        )
        if (engine.week + 1) % self.review_weeks == 0:
            self.holdings, self.top = policy.review(
                self.holdings, [int(v) for v in self.signals], self.move_bp
            )
            self.signals[:] = 0
            self.apply()

    def apply(self) -> None:
        """What the holdings buy, applied in place."""
        engine = self.engine
        h = self.holdings
        units = engine.capacity_units
        held = h[policy.PLACES] // self.place_cents if self.place_cents else 0
        cut = policy.shares_of(self.childcare_places, max(0, self.initial_places - held))
        for i, s in enumerate(self.childcare):
            units[s] = self.base_units[s] - cut[i] * DAYS_PER_WEEK
        cases = h[policy.FORMS_HELP] // self.case_cents if self.case_cents else 0
        extra = policy.shares_of(self.desk_cases, cases)
        for i, s in enumerate(self.desks):
            units[s] = self.base_units[s] + extra[i]
        total_places = sum(self.childcare_places)
        discount = h[policy.FEE_REDUCTION] // total_places if total_places else 0
        tables = engine.fee_tables
        for k in self.schedules:
            tables.flat_cents[k] = max(0, int(self.base_flat[k]) - discount)
            tables.band_fees[k] = np.maximum(self.base_bands[k] - discount, 0)
        workers = h[policy.OUTREACH] / self.worker_cents if self.worker_cents else 0.0
        engine.outreach_capacity = self.base_outreach + workers * self.visits_per_worker
        brokers = h[policy.BROKERS] / self.broker_cents if self.broker_cents else 0.0
        whole = sum(self.community)
        for lang, count in enumerate(self.community):
            share = count / whole if whole else 0.0
            engine.broker_capacity[lang] = (
                self.base_brokers[lang] + brokers * share * self.contacts_per_broker
            )

    def snapshot(self) -> dict[str, float]:
        """The holdings (EUR a week) and the dimension last acted on, for the time series."""
        out = {
            f"policy_{lever}_eur_week": h / 100.0
            for lever, h in zip(POLICY_LEVERS, self.holdings, strict=True)
        }
        out["policy_signal"] = float(self.top)
        return out
