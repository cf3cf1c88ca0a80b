"""The folder `famsim calibrate` writes, and the table `famsim patterns` prints: the report, its tables and figures, the plausible
set and the calibrated scenario. It renders what `sim.studies.calibration` computed (passed
in as a record with the fields read here) and computes nothing of its own."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from sim.measure.metrics import kind_of


def figure_text(value: float, measure: str) -> str:
    """A measure's value as a reader reads it: shares in %, differences of shares in pp,
    ratios as ratios."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    names = [m.strip() for m in measure.replace(" / ", "|").replace(" - ", "|").split("|")]
    if " / " in measure:
        return f"{value:.2f}"
    if all(kind_of(n).unit == "%" for n in names):
        return f"{100 * value:.1f} %" if " - " not in measure else f"{100 * value:+.1f} pp"
    return f"{value:.3g}"


def write_calibration(calibration: Any, out: Path, toml_text: str, toml_name: str) -> list[Path]:
    """Write every file of a calibration into `out`; returns them."""
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def atomic(path: Path, write) -> None:
        tmp = path.with_name(f"_tmp-{path.name}")
        write(tmp)
        os.replace(tmp, path)
        written.append(path)

    atomic(out / toml_name, lambda p: p.write_text(toml_text, encoding="utf-8"))
    atomic(out / "plausible.parquet", lambda p: calibration.posterior.to_parquet(p, index=False))
    atomic(out / "design.parquet", lambda p: calibration.design.to_parquet(p, index=False))
    atomic(out / "fit.csv", lambda p: calibration.fit.to_csv(p, index=False))
    atomic(out / "parameters.csv", lambda p: calibration.summary.to_csv(p, index=False))
    atomic(out / "sensitivity.csv", lambda p: calibration.sensitivity.to_csv(p, index=False))
    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    atomic(figures / "fit.png", lambda p: _fit_figure(calibration, p))
    atomic(figures / "plausible_region.png", lambda p: _region_figure(calibration, p))
    atomic(
        out / "report.md", lambda p: p.write_text(report(calibration, toml_name), encoding="utf-8")
    )
    return written


def write_manifest(out: Path, manifest: dict[str, Any]) -> Path:
    path = out / "calibration.json"
    tmp = path.with_name(f"_tmp-{path.name}")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)
    return path


def report(calibration: Any, toml_name: str) -> str:
    t = calibration.targets
    lines = [
        f"# Calibration: {t.name}",
        "",
        t.description.strip(),
        "",
        f"Scenario `{Path(t.scenario_file).name}`; {len(t.parameters)} free parameter{'s' if len(t.parameters) != 1 else ''}; "
        f"{t.replications} replications per design point on the same seeds (common random "
        f"numbers); {sum(len(w.unit) for w in calibration.waves)} design points in "
        f"{len(calibration.waves)} waves, {calibration.runs_total} runs in all "
        f"({calibration.runs_now} computed by the last invocation, {calibration.seconds / 60:.1f} "
        "min). The chosen point is re-run on "
        f"{t.recheck_replications} fresh seeds.",
        "",
        "## Fit at the chosen point (fresh seeds)",
        "",
        "| target | measure | source value | band | simulated (95 % interval) | plausible set 5–95 % | in band |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in calibration.fit.itertuples():
        band = (
            f"{figure_text(row.band_low, row.measure)} – {figure_text(row.band_high, row.measure)}"
        )
        if not row.band_from_source:
            band += " ¹"
        n = f" (n = {int(row.n):,})" if row.n is not None and not pd.isna(row.n) else ""
        lines.append(
            f"| {row.target} | `{row.measure}` | {figure_text(row.value, row.measure)}{n} | {band} | "
            f"{figure_text(row.simulated, row.measure)} ({figure_text(row.simulated_low, row.measure)} – "
            f"{figure_text(row.simulated_high, row.measure)}) | {figure_text(row.plausible_q05, row.measure)} – "
            f"{figure_text(row.plausible_q95, row.measure)} | {'yes' if row.inside_band else 'no'} |"
        )
    if not calibration.fit.band_from_source.all():
        lines += [
            "",
            "¹ No band in the source: ± 1.96 standard deviations of the figure's sampling "
            "error and the model discrepancy stated in the targets file.",
        ]
    lines += ["", "Sources:", ""]
    lines += [f"- **{x.name}**: {x.source}" for x in t.targets]
    if len(calibration.bounds_check):
        lines += [
            "",
            "## Plausibility ranges",
            "",
            "| range | measure | allowed | simulated | inside |",
            "|---|---|---|---|---|",
        ]
        for row in calibration.bounds_check.itertuples():
            lines.append(
                f"| {row.name} | `{row.measure}` | {figure_text(row.low, row.measure)} – "
                f"{figure_text(row.high, row.measure)} | {figure_text(row.simulated, row.measure)} | "
                f"{'yes' if row.inside else 'no'} |"
            )
        lines += [""] + [f"- **{b.name}**: {b.source}" for b in t.bounds]
    if len(calibration.references):
        lines += ["", "## Distance to reference figures", ""]
        for row in calibration.references.itertuples():
            lines.append(
                f"- **{row.name}** ({figure_text(row.value, row.measure)}; {row.source}): simulated "
                f"{figure_text(row.simulated, row.measure)}, {row.distance_pp:+.1f} pp "
                f"(95 % interval {row.distance_low_pp:+.1f} to {row.distance_high_pp:+.1f} pp)."
            )
    lines += [
        "",
        "## Parameters",
        "",
        "| parameter | prior range | chosen | posterior mean | posterior 5–95 % | shrinkage |",
        "|---|---|---|---|---|---|",
    ]
    for row in calibration.summary.itertuples():
        lines.append(
            f"| `{row.parameter}` | {row.prior_low:g} – {row.prior_high:g} | "
            f"{calibration.chosen[row.parameter]:g} | {row.posterior_mean:.3g} | "
            f"{row.posterior_q05:.3g} – {row.posterior_q95:.3g} | {row.shrinkage:.2f} |"
        )
    lines += [
        "",
        "Shrinkage is 1 − posterior sd / prior sd: near 0 the targets say little about a "
        "parameter (it is not identified by them), near 1 they pin it down.",
        "",
    ]
    lines += [
        f"- `{row.parameter}`: {row.why}" for row in calibration.summary.itertuples() if row.why
    ]
    lines += [
        "",
        "## Plausible region",
        "",
        f"History matching kept {100 * calibration.nroy_share:.1f} % of the prior box (candidates "
        "whose emulated measures lie within three standard deviations of every target, counting "
        "the emulator's, the replications', the source's and the model-discrepancy variance). "
        f"The posterior is importance-sampled over that region (effective sample size "
        f"{calibration.ess:.0f}); `plausible.parquet` holds {len(calibration.posterior)} draws "
        "from it, which `famsim compare --over-plausible N` reads.",
        "",
        "![simulated vs targets](figures/fit.png)",
        "",
        "![plausible region](figures/plausible_region.png)",
        "",
        *(
            [
                "**No candidate survived**: nowhere in the prior box are all targets within "
                "three standard deviations at once, so the posterior above is over the 500 "
                "least implausible candidates. The targets pull against each other in this "
                "model; the fit table shows which ones it gives up.",
                "",
            ]
            if calibration.nroy_share == 0
            else []
        ),
        "## Sensitivity (emulator, Sobol' indices over the prior box)",
        "",
        "| target | parameter | first order | total |",
        "|---|---|---|---|",
    ]
    for row in calibration.sensitivity.itertuples():
        lines.append(f"| {row.target} | `{row.parameter}` | {row.S1:.2f} | {row.ST:.2f} |")
    lines += [
        "",
        "## Emulator",
        "",
        "One Gaussian process per target (scikit-learn; constant × Matérn 5/2 with a length "
        "scale per parameter, on the unit cube; the point means' replication variance as "
        "known noise). Fitted kernels:",
        "",
    ]
    lines += [f"- {x.name}: `{k}`" for x, k in zip(t.targets, calibration.kernels, strict=True)]
    lines += [
        "",
        f"The calibrated scenario is `{toml_name}`: it extends `{Path(t.scenario_file).name}` "
        "with the chosen point.",
        "",
    ]
    return "\n".join(lines)


def _fit_figure(calibration: Any, path: Path) -> None:
    """One row per target, each on its own scale: the source's band and value, the plausible
    set's 5-95 % range of the emulated measure, the chosen point's fresh-seed interval."""
    from matplotlib.figure import Figure

    fit = calibration.fit
    fig = Figure(figsize=(7, 0.6 + 1.1 * len(fit)))
    axes = fig.subplots(len(fit), 1, squeeze=False)
    for ax, row in zip(axes[:, 0], fit.itertuples(), strict=True):
        ratio = " / " in row.measure
        scale = 1.0 if ratio else 100.0
        ax.axvspan(scale * row.band_low, scale * row.band_high, color="#cfe3f3", label="band")
        ax.axvline(scale * row.value, color="k", label="source value")
        ax.plot(
            [scale * row.plausible_q05, scale * row.plausible_q95],
            [0.3, 0.3],
            color="#888",
            lw=4,
            label="plausible set 5-95 %",
        )
        ax.errorbar(
            scale * row.simulated,
            0.6,
            xerr=[
                [scale * (row.simulated - row.simulated_low)],
                [scale * (row.simulated_high - row.simulated)],
            ],
            fmt="o",
            color="#c0392b",
            capsize=3,
            label="chosen point, fresh seeds (95 %)",
        )
        ax.set_ylim(0, 1)
        ax.set_yticks([])
        ax.set_title(f"{row.target} ({'ratio' if ratio else '%'})", fontsize=9, loc="left")
    axes[0, 0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"{calibration.targets.name}: simulated vs targets", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)


def _region_figure(calibration: Any, path: Path) -> None:
    from matplotlib.figure import Figure

    names = [p.path for p in calibration.targets.parameters]
    d = len(names)
    pairs = [(i, j) for i in range(d) for j in range(i + 1, d)] or [(0, 0)]
    fig = Figure(figsize=(4.2 * len(pairs), 4))
    axes = fig.subplots(1, len(pairs), squeeze=False)
    design = calibration.design
    for ax, (i, j) in zip(axes[0], pairs, strict=True):
        xi, yj = names[i], names[j]
        post = calibration.posterior
        if i == j:
            ax.hist(post[xi], bins=30, color="#cfe3f3", label="plausible set")
            ax.axvline(calibration.chosen[xi], color="#c0392b", label="chosen")
            ax.set_ylabel("draws")
        else:
            ax.scatter(post[xi], post[yj], s=4, alpha=0.3, color="#3a7bbf", label="plausible set")
            for wave, marker in (("wave-1", "x"), ("wave-2", "+")):
                w = design[design["wave"] == wave]
                ax.scatter(w[xi], w[yj], s=16, marker=marker, color="#555", label=wave)
            ax.plot(
                calibration.chosen[xi],
                calibration.chosen[yj],
                "*",
                color="#c0392b",
                markersize=14,
                label="chosen",
            )
            ax.set_ylabel(yj.split(".")[-1])
        ax.set_xlabel(xi.split(".")[-1])
        p = calibration.targets.parameters
        ax.set_xlim(p[i].low, p[i].high)
        if i != j:
            ax.set_ylim(p[j].low, p[j].high)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{calibration.targets.name}: plausible region")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)


def patterns_table(results: list[Any]) -> str:
    """One line per pattern: verdict, name, scenario, measure, band, mean and interval."""
    lines = []
    for r in results:
        s = r.spec
        verdict = "pass" if r.passes else "FAIL"
        lines.append(
            f"{verdict}  {s.name} [{Path(s.scenario_file).stem}, {s.measure}]: "
            f"{figure_text(r.mean, s.measure)} (95 % interval {figure_text(r.low, s.measure)} to "
            f"{figure_text(r.high, s.measure)}, {r.replications} replications); band "
            f"{figure_text(s.low, s.measure)} to {figure_text(s.high, s.measure)}; {s.source}"
        )
    passed = sum(r.passes for r in results)
    lines.append(f"{passed} of {len(results)} patterns pass")
    return "\n".join(lines)
