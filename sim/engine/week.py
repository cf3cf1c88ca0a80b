"""One week of simulated time over the column store, in two phases (DESIGN §2).

Phase A (`decide`) reads only last week's state and may run over any partition of the
families (chunks of 1, 7 or all give identical results): information events, applications,
drop-outs and give-ups. Phase B (`apply`) then changes the state in a fixed order:
awareness, cooldowns, drop-outs, give-ups, allocation, experience, measurement; `advance`
then runs the life course and moves the clock. The per-family rules run in compiled kernels
(`sim.rules.decisions`, `sim.rules.information`, `sim.measure.metrics`); this module orders them and keeps the
state between weeks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.core import rng
from sim.core.codes import (
    ADMIN_HELP,
    CHILDCARE,
    DIMENSIONS,
    ENROLLED,
    HEALTH,
    N_TYPES,
    NO_HUB,
    NO_SERVICE,
    NONE,
    PAIR_DIMENSIONS,
    PARENTING,
    REJECTED,
    SERVICE_TYPES,
    U3_WEEKS,
    WAITLISTED,
)
from sim.measure.metrics import WindowAccumulator, WindowInputs
from sim.rules import decisions, experience, fees, life_course
from sim.rules.allocation import admit, priority_class
from sim.rules.barriers import PairBarriers, PairInputs, weekly_fee_cents
from sim.rules.decisions import BarrierParams, FamilyColumns, ServiceColumns, TypeBounds
from sim.rules.information import (
    channel_events,
    contact_probability,
    tie_matrix,
    tie_user_counts,
    update_tie_users,
    word_of_mouth_probability,
)
from sim.scenario.schema import cents
from sim.world.build import World
from sim.world.population import GENERATION_BITS, assign_quintiles, birth_plan, draw_generation
from sim.world.travel import travel_minutes, trip_cost_cents

_DIM_INDEX = {name: i for i, name in enumerate(DIMENSIONS)}
_PAIR_TO_DIM = np.array([_DIM_INDEX[d] for d in PAIR_DIMENSIONS], dtype=np.int64)
# the information channels' streams, in the order channel_events reads their prefixes
_INFORMATION_STREAMS = (
    "first_contact",
    "first_contact_understood",
    "word_of_mouth",
    "outreach",
    "outreach_understood",
    "broker",
    "referral",
)


@dataclass
class Plan:
    """Phase A's output: events and decisions, keyed by row (global indices)."""

    new_aware: np.ndarray  # bool [F, T]
    broker_contacted: np.ndarray  # bool [F]
    staff_contacted: np.ndarray  # bool [F]
    coordinated: np.ndarray  # bool [F]
    wom_heard: np.ndarray  # bool [F, T]: ties used the type last week (fit rises)
    wom_aware: np.ndarray  # bool [F, T]: newly aware this week through word of mouth
    chosen: np.ndarray  # int32 [F, T]: service applied to this week, or NO_SERVICE
    chosen_minutes: np.ndarray  # int16 [F, T]: travel minutes to the chosen service
    dropout: np.ndarray  # bool [F, T]
    give_up: np.ndarray  # bool [F, T]
    preferred_blocks: np.ndarray  # bool [F, T, D] dims blocking the preferred candidate
    need: np.ndarray | None = None  # bool [F, T]: this week's needs (read by measurement)
    counters: dict[str, int] = field(default_factory=dict)


class Engine:
    """The fast engine: the weekly rules, compiled, over one World's column store."""

    def __init__(self, world: World, chunk_size: int | None = None) -> None:
        self.world = world
        self.scenario = world.scenario
        self.seed = world.seed
        self.families = world.families.take(np.arange(world.families.size))  # own copy
        self.svc = world.services.services
        self.schedules = world.services.schedules
        self.cand = world.candidates
        self.chunk_size = chunk_size
        self.week = 0
        self.burn_in = self.scenario.run.burn_in_weeks
        self.languages = world.city.languages
        self.local = self.languages.index("local")
        n_hubs = len(world.services.hub_cells)
        self.hub_has_type = np.zeros((max(n_hubs, 1), N_TYPES), dtype=bool)
        in_hub = self.svc.hub != NO_HUB
        self.hub_has_type[self.svc.hub[in_hub], self.svc.type[in_hub]] = True
        self.coordinator = bool(world.services.hub_coordinator and n_hubs)
        info = self.scenario.information
        self.broker_capacity = np.array(
            [info.brokers.get(lang, 0.0) * info.broker_contacts_per_week for lang in self.languages]
        )
        self.outreach_capacity = info.outreach_workers * info.outreach_visits_per_worker_week
        health_interpreters = self.scenario.provision["health"].interpreters
        self.first_contact_interpreter = (
            info.interpreter_comprehension if health_interpreters else 0.0
        )
        self.ties = tie_matrix(self.families.ties_indptr, self.families.ties_indices)
        self._users: np.ndarray | None = None
        self._using: np.ndarray | None = None
        self.factor_tenths = int(round(self.scenario.population.household_equivalence_factor * 10))
        self.svc_columns = self._service_columns()
        self.fee_tables = fees.fee_tables(self.schedules)
        self.barrier_params = self._barrier_params()
        self.type_bounds = self._type_bounds()
        self.cand_indptr = tuple(np.ascontiguousarray(a, dtype=np.int64) for a in self.cand.indptr)
        self.cand_service = tuple(
            np.ascontiguousarray(a, dtype=np.int32) for a in self.cand.service
        )
        self.cand_minutes = tuple(
            np.ascontiguousarray(a, dtype=np.int16) for a in self.cand.minutes
        )
        self.first_contact_informs = np.isin(SERVICE_TYPES, info.first_contact_informs)
        # the age (weeks) at which each type's need ends (-1: it does not end with age)
        pop = self.scenario.population
        self.need_ends_at = np.full(N_TYPES, -1, dtype=np.int64)
        self.need_ends_at[CHILDCARE] = pop.childcare_exit_age_weeks
        self.need_ends_at[HEALTH] = pop.health_need_until_age_weeks
        self.need_ends_at[PARENTING] = pop.parenting_need_until_age_weeks
        most_ties = int(np.diff(self.families.ties_indptr).max(initial=0))
        self.wom_probability = word_of_mouth_probability(info.wom_prob_per_tie_week, most_ties)
        n = self.families.size
        self.pref_service = np.full((n, N_TYPES), -1, dtype=np.int32)
        self.pref_minutes = np.zeros((n, N_TYPES), dtype=np.int32)
        self.none_eligible = np.zeros((n, N_TYPES), dtype=bool)
        # travel minutes to the service each (family, type) waits for or uses: set when the
        # family applies (its candidate's minutes), valid while waitlisted or enrolled
        self.service_minutes = np.zeros((n, N_TYPES), dtype=np.int16)
        self.set_preferred_targets(np.arange(n))
        self.accumulator = WindowAccumulator(
            WindowInputs(
                scenario=self.scenario,
                city=world.city,
                families=self.families,
                services=self.svc,
                hub_count=n_hubs,
                fee_tables=self.fee_tables,
                nearest_minutes=self.cand.nearest_minutes,
                service_minutes=self.service_minutes,
                burn_in=self.burn_in,
            )
        )
        self.last: dict[str, float] = {}
        self.counters: dict[str, int] = {}

    # ----------------------------------------------------------------------------------
    # helpers over the current state

    def ages(self) -> np.ndarray:
        return self.families.youngest_age_weeks

    def tie_users(self) -> np.ndarray:
        """users[f, t]: how many of f's ties use type t (int64). The full product once, then
        kept up to date from the families whose use changed (information.update_tie_users)."""
        f = self.families
        if self._users is None:
            self._using = f.status == ENROLLED
            self._users = tie_user_counts(self.ties, self._using)
        else:
            update_tie_users(f.status, self._using, f.ties_indptr, f.ties_indices, self._users)
        return self._users

    def needs(self) -> np.ndarray:
        """need[f, t]: the family needs the type now (need is not vulnerability, DESIGN §2)."""
        f = self.families
        pop = self.scenario.population
        age = f.youngest_age_weeks
        need = np.zeros((f.size, N_TYPES), dtype=bool)
        need[:, CHILDCARE] = (
            f.wants_formal_care
            & (age >= f.care_start_age_weeks)
            & (age < pop.childcare_exit_age_weeks)
        )
        need[:, HEALTH] = (age >= 0) & (age < pop.health_need_until_age_weeks)
        need[:, PARENTING] = (
            f.parenting_need & (age >= 0) & (age < pop.parenting_need_until_age_weeks)
        )
        need[:, ADMIN_HELP] = f.admin_need
        return need

    def may_apply(self, need: np.ndarray) -> np.ndarray:
        """Applications are possible with a need, and for childcare from the week a pregnancy
        is known (Flemish registration from the third month, EVIDENCE C21)."""
        f = self.families
        pop = self.scenario.population
        age = f.youngest_age_weeks
        out = need.copy()
        out[:, CHILDCARE] = (
            f.wants_formal_care
            & (age >= -pop.pregnancy_known_weeks)
            & (age < pop.childcare_exit_age_weeks)
        )
        return out

    def ready(self, rows: np.ndarray, types: np.ndarray) -> np.ndarray:
        """Whether a place can be taken now (childcare: only once leave has ended)."""
        f = self.families
        cc = types == CHILDCARE
        return ~cc | (f.youngest_age_weeks[rows] >= f.care_start_age_weeks[rows])

    def enrolled_hubs(self) -> np.ndarray:
        """[F, T]: the hub of the service each family uses for each type, NO_HUB if none."""
        f = self.families
        out = np.empty(f.status.shape, dtype=np.int32)
        decisions.enrolled_hubs(f.status, f.service, self.svc_columns.hub, out)
        return out

    def enrolled_counts(self) -> np.ndarray:
        f = self.families
        mask = f.status == ENROLLED
        return np.bincount(f.service[mask], minlength=self.svc.size).astype(np.int64)

    def trip_cents(self, rows: np.ndarray, minutes: np.ndarray) -> np.ndarray:
        """Cost of one trip of `minutes` for each family (integer cents)."""
        return trip_cost_cents(minutes, self.families.mode[rows], self.scenario.travel)

    def pair_inputs(
        self,
        rows: np.ndarray,
        types: np.ndarray,
        services: np.ndarray,
        minutes: np.ndarray,
        trip_cents: np.ndarray,
        enrolled_hub: np.ndarray,
    ) -> PairInputs:
        f = self.families
        s = self.svc
        info = self.scenario.information
        fee = weekly_fee_cents(self.schedules, s.schedule[services], f.income_q[rows])
        hub = s.hub[services]
        in_hub = hub != NO_HUB
        intake_done = in_hub & (
            (enrolled_hub[rows] == hub[:, None]).any(axis=1) | f.coordinated[rows]
        )
        stigma_factor = np.where(in_hub, self.scenario.hubs.stigma_factor, 1.0)
        return self._inputs(
            rows,
            types,
            weekly_cost_cents=fee + s.trips_per_week[services].astype(np.int64) * trip_cents,
            minutes=minutes,
            extended_hours=s.extended_hours[services],
            admin_complexity=np.where(intake_done, 0.0, s.admin_complexity[services]),
            speaks_language=s.speaks[services, f.language[rows]],
            interpreter_comprehension=np.where(
                s.interpreters[services], info.interpreter_comprehension, 0.0
            ),
            stigma_label=s.stigma_label[services] * stigma_factor,
            quality=s.quality[services],
        )

    def _inputs(
        self,
        rows: np.ndarray,
        types: np.ndarray,
        weekly_cost_cents: np.ndarray,
        minutes: np.ndarray,
        extended_hours: np.ndarray,
        admin_complexity: np.ndarray,
        speaks_language: np.ndarray,
        interpreter_comprehension: np.ndarray,
        stigma_label: np.ndarray,
        quality: np.ndarray,
    ) -> PairInputs:
        """The family side of each pair beside the given service side."""
        f = self.families
        info = self.scenario.information
        return PairInputs(
            income_q=f.income_q[rows],
            household_factor_tenths=self.factor_tenths,
            cost_share_bp=f.cost_share_bp[rows],
            weekly_cost_cents=weekly_cost_cents,
            minutes=minutes,
            max_minutes=f.max_travel_minutes[rows],
            atypical_hours=f.atypical_hours[rows],
            hours_severity=f.hours_severity[rows],
            extended_hours=extended_hours,
            hours_tolerance=f.hours_tolerance[rows],
            admin_complexity=admin_complexity,
            paperwork=f.paperwork[rows],
            admin_tolerance=f.admin_tolerance[rows],
            speaks_language=speaks_language,
            proficiency=f.proficiency[rows],
            interpreter_comprehension=interpreter_comprehension,
            broker_gain=np.where(f.broker_contacted[rows], info.broker_comprehension_gain, 0.0),
            language_tolerance=f.language_tolerance[rows],
            stigma_label=stigma_label,
            stigma_sensitivity=f.stigma_sensitivity[rows],
            trust=f.trust[rows],
            stigma_tolerance=f.stigma_tolerance[rows],
            perceived_fit=f.perceived_fit[rows, types],
            quality=quality,
            fit_threshold=f.fit_threshold[rows],
        )

    # ----------------------------------------------------------------------------------
    # what the compiled kernels read

    def family_columns(self) -> FamilyColumns:
        f = self.families
        return FamilyColumns(
            **{name: getattr(f, name) for name in FamilyColumns._fields if name != "key"},
            key=f.key,
        )

    def _service_columns(self) -> ServiceColumns:
        s = self.svc
        return ServiceColumns(
            **{name: np.ascontiguousarray(getattr(s, name)) for name in ServiceColumns._fields}
        )

    def _barrier_params(self) -> BarrierParams:
        info = self.scenario.information
        travel = self.scenario.travel
        return BarrierParams(
            factor_tenths=self.factor_tenths,
            hub_stigma_factor=float(self.scenario.hubs.stigma_factor),
            interpreter_comprehension=float(info.interpreter_comprehension),
            broker_comprehension_gain=float(info.broker_comprehension_gain),
            car_cents_per_minute=cents(travel.car_cost_eur_per_minute),
            transit_fare_cents=cents(travel.transit_fare_eur_trip),
        )

    def _type_bounds(self) -> TypeBounds:
        """Per type, the most favourable value of each service attribute (decisions.could_accept)."""
        s = self.svc
        info = self.scenario.information
        label = s.stigma_label * np.where(s.hub != NO_HUB, self.scenario.hubs.stigma_factor, 1.0)
        schedules = [np.unique(s.schedule[s.type == t]) for t in range(N_TYPES)]
        bounds = TypeBounds(
            n_schedules=np.array([len(k) for k in schedules], dtype=np.int64),
            schedules=np.zeros((N_TYPES, max(1, *map(len, schedules))), dtype=np.int64),
            trips=np.zeros(N_TYPES, dtype=np.int64),
            extended=np.zeros(N_TYPES, dtype=bool),
            admin=np.zeros(N_TYPES),
            speaks=np.zeros((N_TYPES, s.speaks.shape[1]), dtype=bool),
            interpreter=np.zeros(N_TYPES),
            stigma=np.zeros(N_TYPES),
            quality=np.zeros(N_TYPES),
        )
        for t in range(N_TYPES):
            of = s.type == t
            bounds.schedules[t, : len(schedules[t])] = schedules[t]
            if not of.any():
                continue
            bounds.trips[t] = int(s.trips_per_week[of].min())
            bounds.extended[t] = bool(s.extended_hours[of].any())
            bounds.admin[t] = 0.0 if (s.hub[of] != NO_HUB).any() else s.admin_complexity[of].min()
            bounds.speaks[t] = s.speaks[of].any(axis=0)
            bounds.interpreter[t] = (
                info.interpreter_comprehension if s.interpreters[of].any() else 0.0
            )
            bounds.stigma[t] = label[of].min()
            bounds.quality[t] = s.quality[of].max()
        return bounds

    def pair_barriers(
        self, rows: np.ndarray, types: np.ndarray, services: np.ndarray, minutes: np.ndarray
    ) -> PairBarriers:
        """The barriers of given (family row, type, service, minutes) pairs as the kernels
        compute them, with this week's hub intakes."""
        masks = np.zeros(len(rows), dtype=np.int64)
        felt = np.zeros(len(rows))
        decisions.pair_barrier_masks(
            self.family_columns(),
            self.svc_columns,
            self.fee_tables,
            self.barrier_params,
            np.asarray(rows, dtype=np.int64),
            np.asarray(types, dtype=np.int64),
            np.asarray(services, dtype=np.int64),
            np.asarray(minutes, dtype=np.int64),
            self.enrolled_hubs(),
            masks,
            felt,
        )
        blocks = ((masks[:, None] >> np.arange(len(PAIR_DIMENSIONS))) & 1).astype(bool)
        return PairBarriers(blocks=blocks, felt=felt)

    def could_accept(self, rows: np.ndarray, types: np.ndarray) -> np.ndarray:
        """False where no candidate of the type can be acceptable (decisions.could_accept)."""
        out = np.zeros(len(rows), dtype=bool)
        decisions.bound_masks(
            self.family_columns(),
            self.fee_tables,
            self.barrier_params,
            self.type_bounds,
            np.asarray(rows, dtype=np.int64),
            np.asarray(types, dtype=np.int64),
            self.cand.nearest_minutes,
            out,
        )
        return out

    # ----------------------------------------------------------------------------------
    # phase A

    def decide(self) -> Plan:
        f = self.families
        n = f.size
        week = self.week
        need = self.needs()
        applicable = self.may_apply(need)
        enrolled = f.status == ENROLLED
        enrolled_hub = self.enrolled_hubs()
        measuring = week >= self.burn_in
        plan = Plan(
            new_aware=np.zeros((n, N_TYPES), dtype=bool),
            broker_contacted=np.zeros(n, dtype=bool),
            staff_contacted=np.zeros(n, dtype=bool),
            coordinated=np.zeros(n, dtype=bool),
            wom_heard=np.zeros((n, N_TYPES), dtype=bool),
            wom_aware=np.zeros((n, N_TYPES), dtype=bool),
            chosen=np.full((n, N_TYPES), NO_SERVICE, dtype=np.int32),
            chosen_minutes=np.zeros((n, N_TYPES), dtype=np.int16),
            dropout=np.zeros((n, N_TYPES), dtype=bool),
            give_up=np.zeros((n, N_TYPES), dtype=bool),
            preferred_blocks=np.zeros(
                (n if measuring else 0, N_TYPES, len(DIMENSIONS)), dtype=bool
            ),
            need=need,
        )
        # pools for contact channels: counted over everyone, before any chunking
        pop = self.scenario.population
        age = f.youngest_age_weeks
        young = (age >= -pop.pregnancy_known_weeks) & (age < U3_WEEKS)
        # 'prior contact' as a municipality sees it: use of, or a waiting-list place at, a
        # service beyond the universal health consultation every newborn is offered
        in_service = enrolled | (f.status == WAITLISTED)
        in_service[:, HEALTH] = False
        info = self.scenario.information
        outreach_pool = young & ~_any_type(in_service)
        if info.outreach_targeting == "deprived_neighbourhoods":
            outreach_pool &= f.deprivation_rank >= 1.0 - info.outreach_deprived_share
        p_outreach = contact_probability(self.outreach_capacity, outreach_pool)
        broker_pool = young & ~f.broker_contacted
        p_broker = np.array(
            [
                contact_probability(self.broker_capacity[li], broker_pool & (f.language == li))
                for li in range(len(self.languages))
            ]
        )
        users = self.tie_users()
        fam = self.family_columns()
        seed, beh = self.seed, self.scenario.behaviour
        prefixes = np.array(
            [rng.prefix_bits(seed, stream, week) for stream in _INFORMATION_STREAMS],
            dtype=np.uint64,
        )
        dropout_prefix = np.uint64(rng.prefix_bits(seed, "dropout", week))
        step = n if not self.chunk_size else self.chunk_size
        hub_referrals = 0
        for start in range(0, n, max(step, 1)):
            rows = np.arange(start, min(n, start + step))
            hub_referrals += channel_events(
                rows,
                fam,
                need,
                users,
                enrolled_hub,
                self.hub_has_type,
                self.coordinator,
                self.first_contact_informs,
                info.first_contact_reach,
                self.first_contact_interpreter,
                self.wom_probability,
                outreach_pool,
                p_outreach,
                broker_pool,
                p_broker,
                info.referral_prob_week,
                self.scenario.hubs.referral_prob_week,
                prefixes,
                plan.new_aware,
                plan.wom_heard,
                plan.wom_aware,
                plan.broker_contacted,
                plan.staff_contacted,
                plan.coordinated,
            )
            decisions.applications(
                rows,
                fam,
                self.svc_columns,
                self.fee_tables,
                self.barrier_params,
                self.type_bounds,
                applicable,
                enrolled_hub,
                self.cand_indptr,
                self.cand_service,
                self.cand_minutes,
                self.cand.nearest_minutes,
                plan.chosen,
                plan.chosen_minutes,
            )
            decisions.exits(
                rows,
                fam,
                self.svc_columns,
                self.fee_tables,
                self.barrier_params,
                enrolled_hub,
                self.service_minutes,
                week,
                dropout_prefix,
                beh.dropout_base_week,
                beh.dropout_barrier_slope,
                beh.waitlist_patience_weeks,
                plan.dropout,
                plan.give_up,
            )
            if measuring:
                decisions.preferred_blocks(
                    rows,
                    fam,
                    self.svc_columns,
                    self.fee_tables,
                    self.barrier_params,
                    need,
                    enrolled_hub,
                    self.pref_service,
                    self.pref_minutes,
                    self.none_eligible,
                    _PAIR_TO_DIM,
                    _DIM_INDEX["capacity"],
                    plan.preferred_blocks,
                )
        # a counter only (docking tests): referral events from a hub the family uses
        plan.counters["hub_referrals"] = hub_referrals
        return plan

    def minutes_to(self, fam: np.ndarray, types: np.ndarray, svc: np.ndarray):
        """Travel minutes and trip cost to a specific service, by the formula that built the
        candidate lists (the same float64 operations, so the same integers)."""
        f = self.families
        d = np.hypot(
            self.svc.x[svc].astype(float) - f.x[fam].astype(float),
            self.svc.y[svc].astype(float) - f.y[fam].astype(float),
        )
        city = self.world.city
        mins = travel_minutes(
            d,
            f.mode[fam],
            city.transit_access[f.x[fam], f.y[fam]],
            city.cell_size_m,
            self.scenario.travel,
        )
        return mins, self.trip_cents(fam, mins)

    def set_preferred_targets(self, rows: np.ndarray) -> None:
        """The service the barrier log evaluates for each (family, type): the nearest
        candidate the family is eligible for; else, with no candidate in reach, the nearest
        of the type anywhere. Eligibility reads only the family's income, so this changes
        only when a new family takes the slot."""
        rows = np.asarray(rows, dtype=np.int64)
        fam = self.family_columns()
        for t in range(N_TYPES):
            decisions.nearest_eligible(
                rows,
                t,
                fam,
                self.svc_columns,
                self.cand_indptr[t],
                self.cand_service[t],
                self.cand_minutes[t],
                self.cand.nearest_service,
                self.cand.nearest_minutes,
                self.pref_service,
                self.pref_minutes,
                self.none_eligible,
            )

    # ----------------------------------------------------------------------------------
    # phase B

    def apply(self, plan: Plan) -> None:
        f = self.families
        beh = self.scenario.behaviour
        week = self.week
        counters = {
            "aware_events": int(plan.new_aware.sum()),
            "outreach_visits": int((plan.staff_contacted & ~plan.broker_contacted).sum()),
            "broker_contacts": int(plan.broker_contacted.sum()),
            "coordinator_assessments": int(plan.coordinated.sum()),
            "hub_referrals": plan.counters.get("hub_referrals", 0),
        }
        # 1. information
        f.aware |= plan.new_aware
        f.broker_contacted |= plan.broker_contacted
        f.staff_contacted |= plan.staff_contacted
        f.coordinated |= plan.coordinated

        # 2. cooldowns end, 3. drop-outs, 4. give-ups, 5a. new applications join the queue
        settled = np.zeros(4, dtype=np.int64)
        decisions.settle_exits_and_applications(
            f.status,
            f.status_week,
            f.service,
            f.excluded_service,
            f.applied_week,
            self.service_minutes,
            f.youngest_age_weeks,
            plan.dropout,
            plan.give_up,
            plan.chosen,
            plan.chosen_minutes,
            week,
            beh.cooldown_weeks,
            settled,
        )
        for name, value in zip(
            ("dropouts", "give_ups", "applications", "pre_birth_applications"), settled, strict=True
        ):
            counters[name] = int(value)

        # 5b. every ready queued family is ranked; places free after this week's exits
        qr, qt = np.nonzero(f.status == WAITLISTED)
        svc = f.service[qr, qt]
        free = np.maximum(self.svc.capacity - self.enrolled_counts(), 0)
        s = self.svc
        prio = priority_class(
            s.priority[svc],
            f.employed[qr],
            f.income_q[qr] < s.means_line_q[svc],
            f.deprivation_rank[qr],
            s.priority_rank_min[svc],
        )
        ready = self.ready(qr, qt)
        adm = admit(self.seed, week, svc, f.key[qr], prio, f.applied_week[qr, qt], ready, free)
        f.status[qr[adm], qt[adm]] = ENROLLED
        f.status_week[qr[adm], qt[adm]] = week
        counters["admissions"] = int(adm.sum())
        counters["capacity_binding"] = int((ready & ~adm).sum())
        # a ready newcomer who was not admitted: waiting list, or rejection where there is none
        newcomer = (f.applied_week[qr, qt] == week) & ready & ~adm
        rejected = newcomer & ~s.waitlist[svc]
        rr, rt = qr[rejected], qt[rejected]
        f.status[rr, rt] = REJECTED
        f.status_week[rr, rt] = week
        f.excluded_service[rr, rt] = f.service[rr, rt]
        counters["rejections"] = len(rr)
        # rejection lowers trust (DESIGN §2; IAS focus groups: 'they never say no' as what helps)
        np.subtract.at(f.trust, rr, beh.trust_loss_rejection * f.trust[rr])
        counters["waitlisted"] = int((f.status == WAITLISTED).sum())

        # 6. experience: use raises trust and perceived fit; hearing from users raises fit
        experience.experience(
            f.status,
            plan.wom_heard,
            f.trust,
            f.perceived_fit,
            beh.trust_gain_enrolled_week,
            beh.fit_gain_enrolled_week,
            self.scenario.information.wom_fit_gain,
        )

        # 7. measurement
        if week >= self.burn_in:
            need = plan.need if plan.need is not None else self.needs()
            self.accumulator.record(need, plan.wom_aware, plan.preferred_blocks)
        self.last = self.accumulator.snapshot(week)
        self._count(counters)

    def _count(self, counters: dict[str, int]) -> None:
        for key, value in counters.items():
            self.counters[key] = self.counters.get(key, 0) + value

    def advance(self) -> None:
        """8. Life course, then the clock moves to the next week."""
        self._count(self._life_course())
        self.week += 1

    def _life_course(self) -> dict[str, int]:
        f = self.families
        pop = self.scenario.population
        seed, week = self.seed, self.week
        # ageing, the end of age-bound needs, births, and a next pregnancy once the youngest
        # is old enough (one child in the childcare range)
        conceive = np.zeros(f.size, dtype=bool)
        births = life_course.age_one_week(
            f.youngest_age_weeks,
            f.status,
            f.excluded_service,
            f.n_children,
            self.need_ends_at,
            pop.min_birth_spacing_weeks,
            np.uint64(rng.prefix_bits(seed, "conception", week)),
            pop.next_birth_hazard_week,
            f.key,
            conceive,
        )
        rows = np.flatnonzero(conceive)
        if rows.size:
            f.youngest_age_weeks[rows] = -pop.gestation_weeks
            plan = birth_plan(self.scenario, seed, f.key[rows], week, f.employed[rows])
            f.wants_formal_care[rows] = plan["wants_formal_care"]
            f.care_start_age_weeks[rows] = plan["care_start_age_weeks"]
            for t in (CHILDCARE, HEALTH):
                f.status[rows, t] = NONE
                f.excluded_service[rows, t] = NO_SERVICE

        # the youngest leaves the 0-12 range: a new family takes the slot
        renew = np.flatnonzero(f.youngest_age_weeks >= pop.youngest_child_max_age_weeks)
        if renew.size:
            if week >= self.burn_in:
                self.accumulator.close(renew)
            self._renew(renew)
        return {"births": births, "conceptions": int(rows.size), "renewals": int(renew.size)}

    def _renew(self, rows: np.ndarray) -> None:
        f = self.families
        pop = self.scenario.population
        f.generation[rows] += 1
        if (f.generation[rows] >= (1 << GENERATION_BITS)).any():
            raise OverflowError("family generation counter exhausted")
        keys = f.key[rows]
        city = self.world.city
        columns = draw_generation(
            self.scenario,
            self.seed,
            keys,
            city.log_income_shift[f.x[rows], f.y[rows]],
            f.deprivation[rows],
            f.is_local_language[rows],
            np.full(rows.size, -pop.gestation_weeks, dtype=np.int32),
        )
        for name, values in columns.items():
            getattr(f, name)[rows] = values
        f.income_quintile[rows] = assign_quintiles(f.income_q[rows], self.world.quintile_cuts)
        self.set_preferred_targets(rows)

    def step(self) -> None:
        self.apply(self.decide())
        self.advance()


def _any_type(values: np.ndarray) -> np.ndarray:
    """values.any(axis=1) for a [F, T] array, column by column (much faster for few types)."""
    out = values[:, 0].copy()
    for t in range(1, values.shape[1]):
        out |= values[:, t]
    return out
