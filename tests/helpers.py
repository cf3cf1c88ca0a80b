"""Small worlds for tests (built from the default scenario with a few overrides), and the
command line run as a person runs it (subprocesses, their sessions, waiting on them)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sim.engine.week import Engine
from sim.scenario.schema import Scenario, scenario_from_dict
from sim.world.build import World, build_world

SMALL_CITY = {"families": 1500, "width": 30, "height": 30, "neighbourhoods": 6}


def small_scenario(**sections: dict[str, Any]) -> Scenario:
    """The default scenario on a 1,500-family city, with section overrides merged in."""
    data = Scenario().resolved_dict()
    data["name"] = "small"
    data["city"].update(SMALL_CITY)
    data["run"].update({"burn_in_weeks": 40, "weeks": 20, "replications": 2})
    for section, values in sections.items():
        target = data
        *parents, last = section.split(".")
        for part in parents:
            target = target[part]
        if isinstance(values, dict) and isinstance(target.get(last), dict):
            target[last] = {**target[last], **values}
        else:
            target[last] = values
    return scenario_from_dict(data, "<test>")


def frictionless_scenario(**sections: dict[str, Any]) -> Scenario:
    """A small city with no threshold a family can meet (free, open, in every language, no
    label, no forms, long hours, any travel) and unlimited places; `sections` override it
    as in `small_scenario`."""
    free = {"kind": "free", "flat_eur_week": 0.0, "bands": []}
    open_service = {
        "places_per_100": 10_000.0,
        "site_capacity": 100_000,
        "fee": free,
        "languages": "all",
        "stigma_label": 0.0,
        "trust_required": 0.0,
        "admin_complexity": 0.0,
        "extended_hours_share": 1.0,
        "quality": 1.0,
    }
    merged = {
        "run": {"burn_in_weeks": 10, "weeks": 20},
        "population": {
            "max_travel_minutes_median": 600.0,
            "max_travel_minutes_log_sd": 0.0,
            "trait_logit_sd": 0.0,
            "cost_share_threshold_median": 1.0,
            "cost_share_threshold_log_sd": 0.0,
            "language_tolerance_median": 0.999,
            "stigma_tolerance_median": 0.999,
            "trust_tolerance_median": 0.999,
            "admin_tolerance_median": 0.999,
            "hours_tolerance_median": 0.999,
            "fit_threshold_median": 0.001,
        },
        "market": {
            "places_per_100": 10_000.0,
            "site_capacity": 100_000,
            "fee_eur_week": 0.0,
            "trust_required": 0.0,
            "quality": 1.0,
            "admin_complexity": 0.0,
            "extended_hours_share": 1.0,
        },
        "behaviour": {"dropout_base_week": 0.0, "dropout_barrier_slope": 0.0},
        **{
            f"provision.{t}": open_service
            for t in ("childcare", "health", "parenting", "admin_help")
        },
    }
    for section, values in sections.items():
        merged[section] = {**merged.get(section, {}), **values}
    return small_scenario(**merged)


def run_engine(world: World, weeks: int | None = None, chunk_size: int | None = None) -> Engine:
    engine = Engine(world, chunk_size=chunk_size)
    total = (
        weeks if weeks is not None else world.scenario.run.burn_in_weeks + world.scenario.run.weeks
    )
    for _ in range(total):
        engine.step()
    return engine


def step_before_life_course(engine: Engine) -> None:
    """`Engine.step` but for its last phase, so a test can look at the state the week leaves
    before ageing and renewal change it; `engine.life_course()` then ends the week."""
    engine.life_course = lambda: None  # type: ignore[method-assign]
    try:
        engine.step()
    finally:
        del engine.life_course


def week_to_meetings(engine: Engine):
    """A week up to and including its meetings (step 6b): returns the plan, and the ties
    (row pairs) before and after the meetings; `measure` and `life_course` are the
    caller's."""
    f = engine.families
    plan = engine.decide()
    engine.information(plan)
    engine.settle(plan)
    engine.allocate(plan)
    engine.experience(plan)
    before = {(int(a), int(b)) for a, b in zip(*f.tie_pairs(), strict=True)}
    engine.meet(plan)
    after = {(int(a), int(b)) for a, b in zip(*f.tie_pairs(), strict=True)}
    return plan, before, after


STATE_COLUMNS = (
    "status",
    "service",
    "status_week",
    "applied_week",
    "aware",
    "trust",
    "perceived_fit",
    "youngest_age_weeks",
    "generation",
    "income_q",
    "is_arope",
    "broker_contacted",
    "staff_contacted",
)


def state_by_key(engine: Engine) -> dict[str, np.ndarray]:
    """Family state sorted by slot, so storage order does not matter."""
    f = engine.families
    order = np.argsort(f.slot, kind="stable")
    out = {name: getattr(f, name)[order] for name in STATE_COLUMNS}
    out["slot"] = f.slot[order]
    out["tie_slots"] = tie_slots(f)[order]
    return out


def tie_slots(families) -> np.ndarray:
    """Per family row, the slots of its ties in ascending order, padded with -1 ([F, D]):
    the tie structure as storage order cannot change it."""
    width = families.ties.shape[1]
    held = np.arange(width)[None, :] < families.tie_count[:, None]
    slots = np.where(held, families.slot[np.where(held, families.ties, 0)], np.iinfo(np.int64).max)
    slots.sort(axis=1)
    slots[slots == np.iinfo(np.int64).max] = -1
    return slots


def assert_valid_ties(families) -> None:
    """The tie structure's invariants: within the limit, no self-tie, no tie twice, and
    undirected (b among a's ties exactly when a is among b's)."""
    ties, count = families.ties, families.tie_count
    assert ((count >= 0) & (count <= ties.shape[1])).all()
    owner, other = families.tie_pairs()
    assert (owner != other).all(), "a self-tie"
    pairs = owner * families.size + other
    assert np.unique(pairs).size == pairs.size, "a tie held twice"
    mirrored = np.sort(other * families.size + owner)
    assert np.array_equal(np.sort(pairs), mirrored), "a tie held in one direction only"


def build(scenario: Scenario, seed: int = 11) -> World:
    return build_world(scenario, seed)


# --- the command line in a subprocess ----------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def famsim_env() -> dict[str, str]:
    """The environment for `python -m sim`: this checkout's sim first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def famsim_run(
    *args: object, cwd: Path = ROOT, timeout: float = 600
) -> subprocess.CompletedProcess:
    """famsim run to its end, as a person runs it; stdout and stderr kept."""
    return subprocess.run(
        [sys.executable, "-m", "sim", *map(str, args)],
        cwd=cwd,
        env=famsim_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def famsim_started(*args: object, cwd: Path = ROOT) -> subprocess.Popen:
    """famsim running in a session of its own (so every process it starts can be found);
    stderr is kept, stdout dropped."""
    return subprocess.Popen(
        [sys.executable, "-m", "sim", *map(str, args)],
        cwd=cwd,
        env=famsim_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def session_processes(sid: int) -> list[int]:
    """Live (not zombie) processes whose session id is `sid`, from /proc."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may hold spaces: split after it
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
