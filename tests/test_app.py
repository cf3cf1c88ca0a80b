"""Verification of the web app without a browser: the app's choices become the scenario the
levers' own configurations define, the runs step with the replication seeds of `famsim run`,
and every control of the page (rendered with `solara.render`) changes what it should: the
lever inputs, Step, the map layer, a click on the map, hubs by coordinates, the plots."""

from __future__ import annotations

from pathlib import Path

import ipyvuetify as v
import numpy as np
import pytest
import solara
from mesa.visualization.solara_viz import ModelController, UserInputs, split_model_params

from sim.app import assets, web
from sim.app.explorer import (
    AS_CONFIGURED,
    Choices,
    Donors,
    ExplorerModel,
    barrier_shares,
    catalogue,
    explorer_scenario,
)
from sim.core.codes import NO_HUB
from sim.scenario.schema import load_scenario
from sim.studies.placement import existing_hub_cells
from sim.studies.runner import replication_seed
from sim.world.city import build_city

SCENARIOS = Path("scenarios")
SMALL = {"families": 1500, "burn_in": 20, "weeks": 8}


@pytest.fixture(scope="module")
def configurations():
    return catalogue(SCENARIOS / "proportionate.toml")


@pytest.fixture(scope="module")
def donors(configurations):
    return Donors(dict(configurations))


def small_model(configurations, **kwargs) -> ExplorerModel:
    return ExplorerModel(configurations=configurations, **{**SMALL, **kwargs})


# -- the choices as a scenario --------------------------------------------------------------


def test_catalogue_puts_the_given_scenario_first_and_offers_the_shipped_ones(configurations):
    names = list(configurations)
    assert names[0] == "proportionate"
    assert {"universal", "targeted", "one_roof", "proportionate_adaptive"} <= set(names)


def test_as_configured_is_the_configuration_itself(donors):
    assert explorer_scenario(Choices("targeted"), donors) == donors["targeted"]


@pytest.mark.parametrize(
    ("choice", "value", "donor", "keys"),
    [
        (
            "fee_schedule",
            "income-graded to a token fee (proportionate)",
            "proportionate",
            ["provision.childcare.fee"],
        ),
        ("fee_schedule", "free (universal_free)", "universal_free", ["provision.childcare.fee"]),
        (
            "language_support",
            "on",
            "proportionate",
            ["provision.childcare.interpreters", "provision.health.languages"],
        ),
        ("brokers", "on", "proportionate", ["information.brokers"]),
        ("hubs", "on", "one_roof", ["hubs"]),
        ("adaptive", "on", "proportionate_adaptive", ["policy"]),
    ],
)
def test_a_lever_takes_its_keys_from_the_configuration_that_has_it(
    donors, choice, value, donor, keys
):
    scenario = explorer_scenario(Choices("universal", **{choice: value}), donors)
    got, want = scenario.resolved_dict(), donors[donor].resolved_dict()
    for key in keys:
        a, b = got, want
        for part in key.split("."):
            a, b = a[part], b[part]
        assert a == b, key
    assert scenario.name == "universal"


def test_direct_levers_set_their_keys(donors):
    scenario = explorer_scenario(
        Choices(
            "universal",
            outreach_fte="4",
            outreach_targeting="all",
            admission="need_weighted",
            brokers="off",
            hubs="off",
            adaptive="off",
        ),
        donors,
    )
    assert scenario.information.outreach_workers == 4.0
    assert scenario.information.outreach_targeting == "all"
    assert scenario.provision["childcare"].priority == "need_weighted"
    assert scenario.information.brokers == {}
    assert not scenario.hubs.enabled
    assert scenario.policy.adaptive is False


def test_language_support_off_removes_proportionate_s_interpreters(donors):
    assert donors["proportionate"].provision["childcare"].interpreters
    off = explorer_scenario(Choices("proportionate", language_support="off"), donors)
    assert (
        off.provision["childcare"].interpreters
        == donors["universal"].provision["childcare"].interpreters
    )


def test_a_hub_placed_by_hand_joins_the_configuration_s_hubs(configurations):
    donors = Donors(dict(configurations), families=1500)
    base = explorer_scenario(Choices("one_roof"), donors)
    placed = explorer_scenario(Choices("one_roof", hub_cells=((5, 6),)), donors)
    assert [5, 6] in placed.hubs.sites
    assert placed.hubs.count == 0
    # the configuration's own hubs (one per neighbourhood) are kept, as explicit cells
    own = existing_hub_cells(base, build_city(base))
    assert len(own) > 1
    assert [list(c) for c in own] + [[5, 6]] == placed.hubs.sites


# -- the runs -------------------------------------------------------------------------------


def test_runs_use_the_replication_seeds_and_compare_with_the_same_seeds(configurations):
    model = small_model(configurations, replications=2, compare_with="universal")
    seeds = [replication_seed(7, r) for r in range(2)]
    assert [r.world.seed for r in model.runs] == seeds
    assert [r.world.seed for r in model.twins] == seeds  # common random numbers
    assert model.twin_scenario.name == "universal"


def test_burn_in_reports_progress_and_steps_count_measured_weeks(configurations):
    model = small_model(configurations)
    said = []
    model.burn_in(lambda done, total: said.append((done, total)))
    assert said[-1] == (20, 20) and len(said) == 3
    assert model.runs[0].time == 20 and model.time == 0
    for _ in range(3):
        model.step()
    assert model.time == 3 and model.runs[0].time == 23 and model.running
    for _ in range(5):
        model.step()
    assert model.time == 8 and not model.running  # the end of the 8 measured weeks
    assert model.history.size == 8
    weeks, mean, lo, hi = model.history.band("arope")
    assert list(weeks) == list(range(1, 9))
    np.testing.assert_array_equal(mean, lo)  # one replication: no interval
    # the first run's measures are the app's: the same as a plain run of the scenario
    np.testing.assert_equal(model.window()[0], model.runs[0].metrics())


def test_intervals_appear_with_replications(configurations):
    model = small_model(configurations, replications=3)
    for _ in range(2):
        model.step()
    _, mean, lo, hi = model.history.band("all")
    assert np.all(lo <= mean) and np.all(mean <= hi) and np.any(hi > lo)


def test_barrier_shares_sum_the_main_barriers_into_five_dimensions(configurations):
    model = small_model(configurations)
    for _ in range(2):
        model.step()
    windows = model.window()
    shares = barrier_shares(windows)
    assert set(shares) == {
        "comprehensibility",
        "availability",
        "affordability",
        "accessibility",
        "usefulness",
    }
    total = sum(
        v for k, v in windows[0].items() if k.startswith("main_barrier_") and k.count("_") == 2
    )
    assert sum(shares.values()) == pytest.approx(total)


def test_layers_are_the_measures_per_cell(configurations):
    model = small_model(configurations)
    for _ in range(2):
        model.step()
    grid, run = model.grid, model.runs[0]
    table = run.engine.accumulator.cell_table()
    assert grid.families.data.sum() == table["families"].sum()
    assert grid.unmet_needs.data.sum() == table["unmet_need_weeks"].sum()
    assert 0 <= grid.takeup.data.min() and grid.takeup.data.max() <= 1
    assert grid.access_2sfca.data.max() > 0


# -- the page's controls (solara.render, no browser) ----------------------------------------


def test_every_lever_control_renders_and_reports_its_value(configurations):
    params = web.model_params(configurations, [])
    adjustable, fixed = split_model_params(params)
    assert set(fixed) == {"configurations", "hub_cells", "families"}
    changed = {}
    box, rc = solara.render(
        UserInputs(adjustable, on_change=lambda k, val: changed.update({k: val})),
        handle_error=False,
    )
    selects = rc.find(v.Select).widgets
    assert len(selects) == sum(1 for p in adjustable.values() if p["type"] == "Select")
    for widget in selects:
        options = [o for o in widget.items if o != widget.v_model]
        widget.v_model = options[-1]
    sliders = rc.find(v.Slider).widgets
    assert len(sliders) == 2
    for widget in sliders:
        widget.v_model = 2
    assert set(changed) == set(adjustable)
    # and the values build a model whose scenario has them
    kwargs = {**fixed, **changed, **SMALL, "compare_with": "none", "replications": 1}
    model = ExplorerModel(**kwargs)
    assert model.choices.adaptive == changed["adaptive"]


def test_step_button_steps_the_model(configurations):
    model = solara.reactive(small_model(configurations))
    box, rc = solara.render(
        ModelController(
            model,
            play_interval=solara.reactive(100),
            render_interval=solara.reactive(1),
            use_threads=solara.reactive(False),
        ),
        handle_error=False,
    )
    rc.find(v.Btn, children=["Step"]).widget.click()
    assert model.value.time == 1 and model.value.burnt_in


def test_map_click_gives_the_cell_under_the_pointer(configurations):
    model = small_model(configurations)
    clicked = []
    box, rc = solara.render(
        web.CityMap(model, "families", lambda x, y: clicked.append((x, y))), handle_error=False
    )
    image = rc.find(v.Html, tag="img").widget
    figure = web.MapFigure(model, "families")
    # the pixel of cell (3, 4)'s centre
    px, py = figure.ax.transData.transform((3, 4))
    image.fire_event("click", {"offsetX": px, "offsetY": figure.height - py})
    assert clicked == [(3, 4)]
    image.fire_event("click", {"offsetX": 1, "offsetY": 1})  # outside the city: nothing
    assert clicked == [(3, 4)]


def test_map_layer_select_and_week_change_the_picture(configurations):
    model = solara.reactive(small_model(configurations))
    layer = solara.reactive("families")

    @solara.component
    def Both():
        web.HubPlacer(model.value, layer, lambda x, y: None, lambda: None)
        web.CityMap(model.value, layer.value, lambda x, y: None)

    box, rc = solara.render(Both(), handle_error=False)
    image = rc.find(v.Html, tag="img").widget
    first = image.attributes["src"]
    rc.find(v.Select).widget.v_model = "takeup"
    image = rc.find(v.Html, tag="img").widget
    assert image.attributes["data-layer"] == "takeup" and image.attributes["src"] != first


def test_hub_by_coordinates_calls_back_with_the_cell(configurations):
    model = small_model(configurations)
    placed, cleared = [], []
    box, rc = solara.render(
        web.HubPlacer(
            model,
            solara.reactive("families"),
            lambda x, y: placed.append((x, y)),
            lambda: cleared.append(1),
        ),
        handle_error=False,
    )
    fields = rc.find(v.TextField).widgets
    fields[0].v_model = "12"
    fields[1].v_model = "9"
    rc.find(v.Btn, children=["Place hub"]).widget.click()
    rc.find(v.Btn, children=["Clear placed hubs"]).widget.click()
    assert placed == [(12, 9)] and cleared == [1]


@pytest.mark.parametrize("name", list(web.PLOTS))
def test_plots_redraw_with_each_week(configurations, name):
    model = solara.reactive(small_model(configurations, replications=2, compare_with="universal"))
    box, rc = solara.render(web.Plot(model.value, name), handle_error=False)
    model.value.step()
    figure = web.PLOTS[name][0](model.value)
    before = figure.update()
    model.value.step()
    after = figure.update()
    assert before != after


def test_status_shows_the_burn_in_then_the_measured_weeks(configurations):
    model = small_model(configurations)
    box, rc = solara.render(web.Status(model), handle_error=False)
    rc.find(v.ProgressLinear)  # rendered while the burn-in runs
    model.burn_in()
    model.step()
    box, rc = solara.render(web.Status(model), handle_error=False)
    text = " ".join(w.children[0] for w in rc.find(v.Html, tag="span").widgets if w.children)
    assert "measured week 1 of 8" in text and "under-3 participation" in text


def test_a_hub_placed_on_the_map_is_drawn_as_a_star(configurations):
    model = small_model(configurations, hub_cells=[(20, 20)])
    star = [s for s in model.services if s.hub != NO_HUB]
    assert star and web.service_portrayal(star[0]).marker == "*"


def test_the_web_files_are_pinned_and_present():
    assert not assets.missing(), "run python -m sim.app.assets"
    for asset in assets.ASSETS:
        assert asset.integrity.startswith("sha512-")


def test_shipped_scenario_loads(configurations):
    assert load_scenario(configurations["proportionate"]).name == "proportionate"
    assert AS_CONFIGURED == "as configured"


def test_reset_builds_the_model_from_the_lever_controls(configurations):
    model = solara.reactive(small_model(configurations))
    params = solara.reactive({**SMALL, "configurations": configurations, "outreach_fte": "8"})
    box, rc = solara.render(
        ModelController(
            model,
            model_parameters=params,
            play_interval=solara.reactive(100),
            render_interval=solara.reactive(1),
            use_threads=solara.reactive(False),
        ),
        handle_error=False,
    )
    first = model.value
    rc.find(v.Btn, children=["Reset"]).widget.click()
    assert model.value is not first
    # an FTE set directly is taken as it is, on any city size
    assert model.value.scenario_run.information.outreach_workers == 8.0


def test_a_lever_brings_its_configuration_s_staff_at_the_city_s_size(configurations):
    small = Donors(dict(configurations), families=3000)
    full = Donors(dict(configurations))
    brokers = explorer_scenario(Choices("universal", brokers="on"), small).information.brokers
    want = full["proportionate"].information.brokers
    assert brokers == small["proportionate"].information.brokers
    assert sum(brokers.values()) == pytest.approx(sum(want.values()) * 3000 / 12000, rel=0.05)


def test_a_click_on_the_page_s_map_rebuilds_the_runs_with_a_hub(configurations, monkeypatch):
    monkeypatch.setenv(web.SCENARIO_ENV, str(SCENARIOS / "proportionate.toml"))
    monkeypatch.setenv(web.FAMILIES_ENV, "1500")
    box, rc = solara.render(web.Page(), handle_error=False)
    image = rc.find(v.Html, tag="img", class_="famsim-map").widget
    placed = rc.find(v.Html, class_="famsim-placed").widget
    assert placed.children == ["placed: none"]
    image.fire_event(
        "click", {"offsetX": image_centre(image)[0], "offsetY": image_centre(image)[1]}
    )
    placed = rc.find(v.Html, class_="famsim-placed").widget
    assert placed.children[0].startswith("placed: (")
    rc.find(v.Btn, children=["Clear placed hubs"]).widget.click()
    assert rc.find(v.Html, class_="famsim-placed").widget.children == ["placed: none"]


def image_centre(image) -> tuple[float, float]:
    return int(image.attributes["width"]) * 0.55, int(image.attributes["height"]) * 0.5


def test_famsim_app_listens_on_127_0_0_1_port_8765_unless_told():
    from sim.app.cli import build_parser

    args = build_parser().parse_args(["app"])
    assert (args.host, args.port) == ("127.0.0.1", 8765)
    assert args.scenario == Path("scenarios/proportionate.toml")
