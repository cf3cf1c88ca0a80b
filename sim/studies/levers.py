"""Lever by lever: each lever's own effect, added to one configuration and removed from
another, at equal outlay and with common random numbers (issue: fair configurations).

A lever file (TOML) names two configurations and the scenario keys each lever sets:

    low = "universal.toml"           # relative to the lever file
    high = "proportionate.toml"
    [levers]
    graded_fees = ["provision.childcare.fee"]
    brokers = ["information.brokers"]
    [cross]                          # other configurations some levers are added to
    "targeted.toml" = ["brokers"]

A lever's values are the high configuration's. `variants` gives `low` plus each lever and
`high` minus each (the lever's keys back at the low configuration's values), and each
`cross` configuration plus each lever it lists; every variant keeps its
configuration's outlay target, so the budget solver pays for the lever with childcare
places. `low` with every lever is `high` (tests/test_levers.py): the levers are the whole
difference between the two configurations, so "universal vs proportionate" splits into
the levers' own effects.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.core.errors import ScenarioError
from sim.measure.stats import interval, paired_values
from sim.scenario.schema import Scenario, load_scenario, scenario_from_dict, set_at_path

# the measures a lever table reports, in percentage points
LEVER_MEASURES = ("u3_participation_arope", "u3_participation_all", "u3_gap_pp")


@dataclass
class LeverSet:
    low: Scenario
    high: Scenario
    cross: list[tuple[Scenario, list[str]]]
    levers: dict[str, list[str]]


@dataclass(frozen=True)
class Variant:
    """One configuration with one lever added (`direction` +1) or removed (-1)."""

    scenario: Scenario
    base: str  # the configuration's name
    lever: str
    direction: int


def load_levers(path: str | Path) -> LeverSet:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(path), "", f"cannot read the lever file: {exc}") from None
    for key in ("low", "high", "levers"):
        if key not in data:
            raise ScenarioError(str(path), key, "required key is missing")
    levers = data["levers"]
    if not isinstance(levers, dict) or not levers:
        raise ScenarioError(str(path), "levers", "allowed: a table of lever = [key paths]")
    for name, keys in levers.items():
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise ScenarioError(
                str(path), f"levers.{name}", f"value {keys!r}: allowed: a list of key paths"
            )
    folder = path.parent
    low, high = (load_scenario(folder / data[k]) for k in ("low", "high"))
    cross_table = data.get("cross", {})
    if not isinstance(cross_table, dict):
        raise ScenarioError(str(path), "cross", "allowed: a table of file = [lever names]")
    cross = []
    for file, names in cross_table.items():
        unknown = [n for n in names if n not in levers] if isinstance(names, list) else [names]
        if unknown:
            raise ScenarioError(
                str(path),
                f"cross.{file}",
                f"value {unknown[0]!r} is not a lever; allowed: {', '.join(levers)}",
            )
        cross.append((load_scenario(folder / file), list(names)))
    for name, keys in levers.items():
        for key in keys:
            for scenario in (low, high, *(c for c, _ in cross)):
                if _get(scenario.resolved_dict(), key) is _MISSING:
                    raise ScenarioError(
                        str(path), f"levers.{name}", f"key {key!r} is not a scenario key"
                    )
    return LeverSet(low=low, high=high, cross=cross, levers=dict(levers))


_MISSING = object()


def _get(data: dict[str, Any], key: str) -> Any:
    """The value at a dotted key path of a resolved scenario, _MISSING where there is none."""
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def with_lever(target: Scenario, source: Scenario, keys: list[str], name: str) -> Scenario:
    """`target` with `keys` at `source`'s values, named `name`."""
    data = target.resolved_dict()
    values = source.resolved_dict()
    for key in keys:
        set_at_path(data, key, copy.deepcopy(_get(values, key)))
    data["name"] = name
    data["description"] = f"{target.name} with {source.name}'s {', '.join(keys)}"
    return scenario_from_dict(data, f"<lever {name}>")


def variants(levers: LeverSet) -> list[Variant]:
    """low plus each lever, high minus each, and every cross configuration plus each lever
    it lists."""
    out = []
    low, high = levers.low, levers.high
    for name, keys in levers.levers.items():
        out.append(
            Variant(with_lever(low, high, keys, f"{low.name}_plus_{name}"), low.name, name, 1)
        )
        out.append(
            Variant(with_lever(high, low, keys, f"{high.name}_minus_{name}"), high.name, name, -1)
        )
        for other, listed in levers.cross:
            if name in listed:
                out.append(
                    Variant(
                        with_lever(other, high, keys, f"{other.name}_plus_{name}"),
                        other.name,
                        name,
                        1,
                    )
                )
    return out


def lever_effects(runs: pd.DataFrame, found: list[Variant]) -> pd.DataFrame:
    """Each variant's paired difference from its configuration (with the lever minus
    without, so a lever removed counts the other way round), per measure, in percentage
    points for shares: mean, 95 % interval, replications."""
    rows = []
    for v in found:
        for column in LEVER_MEASURES:
            diff = paired_values(runs, v.scenario.name, v.base, column)
            if v.direction < 0:
                diff = -diff
            scale = 1.0 if column.endswith("_pp") else 100.0
            mean, lo, hi = interval(diff * scale)
            rows.append(
                {
                    "lever": v.lever,
                    "configuration": v.base,
                    "way": "added to" if v.direction > 0 else "removed from",
                    "variant": v.scenario.name,
                    "measure": column,
                    "effect_pp": mean,
                    "low_pp": lo,
                    "high_pp": hi,
                    "replications": int(diff.notna().sum()),
                }
            )
    return pd.DataFrame(rows)
