"""Verification of the lever set (scenarios/levers/proportionate.toml, sim/studies/levers.py): the levers
are the whole difference between universal and proportionate, each variant changes only
its lever's keys, and an effect is counted with the lever minus without."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sim.core.errors import ScenarioError
from sim.studies.levers import Variant, lever_effects, load_levers, variants, with_lever

pytestmark = pytest.mark.verification

ROOT = Path(__file__).resolve().parent.parent
LEVERS = ROOT / "scenarios" / "levers" / "proportionate.toml"


def _leaves(data, prefix=""):
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), data


def test_universal_with_every_lever_is_proportionate():
    levers = load_levers(LEVERS)
    scenario = levers.low
    for keys in levers.levers.values():
        scenario = with_lever(scenario, levers.high, keys, "all_levers")
    assert scenario.identity_dict() == levers.high.identity_dict()


def test_each_variant_changes_only_its_levers_keys():
    levers = load_levers(LEVERS)
    bases = {levers.low.name: levers.low, levers.high.name: levers.high}
    bases |= {c.name: c for c, _ in levers.cross}
    found = variants(levers)
    assert len(found) == 2 * len(levers.levers) + sum(len(n) for _, n in levers.cross)
    for v in found:
        before = dict(_leaves(bases[v.base].identity_dict()))
        after = dict(_leaves(v.scenario.identity_dict()))
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        keys = levers.levers[v.lever]
        # the budget solver may change nothing in the file; a lever's key covers its leaves
        assert changed, v.scenario.name
        assert all(any(k == p or k.startswith(p + ".") for p in keys) for k in changed), (
            v.scenario.name,
            changed,
        )


def test_an_effect_is_with_the_lever_minus_without():
    levers = load_levers(LEVERS)
    plus = Variant(levers.low, "a", "x", 1)
    minus = Variant(levers.low, "b", "x", -1)
    runs = pd.DataFrame(
        [
            {"scenario": levers.low.name, "replication": r, "u3_participation_arope": 0.30 + v}
            for r, v in enumerate([0.0, 0.01])
        ]
        + [
            {"scenario": name, "replication": r, "u3_participation_arope": 0.25}
            for name in ("a", "b")
            for r in range(2)
        ]
    )
    for column in ("u3_participation_all", "u3_gap_pp"):
        runs[column] = 0.0
    table = lever_effects(runs, [plus, minus])
    arope = table[table["measure"] == "u3_participation_arope"].set_index("way")
    assert arope.loc["added to", "effect_pp"] == pytest.approx(5.5)
    assert arope.loc["removed from", "effect_pp"] == pytest.approx(-5.5)


def test_a_lever_file_naming_an_unknown_key_is_refused(tmp_path):
    bad = tmp_path / "levers.toml"
    bad.write_text(
        f'low = "{ROOT / "scenarios" / "universal.toml"}"\n'
        f'high = "{ROOT / "scenarios" / "proportionate.toml"}"\n'
        '[levers]\nfees = ["provision.childcare.feez"]\n',
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError, match="feez"):
        load_levers(bad)


def test_the_report_tables_each_levers_effect_with_its_interval():
    from sim.measure.findings import LeverEffect, Supplementary
    from sim.outputs.report import supplementary_section

    effects = [
        LeverEffect(lever, conf, way, f"{conf}_{lever}", measure, mean, mean - 1, mean + 1, 10)
        for lever, mean in (("outreach", 2.0), ("brokers", 0.5))
        for conf, way in (("universal", "added to"), ("proportionate", "removed from"))
        for measure in ("u3_participation_arope", "u3_participation_all", "u3_gap_pp")
    ]
    text = "\n".join(supplementary_section(Supplementary(levers=effects)))
    assert "| lever | added to universal | removed from proportionate |" in text
    assert "| outreach | +2.0 [+1.0, +3.0] * | +2.0 [+1.0, +3.0] * |" in text
    assert "| brokers | +0.5 [-0.5, +1.5] | +0.5 [-0.5, +1.5] |" in text
    assert "largest single effect on AROPE participation is outreach added to universal" in text
