"""One week of simulated time over the column store, in two phases (DESIGN §2).

Phase A (`decide`) reads only last week's state and may run over any partition of the
families (chunks of 1, 7 or all give identical results): information events, applications,
drop-outs and give-ups go into the week's `Plan`. Phase B then changes the state in a fixed
order, one method each: `information` (awareness), `settle` (cooldowns, drop-outs, give-ups,
applications), `allocate`, `experience`, `meet` (ties formed at sites), `measure`;
`life_course` ends the week (new families in renewed slots draw their own ties).
`FamilyAccessModel.step` (sim.engine.model) calls them in that order, so the Mesa model shows
the schedule; `Engine.step` runs the same week for an engine on its own. The per-family rules
run in compiled kernels (`sim.rules`, `sim.measure.metrics`); this module orders them and
keeps the state between weeks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from sim.core import rng
from sim.core.codes import (
    ADMIN_HELP,
    CHILDCARE,
    DAYS_PER_WEEK,
    DIMENSIONS,
    ENROLLED,
    HEALTH,
    INCOME_SCALE,
    N_TYPES,
    NO_HUB,
    NO_SERVICE,
    NONE,
    PARENTING,
    PRIORITY,
    REJECTED,
    SERVICE_TYPES,
    U3_WEEKS,
    WAITLISTED,
)
from sim.engine.adaptive import AdaptivePolicy
from sim.measure.metrics import WindowAccumulator, WindowInputs
from sim.rules import decisions, experience, fees, life_course
from sim.rules.allocation import OFFER_SUMS, desk_order, offer_places, priority_class, used_units
from sim.rules.information import (
    channel_events,
    contact_probability,
    tie_matrix,
    tie_user_counts,
    update_tie_users,
    word_of_mouth_probability,
)
from sim.rules.records import (
    BarrierParams,
    Behaviour,
    Candidates,
    Chosen,
    ContactPools,
    Desk,
    ExitFlags,
    FamilyColumns,
    InformationChannels,
    InformationEvents,
    LifeCourse,
    Offers,
    Preferred,
    ServiceColumns,
    TypeBounds,
    WeekState,
)
from sim.rules.ties import (
    TIE_FORMED,
    TIE_OUTCOMES,
    TIE_OVER_LIMIT,
    add_ties,
    attendance_partners,
    remove_ties_of,
)
from sim.scenario.schema import cents
from sim.world.build import World
from sim.world.population import (
    GENERATION_BITS,
    TieIndex,
    assign_quintiles,
    birth_plan,
    draw_generation,
    redraw_ties,
)
from sim.world.travel import tolerance_percent

# the types whose sites are meeting places: families enrolled at the same childcare centre
# or parenting meeting place form ties there (Engine.meet)
MEETING_TYPES = np.array([CHILDCARE, PARENTING], dtype=np.int64)


@dataclass
class Plan:
    """Phase A's output: events and decisions, keyed by row (global indices)."""

    new_aware: np.ndarray  # bool [F, T]
    broker_contacted: np.ndarray  # bool [F]
    staff_contacted: np.ndarray  # bool [F]
    visited: np.ndarray  # bool [F]: an outreach visit this week
    coordinated: np.ndarray  # bool [F]
    first_contact: np.ndarray  # bool [F]: the home visit after birth reached the family
    referred: np.ndarray  # bool [F]: referred this week by a service in use
    channel: np.ndarray  # int8 [F, T]: the channel of each new awareness (CHANNELS), else -1
    wom_heard: np.ndarray  # bool [F, T]: ties used the type last week (fit rises)
    wom_aware: np.ndarray  # bool [F, T]: newly aware this week through word of mouth
    chosen: np.ndarray  # int32 [F, T]: first choice registered this week, or NO_SERVICE
    chosen_minutes: np.ndarray  # int16 [F, T]: travel minutes to the first choice
    chosen_registered: np.ndarray  # int32 [F, T, K]: every centre listed, NO_SERVICE after
    chosen_registered_minutes: np.ndarray  # int16 [F, T, K]: their travel minutes
    dropout: np.ndarray  # bool [F, T]
    give_up: np.ndarray  # bool [F, T]
    preferred_blocks: np.ndarray  # bool [F, T, D] dims blocking the preferred candidate
    empty_place: np.ndarray  # bool [F, T]: an acceptable candidate had room (measured weeks)
    need: np.ndarray | None = None  # bool [F, T]: this week's needs (read by measurement)
    counters: dict[str, int] = field(default_factory=dict)


class Engine:
    """The fast engine: the weekly rules, compiled, over one World's column store."""

    def __init__(
        self,
        world: World,
        chunk_size: int | None = None,
        clock: Callable[[], int] | None = None,
        copy_families: bool = True,
    ) -> None:
        """world: what to run; unless told not to, the engine copies its family table (the
        caller's World stays as built, so several engines and the reference can start from
        one World), and the World the engine keeps, `self.world`, holds that copy: the one
        table the weeks change.
        chunk_size: phase A in chunks of this many families (results identical).
        clock: the week in progress, read from outside; FamilyAccessModel passes Mesa's
        clock. None: the engine counts its own weeks (`step`, and `life_course` ending a
        week), as tests, benchmarks and the docking do.
        copy_families: False when nothing else will read the World (a model that built its
        own): the engine then changes the World's family table in place and saves a copy
        of it (about a gigabyte at a million families)."""
        families = (
            world.families.take(np.arange(world.families.size)) if copy_families else world.families
        )
        self.world = replace(world, families=families)
        self.families = families
        self.scenario = world.scenario
        self.seed = world.seed
        self.svc = world.services.services
        self.schedules = world.services.schedules
        self.cand = world.candidates
        self.chunk_size = chunk_size
        self._clock = clock
        self._weeks = 0  # weeks ended, counted only without a clock
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
        self._users: np.ndarray | None = None
        self._using: np.ndarray | None = None
        self._tie_index: TieIndex | None = None  # built at the first renewal
        self.factor_tenths = int(round(self.scenario.population.household_equivalence_factor * 10))
        # capacity in units by rhythm: a childcare place is DAYS_PER_WEEK days; appointments
        # or visits a week serve that many users per week of their visit interval; a help
        # desk's capacity counts cases at a time (interval 1)
        self.capacity_units = self.svc.capacity * np.where(
            self.svc.type == CHILDCARE, DAYS_PER_WEEK, self.svc.visit_interval_weeks
        ).astype(np.int64)
        self.episode_weeks = self.scenario.provision["admin_help"].episode_weeks
        self.problem_gap_weeks = self.scenario.population.admin_problem_gap_weeks
        self.svc_columns = self._service_columns()
        self.desk = self._desk()
        self.fee_tables = fees.fee_tables(self.schedules)
        self.barrier_params = self._barrier_params()
        self.type_bounds = self._type_bounds()
        self.cand_columns = Candidates(
            indptr=tuple(np.ascontiguousarray(a, dtype=np.int64) for a in self.cand.indptr),
            service=tuple(np.ascontiguousarray(a, dtype=np.int32) for a in self.cand.service),
            minutes=tuple(np.ascontiguousarray(a, dtype=np.int16) for a in self.cand.minutes),
            nearest_service=self.cand.nearest_service,
            nearest_minutes=self.cand.nearest_minutes,
        )
        self.first_contact_informs = np.isin(SERVICE_TYPES, info.first_contact_informs)
        most_ties = self.families.ties.shape[1]  # ties can grow up to the limit
        self.wom_probability = word_of_mouth_probability(info.wom_prob_per_tie_week, most_ties)
        self.outreach_tie_probability = word_of_mouth_probability(info.outreach_tie_prob, most_ties)
        self.information_channels = self._information_channels()
        self.behaviour = self._behaviour()
        self.life_course_params = self._life_course_params()
        n = self.families.size
        self.preferred = Preferred(
            service=np.full((n, N_TYPES), -1, dtype=np.int32),
            minutes=np.zeros((n, N_TYPES), dtype=np.int32),
            none_eligible=np.zeros((n, N_TYPES), dtype=bool),
        )
        # travel minutes to the service each (family, type) waits for or uses: set when the
        # family applies (its candidate's minutes), valid while waitlisted or enrolled
        self.service_minutes = np.zeros((n, N_TYPES), dtype=np.int16)
        # travel minutes to each centre of a registration (valid while waitlisted)
        self.registered_minutes = np.zeros(self.families.registered.shape, dtype=np.int16)
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
                capacity_units=self.capacity_units,
            )
        )
        self.last: dict[str, float] = {}
        self.counters: dict[str, int] = {}
        # the adaptive policy reads the barrier log of every week, burn-in included
        self.adaptive = AdaptivePolicy(self) if self.scenario.policy.adaptive else None

    # ----------------------------------------------------------------------------------
    # helpers over the current state

    @property
    def week(self) -> int:
        """The week in progress (0 first): read from the clock the engine was given, else
        the engine's own count of the weeks ended (between weeks, the next one)."""
        return self._clock() if self._clock is not None else self._weeks

    def tie_users(self) -> np.ndarray:
        """users[f, t]: how many of f's ties use type t (int64). The full product once, then
        kept up to date from the families whose use changed (information.update_tie_users)."""
        f = self.families
        if self._users is None:
            self._using = f.status == ENROLLED
            self._users = tie_user_counts(tie_matrix(f.ties, f.tie_count), self._using)
        else:
            update_tie_users(f.status, self._using, f.ties, f.tie_count, self._users)
        return self._users

    def _kept_tie_users(self) -> tuple[np.ndarray, np.ndarray]:
        """The recorded use and tie-user counts that a change of ties must keep exact (both
        empty before tie_users has first been asked for)."""
        if self._users is None or self._using is None:
            return np.zeros((0, N_TYPES), dtype=bool), np.zeros((0, N_TYPES), dtype=np.int64)
        return self._using, self._users

    def _add_ties(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Add ties (a[i], b[i]) in that order (sim.rules.ties.add_ties); the outcome counts."""
        f = self.families
        outcome = np.zeros(len(TIE_OUTCOMES), dtype=np.int64)
        using, users = self._kept_tie_users()
        add_ties(
            np.ascontiguousarray(a, dtype=np.int64),
            np.ascontiguousarray(b, dtype=np.int64),
            f.ties,
            f.tie_count,
            using,
            users,
            outcome,
        )
        return outcome

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
        need[:, HEALTH] = ~f.private_health & (age >= 0) & (age < pop.health_need_until_age_weeks)
        need[:, PARENTING] = (
            f.parenting_need & (age >= 0) & (age < pop.parenting_need_until_age_weeks)
        )
        # the help desk's need: an administrative problem open now (episodes: one ends with
        # its episode of help, the next opens some weeks later, Engine.end_episodes)
        need[:, ADMIN_HELP] = f.admin_need & (f.admin_problem_week <= self.week)
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
        decisions.enrolled_hubs(self.family_columns(), self.svc_columns, out)
        return out

    def enrolled_counts(self) -> np.ndarray:
        f = self.families
        mask = f.status == ENROLLED
        return np.bincount(f.service[mask], minlength=self.svc.size).astype(np.int64)

    def used_units(self) -> np.ndarray:
        """Units in use per service: childcare days, users of every other type."""
        out = np.zeros(self.svc.size, dtype=np.int64)
        used_units(self.family_columns(), out)
        return out

    def free_units(self) -> np.ndarray:
        """Units free per service now (never below zero)."""
        return np.maximum(self.capacity_units - self.used_units(), 0)

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
        own = {"capacity_units": self.capacity_units}
        return ServiceColumns(
            **{
                name: np.ascontiguousarray(own[name] if name in own else getattr(s, name))
                for name in ServiceColumns._fields
            }
        )

    def _desk(self) -> Desk:
        """Each type's registration desk applies its public provision's priority rule (C22)."""
        provision = self.scenario.provision
        specs = [provision[name] for name in SERVICE_TYPES]
        return Desk(
            rule=np.array([PRIORITY[p.priority] for p in specs], dtype=np.int64),
            means_line_q=np.array(
                [cents(p.means_test_line_eur_year) * INCOME_SCALE for p in specs], dtype=np.int64
            ),
            rank_min=np.array([1.0 - p.priority_deprived_share for p in specs]),
        )

    def _information_channels(self) -> InformationChannels:
        info = self.scenario.information
        return InformationChannels(
            first_contact_reach=info.first_contact_reach,
            first_contact_interpreter=self.first_contact_interpreter,
            outreach_interpreter=info.interpreter_comprehension
            if info.outreach_interpreters
            else 0.0,
            informs=self.first_contact_informs,
            wom_probability=self.wom_probability,
            outreach_tie_probability=self.outreach_tie_probability,
            referral_prob=info.referral_prob_week,
            hub_referral_prob=self.scenario.hubs.referral_prob_week,
            hub_has_type=self.hub_has_type,
            coordinator=self.coordinator,
        )

    def _behaviour(self) -> Behaviour:
        beh = self.scenario.behaviour
        return Behaviour(
            dropout_base=beh.dropout_base_week,
            dropout_slope=beh.dropout_barrier_slope,
            patience_weeks=beh.waitlist_patience_weeks,
            cooldown_weeks=beh.cooldown_weeks,
            trust_gain=beh.trust_gain_enrolled_week,
            trust_loss=beh.trust_loss_rejection,
            fit_gain=beh.fit_gain_enrolled_week,
            wom_fit_gain=self.scenario.information.wom_fit_gain,
        )

    def _life_course_params(self) -> LifeCourse:
        pop = self.scenario.population
        # the age (weeks) at which each type's need ends (-1: it does not end with age)
        need_ends_at = np.full(N_TYPES, -1, dtype=np.int64)
        need_ends_at[CHILDCARE] = pop.childcare_exit_age_weeks
        need_ends_at[HEALTH] = pop.health_need_until_age_weeks
        need_ends_at[PARENTING] = pop.parenting_need_until_age_weeks
        return LifeCourse(
            need_ends_at=need_ends_at,
            min_birth_spacing_weeks=pop.min_birth_spacing_weeks,
            conception_hazard=pop.next_birth_hazard_week,
        )

    def _barrier_params(self) -> BarrierParams:
        info = self.scenario.information
        travel = self.scenario.travel
        return BarrierParams(
            factor_tenths=self.factor_tenths,
            hub_stigma_factor=float(self.scenario.hubs.stigma_factor),
            hub_trust_carryover=float(self.scenario.hubs.trust_carryover),
            interpreter_comprehension=float(info.interpreter_comprehension),
            broker_comprehension_gain=float(info.broker_comprehension_gain),
            car_cents_per_minute=cents(travel.car_cost_eur_per_minute),
            transit_fare_cents=cents(travel.transit_fare_eur_trip),
            tolerance_pct=tolerance_percent(self.scenario),
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
            interval=np.ones(N_TYPES, dtype=np.int64),
            extended=np.zeros(N_TYPES, dtype=bool),
            hours_weight=np.zeros(N_TYPES),
            admin=np.zeros(N_TYPES),
            speaks=np.zeros((N_TYPES, s.speaks.shape[1]), dtype=bool),
            interpreter=np.zeros(N_TYPES),
            stigma=np.zeros(N_TYPES),
            trust_required=np.zeros(N_TYPES),
            quality=np.zeros(N_TYPES),
        )
        for t in range(N_TYPES):
            of = s.type == t
            bounds.schedules[t, : len(schedules[t])] = schedules[t]
            if not of.any():
                continue
            bounds.trips[t] = int(s.trips_per_week[of].min())
            bounds.interval[t] = int(s.visit_interval_weeks[of].max())
            bounds.extended[t] = bool(s.extended_hours[of].any())
            bounds.hours_weight[t] = s.hours_weight[of].min()
            bounds.admin[t] = 0.0 if (s.hub[of] != NO_HUB).any() else s.admin_complexity[of].min()
            bounds.speaks[t] = s.speaks[of].any(axis=0)
            bounds.interpreter[t] = (
                info.interpreter_comprehension if s.interpreters[of].any() else 0.0
            )
            bounds.stigma[t] = label[of].min()
            # a hub's users need less trust at its other services (trust carry-over)
            carry = np.where(s.hub[of] != NO_HUB, 1.0 - self.scenario.hubs.trust_carryover, 1.0)
            bounds.trust_required[t] = (s.trust_required[of] * carry).min()
            bounds.quality[t] = s.quality[of].max()
        return bounds

    # ----------------------------------------------------------------------------------
    # phase A

    def decide(self) -> Plan:
        """Phase A over last week's state, chunk by chunk: the week's inputs, then per chunk
        the information events, applications, exits and (when measured) the barrier log."""
        measuring = self.week >= self.burn_in or self.adaptive is not None
        need = self.needs()
        state = self._week_state(need)
        plan = self._empty_plan(need, measuring)
        contacts = self._contact_pools()
        fam = self.family_columns()
        hub_referrals = 0
        for rows in self._chunks():
            hub_referrals += self._hear_of_services(rows, fam, state, contacts, plan)
            self._choose_applications(rows, fam, state, plan)
            self._register_at_home_visit(rows, plan)
            self._choose_exits(rows, fam, state, plan)
            if measuring:
                self._log_preferred_barriers(rows, fam, state, plan)
        # a counter only (docking tests): referral events from a hub the family uses
        plan.counters["hub_referrals"] = hub_referrals
        return plan

    def _week_state(self, need: np.ndarray) -> WeekState:
        """What phase A reads of the week beyond the column store (`WeekState`)."""
        return WeekState(
            week=self.week,
            need=need,
            applicable=self.may_apply(need),
            enrolled_hub=self.enrolled_hubs(),
            tie_users=self.tie_users(),
            service_minutes=self.service_minutes,
            streams=rng.week_streams(self.seed, self.week),
            free_units=self.free_units(),
        )

    def _empty_plan(self, need: np.ndarray, measuring: bool) -> Plan:
        """A plan with no event and no decision yet; the barrier log only in measured weeks."""
        n = self.families.size
        choices = self.families.registered.shape[2]
        return Plan(
            new_aware=np.zeros((n, N_TYPES), dtype=bool),
            broker_contacted=np.zeros(n, dtype=bool),
            staff_contacted=np.zeros(n, dtype=bool),
            visited=np.zeros(n, dtype=bool),
            coordinated=np.zeros(n, dtype=bool),
            first_contact=np.zeros(n, dtype=bool),
            referred=np.zeros(n, dtype=bool),
            channel=np.full((n, N_TYPES), -1, dtype=np.int8),
            wom_heard=np.zeros((n, N_TYPES), dtype=bool),
            wom_aware=np.zeros((n, N_TYPES), dtype=bool),
            chosen=np.full((n, N_TYPES), NO_SERVICE, dtype=np.int32),
            chosen_minutes=np.zeros((n, N_TYPES), dtype=np.int16),
            chosen_registered=np.full((n, N_TYPES, choices), NO_SERVICE, dtype=np.int32),
            chosen_registered_minutes=np.zeros((n, N_TYPES, choices), dtype=np.int16),
            dropout=np.zeros((n, N_TYPES), dtype=bool),
            give_up=np.zeros((n, N_TYPES), dtype=bool),
            preferred_blocks=np.zeros(
                (n if measuring else 0, N_TYPES, len(DIMENSIONS)), dtype=bool
            ),
            empty_place=np.zeros((n if measuring else 0, N_TYPES), dtype=bool),
            need=need,
        )

    def _contact_pools(self) -> ContactPools:
        """Who outreach and the brokers may contact this week, and the chance of a contact:
        pools counted over everyone, before any chunking."""
        f = self.families
        pop = self.scenario.population
        age = f.youngest_age_weeks
        young = (age >= -pop.pregnancy_known_weeks) & (age < U3_WEEKS)
        # 'prior contact' as a municipality sees it: use of, or a waiting-list place at, a
        # service beyond the universal health consultation every newborn is offered
        in_service = (f.status == ENROLLED) | (f.status == WAITLISTED)
        in_service[:, HEALTH] = False
        info = self.scenario.information
        outreach_pool = young & ~_any_type(in_service)
        if info.outreach_targeting == "deprived_neighbourhoods":
            outreach_pool &= f.deprivation_rank >= 1.0 - info.outreach_deprived_share
        broker_pool = young & ~f.broker_contacted
        p_broker = np.array(
            [
                contact_probability(self.broker_capacity[li], broker_pool & (f.language == li))
                for li in range(len(self.languages))
            ]
        )
        return ContactPools(
            outreach_pool=outreach_pool,
            p_outreach=contact_probability(self.outreach_capacity, outreach_pool),
            broker_pool=broker_pool,
            p_broker=p_broker,
        )

    def _chunks(self) -> Iterator[np.ndarray]:
        """The rows of phase A, chunk by chunk (all at once without a chunk size)."""
        n = self.families.size
        step = n if not self.chunk_size else self.chunk_size
        for start in range(0, n, max(step, 1)):
            yield np.arange(start, min(n, start + step))

    def _hear_of_services(
        self,
        rows: np.ndarray,
        fam: FamilyColumns,
        state: WeekState,
        contacts: ContactPools,
        plan: Plan,
    ) -> int:
        """Information events into the plan; returns the referrals from a hub in use."""
        events = InformationEvents(
            new_aware=plan.new_aware,
            wom_heard=plan.wom_heard,
            wom_aware=plan.wom_aware,
            broker_contacted=plan.broker_contacted,
            staff_contacted=plan.staff_contacted,
            visited=plan.visited,
            coordinated=plan.coordinated,
            first_contact=plan.first_contact,
            referred=plan.referred,
            channel=plan.channel,
        )
        return channel_events(rows, fam, state, self.information_channels, contacts, events)

    def _choose_applications(
        self, rows: np.ndarray, fam: FamilyColumns, state: WeekState, plan: Plan
    ) -> None:
        """Each aware family with an open need picks the service it applies to."""
        decisions.applications(
            rows,
            fam,
            self.svc_columns,
            self.fee_tables,
            self.barrier_params,
            self.type_bounds,
            state,
            self.cand_columns,
            self._chosen(plan),
        )

    @staticmethod
    def _chosen(plan: Plan) -> Chosen:
        return Chosen(
            service=plan.chosen,
            minutes=plan.chosen_minutes,
            registered=plan.chosen_registered,
            registered_minutes=plan.chosen_registered_minutes,
        )

    def _register_at_home_visit(self, rows: np.ndarray, plan: Plan) -> None:
        """The preventive health service's home visit after birth (H4: visits at 2 and 6
        weeks) registers the child with the consultation service: a family it reached that
        has not registered itself is registered at its nearest consultation sites (the first
        `registration_choices` candidates, else the nearest site anywhere), whatever its own
        thresholds (H3: enrolment at the consultation bureaus of 91-98 %, 98.1 % for
        disadvantaged non-Belgian families)."""
        f = self.families
        visited = rows[
            plan.first_contact[rows]
            & ~f.private_health[rows]
            & (f.status[rows, HEALTH] == NONE)
            & (plan.chosen[rows, HEALTH] == NO_SERVICE)
            & (self.cand.nearest_service[rows, HEALTH] >= 0)
        ]
        indptr = self.cand.indptr[HEALTH]
        services, minutes = self.cand.service[HEALTH], self.cand.minutes[HEALTH]
        choices = plan.chosen_registered.shape[2]
        for r in visited:
            lo, hi = indptr[r], min(indptr[r + 1], indptr[r] + choices)
            if hi > lo:
                sites, mins = services[lo:hi], minutes[lo:hi]
            else:
                sites = self.cand.nearest_service[r : r + 1, HEALTH]
                mins = self.cand.nearest_minutes[r : r + 1, HEALTH]
            plan.chosen[r, HEALTH] = sites[0]
            plan.chosen_minutes[r, HEALTH] = mins[0]
            plan.chosen_registered[r, HEALTH, : len(sites)] = sites
            plan.chosen_registered_minutes[r, HEALTH, : len(sites)] = mins

    def _choose_exits(
        self, rows: np.ndarray, fam: FamilyColumns, state: WeekState, plan: Plan
    ) -> None:
        """Drop-outs from services in use and give-ups of waiting lists."""
        decisions.exits(
            rows,
            fam,
            self.svc_columns,
            self.fee_tables,
            self.barrier_params,
            self.behaviour,
            state,
            ExitFlags(dropout=plan.dropout, give_up=plan.give_up),
        )

    def _log_preferred_barriers(
        self, rows: np.ndarray, fam: FamilyColumns, state: WeekState, plan: Plan
    ) -> None:
        """The barrier log of every unmet need (measured weeks only)."""
        decisions.preferred_blocks(
            rows,
            fam,
            self.svc_columns,
            self.fee_tables,
            self.barrier_params,
            self.type_bounds,
            state,
            self.cand_columns,
            self.preferred,
            plan.preferred_blocks,
            plan.empty_place,
        )

    def set_preferred_targets(self, rows: np.ndarray) -> None:
        """The service the barrier log evaluates for each (family, type): the nearest
        candidate the family is eligible for; else, with no candidate in reach, the nearest
        of the type anywhere. Eligibility reads only the family's income, so this changes
        only when a new family takes the slot."""
        rows = np.asarray(rows, dtype=np.int64)
        decisions.nearest_eligible(
            rows, self.family_columns(), self.svc_columns, self.cand_columns, self.preferred
        )

    # ----------------------------------------------------------------------------------
    # phase B: the plan takes effect, in this order (FamilyAccessModel.step calls each)

    def information(self, plan: Plan) -> None:
        """1. Information: this week's new awareness, the broker, staff and coordinator
        contacts, the trust a broker's contact, an outreach visit or a referral adds, and an
        outreach worker's help with the next application."""
        f = self.families
        self._count(
            {
                "aware_events": int(plan.new_aware.sum()),
                "outreach_visits": int(plan.visited.sum()),
                "broker_contacts": int(plan.broker_contacted.sum()),
                "coordinator_assessments": int(plan.coordinated.sum()),
                "hub_referrals": plan.counters.get("hub_referrals", 0),
            }
        )
        f.aware |= plan.new_aware
        # a broker of the family's community and a referral by a service it uses raise its
        # trust (Kortrijk's trained advisers; warm referrals), each by gain x (1 - trust)
        info = self.scenario.information
        brokered = plan.broker_contacted
        f.trust[brokered] += info.broker_trust_gain * (1.0 - f.trust[brokered])
        # an outreach visit raises trust too, and walks the family through its next
        # application (KOALA's home visits; IAS focus groups)
        visited = plan.visited
        f.trust[visited] += info.outreach_trust_gain * (1.0 - f.trust[visited])
        if info.outreach_form_help:
            f.form_help |= visited
        # ... and invites it to a parenting meeting place; its ties hear of it next week
        fit = f.perceived_fit[visited, PARENTING]
        f.perceived_fit[visited, PARENTING] = fit + info.outreach_invitation_fit_gain * (1.0 - fit)
        f.visited_week[visited] = self.week
        referred = plan.referred
        f.trust[referred] += info.referral_trust_gain * (1.0 - f.trust[referred])
        f.broker_contacted |= plan.broker_contacted
        f.staff_contacted |= plan.staff_contacted
        f.coordinated |= plan.coordinated

    def settle(self, plan: Plan) -> None:
        """2.-5a. The decisions take effect: cooldowns end, drop-outs leave their service,
        requests that waited too long end without an offer, and this week's registrations
        join their desk's list."""
        settled = np.zeros(len(decisions.SETTLED_COUNTS), dtype=np.int64)
        decisions.settle_exits_and_applications(
            self.family_columns(),
            self.svc.hub,
            self.service_minutes,
            self.registered_minutes,
            ExitFlags(dropout=plan.dropout, give_up=plan.give_up),
            self._chosen(plan),
            self.behaviour,
            self.week,
            settled,
        )
        self._count(
            {
                name: int(value)
                for name, value in zip(decisions.SETTLED_COUNTS, settled, strict=True)
            }
        )

    def allocate(self, plan: Plan) -> None:
        """5b. Allocation: each type's desk goes through the requests of families ready to
        start, in its priority order, and offers each the first centre of its list with room
        for it after this week's exits (`sim.rules.allocation`); a ready newcomer without an
        offer stays on the list, or is rejected where none of its centres keeps one, and
        rejection lowers trust."""
        f = self.families
        week = self.week
        qr, qt = np.nonzero(f.status == WAITLISTED)
        ready = self.ready(qr, qt)
        rr, rt = qr[ready], qt[ready]
        desk = self.desk
        prio = priority_class(
            desk.rule[rt],
            f.employed[rr],
            f.income_q[rr] < desk.means_line_q[rt],
            f.deprivation_rank[rr],
            desk.rank_min[rt],
        )
        order = desk_order(self.seed, week, rt, f.key[rr], prio, f.applied_week[rr, rt])
        applied_now = f.applied_week[rr, rt] == week
        sums = np.zeros((N_TYPES, len(OFFER_SUMS)), dtype=np.int64)
        offers = Offers(
            decline_prob=self.scenario.behaviour.offer_decline_prob,
            week=week,
            decline_stream=rng.week_streams(self.seed, week).offer_decline,
        )
        declined = offer_places(
            rr[order].astype(np.int64),
            rt[order].astype(np.int64),
            self.family_columns(),
            self.registered_minutes,
            self.service_minutes,
            self.free_units(),
            offers,
            sums,
        )
        if week >= self.burn_in:
            self.accumulator.record_offers(sums)
        offered = f.status[rr, rt] == ENROLLED
        # a ready newcomer without an offer is rejected where none of its centres keeps a list
        listed = f.registered[rr, rt]
        keeps_list = ((listed != NO_SERVICE) & self.svc.waitlist[np.maximum(listed, 0)]).any(axis=1)
        rejected = applied_now & ~offered & ~keeps_list
        xr, xt = rr[rejected], rt[rejected]
        f.status[xr, xt] = REJECTED
        f.status_week[xr, xt] = week
        f.excluded_service[xr, xt] = f.service[xr, xt]
        # rejection lowers trust (DESIGN §2; IAS focus groups: 'they never say no' as what helps)
        np.subtract.at(f.trust, xr, self.scenario.behaviour.trust_loss_rejection * f.trust[xr])
        self._count(
            {
                "admissions": int(offered.sum()),
                "declined_offers": int(declined),
                "capacity_binding": int((~offered).sum()),
                "rejections": len(xr),
                "waitlisted": int((f.status == WAITLISTED).sum()),
                "requests_due": int(sums[:, OFFER_SUMS.index("due")].sum()),
                "requests_due_without_offer": int(
                    sums[:, OFFER_SUMS.index("due_without_offer")].sum()
                ),
            }
        )

    def experience(self, plan: Plan) -> None:
        """6. Experience: use raises trust and perceived fit; hearing from users raises fit."""
        experience.experience(self.family_columns(), plan.wom_heard, self.behaviour)

    def meet(self, plan: Plan) -> None:
        """6b. Attendance ties: each family enrolled at a childcare or parenting site, or at
        any service of a hub (the hub is one meeting place: families who meet there form
        ties), meets another member there with probability `attendance_tie_prob_week`, the
        partner a keyed pick among the place's other members in key order; a family is a
        member of a hub once, by the first type it uses there. The meetings become ties in
        (family key, type) order, never twice, within the limit."""
        f = self.families
        prob = self.scenario.population.attendance_tie_prob_week
        outcome = np.zeros(len(TIE_OUTCOMES), dtype=np.int64)
        n = 0
        rows, types = np.nonzero(f.status == ENROLLED)
        used = f.service[rows, types].astype(np.int64)
        hub = self.svc.hub[used]
        keep = (hub != NO_HUB) | np.isin(types, MEETING_TYPES)
        rows, types, used, hub = rows[keep], types[keep], used[keep], hub[keep]
        # a hub's place ids follow the services'
        sites = np.where(hub != NO_HUB, self.svc.size + hub.astype(np.int64), used)
        order = np.lexsort((types, rows, sites))
        rows, types, sites = rows[order], types[order], sites[order]
        once = np.ones(rows.size, dtype=bool)
        once[1:] = (sites[1:] != sites[:-1]) | (rows[1:] != rows[:-1])
        rows, types, sites = rows[once], types[once].astype(np.int64), sites[once]
        if prob > 0.0 and rows.size > 1:
            order = np.lexsort((f.key[rows], sites))  # by place, then family key
            rows, types, sites = rows[order], types[order], sites[order]
            site_start = np.flatnonzero(np.r_[True, sites[1:] != sites[:-1], True])
            met = np.empty(rows.size, dtype=np.int64)
            chosen = np.empty(rows.size, dtype=np.int64)
            n = attendance_partners(
                site_start.astype(np.int64),
                rows.astype(np.int64),
                types,
                f.key,
                prob,
                np.uint64(rng.prefix_bits(self.seed, "attendance_tie", self.week)),
                np.uint64(rng.prefix_bits(self.seed, "attendance_partner", self.week)),
                met,
                chosen,
            )
            met, chosen = met[:n], chosen[:n]
            first = np.lexsort((types[met], f.key[rows[met]]))  # by family key, then type
            outcome = self._add_ties(rows[met][first], chosen[first])
        self._count(
            {
                "attendance_meetings": int(n),
                "ties_formed_attendance": int(outcome[TIE_FORMED]),
                "ties_over_limit": int(outcome[TIE_OVER_LIMIT]),
            }
        )

    def measure(self, plan: Plan) -> None:
        """7. Measurement: a measured week is recorded; every week's aggregates are kept as
        `last` (the time series)."""
        need = plan.need if plan.need is not None else self.needs()
        if self.week >= self.burn_in:
            self.accumulator.record(
                need,
                plan.wom_aware,
                plan.new_aware,
                plan.preferred_blocks,
                plan.empty_place,
                plan.channel,
            )
        self.last = self.accumulator.snapshot(self.week)
        if self.adaptive is not None:
            # 7b. the adaptive policy: this week's signals; a review at a quarter's end
            self.adaptive.week(plan, need)
            self.last.update(self.adaptive.snapshot())

    def _count(self, counters: dict[str, int]) -> None:
        for key, value in counters.items():
            self.counters[key] = self.counters.get(key, 0) + value

    def life_course(self) -> None:
        """8. Life course: ageing, the end of age-bound needs, births, conceptions, and new
        families in the slots whose youngest has left the 0-12 range. It ends the week: an
        engine without a clock counts it."""
        f = self.families
        pop = self.scenario.population
        seed, week = self.seed, self.week
        self.end_episodes()
        # ageing, the end of age-bound needs, births, and a next pregnancy once the youngest
        # is old enough (one child in the childcare range)
        conceive = np.zeros(f.size, dtype=bool)
        births = life_course.age_one_week(
            self.family_columns(), self.life_course_params, rng.week_streams(seed, week), conceive
        )
        rows = np.flatnonzero(conceive)
        if rows.size:
            f.youngest_age_weeks[rows] = -pop.gestation_weeks
            plan = birth_plan(
                self.scenario, seed, f.key[rows], week, f.employed[rows], f.is_arope[rows]
            )
            f.wants_formal_care[rows] = plan["wants_formal_care"]
            f.care_start_age_weeks[rows] = plan["care_start_age_weeks"]
            f.care_days[rows] = plan["care_days"]
            f.private_health[rows] = plan["private_health"]
            for t in (CHILDCARE, HEALTH):
                f.status[rows, t] = NONE
                f.excluded_service[rows, t] = NO_SERVICE

        # the youngest leaves the 0-12 range: a new family takes the slot
        renew = np.flatnonzero(f.youngest_age_weeks >= pop.youngest_child_max_age_weeks)
        if renew.size:
            if week >= self.burn_in:
                self.accumulator.close(renew)
            self._renew(renew)
        else:
            self._count({"ties_redrawn": 0, "ties_over_limit": 0})
        self._count({"births": births, "conceptions": int(rows.size), "renewals": int(renew.size)})
        if self._clock is None:
            self._weeks += 1

    def end_episodes(self) -> None:
        """A help-desk episode ends after `episode_weeks` weeks of help (provision.admin_help;
        0: help lasts while the need does): the family leaves the desk, its problem is solved
        and its next one opens a keyed number of weeks later (uniform from 1 to 2 x
        population.admin_problem_gap_weeks - 1, stream `admin_problem_gap`)."""
        f = self.families
        week = self.week
        ended = 0
        if self.episode_weeks > 0:
            rows = np.flatnonzero(
                (f.status[:, ADMIN_HELP] == ENROLLED)
                & (week - f.status_week[:, ADMIN_HELP] + 1 >= self.episode_weeks)
            )
            ended = rows.size
            if ended:
                bits = rng.keyed_bits(self.seed, "admin_problem_gap", week, f.key[rows], ADMIN_HELP)
                gap = 1 + (bits % np.uint64(2 * self.problem_gap_weeks - 1)).astype(np.int64)
                f.status[rows, ADMIN_HELP] = NONE
                f.status_week[rows, ADMIN_HELP] = week
                f.excluded_service[rows, ADMIN_HELP] = NO_SERVICE
                f.admin_problem_week[rows] = (week + 1 + gap).astype(np.int32)
        self._count({"episodes_ended": int(ended)})

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
        self._redraw_ties(rows)

    def _redraw_ties(self, rows: np.ndarray) -> None:
        """Ties belong to families, not slots: the previous families' ties go, in both
        directions, and each new family draws its own (population.redraw_ties, keyed by its
        key and the week), added in that draw's order."""
        f = self.families
        using, users = self._kept_tie_users()
        remove_ties_of(
            np.ascontiguousarray(rows, dtype=np.int64), f.ties, f.tie_count, using, users
        )
        if self._tie_index is None:
            self._tie_index = TieIndex.of(f, self.scenario.population.tie_radius_cells)
        a, b = redraw_ties(self.scenario, self.seed, self._tie_index, f.key, rows, self.week)
        outcome = self._add_ties(a, b)
        self._count(
            {
                "ties_redrawn": int(outcome[TIE_FORMED]),
                "ties_over_limit": int(outcome[TIE_OVER_LIMIT]),
            }
        )

    def step(self) -> None:
        """One week of an engine run on its own (tests, benchmarks, the docking): the phases in
        the order of FamilyAccessModel.step, which runs the weeks of a model's engine
        (tests/test_model.py checks that both orders are the same)."""
        if self._clock is not None:
            raise RuntimeError("this engine's weeks are its model's: call model.step()")
        plan = self.decide()
        self.information(plan)
        self.settle(plan)
        self.allocate(plan)
        self.experience(plan)
        self.meet(plan)
        self.measure(plan)
        self.life_course()


def _any_type(values: np.ndarray) -> np.ndarray:
    """values.any(axis=1) for a [F, T] array, column by column (much faster for few types)."""
    out = values[:, 0].copy()
    for t in range(1, values.shape[1]):
        out |= values[:, t]
    return out
