"""The vocabulary every layer shares: service types, barrier dimensions, the integer codes
stored in the column store and the service tables, and the fixed units they are written in.

Nothing here is a parameter: each name is a code or a unit the rules, the world builders,
the engine, the measures and the reports must agree on. A behavioural number belongs in the
scenario schema (`sim.scenario.schema`) with its source, not here.
"""

from __future__ import annotations

# -- service types and barrier dimensions ---------------------------------------------------

SERVICE_TYPES: tuple[str, ...] = ("childcare", "health", "parenting", "admin_help")
N_TYPES = len(SERVICE_TYPES)
CHILDCARE, HEALTH, PARENTING, ADMIN_HELP = range(N_TYPES)

# the barrier cascade of DESIGN §2, in the order a family meets it
DIMENSIONS: tuple[str, ...] = (
    "information",
    "capacity",
    "matching",
    "cost",
    "travel",
    "hours",
    "admin",
    "language",
    "stigma",
    "trust",
    "fit",
)
# positions in DIMENSIONS of the dimensions that are not properties of one pair's offer
INFORMATION_DIM = DIMENSIONS.index("information")
CAPACITY_DIM = DIMENSIONS.index("capacity")
# a family waiting while a place it would accept stands empty (EVIDENCE C20-C22: the local
# registration desk offers places as they fall vacant; what it does not offer is matching)
MATCHING_DIM = DIMENSIONS.index("matching")
FIT_DIM = DIMENSIONS.index("fit")
# each barrier dimension's accessibility dimension (the five "A"s of the EU working group
# report's accessibility framework: comprehensibility, availability, affordability,
# accessibility, usefulness)
ACCESSIBILITY_DIMENSION: dict[str, str] = {
    "information": "comprehensibility",
    "language": "comprehensibility",
    "capacity": "availability",
    "matching": "availability",
    "hours": "availability",
    "cost": "affordability",
    "travel": "accessibility",
    "admin": "accessibility",
    "stigma": "accessibility",
    "trust": "accessibility",
    "fit": "usefulness",
}
# the levers an adaptive policy's flexible budget can be held in (sim.rules.policy), and the
# lever answering each barrier dimension (DESIGN §2 step 6): cost -> fee reduction,
# language -> brokers, travel -> outreach (a worker comes to the family), information ->
# outreach, capacity -> places, admin -> help with forms (help-desk cases), trust ->
# brokers; hours, stigma, fit and matching have none (-1)
POLICY_LEVERS: tuple[str, ...] = ("places", "fee_reduction", "outreach", "brokers", "forms_help")
_ANSWERING_LEVER = {
    "information": "outreach",
    "capacity": "places",
    "cost": "fee_reduction",
    "travel": "outreach",
    "admin": "forms_help",
    "language": "brokers",
    "trust": "brokers",
}
DIMENSION_LEVER: tuple[int, ...] = tuple(
    POLICY_LEVERS.index(_ANSWERING_LEVER[d]) if d in _ANSWERING_LEVER else -1 for d in DIMENSIONS
)
# the dimensions that are properties of one (family, service) pair, in cascade order after
# information and capacity; bit i of a pair's barrier mask is dimension i
PAIR_DIMENSIONS: tuple[str, ...] = tuple(
    d for d in DIMENSIONS if d not in ("information", "capacity", "matching")
)
COST_BIT, TRAVEL_BIT, HOURS_BIT, ADMIN_BIT, LANGUAGE_BIT, STIGMA_BIT, TRUST_BIT, FIT_BIT = range(
    len(PAIR_DIMENSIONS)
)

# -- family codes ---------------------------------------------------------------------------

# per-(family, type) status
NONE, WAITLISTED, ENROLLED, REJECTED, DROPPED = 0, 1, 2, 3, 4
NO_SERVICE = -1  # no service held, wanted or excluded; also the service key of a family-level draw
NEVER = -(2**30)  # a week that never came
MODE_WALK, MODE_TRANSIT, MODE_CAR = 0, 1, 2  # travel modes

# -- service codes --------------------------------------------------------------------------

FEE_FREE, FEE_FLAT, FEE_INCOME, FEE_MEANS = 0, 1, 2, 3
FEE_KIND: dict[str, int] = {
    "free": FEE_FREE,
    "flat": FEE_FLAT,
    "income_related": FEE_INCOME,
    "means_tested": FEE_MEANS,
}
PRIORITY_FIRST_COME, PRIORITY_WORKING, PRIORITY_NEED = 0, 1, 2
PRIORITY: dict[str, int] = {
    "first_come": PRIORITY_FIRST_COME,
    "working_parents_first": PRIORITY_WORKING,
    "need_weighted": PRIORITY_NEED,
}
NO_HUB = -1  # a service outside every hub

# -- units ----------------------------------------------------------------------------------

INCOME_SCALE = 10_000  # income_q = median income in cents x (income ratio x 10,000)
WEEKS_PER_YEAR = 52
BASIS_POINTS = 10_000
# Household income = equivalised income x equivalence factor (EVIDENCE P6; 1.8 for two adults
# and a child under 14), the factor held in tenths so the comparison stays exact:
# cost_ok  <=>  weekly_cost_cents * 52 * INCOME_SCALE * 10_000 * 10 <= income_q * factor_tenths * cost_share_bp
COST_SCALE = WEEKS_PER_YEAR * INCOME_SCALE * BASIS_POINTS * 10
DAYS_PER_WEEK = (
    5  # a full-time childcare place: five days a week (places are full-time equivalents)
)
U3_WEEKS = 3 * WEEKS_PER_YEAR  # children under 3 (the EU-SILC age band), in weeks of age
THREE_MONTHS_WEEKS = 13  # the lower end of the Flemish survey's window, 3 months (EVIDENCE C12)
# a family's maximum travel time is its tolerance for a trip made this often (two a day, five
# days: daily childcare); rarer trips are tolerated longer (travel.tolerance_trip_elasticity)
REFERENCE_TRIPS_PER_WEEK = 10
# the most a rarer trip multiplies the tolerance by (a bound that keeps candidate lists within
# memory at a million families, not a behavioural number)
MAX_TOLERANCE_FACTOR = 10
# travel minutes beyond this reach every service of any city the same (int16 candidate lists)
TRAVEL_MINUTES_CAP = 32_000

# the information channels, in the order a week's events are drawn (`information.channel_events`)
CHANNELS: tuple[str, ...] = (
    "first_contact",
    "word_of_mouth",
    "outreach",
    "broker",
    "referral",
    "coordinator",
)
(
    CHANNEL_FIRST_CONTACT,
    CHANNEL_WORD_OF_MOUTH,
    CHANNEL_OUTREACH,
    CHANNEL_BROKER,
    CHANNEL_REFERRAL,
    CHANNEL_COORDINATOR,
) = range(len(CHANNELS))

# -- measurement groups ---------------------------------------------------------------------

# "3m_3y": children from 3 months (13 weeks) to 3 years, the age window of the Flemish survey
# figure (EVIDENCE C12); the other groups are of all children under 3 (EU-SILC's window)
GROUPS: tuple[str, ...] = ("all", "arope", "non_arope", "q1", "q2", "q3", "q4", "q5", "3m_3y")
# health enrolment (EVIDENCE H3) is measured for all families and by these groups of
# families, as the codes AROPE (0/1) + 2 x non-local home language (0/1) they hold
HEALTH_ENROLMENT_GROUPS: dict[str, tuple[int, ...]] = {
    "all": (0, 1, 2, 3),
    "arope": (1, 3),
    "non_arope": (0, 2),
    "by_language_local": (0, 1),
    "by_language_non_local": (2, 3),
}
TRAVEL_BAND_EDGES: tuple[int, ...] = (5, 10, 15, 20)  # minutes, upper edges of the bands
TRAVEL_BAND_LABELS: tuple[str, ...] = ("00_05", "06_10", "11_15", "16_20", "over_20")
