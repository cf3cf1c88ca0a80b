"""Measures, exactly as DESIGN §2 'Measures' defines them (glossary in docs/ODD.md).

Every measure has a unit, a numerator, a denominator and a window: the measured weeks after
burn-in. Family-level measures count family *generations* (a slot renewed during the window
contributes two families), closed when a generation leaves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.barriers import weekly_fee_cents
from sim.costs import OUTLAY_PARTS, outlay_parts_cents
from sim.population import CHILDCARE, DROPPED, ENROLLED, N_TYPES, REJECTED, WAITLISTED
from sim.scenario import DIMENSIONS, SERVICE_TYPES

if TYPE_CHECKING:
    from sim.week import Engine, Plan

U3_WEEKS = 156  # children under 3 (EU-SILC age band), in weeks
# bands of minutes to the nearest service of the needed type: 0-5, 6-10, 11-15, 16-20, >20
TRAVEL_BAND_EDGES = np.array([5, 10, 15, 20])
TRAVEL_BAND_LABELS = ("00_05", "06_10", "11_15", "16_20", "over_20")
GROUPS = ("all", "arope", "non_arope", "q1", "q2", "q3", "q4", "q5")
_INFO = DIMENSIONS.index("information")
_CAP = DIMENSIONS.index("capacity")
_FIT = DIMENSIONS.index("fit")


def metric_columns() -> list[str]:
    cols = [f"u3_participation_{g}" for g in ("all", "arope", "non_arope")]
    cols += ["u3_gap_pp", "u3_ratio"]
    cols += [f"u3_participation_q{q}" for q in range(1, 6)]
    for t in SERVICE_TYPES:
        cols += [f"takeup_{t}_arope", f"takeup_{t}_non_arope"]
    cols += ["concentration_index", "unmet_need_share", "multi_service_share"]
    cols += [f"blocked_by_{d}" for d in DIMENSIONS]
    cols += [f"main_barrier_{d}" for d in DIMENSIONS]
    cols += ["waitlist_total", "capacity_use", "public_outlay_eur_week", "net_cost_eur_week"]
    cols += [f"outlay_{part}_eur_week" for part in OUTLAY_PARTS]
    cols += ["fee_revenue_eur_week", "u3_enrolled_arope", "u3_enrolled_all"]
    cols += ["travel_minutes_nearest", "travel_minutes_used"]
    cols += [f"takeup_travel_{label}" for label in TRAVEL_BAND_LABELS]
    cols += ["aware_share_uncontacted", "wom_awareness_uncontacted_week"]
    return cols


class WindowAccumulator:
    """Running sums over the measured window; `result()` turns them into the measures."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        n = engine.families.size
        cells = engine.world.city.n_cells
        self.weeks = 0
        self.weekly: dict[str, list[float]] = {g: [] for g in GROUPS}
        self.need_seen = np.zeros((n, N_TYPES), dtype=bool)
        self.used_seen = np.zeros((n, N_TYPES), dtype=bool)
        self.u3_weeks = np.zeros(n, dtype=np.int64)
        self.u3_enrolled_weeks = np.zeros(n, dtype=np.int64)
        # closed generations: need / need-and-used counts by [arope, type]
        self.closed_need = np.zeros((2, N_TYPES), dtype=np.int64)
        self.closed_used = np.zeros((2, N_TYPES), dtype=np.int64)
        self.closed_multi_need = 0
        self.closed_multi_used = 0
        self.closed_ci: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.blocked = np.zeros(len(DIMENSIONS), dtype=np.int64)
        self.main = np.zeros(len(DIMENSIONS), dtype=np.int64)
        self.unmet_weeks = 0
        self.waitlist_sum = 0
        self.capacity_use_sum = 0.0
        self.fee_revenue_cents = 0
        self.cell_need_weeks = np.zeros(cells, dtype=np.int64)
        self.cell_unmet_weeks = np.zeros(cells, dtype=np.int64)
        svc = engine.svc
        self.outlay_parts = outlay_parts_cents(
            engine.scenario,
            svc.is_public,
            svc.capacity,
            svc.unit_cost_cents,
            svc.means_test_admin_cents,
            svc.interpreters,
            len(engine.world.services.hub_cells),
        )
        self.outlay_cents = sum(self.outlay_parts.values())
        self.enrolled_u3 = {"all": 0, "arope": 0}
        self.closed_band_need = np.zeros(len(TRAVEL_BAND_LABELS), dtype=np.int64)
        self.closed_band_used = np.zeros(len(TRAVEL_BAND_LABELS), dtype=np.int64)
        self.band = np.searchsorted(TRAVEL_BAND_EDGES, engine.cand.nearest_minutes, side="left")
        self.uncontacted_need_weeks = 0
        self.uncontacted_aware_weeks = 0
        self.wom_uncontacted_events = 0
        self.nearest_minutes_sum = 0
        self.need_weeks = 0
        self.used_minutes_sum = 0
        self.use_weeks = 0

    # -- weekly --------------------------------------------------------------------------

    def record(self, plan: Plan) -> None:
        e = self.engine
        f = e.families
        age = f.youngest_age_weeks
        u3 = (age >= 0) & (age < U3_WEEKS)
        enrolled = f.status == ENROLLED
        in_care = enrolled[:, CHILDCARE] & u3
        # children under 3 and those in care, by AROPE status and by income quintile
        arope = f.is_arope[u3]
        quintile = f.income_quintile[u3]
        care = in_care[u3]
        by_arope = np.bincount(arope, minlength=2)
        care_arope = np.bincount(arope, weights=care, minlength=2)
        by_q = np.bincount(quintile, minlength=6)
        care_q = np.bincount(quintile, weights=care, minlength=6)
        counts = {
            "all": (int(by_arope.sum()), float(care_arope.sum())),
            "arope": (int(by_arope[1]), float(care_arope[1])),
            "non_arope": (int(by_arope[0]), float(care_arope[0])),
            **{f"q{q}": (int(by_q[q]), float(care_q[q])) for q in range(1, 6)},
        }
        for name, (count, cared) in counts.items():
            self.weekly[name].append(cared / count if count else float("nan"))
        self.u3_weeks += u3
        self.u3_enrolled_weeks += in_care
        self.enrolled_u3["all"] += int(care_arope.sum())
        self.enrolled_u3["arope"] += int(care_arope[1])

        need = plan.need if plan.need is not None else e.needs()
        self.need_seen |= need
        self.used_seen |= enrolled

        uncontacted = need & ~f.staff_contacted[:, None]
        self.uncontacted_need_weeks += int(uncontacted.sum())
        self.uncontacted_aware_weeks += int((uncontacted & f.aware).sum())
        self.wom_uncontacted_events += int((plan.wom_aware & ~f.staff_contacted[:, None]).sum())
        self.nearest_minutes_sum += int(
            np.where(need, e.cand.nearest_minutes, 0).sum(dtype=np.int64)
        )
        self.need_weeks += int(need.sum())
        self.used_minutes_sum += int(np.where(enrolled, e.service_minutes, 0).sum(dtype=np.int64))
        er, et = np.nonzero(enrolled)
        self.use_weeks += len(er)

        unmet = need & ~enrolled
        ur, ut = np.nonzero(unmet)
        blocks = plan.preferred_blocks[ur, ut].copy()
        blocks[:, _INFO] |= ~f.aware[ur, ut]
        st = f.status[ur, ut]
        blocks[:, _CAP] |= (st == WAITLISTED) | (st == REJECTED)
        nothing = ~blocks.any(axis=1)
        # aware, no blocking dimension, still unserved: after a drop-out the offer did not fit;
        # otherwise the family gave up a place it could not get (availability)
        blocks[nothing & (st == DROPPED), _FIT] = True
        blocks[nothing & (st != DROPPED), _CAP] = True
        self.blocked += blocks.sum(axis=0)
        first = np.argmax(blocks, axis=1)
        self.main += np.bincount(first, minlength=len(DIMENSIONS))
        self.unmet_weeks += len(ur)

        cell = f.x.astype(np.int64) * e.world.city.height + f.y
        self.cell_need_weeks += np.bincount(
            cell, weights=need.sum(axis=1), minlength=len(self.cell_need_weeks)
        ).astype(np.int64)
        self.cell_unmet_weeks += np.bincount(
            cell, weights=unmet.sum(axis=1), minlength=len(self.cell_unmet_weeks)
        ).astype(np.int64)

        self.waitlist_sum += int((f.status == WAITLISTED).sum())
        svc = f.service[er, et]
        public = e.svc.is_public[svc]
        cap = int(e.svc.capacity[e.svc.is_public].sum())
        self.capacity_use_sum += float(public.sum()) / cap if cap else 0.0
        fees = weekly_fee_cents(e.schedules, e.svc.schedule[svc[public]], f.income_q[er[public]])
        self.fee_revenue_cents += int(fees.sum())
        self.weeks += 1

    def snapshot(self) -> dict[str, float]:
        """This week's aggregates for the time series (every week, burn-in included)."""
        e = self.engine
        f = e.families
        age = f.youngest_age_weeks
        u3 = (age >= 0) & (age < U3_WEEKS)
        enrolled = f.status == ENROLLED
        in_care = enrolled[:, CHILDCARE] & u3
        out: dict[str, float] = {"week": float(e.week), "measured": float(e.week >= e.burn_in)}
        for name, mask in (
            ("all", u3),
            ("arope", u3 & f.is_arope),
            ("non_arope", u3 & ~f.is_arope),
        ):
            count = int(mask.sum())
            out[f"u3_participation_{name}"] = (
                float(in_care[mask].sum()) / count if count else float("nan")
            )
        out["children_u3"] = float(u3.sum())
        out["waitlist_total"] = float((f.status == WAITLISTED).sum())
        for t, name in enumerate(SERVICE_TYPES):
            out[f"enrolled_{name}"] = float(enrolled[:, t].sum())
            out[f"aware_{name}"] = float(f.aware[:, t].mean())
        public_enrolled = int(e.svc.is_public[f.service[enrolled]].sum())
        cap = int(e.svc.capacity[e.svc.is_public].sum())
        out["capacity_use"] = public_enrolled / cap if cap else 0.0
        out["mean_trust"] = float(f.trust.mean())
        return out

    # -- generations leaving -------------------------------------------------------------

    def close(self, rows: np.ndarray) -> None:
        f = self.engine.families
        arope = f.is_arope[rows].astype(np.int64)
        need = self.need_seen[rows]
        used = need & self.used_seen[rows]
        np.add.at(self.closed_need, arope, need.astype(np.int64))
        np.add.at(self.closed_used, arope, used.astype(np.int64))
        band = self.band[rows]
        np.add.at(self.closed_band_need, band[need], 1)
        np.add.at(self.closed_band_used, band[used], 1)
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
        f = self.engine.families
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

        arope = f.is_arope.astype(np.int64)
        need_cnt = self.closed_need.copy()
        used_cnt = self.closed_used.copy()
        used_now = self.need_seen & self.used_seen
        np.add.at(need_cnt, arope, self.need_seen.astype(np.int64))
        np.add.at(used_cnt, arope, used_now.astype(np.int64))
        for t, name in enumerate(SERVICE_TYPES):
            for g, label in ((1, "arope"), (0, "non_arope")):
                out[f"takeup_{name}_{label}"] = (
                    float(used_cnt[g, t] / need_cnt[g, t]) if need_cnt[g, t] else float("nan")
                )

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
        band_need = self.closed_band_need + np.bincount(
            self.band[self.need_seen], minlength=len(TRAVEL_BAND_LABELS)
        )
        band_used = self.closed_band_used + np.bincount(
            self.band[used_now], minlength=len(TRAVEL_BAND_LABELS)
        )
        for b, label in enumerate(TRAVEL_BAND_LABELS):
            out[f"takeup_travel_{label}"] = (
                float(band_used[b] / band_need[b]) if band_need[b] else float("nan")
            )
        out["aware_share_uncontacted"] = (
            self.uncontacted_aware_weeks / self.uncontacted_need_weeks
            if self.uncontacted_need_weeks
            else float("nan")
        )
        out["wom_awareness_uncontacted_week"] = self.wom_uncontacted_events / max(self.weeks, 1)
        for d, name in enumerate(DIMENSIONS):
            out[f"blocked_by_{name}"] = (
                float(self.blocked[d] / self.unmet_weeks) if self.unmet_weeks else 0.0
            )
            out[f"main_barrier_{name}"] = (
                float(self.main[d] / self.unmet_weeks) if self.unmet_weeks else 0.0
            )
        weeks = max(self.weeks, 1)
        out["waitlist_total"] = self.waitlist_sum / weeks
        out["capacity_use"] = self.capacity_use_sum / weeks
        out["public_outlay_eur_week"] = self.outlay_cents / 100.0
        out["net_cost_eur_week"] = (self.outlay_cents - self.fee_revenue_cents / weeks) / 100.0
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
        return out

    def _erreygers(self) -> float:
        """Erreygers-corrected concentration index of under-3 childcare enrolment over income
        rank: E = 8 cov_w(h, r), h = share of a child's under-3 weeks in the window spent
        enrolled (bounded in [0, 1]), r = weighted fractional income rank, weight = weeks."""
        f = self.engine.families
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

    def unmet_map(self) -> np.ndarray:
        """Share of need-weeks unmet per cell [x, y] (NaN where no need)."""
        city = self.engine.world.city
        need = self.cell_need_weeks.astype(float)
        share = np.divide(
            self.cell_unmet_weeks, need, out=np.full(need.shape, np.nan), where=need > 0
        )
        return share.reshape(city.width, city.height)
