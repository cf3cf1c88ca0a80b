"""The web app on the default city: how long a step plus its redraw takes, in a real browser.

    .venv/bin/python benchmarks/app_frame.py [--quick] [--frames N] [--screenshot PATH]

Starts `famsim app scenarios/proportionate.toml` (12,000 families; --quick: 2,000) on a free
local port, opens it in headless Debian chromium (Playwright), waits for the burn-in, then
clicks Step N times (default 10). A frame is the time from the click until the map and the
three plots all show the new week in the page's DOM, timed inside the page; `driven_median_s`
is the same seen through Playwright (its click checks and polling included, 3 frames).
Then, in this process, the same step and each redraw on their own. Prints
    frames=<n> median_s=<f> max_s=<f> driven_median_s=<f> step_ms=<f> map_ms=<f> plots_ms=<f>
(target: a step plus its redraw under 1 s). --screenshot writes the page after the last
frame (the README's picture: docs/images/app.png).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.app import assets  # noqa: E402

IMAGES = ("famsim-map", "famsim-participation", "famsim-gradient", "famsim-barriers")
# in the page: click Step and resolve when every image shows the week (a MutationObserver,
# timed with the page's own clock, so no driver round trip is counted)
FRAME_JS = """async ([week, names]) => {
  const done = () => names.every(n => {
    const e = document.querySelector('img.' + n);
    return e && e.dataset.week === String(week);
  });
  const step = [...document.querySelectorAll('button')]
    .find(b => b.innerText.trim().toUpperCase() === 'STEP');
  const t0 = performance.now();
  return await new Promise(resolve => {
    const observer = new MutationObserver(() => {
      if (done()) { observer.disconnect(); resolve((performance.now() - t0) / 1000); }
    });
    observer.observe(document.body, {subtree: true, attributes: true, childList: true});
    step.click();
  });
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser_frames(families: int, frames: int, screenshot: Path | None) -> list[float]:
    from playwright.sync_api import sync_playwright

    port = _free_port()
    command = [
        sys.executable, "-m", "sim", "app", "scenarios/proportionate.toml",
        "--port", str(port), "--families", str(families),
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=assets.CHROMIUM, args=list(assets.CHROMIUM_ARGS)
            )
            page = browser.new_page(viewport={"width": 1600, "height": 1250})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("text=measured week 0", timeout=180_000)
            times, driven = [], []
            for week in range(1, frames + 1):
                times.append(page.evaluate(FRAME_JS, [week, list(IMAGES)]))
            for week in range(frames + 1, frames + 4):  # as a test driver sees it
                started = time.perf_counter()
                page.get_by_role("button", name="Step").click()
                for name in IMAGES:
                    page.wait_for_selector(f"img.{name}[data-week='{week}']", timeout=30_000)
                driven.append(time.perf_counter() - started)
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return times, driven


def server_parts(families: int, frames: int) -> dict[str, float]:
    """The same frame's parts in this process: a step, the map, the three plots (ms)."""
    from sim.app import web
    from sim.app.explorer import ExplorerModel, catalogue

    configurations = catalogue(ROOT / "scenarios" / "proportionate.toml")
    model = ExplorerModel(configurations=configurations, families=families)
    model.burn_in()
    figure = web.MapFigure(model, "unmet_share")
    plots = [kind(model) for kind, _ in web.PLOTS.values()]
    parts: dict[str, list[float]] = {"step": [], "map": [], "plots": []}
    for _ in range(frames):
        t0 = time.perf_counter()
        model.step()
        t1 = time.perf_counter()
        figure.update()
        t2 = time.perf_counter()
        for plot in plots:
            plot.update()
        t3 = time.perf_counter()
        parts["step"].append(t1 - t0)
        parts["map"].append(t2 - t1)
        parts["plots"].append(t3 - t2)
    return {k: 1000 * statistics.median(v) for k, v in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    families = 2000 if args.quick else 12_000
    times, driven = browser_frames(families, args.frames, args.screenshot)
    parts = server_parts(families, args.frames)
    print(
        f"frames={len(times)} median_s={statistics.median(times):.3f} max_s={max(times):.3f} "
        f"driven_median_s={statistics.median(driven):.3f} step_ms={parts['step']:.1f} "
        f"map_ms={parts['map']:.1f} plots_ms={parts['plots']:.1f}"
    )


if __name__ == "__main__":
    main()
