"""What differs between compared scenarios: resolved parameters leaf by leaf, and the places
the budget solver chose (report.md's "What differs from the baseline", runs.parquet's
`differs_from_baseline` column)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from sim.scenario.schema import Scenario, format_key_path

# not parameters: they name and describe a scenario and always differ
IGNORED_KEYS = ("name", "description")
ABSENT = "(not set)"


def leaves(data: Any, path: tuple[Any, ...] = ()) -> dict[str, Any]:
    """Every scalar of nested tables and lists by dotted key path, lists indexed from 0
    (`provision.childcare.fee.bands.0.fee_eur_week`); an empty table or list is a leaf."""
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out |= leaves(value, (*path, key))
        return out
    if isinstance(data, list) and data:
        out = {}
        for index, value in enumerate(data):
            out |= leaves(value, (*path, index))
        return out
    return {format_key_path(path): data}


def parameter_differences(baseline: Scenario, scenario: Scenario) -> list[tuple[str, Any, Any]]:
    """(key path, baseline value, this scenario's value) for every resolved parameter that
    differs, in the scenario's order, then paths only the baseline has; a value one side
    lacks is ABSENT (a list of another length, a table of other keys)."""
    base = baseline.resolved_dict()
    other = scenario.resolved_dict()
    for key in IGNORED_KEYS:
        base.pop(key, None)
        other.pop(key, None)
    a, b = leaves(base), leaves(other)
    out = []
    for path in [*b, *(p for p in a if p not in b)]:
        old, new = a.get(path, ABSENT), b.get(path, ABSENT)
        if old == new or _filled(path, old, new, b) or _filled(path, new, old, a):
            continue
        out.append((path, old, new))
    return out


def _filled(path: str, empty: Any, absent: Any, other_leaves: dict[str, Any]) -> bool:
    """An empty list or table on one side whose entries the other side lists path by path
    (`bands = []` against six bands): its own row would only repeat those rows."""
    return (
        empty in ([], {})
        and absent == ABSENT
        and any(p.startswith(f"{path}.") for p in other_leaves)
    )


def parameter_text(value: Any) -> str:
    """A parameter as a report cell: TOML-like, numbers in positional notation (never
    scientific), '|' escaped for Markdown."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = np.format_float_positional(value, trim="-") if math.isfinite(value) else str(value)
    elif value is None:
        text = "none"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value)  # only an empty table or list is a leaf
    else:
        text = str(value)
    return text.replace("|", "\\|")


def differences_json(baseline: Scenario, scenario: Scenario) -> str:
    """The differing parameters as a JSON object {key path: this scenario's value} ('{}' for
    the baseline itself); ABSENT where the scenario lacks a path the baseline has."""
    return json.dumps({path: new for path, _, new in parameter_differences(baseline, scenario)})


def places_source(scenario: Scenario) -> str:
    """How a scenario's public childcare places were set, in words."""
    if scenario.city.services_file:
        return "from the services file"
    target = scenario.budget.target_outlay_eur_week
    if target is not None:
        return f"solved for the outlay target of {target:,.0f} EUR a week"
    places = scenario.provision["childcare"].places_per_100
    return f"planned at {parameter_text(places)} places per 100 children in the age range"


def with_differences(runs: pd.DataFrame, scenarios: list[Scenario], baseline: str) -> pd.DataFrame:
    """`runs` with a `differs_from_baseline` column (JSON text, differences_json) per row."""
    base = next(s for s in scenarios if s.name == baseline)
    texts = {s.name: differences_json(base, s) for s in scenarios}
    out = runs.copy()
    out["differs_from_baseline"] = out["scenario"].map(texts).astype(object)
    return out
