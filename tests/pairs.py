"""The production barrier kernels over arrays of pairs a test chooses.

The engine evaluates barriers only inside its compiled weekly kernels. These wrappers run
the same compiled functions on given pairs: `evaluate` the formulas (`barriers.pair_barriers`),
`fees_cents` and `trips_cents` the money (`fees.fee_cents`, `fees.trip_cents`),
`service_barriers` a family beside a service as the weekly kernels gather it
(`decisions.service_barriers`, through `pair_barrier_masks` here) and `could_accept` the
bound that skips hopeless (family, type) pairs (`decisions.could_accept`, through
`bound_masks` here). `pair_inputs` alone is not production code: an independent numpy
gathering of a pair's inputs from an engine's tables, the oracle that the compiled gathering
is checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.core.codes import CHILDCARE, DAYS_PER_WEEK, NO_HUB, PAIR_DIMENSIONS, TRAVEL_MINUTES_CAP
from sim.core.compiled import kernel
from sim.engine.week import Engine
from sim.rules import decisions
from sim.rules.barriers import pair_barriers
from sim.rules.fees import FeeTables, fee_cents, trip_cents
from sim.rules.records import BarrierParams, PairFamily, PairOffer
from sim.world.travel import travel_minutes


@dataclass
class PairInputs:
    """Everything the barrier formulas read, one entry per (family, service) pair."""

    income_q: np.ndarray
    household_factor_tenths: int
    cost_share_bp: np.ndarray
    weekly_cost_cents: np.ndarray  # fee + trips x trip cost
    minutes: np.ndarray
    max_minutes: np.ndarray
    atypical_hours: np.ndarray
    hours_severity: np.ndarray
    extended_hours: np.ndarray
    hours_weight: np.ndarray  # share of an atypical schedule's mismatch the rhythm meets
    hours_tolerance: np.ndarray
    admin_complexity: np.ndarray  # after any hub-intake or coordinator waiver
    paperwork: np.ndarray
    admin_tolerance: np.ndarray
    speaks_language: np.ndarray
    proficiency: np.ndarray
    interpreter_comprehension: np.ndarray  # 0 where the service has no interpreters
    broker_gain: np.ndarray  # 0 unless the family was contacted by its group's broker
    language_tolerance: np.ndarray
    stigma_label: np.ndarray  # after the hub's mixed-clientele factor
    stigma_sensitivity: np.ndarray
    trust: np.ndarray
    stigma_tolerance: np.ndarray
    trust_required: np.ndarray
    trust_tolerance: np.ndarray
    perceived_fit: np.ndarray
    quality: np.ndarray
    fit_threshold: np.ndarray


@dataclass
class PairBarriers:
    blocks: np.ndarray  # bool [n, 7] in PAIR_DIMENSIONS order
    felt: np.ndarray  # float64 [n]: sum of barrier-to-threshold ratios (drop-out hazard)

    @property
    def acceptable(self) -> np.ndarray:
        return ~self.blocks.any(axis=1)

    def blocked_by(self, dimension: str) -> np.ndarray:
        """bool [n]: the pairs that `dimension` blocks."""
        return self.blocks[:, PAIR_DIMENSIONS.index(dimension)]


def _blocks(masks: np.ndarray) -> np.ndarray:
    return ((masks[:, None] >> np.arange(len(PAIR_DIMENSIONS))) & 1).astype(bool)


_INTEGER_INPUTS = ("income_q", "cost_share_bp", "weekly_cost_cents", "minutes", "max_minutes")
_BOOL_INPUTS = ("atypical_hours", "extended_hours", "speaks_language")


def evaluate(p: PairInputs) -> PairBarriers:
    """`barriers.pair_barriers` for every pair of the arrays (broadcast against each other)."""
    names = [name for name in PairInputs.__dataclass_fields__ if name != "household_factor_tenths"]
    arrays = np.broadcast_arrays(*[np.asarray(getattr(p, name)) for name in names])
    columns = []
    for name, values in zip(names, arrays, strict=True):
        dtype = np.int64 if name in _INTEGER_INPUTS else bool if name in _BOOL_INPUTS else float
        columns.append(np.ascontiguousarray(values.ravel(), dtype=dtype))
    masks = np.zeros(len(columns[0]), dtype=np.int64)
    felt = np.zeros(len(columns[0]))
    _evaluate_pairs(int(p.household_factor_tenths), *columns, masks, felt)
    return PairBarriers(blocks=_blocks(masks), felt=felt)


@kernel
def _evaluate_pairs(
    factor_tenths,
    income_q,
    cost_share_bp,
    weekly_cost_cents,
    minutes,
    max_minutes,
    atypical_hours,
    hours_severity,
    extended_hours,
    hours_weight,
    hours_tolerance,
    admin_complexity,
    paperwork,
    admin_tolerance,
    speaks_language,
    proficiency,
    interpreter_comprehension,
    broker_gain,
    language_tolerance,
    stigma_label,
    stigma_sensitivity,
    trust,
    stigma_tolerance,
    trust_required,
    trust_tolerance,
    perceived_fit,
    quality,
    fit_threshold,
    masks,
    felt,
):
    for i in range(len(income_q)):
        family = PairFamily(
            income_q=income_q[i],
            household_factor_tenths=factor_tenths,
            cost_share_bp=cost_share_bp[i],
            max_minutes=max_minutes[i],
            atypical_hours=atypical_hours[i],
            hours_severity=hours_severity[i],
            hours_tolerance=hours_tolerance[i],
            paperwork=paperwork[i],
            admin_tolerance=admin_tolerance[i],
            proficiency=proficiency[i],
            broker_gain=broker_gain[i],
            language_tolerance=language_tolerance[i],
            stigma_sensitivity=stigma_sensitivity[i],
            trust=trust[i],
            stigma_tolerance=stigma_tolerance[i],
            trust_tolerance=trust_tolerance[i],
            perceived_fit=perceived_fit[i],
            fit_threshold=fit_threshold[i],
        )
        offer = PairOffer(
            weekly_cost_cents=weekly_cost_cents[i],
            minutes=minutes[i],
            extended_hours=extended_hours[i],
            hours_weight=hours_weight[i],
            admin_complexity=admin_complexity[i],
            speaks_language=speaks_language[i],
            interpreter_comprehension=interpreter_comprehension[i],
            stigma_label=stigma_label[i],
            trust_required=trust_required[i],
            quality=quality[i],
        )
        masks[i], felt[i] = pair_barriers(family, offer)


@kernel
def _fees_into(fees, schedule, income_q, out):
    for i in range(len(out)):
        out[i] = fee_cents(fees, schedule[i], income_q[i])


def fees_cents(fees: FeeTables, schedule: np.ndarray, income_q: np.ndarray) -> np.ndarray:
    """`fees.fee_cents`: the weekly fee of each pair's schedule at each pair's income."""
    schedule, income_q = np.broadcast_arrays(np.asarray(schedule), np.asarray(income_q))
    out = np.zeros(len(income_q), dtype=np.int64)
    _fees_into(fees, schedule.astype(np.int64), np.ascontiguousarray(income_q, dtype=np.int64), out)
    return out


@kernel
def _trips_into(params, mode, minutes, out):
    for i in range(len(out)):
        out[i] = trip_cents(params, mode[i], minutes[i])


def trips_cents(params: BarrierParams, mode: np.ndarray, minutes: np.ndarray) -> np.ndarray:
    """`fees.trip_cents`: the cost of one trip of each pair's minutes by each pair's mode."""
    mode, minutes = np.broadcast_arrays(np.asarray(mode), np.asarray(minutes))
    out = np.zeros(len(minutes), dtype=np.int64)
    _trips_into(params, mode.astype(np.int64), minutes.astype(np.int64), out)
    return out


@kernel
def pair_barrier_masks(
    fam, svc, fees, params, rows, types, services, minutes, enrolled_hub, masks, felt
):
    """The production `decisions.service_barriers` for given pairs into `masks` and `felt`."""
    for i in range(len(rows)):
        masks[i], felt[i] = decisions.service_barriers(
            fam, svc, fees, params, rows[i], types[i], services[i], minutes[i], enrolled_hub
        )


@kernel
def bound_masks(fam, fees, params, bounds, rows, types, nearest_minutes, out):
    """The production `decisions.could_accept` for given (family, type) pairs into `out`."""
    for i in range(len(rows)):
        out[i] = decisions.could_accept(
            fam, fees, params, bounds, rows[i], types[i], nearest_minutes
        )


def service_barriers(
    engine: Engine, rows: np.ndarray, types: np.ndarray, services: np.ndarray, minutes: np.ndarray
) -> PairBarriers:
    """The barriers of given (family row, type, service, minutes) pairs as the weekly kernels
    compute them, with the engine's state now (its hub intakes and coordinator waivers)."""
    masks = np.zeros(len(rows), dtype=np.int64)
    felt = np.zeros(len(rows))
    pair_barrier_masks(
        engine.family_columns(),
        engine.svc_columns,
        engine.fee_tables,
        engine.barrier_params,
        np.asarray(rows, dtype=np.int64),
        np.asarray(types, dtype=np.int64),
        np.asarray(services, dtype=np.int64),
        np.asarray(minutes, dtype=np.int64),
        engine.enrolled_hubs(),
        masks,
        felt,
    )
    return PairBarriers(blocks=_blocks(masks), felt=felt)


def could_accept(engine: Engine, rows: np.ndarray, types: np.ndarray) -> np.ndarray:
    """False where no candidate of the type can be acceptable (`decisions.could_accept`)."""
    out = np.zeros(len(rows), dtype=bool)
    bound_masks(
        engine.family_columns(),
        engine.fee_tables,
        engine.barrier_params,
        engine.type_bounds,
        np.asarray(rows, dtype=np.int64),
        np.asarray(types, dtype=np.int64),
        engine.cand.nearest_minutes,
        out,
    )
    return out


def minutes_to(engine: Engine, rows: np.ndarray, services: np.ndarray) -> np.ndarray:
    """Travel minutes from each family to a given service by the formula that built the
    candidate lists (`travel.travel_minutes`: the same float64 operations, so the same
    integers)."""
    f = engine.families
    s = engine.svc
    d = np.hypot(
        s.x[services].astype(float) - f.x[rows].astype(float),
        s.y[services].astype(float) - f.y[rows].astype(float),
    )
    city = engine.world.city
    return travel_minutes(
        d,
        f.mode[rows],
        city.transit_access[f.x[rows], f.y[rows]],
        city.cell_size_m,
        engine.scenario.travel,
    )


def pair_inputs(
    engine: Engine,
    rows: np.ndarray,
    types: np.ndarray,
    services: np.ndarray,
    minutes: np.ndarray,
    enrolled_hub: np.ndarray,
) -> PairInputs:
    """The oracle: what the barrier formulas read for each pair, gathered in numpy from the
    engine's tables (the money by the production fee and trip kernels). A hub's intake is
    done once the family has its file at the hub, uses a service of the same hub or its
    coordinator assessed it; a user of the hub needs `trust_carryover` less of its other
    services' trust; a hub's mixed clientele scales the stigma label."""
    f = engine.families
    s = engine.svc
    info = engine.scenario.information
    fee = fees_cents(engine.fee_tables, s.schedule[services], f.income_q[rows])
    trip = trips_cents(engine.barrier_params, f.mode[rows], minutes)
    hub = s.hub[services]
    in_hub = hub != NO_HUB
    user = in_hub & (enrolled_hub[rows] == hub[:, None]).any(axis=1)
    intake_done = in_hub & (user | (f.hub_file[rows] == hub) | f.coordinated[rows])
    carry = np.where(user, 1.0 - engine.scenario.hubs.trust_carryover, 1.0)
    stigma_factor = np.where(in_hub, engine.scenario.hubs.stigma_factor, 1.0)
    # childcare fees and trips are per day of the child's week; other types are weekly
    days = np.where(types == CHILDCARE, f.care_days[rows], DAYS_PER_WEEK).astype(np.int64)
    return PairInputs(
        income_q=f.income_q[rows],
        household_factor_tenths=engine.factor_tenths,
        cost_share_bp=f.cost_share_bp[rows],
        # a visit's trips are made once every visit interval (appointments, drop-in)
        weekly_cost_cents=fee * days // DAYS_PER_WEEK
        + (s.trips_per_week[services].astype(np.int64) * days // DAYS_PER_WEEK)
        * trip
        // s.visit_interval_weeks[services],
        minutes=minutes,
        # rarer trips are tolerated longer: the family's maximum at the type's percentage
        max_minutes=np.minimum(
            f.max_travel_minutes[rows].astype(np.int64)
            * engine.barrier_params.tolerance_pct[types]
            // 100,
            TRAVEL_MINUTES_CAP,
        ),
        atypical_hours=f.atypical_hours[rows],
        hours_severity=f.hours_severity[rows],
        extended_hours=s.extended_hours[services],
        hours_weight=s.hours_weight[services],
        hours_tolerance=f.hours_tolerance[rows],
        # waived after a hub's intake, or where an outreach worker helps with the forms
        admin_complexity=np.where(
            intake_done | f.form_help[rows], 0.0, s.admin_complexity[services]
        ),
        paperwork=f.paperwork[rows],
        admin_tolerance=f.admin_tolerance[rows],
        speaks_language=s.speaks[services, f.language[rows]],
        proficiency=f.proficiency[rows],
        interpreter_comprehension=np.where(
            s.interpreters[services], info.interpreter_comprehension, 0.0
        ),
        broker_gain=np.where(f.broker_contacted[rows], info.broker_comprehension_gain, 0.0),
        language_tolerance=f.language_tolerance[rows],
        stigma_label=s.stigma_label[services] * stigma_factor,
        stigma_sensitivity=f.stigma_sensitivity[rows],
        trust=f.trust[rows],
        stigma_tolerance=f.stigma_tolerance[rows],
        trust_required=s.trust_required[services] * carry,
        trust_tolerance=f.trust_tolerance[rows],
        perceived_fit=f.perceived_fit[rows, types],
        quality=s.quality[services],
        fit_threshold=f.fit_threshold[rows],
    )
