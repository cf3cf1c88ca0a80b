"""report.md: every measure with its mean and 95 % interval over replications, in words.

A report renders what it is given: a run's replications, or a comparison's runs with what
the comparison found (sim.measure.findings: paired differences, the outlay check, costs per
additional AROPE child, patterns, crossover). A sentence that states a result is chosen by
the numbers it states."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.core.codes import ACCESSIBILITY_DIMENSION, DIMENSIONS, POLICY_LEVERS
from sim.measure import patterns
from sim.measure.findings import (
    ComparisonFindings,
    CostPerChild,
    Difference,
    RankingHolds,
    Supplementary,
)
from sim.measure.metrics import (
    EU_SILC_2024_U3_PARTICIPATION,
    PLACES,
    SHARE,
    Kind,
    kind_of,
    metric_columns,
)
from sim.measure.stats import clipped, interval
from sim.outputs.differences import parameter_differences, parameter_text, places_source
from sim.scenario.schema import Scenario

# unit, numerator / denominator, for the table (the full glossary is docs/ODD.md)
GLOSSARY: dict[str, str] = {
    "u3_participation": "share of children under 3 enrolled in centre-based childcare (public or market), mean of weekly shares",
    "u3_participation_3m_3y": "share of children aged 3 months to 3 years (the Flemish survey's window, C12) enrolled in centre-based childcare, mean of weekly shares",
    "health_enrolment": "share of families with a child aged 0-30 months in the window who used the public consultation service (children with private preventive care count in the denominator)",
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


def describe(column: str) -> str:
    """The glossary entry with the longest prefix of the column name."""
    matches = [prefix for prefix in GLOSSARY if column.startswith(prefix)]
    return GLOSSARY[max(matches, key=len)] if matches else ""


# --- numbers as reports write them -------------------------------------------------------

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
    "weeks": 1,
    "days a week": 1,
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
        "For comparison, EU-SILC 2024 (EU-27) reports "
        f"{value_text(EU_SILC_2024_U3_PARTICIPATION['all'], SHARE)}, "
        f"{value_text(EU_SILC_2024_U3_PARTICIPATION['arope'], SHARE)} and "
        f"{value_text(EU_SILC_2024_U3_PARTICIPATION['non_arope'], SHARE)}; "
        "the model is not yet calibrated to them.",
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


def comparison_report(
    scenarios: list[Scenario],
    runs: pd.DataFrame,
    findings: ComparisonFindings,
    figures: list[str],
) -> str:
    """A comparison's report.md: its scenarios, what differs between them, the headline
    estimates, and what the comparison found (`findings`, against `findings.baseline`)."""
    names = [s.name for s in scenarios]
    base = findings.baseline
    first = scenarios[0]
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
    for s in scenarios:
        lines.append(f"- **{s.name}**: {s.description.strip() or '(no description)'}")
    lines.append("")
    lines += differences_section(scenarios, base, runs)
    lines += ["## Headline", "", headline_table(runs, names), ""]

    lines += ["## Differences to the baseline (paired over replications)", ""]
    lines.append("| scenario | measure | difference | 95 % interval | excludes 0 |")
    lines.append("|---|---|---:|---|:---:|")
    for d in findings.differences:
        excludes = "yes" if d.excludes_zero else "no"
        text, span = difference_texts(d.mean, d.low, d.high, kind_of(d.measure))
        lines.append(f"| {d.scenario} | `{d.measure}` | {text} | {span} | {excludes} |")
    lines.append("")

    lines += ["## Outlay check", ""]
    lines.append(
        "| scenario | ex-ante outlay (EUR/week) | differs from baseline by more than 0.5 % | ex-post net cost (EUR/week) |"
    )
    lines.append("|---|---:|:---:|---:|")
    for o in findings.outlays:
        lines.append(
            f"| {o.scenario} | {o.outlay_eur_week:,.0f} | {'**yes**' if o.differs else 'no'} "
            f"| {o.net_cost_eur_week:,.0f} |"
        )
    lines.append("")
    if findings.costs:
        lines.append(
            "Outlays differ, so a cost per additional AROPE child under 3 enrolled is reported for:"
        )
        lines.append("")
        for cost in findings.costs:
            lines.append(f"- {cost.scenario}: {cost_text(cost)}")
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
    lines += patterns_section(findings)
    lines += supplementary_section(findings.supplementary)
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


def cost_text(cost: CostPerChild) -> str:
    """The cost per additional AROPE child in words, or why none is defined."""
    if cost.eur_week_per_child is None:
        return f"not defined: {cost.children_difference:+.1f} AROPE children enrolled (no additional child)"
    return (
        f"{cost.eur_week_per_child:,.0f} EUR per week per additional AROPE child "
        f"({cost.outlay_difference_eur_week:+,.0f} EUR / {cost.children_difference:+.1f} children)"
    )


def places_text(values: pd.Series) -> str:
    """The public childcare places of a scenario's replications: one number when they agree
    (planning does not depend on the replication), else the range."""
    found = sorted({int(v) for v in values.dropna()})
    if not found:
        return "–"
    text = [number(v, PLACES) for v in (found[0], found[-1])]
    return text[0] if len(found) == 1 else f"{text[0]} – {text[1]}"


def differences_section(scenarios: list[Scenario], base: str, runs: pd.DataFrame) -> list[str]:
    """'What differs from the baseline': every resolved parameter (dotted key path, lists
    indexed) whose value differs from the baseline's, and the public childcare places of each
    scenario with how they were set (the budget solver's choice under an outlay target)."""
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


def patterns_section(findings: ComparisonFindings) -> list[str]:
    """The patterns the model is judged on and the crossover, as the comparison found them."""
    lines: list[str] = []
    if findings.patterns:
        lines += ["## Patterns (validation: the model was not built to reproduce these)", ""]
        lines += [f"- {pattern_text(p)}" for p in findings.patterns]
        lines.append("")
    if findings.crossover is not None:
        lines += ["## Targeted versus proportionate: an unsettled comparison", ""]
        lines.append(crossover_text(findings.crossover))
        lines.append("")
    return lines


def pattern_text(pattern: patterns.Pattern) -> str:
    """'**name** — statement: +0.2376, 95 % interval [+0.2264, +0.2488]; the pattern holds.'"""
    verdict = "holds" if pattern.holds else "does NOT hold"
    span = (
        f"[{pattern.low:+.4f}, {pattern.high:+.4f}]"
        if np.isfinite(pattern.low)
        else "(one replication)"
    )
    return f"**{pattern.name}** — {pattern.statement}: {pattern.mean:+.4f}, 95 % interval {span}; the pattern {verdict}."


_RANK_MARK = {1: "targeted higher", -1: "proportionate higher", 0: "no clear ranking"}


def crossover_text(crossover: patterns.Crossover) -> str:
    """The crossover grid as a table (paired differences in percentage points, each cell's
    ranking) and what it shows in plain words, every sentence chosen by the grid's numbers."""
    table, ranks = crossover.table, crossover.ranking()
    lines = [
        "Difference in AROPE under-3 participation, targeted minus proportionate (paired over replications), "
        "as the targeted childcare offer's stigma label (rows) and admin complexity incl. the means test (columns) rise:",
        "",
        "| stigma label \\ admin complexity | "
        + " | ".join(f"{a:.1f}" for a in table.columns)
        + " |",
        "|---" * (len(table.columns) + 1) + "|",
    ]
    for stigma in table.index:
        cells = []
        for admin in table.columns:
            m = table.loc[stigma, admin]
            lo, hi = crossover.low.loc[stigma, admin], crossover.high.loc[stigma, admin]
            mark = _RANK_MARK[int(ranks.loc[stigma, admin])]
            cells.append(f"{100 * m:+.1f} pp [{100 * lo:+.1f}, {100 * hi:+.1f}] {mark}")
        lines.append(f"| {stigma:.1f} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("In plain words: " + _crossover_words(crossover))
    return "\n".join(lines)


def _crossover_words(crossover: patterns.Crossover) -> str:
    verdict = crossover.verdict()
    size = crossover.table.size
    if verdict == patterns.CROSSES:
        if crossover.targeted_higher_at_lower_barriers():
            how = (
                "Where targeted ranks higher, its stigma label and paperwork are low enough that "
                "reserving free places for means-tested families reaches more AROPE children; as "
                "they rise, proportionate universalism reaches more."
            )
        else:
            how = (
                "Targeted ranks higher where its stigma label and paperwork are, on average, "
                "higher than where proportionate universalism does: against the expected "
                "direction (N1, N3, N5), so read the cells above before the ranking."
            )
        return (
            f"the ranking crosses over (targeted ranks higher in {crossover.cells_ranked(1)} and "
            f"proportionate universalism in {crossover.cells_ranked(-1)} of {size} cells). {how} "
            "No source gives these magnitudes, so neither configuration can be called the better "
            "one without measuring them."
        )
    if verdict == patterns.UNDECIDED:
        return (
            "the ranking does not cross clearly within the range swept; intervals overlap zero "
            "in every cell. No source gives the true magnitudes, so no winner is asserted."
        )
    if verdict == patterns.PROPORTIONATE_HIGHER:
        ahead, behind, rank, side = (
            "proportionate universalism",
            "the targeted configuration",
            -1,
            "above",
        )
        extreme = _cell_words(crossover.lowest, "lowest")
    else:
        ahead, behind, rank, side = (
            "the targeted configuration",
            "proportionate universalism",
            1,
            "below",
        )
        extreme = _cell_words(crossover.highest, "highest")
    wins = crossover.cells_ranked(rank)
    rest = (
        "every cell"
        if wins == size
        else f"{wins} of {size} cells and the rest are undecided (intervals include zero)"
    )
    return (
        f"there is no crossover in the range swept. {behind.capitalize()} never reaches more AROPE "
        f"children under 3 than {ahead} (no cell's interval lies {side} zero), {extreme}; "
        f"{ahead} ranks higher in {rest}. {_trend_words(crossover, ahead, rank)} "
        "The grid varies neither the targeted offer's eligibility line (low work-intensity "
        "families above the income line are AROPE but not eligible) nor barriers other than "
        "stigma and paperwork (see the main barriers per scenario). No source gives the true "
        "size of stigma and paperwork."
    )


def _cell_words(cell: tuple[float, float], which: str) -> str:
    """'even with no stigma label and no paperwork', or the cell's values."""
    stigma, admin = cell
    if stigma == 0 and admin == 0:
        return "even with no stigma label and no paperwork"
    return (
        f"even at the {which} stigma label ({stigma:.1f}) and admin complexity ({admin:.1f}) swept"
    )


def _trend_words(crossover: patterns.Crossover, ahead: str, ahead_rank: int) -> str:
    """Whether the lead of the configuration ranked higher (`ahead_rank`: -1 proportionate,
    +1 targeted) grows from the lowest cell to the highest, judged on the paired interval of
    the targeted offer's own AROPE participation between the two cells."""
    mean, lo, hi = crossover.change
    low_cell, high_cell = crossover.lowest, crossover.highest
    moves = (
        f"from {100 * crossover.table.loc[low_cell]:+.1f} pp (stigma {low_cell[0]:.1f}, admin "
        f"{low_cell[1]:.1f}) to {100 * crossover.table.loc[high_cell]:+.1f} pp (stigma "
        f"{high_cell[0]:.1f}, admin {high_cell[1]:.1f})"
    )
    if not np.isfinite(lo):
        return f"The difference moves {moves}; with fewer than two paired replications no trend is stated."
    change = (
        f"the targeted offer's own AROPE participation changes by {100 * mean:+.1f} pp "
        f"[{100 * lo:+.1f}, {100 * hi:+.1f}] between the two (paired over replications)"
    )
    if hi < 0 or lo > 0:
        # the targeted offer falls behind (hi < 0) or gains (lo > 0); proportionate's lead
        # grows when it falls behind, targeted's when it gains
        verb = "widens" if (hi < 0) == (ahead_rank < 0) else "narrows"
        return (
            f"The gap in favour of {ahead} {verb} as stigma and paperwork rise: {moves}; {change}."
        )
    return (
        f"The gap in favour of {ahead} does not change clearly as stigma and paperwork rise: "
        f"{moves}; {change}, an interval that includes zero."
    )


def _pp(mean: float, low: float, high: float) -> str:
    """'+3.1 pp [+1.2, +5.0]', a star where the interval excludes zero."""
    if not np.isfinite(mean):
        return "–"
    if not np.isfinite(low):
        return f"{mean:+.1f} pp"
    star = " *" if low > 0 or high < 0 else ""
    return f"{mean:+.1f} [{low:+.1f}, {high:+.1f}]{star}"


def _difference_cell(d: Difference) -> str:
    kind = kind_of(d.measure)
    text, span = difference_texts(d.mean, d.low, d.high, kind)
    return f"{text} {span}" + (" *" if d.excludes_zero else "")


def supplementary_section(found: Supplementary) -> list[str]:
    """Lever by lever, the adaptive policy against its static twin, hubs (travel next to
    multi-service use), and who each configuration leaves out and why."""
    lines: list[str] = []
    if found.levers:
        lines += lever_section(found)
    if found.hubs:
        lines += ["## Hubs: the travel change next to the multi-service change", ""]
        lines.append(
            "Each hub configuration against the same configuration without hubs, paired over "
            "replications (* the 95 % interval excludes zero). No site moves: a hub connects "
            "services at an existing site and adds sessions there, so trips shorten where a "
            "presence is nearer than a family's old site."
        )
        lines.append("")
        measures = [d.measure for d in found.hubs[0].differences]
        lines.append("| hubs | against | " + " | ".join(f"`{m}`" for m in measures) + " |")
        lines.append("|---|---|" + "---:|" * len(measures))
        for h in found.hubs:
            cells = " | ".join(_difference_cell(d) for d in h.differences)
            lines.append(f"| {h.hubs} | {h.twin} | {cells} |")
        lines.append("")
    for run in found.adaptive:
        lines += adaptive_section(run)
    if found.left_out:
        lines += left_out_section(found)
    if found.ranking is not None:
        lines += ranking_section(found.ranking)
    return lines


def ranking_section(ranking: RankingHolds) -> list[str]:
    """How often each ranking of the configurations holds over the plausible set."""
    lines = [
        "## Do the rankings survive what we do not know?",
        "",
        f"The configurations re-run at {ranking.points} parameter points drawn from the "
        f"calibration's plausible set (`{ranking.source}`: "
        + ", ".join(f"`{p}`" for p in ranking.parameters)
        + f"), {ranking.replications} replications each on common seeds. For each pair, ranked "
        f"by `{ranking.measure}` at the shipped defaults, the number of points where the "
        "ranking holds, and where the paired 95 % interval also excludes zero.",
        "",
        "| ranking at the defaults | holds in | clear (interval excludes 0) in |",
        "|---|---:|---:|",
    ]
    for pair in ranking.pairs:
        a, b = ranking.default_means[pair.better], ranking.default_means[pair.worse]
        lines.append(
            f"| {pair.better} ({100 * a:.1f} %) above {pair.worse} ({100 * b:.1f} %) | "
            f"{pair.holds} of {ranking.points} | {pair.clear} of {ranking.points} |"
        )
    lines.append("")
    return lines


def lever_section(found: Supplementary) -> list[str]:
    effects = pd.DataFrame([e.__dict__ for e in found.levers])
    lines = ["## Lever by lever (each lever's own effect, at equal outlay)", ""]
    lines.append(
        "Each lever added to a configuration, or removed from one, with everything else "
        "unchanged and the budget solver paying for it with childcare places; the effect is "
        "with the lever minus without, paired over replications, in percentage points with "
        "its 95 % interval (* excludes zero). universal with every lever is proportionate "
        "(scenarios/levers/proportionate.toml)."
    )
    lines.append("")
    columns = list(dict.fromkeys(zip(effects["way"], effects["configuration"], strict=True)))
    for measure, title in (
        ("u3_participation_arope", "AROPE children under 3 in childcare"),
        ("u3_participation_all", "all children under 3 in childcare"),
        ("u3_gap_pp", "gap non-AROPE − AROPE (pp; negative narrows it)"),
    ):
        part = effects[effects["measure"] == measure]
        lines.append(f"**{title}**")
        lines.append("")
        lines.append("| lever | " + " | ".join(f"{w} {c}" for w, c in columns) + " |")
        lines.append("|---|" + "---:|" * len(columns))
        for lever in dict.fromkeys(part["lever"]):
            cells = []
            for way, conf in columns:
                row = part[
                    (part["lever"] == lever)
                    & (part["way"] == way)
                    & (part["configuration"] == conf)
                ]
                cells.append(
                    _pp(row["effect_pp"].iloc[0], row["low_pp"].iloc[0], row["high_pp"].iloc[0])
                    if len(row)
                    else ""
                )
            lines.append(f"| {lever.replace('_', ' ')} | " + " | ".join(cells) + " |")
        lines.append("")
    arope = effects[effects["measure"] == "u3_participation_arope"]
    if len(arope):
        best = arope.loc[arope["effect_pp"].idxmax()]
        lines.append(
            f"In plain words: the largest single effect on AROPE participation is "
            f"{best['lever'].replace('_', ' ')} {best['way']} {best['configuration']} "
            f"({_pp(best['effect_pp'], best['low_pp'], best['high_pp'])} pp). "
            + _lever_agreement(arope)
        )
        lines.append("")
    return lines


def _lever_agreement(arope: pd.DataFrame) -> str:
    """Whether a lever's effect added to the low configuration and removed from the high one
    agree (interaction between levers otherwise)."""
    added = arope[arope["way"] == "added to"].groupby("lever")["effect_pp"].first()
    removed = arope[arope["way"] == "removed from"].set_index("lever")["effect_pp"]
    both = [lv for lv in added.index if lv in removed.index]
    if not both:
        return ""
    gaps = {lv: float(added[lv] - removed[lv]) for lv in both}
    worst = max(gaps, key=lambda lv: abs(gaps[lv]))
    return (
        f"Added to one configuration and removed from the other, a lever's effect differs "
        f"by at most {abs(gaps[worst]):.1f} pp ({worst.replace('_', ' ')}): where it differs, "
        "the lever works differently in company of the others (an interaction)."
    )


def adaptive_section(run) -> list[str]:
    lines = [f"## The adaptive policy: {run.scenario} against its static twin {run.twin}", ""]
    lines.append(
        "The municipality reviews the barrier signals of families in contact with its "
        "services every quarter and moves part of a flexible budget to the lever answering the "
        "most-reported one; the outlay is the twin's (docs/ODD.md §7.14). Paired over "
        "replications (* the 95 % interval excludes zero):"
    )
    lines.append("")
    lines.append("| measure | adaptive − static |")
    lines.append("|---|---:|")
    for d in run.differences:
        lines.append(f"| `{d.measure}` | {_difference_cell(d)} |")
    lines.append("")
    if run.path:
        lines.append(
            "Budget path (EUR a week held by each lever after each review, mean over replications):"
        )
        lines.append("")
        lines.append(
            "| week | acted on | " + " | ".join(lv.replace("_", " ") for lv in POLICY_LEVERS) + " |"
        )
        lines.append("|---:|---|" + "---:|" * len(POLICY_LEVERS))
        for row, acted in zip(run.path, run.acted_on, strict=True):
            held = " | ".join(f"{row[f'policy_{lv}_eur_week']:,.0f}" for lv in POLICY_LEVERS)
            lines.append(f"| {int(row['week']) + 1} | {acted} | {held} |")
        lines.append("")
        first, last = run.path[0], run.path[-1]
        moved = max(POLICY_LEVERS, key=lambda lv: last[f"policy_{lv}_eur_week"])
        lines.append(
            f"In plain words: after {len(run.path)} reviews the lever holding most of the "
            f"flexible budget is {moved.replace('_', ' ')} "
            f"({last[f'policy_{moved}_eur_week']:,.0f} of {sum(first[f'policy_{lv}_eur_week'] for lv in POLICY_LEVERS):,.0f} EUR a week); "
            f"the signals most acted on: {', '.join(dict.fromkeys(run.acted_on))}."
        )
        lines.append("")
    return lines


def left_out_section(found: Supplementary) -> list[str]:
    lines = ["## Who is still left out, and why", ""]
    lines.append(
        "Per configuration: the share of children under 3 not in childcare, and the main "
        "barrier of the unmet need-weeks (the first blocking dimension in the cascade, "
        "docs/ODD.md §7.12) of AROPE families, of families whose home language is not the "
        "local one, and per service type (means over replications; the two largest)."
    )
    lines.append("")
    lines.append(
        "| configuration | AROPE under 3 not in care | non-AROPE | AROPE families' unmet needs | "
        "non-local language | childcare | health | parenting | help desk |"
    )
    lines.append("|---|---:|---:|---|---|---|---|---|---|")

    def top(pairs: list[tuple[str, float]]) -> str:
        return ", ".join(f"{d} {100 * s:.0f} %" for d, s in pairs[:2]) or "–"

    for row in found.left_out:
        cells = [
            f"{100 * row.arope_u3_not_in_care:.1f} %",
            f"{100 * row.non_arope_u3_not_in_care:.1f} %",
            top(row.by_group["arope"]),
            top(row.by_group["non_local"]),
            *(top(row.by_type[t]) for t in ("childcare", "health", "parenting", "admin_help")),
        ]
        lines.append(f"| {row.scenario} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines
