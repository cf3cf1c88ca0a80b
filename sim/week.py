"""One week of simulated time over the column store, in two phases (DESIGN §2).

Phase A (`decide`) reads only last week's state and may run over any partition of the
families (chunks of 1, 7 or all give identical results): information events, applications,
drop-outs and give-ups. Phase B (`apply`) then changes the state in a fixed order:
awareness, cooldowns, drop-outs, give-ups, allocation, experience, measurement; `advance`
then runs the life course and moves the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim import rng
from sim.allocation import admit, priority_class
from sim.barriers import (
    PAIR_DIMENSIONS,
    PairInputs,
    admin_level,
    comprehension_of,
    cost_blocked,
    evaluate,
    fit_level,
    hours_level,
    stigma_level,
    weekly_fee_cents,
)
from sim.information import (
    contact_probability,
    tie_matrix,
    tie_user_counts,
    understood,
    word_of_mouth_pairs,
)
from sim.metrics import WindowAccumulator
from sim.population import (
    ADMIN_HELP,
    CHILDCARE,
    DROPPED,
    ENROLLED,
    GENERATION_BITS,
    HEALTH,
    N_TYPES,
    NO_SERVICE,
    NONE,
    PARENTING,
    REJECTED,
    WAITLISTED,
    assign_quintiles,
    birth_plan,
    draw_generation,
)
from sim.scenario import DIMENSIONS, SERVICE_TYPES
from sim.services import NO_HUB
from sim.travel import travel_minutes, trip_cost_cents
from sim.world import World

_DIM_INDEX = {name: i for i, name in enumerate(DIMENSIONS)}
_PAIR_TO_DIM = np.array([_DIM_INDEX[d] for d in PAIR_DIMENSIONS])


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
    """The fast engine: vectorised weekly rules over one World's column store."""

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
        self.type_bounds = self._type_bounds()
        n = self.families.size
        self.pref_service = np.full((n, N_TYPES), -1, dtype=np.int32)
        self.pref_minutes = np.zeros((n, N_TYPES), dtype=np.int32)
        self.none_eligible = np.zeros((n, N_TYPES), dtype=bool)
        # travel minutes to the service each (family, type) waits for or uses: set when the
        # family applies (its candidate's minutes), valid while waitlisted or enrolled
        self.service_minutes = np.zeros((n, N_TYPES), dtype=np.int16)
        self.set_preferred_targets(np.arange(n))
        self.accumulator = WindowAccumulator(self)
        self.last: dict[str, float] = {}
        self.counters: dict[str, int] = {}

    # ----------------------------------------------------------------------------------
    # helpers over the current state

    def ages(self) -> np.ndarray:
        return self.families.youngest_age_weeks

    def tie_users(self, using: np.ndarray) -> np.ndarray:
        """users[f, t]: how many of f's ties use type t (int64). Kept up to date from the
        families whose use changed since the last call, which are few in a week; the sums
        are exact integers, so this equals the full product."""
        if self._users is None:
            self._users = tie_user_counts(self.ties, using)
            self._using = using.copy()
            return self._users
        changed = np.flatnonzero((using != self._using).any(axis=1))
        if changed.size:
            delta = using[changed].astype(np.int64) - self._using[changed].astype(np.int64)
            starts = self.ties.indptr[changed]
            counts = self.ties.indptr[changed + 1] - starts
            owner = np.repeat(np.arange(changed.size), counts)
            flat = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(owner.size)
            # ties are undirected: a changed family changes the counts of its neighbours
            np.add.at(self._users, self.ties.indices[flat], delta[owner])
            self._using[changed] = using[changed]
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
        f = self.families
        hub = np.where(f.service >= 0, self.svc.hub[np.maximum(f.service, 0)], NO_HUB)
        return np.where(f.status == ENROLLED, hub, NO_HUB)

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

    def acceptable(
        self,
        rows: np.ndarray,
        t: int,
        services: np.ndarray,
        minutes: np.ndarray,
        enrolled_hub: np.ndarray,
    ) -> np.ndarray:
        """`evaluate(pair_inputs(...)).acceptable` for pairs of one type, computed one
        dimension at a time on the pairs still acceptable: the same formulas on the same
        values, without gathering the inputs of pairs already blocked."""
        f = self.families
        s = self.svc
        info = self.scenario.information
        ok = np.zeros(len(rows), dtype=bool)
        i = np.flatnonzero(minutes <= f.max_travel_minutes[rows])

        def keep(blocked: np.ndarray) -> np.ndarray:
            return i[~blocked]

        r, sv = rows[i], services[i]
        i = keep(fit_level(f.perceived_fit[r, t], s.quality[sv]) < f.fit_threshold[r])
        r, sv = rows[i], services[i]
        in_hub = s.hub[sv] != NO_HUB
        label = s.stigma_label[sv] * np.where(in_hub, self.scenario.hubs.stigma_factor, 1.0)
        i = keep(stigma_level(label, f.stigma_sensitivity[r], f.trust[r]) > f.stigma_tolerance[r])
        r, sv = rows[i], services[i]
        comp = comprehension_of(
            s.speaks[sv, f.language[r]],
            f.proficiency[r],
            np.where(s.interpreters[sv], info.interpreter_comprehension, 0.0),
            np.where(f.broker_contacted[r], info.broker_comprehension_gain, 0.0),
        )
        i = keep(1.0 - comp > f.language_tolerance[r])
        r, sv = rows[i], services[i]
        hours = hours_level(f.atypical_hours[r], s.extended_hours[sv], f.hours_severity[r])
        i = keep(hours > f.hours_tolerance[r])
        r, sv = rows[i], services[i]
        hub = s.hub[sv]
        intake_done = (hub != NO_HUB) & (
            (enrolled_hub[r] == hub[:, None]).any(axis=1) | f.coordinated[r]
        )
        complexity = np.where(intake_done, 0.0, s.admin_complexity[sv])
        i = keep(admin_level(complexity, f.paperwork[r]) > f.admin_tolerance[r])
        r, sv = rows[i], services[i]
        fee = weekly_fee_cents(self.schedules, s.schedule[sv], f.income_q[r])
        weekly = fee + s.trips_per_week[sv].astype(np.int64) * self.trip_cents(r, minutes[i])
        i = keep(cost_blocked(weekly, f.income_q[r], self.factor_tenths, f.cost_share_bp[r]))
        ok[i] = True
        return ok

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

    def could_accept(self, rows: np.ndarray, types: np.ndarray) -> np.ndarray:
        """False where no candidate of the type can be acceptable to the family: the barriers
        evaluated with the best value of every service attribute among all services of the
        type (cheapest fee, fewest trips, nearest candidate, extended hours, waived intake,
        the family's language, least stigma, best quality). Every barrier grows monotonically
        with each attribute, so this only skips pairs the full evaluation would reject."""
        f = self.families
        b = self.type_bounds
        has = np.zeros(len(rows), dtype=bool)
        fee = np.zeros(len(rows), dtype=np.int64)
        for t in range(N_TYPES):
            sel = np.flatnonzero(types == t)
            if sel.size == 0:
                continue
            has[sel] = self.cand.count(t, rows[sel]) > 0
            schedules = b["schedules"][t]
            if schedules:
                fee[sel] = np.min(
                    [self.schedules[i].weekly_fee_cents(f.income_q[rows[sel]]) for i in schedules],
                    axis=0,
                )
        minutes = self.cand.nearest_minutes[rows, types]
        inputs = self._inputs(
            rows,
            types,
            weekly_cost_cents=fee + b["trips"][types] * self.trip_cents(rows, minutes),
            minutes=minutes,
            extended_hours=b["extended"][types],
            admin_complexity=b["admin"][types],
            speaks_language=b["speaks"][types, f.language[rows]],
            interpreter_comprehension=b["interpreter"][types],
            stigma_label=b["stigma"][types],
            quality=b["quality"][types],
        )
        return has & evaluate(inputs).acceptable

    def _type_bounds(self) -> dict:
        """Per type, the most favourable value of each service attribute (see could_accept)."""
        s = self.svc
        info = self.scenario.information
        label = s.stigma_label * np.where(s.hub != NO_HUB, self.scenario.hubs.stigma_factor, 1.0)
        n_lang = s.speaks.shape[1]
        out = {
            "schedules": [],
            "trips": np.zeros(N_TYPES, dtype=np.int64),
            "extended": np.zeros(N_TYPES, dtype=bool),
            "admin": np.zeros(N_TYPES),
            "speaks": np.zeros((N_TYPES, n_lang), dtype=bool),
            "interpreter": np.zeros(N_TYPES),
            "stigma": np.zeros(N_TYPES),
            "quality": np.zeros(N_TYPES),
        }
        for t in range(N_TYPES):
            of = s.type == t
            out["schedules"].append([int(i) for i in np.unique(s.schedule[of])])
            if not of.any():
                continue
            out["trips"][t] = int(s.trips_per_week[of].min())
            out["extended"][t] = bool(s.extended_hours[of].any())
            out["admin"][t] = 0.0 if (s.hub[of] != NO_HUB).any() else s.admin_complexity[of].min()
            out["speaks"][t] = s.speaks[of].any(axis=0)
            out["interpreter"][t] = (
                info.interpreter_comprehension if s.interpreters[of].any() else 0.0
            )
            out["stigma"][t] = label[of].min()
            out["quality"][t] = s.quality[of].max()
        return out

    def eligible(self, rows: np.ndarray, services: np.ndarray) -> np.ndarray:
        """Means-tested services admit only families below the line; families know their
        income, so ineligible services are not candidates for them."""
        s = self.svc
        return ~s.means_tested[services] | (self.families.income_q[rows] < s.means_line_q[services])

    # ----------------------------------------------------------------------------------
    # phase A

    def decide(self) -> Plan:
        f = self.families
        n = f.size
        week = self.week
        need = self.needs()
        applicable = self.may_apply(need)
        enrolled = f.status == ENROLLED
        using = enrolled.copy()
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
            preferred_blocks=np.zeros((n, N_TYPES, len(DIMENSIONS)), dtype=bool)
            if measuring
            else np.zeros((0, N_TYPES, len(DIMENSIONS)), dtype=bool),
            need=need,
        )
        # pools for contact channels: counted over everyone, before any chunking
        pop = self.scenario.population
        age = f.youngest_age_weeks
        young = (age >= -pop.pregnancy_known_weeks) & (age < 156)
        # 'prior contact' as a municipality sees it: use of, or a waiting-list place at, a
        # service beyond the universal health consultation every newborn is offered
        in_service = (f.status == ENROLLED) | (f.status == WAITLISTED)
        in_service[:, HEALTH] = False
        in_contact = in_service.any(axis=1)
        info = self.scenario.information
        outreach_pool = young & ~in_contact
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
        users = self.tie_users(using)
        step = n if not self.chunk_size else self.chunk_size
        for start in range(0, n, max(step, 1)):
            rows = np.arange(start, min(n, start + step))
            self._information(
                rows,
                plan,
                need,
                users[rows],
                enrolled_hub,
                outreach_pool,
                p_outreach,
                broker_pool,
                p_broker,
            )
            self._applications(rows, plan, applicable, enrolled_hub)
            self._exits(rows, plan, enrolled_hub)
            if measuring:
                self._preferred(rows, plan, need, enrolled_hub)
        return plan

    def _information(
        self,
        rows,
        plan,
        need,
        users,
        enrolled_hub,
        outreach_pool,
        p_outreach,
        broker_pool,
        p_broker,
    ):
        f = self.families
        info = self.scenario.information
        seed, week = self.seed, self.week
        keys = f.key[rows]
        aware = f.aware[rows]
        comp_local = np.where(f.is_local_language[rows], 1.0, f.proficiency[rows])
        events = np.zeros((len(rows), N_TYPES), dtype=bool)

        # Keyed draws are made only for the families a channel can reach: a draw depends on
        # its keys alone, so skipping the others changes no one's number.

        # universal first contact in the week of birth (EVIDENCE H1-H4)
        reached = _draw_below(
            f.youngest_age_weeks[rows] == 0,
            lambda i: rng.uniform(seed, "first_contact", week, keys[i]) < info.first_contact_reach,
        )
        events[:, HEALTH] |= reached
        informs = np.zeros(N_TYPES, dtype=bool)
        informs[[SERVICE_TYPES.index(t) for t in info.first_contact_informs]] = True
        comp_fc = np.maximum(comp_local, self.first_contact_interpreter)
        i = np.flatnonzero(reached)
        events[i] |= informs[None, :] & understood(
            seed, "first_contact_understood", week, keys[i], comp_fc[i]
        )

        # word of mouth from ties who used the type last week
        plan.wom_heard[rows] = users > 0
        # an event only matters for a type the family does not know yet
        wr, wt = np.nonzero((users > 0) & ~aware)
        wom = np.zeros((len(rows), N_TYPES), dtype=bool)
        wom[wr, wt] = word_of_mouth_pairs(
            seed, week, keys[wr], wt, users[wr, wt], info.wom_prob_per_tie_week
        )
        plan.wom_aware[rows] = wom
        events |= wom

        # outreach home visits: only what the municipality observes decides who is visited
        visited = _draw_below(
            outreach_pool[rows], lambda i: rng.uniform(seed, "outreach", week, keys[i]) < p_outreach
        )
        i = np.flatnonzero(visited)
        events[i] |= understood(seed, "outreach_understood", week, keys[i], comp_local[i])

        # community brokers inside their own language group (comprehension 1)
        lang = f.language[rows]
        brokered = _draw_below(
            broker_pool[rows],
            lambda i: rng.uniform(seed, "broker", week, keys[i]) < p_broker[lang[i]],
        )
        events |= brokered[:, None]
        plan.broker_contacted[rows] = brokered
        plan.staff_contacted[rows] = visited | brokered

        # referrals from services in use: warm inside a hub, weak between separate services
        hubs_of_row = enrolled_hub[rows]  # [n, T]
        any_enrolled = (f.status[rows] == ENROLLED).any(axis=1)
        warm = np.zeros((len(rows), N_TYPES), dtype=bool)
        for t in range(N_TYPES):
            h = hubs_of_row[:, t]
            has = h != NO_HUB
            warm[has] |= self.hub_has_type[h[has]]
        p_ref = np.where(warm, self.scenario.hubs.referral_prob_week, info.referral_prob_week)
        referred = np.zeros((len(rows), N_TYPES), dtype=bool)
        i = np.flatnonzero(any_enrolled)
        u_ref = rng.uniform(seed, "referral", week, keys[i, None], np.arange(N_TYPES)[None, :])
        referred[i] = u_ref < p_ref[i]
        events |= referred
        # a counter only (docking tests): referral events from a hub the family uses
        plan.counters["hub_referrals"] = plan.counters.get("hub_referrals", 0) + int(
            (referred & warm).sum()
        )

        # a hub coordinator assesses needs and connects the family to every service it needs
        # (Iceland's Prosperity Act; EU WG ECEC)
        if self.coordinator:
            in_hub = (hubs_of_row != NO_HUB).any(axis=1)
            assessed = in_hub & ~f.coordinated[rows]
            plan.coordinated[rows] = assessed
            events |= assessed[:, None] & need[rows]
        plan.new_aware[rows] = events & ~aware

    def first_match(self, t: int, rows: np.ndarray, test) -> np.ndarray:
        """For each family row, the index (into type t's candidate arrays) of its first
        candidate in (minutes, id) order that passes `test(rows, services, minutes)`, or -1.

        Candidates are tried in blocks of ranks that double in width, so a family whose
        nearest candidate passes costs one evaluation, and one none passes costs about two
        passes over its list."""
        indptr = self.cand.indptr[t]
        start = indptr[rows]
        count = indptr[rows + 1] - start
        found = np.full(len(rows), -1, dtype=np.int64)
        todo = np.flatnonzero(count > 0)
        lo, width = 0, 2
        while todo.size:
            take = np.minimum(count[todo] - lo, width)
            total = int(take.sum())
            owner = np.repeat(todo, take)
            flat = start[owner] + lo + np.arange(total) - np.repeat(np.cumsum(take) - take, take)
            ok = test(rows[owner], self.cand.service[t][flat], self.cand.minutes[t][flat])
            hit = np.flatnonzero(ok)
            if hit.size:
                first = hit[np.r_[True, owner[hit][1:] != owner[hit][:-1]]]
                found[owner[first]] = flat[first]
            todo = todo[(found[todo] < 0) & (count[todo] > lo + width)]
            lo += width
            width *= 2
        return found

    def _applications(self, rows, plan, applicable, enrolled_hub):
        """Apply to the best acceptable candidate: least travel time, ties by service id."""
        f = self.families
        active = applicable[rows] & f.aware[rows] & (f.status[rows] == NONE)
        pr, pt = np.nonzero(active)
        if pr.size == 0:
            return
        fam = rows[pr]
        possible = self.could_accept(fam, pt)
        for t in range(N_TYPES):
            sel = np.flatnonzero(possible & (pt == t))
            if sel.size == 0:
                continue

            def acceptable(r, svc, mins, t=t):
                ok = self.eligible(r, svc) & (svc != f.excluded_service[r, t])
                types = np.full(len(r), t)
                # before the child can start, only services that keep a waiting list register
                ok &= self.ready(r, types) | self.svc.waitlist[svc]
                idx = np.flatnonzero(ok)
                ok[idx] = self.acceptable(r[idx], t, svc[idx], mins[idx], enrolled_hub)
                return ok

            found = self.first_match(t, fam[sel], acceptable)
            hit = found >= 0
            plan.chosen[fam[sel][hit], t] = self.cand.service[t][found[hit]]
            plan.chosen_minutes[fam[sel][hit], t] = self.cand.minutes[t][found[hit]]

    def _exits(self, rows, plan, enrolled_hub):
        """Drop-out with a hazard that grows with felt barriers; give-up after waiting too long."""
        f = self.families
        beh = self.scenario.behaviour
        seed, week = self.seed, self.week
        er, et = np.nonzero(f.status[rows] == ENROLLED)
        if er.size:
            fam = rows[er]
            svc = f.service[fam, et]
            mins = self.service_minutes[fam, et]
            trips = self.trip_cents(fam, mins)
            felt = evaluate(self.pair_inputs(fam, et, svc, mins, trips, enrolled_hub)).felt
            hazard = np.minimum(1.0, beh.dropout_base_week + beh.dropout_barrier_slope * felt)
            u = rng.uniform(seed, "dropout", week, f.key[fam], et)
            drop = u < hazard
            plan.dropout[fam[drop], et[drop]] = True
        wr, wt = np.nonzero(f.status[rows] == WAITLISTED)
        if wr.size:
            fam = rows[wr]
            ready = self.ready(fam, wt)
            age = f.youngest_age_weeks[fam]
            ready_since = np.where(
                wt == CHILDCARE, week - (age - f.care_start_age_weeks[fam]), f.status_week[fam, wt]
            )
            waited_from = np.maximum(ready_since, f.status_week[fam, wt])
            gone = ready & (week - waited_from >= beh.waitlist_patience_weeks)
            plan.give_up[fam[gone], wt[gone]] = True

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
        for t in range(N_TYPES):
            found = self.first_match(t, rows, lambda r, svc, _mins: self.eligible(r, svc))
            hit = found >= 0
            has = self.cand.count(t, rows) > 0
            self.pref_service[rows, t] = np.where(
                hit, self.cand.service[t][np.maximum(found, 0)], self.cand.nearest_service[rows, t]
            )
            self.pref_minutes[rows, t] = np.where(
                hit, self.cand.minutes[t][np.maximum(found, 0)], self.cand.nearest_minutes[rows, t]
            )
            # candidates in reach, but none the family is eligible for: no place for them
            self.none_eligible[rows, t] = has & ~hit

    def _preferred(self, rows, plan, need, enrolled_hub):
        """Barrier log: every dimension blocking the preferred candidate — the nearest eligible
        service within reach, else the nearest of the type anywhere (travel blocks)."""
        f = self.families
        unmet = need[rows] & (f.status[rows] != ENROLLED)
        ur, ut = np.nonzero(unmet)
        if ur.size == 0:
            return
        fam = rows[ur]
        pref = self.pref_service[fam, ut]
        has_pref = pref >= 0
        blocks = np.zeros((len(fam), len(DIMENSIONS)), dtype=bool)
        sel = np.flatnonzero(has_pref)
        if sel.size:
            r, t = fam[sel], ut[sel]
            minutes = self.pref_minutes[r, t]
            b = evaluate(
                self.pair_inputs(
                    r, t, pref[sel], minutes, self.trip_cents(r, minutes), enrolled_hub
                )
            )
            blocks[np.ix_(sel, _PAIR_TO_DIM)] = b.blocks
        # no service of the type in the whole city, or none open to the family: no place
        blocks[~has_pref | self.none_eligible[fam, ut], _DIM_INDEX["capacity"]] = True
        plan.preferred_blocks[fam, ut] = blocks

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

        # 2. cooldowns end
        cooled = ((f.status == REJECTED) | (f.status == DROPPED)) & (
            f.status_week + beh.cooldown_weeks <= week
        )
        f.status[cooled] = NONE

        # 3. drop-outs, 4. give-ups
        dr, dt = np.nonzero(plan.dropout & (f.status == ENROLLED))
        f.status[dr, dt] = DROPPED
        f.status_week[dr, dt] = week
        f.excluded_service[dr, dt] = f.service[dr, dt]
        gr, gt = np.nonzero(plan.give_up & (f.status == WAITLISTED))
        f.status[gr, gt] = NONE
        f.excluded_service[gr, gt] = f.service[gr, gt]
        counters["dropouts"] = len(dr)
        counters["give_ups"] = len(gr)

        # 5. allocation: new applications join the queue, then every ready queued family is
        # ranked; places free after this week's exits
        ar, at = np.nonzero((plan.chosen != NO_SERVICE) & (f.status == NONE))
        f.status[ar, at] = WAITLISTED
        f.service[ar, at] = plan.chosen[ar, at]
        self.service_minutes[ar, at] = plan.chosen_minutes[ar, at]
        f.applied_week[ar, at] = week
        f.status_week[ar, at] = week
        counters["applications"] = len(ar)
        counters["pre_birth_applications"] = int(
            ((at == CHILDCARE) & (f.youngest_age_weeks[ar] < 0)).sum()
        )
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
        enrolled = f.status == ENROLLED
        any_enrolled = enrolled.any(axis=1)
        f.trust[any_enrolled] += beh.trust_gain_enrolled_week * (1.0 - f.trust[any_enrolled])
        f.perceived_fit[enrolled] += beh.fit_gain_enrolled_week * (1.0 - f.perceived_fit[enrolled])
        heard = plan.wom_heard & ~enrolled
        f.perceived_fit[heard] += self.scenario.information.wom_fit_gain * (
            1.0 - f.perceived_fit[heard]
        )

        # 7. measurement
        if week >= self.burn_in:
            self.accumulator.record(plan)
        self.last = self.accumulator.snapshot()
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
        f.youngest_age_weeks += 1
        age = f.youngest_age_weeks
        ends = np.zeros((f.size, N_TYPES), dtype=bool)
        ends[:, CHILDCARE] = age >= pop.childcare_exit_age_weeks
        ends[:, HEALTH] = age >= pop.health_need_until_age_weeks
        ends[:, PARENTING] = age >= pop.parenting_need_until_age_weeks
        leaving = ends & (f.status != NONE)
        f.status[leaving] = NONE
        f.excluded_service[ends] = NO_SERVICE
        births = int((age == 0).sum())
        f.n_children[age == 0] += 1

        # a next pregnancy, once the youngest is old enough (one child in the childcare range)
        conceive = _draw_below(
            age >= pop.min_birth_spacing_weeks,
            lambda i: rng.uniform(seed, "conception", week, f.key[i]) < pop.next_birth_hazard_week,
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


def _draw_below(candidates: np.ndarray, event) -> np.ndarray:
    """A bool per row: `event(rows)` evaluated only where `candidates` holds, False elsewhere."""
    out = np.zeros(len(candidates), dtype=bool)
    i = np.flatnonzero(candidates)
    if i.size:
        out[i] = event(i)
    return out
