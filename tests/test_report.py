"""report.md and the printed summaries: shares in percent with one decimal, money with
thousands separators, never scientific notation, intervals cut to the range of the measure,
a warning under 5 replications, AROPE and the concentration index named once; every measure's
kind comes from one table (sim.measure.metrics.measure_kinds) that agrees with docs/ODD.md."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.measure.metrics import INDEX, MONEY, SHARE, kind_of, measure_kinds, metric_columns
from sim.measure.stats import clipped
from sim.outputs.report import (
    TERMS,
    difference_texts,
    estimate,
    reliability_note,
    run_report,
    value_text,
)

ROOT = Path(__file__).resolve().parent.parent
# the word docs/ODD.md §7.13 uses in the unit column for each kind
ODD_UNIT_WORD = {
    "share": "share",
    "percentage points": "percentage points",
    "ratio": "ratio",
    "index": "index",
    "money": "EUR",
    "minutes": "minutes",
}


def test_every_measure_has_one_kind_and_the_order_of_the_measures_is_the_table_s():
    assert list(measure_kinds()) == metric_columns()
    for column in metric_columns():
        assert kind_of(column).lower < kind_of(column).upper


def test_the_kinds_agree_with_the_unit_column_of_the_odd_glossary():
    text = (ROOT / "docs" / "ODD.md").read_text(encoding="utf-8")
    glossary = text[text.index("### 7.13") : text.index("## 8.")]
    checked = 0
    for line in glossary.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        for name in re.findall(r"`([a-z0-9_]+)`", cells[0]):
            if name in measure_kinds():
                word = ODD_UNIT_WORD.get(kind_of(name).name)
                if word is not None:
                    assert word in cells[1], (name, cells[1])
                    checked += 1
    assert checked >= 20


def test_shares_are_percent_with_one_decimal_and_money_has_thousands_separators():
    assert estimate(pd.Series([0.293, 0.284, 0.302, 0.291, 0.295]), SHARE).startswith("29.3 % [")
    assert value_text(351778.4, MONEY) == "351,778 EUR"
    assert re.fullmatch(r"29\.3 % \[\d+\.\d, \d+\.\d\]", estimate(pd.Series([0.293] * 3), SHARE))


@pytest.mark.parametrize("value", [1e-9, -1e-9, 1e-5, 3.2e7, 1.5e12])
def test_no_value_of_any_kind_is_written_in_scientific_notation(value):
    for column in metric_columns():
        text = (
            value_text(value, kind_of(column))
            + difference_texts(value, -value, value, kind_of(column))[0]
        )
        assert not re.search(r"\de[+-]?\d", text), (column, text)
        assert "-0.0" not in text.replace("+", ""), text


def test_intervals_are_cut_to_the_range_of_the_measure():
    near_zero = pd.Series([0.0, 0.0, 0.01])  # the t-interval reaches below 0
    assert estimate(near_zero, SHARE) == "0.3 % [0.0, 1.8]"
    assert clipped(-0.2, 1.3, INDEX) == (-0.2, 1.0)
    assert clipped(-5.0, 10.0, kind_of("waitlist_total")) == (0.0, 10.0)
    assert clipped(-5.0, 10.0, kind_of("public_outlay_eur_week")) == (0.0, 10.0)
    # a net cost can be negative (fees above the outlay): not cut
    assert clipped(-5.0, 10.0, kind_of("net_cost_eur_week")) == (-5.0, 10.0)
    # a difference of two shares lies within +-100 percentage points
    assert difference_texts(0.9, -0.5, 1.4, SHARE) == ("+90.0 pp", "[-50.0, +100.0]")


def test_fewer_than_five_replications_carry_a_warning():
    assert "unreliable" in reliability_note(4)
    assert reliability_note(5) == ""


def _fake_run(reps: int) -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(1)
    rows = []
    for r in range(reps):
        row = {}
        for column in metric_columns():
            kind = kind_of(column)
            if kind.name == "share":
                row[column] = float(rng.choice([0.0, 0.002, 0.999, 1.0]))
            elif kind.name == "index":
                row[column] = float(rng.choice([-0.99, 0.99]))
            elif kind.name in ("count", "money", "minutes"):
                row[column] = float(rng.choice([0.0, 3.0e-5, 351_778.0]))
            else:
                row[column] = float(rng.normal())
        rows.append({"replication": r, **row})
    manifest = {
        "scenario": {
            "name": "fake",
            "description": "a fake run",
            "run": {"weeks": 26, "burn_in_weeks": 12},
            "city": {"families": 1500, "width": 20, "height": 20},
        },
        "replications": [{"replication": r, "status": "ok"} for r in range(reps)],
        "seed": 1,
        "scenario_hash": "0" * 64,
        "git": {"commit": None, "dirty": None},
    }
    return pd.DataFrame(rows), manifest


def _table_cells(report: str) -> dict[str, tuple[str, str]]:
    """`column` -> (mean cell, interval cell) of the measures table."""
    out = {}
    for line in report.splitlines():
        m = re.match(r"\| `([a-z0-9_]+)` \| ([^|]*) \| ([^|]*) \|", line)
        if m:
            out[m.group(1)] = (m.group(2).strip(), m.group(3).strip())
    return out


def _bounds(span: str) -> tuple[float, float]:
    lo, hi = re.split(r", | – ", span.strip("[]"))
    return float(lo.replace(",", "")), float(hi.replace(",", ""))


def test_a_run_report_reads_in_percent_within_range_and_names_its_terms_once():
    runs, manifest = _fake_run(3)
    report = run_report(runs, manifest, [])
    assert not re.search(r"\de[+-]\d", report)
    assert report.count("at risk of poverty or social exclusion") == 1
    assert report.count("Erreygers-corrected concentration index") == 1
    assert TERMS in report
    assert "unreliable" in report
    cells = _table_cells(report)
    assert set(cells) == set(metric_columns())
    for column, (mean, span) in cells.items():
        kind = kind_of(column)
        if kind.name == "share":
            assert mean.endswith(" %"), (column, mean)
        lo, hi = _bounds(span)
        scale = 100.0 if kind.name == "share" else 1.0
        assert kind.lower * scale <= lo <= hi <= kind.upper * scale, (column, span)
    assert re.search(r"\| \d{3},\d{3} EUR \| \[", report)


def test_five_replications_carry_no_warning():
    runs, manifest = _fake_run(5)
    assert "unreliable" not in run_report(runs, manifest, [])


def test_what_differs_lists_every_resolved_leaf_by_dotted_path_with_lists_indexed():
    from sim.outputs.differences import parameter_differences, parameter_text
    from sim.scenario.schema import load_scenario

    universal = load_scenario(ROOT / "scenarios" / "universal_free.toml")
    proportionate = load_scenario(ROOT / "scenarios" / "proportionate.toml")
    found = {path: (old, new) for path, old, new in parameter_differences(universal, proportionate)}
    assert found["provision.childcare.fee.kind"] == ("free", "income_related")
    assert found["information.outreach_workers"][1] == 2
    band = found["provision.childcare.fee.bands.0.fee_eur_week"]
    assert band[0] == "(not set)" and band[1] > 0
    assert not any(path.startswith(("name", "description")) for path in found)
    assert all(old != new for old, new in found.values())
    assert parameter_differences(universal, universal) == []
    # the baseline's empty list of bands is not a row of its own beside the six band rows
    assert "provision.childcare.fee.bands" not in found
    backwards = {path for path, _, _ in parameter_differences(proportionate, universal)}
    assert "provision.childcare.fee.bands" not in backwards
    assert "provision.childcare.fee.bands.0.fee_eur_week" in backwards
    assert parameter_text(1e-7) == "0.0000001" and parameter_text(70.0) == "70"
    assert parameter_text(True) == "true" and parameter_text("a|b") == "a\\|b"


def test_the_places_are_said_to_be_solved_under_an_outlay_target():
    from sim.outputs.differences import places_source
    from sim.scenario.schema import load_scenario

    universal = load_scenario(ROOT / "scenarios" / "universal.toml")
    assert places_source(universal).startswith("solved for the outlay target of 364,000 EUR")
    base = load_scenario(ROOT / "scenarios" / "base.toml")
    assert places_source(base).startswith("planned at ")


# --- sentences that state a result are chosen by the numbers -------------------------------


def test_the_eu_silc_figures_come_from_their_named_constants(monkeypatch):
    from sim.measure import metrics

    runs, manifest = _fake_run(3)
    assert "EU-SILC 2024 (EU-27) reports 39.2 %, 23.6 % and 43.9 %" in run_report(
        runs, manifest, []
    )
    monkeypatch.setitem(metrics.EU_SILC_2024_U3_PARTICIPATION, "arope", 0.25)
    assert "reports 39.2 %, 25.0 % and 43.9 %" in run_report(runs, manifest, [])


def test_a_pattern_holds_only_when_its_interval_lies_above_zero():
    from sim.measure.patterns import positive
    from sim.outputs.report import pattern_text

    rises = positive("Rises", "a minus b", pd.Series([0.19, 0.20, 0.21]))
    falls = positive("Rises", "a minus b", pd.Series([-0.19, -0.20, -0.21]))
    assert rises.holds and pattern_text(rises).endswith("; the pattern holds.")
    assert not falls.holds and pattern_text(falls).endswith("; the pattern does NOT hold.")
    assert "-0.2000, 95 % interval [" in pattern_text(falls)


def _grid_runs(delta) -> pd.DataFrame:
    """Runs of proportionate and of every cell of the targeted stigma x admin grid, three
    replications with common random numbers: a cell's AROPE under-3 participation is
    proportionate's plus delta(stigma, admin), plus a replication's small deviation."""
    from sim.measure.patterns import CROSSOVER_ADMIN, CROSSOVER_STIGMA, crossover_name

    base = [0.30, 0.32, 0.28]
    jitter = [0.002, -0.002, 0.0]
    rows = [("proportionate", r, base[r]) for r in range(3)]
    for stigma in CROSSOVER_STIGMA:
        for admin in CROSSOVER_ADMIN:
            name = crossover_name(stigma, admin)
            rows += [(name, r, base[r] + delta(stigma, admin) + jitter[r]) for r in range(3)]
    return pd.DataFrame(rows, columns=["scenario", "replication", "u3_participation_arope"])


def _crossover_words(delta) -> str:
    from sim.measure.patterns import crossover
    from sim.outputs.report import crossover_text

    text = crossover_text(crossover(_grid_runs(delta), "proportionate"))
    return text[text.index("In plain words: ") :]


def test_the_gap_is_said_to_widen_only_when_it_widens():
    widens = _crossover_words(lambda s, a: -0.02 - 0.1 * (s + a))
    assert (
        "no crossover" in widens
        and "proportionate universalism ranks higher in every cell" in widens
    )
    assert "The gap in favour of proportionate universalism widens" in widens
    assert "from -2.0 pp (stigma 0.0, admin 0.0) to -22.0 pp (stigma 1.0, admin 1.0)" in widens
    narrows = _crossover_words(lambda s, a: -0.22 + 0.1 * (s + a))
    assert "The gap in favour of proportionate universalism narrows" in narrows
    assert "widens" not in narrows


def test_which_configuration_reaches_more_is_read_from_the_grid():
    targeted_ahead = _crossover_words(lambda s, a: 0.05 + 0.01 * (s + a))
    assert "Proportionate universalism never reaches more AROPE children" in targeted_ahead
    assert "the targeted configuration ranks higher in every cell" in targeted_ahead
    assert "The gap in favour of the targeted configuration widens" in targeted_ahead
    undecided = _crossover_words(lambda s, a: 0.0)
    assert "intervals overlap zero in every cell" in undecided
    assert "reaches more" not in undecided


def test_a_crossover_is_said_to_run_the_expected_way_only_when_it_does():
    expected = _crossover_words(lambda s, a: 0.1 - 0.1 * (s + a))
    assert "the ranking crosses over (targeted ranks higher in 3 and" in expected
    assert "Where targeted ranks higher, its stigma label and paperwork are low enough" in expected
    against = _crossover_words(lambda s, a: -0.1 + 0.1 * (s + a))
    assert "the ranking crosses over" in against
    assert "against the expected direction" in against and "low enough" not in against


def _comparison_runs(outlays: tuple[float, float], enrolled: tuple[float, float]) -> pd.DataFrame:
    frames = []
    for name, outlay, children in zip(
        ("universal", "proportionate"), outlays, enrolled, strict=True
    ):
        runs, _ = _fake_run(3)
        runs["scenario"] = name
        runs["public_outlay_eur_week"] = outlay
        runs["u3_enrolled_arope"] = children + np.arange(3.0)
        runs["public_childcare_places"] = 1200
        frames.append(runs)
    return pd.concat(frames, ignore_index=True)


def _comparison_text(outlays: tuple[float, float], enrolled: tuple[float, float]) -> str:
    from sim.outputs.report import comparison_report
    from sim.scenario.schema import load_scenario
    from sim.studies.comparison import findings

    scenarios = [
        load_scenario(ROOT / "scenarios" / f"{n}.toml") for n in ("universal", "proportionate")
    ]
    runs = _comparison_runs(outlays, enrolled)
    found = findings(runs, pd.DataFrame(), ["universal", "proportionate"], "universal")
    return comparison_report(scenarios, runs, found, [])


def test_a_cost_per_additional_child_is_reported_only_when_outlays_differ_and_children_are_added():
    equal = _comparison_text((350_000.0, 350_000.0), (100.0, 150.0))
    assert "All scenarios have the same ex-ante outlay (within 0.5 %)" in equal
    assert "cost per additional AROPE child under 3 enrolled is reported" not in equal
    added = _comparison_text((350_000.0, 385_000.0), (100.0, 150.0))
    assert "Outlays differ, so a cost per additional AROPE child" in added
    assert (
        "- proportionate: 700 EUR per week per additional AROPE child (+35,000 EUR / +50.0 children)"
        in added
    )
    fewer = _comparison_text((350_000.0, 385_000.0), (150.0, 100.0))
    assert (
        "- proportionate: not defined: -50.0 AROPE children enrolled (no additional child)" in fewer
    )
