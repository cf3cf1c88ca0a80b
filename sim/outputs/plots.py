"""Figures written to results/<name>/figures/ (PNG, matplotlib's Agg backend), or returned
as matplotlib figures when no path is given (RunResult.plot, Comparison.plot)."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

# files are drawn with Agg; in a Jupyter kernel its own backend (inline) stays, so that a
# figure returned to a notebook is shown
if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sim.measure.stats import interval  # noqa: E402


def _finish(fig: Figure, path: Path | None, dpi: int) -> Figure | None:
    """Save and close the figure when a path is given (a results folder); otherwise return
    it to the caller (a notebook shows it). Either way pyplot lets go of it: a notebook
    shows the returned figure once, not again among pyplot's open figures."""
    if path is None:
        plt.close(fig)
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


def unmet_maps_side_by_side(
    counts: dict[str, np.ndarray],
    shares: dict[str, np.ndarray],
    cell_size_m: float,
    sites: dict[str, pd.DataFrame],
    path: Path | None,
) -> Figure | None:
    """Per scenario (columns), unmet needs per cell in a week (top, one colour scale for
    all) and the share of needs unmet (bottom), with each scenario's services and hubs."""
    names = list(counts)
    fig, axes = plt.subplots(2, len(names), figsize=(3.6 * len(names) + 1.4, 7.6), squeeze=False)
    top = max((float(np.nanmax(c)) for c in counts.values() if np.isfinite(c).any()), default=1.0)
    image_count = image_share = None
    for i, name in enumerate(names):
        image_count = city_map(
            axes[0, i],
            counts[name],
            cell_size_m,
            sites.get(name),
            cmap="viridis_r",
            vmin=0,
            vmax=top,
            marker_size=6,
        )
        axes[0, i].set_title(name, fontsize=9)
        image_share = city_map(
            axes[1, i],
            shares[name],
            cell_size_m,
            sites.get(name),
            vmin=0,
            vmax=1,
            marker_size=6,
        )
    if image_count is not None:
        fig.colorbar(image_count, ax=axes[0].tolist(), label="unmet needs per week", shrink=0.8)
        fig.colorbar(image_share, ax=axes[1].tolist(), label="unmet share of needs", shrink=0.8)
    _legend_below(fig, axes[0, 0])
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


# ---------------------------------------------------------------- maps of the city

# how each service type is drawn on a map (marker, colour); hubs are stars over their cell
SERVICE_MARKERS = {
    "childcare": ("o", "#1f77b4"),
    "health": ("P", "#d62728"),
    "parenting": ("D", "#9467bd"),
    "admin_help": ("s", "#ff7f0e"),
}
SCALE_BAR_STEPS_KM = (0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 50.0)


def _scale_bar(ax, width_km: float) -> None:
    """A bar about a fifth of the map's width, at a round length, in the lower left."""
    target = width_km / 5
    length = max([s for s in SCALE_BAR_STEPS_KM if s <= target], default=SCALE_BAR_STEPS_KM[0])
    x0, y0 = width_km * 0.04, ax.get_ylim()[0] + (ax.get_ylim()[1] - ax.get_ylim()[0]) * 0.04
    ax.plot([x0, x0 + length], [y0, y0], color="black", linewidth=3, solid_capstyle="butt")
    ax.text(x0 + length / 2, y0, f"{length:g} km\n", ha="center", va="bottom", fontsize=7)


def city_map(
    ax,
    values: np.ndarray,
    cell_size_m: float,
    sites: pd.DataFrame | None = None,
    hubs_xy: list[tuple[int, int]] | None = None,
    label: str | None = None,
    cmap: str = "magma_r",
    vmin: float | None = None,
    vmax: float | None = None,
    marker_size: float = 20.0,
):
    """Draw a [x, y] grid of values (NaN left blank) on `ax` in kilometres, with a scale
    bar, the service sites by type (`sites`: type, x, y, and `hub`, the site's hub index or
    -1) and hubs as stars
    (`hubs_xy` adds cells to star, e.g. proposed hubs). Returns the image for a colour bar;
    `label` names the colour bar's quantity and unit."""
    width, height = values.shape
    km = cell_size_m / 1000
    image = ax.imshow(
        np.ma.masked_invalid(values.T),
        origin="lower",
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        extent=(0, width * km, 0, height * km),
        interpolation="nearest",
    )
    if sites is not None and len(sites):
        for name, (marker, colour) in SERVICE_MARKERS.items():
            of_type = sites[sites["type"] == name]
            if of_type.empty:
                continue
            ax.scatter(
                (of_type["x"] + 0.5) * km,
                (of_type["y"] + 0.5) * km,
                s=marker_size,
                marker=marker,
                facecolor=colour,
                edgecolor="white",
                linewidth=0.4,
                label=name.replace("_", " "),
                zorder=3,
            )
    stars = []
    if sites is not None and "hub" in sites and len(sites):
        stars += list(sites.loc[sites["hub"] >= 0, ["x", "y"]].drop_duplicates().itertuples(False))
    stars += [tuple(c) for c in hubs_xy or []]
    if stars:
        xy = np.array(sorted(set(stars)), dtype=float).reshape(-1, 2)
        ax.scatter(
            (xy[:, 0] + 0.5) * km,
            (xy[:, 1] + 0.5) * km,
            s=marker_size * 9,
            marker="*",
            facecolor="gold",
            edgecolor="black",
            linewidth=0.7,
            label="hub",
            zorder=4,
        )
    ax.set_xlim(0, width * km)
    ax.set_ylim(0, height * km)
    ax.set_xlabel("km east")
    ax.set_ylabel("km north")
    ax.set_aspect("equal")
    _scale_bar(ax, width * km)
    if label is not None:
        ax.figure.colorbar(image, ax=ax, label=label, shrink=0.85)
    return image


def _legend_below(fig: Figure, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles, strict=True))
    if seen:
        fig.legend(
            list(seen.values()),
            list(seen),
            loc="lower center",
            ncol=min(len(seen), 8),
            fontsize=7,
            frameon=False,
        )


def finish_legend(fig: Figure, ax, path: Path | None) -> Figure | None:
    """A map's legend below it, the layout, then saved or returned (`_finish`)."""
    _legend_below(fig, ax)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _finish(fig, path, 110)


def unmet_need_maps(
    count: np.ndarray,
    share: np.ndarray,
    cell_size_m: float,
    sites: pd.DataFrame | None,
    path: Path | None,
    title: str,
) -> Figure | None:
    """Two panels over the measured window, means over replications: the number of unmet
    (family, service type) needs per cell in a week, where the need is, next to the share
    of a cell's needs left unmet, how badly it is met; services and hubs drawn by type."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6))
    city_map(
        axes[0],
        count,
        cell_size_m,
        sites,
        label="unmet needs per week (count)",
        cmap="viridis_r",
        vmin=0,
    )
    axes[0].set_title("unmet needs per cell", fontsize=10)
    city_map(
        axes[1],
        share,
        cell_size_m,
        sites,
        label="unmet share of the cell's needs",
        vmin=0,
        vmax=1,
    )
    axes[1].set_title("share of needs unmet", fontsize=10)
    fig.suptitle(title)
    _legend_below(fig, axes[0])
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _finish(fig, path, 110)


def accessibility_map(
    access: np.ndarray, cell_size_m: float, sites: pd.DataFrame, path: Path | None, title: str
) -> Figure | None:
    """The 2SFCA index per cell (places per family in need in reach; blank where no one
    lives) with the services and hubs."""
    fig, ax = plt.subplots(figsize=(7.5, 6.4))
    city_map(
        ax, access, cell_size_m, sites, label="places per family in need", cmap="cividis", vmin=0
    )
    ax.set_title(title, fontsize=9)
    _legend_below(fig, ax)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _finish(fig, path, 110)


def placement_map(
    unmet: np.ndarray,
    cell_size_m: float,
    sites: pd.DataFrame,
    hubs: list[tuple[int, int]],
    existing: list[tuple[int, int]],
    path: Path | None,
    title: str,
) -> Figure | None:
    """Unmet needs per cell with one placement's new hubs (stars, numbered) over the
    existing services and hubs."""
    fig, ax = plt.subplots(figsize=(7.5, 6.4))
    vmax = float(np.nanmax(unmet)) if np.isfinite(unmet).any() else None
    city_map(
        ax,
        unmet,
        cell_size_m,
        sites,
        hubs_xy=list(existing) + list(hubs),
        label="unmet needs per week (count)",
        cmap="viridis_r",
        vmin=0,
        vmax=vmax,
    )
    km = cell_size_m / 1000
    for i, (x, y) in enumerate(hubs, start=1):
        ax.annotate(
            f"new {i}",
            ((x + 0.5) * km, (y + 0.5) * km),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=8,
            weight="bold",
            zorder=5,
        )
    ax.set_title(title, fontsize=9)
    _legend_below(fig, ax)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _finish(fig, path, 110)


def placements_overview(
    unmet: np.ndarray,
    cell_size_m: float,
    sites: pd.DataFrame,
    hubs_by_method: dict[str, list[tuple[int, int]]],
    existing: list[tuple[int, int]],
    path: Path | None,
) -> Figure | None:
    """Every method's new hubs on one map of today's unmet needs per cell: where the
    methods agree and where they part."""
    fig, ax = plt.subplots(figsize=(8, 6.8))
    city_map(
        ax,
        unmet,
        cell_size_m,
        sites,
        hubs_xy=list(existing),
        label="unmet needs per week today (count)",
        cmap="Greys",
        vmin=0,
        marker_size=8,
    )
    km = cell_size_m / 1000
    colours = plt.get_cmap("tab10")
    methods = [m for m in hubs_by_method if hubs_by_method[m]]
    for i, method in enumerate(methods):
        xy = np.array(hubs_by_method[method], dtype=float).reshape(-1, 2)
        # methods choosing the same cell are drawn side by side, not over each other
        shift = (i - (len(methods) - 1) / 2) * 0.25 * km
        ax.scatter(
            (xy[:, 0] + 0.5) * km + shift,
            (xy[:, 1] + 0.5) * km,
            s=70,
            marker="o",
            facecolor="none",
            edgecolor=colours(i % 10),
            linewidth=2,
            label=method,
            zorder=5,
        )
    ax.set_title("new hubs by method, over today's unmet needs", fontsize=10)
    _legend_below(fig, ax)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return _finish(fig, path, 110)
