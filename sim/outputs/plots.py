"""Figures written to results/<name>/figures/ (PNG, matplotlib's Agg backend), or returned
as matplotlib figures when no path is given (RunResult.plot, Comparison.plot)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sim.measure.stats import interval  # noqa: E402


def _finish(fig: Figure, path: Path | None, dpi: int) -> Figure | None:
    """Save and close the figure when a path is given (a results folder); otherwise return
    it to the caller (a notebook shows it)."""
    if path is None:
        return fig
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return None


GROUP_COLOURS = {"all": "#333333", "arope": "#c0392b", "non_arope": "#2471a3"}


def _participation_panel(ax, timeseries: pd.DataFrame, burn_in: int, title: str) -> None:
    for group, colour in GROUP_COLOURS.items():
        by_week = timeseries.groupby("week")[f"u3_participation_{group}"]
        mean, lo, hi = by_week.mean(), by_week.min(), by_week.max()
        label = "all" if group == "all" else group.replace("_", "-").upper()
        ax.plot(mean.index, 100 * mean.to_numpy(), color=colour, label=label)
        ax.fill_between(
            mean.index,
            100 * lo.to_numpy(),
            100 * hi.to_numpy(),
            color=colour,
            alpha=0.15,
            linewidth=0,
        )
    ax.axvline(burn_in, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("week (burn-in, then the measured window)")
    ax.set_title(title, fontsize=10)


def participation_over_time(
    timeseries: pd.DataFrame, burn_in: int, path: Path | None, title: str
) -> Figure | None:
    """Under-3 participation by group per week, mean over replications with their range."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    _participation_panel(ax, timeseries, burn_in, title)
    ax.text(burn_in, ax.get_ylim()[1], " measured window", va="top", fontsize=8, color="grey")
    ax.set_ylabel("children under 3 in childcare (%)")
    ax.legend(frameon=False)
    fig.tight_layout()
    return _finish(fig, path, 110)


def participation_over_time_by_scenario(
    timeseries: pd.DataFrame, names: list[str], burn_in: int, path: Path | None
) -> Figure | None:
    """One panel per scenario: participation by group per week (steady over the window?)."""
    fig, axes = plt.subplots(
        1, len(names), figsize=(3.6 * len(names), 3.8), sharey=True, squeeze=False
    )
    for ax, name in zip(axes[0], names, strict=True):
        _participation_panel(ax, timeseries[timeseries["scenario"] == name], burn_in, name)
    axes[0][0].set_ylabel("children under 3 in childcare (%)")
    axes[0][0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return _finish(fig, path, 100)


def unmet_need_map(share: np.ndarray, path: Path | None, title: str) -> Figure | None:
    """Share of need-weeks unmet per cell over the window (mean over replications)."""
    fig, ax = plt.subplots(figsize=(6, 5.2))
    image = ax.imshow(np.ma.masked_invalid(share.T), origin="lower", cmap="magma_r", vmin=0, vmax=1)
    ax.set_xlabel("x (cells)")
    ax.set_ylabel("y (cells)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="unmet share of (family, service) needs")
    fig.tight_layout()
    return _finish(fig, path, 110)


def quintile_gradient(runs: pd.DataFrame, path: Path | None, title: str) -> Figure | None:
    """Under-3 participation by income quintile, mean and 95 % interval over replications."""
    fig, ax = plt.subplots(figsize=(6, 4))
    means, errs = [], []
    for q in range(1, 6):
        mean, lo, hi = interval(runs[f"u3_participation_q{q}"])
        means.append(100 * mean)
        errs.append(100 * (hi - lo) / 2 if np.isfinite(hi) else 0.0)
    ax.bar(range(1, 6), means, yerr=errs, color="#2471a3", capsize=4)
    ax.set_xticks(range(1, 6), [f"Q{q}" for q in range(1, 6)])
    ax.set_xlabel("equivalised income quintile (families with a child under 3)")
    ax.set_ylabel("children under 3 in childcare (%)")
    ax.set_title(title)
    fig.tight_layout()
    return _finish(fig, path, 110)


def barrier_attribution(runs: pd.DataFrame, path: Path | None, title: str) -> Figure | None:
    """Main barrier of unmet needs (exclusive cascade) per service type, coloured by
    accessibility dimension: one panel per type, each a share of that type's unmet
    need-weeks (pooling the types would hide childcare behind the others)."""
    from sim.core.codes import ACCESSIBILITY_DIMENSION, DIMENSIONS, SERVICE_TYPES

    fig, axes = plt.subplots(1, len(SERVICE_TYPES), figsize=(13, 4), sharey=True)
    colours = plt.get_cmap("tab10")
    groups = sorted(set(ACCESSIBILITY_DIMENSION.values()))
    for ax, service_type in zip(axes, SERVICE_TYPES, strict=True):
        shares = [100 * runs[f"main_barrier_{d}_{service_type}"].mean() for d in DIMENSIONS]
        ax.bar(
            range(len(DIMENSIONS)),
            shares,
            color=[colours(groups.index(ACCESSIBILITY_DIMENSION[d])) for d in DIMENSIONS],
        )
        ax.set_xticks(range(len(DIMENSIONS)), DIMENSIONS, rotation=55, ha="right", fontsize=8)
        ax.set_title(service_type.replace("_", " "), fontsize=10)
    axes[0].set_ylabel("share of the type's unmet need-weeks (%)")
    fig.suptitle(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(i)) for i in range(len(groups))]
    axes[-1].legend(handles, groups, frameon=False, fontsize=8)
    fig.tight_layout()
    return _finish(fig, path, 110)


def participation_by_scenario(
    runs: pd.DataFrame, names: list[str], path: Path | None
) -> Figure | None:
    """Under-3 participation by group per scenario, mean and 95 % interval."""
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(names)), 4.5))
    width = 0.27
    for g, (group, colour) in enumerate(GROUP_COLOURS.items()):
        means, errs = [], []
        for name in names:
            mean, lo, hi = interval(runs[runs["scenario"] == name][f"u3_participation_{group}"])
            means.append(100 * mean)
            errs.append(100 * (hi - lo) / 2 if np.isfinite(hi) else 0.0)
        x = np.arange(len(names)) + (g - 1) * width
        ax.bar(x, means, width, yerr=errs, color=colour, capsize=3, label=group.replace("_", "-"))
    ax.set_xticks(np.arange(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel("children under 3 in childcare (%)")
    ax.set_title("Participation by group")
    ax.legend(frameon=False)
    fig.tight_layout()
    return _finish(fig, path, 110)


def quintile_gradient_by_scenario(
    runs: pd.DataFrame, names: list[str], path: Path | None
) -> Figure | None:
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name in names:
        sub = runs[runs["scenario"] == name]
        ax.plot(
            range(1, 6),
            [100 * sub[f"u3_participation_q{q}"].mean() for q in range(1, 6)],
            marker="o",
            label=name,
        )
    ax.set_xticks(range(1, 6), [f"Q{q}" for q in range(1, 6)])
    ax.set_xlabel("equivalised income quintile (families with a child under 3)")
    ax.set_ylabel("children under 3 in childcare (%)")
    ax.set_title("Income gradient")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return _finish(fig, path, 110)


def barrier_attribution_by_scenario(
    runs: pd.DataFrame, names: list[str], path: Path | None
) -> Figure | None:
    """Stacked main barriers per scenario, grouped by the five accessibility dimensions."""
    from sim.core.codes import ACCESSIBILITY_DIMENSION, DIMENSIONS

    groups = ["comprehensibility", "availability", "affordability", "accessibility", "usefulness"]
    order = [d for g in groups for d in DIMENSIONS if ACCESSIBILITY_DIMENSION[d] == g]
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(max(6, 1.5 * len(names)) + 2, 4.8))
    bottom = np.zeros(len(names))
    for i, dim in enumerate(order):
        values = np.array(
            [100 * runs[runs["scenario"] == n][f"main_barrier_{dim}"].mean() for n in names]
        )
        ax.bar(
            range(len(names)),
            values,
            bottom=bottom,
            color=cmap(i),
            label=f"{ACCESSIBILITY_DIMENSION[dim]}: {dim}",
        )
        bottom += values
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel("share of unmet need-weeks (%)")
    ax.set_title("Main barrier of unmet needs")
    ax.legend(frameon=False, fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return _finish(fig, path, 110)


def unmet_maps_side_by_side(maps: dict[str, np.ndarray], path: Path | None) -> Figure | None:
    names = list(maps)
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names) + 1, 3.6), squeeze=False)
    image = None
    for ax, name in zip(axes[0], names, strict=True):
        image = ax.imshow(
            np.ma.masked_invalid(maps[name].T), origin="lower", cmap="magma_r", vmin=0, vmax=1
        )
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), label="unmet share of needs", shrink=0.8)
    return _finish(fig, path, 100)


def budget_path(
    path_rows: list[dict[str, float]], levers: tuple[str, ...], title: str, path: Path | None
) -> Figure | None:
    """An adaptive policy's flexible budget by lever after each review (EUR a week, mean
    over replications), stacked: the total is the flexible budget at every review."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    weeks = [row["week"] + 1 for row in path_rows]
    stack = [[row[f"policy_{lever}_eur_week"] for row in path_rows] for lever in levers]
    ax.stackplot(weeks, stack, labels=[lever.replace("_", " ") for lever in levers], step="post")
    ax.set_xlabel("week (end of each review period)")
    ax.set_ylabel("EUR a week held by the lever")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    return _finish(fig, path, 150)
