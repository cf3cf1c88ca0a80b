"""Measures, exactly as DESIGN §2 'Measures' defines them (glossary in docs/ODD.md).

Every measure has a unit, a numerator, a denominator and a window: the measured weeks after
burn-in. Family-level measures count family *generations* (a slot renewed during the window
contributes two families), closed when a generation leaves.
"""

from __future__ import annotations

import math
from collections import namedtuple
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.core.codes import (
    CHANNELS,
    CHILDCARE,
    DAYS_PER_WEEK,
    DIMENSIONS,
    ENROLLED,
    GROUPS,
    HEALTH,
    HEALTH_ENROLMENT_GROUPS,
    INCOME_SCALE,
    N_TYPES,
    REJECTED,
    SERVICE_TYPES,
    THREE_MONTHS_WEEKS,
    TRAVEL_BAND_EDGES,
    TRAVEL_BAND_LABELS,
    U3_WEEKS,
    WAITLISTED,
)
from sim.core.compiled import kernel
from sim.rules.allocation import OFFER_SUMS
from sim.rules.decisions import units, week_days
from sim.rules.fees import FeeTables, fee_cents
from sim.rules.policy import unmet_block, unmet_fallback
from sim.scenario.schema import Scenario, cents
from sim.world.city import City
from sim.world.costs import OUTLAY_PARTS, childcare_means_line_eur_year, outlay_parts_cents
from sim.world.geometry import cell_id, cell_xy
from sim.world.population import FamilyTable
from sim.world.services import ServiceTable

# the groups the main barrier is also measured for, by their takeup-group codes (AROPE + 2 x
# not local language)
BARRIER_GROUPS: dict[str, tuple[int, ...]] = {"arope": (1, 3), "non_local": (2, 3)}


@dataclass(frozen=True)
class Kind:
    """A kind of measure: how it is written and the range its values can take.

    `lower`/`upper` bound the measure itself (an interval over replications is clipped to
    them); `unit` is what a report writes after the number."""

    name: str
    unit: str
    lower: float
    upper: float


SHARE = Kind("share", "%", 0.0, 1.0)  # stored 0-1, written as a percentage
PERCENTAGE_POINTS = Kind("percentage points", "pp", -100.0, 100.0)
RATIO = Kind("ratio", "", 0.0, math.inf)
INDEX = Kind("index", "", -1.0, 1.0)  # the Erreygers concentration index
COUNT = Kind("count", "", 0.0, math.inf)  # a mean per measured week of a count
MONEY = Kind("money", "EUR", 0.0, math.inf)  # EUR per week
NET_MONEY = Kind("money", "EUR", -math.inf, math.inf)  # fee revenue can exceed the outlay
MINUTES = Kind("minutes", "min", 0.0, math.inf)
PLACES = Kind("places", "places", 0.0, math.inf)  # an integer fixed by the configuration
WEEKS = Kind("weeks", "weeks", 0.0, math.inf)
DAYS = Kind("days a week", "days", 0.0, float(DAYS_PER_WEEK))


def measure_kinds() -> dict[str, Kind]:
    """Every measure of a replication, in report order, with its kind (unit and range as
    docs/ODD.md §7.13 gives them). `metric_columns()` is its keys."""
    kinds: dict[str, Kind] = {f"u3_participation_{g}": SHARE for g in ("all", "arope", "non_arope")}
    kinds |= {"u3_gap_pp": PERCENTAGE_POINTS, "u3_ratio": RATIO}
    kinds |= {f"u3_participation_q{q}": SHARE for q in range(1, 6)}
    kinds |= {"u3_participation_3m_3y": SHARE}
    for t in SERVICE_TYPES:
        kinds |= {f"takeup_{t}_arope": SHARE, f"takeup_{t}_non_arope": SHARE}
    for t in SERVICE_TYPES:
        kinds |= {f"takeup_{t}_by_language_{g}": SHARE for g in ("local", "non_local")}
    kinds |= {f"health_enrolment_{g}": SHARE for g in HEALTH_ENROLMENT_GROUPS}
    kinds |= {"concentration_index": INDEX, "unmet_need_share": SHARE, "multi_service_share": SHARE}
    # blocked_by is multi-label: one need-week can be blocked by several dimensions, but each
    # column is still a share of the unmet need-weeks
    kinds |= {f"blocked_by_{d}": SHARE for d in DIMENSIONS}
    kinds |= {f"main_barrier_{d}": SHARE for d in DIMENSIONS}
    # the same per service type, as shares of that type's unmet need-weeks
    for t in SERVICE_TYPES:
        kinds |= {f"blocked_by_{d}_{t}": SHARE for d in DIMENSIONS}
        kinds |= {f"main_barrier_{d}_{t}": SHARE for d in DIMENSIONS}
    # who is left out and why: the main barrier of the unmet need-weeks of AROPE families and
    # of families whose home language is not the local one, as shares of that group's
    for g in BARRIER_GROUPS:
        kinds |= {f"main_barrier_{d}_{g}": SHARE for d in DIMENSIONS}
    kinds |= {"waitlist_total": COUNT, "capacity_use": SHARE}
    kinds |= {"public_outlay_eur_week": MONEY, "net_cost_eur_week": NET_MONEY}
    kinds |= {"means_test_line_childcare_eur_year": MONEY}
    kinds |= {f"outlay_{part}_eur_week": MONEY for part in OUTLAY_PARTS}
    kinds |= {"fee_revenue_eur_week": MONEY, "u3_enrolled_arope": COUNT, "u3_enrolled_all": COUNT}
    kinds |= {"travel_minutes_nearest": MINUTES, "travel_minutes_used": MINUTES}
    kinds |= {f"takeup_travel_{label}": SHARE for label in TRAVEL_BAND_LABELS}
    kinds |= {f"takeup_travel_childcare_{label}": SHARE for label in TRAVEL_BAND_LABELS}
    kinds |= {f"unmet_need_share_by_language_{g}": SHARE for g in ("local", "non_local")}
    kinds |= {f"awareness_by_channel_{c}": SHARE for c in CHANNELS}
    kinds |= {"means_tested_nontakeup_share": SHARE}
    kinds |= {"aware_share_uncontacted": SHARE, "wom_awareness_uncontacted_week": COUNT}
    kinds |= {f"waiting_weeks_{t}": WEEKS for t in SERVICE_TYPES}
    kinds |= {"waiting_weeks_after_start_childcare": WEEKS, "requests_without_offer_share": SHARE}
    kinds |= {"childcare_days_mean": DAYS}
    return kinds


def metric_columns() -> list[str]:
    """The measures of a replication, in report order (the columns of runs.parquet)."""
    return list(measure_kinds())


# the one table of kinds: every measure and the configuration's column of runs.parquet
KINDS: dict[str, Kind] = {**measure_kinds(), "public_childcare_places": PLACES}


def kind_of(column: str) -> Kind:
    """The kind of a measure or configuration column (KeyError for an unknown one)."""
    return KINDS[column]


# Under-3 participation in centre-based childcare, EU-27, 2024, as shares: all children, AROPE
# and non-AROPE. EU-SILC figures of Eurofound (2025), cited by the EU Working Group on ECEC,
# "Leadership for inclusion" (2025), §1.1 (seeds/eu-wg-ecec-leadership-for-inclusion.txt;
# EVIDENCE C18). They live beside the measures they are figures of (u3_participation_*),
# not in a report, because they are the calibration target of docs/ODD.md §1.2: a report
# shows them beside the model's values, and a calibration reads the same numbers.
EU_SILC_2024_U3_PARTICIPATION: dict[str, float] = {"all": 0.392, "arope": 0.236, "non_arope": 0.439}


@dataclass(frozen=True)
class WindowInputs:
    """What the window accumulator reads, handed to it once by the engine. The family
    table and `service_minutes` are the engine's own, updated in place every week, so the
    accumulator sees each week's state without knowing the engine."""

    scenario: Scenario
    city: City
    families: FamilyTable  # the engine's copy of the families, updated in place
    services: ServiceTable
    hub_count: int  # hubs of the world (their staff is part of the outlay)
    fee_tables: FeeTables  # the services' fee schedules (rules.fees.fee_tables)
    nearest_minutes: np.ndarray  # int32 [F, T]: minutes to the nearest service of each type
    service_minutes: np.ndarray  # int16 [F, T]: minutes to the service waited for or used
    burn_in: int  # weeks before the measured window
    capacity_units: np.ndarray  # int64 [S]: childcare days a week, users of other types


class WindowAccumulator:
    """Running sums over the measured window; `result()` turns them into the measures."""

    def __init__(self, inputs: WindowInputs) -> None:
        self.inputs = inputs
        n = inputs.families.size
        cells = inputs.city.n_cells
        self.weeks = 0
        self.weekly: dict[str, list[float]] = {g: [] for g in GROUPS}
        self.need_seen = np.zeros((n, N_TYPES), dtype=bool)
        self.used_seen = np.zeros((n, N_TYPES), dtype=bool)
        self.u3_weeks = np.zeros(n, dtype=np.int64)
        self.u3_enrolled_weeks = np.zeros(n, dtype=np.int64)
        # closed generations: need / need-and-used counts by [group, type], group = AROPE
        # (0/1) + 2 x non-local home language (0/1)
        self.closed_need = np.zeros((4, N_TYPES), dtype=np.int64)
        self.closed_used = np.zeros((4, N_TYPES), dtype=np.int64)
        self.closed_multi_need = 0
        self.closed_multi_used = 0
        # families with a child in the health service's age range in a measured week (need
        # or private preventive care), and closed generations' counts by group
        self.health_age_seen = np.zeros(n, dtype=bool)
        self.closed_health_age = np.zeros(4, dtype=np.int64)
        self.closed_ci: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        # per [type, dimension]: unmet need-weeks it blocks, and where it is the main barrier
        self.blocked = np.zeros((N_TYPES, len(DIMENSIONS)), dtype=np.int64)
        self.main = np.zeros((N_TYPES, len(DIMENSIONS)), dtype=np.int64)
        # by takeup group (AROPE + 2 x not local language), per dimension
        self.main_by_group = np.zeros((4, len(DIMENSIONS)), dtype=np.int64)
        self.unmet_weeks = 0
        self.waitlist_sum = 0
        self.capacity_use_sum = 0.0
        self.fee_revenue_cents = 0
        self.cell_need_weeks = np.zeros(cells, dtype=np.int64)
        self.cell_unmet_weeks = np.zeros(cells, dtype=np.int64)
        svc = inputs.services
        self.outlay_parts = outlay_parts_cents(
            inputs.scenario,
            svc.is_public,
            svc.capacity,
            svc.unit_cost_cents,
            svc.means_test_admin_cents,
            svc.interpreters,
            inputs.hub_count,
        )
        self.outlay_cents = sum(self.outlay_parts.values())
        self.means_line = childcare_means_line_eur_year(
            svc.is_public, svc.type, svc.means_tested, svc.means_line_q
        )
        # public capacity in units (childcare days, users of other types)
        self.public_capacity = int(inputs.capacity_units[svc.is_public].sum())
        self.offer_sums = np.zeros((N_TYPES, len(OFFER_SUMS)), dtype=np.int64)
        self.care_days_sum = 0
        self.enrolled_u3 = {"all": 0, "arope": 0}
        # closed generations' needs and uses by [type, travel band of the nearest service]
        self.closed_band_need = np.zeros((N_TYPES, len(TRAVEL_BAND_LABELS)), dtype=np.int64)
        self.closed_band_used = np.zeros((N_TYPES, len(TRAVEL_BAND_LABELS)), dtype=np.int64)
        # new awareness events by channel; needs of families eligible for a means-tested
        # offer of the type, and whether they used one ([F, T]; closed generations' counts)
        self.channel_events = np.zeros(len(CHANNELS), dtype=np.int64)
        self.eligible_need_seen = np.zeros((n, N_TYPES), dtype=bool)
        self.means_tested_used_seen = np.zeros((n, N_TYPES), dtype=bool)
        self.closed_eligible_need = 0
        self.closed_eligible_used = 0
        # per service, over measured weeks: units in use, and requests waiting with it as
        # their first choice
        self.site_used_units = np.zeros(svc.size, dtype=np.int64)
        self.site_waiting = np.zeros(svc.size, dtype=np.int64)
        scenario = inputs.scenario
        line = np.full(N_TYPES, -1, dtype=np.int64)
        for t, name in enumerate(SERVICE_TYPES):
            spec = scenario.provision[name]
            if spec.eligibility == "means_tested":
                line[t] = cents(spec.means_test_line_eur_year) * INCOME_SCALE
        self.band = np.searchsorted(TRAVEL_BAND_EDGES, inputs.nearest_minutes, side="left")
        # what `_record_week` reads of the world: fixed for the run, so built once
        self.world = MeasuredWorld(
            city_height=inputs.city.height,
            nearest_minutes=inputs.nearest_minutes,
            is_public=inputs.services.is_public,
            schedule=inputs.services.schedule,
            fees=inputs.fee_tables,
            means_tested=inputs.services.means_tested,
            means_line_by_type=line,
        )
        self.uncontacted_need_weeks = 0
        self.uncontacted_aware_weeks = 0
        self.wom_uncontacted_events = 0
        self.nearest_minutes_sum = 0
        self.need_weeks = 0
        self.used_minutes_sum = 0
        self.use_weeks = 0

    # -- weekly --------------------------------------------------------------------------

    def record_offers(self, sums: np.ndarray) -> None:
        """Add a measured week's desk sums (`sim.rules.allocation.OFFER_SUMS` per type)."""
        self.offer_sums += sums

    def record(
        self,
        need: np.ndarray,
        wom_aware: np.ndarray,
        new_aware: np.ndarray,
        preferred_blocks: np.ndarray,
        empty_place: np.ndarray,
        channel: np.ndarray,
    ) -> None:
        """Add this week to the window's sums (one compiled pass over the families): `need`
        bool [F, T] this week's needs, `wom_aware` bool [F, T] newly aware through word of
        mouth this week, `new_aware` bool [F, T] aware only since this week, `preferred_blocks` bool [F, T, D] the dimensions blocking each
        family's preferred candidate, `empty_place` bool [F, T] whether an acceptable
        candidate had room at the end of last week, `channel` int8 [F, T] the channel of
        each new awareness (CHANNELS, -1 where none)."""
        w = self.inputs
        f = w.families
        sums = np.zeros(_N_SUMS, dtype=np.int64)
        measured = MeasuredWeek(
            need=need,
            wom_aware=wom_aware,
            new_aware=new_aware,
            preferred_blocks=preferred_blocks,
            service_minutes=w.service_minutes,
            empty_place=empty_place,
            channel=channel,
        )
        window = WindowCounts(
            u3_weeks=self.u3_weeks,
            u3_enrolled_weeks=self.u3_enrolled_weeks,
            need_seen=self.need_seen,
            used_seen=self.used_seen,
            cell_need_weeks=self.cell_need_weeks,
            cell_unmet_weeks=self.cell_unmet_weeks,
            blocked=self.blocked,
            main=self.main,
            main_by_group=self.main_by_group,
            sums=sums,
            channel_events=self.channel_events,
            site_used_units=self.site_used_units,
            site_waiting=self.site_waiting,
            eligible_need_seen=self.eligible_need_seen,
            means_tested_used_seen=self.means_tested_used_seen,
        )
        _record_week(measured_families(f), measured, self.world, window)
        age = f.youngest_age_weeks
        self.health_age_seen |= (age >= 0) & (
            age < w.scenario.population.health_need_until_age_weeks
        )
        by_arope, cared_arope = sums[_BY_AROPE : _BY_AROPE + 2], sums[_CARE_AROPE : _CARE_AROPE + 2]
        by_q, cared_q = sums[_BY_Q : _BY_Q + 6], sums[_CARE_Q : _CARE_Q + 6]
        counts = {
            "all": (int(by_arope.sum()), int(cared_arope.sum())),
            "arope": (int(by_arope[1]), int(cared_arope[1])),
            "non_arope": (int(by_arope[0]), int(cared_arope[0])),
            **{f"q{q}": (int(by_q[q]), int(cared_q[q])) for q in range(1, 6)},
            "3m_3y": (int(sums[_BY_3M]), int(sums[_CARE_3M])),
        }
        for name, (count, cared) in counts.items():
            self.weekly[name].append(cared / count if count else float("nan"))
        self.enrolled_u3["all"] += int(cared_arope.sum())
        self.enrolled_u3["arope"] += int(cared_arope[1])
        self.uncontacted_need_weeks += int(sums[_UNCONTACTED_NEED])
        self.uncontacted_aware_weeks += int(sums[_UNCONTACTED_AWARE])
        self.wom_uncontacted_events += int(sums[_WOM_UNCONTACTED])
        self.nearest_minutes_sum += int(sums[_NEAREST_MINUTES])
        self.need_weeks += int(sums[_NEED_WEEKS])
        self.used_minutes_sum += int(sums[_USED_MINUTES])
        self.use_weeks += int(sums[_USE_WEEKS])
        self.unmet_weeks += int(sums[_UNMET_WEEKS])
        self.waitlist_sum += int(sums[_WAITLISTED])
        cap = self.public_capacity
        self.capacity_use_sum += float(sums[_PUBLIC_ENROLLED]) / cap if cap else 0.0
        self.fee_revenue_cents += int(sums[_FEE_REVENUE])
        self.care_days_sum += int(sums[_CARE_DAYS])
        self.weeks += 1

    def snapshot(self, week: int) -> dict[str, int | bool | float]:
        """Week `week`'s aggregates for the time series (every week, burn-in included):
        `week` (int, weeks since the start), `measured` (bool, in the window), counts as int
        (children, (family, type) pairs, families), shares and `mean_trust` as float."""
        w = self.inputs
        f = w.families
        c = np.zeros(_N_SNAPSHOT, dtype=np.int64)
        _snapshot_counts(measured_families(f), w.services.is_public, c)
        # typed at the source so the DataCollector's frame has int and bool columns
        # (`ts[ts.measured]` selects the window)
        out: dict[str, int | bool | float] = {
            "week": int(week),
            "measured": bool(week >= w.burn_in),
        }
        for name, (count, cared) in (
            ("all", (c[_U3] + c[_U3 + 1], c[_U3_CARE] + c[_U3_CARE + 1])),
            ("arope", (c[_U3 + 1], c[_U3_CARE + 1])),
            ("non_arope", (c[_U3], c[_U3_CARE])),
        ):
            out[f"u3_participation_{name}"] = float(cared) / count if count else float("nan")
        out["children_u3"] = int(c[_U3] + c[_U3 + 1])
        out["waitlist_total"] = int(c[_SNAP_WAITLISTED])
        n = f.size
        for t, name in enumerate(SERVICE_TYPES):
            out[f"enrolled_{name}"] = int(c[_ENROLLED_TYPE + t])
            out[f"aware_{name}"] = float(c[_AWARE_TYPE + t]) / n if n else float("nan")
        cap = self.public_capacity
        out["capacity_use"] = int(c[_SNAP_PUBLIC]) / cap if cap else 0.0
        out["mean_trust"] = float(f.trust.mean())
        return out

    # -- generations leaving -------------------------------------------------------------

    def close(self, rows: np.ndarray) -> None:
        f = self.inputs.families
        arope = _takeup_group(f, rows)
        need = self.need_seen[rows]
        used = need & self.used_seen[rows]
        np.add.at(self.closed_need, arope, need.astype(np.int64))
        np.add.at(self.closed_used, arope, used.astype(np.int64))
        band = self.band[rows]
        types = np.broadcast_to(np.arange(N_TYPES), band.shape)
        np.add.at(self.closed_band_need, (types[need], band[need]), 1)
        np.add.at(self.closed_band_used, (types[used], band[used]), 1)
        eligible = self.eligible_need_seen[rows]
        self.closed_eligible_need += int(eligible.sum())
        self.closed_eligible_used += int((eligible & self.means_tested_used_seen[rows]).sum())
        self.eligible_need_seen[rows] = False
        self.means_tested_used_seen[rows] = False
        np.add.at(self.closed_health_age, arope, self.health_age_seen[rows].astype(np.int64))
        self.health_age_seen[rows] = False
        multi = need.sum(axis=1) >= 2
        self.closed_multi_need += int(multi.sum())
        self.closed_multi_used += int((multi & (used.sum(axis=1) >= 2)).sum())
        has = self.u3_weeks[rows] > 0
        r = rows[has]
        self.closed_ci.append(
            (
                self.u3_weeks[r].copy(),
                self.u3_enrolled_weeks[r].copy(),
                f.income_q[r].copy(),
                f.key[r].copy(),
            )
        )
        self.need_seen[rows] = False
        self.used_seen[rows] = False
        self.u3_weeks[rows] = 0
        self.u3_enrolled_weeks[rows] = 0

    # -- final -----------------------------------------------------------------------------

    def result(self) -> dict[str, float]:
        f = self.inputs.families
        out: dict[str, float] = {}
        for name in GROUPS:
            values = np.array(self.weekly[name], dtype=float)
            out[f"u3_participation_{name}"] = (
                float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
            )
        out["u3_gap_pp"] = 100.0 * (
            out["u3_participation_non_arope"] - out["u3_participation_arope"]
        )
        non = out["u3_participation_non_arope"]
        out["u3_ratio"] = out["u3_participation_arope"] / non if non > 0 else float("nan")

        arope = _takeup_group(f, slice(None))
        need_cnt = self.closed_need.copy()
        used_cnt = self.closed_used.copy()
        used_now = self.need_seen & self.used_seen
        np.add.at(need_cnt, arope, self.need_seen.astype(np.int64))
        np.add.at(used_cnt, arope, used_now.astype(np.int64))
        for t, name in enumerate(SERVICE_TYPES):
            for groups, label in (
                ((1, 3), "arope"),
                ((0, 2), "non_arope"),
                ((0, 1), "by_language_local"),
                ((2, 3), "by_language_non_local"),
            ):
                need_g = int(need_cnt[list(groups), t].sum())
                used_g = int(used_cnt[list(groups), t].sum())
                out[f"takeup_{name}_{label}"] = used_g / need_g if need_g else float("nan")
        # health enrolment: of the families with a child in the health age range, those
        # who used the public service (its users all had the need, so all are in range)
        age_cnt = self.closed_health_age.copy()
        np.add.at(age_cnt, arope, self.health_age_seen.astype(np.int64))
        for label, groups in HEALTH_ENROLMENT_GROUPS.items():
            in_range = int(age_cnt[list(groups)].sum())
            used_g = int(used_cnt[list(groups), HEALTH].sum())
            out[f"health_enrolment_{label}"] = used_g / in_range if in_range else float("nan")

        total_need = int(need_cnt.sum())
        total_used = int(used_cnt.sum())
        out["unmet_need_share"] = (
            (total_need - total_used) / total_need if total_need else float("nan")
        )
        multi = self.need_seen.sum(axis=1) >= 2
        multi_need = self.closed_multi_need + int(multi.sum())
        multi_used = self.closed_multi_used + int((multi & (used_now.sum(axis=1) >= 2)).sum())
        out["multi_service_share"] = multi_used / multi_need if multi_need else float("nan")
        out["concentration_index"] = self._erreygers()
        bands = len(TRAVEL_BAND_LABELS)
        band_need = self.closed_band_need.copy()
        band_used = self.closed_band_used.copy()
        for t in range(N_TYPES):
            band_need[t] += np.bincount(self.band[self.need_seen[:, t], t], minlength=bands)
            band_used[t] += np.bincount(self.band[used_now[:, t], t], minlength=bands)
        for label, need_b, used_b in (
            ("", band_need.sum(axis=0), band_used.sum(axis=0)),
            ("childcare_", band_need[CHILDCARE], band_used[CHILDCARE]),
        ):
            for b, band in enumerate(TRAVEL_BAND_LABELS):
                out[f"takeup_travel_{label}{band}"] = (
                    int(used_b[b]) / int(need_b[b]) if need_b[b] else float("nan")
                )
        for groups, label in (((0, 1), "local"), ((2, 3), "non_local")):
            need_g = int(need_cnt[list(groups)].sum())
            used_g = int(used_cnt[list(groups)].sum())
            out[f"unmet_need_share_by_language_{label}"] = (
                (need_g - used_g) / need_g if need_g else float("nan")
            )
        events = int(self.channel_events.sum())
        for c, name in enumerate(CHANNELS):
            out[f"awareness_by_channel_{name}"] = (
                int(self.channel_events[c]) / events if events else float("nan")
            )
        eligible_need = self.closed_eligible_need + int(self.eligible_need_seen.sum())
        eligible_used = self.closed_eligible_used + int(
            (self.eligible_need_seen & self.means_tested_used_seen).sum()
        )
        out["means_tested_nontakeup_share"] = (
            (eligible_need - eligible_used) / eligible_need if eligible_need else float("nan")
        )
        out["aware_share_uncontacted"] = (
            self.uncontacted_aware_weeks / self.uncontacted_need_weeks
            if self.uncontacted_need_weeks
            else float("nan")
        )
        out["wom_awareness_uncontacted_week"] = self.wom_uncontacted_events / max(self.weeks, 1)
        blocked, main = self.blocked.sum(axis=0), self.main.sum(axis=0)
        for d, name in enumerate(DIMENSIONS):
            out[f"blocked_by_{name}"] = (
                float(blocked[d] / self.unmet_weeks) if self.unmet_weeks else 0.0
            )
            out[f"main_barrier_{name}"] = (
                float(main[d] / self.unmet_weeks) if self.unmet_weeks else 0.0
            )
        for t, type_name in enumerate(SERVICE_TYPES):
            unmet = int(self.main[t].sum())  # every unmet need-week has one main barrier
            for d, name in enumerate(DIMENSIONS):
                out[f"blocked_by_{name}_{type_name}"] = (
                    float(self.blocked[t, d] / unmet) if unmet else 0.0
                )
                out[f"main_barrier_{name}_{type_name}"] = (
                    float(self.main[t, d] / unmet) if unmet else 0.0
                )
        for g, rows in BARRIER_GROUPS.items():
            counts = self.main_by_group[list(rows)].sum(axis=0)
            unmet = int(counts.sum())
            for d, name in enumerate(DIMENSIONS):
                out[f"main_barrier_{name}_{g}"] = float(counts[d] / unmet) if unmet else 0.0
        weeks = max(self.weeks, 1)
        out["waitlist_total"] = self.waitlist_sum / weeks
        out["capacity_use"] = self.capacity_use_sum / weeks
        out["public_outlay_eur_week"] = self.outlay_cents / 100.0
        out["net_cost_eur_week"] = (self.outlay_cents - self.fee_revenue_cents / weeks) / 100.0
        out["means_test_line_childcare_eur_year"] = self.means_line
        for part, value in self.outlay_parts.items():
            out[f"outlay_{part}_eur_week"] = value / 100.0
        out["fee_revenue_eur_week"] = self.fee_revenue_cents / weeks / 100.0
        out["u3_enrolled_arope"] = self.enrolled_u3["arope"] / weeks
        out["u3_enrolled_all"] = self.enrolled_u3["all"] / weeks
        out["travel_minutes_nearest"] = (
            self.nearest_minutes_sum / self.need_weeks if self.need_weeks else float("nan")
        )
        out["travel_minutes_used"] = (
            self.used_minutes_sum / self.use_weeks if self.use_weeks else float("nan")
        )
        offers = self.offer_sums
        for t, name in enumerate(SERVICE_TYPES):
            n = int(offers[t, _OFFERS])
            out[f"waiting_weeks_{name}"] = int(offers[t, _WAIT_REQUEST]) / n if n else float("nan")
        n = int(offers[CHILDCARE, _OFFERS])
        out["waiting_weeks_after_start_childcare"] = (
            int(offers[CHILDCARE, _WAIT_START]) / n if n else float("nan")
        )
        due = int(offers[CHILDCARE, _DUE])
        out["requests_without_offer_share"] = (
            int(offers[CHILDCARE, _DUE_WITHOUT]) / due if due else float("nan")
        )
        cared = self.enrolled_u3["all"]
        out["childcare_days_mean"] = self.care_days_sum / cared if cared else float("nan")
        return out

    def _erreygers(self) -> float:
        """Erreygers-corrected concentration index of under-3 childcare enrolment over income
        rank: E = 8 cov_w(h, r), h = share of a child's under-3 weeks in the window spent
        enrolled (bounded in [0, 1]), r = weighted fractional income rank, weight = weeks."""
        f = self.inputs.families
        has = self.u3_weeks > 0
        parts = [
            *self.closed_ci,
            (self.u3_weeks[has], self.u3_enrolled_weeks[has], f.income_q[has], f.key[has]),
        ]
        w = np.concatenate([p[0] for p in parts]).astype(float)
        if w.size < 2 or w.sum() <= 0:
            return float("nan")
        h = np.concatenate([p[1] for p in parts]) / w
        income = np.concatenate([p[2] for p in parts])
        key = np.concatenate([p[3] for p in parts])
        order = np.lexsort((key, income))
        w, h = w[order], h[order]
        total = w.sum()
        rank = (np.cumsum(w) - 0.5 * w) / total
        mean_h = (w * h).sum() / total
        mean_r = (w * rank).sum() / total
        cov = (w * (h - mean_h) * (rank - mean_r)).sum() / total
        return float(8.0 * cov)

    def site_table(self) -> pd.DataFrame:
        """One row per service site: where it is, what it offers and, as means over the
        measured weeks, its occupancy (units in use over capacity units; childcare units
        are days), its empty units, and the requests waiting with it as first choice."""
        svc = self.inputs.services
        weeks = max(self.weeks, 1)
        capacity = self.inputs.capacity_units
        used = self.site_used_units / weeks
        return svc.frame().assign(
            capacity_units=capacity,
            occupancy=np.divide(used, capacity, out=np.full(svc.size, np.nan), where=capacity > 0),
            empty_units=capacity - used,
            waiting_first_choice=self.site_waiting / weeks,
        )

    def cell_table(self) -> pd.DataFrame:
        """One row per cell (id x * height + y, sim.world.geometry): its families and AROPE
        families at the end of the run, its neighbourhood and deprivation score, and over
        the measured weeks its (family, service type) need-weeks and unmet need-weeks."""
        city = self.inputs.city
        f = self.inputs.families
        n = city.n_cells
        home = cell_id(f.x, f.y, city.height)
        ids = np.arange(n)
        x, y = cell_xy(ids, city.height)
        return pd.DataFrame(
            {
                "cell_id": ids,
                "x": x,
                "y": y,
                "neighbourhood": city.neighbourhood.ravel(),
                "deprivation": city.deprivation.ravel(),
                "families": np.bincount(home, minlength=n),
                "arope_families": np.bincount(home, weights=f.is_arope, minlength=n).astype(
                    np.int64
                ),
                "need_weeks": self.cell_need_weeks.copy(),
                "unmet_need_weeks": self.cell_unmet_weeks.copy(),
            }
        )

    def area_table(self) -> pd.DataFrame:
        """One row per neighbourhood: need-weeks and unmet need-weeks over the measured
        weeks (all types) and the unmet share."""
        city = self.inputs.city
        hood = city.neighbourhood.ravel()
        n = int(hood.max()) + 1 if hood.size else 0
        need = np.bincount(hood, weights=self.cell_need_weeks, minlength=n).astype(np.int64)
        unmet = np.bincount(hood, weights=self.cell_unmet_weeks, minlength=n).astype(np.int64)
        return pd.DataFrame(
            {
                "neighbourhood": np.arange(n),
                "need_weeks": need,
                "unmet_need_weeks": unmet,
                "unmet_share": np.divide(unmet, need, out=np.full(n, np.nan), where=need > 0),
            }
        )

    def unmet_map(self) -> np.ndarray:
        """Share of need-weeks unmet per cell [x, y] (NaN where no need)."""
        city = self.inputs.city
        need = self.cell_need_weeks.astype(float)
        share = np.divide(
            self.cell_unmet_weeks, need, out=np.full(need.shape, np.nan), where=need > 0
        )
        return share.reshape(city.width, city.height)


def u3_care_by_cell(families: FamilyTable, city: City) -> tuple[np.ndarray, np.ndarray]:
    """This week's children under 3 and those of them in childcare, per cell [x, y] (the
    youngest child of each family; the snapshot's u3 count, by home cell)."""
    age = families.youngest_age_weeks
    u3 = (age >= 0) & (age < U3_WEEKS)
    in_care = u3 & (families.status[:, CHILDCARE] == ENROLLED)
    shape = (city.width, city.height)
    children = np.zeros(shape)
    care = np.zeros(shape)
    np.add.at(children, (families.x[u3], families.y[u3]), 1.0)
    np.add.at(care, (families.x[in_care], families.y[in_care]), 1.0)
    return children, care


# what the measurement kernels read of the column store (views of the FamilyTable's arrays)
MeasuredFamilies = namedtuple(
    "MeasuredFamilies",
    [
        "youngest_age_weeks",
        "is_arope",
        "income_quintile",
        "status",
        "service",
        "aware",
        "staff_contacted",
        "x",
        "y",
        "income_q",
        "care_days",
        "is_local_language",
    ],
)
# this week's needs, awareness through word of mouth and barrier log (from the plan), and
# the minutes to each service waited for or used ([F, T])
MeasuredWeek = namedtuple(
    "MeasuredWeek",
    [
        "need",
        "wom_aware",
        "new_aware",
        "preferred_blocks",
        "service_minutes",
        "empty_place",
        "channel",
    ],
)
# the world: the city's height (cell = x * height + y), minutes to the nearest service of
# each type [F, T], and per service whether it is public and its fee schedule
# (and per service whether it is means-tested; per type the means line of its public
# provision where that is means-tested, else -1)
MeasuredWorld = namedtuple(
    "MeasuredWorld",
    [
        "city_height",
        "nearest_minutes",
        "is_public",
        "schedule",
        "fees",
        "means_tested",
        "means_line_by_type",
    ],
)
# the window's running counts `_record_week` adds to: per family (u3 weeks, u3 weeks
# enrolled), per (family, type) (need and use seen), per cell (need- and unmet-weeks), per
# dimension (blocked, main barrier), and the week's sums by the positions below
WindowCounts = namedtuple(
    "WindowCounts",
    [
        "u3_weeks",
        "u3_enrolled_weeks",
        "need_seen",
        "used_seen",
        "cell_need_weeks",
        "cell_unmet_weeks",
        "blocked",
        "main",
        "main_by_group",
        "sums",
        "channel_events",
        "site_used_units",
        "site_waiting",
        "eligible_need_seen",
        "means_tested_used_seen",
    ],
)


def _takeup_group(families: FamilyTable, rows: np.ndarray | slice) -> np.ndarray:
    """The take-up group of each family: AROPE (0/1) + 2 x non-local home language (0/1)."""
    return families.is_arope[rows].astype(np.int64) + 2 * (
        ~families.is_local_language[rows]
    ).astype(np.int64)


def measured_families(families: object) -> MeasuredFamilies:
    """The measurement kernels' view of a FamilyTable (its arrays, not copies)."""
    return MeasuredFamilies(*(getattr(families, name) for name in MeasuredFamilies._fields))


# positions in the desks' sums (`sim.rules.allocation.OFFER_SUMS`)
_OFFERS, _WAIT_REQUEST, _WAIT_START, _DUE, _DUE_WITHOUT = (
    OFFER_SUMS.index(name)
    for name in ("offers", "wait_from_request", "wait_from_start", "due", "due_without_offer")
)

# the positions of the sums `_record_week` adds to: children under 3 by AROPE status (0 not,
# 1 AROPE) and those in childcare, then by income quintile (1-5; 0 unused), then single sums
_BY_AROPE = 0
_CARE_AROPE = _BY_AROPE + 2
_BY_Q = _CARE_AROPE + 2
_CARE_Q = _BY_Q + 6
(
    _UNCONTACTED_NEED,  # need-weeks of families never contacted by staff
    _UNCONTACTED_AWARE,  # of them, aware of the type
    _WOM_UNCONTACTED,  # word-of-mouth awareness events among them
    _NEAREST_MINUTES,  # minutes to the nearest service, over need-weeks
    _NEED_WEEKS,
    _USED_MINUTES,  # minutes to the service used, over use-weeks
    _USE_WEEKS,
    _UNMET_WEEKS,
    _WAITLISTED,
    _PUBLIC_ENROLLED,  # units in use at public services (childcare days, users)
    _FEE_REVENUE,  # cents
    _CARE_DAYS,  # childcare days a week of children under 3 in care
    _BY_3M,  # children from 3 months to 3 years (EVIDENCE C12's window)
    _CARE_3M,  # of them, in childcare
) = range(_CARE_Q + 6, _CARE_Q + 6 + 14)
_N_SUMS = _CARE_3M + 1


@kernel
def _record_week(fam, measured, world, window):
    """One measured week: children under 3 and those in care by AROPE status and quintile;
    needs and use seen in the window; awareness among families never contacted by staff;
    travel minutes; and for every unmet need its blocking dimensions (the preferred
    candidate's, plus information where unaware and capacity where waiting or rejected;
    with none, fit after a drop-out and availability otherwise) and the first of them in
    the cascade as its main barrier. Reads `fam` (`MeasuredFamilies`), `measured`
    (`MeasuredWeek`) and `world` (`MeasuredWorld`); adds to `window` (`WindowCounts`)."""
    age, is_arope, quintile = fam.youngest_age_weeks, fam.is_arope, fam.income_quintile
    status, service, aware = fam.status, fam.service, fam.aware
    staff_contacted, x, y, income_q = fam.staff_contacted, fam.x, fam.y, fam.income_q
    need, wom_aware = measured.need, measured.wom_aware
    preferred_blocks, service_minutes = measured.preferred_blocks, measured.service_minutes
    empty_place, care_days = measured.empty_place, fam.care_days
    new_aware = measured.new_aware
    height, nearest_minutes = world.city_height, world.nearest_minutes
    is_public, schedule, fees = world.is_public, world.schedule, world.fees
    u3_weeks, u3_enrolled_weeks = window.u3_weeks, window.u3_enrolled_weeks
    need_seen, used_seen = window.need_seen, window.used_seen
    cell_need_weeks, cell_unmet_weeks = window.cell_need_weeks, window.cell_unmet_weeks
    blocked, main, sums = window.blocked, window.main, window.sums
    main_by_group = window.main_by_group
    n_dims = blocked.shape[1]
    for r in range(len(age)):
        u3 = age[r] >= 0 and age[r] < U3_WEEKS
        in_care = u3 and status[r, CHILDCARE] == ENROLLED
        if u3:
            group = 1 if is_arope[r] else 0
            sums[_BY_AROPE + group] += 1
            sums[_BY_Q + quintile[r]] += 1
            if in_care:
                sums[_CARE_AROPE + group] += 1
                sums[_CARE_Q + quintile[r]] += 1
                sums[_CARE_DAYS] += care_days[r]
            u3_weeks[r] += 1
            if in_care:
                u3_enrolled_weeks[r] += 1
            if age[r] >= THREE_MONTHS_WEEKS:
                sums[_BY_3M] += 1
                if in_care:
                    sums[_CARE_3M] += 1
        cell = np.int64(x[r]) * height + y[r]
        for t in range(N_TYPES):
            enrolled = status[r, t] == ENROLLED
            if measured.channel[r, t] >= 0:
                window.channel_events[measured.channel[r, t]] += 1
            line = world.means_line_by_type[t]
            if need[r, t] and line >= 0 and income_q[r] < line:
                window.eligible_need_seen[r, t] = True
            if enrolled and world.means_tested[service[r, t]]:
                window.means_tested_used_seen[r, t] = True
            if enrolled:
                window.site_used_units[service[r, t]] += units(fam, r, t)
            elif status[r, t] == WAITLISTED:
                window.site_waiting[service[r, t]] += 1
            if need[r, t]:
                need_seen[r, t] = True
                sums[_NEED_WEEKS] += 1
                sums[_NEAREST_MINUTES] += nearest_minutes[r, t]
                cell_need_weeks[cell] += 1
                if not staff_contacted[r]:
                    sums[_UNCONTACTED_NEED] += 1
                    if aware[r, t]:
                        sums[_UNCONTACTED_AWARE] += 1
            if wom_aware[r, t] and not staff_contacted[r]:
                sums[_WOM_UNCONTACTED] += 1
            if enrolled:
                used_seen[r, t] = True
                sums[_USE_WEEKS] += 1
                sums[_USED_MINUTES] += service_minutes[r, t]
                s = service[r, t]
                if is_public[s]:
                    sums[_PUBLIC_ENROLLED] += units(fam, r, t)
                    sums[_FEE_REVENUE] += (
                        fee_cents(fees, schedule[s], income_q[r])
                        * week_days(fam, r, t)
                        // DAYS_PER_WEEK
                    )
            elif status[r, t] == WAITLISTED:
                sums[_WAITLISTED] += 1
            if need[r, t] and not enrolled:
                sums[_UNMET_WEEKS] += 1
                cell_unmet_weeks[cell] += 1
                st = status[r, t]
                waiting = st == WAITLISTED or st == REJECTED
                room = empty_place[r, t]
                first = -1
                for d in range(n_dims):
                    if unmet_block(
                        d, preferred_blocks[r, t, d], aware[r, t], new_aware[r, t], waiting, room
                    ):
                        blocked[t, d] += 1
                        if first < 0:
                            first = d
                if first < 0:
                    # aware, no blocking dimension, still unserved
                    first = unmet_fallback(st, room)
                    blocked[t, first] += 1
                main[t, first] += 1
                g = (1 if is_arope[r] else 0) + (0 if fam.is_local_language[r] else 2)
                main_by_group[g, first] += 1


# the counts `_snapshot_counts` returns, by position
_U3, _U3_CARE, _SNAP_WAITLISTED, _SNAP_PUBLIC = 0, 2, 4, 5
_ENROLLED_TYPE = 6
_AWARE_TYPE = _ENROLLED_TYPE + N_TYPES
_N_SNAPSHOT = _AWARE_TYPE + N_TYPES


@kernel
def _snapshot_counts(fam, is_public, counts):
    """This week's counts: children under 3 and those in care (by AROPE status), families on
    waiting lists, users of public services, users and aware families by type. `fam` is
    `MeasuredFamilies`, `is_public` per service; counts by the positions above."""
    age, is_arope, status, service, aware = (
        fam.youngest_age_weeks,
        fam.is_arope,
        fam.status,
        fam.service,
        fam.aware,
    )
    for r in range(len(age)):
        group = 1 if is_arope[r] else 0
        if age[r] >= 0 and age[r] < U3_WEEKS:
            counts[_U3 + group] += 1
            if status[r, CHILDCARE] == ENROLLED:
                counts[_U3_CARE + group] += 1
        for t in range(N_TYPES):
            if status[r, t] == ENROLLED:
                counts[_ENROLLED_TYPE + t] += 1
                if is_public[service[r, t]]:
                    counts[_SNAP_PUBLIC] += units(fam, r, t)
            elif status[r, t] == WAITLISTED:
                counts[_SNAP_WAITLISTED] += 1
            if aware[r, t]:
                counts[_AWARE_TYPE + t] += 1
