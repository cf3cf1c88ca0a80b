"""famsim's web app on Mesa's SolaraViz: the city, the levers, hubs placed by a click, live
plots. A thin wiring layer: every number on the page comes from `ExplorerModel`
(sim.app.explorer), which runs the model through its public API.

The page is SolaraViz's: its sidebar holds Mesa's controls (Reset, play, Step, the play and
render intervals) and the lever controls (Mesa's user inputs, applied on Reset); the main
area holds this module's components. The map is drawn by Mesa's `SpaceRenderer` with a
`PropertyLayerStyle` for the chosen layer and the services as agents, as a PNG that answers
clicks (a click places a hub on that cell). Plots keep their figure and lines between frames
and append the weeks they have not drawn yet.

Everything the browser loads is served locally (`sim.app.assets`, fetched from the npm
registry at install): the app works with no internet.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import solara  # noqa: E402
import solara.lab  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from mesa.visualization import SolaraViz, SpaceRenderer  # noqa: E402
from mesa.visualization.components import AgentPortrayalStyle, PropertyLayerStyle  # noqa: E402
from mesa.visualization.utils import force_update, update_counter  # noqa: E402
from PIL import Image  # noqa: E402

from sim.app.explorer import (  # noqa: E402
    ADMISSION,
    AS_CONFIGURED,
    FEE_SCHEDULES,
    FIVE_DIMENSIONS,
    LAYERS,
    ON_OFF,
    OUTREACH_FTE,
    TARGETING,
    ExplorerModel,
    barrier_shares,
    catalogue,
    quintile_gradient,
)
from sim.core.codes import NO_HUB  # noqa: E402

# the scenario `famsim app` was started with (the first configuration offered)
SCENARIO_ENV = "FAMSIM_APP_SCENARIO"
FAMILIES_ENV = "FAMSIM_APP_FAMILIES"  # famsim app --families
TYPE_COLOURS = {
    "childcare": "tab:blue",
    "health": "tab:green",
    "parenting": "tab:purple",
    "admin_help": "tab:brown",
}
MAP_INCHES = (5.9, 3.85)  # SolaraViz gives each component a 390-pixel-high grid cell
MAP_DPI = 100
PLOT_INCHES = (5.9, 3.8)
PLOT_DPI = 100


def model_params(
    configurations: dict[str, Path],
    placed: list[tuple[int, int]],
    families: int | None = None,
) -> dict:
    """The lever controls, as Mesa's user inputs (SolaraViz applies them on Reset)."""

    def select(label: str, values: list[str], value: str = AS_CONFIGURED) -> dict[str, Any]:
        return {"type": "Select", "label": label, "value": value, "values": values}

    names = list(configurations)
    return {
        "configuration": select("configuration", names, names[0]),
        "fee_schedule": select("fee schedule (childcare)", [AS_CONFIGURED, *FEE_SCHEDULES]),
        "outreach_fte": select("outreach staff (FTE)", [AS_CONFIGURED, *OUTREACH_FTE]),
        "outreach_targeting": select("outreach targeting", [AS_CONFIGURED, *TARGETING]),
        "admission": select("admission rule (childcare)", [AS_CONFIGURED, *ADMISSION]),
        "language_support": select("interpreters and multilingual staff", [AS_CONFIGURED, *ON_OFF]),
        "brokers": select("community brokers", [AS_CONFIGURED, *ON_OFF]),
        "hubs": select("hubs under one roof", [AS_CONFIGURED, *ON_OFF]),
        "adaptive": select("adaptive policy", [AS_CONFIGURED, *ON_OFF]),
        "compare_with": select("side by side with (same seeds)", ["none", *names], "none"),
        "replications": {
            "type": "SliderInt",
            "label": "replications (intervals from 2)",
            "value": 1,
            "min": 1,
            "max": 5,
            "step": 1,
        },
        "seed": {"type": "SliderInt", "label": "seed", "value": 7, "min": 0, "max": 99, "step": 1},
        "configurations": configurations,  # fixed
        "hub_cells": placed,  # fixed: the list the map's clicks append to
        "families": families,  # fixed: famsim app --families
    }


# -- the map --------------------------------------------------------------------------------


def service_portrayal(agent) -> AgentPortrayalStyle:
    """A service by type (colour) and capacity units (area); a hub's sites as stars."""
    colour = TYPE_COLOURS[agent.service_type]
    size = 12 + 4 * np.sqrt(max(agent.capacity_units, 0))
    hub = agent.hub != NO_HUB
    return AgentPortrayalStyle(
        color=colour,
        size=float(min(size * (1.6 if hub else 1.0), 260)),
        marker="*" if hub else "o",
        edgecolors="black" if hub else "white",
        linewidths=0.8,
        alpha=0.9,
        zorder=3 if hub else 2,
    )


def layer_limit(name: str, data: np.ndarray) -> float:
    """The colour scale's top: 1 for shares, else the layer's largest value."""
    if name.endswith("share") or name == "takeup":
        return 1.0
    top = float(np.nanmax(data)) if data.size else 0.0
    return top if top > 0 else 1.0


def layer_style(chosen: str) -> Callable:
    def style(layer) -> PropertyLayerStyle | None:
        if layer.name != chosen:
            return None
        top = layer_limit(chosen, layer.data)
        return PropertyLayerStyle(colormap=LAYERS[chosen][1], vmin=0.0, vmax=top, alpha=0.9)

    return style


def frozen(fig: Figure) -> None:
    """Lay the figure out once, then keep it: later frames only redraw the artists."""
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    fig.set_layout_engine("none")
    fig.canvas.draw()  # the axes' aspect is applied again from the fixed layout: now stable


def png(fig: Figure) -> bytes:
    """The whole figure as drawn (not savefig, which may crop to a tight box and so move
    the pixels a click is read from), fast-compressed."""
    fig.canvas.draw()
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).save(buffer, "png", compress_level=1)
    return buffer.getvalue()


class MapFigure:
    """The first run's city, drawn once by Mesa's SpaceRenderer (the chosen property layer
    with its PropertyLayerStyle, the services as agents), then updated in place each week:
    the layer's image and colour scale. Services do not move (a hub placed by hand makes a
    new model, so a new map)."""

    def __init__(self, model: ExplorerModel, layer: str) -> None:
        self.model, self.layer = model, layer
        renderer = SpaceRenderer(model, backend="matplotlib")
        fig = renderer.canvas.figure
        fig.set_size_inches(*MAP_INCHES)
        fig.set_dpi(MAP_DPI)
        renderer.setup_propertylayer(layer_style(layer)).setup_agents(service_portrayal)
        _, self.colorbar = renderer.draw_propertylayer()
        renderer.draw_agents()
        ax = renderer.canvas
        self.image = ax.images[0]
        self.image.set_interpolation("nearest")  # one cell, one block: no resampling
        if self.colorbar is not None:
            self.colorbar.set_label(LAYERS[layer][0], fontsize=8)
        city = model.runs[0].world.city
        km = city.cell_size_m / 1000.0  # a cell's width in km; cell i spans [i - 0.5, i + 0.5]
        step = max(1, round(city.width * km / 5))
        marks = range(0, int(city.width * km) + 1, step)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_ticks([k / km - 0.5 for k in marks], [str(k) for k in marks])
        ax.set_xlabel("km")
        ax.set_ylabel("km")
        ax.set_xlim(-0.5, city.width - 0.5)
        ax.set_ylim(-0.5, city.height - 0.5)
        ax.set_title(model.scenario_run.name, fontsize=9)
        handles = [
            Line2D([], [], marker="o", ls="", color=c, label=t.replace("_", " "))
            for t, c in TYPE_COLOURS.items()
        ] + [Line2D([], [], marker="*", ls="", color="grey", mec="black", ms=9, label="hub")]
        ax.legend(handles=handles, loc="upper left", fontsize=6, framealpha=0.6)
        frozen(fig)
        self.fig, self.ax, self.city = fig, ax, city
        self.width, self.height = (int(round(v)) for v in fig.get_size_inches() * MAP_DPI)

    def update(self) -> bytes:
        data = getattr(self.model.grid, self.layer).data
        self.image.set_data(data.T)
        top = layer_limit(self.layer, data)
        self.image.set_clim(0.0, top)
        if self.colorbar is not None:
            self.colorbar.mappable.set_clim(0.0, top)
        return png(self.fig)

    def to_cell(self, px: float, py: float) -> tuple[int, int] | None:
        """The cell under a pixel of the PNG (origin top left)."""
        x, y = self.ax.transData.inverted().transform((px, self.height - py))
        cx, cy = int(round(x)), int(round(y))
        if 0 <= cx < self.city.width and 0 <= cy < self.city.height:
            return cx, cy
        return None


@solara.component
def CityMap(model: ExplorerModel, layer: str, on_cell: Callable[[int, int], None]):
    """The map; a click places a hub on the clicked cell."""
    update_counter.get()
    figure = solara.use_memo(lambda: MapFigure(model, layer), [model, layer])
    picture = solara.use_memo(figure.update, [figure, update_counter.value, model.time])
    src = "data:image/png;base64," + base64.b64encode(picture).decode()

    def clicked(widget, event, data) -> None:
        if not isinstance(data, dict) or "offsetX" not in data:
            return
        cell = figure.to_cell(float(data["offsetX"]), float(data["offsetY"]))
        if cell is not None:
            on_cell(*cell)

    image = solara.v.Html(
        tag="img",
        attributes={
            "src": src,
            "width": str(figure.width),
            "height": str(figure.height),
            "alt": f"map of {layer}",
            "data-layer": layer,
            "data-week": str(int(model.time)),
        },
        style_=f"width:{figure.width}px;height:{figure.height}px;cursor:crosshair",
        class_="famsim-map",
    )
    solara.v.use_event(image, "click", clicked)
    return image


@solara.component
def HubPlacer(
    model: ExplorerModel,
    layer: solara.Reactive[str],
    on_cell: Callable[[int, int], None],
    on_clear: Callable,
):
    """The map's layer, and hubs placed by hand: by coordinates, and the list of those placed."""
    city = model.runs[0].world.city
    x, set_x = solara.use_state(city.width // 2)
    y, set_y = solara.use_state(city.height // 2)
    with solara.Card("Map and hubs"):
        solara.Select("map layer", values=list(LAYERS), value=layer)
        solara.Text(
            "Click a cell of the map, or give its coordinates (cells of "
            f"{city.cell_size_m:g} m, x 0–{city.width - 1}, y 0–{city.height - 1}): the runs "
            "are rebuilt with a hub there, burnt in and shown from the first measured week."
        )
        with solara.Row():
            solara.InputInt("x", value=x, on_value=set_x, continuous_update=True)
            solara.InputInt("y", value=y, on_value=set_y, continuous_update=True)
            solara.Button("Place hub", on_click=lambda: on_cell(int(x), int(y)), color="primary")
            solara.Button("Clear placed hubs", on_click=on_clear)
        placed = model.choices.hub_cells
        solara.Text(
            "placed: " + (", ".join(f"({a}, {b})" for a, b in placed) if placed else "none"),
            classes=["famsim-placed"],
        )


# -- status and burn-in ---------------------------------------------------------------------


@solara.component
def Status(model: ExplorerModel):
    """The configuration and where the run stands; the burn-in runs here, ahead of drawing."""
    update_counter.get()
    done, set_done = solara.use_state((0, model.burn_in_weeks))

    def burn() -> None:
        model.burn_in(lambda d, n: set_done((d, n)))
        force_update()

    solara.lab.use_task(burn, dependencies=[model], prefer_threaded=True)
    with solara.Card("Run"):
        outlay = model.outlay()
        lines = [
            f"{model.scenario_run.name}"
            + (f" beside {model.twin_scenario.name}" if model.twin_scenario else "")
            + f", {model.runs[0].engine.families.size:,} families, seed {model.seed}, "
            f"{len(model.runs)} replication(s)",
            f"public childcare places: {outlay['public_childcare_places']:,.0f}; ex-ante outlay "
            f"{outlay['public_outlay_eur_week']:,.0f} EUR a week",
        ]
        if not model.burnt_in:
            lines.append(f"burn-in: {done[0]} of {done[1]} weeks (not drawn)")
        else:
            lines.append(
                f"measured week {model.time:.0f} of {model.measured_weeks} "
                f"(after a {model.burn_in_weeks}-week burn-in)"
            )
        with solara.Column(gap="4px"):
            for k, line in enumerate(lines):
                solara.Text(line, classes=[f"famsim-status-{k}"])
        if not model.burnt_in:
            solara.ProgressLinear(value=100 * done[0] / max(done[1], 1))
        windows = model.window()
        if windows:
            u3 = np.mean([w["u3_participation_all"] for w in windows])
            arope = np.mean([w["u3_participation_arope"] for w in windows])
            unmet = np.mean([w["unmet_need_share"] for w in windows])
            solara.Text(
                f"under-3 participation {u3:.1%}, AROPE {arope:.1%}; unmet needs {unmet:.1%} "
                "(measured weeks so far)",
                classes=["famsim-headline"],
            )


# -- plots ----------------------------------------------------------------------------------


def picture(data: bytes, name: str, model: ExplorerModel, alt: str):
    """A rendered figure as an <img>, tagged with what and which week it shows."""
    return solara.v.Html(
        tag="img",
        attributes={
            "src": "data:image/png;base64," + base64.b64encode(data).decode(),
            "alt": alt,
            "data-week": str(int(model.time)),
        },
        class_=f"famsim-plot famsim-{name}",
    )


def _figure() -> tuple[Figure, Any]:
    fig = Figure(figsize=PLOT_INCHES, dpi=PLOT_DPI, constrained_layout=True)
    return fig, fig.add_subplot()


class ParticipationFigure:
    """Under-3 participation by group, week by week: lines that grow by the new weeks (and
    their 95 % bands, redrawn, where there are replications)."""

    GROUPS = {"all": "black", "arope": "tab:red", "non_arope": "tab:blue"}

    def __init__(self, model: ExplorerModel) -> None:
        self.model = model
        self.fig, self.ax = _figure()
        self.ax.set_xlabel("measured week")
        self.ax.set_ylabel("children under 3 in childcare (share)")
        self.lines: dict[tuple[str, bool], Any] = {}
        self.bands: dict[tuple[str, bool], Any] = {}
        for twins in (False, True) if model.twins else (False,):
            name = model.twin_scenario.name if twins else model.scenario_run.name
            for group, colour in self.GROUPS.items():
                (line,) = self.ax.plot(
                    [],
                    [],
                    color=colour,
                    ls="--" if twins else "-",
                    marker="o",  # the first week is a point, not yet a line
                    ms=2.5,
                    label=f"{name}: {group}",
                )
                self.lines[(group, twins)] = line
        self.ax.legend(fontsize=7, loc="lower right")
        self.ax.set_ylim(0, 1)
        self.ax.set_xlim(0.5, 2.5)
        frozen(self.fig)
        self.drawn = -1
        self.picture = b""

    def update(self) -> bytes:
        record = self.model.history
        if record.size == self.drawn:
            return self.picture
        for (group, twins), line in self.lines.items():
            weeks, mean, lo, hi = record.band(group, twins)
            line.set_data(weeks, mean)
            if len(self.model.runs) > 1 and record.size:
                old = self.bands.pop((group, twins), None)
                if old is not None:
                    old.remove()
                self.bands[(group, twins)] = self.ax.fill_between(
                    weeks, lo, hi, color=line.get_color(), alpha=0.15, lw=0
                )
        self.ax.set_xlim(0.5, max(record.size, 2) + 0.5)
        self.drawn = record.size
        self.picture = png(self.fig)
        return self.picture


class GradientFigure:
    """Under-3 participation by income quintile over the measured weeks so far (bars, with
    95 % intervals over replications); the bars' heights change, the figure stays."""

    def __init__(self, model: ExplorerModel) -> None:
        self.model = model
        self.fig, self.ax = _figure()
        ax = self.ax
        ax.set_xlabel("income quintile (1 = lowest)")
        ax.set_ylabel("children under 3 in childcare (share)")
        ax.set_ylim(0, 1)
        ax.set_xticks(range(1, 6))
        self.sets = [(False, model.scenario_run.name)]
        if model.twins:
            self.sets.append((True, model.twin_scenario.name))
        width = 0.8 / len(self.sets)
        self.bars, self.errors = [], [None] * len(self.sets)
        for k, (_, name) in enumerate(self.sets):
            shift = (k - (len(self.sets) - 1) / 2) * width
            self.bars.append(ax.bar(np.arange(1, 6) + shift, np.zeros(5), width, label=name))
        ax.legend(fontsize=7, loc="upper left")
        frozen(self.fig)

    def update(self) -> bytes:
        for k, (twins, _) in enumerate(self.sets):
            windows = self.model.window(twins=twins)
            mean, lo, hi = quintile_gradient(windows)
            for rect, h in zip(self.bars[k], mean, strict=True):
                rect.set_height(float(np.nan_to_num(h)))
            if self.errors[k] is not None:
                self.errors[k].remove()
                self.errors[k] = None
            if len(windows) > 1:
                x = [r.get_x() + r.get_width() / 2 for r in self.bars[k]]
                self.errors[k] = self.ax.errorbar(
                    x, mean, yerr=[mean - lo, hi - mean], fmt="none", color="black", lw=1
                )
        return png(self.fig)


class BarrierFigure:
    """What holds back families with an unmet need: the share of unmet need-weeks by main
    barrier, summed into the five accessibility dimensions, for all families, AROPE families
    and families of another language (stacked bars whose widths change)."""

    GROUPS = (("", "all"), ("arope", "AROPE"), ("non_local", "other language"))

    def __init__(self, model: ExplorerModel) -> None:
        self.model = model
        self.fig, self.ax = _figure()
        self.sets = [(False, model.scenario_run.name)]
        if model.twins:
            self.sets.append((True, model.twin_scenario.name))
        labels = [
            f"{name}: {label}" if model.twins else label
            for _, name in self.sets
            for _, label in self.GROUPS
        ]
        zero = np.zeros(len(labels))
        self.rows = {
            dim: self.ax.barh(labels, zero, left=zero, label=dim, color=f"C{k}")
            for k, dim in enumerate(FIVE_DIMENSIONS)
        }
        self.ax.set_xlim(0, 1)
        self.ax.set_xlabel("share of unmet need-weeks, by main barrier")
        self.ax.tick_params(axis="y", labelsize=7)
        self.ax.legend(fontsize=7, ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0))
        frozen(self.fig)

    def update(self) -> bytes:
        shares = []
        for twins, _ in self.sets:
            windows = self.model.window(twins=twins)
            for key, _ in self.GROUPS:
                shares.append(barrier_shares(windows, key) if windows else {})
        left = np.zeros(len(shares))
        for dim, bars in self.rows.items():
            widths = np.array([float(np.nan_to_num(s.get(dim, 0.0))) for s in shares])
            for rect, x, w in zip(bars, left, widths, strict=True):
                rect.set_x(x)
                rect.set_width(w)
            left += widths
        return png(self.fig)


PLOTS = {
    "participation": (ParticipationFigure, "under-3 participation by group, by week"),
    "gradient": (GradientFigure, "under-3 participation by income quintile"),
    "barriers": (BarrierFigure, "main barriers in the five accessibility dimensions"),
}


@solara.component
def Plot(model: ExplorerModel, name: str):
    """One of the live plots: its figure is made once per model and updated each week."""
    update_counter.get()
    kind, alt = PLOTS[name]
    figure = solara.use_memo(lambda: kind(model), [model])
    data = solara.use_memo(figure.update, [figure, update_counter.value, model.time])
    return picture(data, name, model, alt)


# -- the page -------------------------------------------------------------------------------


def scenario_path() -> str | None:
    return os.environ.get(SCENARIO_ENV) or None


def families() -> int | None:
    value = os.environ.get(FAMILIES_ENV)
    return int(value) if value else None


@solara.component
def Page():
    configurations = solara.use_memo(lambda: catalogue(scenario_path()), [])
    placed: list[tuple[int, int]] = solara.use_memo(list, [])
    params = solara.use_memo(lambda: model_params(configurations, placed, families()), [])
    model = solara.use_reactive(
        solara.use_memo(
            lambda: ExplorerModel(
                configuration=next(iter(configurations)),
                configurations=configurations,
                families=families(),
            ),
            [],
        )
    )

    def rebuilt() -> None:
        current = model.value
        model.value = ExplorerModel(**{**current.params, "hub_cells": list(placed)})

    def place(x: int, y: int) -> None:
        if (x, y) not in placed:
            placed.append((x, y))
        rebuilt()

    def clear() -> None:
        placed.clear()
        rebuilt()

    layer = solara.use_reactive("unmet_share")

    components = [
        (lambda m: CityMap(m, layer.value, place), 0),
        (lambda m: Status(m), 0),
        (lambda m: HubPlacer(m, layer, place, clear), 0),
        (lambda m: Plot(m, "participation"), 0),
        (lambda m: Plot(m, "gradient"), 0),
        (lambda m: Plot(m, "barriers"), 0),
    ]
    SolaraViz(
        model,
        components=components,
        model_params=params,
        name="famsim — families and early-childhood services",
        play_interval=50,
        render_interval=1,
    )
