"""The named records the engine hands the compiled kernels (numba takes named tuples as
arguments, of arrays or of scalars).

A kernel reads every input by name (`fam.trust[r]`, `behaviour.cooldown_weeks`), so two
probabilities or two arrays of one shape can no longer be swapped by their position in a long
argument list: a wrong record does not compile, and a field is read by what it is. A record
is built outside the loops that read it (once per engine, week or chunk), except the two
scalar records of one pair (`PairFamily`, `PairOffer`), which the compiled code keeps in
registers. Units are those of the column store (`sim.world.population.FamilyTable`) and of
the service tables (`sim.world.services.ServiceTable`).

A record's field types are part of a kernel's compiled signature: a field that changes type
(an int32 array where there was an int64 one, a float where there was an int) compiles the
kernel again for the new types, and one the kernel cannot use in that type fails to compile
(see `sim.core.compiled`).
"""

from __future__ import annotations

from collections import namedtuple

# what the kernels read and write of the column store: a view of the FamilyTable's arrays,
# never copies (a kernel's write is the table's)
FamilyColumns = namedtuple(
    "FamilyColumns",
    [
        "key",
        "youngest_age_weeks",
        "care_start_age_weeks",
        "care_days",
        "n_children",
        "income_q",
        "cost_share_bp",
        "mode",
        "max_travel_minutes",
        "atypical_hours",
        "hours_severity",
        "hours_tolerance",
        "paperwork",
        "admin_tolerance",
        "language",
        "is_local_language",
        "proficiency",
        "broker_contacted",
        "language_tolerance",
        "stigma_sensitivity",
        "trust",
        "stigma_tolerance",
        "trust_tolerance",
        "perceived_fit",
        "fit_threshold",
        "coordinated",
        "form_help",
        "visited_week",
        "hub_file",
        "ties",
        "tie_count",
        "aware",
        "status",
        "service",
        "status_week",
        "applied_week",
        "excluded_service",
        "registered",
        "employed",
        "deprivation_rank",
    ],
)
# what they read of the services
ServiceColumns = namedtuple(
    "ServiceColumns",
    [
        "hub",
        "stigma_label",
        "trust_required",
        "speaks",
        "interpreters",
        "extended_hours",
        "hours_weight",
        "admin_complexity",
        "schedule",
        "trips_per_week",
        "visit_interval_weeks",
        "quality",
        "means_tested",
        "means_line_q",
        "waitlist",
        "capacity_units",
    ],
)
# scenario constants the barrier formulas read
BarrierParams = namedtuple(
    "BarrierParams",
    [
        "factor_tenths",  # household equivalence factor x 10 (int)
        "hub_stigma_factor",  # a hub's mixed clientele multiplies the stigma label
        "hub_trust_carryover",  # share of a hub service's trust requirement waived for its users
        "interpreter_comprehension",
        "broker_comprehension_gain",
        "car_cents_per_minute",  # int cents
        "transit_fare_cents",  # int cents a trip
        "tolerance_pct",  # int [T]: % of a family's max travel minutes accepted per type
    ],
)
# per type, the most favourable value of each service attribute (`decisions.could_accept`)
TypeBounds = namedtuple(
    "TypeBounds",
    [
        "n_schedules",
        "schedules",
        "trips",
        "interval",  # the longest visit interval of the type's services
        "extended",
        "hours_weight",
        "admin",
        "speaks",
        "interpreter",
        "stigma",
        "trust_required",
        "quality",
    ],
)
# the candidate lists (`sim.world.travel`): per type t, family row r's candidates are
# service[t][indptr[t][r]:indptr[t][r + 1]] at minutes[t][...], nearest first; and the
# nearest service of each type anywhere [F, T], with its minutes
Candidates = namedtuple(
    "Candidates", ["indptr", "service", "minutes", "nearest_service", "nearest_minutes"]
)
# the service the barrier log evaluates for each (family, type) [F, T], its minutes, and
# whether the family has candidates but none it may use (`decisions.nearest_eligible`)
Preferred = namedtuple("Preferred", ["service", "minutes", "none_eligible"])

# -- one week -------------------------------------------------------------------------------

# what phase A reads of the week beyond the column store: the week number; this week's
# needs and where an application is possible (bool [F, T]); the hub of each service in use
# (int [F, T], NO_HUB if none); how many of each family's ties use each type (int [F, T]);
# the minutes to each service waited for or used (int [F, T]); the hash states of the
# week's keyed streams (`sim.core.rng.WeekStreams`)
# and the units (childcare days, or users) each service had free at the end of last week
WeekState = namedtuple(
    "WeekState",
    [
        "week",
        "need",
        "applicable",
        "enrolled_hub",
        "tie_users",
        "service_minutes",
        "streams",
        "free_units",
    ],
)
# scenario constants of the week's behaviour: the weekly drop-out hazard (base + slope x
# felt barrier), weeks on a waiting list before a ready family gives up, weeks before a
# family rejected or dropped out may apply again, and the weekly gains of experience
Behaviour = namedtuple(
    "Behaviour",
    [
        "dropout_base",
        "dropout_slope",
        "patience_weeks",
        "cooldown_weeks",
        "trust_gain",  # using any service, a week
        "trust_loss",  # share of trust lost at a drop-out or a request ended without an offer
        "fit_gain",  # using a service of the type, a week
        "wom_fit_gain",  # hearing of the type from ties who use it, a week
    ],
)
# the life course: per type, the age (weeks) at which the need ends (-1: it does not end
# with age); the youngest's age from which a next pregnancy can start; its weekly hazard
LifeCourse = namedtuple(
    "LifeCourse", ["need_ends_at", "min_birth_spacing_weeks", "conception_hazard"]
)

# -- information (`sim.rules.information.channel_events`) -----------------------------------

# the channels' constants: the first contact's reach and the interpreter's level at it,
# which types it tells of (bool [T]); the word-of-mouth chance by number of ties using the
# type; the weekly referral chance between separate services and inside a hub; which hub
# offers which type (bool [hubs, T]); whether hubs have a coordinator
InformationChannels = namedtuple(
    "InformationChannels",
    [
        "first_contact_reach",
        "first_contact_interpreter",
        "outreach_interpreter",  # the interpreter's level at an outreach visit (0: none)
        "informs",
        "wom_probability",
        "outreach_tie_probability",  # by number of ties visited last week, 1 - (1 - p)^n
        "referral_prob",
        "hub_referral_prob",
        "hub_has_type",
        "coordinator",
    ],
)
# this week's contact pools (bool [F]) and chances: outreach visits (one chance for the
# pool) and brokers (a chance per language)
ContactPools = namedtuple(
    "ContactPools", ["outreach_pool", "p_outreach", "broker_pool", "p_broker"]
)
# what the channels write into the week's plan
InformationEvents = namedtuple(
    "InformationEvents",
    [
        "new_aware",  # bool [F, T]
        "wom_heard",  # bool [F, T]: ties used the type last week
        "wom_aware",  # bool [F, T]: newly aware through word of mouth
        "broker_contacted",  # bool [F]
        "staff_contacted",  # bool [F]: an outreach visit or a broker
        "visited",  # bool [F]: an outreach visit
        "coordinated",  # bool [F]: assessed by a hub coordinator
        "first_contact",  # bool [F]: reached by the health service's home visit after birth
        "referred",  # bool [F]: referred this week by a service in use
        "channel",  # int8 [F, T]: the first channel that told of a type newly known (CHANNELS)
    ],
)

# -- decisions (`sim.rules.decisions`) -------------------------------------------------------

# the registration made this week: its first choice [F, T] (NO_SERVICE if none) and its travel
# minutes, and every centre listed [F, T, K] (NO_SERVICE after the last) with its minutes
Chosen = namedtuple("Chosen", ["service", "minutes", "registered", "registered_minutes"])
# the registration desk of each type (`sim.rules.allocation`): its priority rule, the means
# line its need-weighted rule reads, and the deprivation rank from which it gives priority
Desk = namedtuple("Desk", ["rule", "means_line_q", "rank_min"])
# what the desks' week reads: the decline chance of an offer that is not the first choice,
# the week, and the hash state of the week's `offer_decline` stream
Offers = namedtuple("Offers", ["decline_prob", "week", "decline_stream"])
# this week's drop-outs and give-ups (bool [F, T])
ExitFlags = namedtuple("ExitFlags", ["dropout", "give_up"])

# -- one (family, service) pair (`sim.rules.barriers.pair_barriers`) -------------------------

# the family's side: its income and thresholds, and what it brings to the pair
PairFamily = namedtuple(
    "PairFamily",
    [
        "income_q",
        "household_factor_tenths",
        "cost_share_bp",
        "max_minutes",
        "atypical_hours",
        "hours_severity",
        "hours_tolerance",
        "paperwork",
        "admin_tolerance",
        "proficiency",
        "broker_gain",  # 0 unless the family was contacted by its group's broker
        "language_tolerance",
        "stigma_sensitivity",
        "trust",
        "stigma_tolerance",
        "trust_tolerance",
        "perceived_fit",  # of the service's type
        "fit_threshold",
    ],
)
# the service's side as this family meets it
PairOffer = namedtuple(
    "PairOffer",
    [
        "weekly_cost_cents",  # fee + trips x trip cost
        "minutes",
        "extended_hours",
        "hours_weight",  # share of an atypical schedule's mismatch this service's rhythm meets
        "admin_complexity",  # after any hub-intake or coordinator waiver
        "speaks_language",  # the family's language
        "interpreter_comprehension",  # 0 where the service has no interpreters
        "stigma_label",  # after the hub's mixed-clientele factor
        "trust_required",  # the trust approaching the service takes
        "quality",
    ],
)
