"""report.md: every measure with its mean and 95 % interval over replications, in words."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from sim.core.codes import ACCESSIBILITY_DIMENSION, DIMENSIONS
from sim.measure.metrics import PLACES, Kind, measure_kinds, metric_columns

# unit, numerator / denominator, for the table (the full glossary is docs/ODD.md)
GLOSSARY: dict[str, str] = {
    "u3_participation": "share of children under 3 enrolled in centre-based childcare (public or market), mean of weekly shares",
    "u3_gap_pp": "percentage points, non-AROPE minus AROPE participation",
    "u3_ratio": "ratio, AROPE over non-AROPE participation",
    "takeup": "share of families with the need in the window who used the type in the window",
    "concentration_index": "Erreygers index of under-3 enrolment over income rank (-1..1, >0 favours the rich)",
    "unmet_need_share": "(family, type) needs with no use in the window / all needs",
    "multi_service_share": "families with >=2 needs using >=2 of them / families with >=2 needs",
    "blocked_by": "share of unmet need-weeks where the dimension blocks the preferred service (multi-label)",
    "main_barrier": "share of unmet need-weeks whose first blocking dimension (cascade) is this one",
    "waitlist_total": "families on a waiting list, mean per measured week",
    "capacity_use": "enrolled / funded capacity of public services, mean per week",
    "public_outlay_eur_week": "EUR per week, ex ante: funded capacity x unit cost + staff + hubs",
    "net_cost_eur_week": "EUR per week, ex post: outlay minus fee revenue",
    "outlay_": "EUR per week, one part of the ex-ante outlay",
    "fee_revenue_eur_week": "EUR per week, fees paid to public services, mean per measured week",
    "travel_minutes_nearest": "minutes to the nearest service of the needed type, mean over need-weeks",
    "travel_minutes_used": "minutes to the service used, mean over use-weeks",
    "takeup_travel": "take-up of (family, type) needs whose nearest service is this many minutes away",
    "aware_share_uncontacted": "need-weeks of families never visited by outreach or a broker in which the family knew of the type",
    "wom_awareness_uncontacted": "families never visited by staff who learnt of a type through word of mouth, per week",
    "u3_enrolled": "children under 3 enrolled in childcare (public or market), mean per measured week",
}


def interval(values: pd.Series | np.ndarray) -> tuple[float, float, float]:
    """Mean and two-sided 95 % t-interval over replications (NaN bounds with one value)."""
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(data.mean())
    if data.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, data.size - 1) * data.std(ddof=1) / math.sqrt(data.size))
    return mean, mean - half, mean + half


def summary_table(runs: pd.DataFrame, measures: list[str] | None = None) -> pd.DataFrame:
    """measure, unit, mean, low, high (95 % t-interval over replications, cut to the range
    the measure can take) and n (replications with a value) for each measure column of a
    runs table, in metric_columns() order. Values are in the measure's own unit (shares in
    0-1, not percent)."""
    columns = measures or [c for c in KINDS if c in runs.columns]
    rows = []
    for column in columns:
        kind = kind_of(column)
        mean, low, high = interval(runs[column])
        low, high = clipped(low, high, kind)
        n = int(np.isfinite(np.asarray(runs[column], dtype=float)).sum())
        rows.append(
            {"measure": column, "unit": kind.unit, "mean": mean, "low": low, "high": high, "n": n}
        )
    return pd.DataFrame(rows, columns=["measure", "unit", "mean", "low", "high", "n"])


def describe(column: str) -> str:
    """The glossary entry with the longest prefix of the column name."""
    matches = [prefix for prefix in GLOSSARY if column.startswith(prefix)]
    return GLOSSARY[max(matches, key=len)] if matches else ""


# --- numbers as reports write them -------------------------------------------------------

# the one table of kinds: every measure (sim/measure/metrics.py) and the configuration's columns
KINDS: dict[str, Kind] = {**measure_kinds(), "public_childcare_places": PLACES}
# fewer replications than this and a t-interval rests on too few values to be trusted
RELIABLE_REPLICATIONS = 5
# decimals after rounding, per kind (shares are written in percent)
_DECIMALS = {
    "share": 1,
    "percentage points": 1,
    "ratio": 2,
    "index": 3,
    "count": 1,
    "money": 0,
    "minutes": 1,
    "places": 0,
}
# kinds written with thousands separators; their interval bounds are joined by a dash, as
# a comma between them would read as part of a number
_SEPARATED = {"count", "money", "places"}
TERMS = (
    "AROPE: at risk of poverty or social exclusion (the EU-SILC indicator). "
    "`concentration_index`: the Erreygers-corrected concentration index of under-3 childcare "
    "enrolment over income rank, from -1 to 1; above 0, enrolment is concentrated among "
    "higher incomes."
)


def kind_of(column: str) -> Kind:
    """The kind of a measure or configuration column (KeyError for an unknown one)."""
    return KINDS[column]


def number(value: float, kind: Kind, signed: bool = False) -> str:
    """A value in the kind's rounding, without unit: shares in percent (0.293 -> '29.3'),
    money in whole EUR with thousands separators; never scientific notation; NaN is '–'."""
    if not np.isfinite(value):
        return "–"
    scaled = 100.0 * value if kind.name == "share" else value
    decimals = _DECIMALS[kind.name]
    rounded = round(scaled, decimals)
    if rounded == 0:
        rounded = 0.0  # no '-0.0'
    sep = "," if kind.name in _SEPARATED else ""
    return f"{rounded:{'+' if signed else ''}{sep}.{decimals}f}"


def _with_unit(text: str, unit: str) -> str:
    return f"{text} {unit}" if unit and text != "–" else text


def value_text(value: float, kind: Kind) -> str:
    """One value with its unit: '29.3 %', '351,778 EUR', '0.123'."""
    return _with_unit(number(value, kind), kind.unit)


def span_text(lo: float, hi: float, kind: Kind, signed: bool = False) -> str:
    """'[28.4, 30.3]' (in the kind's rounding, without unit); '[350,102 – 353,454]' for
    kinds with thousands separators."""
    joiner = " – " if kind.name in _SEPARATED else ", "
    return f"[{number(lo, kind, signed)}{joiner}{number(hi, kind, signed)}]"


def clipped(lo: float, hi: float, kind: Kind) -> tuple[float, float]:
    """An interval cut to the values the measure can take (a share within [0, 1], a count
    or money not negative, the concentration index within [-1, 1])."""
    return max(lo, kind.lower), min(hi, kind.upper)


def estimate(values: pd.Series | np.ndarray, kind: Kind) -> str:
    """Mean and 95 % interval over replications, clipped to the measure's range:
    '29.3 % [28.4, 30.3]'; the mean alone with one replication."""
    mean, lo, hi = interval(values)
    if not np.isfinite(lo):
        return value_text(mean, kind)
    lo, hi = clipped(lo, hi, kind)
    return f"{value_text(mean, kind)} {span_text(lo, hi, kind)}"


def difference_kind(kind: Kind) -> Kind:
    """The kind of a difference of two values of `kind`: a difference of shares is in
    percentage points; its range is the widest difference two values can have."""
    if kind.name == "share":
        return Kind("percentage points", "pp", -100.0, 100.0)
    width = kind.upper - kind.lower
    return Kind(kind.name, kind.unit, -width, width)


def difference_texts(mean: float, lo: float, hi: float, kind: Kind) -> tuple[str, str]:
    """A paired difference and its clipped interval, signed, in the difference's unit
    (shares in percentage points: '+2.1 pp', '[+1.0, +3.2]')."""
    dkind = difference_kind(kind)
    factor = 100.0 if kind.name == "share" else 1.0
    # the difference of shares is already in share units; number() multiplies shares only
    mean, lo, hi = factor * mean, factor * lo, factor * hi
    text = _with_unit(number(mean, dkind, signed=True), dkind.unit)
    if not np.isfinite(lo):
        return text, "–"
    lo, hi = clipped(lo, hi, dkind)
    return text, span_text(lo, hi, dkind, signed=True)


def reliability_note(replications: int) -> str:
    """A warning for reports with fewer than RELIABLE_REPLICATIONS replications ('' else)."""
    if replications >= RELIABLE_REPLICATIONS:
        return ""
    return (
        f"**Note:** with {replications} replication(s) the 95 % intervals are unreliable "
        f"(they rest on fewer than {RELIABLE_REPLICATIONS} values); run more replications "
        "(--reps) before reading them."
    )


def metrics_table(runs: pd.DataFrame) -> str:
    """Every measure: mean with its unit, 95 % interval clipped to the measure's range."""
    lines = ["| measure | mean | 95 % interval | definition |", "|---|---:|---|---|"]
    for column in metric_columns():
        kind = kind_of(column)
        mean, lo, hi = interval(runs[column])
        if np.isfinite(lo):
            span = span_text(*clipped(lo, hi, kind), kind)
        else:
            span = "one replication"
        lines.append(f"| `{column}` | {value_text(mean, kind)} | {span} | {describe(column)} |")
    return "\n".join(lines)


def run_report(runs: pd.DataFrame, manifest: dict, figures: list[str]) -> str:
    scenario = manifest["scenario"]
    run = scenario["run"]
    ok = [r for r in manifest["replications"] if r["status"] == "ok"]
    failed = [r for r in manifest["replications"] if r["status"] != "ok"]
    part = {g: interval(runs[f"u3_participation_{g}"]) for g in ("all", "arope", "non_arope")}
    quint = [interval(runs[f"u3_participation_q{q}"])[0] for q in range(1, 6)]
    main = {d: float(runs[f"main_barrier_{d}"].mean()) for d in DIMENSIONS}
    top = sorted(main, key=main.get, reverse=True)[:3]
    by_access: dict[str, float] = {}
    for d, share in main.items():
        by_access[ACCESSIBILITY_DIMENSION[d]] = (
            by_access.get(ACCESSIBILITY_DIMENSION[d], 0.0) + share
        )
    lines = [
        f"# famsim run: {scenario['name']}",
        "",
        scenario.get("description", "").strip(),
        "",
        f"- {len(ok)} replication(s) of {run['weeks']} measured weeks after a burn-in of {run['burn_in_weeks']} weeks; "
        f"{scenario['city']['families']:,} families on a {scenario['city']['width']}x{scenario['city']['height']} grid.",
        f"- Seed {manifest['seed']}; scenario hash `{manifest['scenario_hash'][:16]}`; "
        f"model commit `{(manifest['git'].get('commit') or 'unknown')[:12]}`"
        f"{' (uncommitted changes)' if manifest['git'].get('dirty') else ''}.",
    ]
    if failed:
        lines.append(
            f"- **{len(failed)} replication(s) failed**: "
            + "; ".join(f"#{r['replication']}: {r['error']}" for r in failed)
        )
    lines += ["", TERMS]
    note = reliability_note(len(ok))
    if note:
        lines += ["", note]
    lines += [
        "",
        "## In words",
        "",
        f"Children under 3 in childcare: {100 * part['all'][0]:.1f} % overall, "
        f"{100 * part['arope'][0]:.1f} % in AROPE families and {100 * part['non_arope'][0]:.1f} % in the others "
        f"(gap {runs['u3_gap_pp'].mean():.1f} percentage points). "
        "For comparison, EU-SILC 2024 (EU-27) reports 39.2 %, 23.6 % and 43.9 %; the model is not yet calibrated to them.",
        "",
        "By income quintile (Q1 poorest): "
        + ", ".join(f"Q{q + 1} {100 * v:.1f} %" for q, v in enumerate(quint))
        + ".",
        "",
        "Unmet needs are first blocked by "
        + ", ".join(f"{d} ({100 * main[d]:.1f} %)" for d in top)
        + ". Grouped by the five accessibility dimensions of the IAS focus groups: "
        + ", ".join(
            f"{k} {100 * v:.1f} %" for k, v in sorted(by_access.items(), key=lambda kv: -kv[1])
        )
        + ".",
        "",
        "## Measures (mean and 95 % interval over replications)",
        "",
        metrics_table(runs),
        "",
        "## Figures",
        "",
    ]
    lines += [f"![{name}](figures/{name})" for name in figures]
    lines.append("")
    return "\n".join(lines)


HEADLINE = (
    "u3_participation_all",
    "u3_participation_arope",
    "u3_participation_non_arope",
    "u3_gap_pp",
    "concentration_index",
    "unmet_need_share",
    "multi_service_share",
    "public_outlay_eur_week",
    "net_cost_eur_week",
)
DIFFERENCES = (
    "u3_enrolled_arope",
    "u3_participation_arope",
    "u3_participation_non_arope",
    "u3_gap_pp",
    "concentration_index",
    "unmet_need_share",
    "multi_service_share",
    "travel_minutes_nearest",
    "travel_minutes_used",
    "net_cost_eur_week",
)


def headline_table(
    runs: pd.DataFrame, names: list[str], columns: tuple[str, ...] = HEADLINE
) -> str:
    """A Markdown table, one row per scenario: each measure's mean and clipped 95 % interval
    in its kind's format ('29.3 % [28.4, 30.3]')."""
    lines = [
        "| scenario | " + " | ".join(f"`{c}`" for c in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for name in names:
        sub = runs[runs["scenario"] == name]
        cells = [estimate(sub[c], kind_of(c)) for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_report(comparison, figures: list[str]) -> str:
    from sim.studies.comparison import (
        cost_per_additional_arope_child,
        outlay_check,
        outlays_differ,
        paired_difference,
    )

    runs = comparison.runs
    names = [s.name for s in comparison.scenarios]
    base = comparison.baseline
    first = comparison.scenarios[0]
    reps = first.run.replications
    lines = [
        f"# famsim comparison: {', '.join(names)}",
        "",
        f"{reps} replication(s) per scenario with common random numbers (replication r of every scenario "
        f"has the same families and draws; seed {first.run.seed}); {first.run.weeks} measured weeks after "
        f"{first.run.burn_in_weeks} weeks of burn-in; {first.city.families:,} families. "
        f"Intervals are 95 % t-intervals over replications, cut to the range each measure can take; "
        f"differences are paired by replication. Baseline: **{base}**.",
        "",
        TERMS,
        "",
    ]
    fewest = int(runs.groupby("scenario").size().min()) if len(runs) else 0
    note = reliability_note(fewest)
    if note:
        lines += [note, ""]
    for s in comparison.scenarios:
        lines.append(f"- **{s.name}**: {s.description.strip() or '(no description)'}")
    lines.append("")
    lines += differences_section(comparison.scenarios, base, runs)
    lines += ["## Headline", "", headline_table(runs, names), ""]

    lines += ["## Differences to the baseline (paired over replications)", ""]
    lines.append("| scenario | measure | difference | 95 % interval | excludes 0 |")
    lines.append("|---|---|---:|---|:---:|")
    for name in names:
        if name == base:
            continue
        for column in DIFFERENCES:
            mean, lo, hi = paired_difference(runs, name, base, column)
            # judged on the unrounded, unclipped interval
            excludes = "yes" if np.isfinite(lo) and (lo > 0 or hi < 0) else "no"
            text, span = difference_texts(mean, lo, hi, kind_of(column))
            lines.append(f"| {name} | `{column}` | {text} | {span} | {excludes} |")
    lines.append("")

    outlays = outlay_check(runs)
    differ = outlays_differ(outlays, base)
    lines += ["## Outlay check", ""]
    lines.append(
        "| scenario | ex-ante outlay (EUR/week) | differs from baseline by more than 0.5 % | ex-post net cost (EUR/week) |"
    )
    lines.append("|---|---:|:---:|---:|")
    for name in names:
        net = runs[runs["scenario"] == name]["net_cost_eur_week"].mean()
        lines.append(
            f"| {name} | {outlays[name]:,.0f} | {'**yes**' if differ[name] else 'no'} | {net:,.0f} |"
        )
    flagged = [n for n in names if differ[n] and n != base]
    lines.append("")
    if flagged:
        lines.append(
            "Outlays differ, so a cost per additional AROPE child under 3 enrolled is reported for:"
        )
        lines.append("")
        for name in flagged:
            lines.append(f"- {name}: {cost_per_additional_arope_child(runs, name, base)}")
    else:
        lines.append(
            "All scenarios have the same ex-ante outlay (within 0.5 %): they are compared at equal public money, and no cost per additional child is computed."
        )
    lines.append("")

    lines += [
        "## Travel",
        "",
        headline_table(runs, names, ("travel_minutes_nearest", "travel_minutes_used")),
        "",
    ]
    lines += patterns_section(comparison)
    lines += ["## Every measure", ""]
    lines.append("| measure | " + " | ".join(names) + " |")
    lines.append("|---" * (len(names) + 1) + "|")
    for column in metric_columns():
        row = [estimate(runs[runs["scenario"] == n][column], kind_of(column)) for n in names]
        lines.append(f"| `{column}` | " + " | ".join(row) + " |")
    lines += ["", "## Figures", ""]
    lines += [f"![{f}](figures/{f})" for f in figures]
    lines.append("")
    return "\n".join(lines)


def places_text(values: pd.Series) -> str:
    """The public childcare places of a scenario's replications: one number when they agree
    (planning does not depend on the replication), else the range."""
    found = sorted({int(v) for v in values.dropna()})
    if not found:
        return "–"
    text = [number(v, PLACES) for v in (found[0], found[-1])]
    return text[0] if len(found) == 1 else f"{text[0]} – {text[1]}"


def differences_section(scenarios: list, base: str, runs: pd.DataFrame) -> list[str]:
    """'What differs from the baseline': every resolved parameter (dotted key path, lists
    indexed) whose value differs from the baseline's, and the public childcare places of each
    scenario with how they were set (the budget solver's choice under an outlay target)."""
    from sim.outputs.differences import parameter_differences, parameter_text, places_source

    baseline = next(s for s in scenarios if s.name == base)
    lines = ["## What differs from the baseline", ""]
    lines.append(f"| scenario | key path | baseline ({base}) | this scenario |")
    lines.append("|---|---|---|---|")
    for s in scenarios:
        if s.name == base:
            continue
        found = parameter_differences(baseline, s)
        if not found:
            lines.append(f"| {s.name} | (no parameter differs) | | |")
        for path, old, new in found:
            lines.append(f"| {s.name} | `{path}` | {parameter_text(old)} | {parameter_text(new)} |")
    lines += ["", "Public childcare places (concurrent children) per scenario:", ""]
    lines.append("| scenario | public childcare places | how they were set |")
    lines.append("|---|---:|---|")
    for s in scenarios:
        if "public_childcare_places" in runs:
            places = places_text(runs.loc[runs["scenario"] == s.name, "public_childcare_places"])
        else:
            places = "–"
        lines.append(f"| {s.name} | {places} | {places_source(s)} |")
    lines.append("")
    return lines


def patterns_section(comparison) -> list[str]:
    """The patterns the model is judged on, for whichever configurations were compared."""
    from sim.measure import patterns

    runs = comparison.runs
    extra = comparison.supplement_runs
    both = pd.concat([runs, extra], ignore_index=True) if len(extra) else runs
    names = set(both["scenario"])
    found: list[str] = []
    if "universal" in names:
        found.append(patterns.matthew_effect(both, "universal").describe())
    if "universal_zero_fee" in names:
        found.append(patterns.matthew_effect(both, "universal_zero_fee").describe())
    if {"one_roof", "universal"} <= names:
        found.append(patterns.hubs_multi_service(both, "one_roof", "universal").describe())
    if {"proportionate_one_roof", "proportionate"} <= names:
        found.append(
            patterns.hubs_multi_service(both, "proportionate_one_roof", "proportionate").describe()
        )
    for name in ("universal", "proportionate"):
        if name in names:
            found.append(patterns.travel_decay(both, name).describe())
    for name in ("proportionate", "targeted"):
        if name in names:
            found.append(patterns.word_of_mouth_reach(both, name).describe())
    lines: list[str] = []
    if found:
        lines += ["## Patterns (validation: the model was not built to reproduce these)", ""]
        lines += [f"- {text}" for text in found]
        lines.append("")
    grid = [n for n in names if n.startswith("targeted_stigma")]
    if grid and "proportionate" in names:
        lines += ["## Targeted versus proportionate: an unsettled comparison", ""]
        lines.append(patterns.crossover(both, "proportionate").describe())
        lines.append("")
    return lines
