"""The per-agent reference: the same weekly rules as sim/engine/week.py, written out agent by agent.

Every family is a `mesa.Agent` that holds its own state as plain Python values and whose
`step` evaluates its own information events, barriers and choices with scalar code and plain
loops over its own candidate services (phase A: reads only last week's state). The model
then applies the week in the fixed order of DESIGN §2 (phase B): awareness, cooldowns,
drop-outs, give-ups, allocation (each service sorts its own applicants), experience,
measurement; then the life course moves every family one week on.

It exists to be obviously right, and to dock with the fast engine (tests/test_docking.py):
integer state bit-equal, float measures equal to a relative 1e-12. Every random number is a
keyed draw with the same (seed, stream, week, family key, service/type) arguments as the
fast engine, drawn one at a time by the family that needs it (`rng.uniform_one`, plain
Python integers).

A deliberate twin. Each function or method below that writes a rule or a measure of the fast
engine out again carries a comment line `twin: <fast function>` above its def
(docs/ARCHITECTURE.md, "Twins", lists every pair). Float expressions keep the fast engine's order of operations, so the two give
the same bits; they share no rule code, so docking compares two separate readings of DESIGN
§2.

What the twin shares instead of docking. Each is an input of the week, not a rule of it, so
sharing it cannot hide a fault in a weekly rule; a fault in it would be the same in both
engines and is tested where it lives:

- `sim.core.codes`, the vocabulary (service types, statuses, barrier dimensions and their
  order, fee kinds, priority rules, modes, NO_SERVICE and NO_HUB, COST_SCALE, U3_WEEKS and
  THREE_MONTHS_WEEKS,
  travel bands): names for numbers, without behaviour; two engines can only be compared
  if they read a status code alike.
- `sim.core.rng`, the keyed streams: docking needs the same number for the same decision.
  The reference draws one at a time (`uniform_one`, `bits_one`), the fast engine in
  compiled arrays; tests/test_keyed_streams.py holds the two equal bit for bit.
- `sim.scenario.schema` (`Scenario`, `cents`): the parameters and the euro-to-cents unit.
- `sim.world.build` (`World`, `build_world`): the world both start from (city, families at
  week 0 with their ties, services and fee schedules, candidate lists), built once before
  the first week; docking compares what the weeks do to it.
- `sim.world.costs.outlay_parts_cents`, `childcare_means_line_eur_year`: the ex-ante public
  outlay and the means-tested childcare's income line, fixed by the service table and the
  scenario before week 0; the reference reports them among its measures.
- `sim.world.population` (`draw_generation`, `birth_plan`, `assign_quintiles`,
  `GENERATION_BITS`): what a new family is: its traits, a pregnancy's plan, its income
  quintile by the cut points fixed at initialisation, its key. The world builder draws
  generation 0 with the same functions, so a family that takes over a slot, or a new
  pregnancy, is the same in both engines and any difference in what happens to it is a
  difference of the weekly rules.

Nothing else of sim is imported: never a rule kernel, a measure or the engine, never
`model.random` (tests/test_architecture.py holds the reference to this list).
"""

from __future__ import annotations

import math

import mesa
import numpy as np

from sim.core import rng
from sim.core.codes import (
    ADMIN_HELP,
    CAPACITY_DIM,
    CHANNEL_BROKER,
    CHANNEL_COORDINATOR,
    CHANNEL_FIRST_CONTACT,
    CHANNEL_OUTREACH,
    CHANNEL_REFERRAL,
    CHANNEL_WORD_OF_MOUTH,
    CHANNELS,
    CHILDCARE,
    COST_SCALE,
    DAYS_PER_WEEK,
    DIMENSION_LEVER,
    DIMENSIONS,
    DROPPED,
    ENROLLED,
    FEE_FLAT,
    FEE_FREE,
    FEE_MEANS,
    FIT_DIM,
    GROUPS,
    HEALTH,
    HEALTH_ENROLMENT_GROUPS,
    INCOME_SCALE,
    INFORMATION_DIM,
    MATCHING_DIM,
    MAX_TOLERANCE_FACTOR,
    MODE_CAR,
    MODE_TRANSIT,
    N_TYPES,
    NO_HUB,
    NO_SERVICE,
    NONE,
    PAIR_DIMENSIONS,
    PARENTING,
    POLICY_LEVERS,
    PRIORITY,
    PRIORITY_NEED,
    PRIORITY_WORKING,
    REFERENCE_TRIPS_PER_WEEK,
    REJECTED,
    SERVICE_TYPES,
    THREE_MONTHS_WEEKS,
    TRAVEL_BAND_EDGES,
    TRAVEL_BAND_LABELS,
    TRAVEL_MINUTES_CAP,
    U3_WEEKS,
    WAITLISTED,
)
from sim.scenario.schema import Scenario, cents
from sim.world.build import World, build_world
from sim.world.costs import childcare_means_line_eur_year, outlay_parts_cents
from sim.world.population import (
    GENERATION_BITS,
    assign_quintiles,
    birth_plan,
    draw_generation,
    max_tie_degree,
)

# cost is acceptable iff cost_cents * 52 * INCOME_SCALE * 10_000 * 10 (COST_SCALE)
#                        <= income_q * household_factor_tenths * cost_share_bp

# per-family columns copied from the world's table as scalars; per-type ones as lists
SCALAR_COLUMNS = (
    "slot", "generation", "x", "y", "deprivation", "deprivation_rank", "language",
    "is_local_language", "proficiency", "income_q", "low_work_intensity", "employed",
    "is_arope", "income_quintile", "youngest_age_weeks", "n_children", "wants_formal_care",
    "care_start_age_weeks", "care_days", "private_health", "parenting_need", "admin_need",
    "admin_problem_week", "mode", "max_travel_minutes",
    "atypical_hours", "hours_severity", "trust", "stigma_sensitivity", "paperwork",
    "cost_share_bp", "language_tolerance", "stigma_tolerance", "trust_tolerance", "admin_tolerance",
    "hours_tolerance", "fit_threshold", "broker_contacted", "staff_contacted", "coordinated",
    "form_help", "visited_week", "hub_file",
)  # fmt: skip
TYPE_COLUMNS = (
    "perceived_fit", "aware", "status", "service", "status_week", "applied_week",
    "excluded_service",
)  # fmt: skip


def _py(value):
    """A numpy scalar as the plain Python value (bool, int or float)."""
    return value.item() if hasattr(value, "item") else value


class ServiceAgent(mesa.Agent):
    """One service site: its attributes as plain values, and its own admission queue."""

    def __init__(self, model: ReferenceModel, sid: int) -> None:
        super().__init__(model)
        s = model.world.services.services
        self.sid = sid
        self.type = int(s.type[sid])
        self.capacity = int(s.capacity[sid])
        # weeks between one user's visits (appointments, drop-in); 1 for daily and episodes
        self.visit_interval = int(s.visit_interval_weeks[sid])
        # capacity in units: a childcare place is DAYS_PER_WEEK days; appointments or visits
        # a week serve that many users per week between visits; a help desk counts cases
        self.capacity_units = self.capacity * (
            DAYS_PER_WEEK if self.type == CHILDCARE else self.visit_interval
        )
        self.is_public = bool(s.is_public[sid])
        self.schedule = model.world.services.schedules[int(s.schedule[sid])]
        self.discount = 0  # cents a week off the fee, paid by an adaptive policy
        self.means_tested = bool(s.means_tested[sid])
        self.means_line_q = int(s.means_line_q[sid])
        self.speaks = [bool(v) for v in s.speaks[sid]]
        self.interpreters = bool(s.interpreters[sid])
        self.stigma_label = float(s.stigma_label[sid])
        self.trust_required = float(s.trust_required[sid])
        self.admin_complexity = float(s.admin_complexity[sid])
        self.extended_hours = bool(s.extended_hours[sid])
        self.hours_weight = float(s.hours_weight[sid])
        self.quality = float(s.quality[sid])
        self.waitlist = bool(s.waitlist[sid])
        self.trips_per_week = int(s.trips_per_week[sid])
        self.hub = int(s.hub[sid])

    # twin: sim.rules.fees.fee_cents
    def fee_cents(self, income_q: int) -> int:
        """Weekly fee in integer cents for a family with this income, less any reduction
        an adaptive policy pays (never below zero)."""
        return max(self.schedule_fee_cents(income_q) - self.discount, 0)

    def schedule_fee_cents(self, income_q: int) -> int:
        sch = self.schedule
        if sch.kind == FEE_FREE:
            return 0
        if sch.kind == FEE_FLAT:
            return int(sch.flat_cents)
        if sch.kind == FEE_MEANS:
            return 0 if income_q < sch.means_line_q else int(sch.flat_cents)
        # income-related: the band is the number of band limits at or below the income
        band = 0
        for limit in sch.band_limits_q:
            if int(limit) <= income_q:
                band += 1
        band = min(band, len(sch.band_fees_cents) - 1)
        return int(sch.band_fees_cents[band])

    # twin: sim.rules.decisions._eligible
    def eligible(self, family: FamilyAgent) -> bool:
        """Means-tested services admit only families below the line (families know it)."""
        return (not self.means_tested) or family.income_q < self.means_line_q


class FamilyAgent(mesa.Agent):
    """One family (a dwelling slot's current generation) with its own state."""

    def __init__(self, model: ReferenceModel, row: int) -> None:
        super().__init__(model)
        table = model.world.families
        self.row = row
        for name in SCALAR_COLUMNS:
            setattr(self, name, _py(getattr(table, name)[row]))
        for name in TYPE_COLUMNS:
            setattr(self, name, [_py(v) for v in getattr(table, name)[row]])
        # the centres listed with the desk per type (valid while waitlisted)
        self.registered = [[int(v) for v in per_type] for per_type in table.registered[row]]
        # the rows of the family's ties (undirected: each is in the other's list too)
        self.ties: list[int] = [int(i) for i in table.ties[row, : table.tie_count[row]]]
        cand = model.world.candidates
        # candidate services per type (every one within reach): (service, minutes, trip cost)
        self.candidates: list[list[tuple[int, int, int]]] = []
        for t in range(N_TYPES):
            start, stop = int(cand.indptr[t][row]), int(cand.indptr[t][row + 1])
            self.candidates.append(
                [
                    (
                        int(cand.service[t][i]),
                        int(cand.minutes[t][i]),
                        self.trip_cents(int(cand.minutes[t][i])),
                    )
                    for i in range(start, stop)
                ]
            )
        self.nearest_service = [int(v) for v in cand.nearest_service[row]]
        self.nearest_minutes = [int(v) for v in cand.nearest_minutes[row]]
        self.plan: dict = {}
        # measurement state of this generation
        self.need_seen = [False] * N_TYPES
        self.used_seen = [False] * N_TYPES
        # needs of a family eligible for a means-tested offer of the type; use of one
        self.eligible_need_seen = [False] * N_TYPES
        self.means_tested_used_seen = [False] * N_TYPES
        self.u3_weeks = 0
        self.health_age_seen = False  # a child in the health age range in a measured week
        self.u3_enrolled_weeks = 0

    @property
    def key(self) -> int:
        return (self.slot << GENERATION_BITS) | self.generation

    # --- what the family needs now ---------------------------------------------------------

    # twin: sim.engine.week.Engine.needs
    def needs(self) -> list[bool]:
        pop = self.model.spec.population
        age = self.youngest_age_weeks
        need = [False] * N_TYPES
        need[CHILDCARE] = (
            self.wants_formal_care
            and age >= self.care_start_age_weeks
            and age < pop.childcare_exit_age_weeks
        )
        need[HEALTH] = not self.private_health and 0 <= age < pop.health_need_until_age_weeks
        need[PARENTING] = self.parenting_need and 0 <= age < pop.parenting_need_until_age_weeks
        # an administrative problem is open (it closes with an episode of help)
        need[ADMIN_HELP] = self.admin_need and self.admin_problem_week <= self.model.week
        return need

    # twin: sim.engine.week.Engine.may_apply
    def may_apply(self, need: list[bool]) -> list[bool]:
        """Childcare can be applied for from the week a pregnancy is known."""
        pop = self.model.spec.population
        age = self.youngest_age_weeks
        out = list(need)
        out[CHILDCARE] = (
            self.wants_formal_care
            and age >= -pop.pregnancy_known_weeks
            and age < pop.childcare_exit_age_weeks
        )
        return out

    # twin: sim.rules.decisions._ready
    def ready(self, t: int) -> bool:
        """A place can be taken now (childcare only once leave has ended)."""
        return t != CHILDCARE or self.youngest_age_weeks >= self.care_start_age_weeks

    # twin: sim.rules.decisions.week_days
    # twin: sim.rules.decisions.units
    def days_and_units(self, t: int) -> tuple[int, int]:
        """Days a week of use (fees and trips scale with them) and capacity units taken:
        childcare by its days, every other type a full week and one user."""
        if t == CHILDCARE:
            return self.care_days, self.care_days
        return DAYS_PER_WEEK, 1

    # twin: sim.rules.allocation.priority_class
    def priority_class(self, t: int) -> int:
        """0 is offered first by the desk of type t; only what a municipality can observe."""
        spec = self.model.spec.provision[SERVICE_TYPES[t]]
        rule = PRIORITY[spec.priority]
        if rule == PRIORITY_WORKING:
            return 0 if self.employed else 1
        if rule == PRIORITY_NEED:
            if self.income_q < cents(spec.means_test_line_eur_year) * INCOME_SCALE:
                return 0
            return 1 if self.deprivation_rank >= 1.0 - spec.priority_deprived_share else 2
        return 0

    # twin: sim.rules.allocation._desired_start
    def desired_start(self, t: int, week: int) -> int:
        """The week a ready request wanted its place from (childcare: not before the child
        reached its planned start age)."""
        if t != CHILDCARE:
            return self.applied_week[t]
        return max(
            self.applied_week[t], week - (self.youngest_age_weeks - self.care_start_age_weeks)
        )

    # twin: sim.rules.decisions.enrolled_hubs
    def enrolled_hubs(self) -> list[int]:
        services = self.model.services
        out = []
        for t in range(N_TYPES):
            if self.status[t] == ENROLLED and self.service[t] >= 0:
                out.append(services[self.service[t]].hub)
            else:
                out.append(NO_HUB)
        return out

    # twin: sim.rules.fees.trip_cents
    def trip_cents(self, minutes: int) -> int:
        """Cost of one trip: the car's running cost per minute, a transit fare, or nothing."""
        travel = self.model.spec.travel
        if self.mode == MODE_CAR:
            return minutes * cents(travel.car_cost_eur_per_minute)
        if self.mode == MODE_TRANSIT:
            return cents(travel.transit_fare_eur_trip)
        return 0

    def minutes_to(self, t: int, sid: int) -> tuple[int, int]:
        """Travel minutes and trip cost to a given service: a candidate's, the nearest
        service's (a home-visit registration may be beyond reach), else (0, 0)."""
        for service, minutes, trip in self.candidates[t]:
            if service == sid:
                return minutes, trip
        if sid == self.nearest_service[t]:  # registered by the home visit beyond its reach
            minutes = self.nearest_minutes[t]
            return minutes, self.trip_cents(minutes)
        return 0, 0

    # --- barriers against the family's own thresholds -------------------------------------

    # twin: sim.rules.decisions.type_max_minutes
    def type_max_minutes(self, t: int) -> int:
        """The family's maximum travel minutes to type t: its own (for a daily trip) at the
        type's tolerance percentage, at most TRAVEL_MINUTES_CAP."""
        return min(self.max_travel_minutes * self.model.tolerance_pct[t] // 100, TRAVEL_MINUTES_CAP)

    # twin: sim.rules.decisions.service_barriers
    # twin: sim.rules.barriers.pair_barriers
    def barriers(self, t: int, svc: ServiceAgent, minutes: int, trip_cents: int, hubs: list):
        """Blocks in PAIR_DIMENSIONS order and the felt barrier sum (drop-out hazard).
        Float expressions are written in the fast engine's arithmetic order."""
        scenario = self.model.spec
        info = scenario.information
        factor_tenths = int(round(scenario.population.household_equivalence_factor * 10))
        days, _ = self.days_and_units(t)
        # trips of a week of use, or of a visit made once every visit interval
        weekly_cost = (
            svc.fee_cents(self.income_q) * days // DAYS_PER_WEEK
            + (svc.trips_per_week * days // DAYS_PER_WEEK) * trip_cents // svc.visit_interval
        )
        max_minutes = self.type_max_minutes(t)
        # cost: exact integer comparison
        cost_block = weekly_cost * COST_SCALE > self.income_q * factor_tenths * self.cost_share_bp
        # travel: integer minutes
        travel_block = minutes > max_minutes
        # hours: mismatch only for atypical hours at a service without extended hours, times
        # the share of it the service's rhythm meets (daily 1, appointments 0, ...)
        if self.atypical_hours and not svc.extended_hours:
            hours = self.hours_severity * svc.hours_weight
        else:
            hours = 0.0
        hours_block = hours > self.hours_tolerance
        # admin: waived when the family has done the hub's intake (one gate: its file at the
        # hub, a service of it in use, or a coordinator's assessment)
        user = svc.hub != NO_HUB and svc.hub in hubs
        intake_done = svc.hub != NO_HUB and (user or self.hub_file == svc.hub or self.coordinated)
        # ... or an outreach worker walks the family through this application
        complexity = 0.0 if (intake_done or self.form_help) else svc.admin_complexity
        admin = complexity * (1.0 - self.paperwork)
        admin_block = admin > self.admin_tolerance
        # language: 1 - comprehension (own language, or proficiency / interpreter; + broker)
        if svc.speaks[self.language]:
            base = 1.0
        else:
            interpreter = info.interpreter_comprehension if svc.interpreters else 0.0
            base = max(self.proficiency, interpreter)
        gain = info.broker_comprehension_gain if self.broker_contacted else 0.0
        language = 1.0 - min(1.0, base + gain)
        language_block = language > self.language_tolerance
        # stigma: label (lowered in a hub's mixed clientele) x sensitivity x (1 - trust)
        factor = scenario.hubs.stigma_factor if svc.hub != NO_HUB else 1.0
        label = svc.stigma_label * factor
        stigma = label * self.stigma_sensitivity * (1.0 - self.trust)
        stigma_block = stigma > self.stigma_tolerance
        # trust: distrust of the institution, a barrier of its own
        # ... of which a user of another service of the same hub needs less (carry-over)
        required = svc.trust_required
        if user:
            required = required * (1.0 - scenario.hubs.trust_carryover)
        distrust = required * (1.0 - self.trust)
        trust_block = distrust > self.trust_tolerance
        # usefulness: perceived fit plus quality, around 0.5, clipped to [0, 1]
        fit = min(max(self.perceived_fit[t] + svc.quality - 0.5, 0.0), 1.0)
        fit_block = fit < self.fit_threshold
        blocks = [
            cost_block,
            travel_block,
            hours_block,
            admin_block,
            language_block,
            stigma_block,
            trust_block,
            fit_block,
        ]
        cost_ratio = (float(weekly_cost) / float(max(self.income_q, 1))) * (
            float(COST_SCALE) / float(factor_tenths * max(self.cost_share_bp, 1))
        )
        felt = (
            cost_ratio
            + minutes / max(max_minutes, 1)
            + hours / max(self.hours_tolerance, 1e-9)
            + language / max(self.language_tolerance, 1e-9)
            + stigma / max(self.stigma_tolerance, 1e-9)
            + distrust / max(self.trust_tolerance, 1e-9)
            + self.fit_threshold / max(fit, 1e-9)
        )
        return blocks, felt

    # --- phase A ---------------------------------------------------------------------------

    def step(self) -> None:
        """Phase A: this family's events and decisions from last week's state."""
        model = self.model
        need = self.needs()
        hubs = self.enrolled_hubs()
        self.plan = {
            "new_aware": [False] * N_TYPES,
            "wom_heard": [False] * N_TYPES,
            "wom_aware": [False] * N_TYPES,
            "broker_contacted": False,
            "staff_contacted": False,
            "visited": False,
            "coordinated": False,
            "first_contact": False,
            "referred": False,
            "channel": [-1] * N_TYPES,
            "chosen": [NO_SERVICE] * N_TYPES,
            "registered": [[] for _ in range(N_TYPES)],
            "empty_place": [False] * N_TYPES,
            "dropout": [False] * N_TYPES,
            "give_up": [False] * N_TYPES,
            "preferred_blocks": [[False] * len(DIMENSIONS) for _ in range(N_TYPES)],
            "hub_referrals": 0,  # a counter only
        }
        self.information(need, hubs)
        self.applications(need, hubs)
        self.exits(hubs)
        if model.week >= model.burn_in or model.adaptive:
            self.preferred(need, hubs)

    # twin: sim.rules.information.channel_events
    def information(self, need: list[bool], hubs: list[int]) -> None:
        model = self.model
        info = model.spec.information
        key = self.key
        plan = self.plan
        events = [False] * N_TYPES
        channel = [-1] * N_TYPES  # the first channel that told of each type this week

        def hear(t: int, via: int) -> None:
            events[t] = True
            if channel[t] < 0:
                channel[t] = via

        comp_local = 1.0 if self.is_local_language else self.proficiency

        # universal first contact in the week of birth; understood per type by comprehension
        if self.youngest_age_weeks == 0:
            if (
                rng.uniform_one(model.seed, "first_contact", model.week, key)
                < info.first_contact_reach
            ):
                hear(HEALTH, CHANNEL_FIRST_CONTACT)
                plan["first_contact"] = True
                comp_fc = max(comp_local, model.first_contact_interpreter)
                for t in range(N_TYPES):
                    if SERVICE_TYPES[t] in info.first_contact_informs:
                        if (
                            rng.uniform_one(
                                model.seed, "first_contact_understood", model.week, key, t
                            )
                            < comp_fc
                        ):
                            hear(t, CHANNEL_FIRST_CONTACT)

        # word of mouth: ties who used the type last week (1 - (1 - p)^users)
        for t in range(N_TYPES):
            users = 0
            for tie in self.ties:
                if model.families[tie].status[t] == ENROLLED:
                    users += 1
            if users > 0:
                plan["wom_heard"][t] = True
                p = 1.0 - (1.0 - info.wom_prob_per_tie_week) ** users
                if rng.uniform_one(model.seed, "word_of_mouth", model.week, key, t) < p:
                    hear(t, CHANNEL_WORD_OF_MOUTH)
                    if not self.aware[t]:
                        plan["wom_aware"][t] = True

        # a tie an outreach worker visited last week brings the family along to a meeting
        # place (1 - (1 - p)^visited ties): it hears of parenting support through the tie
        visited_ties = sum(
            1 for tie in self.ties if model.families[tie].visited_week == model.week - 1
        )
        if visited_ties > 0 and not self.aware[PARENTING]:
            p = 1.0 - (1.0 - info.outreach_tie_prob) ** visited_ties
            if rng.uniform_one(model.seed, "outreach_tie", model.week, key, PARENTING) < p:
                plan["wom_aware"][PARENTING] = True
                hear(PARENTING, CHANNEL_WORD_OF_MOUTH)

        # outreach home visits, among the families the municipality can target
        visited = False
        if self in model.outreach_pool:
            if rng.uniform_one(model.seed, "outreach", model.week, key) < model.p_outreach:
                visited = True
                # the worker brings an interpreter where the scenario funds one
                interpreter = info.interpreter_comprehension if info.outreach_interpreters else 0.0
                comp_visit = max(comp_local, interpreter)
                for t in range(N_TYPES):
                    if (
                        rng.uniform_one(model.seed, "outreach_understood", model.week, key, t)
                        < comp_visit
                    ):
                        hear(t, CHANNEL_OUTREACH)

        # community brokers inside the family's own language group
        brokered = False
        if self in model.broker_pool:
            if (
                rng.uniform_one(model.seed, "broker", model.week, key)
                < model.p_broker[self.language]
            ):
                brokered = True
                for t in range(N_TYPES):
                    hear(t, CHANNEL_BROKER)
        plan["broker_contacted"] = brokered
        plan["staff_contacted"] = visited or brokered
        plan["visited"] = visited

        # referrals from services in use, to a type the family needs and neither uses nor
        # waits for, by a service of another type: warm if that service's hub has the type
        applicable = self.may_apply(need)
        if any(s == ENROLLED for s in self.status):
            for t in range(N_TYPES):
                if not (applicable[t] and self.status[t] == NONE):
                    continue
                referrers = [k for k in range(N_TYPES) if k != t and self.status[k] == ENROLLED]
                if not referrers:
                    continue
                warm = any(hubs[k] != NO_HUB and model.hub_has_type[hubs[k]][t] for k in referrers)
                p_ref = model.spec.hubs.referral_prob_week if warm else info.referral_prob_week
                if rng.uniform_one(model.seed, "referral", model.week, key, t) < p_ref:
                    hear(t, CHANNEL_REFERRAL)
                    plan["referred"] = True
                    if warm:
                        plan["hub_referrals"] += 1

        # a hub coordinator connects the family to every service it needs
        if model.coordinator:
            in_hub = any(h != NO_HUB for h in hubs)
            if in_hub and not self.coordinated:
                plan["coordinated"] = True
                for t in range(N_TYPES):
                    if need[t]:
                        hear(t, CHANNEL_COORDINATOR)
        for t in range(N_TYPES):
            plan["new_aware"][t] = events[t] and not self.aware[t]
            plan["channel"][t] = channel[t] if plan["new_aware"][t] else -1

    # twin: sim.rules.decisions.applications
    def applications(self, need: list[bool], hubs: list[int]) -> None:
        """Register with the desk: up to K acceptable candidates, least travel time first
        (ties by service id)."""
        model = self.model
        applicable = self.may_apply(need)
        choices = model.spec.behaviour.registration_choices
        for t in range(N_TYPES):
            if not (applicable[t] and self.aware[t] and self.status[t] == NONE):
                continue
            acceptable = []
            for sid, minutes, trip in self.candidates[t]:
                svc = model.services[sid]
                if not svc.eligible(self) or sid == self.excluded_service[t]:
                    continue
                # before the child can start, only services with a waiting list register
                if not (self.ready(t) or svc.waitlist):
                    continue
                blocks, _ = self.barriers(t, svc, minutes, trip, hubs)
                if any(blocks):
                    continue
                acceptable.append((minutes, sid))
            acceptable.sort()
            listed = [sid for _, sid in acceptable[:choices]]
            if listed:
                self.plan["chosen"][t] = listed[0]
                self.plan["registered"][t] = listed
        self.home_visit_registration()

    # twin: sim.engine.week.Engine._register_at_home_visit
    def home_visit_registration(self) -> None:
        """The health service's home visit after birth registers the child at its nearest
        consultation sites (the first K candidates, else the nearest site anywhere) if the
        family has not registered itself."""
        plan = self.plan
        nearest = self.nearest_service[HEALTH]
        if (
            plan["first_contact"]
            and not self.private_health
            and self.status[HEALTH] == NONE
            and plan["chosen"][HEALTH] == NO_SERVICE
            and nearest >= 0
        ):
            choices = self.model.spec.behaviour.registration_choices
            sites = [sid for _, sid in sorted((m, sid) for sid, m, _ in self.candidates[HEALTH])]
            listed = sites[:choices] or [nearest]
            plan["chosen"][HEALTH] = listed[0]
            plan["registered"][HEALTH] = listed

    # twin: sim.rules.decisions.exits
    def exits(self, hubs: list[int]) -> None:
        """Drop-out with a hazard growing with felt barriers; give up after waiting too long."""
        model = self.model
        beh = model.spec.behaviour
        week = model.week
        for t in range(N_TYPES):
            if self.status[t] == ENROLLED:
                sid = self.service[t]
                minutes, trip = self.minutes_to(t, sid)
                _, felt = self.barriers(t, model.services[sid], minutes, trip, hubs)
                hazard = min(1.0, beh.dropout_base_week + beh.dropout_barrier_slope * felt)
                if rng.uniform_one(model.seed, "dropout", model.week, self.key, t) < hazard:
                    self.plan["dropout"][t] = True
            elif self.status[t] == WAITLISTED and self.ready(t):
                if t == CHILDCARE:
                    ready_since = week - (self.youngest_age_weeks - self.care_start_age_weeks)
                else:
                    ready_since = self.status_week[t]
                waited_from = max(ready_since, self.status_week[t])
                if week - waited_from >= beh.waitlist_patience_weeks:
                    self.plan["give_up"][t] = True

    # twin: sim.rules.decisions.nearest_eligible
    # twin: sim.rules.decisions.preferred_blocks
    def preferred(self, need: list[bool], hubs: list[int]) -> None:
        """Barrier log: dimensions blocking the preferred candidate (nearest eligible within
        reach; else the nearest of the type anywhere); no open service means capacity."""
        model = self.model
        for t in range(N_TYPES):
            if not need[t] or self.status[t] == ENROLLED:
                continue
            pref = self.nearest_service[t]
            pref_min = self.nearest_minutes[t]
            pref_trip = self.trip_cents(pref_min)
            best = None
            for sid, minutes, trip in self.candidates[t]:
                if model.services[sid].eligible(self):
                    if best is None or (minutes, sid) < best[:2]:
                        best = (minutes, sid, trip)
            none_eligible = bool(self.candidates[t]) and best is None
            if best is not None:
                pref_min, pref, pref_trip = best
            blocks = [False] * len(DIMENSIONS)
            if pref >= 0:
                pair_blocks, _ = self.barriers(t, model.services[pref], pref_min, pref_trip, hubs)
                for name, blocked in zip(PAIR_DIMENSIONS, pair_blocks, strict=True):
                    blocks[DIMENSIONS.index(name)] = blocked
            if pref < 0 or none_eligible:
                blocks[CAPACITY_DIM] = True
            self.plan["preferred_blocks"][t] = blocks
            if self.aware[t]:
                self.plan["empty_place"][t] = self.room_at_acceptable(t, hubs)

    # twin: sim.rules.decisions._room_at_acceptable
    def room_at_acceptable(self, t: int, hubs: list[int]) -> bool:
        """Whether a candidate this family would accept had room for it at the end of last
        week (then waiting is matching, not capacity)."""
        model = self.model
        _, need_units = self.days_and_units(t)
        for sid, minutes, trip in self.candidates[t]:
            svc = model.services[sid]
            if model.free_units[sid] < need_units:
                continue
            if not svc.eligible(self) or sid == self.excluded_service[t]:
                continue
            blocks, _ = self.barriers(t, svc, minutes, trip, hubs)
            if not any(blocks):
                return True
        return False


class ReferenceModel(mesa.Model):
    """One replication of the per-agent reference, on a given (or freshly built) World."""

    def __init__(self, scenario: Scenario, rng: int = 1, world: World | None = None) -> None:
        super().__init__(rng=int(rng))
        self.world = world if world is not None else build_world(scenario, int(rng))
        self.spec = self.world.scenario
        self.seed = self.world.seed
        self.week = 0
        self.burn_in = self.spec.run.burn_in_weeks
        info = self.spec.information
        languages = self.world.city.languages
        self.services = [
            ServiceAgent(self, sid) for sid in range(self.world.services.services.size)
        ]
        self.families = [FamilyAgent(self, row) for row in range(self.world.families.size)]
        # where families live and which language group they are in, for drawing ties
        self.max_ties = max_tie_degree(self.spec.population)
        self.in_cell: dict[tuple[int, int], list[FamilyAgent]] = {}
        self.in_language: dict[int, list[FamilyAgent]] = {}
        for f in self.families:
            self.in_cell.setdefault((f.x, f.y), []).append(f)
            self.in_language.setdefault(f.language, []).append(f)
        n_hubs = len(self.world.services.hub_cells)
        self.hub_has_type = [[False] * N_TYPES for _ in range(max(n_hubs, 1))]
        for svc in self.services:
            if svc.hub != NO_HUB:
                self.hub_has_type[svc.hub][svc.type] = True
        self.coordinator = bool(self.world.services.hub_coordinator and n_hubs)
        self.broker_capacity = [
            info.brokers.get(lang, 0.0) * info.broker_contacts_per_week for lang in languages
        ]
        self.outreach_capacity = info.outreach_workers * info.outreach_visits_per_worker_week
        interpreters = self.spec.provision["health"].interpreters
        self.first_contact_interpreter = info.interpreter_comprehension if interpreters else 0.0
        self.outreach_pool: set = set()
        self.broker_pool: set = set()
        self.p_outreach = 0.0
        self.p_broker: list[float] = []
        self.tolerance_pct = self.tolerance_percent()
        self.counters: dict[str, int] = {}
        self.last: dict[str, float] = {}
        self.series: list[dict[str, float]] = []  # the weekly snapshots, burn-in included
        self._init_measures()
        self._init_policy()

    def _init_policy(self) -> None:
        """The adaptive policy's flexible budget, in integer cents per lever, all in
        childcare places at the start (docs/ODD.md §7.14)."""
        spec = self.spec.policy
        self.adaptive = spec.adaptive
        flexible = cents(spec.flexible_eur_week)
        self.holdings = [flexible] + [0] * (len(POLICY_LEVERS) - 1)
        self.policy_signals = [0] * len(DIMENSIONS)
        self.policy_top = -1
        self.policy_childcare = [s for s in self.services if s.is_public and s.type == CHILDCARE]
        self.policy_desks = [s for s in self.services if s.is_public and s.type == ADMIN_HELP]
        table = self.world.services.services
        first = self.policy_childcare[0].sid if self.policy_childcare else -1
        self.place_cents = (
            int(table.unit_cost_cents[first]) + int(table.means_test_admin_cents[first])
            if first >= 0
            else 0
        )
        self.case_cents = (
            int(table.unit_cost_cents[self.policy_desks[0].sid]) if self.policy_desks else 0
        )
        self.initial_places = flexible // self.place_cents if self.place_cents else 0
        self.base_units = [s.capacity_units for s in self.services]
        self.base_outreach = self.outreach_capacity
        self.base_brokers = list(self.broker_capacity)
        local = self.world.city.languages.index("local")
        self.community = [0] * len(self.world.city.languages)
        for f in self.families:
            if f.language != local:
                self.community[f.language] += 1

    # twin: sim.rules.policy.contact_signals
    # twin: sim.engine.adaptive.AdaptivePolicy.week
    def _policy_week(self) -> None:
        """7b. The adaptive policy: the signals of families in contact with some service
        (every barrier of each unmet need); at the end of each review period, the review."""
        for f in self.families:
            contact = f.staff_contacted or f.coordinated
            contact = contact or any(st in (ENROLLED, WAITLISTED) for st in f.status)
            if not contact:
                continue
            need = f.needs()
            for t in range(N_TYPES):
                if need[t] and f.status[t] != ENROLLED:
                    for d, block in enumerate(self.unmet_blocks(f, t)):
                        self.policy_signals[d] += int(block)
        if (self.week + 1) % self.spec.policy.review_weeks == 0:
            self._review()
            self.policy_signals = [0] * len(DIMENSIONS)
            self._apply_policy()

    # twin: sim.rules.policy.review
    def _review(self) -> None:
        """The most-reported dimension with a lever (the first on ties) draws move_share of
        what every other lever holds, in whole cents."""
        top, best = -1, 0
        for d, count in enumerate(self.policy_signals):
            if DIMENSION_LEVER[d] >= 0 and count > best:
                top, best = d, count
        self.policy_top = top
        if top < 0:
            return
        lever = DIMENSION_LEVER[top]
        move_bp = int(round(self.spec.policy.move_share * 10_000))
        for k in range(len(self.holdings)):
            if k != lever:
                taken = self.holdings[k] * move_bp // 10_000
                self.holdings[k] -= taken
                self.holdings[lever] += taken

    # twin: sim.rules.policy.shares_of
    @staticmethod
    def shares_of(weights: list[int], total: int) -> list[int]:
        """total units split by integer weights, largest remainder, ties to the lower index."""
        whole = sum(weights)
        if total <= 0 or whole <= 0:
            return [0] * len(weights)
        out = [w * total // whole for w in weights]
        order = sorted(range(len(weights)), key=lambda i: (-(weights[i] * total % whole), i))
        for i in order[: total - sum(out)]:
            out[i] += 1
        return out

    # twin: sim.engine.adaptive.AdaptivePolicy.apply
    def _apply_policy(self) -> None:
        """What the holdings buy: fewer childcare places than at the start, help-desk
        cases, a fee reduction per place on public childcare, outreach workers and brokers
        (split over the communities by their number of families)."""
        h = dict(zip(POLICY_LEVERS, self.holdings, strict=True))
        info = self.spec.information
        held = h["places"] // self.place_cents if self.place_cents else 0
        places = [s.capacity for s in self.policy_childcare]
        cut = self.shares_of(places, max(0, self.initial_places - held))
        for svc, c in zip(self.policy_childcare, cut, strict=True):
            svc.capacity_units = self.base_units[svc.sid] - c * DAYS_PER_WEEK
        cases = h["forms_help"] // self.case_cents if self.case_cents else 0
        extra = self.shares_of([s.capacity for s in self.policy_desks], cases)
        for svc, c in zip(self.policy_desks, extra, strict=True):
            svc.capacity_units = self.base_units[svc.sid] + c
        total = sum(places)
        discount = h["fee_reduction"] // total if total else 0
        for svc in self.policy_childcare:
            svc.discount = discount
        worker = cents(info.outreach_worker_eur_week) + (
            cents(info.outreach_interpreter_eur_week_per_worker)
            if info.outreach_interpreters
            else 0
        )
        workers = h["outreach"] / worker if worker else 0.0
        self.outreach_capacity = self.base_outreach + workers * info.outreach_visits_per_worker_week
        broker = cents(info.broker_eur_week)
        brokers = h["brokers"] / broker if broker else 0.0
        whole = sum(self.community)
        for lang, count in enumerate(self.community):
            share = count / whole if whole else 0.0
            self.broker_capacity[lang] = (
                self.base_brokers[lang] + brokers * share * info.broker_contacts_per_week
            )

    def policy_snapshot(self) -> dict[str, float]:
        out = {
            f"policy_{lever}_eur_week": held / 100.0
            for lever, held in zip(POLICY_LEVERS, self.holdings, strict=True)
        }
        out["policy_signal"] = float(self.policy_top)
        return out

    # twin: sim.world.travel.tolerance_percent
    def tolerance_percent(self) -> list[int]:
        """Per type, the percentage of a family's maximum travel time accepted for a trip to
        it: (REFERENCE_TRIPS_PER_WEEK / the type's trips a week in use) ** elasticity, at
        most MAX_TOLERANCE_FACTOR, rounded to whole percent."""
        elasticity = self.spec.travel.tolerance_trip_elasticity
        out = []
        for name in SERVICE_TYPES:
            spec = self.spec.provision[name]
            if spec.trips_per_week == 0:
                factor = float(MAX_TOLERANCE_FACTOR)
            else:
                ratio = REFERENCE_TRIPS_PER_WEEK * spec.visit_interval_weeks / spec.trips_per_week
                factor = min(float(MAX_TOLERANCE_FACTOR), ratio**elasticity)
            out.append(int(round(100.0 * factor)))
        return out

    def run(self) -> dict[str, float]:
        """The scenario's schedule: burn-in, then the measured window; returns the measures."""
        for _ in range(self.burn_in + self.spec.run.weeks):
            self.step()
        return self.metrics()

    # --- the week --------------------------------------------------------------------------

    def step(self) -> None:
        self.contact_pools()
        self.free_units = self.units_free()
        # phase A: every family steps on last week's state (any order gives the same plans)
        self.agents_by_type[FamilyAgent].do("step")
        self.apply()
        self.life_course()
        self.week += 1

    # twin: sim.rules.allocation.used_units
    def units_free(self) -> list[int]:
        """Units free at each service now: capacity units less those in use (never < 0)."""
        used = [0] * len(self.services)
        for f in self.families:
            for t in range(N_TYPES):
                if f.status[t] == ENROLLED:
                    used[f.service[t]] += f.days_and_units(t)[1]
        return [max(svc.capacity_units - used[svc.sid], 0) for svc in self.services]

    # twin: sim.rules.information.contact_probability
    def contact_pools(self) -> None:
        """Who outreach workers and brokers can contact this week, and with what chance."""
        info = self.spec.information
        pop = self.spec.population
        self.outreach_pool = set()
        self.broker_pool = set()
        broker_counts = [0] * len(self.broker_capacity)
        for f in self.families:
            young = -pop.pregnancy_known_weeks <= f.youngest_age_weeks < U3_WEEKS
            # 'prior contact': enrolled or waitlisted at a service other than health
            in_contact = any(
                f.status[t] in (ENROLLED, WAITLISTED) for t in range(N_TYPES) if t != HEALTH
            )
            pooled = young and not in_contact
            if info.outreach_targeting == "deprived_neighbourhoods":
                pooled = pooled and f.deprivation_rank >= 1.0 - info.outreach_deprived_share
            if pooled:
                self.outreach_pool.add(f)
            if young and not f.broker_contacted:
                self.broker_pool.add(f)
                broker_counts[f.language] += 1
        n = len(self.outreach_pool)
        self.p_outreach = 0.0 if n == 0 else min(1.0, self.outreach_capacity / n)
        self.p_broker = [
            0.0 if count == 0 else min(1.0, capacity / count)
            for capacity, count in zip(self.broker_capacity, broker_counts, strict=True)
        ]

    # twin: sim.engine.week.Engine.step
    def apply(self) -> None:
        """Phase B, in the fixed order of DESIGN §2."""
        count = {
            "aware_events": 0,
            "outreach_visits": 0,
            "broker_contacts": 0,
            "coordinator_assessments": 0,
            "hub_referrals": sum(f.plan["hub_referrals"] for f in self.families),
        }
        self._information(count)
        self._end_cooldowns()
        self._drop_outs(count)
        self._give_ups(count)
        self._join_queues(count)
        self._allocate(count)
        self._experience()
        self._meet(count)
        self._measure()
        if self.adaptive:
            self._policy_week()
            self.last.update(self.policy_snapshot())
        self._count(count)

    def _information(self, count: dict[str, int]) -> None:
        """1. Information: the week's awareness and contacts take effect."""
        for f in self.families:
            plan = f.plan
            for t in range(N_TYPES):
                if plan["new_aware"][t]:
                    count["aware_events"] += 1
                    f.aware[t] = True
            if plan["visited"]:
                count["outreach_visits"] += 1
            # a broker's contact, an outreach visit, then a referral, raise trust by gain x
            # (1 - trust); a visit also walks the family through its next application
            info = self.spec.information
            if plan["broker_contacted"]:
                f.trust += info.broker_trust_gain * (1.0 - f.trust)
            if plan["visited"]:
                f.trust += info.outreach_trust_gain * (1.0 - f.trust)
                if info.outreach_form_help:
                    f.form_help = True
                # the invitation to a meeting place; the ties hear of it next week
                fit = f.perceived_fit[PARENTING]
                f.perceived_fit[PARENTING] = fit + info.outreach_invitation_fit_gain * (1.0 - fit)
                f.visited_week = self.week
            if plan["referred"]:
                f.trust += info.referral_trust_gain * (1.0 - f.trust)
            if plan["broker_contacted"]:
                count["broker_contacts"] += 1
                f.broker_contacted = True
            if plan["staff_contacted"]:
                f.staff_contacted = True
            if plan["coordinated"]:
                count["coordinator_assessments"] += 1
                f.coordinated = True

    # twin: sim.rules.decisions.settle_exits_and_applications
    def _end_cooldowns(self) -> None:
        """2. A rejection's or drop-out's cooldown ends: the family may apply again."""
        cooldown = self.spec.behaviour.cooldown_weeks
        for f in self.families:
            for t in range(N_TYPES):
                if f.status[t] in (REJECTED, DROPPED) and f.status_week[t] + cooldown <= self.week:
                    f.status[t] = NONE

    # twin: sim.rules.decisions.settle_exits_and_applications
    def _drop_outs(self, count: dict[str, int]) -> None:
        """3. Drop-outs leave their place; the service is not chosen again this spell."""
        count["dropouts"] = 0
        for f in self.families:
            for t in range(N_TYPES):
                if f.plan["dropout"][t] and f.status[t] == ENROLLED:
                    f.status[t] = DROPPED
                    f.status_week[t] = self.week
                    f.excluded_service[t] = f.service[t]
                    # a drop-out lowers trust (DESIGN §2; EU WG ECEC: distrust as a barrier)
                    f.trust -= self.spec.behaviour.trust_loss_rejection * f.trust
                    count["dropouts"] += 1

    # twin: sim.rules.decisions.settle_exits_and_applications
    def _give_ups(self, count: dict[str, int]) -> None:
        """4. A request that waited too long ends without an offer (the family may register
        again after the cooldown)."""
        count["give_ups"] = 0
        for f in self.families:
            for t in range(N_TYPES):
                if f.plan["give_up"][t] and f.status[t] == WAITLISTED:
                    f.status[t] = REJECTED
                    f.status_week[t] = self.week
                    # so does a request that ended without an offer
                    f.trust -= self.spec.behaviour.trust_loss_rejection * f.trust
                    count["give_ups"] += 1

    # twin: sim.rules.decisions.settle_exits_and_applications
    def _join_queues(self, count: dict[str, int]) -> None:
        """5a. This week's registrations join their desk's list; a family without a hub
        file gets one at the hub of the first listed centre in a hub."""
        week = self.week
        count["applications"] = count["pre_birth_applications"] = 0
        for f in self.families:
            for t in range(N_TYPES):
                chosen = f.plan["chosen"][t]
                if chosen != NO_SERVICE and f.status[t] == NONE:
                    f.status[t] = WAITLISTED
                    f.form_help = False  # the help with the forms is used up
                    f.service[t] = chosen
                    listed = f.plan["registered"][t]
                    f.registered[t] = listed + [NO_SERVICE] * (len(f.registered[t]) - len(listed))
                    # one registration for all the hub offers: the first listed centre in a
                    # hub opens the family's file there
                    for sid in listed:
                        if f.hub_file == NO_HUB:
                            f.hub_file = self.services[sid].hub
                    f.applied_week[t] = week
                    f.status_week[t] = week
                    count["applications"] += 1
                    if t == CHILDCARE and f.youngest_age_weeks < 0:
                        count["pre_birth_applications"] += 1

    # twin: sim.engine.week.Engine.allocate
    # twin: sim.rules.allocation.desk_order
    # twin: sim.rules.allocation.offer_places
    def _allocate(self, count: dict[str, int]) -> None:
        """5b. Each type's desk goes through the ready requests in its priority order and
        offers each the first centre of its list with room for it after this week's exits;
        an offer not from the first choice may be declined; a ready newcomer without an
        offer waits, or is rejected where none of its centres keeps a list."""
        beh = self.spec.behaviour
        week = self.week
        families = self.families
        free = self.units_free()
        requests = []
        for f in families:
            for t in range(N_TYPES):
                if f.status[t] == WAITLISTED and f.ready(t):
                    draw = rng.bits_one(self.seed, "admission", week, f.key, t)
                    order = (t, f.priority_class(t), f.applied_week[t], draw, f.key)
                    requests.append((order, f, t))
        requests.sort(key=lambda item: item[0])
        offers = [[0] * 5 for _ in range(N_TYPES)]
        count["admissions"] = count["declined_offers"] = 0
        for _, f, t in requests:
            _, need_units = f.days_and_units(t)
            for k, sid in enumerate(f.registered[t]):
                if sid == NO_SERVICE:
                    break
                if free[sid] < need_units:
                    continue
                if k > 0 and (
                    rng.uniform_one(self.seed, "offer_decline", week, f.key, t)
                    < beh.offer_decline_prob
                ):
                    count["declined_offers"] += 1
                    break
                free[sid] -= need_units
                f.status[t] = ENROLLED
                f.status_week[t] = week
                f.service[t] = sid
                count["admissions"] += 1
                offers[t][0] += 1
                offers[t][1] += week - f.applied_week[t]
                offers[t][2] += week - f.desired_start(t, week)
                break
        for _, f, t in requests:
            if f.desired_start(t, week) == week:
                offers[t][3] += 1
                if f.status[t] != ENROLLED:
                    offers[t][4] += 1
        if week >= self.burn_in:
            for t in range(N_TYPES):
                for i in range(5):
                    self.offer_sums[t][i] += offers[t][i]
        count["capacity_binding"] = count["rejections"] = 0
        trust_loss: dict[int, list[float]] = {}
        for _, f, t in requests:
            if f.status[t] == ENROLLED:
                continue
            count["capacity_binding"] += 1
            # a ready newcomer without an offer: it waits, or is rejected where none of its
            # centres keeps a list
            keeps_list = any(
                sid != NO_SERVICE and self.services[sid].waitlist for sid in f.registered[t]
            )
            if f.applied_week[t] == week and not keeps_list:
                f.status[t] = REJECTED
                f.status_week[t] = week
                f.excluded_service[t] = f.service[t]
                count["rejections"] += 1
                # rejection lowers trust: loss = rate x trust before any of this week's losses
                trust_loss.setdefault(f.row, []).append(beh.trust_loss_rejection * f.trust)
        for row, losses in trust_loss.items():
            for loss in losses:
                families[row].trust -= loss
        count["waitlisted"] = sum(
            1 for f in families for t in range(N_TYPES) if f.status[t] == WAITLISTED
        )
        count["requests_due"] = sum(offers[t][3] for t in range(N_TYPES))
        count["requests_due_without_offer"] = sum(offers[t][4] for t in range(N_TYPES))

    # twin: sim.rules.experience.experience
    def _experience(self) -> None:
        """6. Experience: use raises trust and fit; hearing from users raises fit."""
        beh = self.spec.behaviour
        wom_gain = self.spec.information.wom_fit_gain
        for f in self.families:
            if any(s == ENROLLED for s in f.status):
                f.trust += beh.trust_gain_enrolled_week * (1.0 - f.trust)
            for t in range(N_TYPES):
                if f.status[t] == ENROLLED:
                    f.perceived_fit[t] += beh.fit_gain_enrolled_week * (1.0 - f.perceived_fit[t])
                elif f.plan["wom_heard"][t]:
                    f.perceived_fit[t] += wom_gain * (1.0 - f.perceived_fit[t])

    # twin: sim.engine.week.Engine.meet
    # twin: sim.rules.ties.attendance_partners
    def _meet(self, count: dict[str, int]) -> None:
        """6b. Attendance ties: each family enrolled at a childcare or parenting site, or at
        any service of a hub (one meeting place; a member once, by the first type it uses
        there), meets another member with probability attendance_tie_prob_week, picked
        among the place's other members in key order; the meetings become ties in (family
        key, type) order."""
        prob = self.spec.population.attendance_tie_prob_week
        seed, week = self.seed, self.week
        count["ties_formed_attendance"] = 0
        count.setdefault("ties_over_limit", 0)
        at_site: dict[int, dict[int, tuple[FamilyAgent, int]]] = {}
        for f in self.families:
            for t in range(N_TYPES):
                if f.status[t] != ENROLLED:
                    continue
                hub = self.services[f.service[t]].hub
                if hub != NO_HUB:
                    place = len(self.services) + hub
                elif t in (CHILDCARE, PARENTING):
                    place = f.service[t]
                else:
                    continue
                at_site.setdefault(place, {}).setdefault(f.row, (f, t))
        meetings = []
        for place in sorted(at_site):
            members = sorted(at_site[place].values(), key=lambda m: m[0].key)
            if prob <= 0.0 or len(members) < 2:
                continue
            for i, (f, t) in enumerate(members):
                if rng.uniform_one(seed, "attendance_tie", week, f.key, t) < prob:
                    u = rng.uniform_one(seed, "attendance_partner", week, f.key, t)
                    j = min(int(u * (len(members) - 1)), len(members) - 2)
                    partner = (members[j + 1] if j >= i else members[j])[0]
                    meetings.append((f.key, t, f, partner))
        meetings.sort(key=lambda m: (m[0], m[1]))
        count["attendance_meetings"] = len(meetings)
        for _, _, f, g in meetings:
            self.add_tie(f, g, count, "ties_formed_attendance")

    def _measure(self) -> None:
        """7. Measurement: the window's sums (after the burn-in) and the week's snapshot."""
        if self.week >= self.burn_in:
            self.record()
        self.last = self.snapshot()
        self.series.append(self.last)

    def _count(self, count: dict[str, int]) -> None:
        for key, value in count.items():
            self.counters[key] = self.counters.get(key, 0) + value

    # twin: sim.engine.week.Engine.end_episodes
    # twin: sim.rules.life_course.age_one_week
    def life_course(self) -> None:
        """Help-desk episodes end; children age; needs end; births; next pregnancies; a
        family leaving is replaced."""
        pop = self.spec.population
        seed, week = self.seed, self.week
        births = conceptions = renewals = 0
        renewed: list[FamilyAgent] = []
        episodes = self.spec.provision["admin_help"].episode_weeks
        gap_weeks = pop.admin_problem_gap_weeks
        ended = 0
        for f in self.families:
            # a help-desk episode ends after its weeks of help: the problem is solved, the next
            # one opens a keyed number of weeks later
            if (
                episodes > 0
                and f.status[ADMIN_HELP] == ENROLLED
                and week - f.status_week[ADMIN_HELP] + 1 >= episodes
            ):
                ended += 1
                bits = rng.bits_one(seed, "admin_problem_gap", week, f.key, ADMIN_HELP)
                f.status[ADMIN_HELP] = NONE
                f.status_week[ADMIN_HELP] = week
                f.excluded_service[ADMIN_HELP] = NO_SERVICE
                f.admin_problem_week = week + 1 + 1 + bits % (2 * gap_weeks - 1)
        for f in self.families:
            f.youngest_age_weeks += 1
            age = f.youngest_age_weeks
            ends = [False] * N_TYPES
            ends[CHILDCARE] = age >= pop.childcare_exit_age_weeks
            ends[HEALTH] = age >= pop.health_need_until_age_weeks
            ends[PARENTING] = age >= pop.parenting_need_until_age_weeks
            for t in range(N_TYPES):
                if ends[t]:
                    f.status[t] = NONE  # a status other than none ends with the need
                    f.excluded_service[t] = NO_SERVICE
            if age == 0:
                births += 1
                f.n_children += 1
            # a next pregnancy, once the youngest is old enough
            if age >= pop.min_birth_spacing_weeks:
                if rng.uniform_one(seed, "conception", week, f.key) < pop.next_birth_hazard_week:
                    conceptions += 1
                    f.youngest_age_weeks = -pop.gestation_weeks
                    plan = birth_plan(
                        self.spec,
                        seed,
                        np.array([f.key]),
                        week,
                        np.array([f.employed]),
                        np.array([f.is_arope]),
                    )
                    f.wants_formal_care = bool(plan["wants_formal_care"][0])
                    f.care_start_age_weeks = int(plan["care_start_age_weeks"][0])
                    f.care_days = int(plan["care_days"][0])
                    f.private_health = bool(plan["private_health"][0])
                    for t in (CHILDCARE, HEALTH):
                        f.status[t] = NONE
                        f.excluded_service[t] = NO_SERVICE
            # the youngest leaves the 0-12 range: a new family takes the slot
            if f.youngest_age_weeks >= pop.youngest_child_max_age_weeks:
                renewals += 1
                if week >= self.burn_in:
                    self.close(f)
                self.renew(f)
                renewed.append(f)
        count = {"ties_redrawn": 0, "ties_over_limit": 0}
        self.redraw_ties(renewed, count)
        self._count(count)
        self._count({"episodes_ended": ended})
        self._count({"births": births, "conceptions": conceptions, "renewals": renewals})

    def renew(self, f: FamilyAgent) -> None:
        pop = self.spec.population
        f.generation += 1
        if f.generation >= (1 << GENERATION_BITS):
            raise OverflowError("family generation counter exhausted")
        city = self.world.city
        columns = draw_generation(
            self.spec,
            self.seed,
            np.array([f.key], dtype=np.int64),
            city.log_income_shift[[f.x], [f.y]],
            np.array([f.deprivation]),
            np.array([f.is_local_language]),
            np.array([-pop.gestation_weeks], dtype=np.int32),
        )
        for name, values in columns.items():
            value = values[0]
            if name == "registered":
                f.registered = [[int(v) for v in per_type] for per_type in value]
            elif name in TYPE_COLUMNS:
                setattr(f, name, [_py(v) for v in value])
            else:
                setattr(f, name, _py(value))
        f.income_quintile = int(
            assign_quintiles(np.array([f.income_q], dtype=np.int64), self.world.quintile_cuts)[0]
        )
        # the previous family's ties leave with it, in both directions
        for row in f.ties:
            self.families[row].ties.remove(f.row)
        f.ties = []

    # --- ties ------------------------------------------------------------------------------

    # twin: sim.rules.ties.add_ties
    def add_tie(self, f: FamilyAgent, g: FamilyAgent, count: dict[str, int], formed: str) -> None:
        """A tie between f and g, unless it is a self-tie, exists already, or either family
        holds the most ties it can (then counted as over the limit)."""
        if f is g or g.row in f.ties:
            return
        if len(f.ties) >= self.max_ties or len(g.ties) >= self.max_ties:
            count["ties_over_limit"] += 1
            return
        f.ties.append(g.row)
        g.ties.append(f.row)
        count[formed] += 1

    def neighbours(self, f: FamilyAgent) -> list[FamilyAgent]:
        """The other families within tie_radius_cells (dx^2 + dy^2 <= r^2), in key order."""
        r = self.spec.population.tie_radius_cells
        out = []
        for dx in range(-r, r + 1):
            for dy in range(-r, r + 1):
                if dx * dx + dy * dy > r * r:
                    continue
                for g in self.in_cell.get((f.x + dx, f.y + dy), []):
                    if g is not f:
                        out.append(g)
        return sorted(out, key=lambda g: g.key)

    # twin: sim.engine.week.Engine._redraw_ties
    # twin: sim.world.population.redraw_ties
    # twin: sim.world.population.TieIndex.neighbour_picks_by_key
    def redraw_ties(self, renewed: list[FamilyAgent], count: dict[str, int]) -> None:
        """The new families of the week draw their own ties, by the rules of the build keyed
        by their key and the week: in key order, each its spatial ties (a same-language
        neighbour with probability tie_homophily if there is one, else any neighbour), then
        its community ties (anyone of its language group, in key order)."""
        pop = self.spec.population
        seed, week = self.seed, self.week
        for f in sorted(renewed, key=lambda g: g.key):
            partners = []
            if pop.ties_spatial > 0:
                neighbours = self.neighbours(f)
                same = [g for g in neighbours if g.language == f.language]
                for k in range(pop.ties_spatial):
                    homophilous = rng.uniform_one(seed, "tie_homophily", week, f.key, k)
                    pool = same if (homophilous < pop.tie_homophily and same) else neighbours
                    u = rng.uniform_one(seed, "tie_spatial", week, f.key, k)
                    if pool:
                        partners.append(pool[min(int(u * len(pool)), len(pool) - 1)])
            members = sorted(self.in_language[f.language], key=lambda g: g.key)
            if len(members) >= 2:
                for k in range(pop.ties_community):
                    u = rng.uniform_one(seed, "tie_community", week, f.key, k)
                    partners.append(members[min(int(u * len(members)), len(members) - 1)])
            for g in partners:
                self.add_tie(f, g, count, "ties_redrawn")

    # --- measures --------------------------------------------------------------------------

    # twin: sim.measure.metrics.WindowAccumulator
    def _init_measures(self) -> None:
        self.measured_weeks = 0
        self.weekly = {g: [] for g in GROUPS}
        # [group][type], group = AROPE (0/1) + 2 x non-local home language (0/1)
        self.closed_need = [[0] * N_TYPES for _ in range(4)]
        self.closed_used = [[0] * N_TYPES for _ in range(4)]
        self.closed_multi_need = 0
        self.closed_multi_used = 0
        self.closed_health_age = [0] * 4  # by group: families with a child in health age range
        self.closed_ci: list[tuple[int, int, int, int]] = []  # (weeks, enrolled, income, key)
        self.blocked = [[0] * len(DIMENSIONS) for _ in range(N_TYPES)]  # [type][dimension]
        self.main = [[0] * len(DIMENSIONS) for _ in range(N_TYPES)]
        self.main_by_group = [[0] * len(DIMENSIONS) for _ in range(4)]
        self.unmet_weeks = 0
        self.waitlist_sum = 0
        self.capacity_use_sum = 0.0
        self.capacity_use_count = 0  # public places in use this week
        self.fee_revenue_cents = 0
        self.enrolled_u3 = {"all": 0, "arope": 0}
        # [type][band of the nearest service]
        self.closed_band_need = [[0] * len(TRAVEL_BAND_LABELS) for _ in range(N_TYPES)]
        self.closed_band_used = [[0] * len(TRAVEL_BAND_LABELS) for _ in range(N_TYPES)]
        self.channel_events = [0] * len(CHANNELS)
        # per service: units in use and first-choice requests waiting, over measured weeks
        self.site_used_units = [0] * len(self.services)
        self.site_waiting = [0] * len(self.services)
        self.closed_eligible_need = self.closed_eligible_used = 0
        self.means_line_by_type = []
        for name in SERVICE_TYPES:
            spec = self.spec.provision[name]
            means_tested = spec.eligibility == "means_tested"
            line = cents(spec.means_test_line_eur_year) * INCOME_SCALE if means_tested else -1
            self.means_line_by_type.append(line)
        self.uncontacted_need_weeks = 0
        self.uncontacted_aware_weeks = 0
        self.wom_uncontacted_events = 0
        self.nearest_minutes_sum = 0
        self.need_weeks = 0
        self.used_minutes_sum = 0
        self.use_weeks = 0
        s = self.world.services.services
        self.outlay_parts = outlay_parts_cents(
            self.spec,
            s.is_public,
            s.capacity,
            s.unit_cost_cents,
            s.means_test_admin_cents,
            s.interpreters,
            len(self.world.services.hub_cells),
        )
        self.outlay_cents = sum(self.outlay_parts.values())
        self.public_capacity = sum(svc.capacity_units for svc in self.services if svc.is_public)
        self.offer_sums = [[0] * 5 for _ in range(N_TYPES)]
        self.care_days_sum = 0

    @staticmethod
    def band(minutes: int) -> int:
        """Travel band of the nearest service: the number of band edges below the minutes."""
        return sum(1 for edge in TRAVEL_BAND_EDGES if edge < minutes)

    # twin: sim.measure.metrics.WindowAccumulator.record
    def record(self) -> None:
        counts = {g: [0, 0] for g in GROUPS}  # [children under 3, of whom in childcare]
        for f in self.families:
            u3 = 0 <= f.youngest_age_weeks < U3_WEEKS
            in_care = u3 and f.status[CHILDCARE] == ENROLLED
            if u3:
                groups = ["all", "arope" if f.is_arope else "non_arope", f"q{f.income_quintile}"]
                if f.youngest_age_weeks >= THREE_MONTHS_WEEKS:
                    groups.append("3m_3y")
                for g in groups:
                    counts[g][0] += 1
                    counts[g][1] += int(in_care)
                f.u3_weeks += 1
            if 0 <= f.youngest_age_weeks < self.spec.population.health_need_until_age_weeks:
                f.health_age_seen = True
            if in_care:
                f.u3_enrolled_weeks += 1
                self.care_days_sum += f.care_days
                self.enrolled_u3["all"] += 1
                if f.is_arope:
                    self.enrolled_u3["arope"] += 1
            need = f.needs()
            for t in range(N_TYPES):
                enrolled = f.status[t] == ENROLLED
                if f.plan["channel"][t] >= 0:
                    self.channel_events[f.plan["channel"][t]] += 1
                line = self.means_line_by_type[t]
                if need[t] and line >= 0 and f.income_q < line:
                    f.eligible_need_seen[t] = True
                if enrolled and self.services[f.service[t]].means_tested:
                    f.means_tested_used_seen[t] = True
                if enrolled:
                    self.site_used_units[f.service[t]] += f.days_and_units(t)[1]
                elif f.status[t] == WAITLISTED:
                    self.site_waiting[f.service[t]] += 1
                f.need_seen[t] = f.need_seen[t] or need[t]
                f.used_seen[t] = f.used_seen[t] or enrolled
                if need[t] and not f.staff_contacted:
                    self.uncontacted_need_weeks += 1
                    if f.aware[t]:
                        self.uncontacted_aware_weeks += 1
                if f.plan["wom_aware"][t] and not f.staff_contacted:
                    self.wom_uncontacted_events += 1
                if need[t]:
                    self.nearest_minutes_sum += f.nearest_minutes[t]
                    self.need_weeks += 1
                if enrolled:
                    minutes, _ = f.minutes_to(t, f.service[t])
                    self.used_minutes_sum += minutes
                    self.use_weeks += 1
                if need[t] and not enrolled:
                    self.log_unmet(f, t)
                if enrolled:
                    svc = self.services[f.service[t]]
                    if svc.is_public:
                        days, used = f.days_and_units(t)
                        self.capacity_use_count += used
                        self.fee_revenue_cents += svc.fee_cents(f.income_q) * days // DAYS_PER_WEEK
                if f.status[t] == WAITLISTED:
                    self.waitlist_sum += 1
        for g in GROUPS:
            n, in_care = counts[g]
            self.weekly[g].append(float(in_care) / n if n else float("nan"))
        cap = self.public_capacity
        self.capacity_use_sum += float(self.capacity_use_count) / cap if cap else 0.0
        self.capacity_use_count = 0
        self.measured_weeks += 1

    # twin: sim.measure.metrics.WindowAccumulator.record
    def log_unmet(self, f: FamilyAgent, t: int) -> None:
        """Barrier log of one unmet need: all blocking dimensions, and the first in cascade."""
        blocks = self.unmet_blocks(f, t)
        for d in range(len(DIMENSIONS)):
            self.blocked[t][d] += int(blocks[d])
        self.main[t][blocks.index(True)] += 1
        group = int(f.is_arope) + 2 * int(not f.is_local_language)
        self.main_by_group[group][blocks.index(True)] += 1
        self.unmet_weeks += 1

    # twin: sim.rules.policy.unmet_block
    # twin: sim.rules.policy.unmet_fallback
    def unmet_blocks(self, f: FamilyAgent, t: int) -> list[bool]:
        """The dimensions blocking one unmet need in the barrier log (at least one)."""
        blocks = list(f.plan["preferred_blocks"][t])
        room = f.plan["empty_place"][t]
        if not f.aware[t] or f.plan["new_aware"][t]:  # unaware when the week's decisions were made
            blocks[INFORMATION_DIM] = True
        if f.status[t] in (WAITLISTED, REJECTED):
            # waiting while a place it would accept stood empty is matching, not capacity
            blocks[MATCHING_DIM if room else CAPACITY_DIM] = True
        if not any(blocks):
            # aware, unblocked, unserved: after a drop-out the offer did not fit; otherwise
            # the family did not get a place: one stood empty (matching) or none (capacity)
            if f.status[t] == DROPPED:
                blocks[FIT_DIM] = True
            else:
                blocks[MATCHING_DIM if room else CAPACITY_DIM] = True
        return blocks

    # twin: sim.measure.metrics.WindowAccumulator.close
    def close(self, f: FamilyAgent) -> None:
        """A generation leaves during the window: its family-level measures are closed."""
        g = int(f.is_arope) + 2 * int(not f.is_local_language)
        needs, useds = 0, 0
        for t in range(N_TYPES):
            need = f.need_seen[t]
            used = need and f.used_seen[t]
            self.closed_need[g][t] += int(need)
            self.closed_used[g][t] += int(used)
            if need:
                needs += 1
                self.closed_band_need[t][self.band(f.nearest_minutes[t])] += 1
            if used:
                useds += 1
                self.closed_band_used[t][self.band(f.nearest_minutes[t])] += 1
        if needs >= 2:
            self.closed_multi_need += 1
            if useds >= 2:
                self.closed_multi_used += 1
        self.closed_health_age[g] += int(f.health_age_seen)
        f.health_age_seen = False
        if f.u3_weeks > 0:
            self.closed_ci.append((f.u3_weeks, f.u3_enrolled_weeks, f.income_q, f.key))
        for t in range(N_TYPES):
            if f.eligible_need_seen[t]:
                self.closed_eligible_need += 1
                self.closed_eligible_used += int(f.means_tested_used_seen[t])
        f.need_seen = [False] * N_TYPES
        f.used_seen = [False] * N_TYPES
        f.eligible_need_seen = [False] * N_TYPES
        f.means_tested_used_seen = [False] * N_TYPES
        f.u3_weeks = 0
        f.u3_enrolled_weeks = 0

    # twin: sim.measure.metrics.WindowAccumulator.snapshot
    def snapshot(self) -> dict[str, float]:
        """This week's aggregates (every week, burn-in included)."""
        out: dict[str, float] = {
            "week": float(self.week),
            "measured": float(self.week >= self.burn_in),
        }
        counts = {g: [0, 0] for g in ("all", "arope", "non_arope")}
        enrolled = [0] * N_TYPES
        aware = [0] * N_TYPES
        waitlist = public_enrolled = 0
        trust_values = []
        for f in self.families:
            if 0 <= f.youngest_age_weeks < U3_WEEKS:
                in_care = int(f.status[CHILDCARE] == ENROLLED)
                for g in ("all", "arope" if f.is_arope else "non_arope"):
                    counts[g][0] += 1
                    counts[g][1] += in_care
            for t in range(N_TYPES):
                if f.status[t] == ENROLLED:
                    enrolled[t] += 1
                    if self.services[f.service[t]].is_public:
                        public_enrolled += f.days_and_units(t)[1]
                if f.status[t] == WAITLISTED:
                    waitlist += 1
                aware[t] += int(f.aware[t])
            trust_values.append(f.trust)
        for g, (n, in_care) in counts.items():
            out[f"u3_participation_{g}"] = float(in_care) / n if n else float("nan")
        out["children_u3"] = float(counts["all"][0])
        out["waitlist_total"] = float(waitlist)
        n = len(self.families)
        for t, name in enumerate(SERVICE_TYPES):
            out[f"enrolled_{name}"] = float(enrolled[t])
            out[f"aware_{name}"] = aware[t] / n
        cap = self.public_capacity
        out["capacity_use"] = public_enrolled / cap if cap else 0.0
        out["mean_trust"] = math.fsum(trust_values) / n
        return out

    # twin: sim.measure.metrics.WindowAccumulator.result
    def metrics(self) -> dict[str, float]:
        """Every measure of the window, with the fast engine's definitions."""
        nan = float("nan")
        out: dict[str, float] = {}
        for g in GROUPS:
            finite = [v for v in self.weekly[g] if not math.isnan(v)]
            out[f"u3_participation_{g}"] = math.fsum(finite) / len(finite) if finite else nan
        out["u3_gap_pp"] = 100.0 * (
            out["u3_participation_non_arope"] - out["u3_participation_arope"]
        )
        non = out["u3_participation_non_arope"]
        out["u3_ratio"] = out["u3_participation_arope"] / non if non > 0 else nan

        # family-level measures: closed generations plus the families present at the end
        need_cnt = [list(row) for row in self.closed_need]
        used_cnt = [list(row) for row in self.closed_used]
        multi_need, multi_used = self.closed_multi_need, self.closed_multi_used
        band_need = [list(row) for row in self.closed_band_need]
        band_used = [list(row) for row in self.closed_band_used]
        eligible_need, eligible_used = self.closed_eligible_need, self.closed_eligible_used
        health_age = list(self.closed_health_age)
        for f in self.families:
            g = int(f.is_arope) + 2 * int(not f.is_local_language)
            health_age[g] += int(f.health_age_seen)
            needs = useds = 0
            for t in range(N_TYPES):
                need = f.need_seen[t]
                used = need and f.used_seen[t]
                need_cnt[g][t] += int(need)
                used_cnt[g][t] += int(used)
                needs += int(need)
                useds += int(used)
                if need:
                    band_need[t][self.band(f.nearest_minutes[t])] += 1
                if used:
                    band_used[t][self.band(f.nearest_minutes[t])] += 1
                if f.eligible_need_seen[t]:
                    eligible_need += 1
                    eligible_used += int(f.means_tested_used_seen[t])
            if needs >= 2:
                multi_need += 1
                multi_used += int(useds >= 2)
        for t, name in enumerate(SERVICE_TYPES):
            for groups, label in (
                ((1, 3), "arope"),
                ((0, 2), "non_arope"),
                ((0, 1), "by_language_local"),
                ((2, 3), "by_language_non_local"),
            ):
                need_g = sum(need_cnt[g][t] for g in groups)
                used_g = sum(used_cnt[g][t] for g in groups)
                out[f"takeup_{name}_{label}"] = used_g / need_g if need_g else nan
        for label, groups in HEALTH_ENROLMENT_GROUPS.items():
            in_range = sum(health_age[g] for g in groups)
            used_g = sum(used_cnt[g][HEALTH] for g in groups)
            out[f"health_enrolment_{label}"] = used_g / in_range if in_range else nan
        total_need = sum(map(sum, need_cnt))
        total_used = sum(map(sum, used_cnt))
        out["unmet_need_share"] = (total_need - total_used) / total_need if total_need else nan
        out["multi_service_share"] = multi_used / multi_need if multi_need else nan
        out["concentration_index"] = self.erreygers()
        for b, label in enumerate(TRAVEL_BAND_LABELS):
            need_b = sum(band_need[t][b] for t in range(N_TYPES))
            used_b = sum(band_used[t][b] for t in range(N_TYPES))
            out[f"takeup_travel_{label}"] = used_b / need_b if need_b else nan
        for b, label in enumerate(TRAVEL_BAND_LABELS):
            need_b, used_b = band_need[CHILDCARE][b], band_used[CHILDCARE][b]
            out[f"takeup_travel_childcare_{label}"] = used_b / need_b if need_b else nan
        for groups, label in (((0, 1), "local"), ((2, 3), "non_local")):
            need_g = sum(need_cnt[g][t] for g in groups for t in range(N_TYPES))
            used_g = sum(used_cnt[g][t] for g in groups for t in range(N_TYPES))
            out[f"unmet_need_share_by_language_{label}"] = (
                (need_g - used_g) / need_g if need_g else nan
            )
        events = sum(self.channel_events)
        for c, name in enumerate(CHANNELS):
            out[f"awareness_by_channel_{name}"] = self.channel_events[c] / events if events else nan
        out["means_tested_nontakeup_share"] = (
            (eligible_need - eligible_used) / eligible_need if eligible_need else nan
        )
        out["aware_share_uncontacted"] = (
            self.uncontacted_aware_weeks / self.uncontacted_need_weeks
            if self.uncontacted_need_weeks
            else nan
        )
        out["wom_awareness_uncontacted_week"] = self.wom_uncontacted_events / max(
            self.measured_weeks, 1
        )
        for d, name in enumerate(DIMENSIONS):
            blocked = sum(self.blocked[t][d] for t in range(N_TYPES))
            main = sum(self.main[t][d] for t in range(N_TYPES))
            out[f"blocked_by_{name}"] = blocked / self.unmet_weeks if self.unmet_weeks else 0.0
            out[f"main_barrier_{name}"] = main / self.unmet_weeks if self.unmet_weeks else 0.0
        for t, type_name in enumerate(SERVICE_TYPES):
            unmet = sum(self.main[t])
            for d, name in enumerate(DIMENSIONS):
                out[f"blocked_by_{name}_{type_name}"] = self.blocked[t][d] / unmet if unmet else 0.0
                out[f"main_barrier_{name}_{type_name}"] = self.main[t][d] / unmet if unmet else 0.0
        # AROPE families (groups 1, 3) and non-local-language families (2, 3)
        for label, groups in (("arope", (1, 3)), ("non_local", (2, 3))):
            counts = [sum(self.main_by_group[g][d] for g in groups) for d in range(len(DIMENSIONS))]
            unmet = sum(counts)
            for d, name in enumerate(DIMENSIONS):
                out[f"main_barrier_{name}_{label}"] = counts[d] / unmet if unmet else 0.0
        weeks = max(self.measured_weeks, 1)
        out["waitlist_total"] = self.waitlist_sum / weeks
        out["capacity_use"] = self.capacity_use_sum / weeks
        out["public_outlay_eur_week"] = self.outlay_cents / 100.0
        out["net_cost_eur_week"] = (self.outlay_cents - self.fee_revenue_cents / weeks) / 100.0
        table = self.world.services.services
        out["means_test_line_childcare_eur_year"] = childcare_means_line_eur_year(
            table.is_public, table.type, table.means_tested, table.means_line_q
        )
        for part, value in self.outlay_parts.items():
            out[f"outlay_{part}_eur_week"] = value / 100.0
        out["fee_revenue_eur_week"] = self.fee_revenue_cents / weeks / 100.0
        out["u3_enrolled_arope"] = self.enrolled_u3["arope"] / weeks
        out["u3_enrolled_all"] = self.enrolled_u3["all"] / weeks
        out["travel_minutes_nearest"] = (
            self.nearest_minutes_sum / self.need_weeks if self.need_weeks else nan
        )
        out["travel_minutes_used"] = (
            self.used_minutes_sum / self.use_weeks if self.use_weeks else nan
        )
        offers = self.offer_sums
        for t, name in enumerate(SERVICE_TYPES):
            n = offers[t][0]
            out[f"waiting_weeks_{name}"] = offers[t][1] / n if n else nan
        n = offers[CHILDCARE][0]
        out["waiting_weeks_after_start_childcare"] = offers[CHILDCARE][2] / n if n else nan
        due = offers[CHILDCARE][3]
        out["requests_without_offer_share"] = offers[CHILDCARE][4] / due if due else nan
        cared = self.enrolled_u3["all"]
        out["childcare_days_mean"] = self.care_days_sum / cared if cared else nan
        return out

    # twin: sim.measure.metrics.WindowAccumulator._erreygers
    def erreygers(self) -> float:
        """Erreygers-corrected concentration index E = 8 cov_w(h, r) of under-3 childcare
        enrolment over income rank; h = share of a child's window weeks under 3 spent enrolled,
        r = weighted fractional rank by (income, family key), weight = weeks under 3."""
        rows = list(self.closed_ci)
        for f in self.families:
            if f.u3_weeks > 0:
                rows.append((f.u3_weeks, f.u3_enrolled_weeks, f.income_q, f.key))
        if len(rows) < 2:
            return float("nan")
        rows.sort(key=lambda r: (r[2], r[3]))
        weights = [float(r[0]) for r in rows]
        shares = [r[1] / float(r[0]) for r in rows]
        total = math.fsum(weights)
        if total <= 0:
            return float("nan")
        ranks = []
        running = 0.0
        for w in weights:
            running += w  # exact: integer sums well below 2**53
            ranks.append((running - 0.5 * w) / total)
        mean_h = math.fsum(w * h for w, h in zip(weights, shares, strict=True)) / total
        mean_r = math.fsum(w * r for w, r in zip(weights, ranks, strict=True)) / total
        cov = (
            math.fsum(
                w * (h - mean_h) * (r - mean_r)
                for w, h, r in zip(weights, shares, ranks, strict=True)
            )
            / total
        )
        return 8.0 * cov

    # --- state for docking -----------------------------------------------------------------

    def state_columns(self, names) -> dict[str, np.ndarray]:
        """Family state as arrays in row order (for comparison with the fast engine)."""
        return {name: np.array([getattr(f, name) for f in self.families]) for name in names}
