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

from sim.measure.metrics import INDEX, MONEY, SHARE, measure_kinds, metric_columns
from sim.outputs.report import (
    TERMS,
    clipped,
    difference_texts,
    estimate,
    kind_of,
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

    universal = load_scenario(ROOT / "scenarios" / "universal.toml")
    proportionate = load_scenario(ROOT / "scenarios" / "proportionate.toml")
    found = {path: (old, new) for path, old, new in parameter_differences(universal, proportionate)}
    assert found["provision.childcare.fee.kind"] == ("flat", "income_related")
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
    assert places_source(universal).startswith("solved for the outlay target of 352,000 EUR")
    base = load_scenario(ROOT / "scenarios" / "base.toml")
    assert places_source(base).startswith("planned at ")
