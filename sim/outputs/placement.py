"""The folders `famsim accessibility` and `famsim place-hubs` write: the tables (Parquet, so
anyone can recompute them), the maps, and a report a planner reads. They render what
`sim.world.accessibility` and `sim.studies.placement` computed, never recompute it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from sim.core.codes import SERVICE_TYPES
from sim.outputs.folders import job_identity, staged
from sim.scenario.schema import Scenario
from sim.world.accessibility import Accessibility
from sim.world.city import City
from sim.world.geometry import centre_m


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=_plain) + "\n", encoding="utf-8")


def _plain(value):
    if isinstance(value, np.integer | np.floating | np.bool_):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


# ---------------------------------------------------------------- accessibility


def write_accessibility(
    result: Accessibility, city: City, sites: pd.DataFrame, manifest: dict[str, Any], out: Path
) -> list[Path]:
    """demand.parquet (cell_id, x_m, y_m, demand and the cell), supply.parquet (site_id,
    x_m, y_m, places and the site), access.parquet (cell_id, access_2sfca), a map and a
    manifest, replacing `out` whole."""
    from sim.outputs import plots

    out = Path(out)
    with staged(out) as staging:
        demand = result.demand
        demand[["cell_id", "x_m", "y_m", "demand", "x", "y"]].to_parquet(
            staging / "demand.parquet", index=False
        )
        result.supply[
            [
                "site_id",
                "x_m",
                "y_m",
                "places",
                "x",
                "y",
                "public",
                "hub",
                "demand_in_reach",
                "ratio",
            ]
        ].to_parquet(staging / "supply.parquet", index=False)
        demand[["cell_id", "access_2sfca"]].to_parquet(staging / "access.parquet", index=False)
        grid = result.grid(city.width, city.height)
        c = result.catchment
        plots.accessibility_map(
            grid,
            city.cell_size_m,
            sites[sites["type"] == result.type_name],
            staging / "access_map.png",
            f"2SFCA access to {result.type_name}: places per family in need within "
            f"{c.radius:g} {c.unit}" + (" (Gaussian decay)" if c.decay == "gaussian" else ""),
        )
        files = ["demand.parquet", "supply.parquet", "access.parquet", "access_map.png"]
        identity = job_identity("accessibility", [manifest["scenario"]["name"]])
        _write_json(
            staging / "manifest.json",
            dict(
                manifest,
                job=identity,
                files=["manifest.json", *files],
                accessibility={
                    "type": result.type_name,
                    "radius": c.radius,
                    "unit": c.unit,
                    "decay": c.decay,
                    "cost": "straight-line metres between cell centres"
                    if c.mode is None
                    else f"the model's door-to-door minutes by {c.mode}",
                },
            ),
        )
    return [out / f for f in ["manifest.json", *files]]


# ---------------------------------------------------------------- placements


class PlacementRecord(Protocol):
    """What a placement study found (`sim.studies.placement.PlacementFindings`)."""

    @property
    def scenario(self) -> Scenario: ...
    @property
    def settings(self) -> Any: ...
    @property
    def table(self) -> pd.DataFrame: ...
    @property
    def runs(self) -> pd.DataFrame: ...
    @property
    def gains(self) -> pd.DataFrame: ...
    @property
    def areas(self) -> pd.DataFrame: ...
    @property
    def unmet(self) -> dict[str, np.ndarray]: ...
    @property
    def screened(self) -> pd.DataFrame: ...
    @property
    def hub_services(self) -> pd.DataFrame: ...
    @property
    def candidates(self) -> np.ndarray: ...
    @property
    def existing(self) -> list[tuple[int, int]]: ...
    @property
    def final_seeds(self) -> list[int]: ...
    @property
    def search_seeds(self) -> list[int]: ...
    @property
    def evaluations(self) -> int: ...
    @property
    def seconds(self) -> float: ...


def method_hubs(table: pd.DataFrame) -> dict[str, list[tuple[int, int]]]:
    """Each method's new hub cells, from a placement table (one row per method)."""
    return {
        row.method: list(zip(row.hubs_x, row.hubs_y, strict=True)) for row in table.itertuples()
    }


def write_placements(
    found: PlacementRecord, city: City, sites: pd.DataFrame, manifest: dict[str, Any], out: Path
) -> list[Path]:
    """placements.parquet (one row per method), runs.parquet (every final run),
    gains.csv, neighbourhoods.csv, candidates.csv, one map per placement, report.md and
    manifest.json, replacing `out` whole."""
    from sim.outputs import plots

    out = Path(out)
    with staged(out) as staging:
        (staging / "figures").mkdir()
        found.table.to_parquet(staging / "placements.parquet", index=False)
        found.runs.to_parquet(staging / "runs.parquet", index=False)
        found.gains.to_csv(staging / "gains.csv", index=False)
        found.areas.to_csv(staging / "neighbourhoods.csv", index=False)
        found.hub_services.to_csv(staging / "hub_services.csv", index=False)
        _candidate_table(found, city).to_csv(staging / "candidates.csv", index=False)
        figures = []
        hubs = method_hubs(found.table)
        for name, grid in found.unmet.items():
            file = f"figures/unmet_{name.replace(' ', '_')}.png"
            plots.placement_map(
                grid,
                city.cell_size_m,
                sites,
                hubs.get(name, []),
                found.existing,
                staging / file,
                f"{name}: unmet needs per cell (mean per measured week)",
            )
            figures.append(file)
        if "status quo" in found.unmet:
            file = "figures/placements.png"
            plots.placements_overview(
                found.unmet["status quo"],
                city.cell_size_m,
                sites,
                hubs,
                found.existing,
                staging / file,
            )
            figures.append(file)
        (staging / "report.md").write_text(placement_report(found, city, figures), encoding="utf-8")
        files = [
            "manifest.json",
            "placements.parquet",
            "runs.parquet",
            "gains.csv",
            "neighbourhoods.csv",
            "hub_services.csv",
            "candidates.csv",
            "report.md",
            *figures,
        ]
        identity = job_identity("place-hubs", [found.scenario.name])
        _write_json(staging / "manifest.json", dict(manifest, job=identity, files=files))
    return [out / f for f in files]


def _candidate_table(found: PlacementRecord, city: City) -> pd.DataFrame:
    cells = np.asarray(found.candidates).reshape(-1, 2)
    table = pd.DataFrame(
        {
            "x": cells[:, 0],
            "y": cells[:, 1],
            "x_m": centre_m(cells[:, 0], city.cell_size_m),
            "y_m": centre_m(cells[:, 1], city.cell_size_m),
            "neighbourhood": city.neighbourhood[cells[:, 0], cells[:, 1]],
            "neighbourhood_name": [
                city.neighbourhood_name(int(h))
                for h in city.neighbourhood[cells[:, 0], cells[:, 1]]
            ],
            "families_in_cell": city.families[cells[:, 0], cells[:, 1]],
        }
    )
    if not found.screened.empty:
        table = table.merge(found.screened, on=["x", "y"], how="left")
        table = table.rename(columns={"gain": "gain_alone", "rank": "rank_alone"})
    return table


def _pct(value: float) -> str:
    return f"{100 * value:.2f} %"


def _signed_pp(value: float) -> str:
    return f"{100 * value:+.2f} pp"


def _interval_pp(mean: float, lo: float, hi: float) -> str:
    if not np.isfinite(lo):
        return f"{100 * mean:+.2f} pp"
    return f"{100 * mean:+.2f} pp [{100 * lo:+.2f}, {100 * hi:+.2f}]"


def _value(column: str, v: float) -> str:
    if column.endswith("_pp"):
        return f"{v:.2f} pp"
    if "share" in column or "participation" in column or column.startswith("takeup"):
        return _pct(v)
    return f"{v:,.1f}"


def _diff(column: str, mean: float, lo: float, hi: float) -> str:
    if column.endswith("_pp") or not (
        "share" in column or "participation" in column or column.startswith("takeup")
    ):
        unit = " pp" if column.endswith("_pp") else ""
        if not np.isfinite(lo):
            return f"{mean:+,.2f}{unit}"
        return f"{mean:+,.2f}{unit} [{lo:+,.2f}, {hi:+,.2f}]"
    return _interval_pp(mean, lo, hi)


def _cells_km(cells: list[tuple[int, int]], city: City) -> str:
    return ", ".join(
        f"[{x}, {y}] ({centre_m(x, city.cell_size_m) / 1000:.2f} km E, "
        f"{centre_m(y, city.cell_size_m) / 1000:.2f} km N; neighbourhood "
        f"{city.neighbourhood_name(int(city.neighbourhood[x, y]))})"
        for x, y in cells
    )


GAIN_WORDS = {
    "unmet_need_share": "needs unmet, all families",
    "unmet_need_share_by_language_local": "needs unmet, local-language families",
    "unmet_need_share_by_language_non_local": "needs unmet, other home languages",
    "u3_participation_arope": "under-3 childcare, AROPE",
    "u3_participation_non_arope": "under-3 childcare, not AROPE",
    "travel_minutes_used": "minutes to the services used",
    "travel_minutes_nearest": "minutes to the nearest service",
}


def _gain_words(measure: str) -> str:
    if measure in GAIN_WORDS:
        return GAIN_WORDS[measure]
    for t in SERVICE_TYPES:
        for g, words in (("non_arope", "not AROPE"), ("arope", "AROPE")):
            if measure == f"takeup_{t}_{g}":
                return f"take-up of {t.replace('_', ' ')}, {words}"
    return measure


def placement_report(found: PlacementRecord, city: City, figures: list[str]) -> str:
    """The planner's report: which cells each method chose, how sure the ranking is, what
    each placement gains for whom, the travel change, and where the static measures and
    the behavioural model disagree, in plain words."""
    s = found.settings
    objective = s.objective
    table = found.table
    lines = [
        f"# Where should {'the new hub' if s.k == 1 else f'{s.k} new hubs'} go? — "
        f"{found.scenario.name}",
        "",
        f"Objective: **{objective.name}**, {objective.text} (the run measure "
        f"`{objective.column}`). Each method's placement was run on the same "
        f"{len(found.final_seeds)} fresh replication seeds (common random numbers); "
        f"the search used {len(found.search_seeds)} other seeds. Existing services stay; "
        "each hub joins the public services already at its cell and adds what it lacks "
        f"([hubs] in the scenario). {_outlay_line(table)}",
        "",
        f"{len(found.candidates)} candidate cells; {found.evaluations:,} runs in "
        f"{found.seconds / 60:.1f} min ({60 * found.evaluations / max(found.seconds, 1e-9):.0f} "
        "runs a minute).",
        "",
        "## The placements",
        "",
        "| method | hub cells | objective (95 % interval) | vs status quo | probability best "
        "| solver / search | runs | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    column = objective.column
    for row in table.itertuples():
        cells = row.hub_cells or "none"
        if np.isfinite(getattr(row, "objective_mean", np.nan)):
            value = (
                f"{_value(column, row.objective_mean)} "
                f"[{_value(column, row.objective_low)}, {_value(column, row.objective_high)}]"
            )
            change = _diff(
                column, row.vs_status_quo_mean, row.vs_status_quo_low, row.vs_status_quo_high
            )
            p = f"{row.p_best:.2f}"
        else:
            value, change, p = "not run", "", ""
        lines.append(
            f"| {row.method} | {cells} | {value} | {change} | {p} | {row.solver_status} | "
            f"{row.evaluations} | {row.seconds:.1f} |"
        )
    if "random_median" in table.columns:
        r = table[table["method"] == "random"].iloc[0]
        lines += [
            "",
            f"Random placements ({s.random_placements}, search seeds): objective 5th "
            f"percentile {_value(column, r.random_p05)}, median "
            f"{_value(column, r.random_median)}, 95th {_value(column, r.random_p95)}.",
        ]
    lines += ["", "## How sure the ranking is", ""] + _sureness(found)
    lines += ["", "## Where the hubs go", ""]
    for row in table.itertuples():
        cells = list(zip(row.hubs_x, row.hubs_y, strict=True))
        if cells:
            lines.append(f"- **{row.method}**: {_cells_km(cells, city)}")
            lines += _what_hubs_hold(found.hub_services, row.method)
    lines += [
        "",
        "A hub joins the public services of its types already at its cell and brings a "
        "presence (a session of the nearest site) of each type it lacks, in the units of "
        "`[hubs.presence_capacity]`; a type whose presence is 0 there is not in the hub.",
    ]
    lines += ["", "## What each placement gains, for whom", ""] + _gains(found)
    lines += ["", "## Static measures and behaviour", ""] + _static_vs_behaviour(found)
    lines += [
        "",
        "## Files",
        "",
        "- `placements.parquet`: one row per method (hub cells, objective with interval, "
        "paired differences, probability best, every run measure's mean, solver status, "
        "runs, seconds).",
        "- `runs.parquet`: every final run (placement, seed, every measure).",
        "- `gains.csv`: per method and measure, the paired change from the status quo.",
        "- `neighbourhoods.csv`: per method and neighbourhood, the change in the unmet share.",
        "- `hub_services.csv`: per method, new hub and hub type, whether the hub joins a "
        "service there, brings a presence or has none, and its places.",
        "- `candidates.csv`: the candidate cells and, for `simulated`, each one's gain alone.",
        "",
    ]
    lines += [f"![{f}]({f})" for f in figures]
    lines.append("")
    return "\n".join(lines)


def _outlay_line(table: pd.DataFrame) -> str:
    """The public outlay of the placements (means over the final seeds), as measured."""
    if "public_outlay_eur_week" not in table or table["public_outlay_eur_week"].isna().all():
        return ""
    outlay = table["public_outlay_eur_week"].dropna()
    low, high = float(outlay.min()), float(outlay.max())
    if high - low < 1.0:
        return f"Every placement's public outlay is {low:,.0f} EUR a week."
    parts = [c for c in table.columns if c.startswith("outlay_") and c.endswith("_eur_week")]
    differing = [
        c.removeprefix("outlay_").removesuffix("_eur_week").replace("_", " ")
        for c in parts
        if table[c].max() - table[c].min() >= 1.0
    ]
    return (
        f"The placements' public outlays range from {low:,.0f} to {high:,.0f} EUR a week; "
        f"what differs: {', '.join(differing) or 'rounding'} (a presence a hub brings "
        "holds its donor site's languages, and with them its interpreters; with "
        '`presence_from = "added"` its places are paid too).'
    )


def _what_hubs_hold(services: pd.DataFrame, method: str) -> list[str]:
    lines = []
    for (x, y), part in services[services["method"] == method].groupby(["x", "y"], sort=False):
        said = []
        for how in ("joins", "brings"):
            these = part[part["how"] == how]
            if len(these):
                items = ", ".join(
                    f"{t.replace('_', ' ')} ({p:,})"
                    for t, p in zip(these["type"], these["places"], strict=True)
                )
                said.append(f"{how} {items}")
        missing = part[part["how"] == "none"]["type"].str.replace("_", " ").tolist()
        if missing:
            said.append(f"has no {', '.join(missing)}")
        lines.append(f"  - [{x}, {y}] {'; '.join(said)}")
    return lines


def _sureness(found: PlacementRecord) -> list[str]:
    table = found.table.dropna(subset=["objective_mean"])
    if table.empty or "simulated" not in set(table["method"]):
        return ["Only one method was run: no ranking to be sure of."]
    sim = table[table["method"] == "simulated"].iloc[0]
    out = [
        f"The simulated placement is the best on the final seeds among the {len(found.runs['placement'].unique()) - 1} "
        "placements compared there (its own search's best few and every other method's "
        f"answer). The probability that it is truly the best of them is **{sim.p_best:.2f}** "
        "(Bayesian bootstrap over the paired seeds). Its figure is selected on the seeds it "
        "is reported on, so it is optimistic by a little; the paired differences below are "
        "the fairer comparison.",
        "",
    ]
    column = found.settings.objective.column
    for row in table.itertuples():
        if row.method == "simulated" or not np.isfinite(getattr(row, "vs_simulated_mean", np.nan)):
            continue
        if row.hub_cells == sim.hub_cells:
            out.append(f"- {row.method} chose the same cells as the simulated search.")
            continue
        lo, hi = row.vs_simulated_low, row.vs_simulated_high
        clear = np.isfinite(lo) and (lo > 0 or hi < 0)
        out.append(
            f"- {row.method} minus simulated: {_diff(column, row.vs_simulated_mean, lo, hi)}"
            + (
                " — the interval excludes zero: the simulated placement is better."
                if clear
                else " — the interval includes zero: the seeds cannot tell these two apart."
            )
        )
    return out


def _gains(found: PlacementRecord) -> list[str]:
    if found.gains.empty:
        return ["No placement was run."]
    methods = list(dict.fromkeys(found.gains["method"]))
    out = [
        "Paired change from the status quo on the final seeds, mean [95 % interval]; shares "
        "in percentage points, minutes as minutes.",
        "",
        "| measure | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for measure, part in found.gains.groupby("measure", sort=False):
        cells = []
        for m in methods:
            r = part[part["method"] == m].iloc[0]
            cells.append(_diff(str(measure), r["mean"], r["low"], r["high"]))
        out.append(f"| {_gain_words(str(measure))} | " + " | ".join(cells) + " |")
    if not found.areas.empty:
        out += ["", "Neighbourhoods where the unmet share changes most (simulated placement):", ""]
        areas = found.areas[found.areas["method"] == "simulated"]
        if areas.empty:
            areas = found.areas[found.areas["method"] == found.areas["method"].iloc[0]]
        for r in areas.nsmallest(3, "change_mean").itertuples():
            out.append(
                f"- neighbourhood {r.neighbourhood_name}: {_pct(r.unmet_share_status_quo)} of needs "
                f"unmet today, change {_interval_pp(r.change_mean, r.change_low, r.change_high)}"
            )
    return out


def _static_vs_behaviour(found: PlacementRecord) -> list[str]:
    table = found.table.set_index("method")
    s = found.settings
    column = s.objective.column
    out = [
        f"The location models see need-weighted demand in blocks of {s.block_cells} x "
        f"{s.block_cells} cells and straight-line distance; MCLP counts demand within "
        f"{s.radius_m:g} m of a hub as covered. They know nothing of fees, languages, "
        "stigma, trust, word of mouth or queues, which the behavioural model runs.",
        "",
    ]
    for method in ("mclp", "pmedian", "random", "simulated"):
        if method in table.index and np.isfinite(table.loc[method, "coverage_share"]):
            r = table.loc[method]
            out.append(
                f"- {method}: covers {_pct(r.coverage_share)} of need-weighted demand within "
                f"{s.radius_m:g} m; need-weighted mean distance to a hub "
                f"{r.mean_distance_m:,.0f} m."
            )
    if {"simulated", "mclp"} <= set(table.index):
        sim, mclp = table.loc["simulated"], table.loc["mclp"]
        if sim.hub_cells == mclp.hub_cells:
            out += ["", "Here the behavioural search and the covering model agree on the cells."]
        elif np.isfinite(sim.coverage_share) and np.isfinite(mclp.coverage_share):
            more = 100 * (mclp.coverage_share - sim.coverage_share)
            verdict = _diff(
                column, mclp.vs_simulated_mean, mclp.vs_simulated_low, mclp.vs_simulated_high
            )
            out += [
                "",
                f"They disagree. MCLP's cells cover {abs(more):.1f} points "
                f"{'more' if more >= 0 else 'less'} of the need-weighted demand than the "
                f"simulated cells; on the model, MCLP's placement minus the simulated one "
                f"is {verdict} on `{column}`.",
            ]
            out += _why_they_differ(found, "simulated", "mclp")
    return out


def _why_they_differ(found: PlacementRecord, a: str, b: str) -> list[str]:
    """What the model sees and coverage does not, from what was measured: what the two
    placements' hubs hold, and the gains in which they differ most."""
    out = []
    held = found.hub_services
    for t in ("childcare",):
        rows = held[held["type"] == t]
        if rows.empty:
            continue
        count = {m: int(((rows["method"] == m) & (rows["how"] != "none")).sum()) for m in (a, b)}
        if count[a] != count[b]:
            out.append(
                f"- What the hubs hold: {count[a]} of the {a} placement's {found.settings.k} "
                f"hubs have {t} in them, {count[b]} of {b.upper()}'s. A hub has {t} only where "
                f"a public {t} service already is unless `[hubs.presence_capacity]` gives it "
                "one; distance to a hub counts the same for coverage whatever the hub holds."
            )
    gains = found.gains
    if not gains.empty and {a, b} <= set(gains["method"]):
        wide = gains.pivot(index="measure", columns="method", values="mean")
        shares = [m for m in wide.index if not str(m).startswith("travel_")]
        gap = (wide.loc[shares, a] - wide.loc[shares, b]).abs().sort_values(ascending=False)
        for measure in gap.index[:3]:
            out.append(
                f"- {_gain_words(str(measure))}: {a} {100 * wide.loc[measure, a]:+.2f} pp, "
                f"{b.upper()} {100 * wide.loc[measure, b]:+.2f} pp (mean changes from the "
                "status quo)."
            )
    if out:
        out = ["", "Where the model parts from coverage:", "", *out]
    return out
