"""End to end: `famsim app` on a free local port, opened in headless Chromium (Debian's
chromium, driven by Playwright; browsers cannot be downloaded here). Stepping, changing a
lever and placing a hub by a click on the map must each change what the page shows; the
server listens on 127.0.0.1 only. In CI a missing browser fails this test instead of
skipping it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.app import assets

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("FAMSIM_CHROMIUM", assets.CHROMIUM)
FAMILIES = 1000  # a small city: the page and its controls are the same


def _browser_or_fail() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    message = f"the browser test needs Debian's chromium at {CHROMIUM} (make test installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(local address, port) of every listening TCP socket the process holds, from its file
    descriptors' socket inodes matched in /proc/net/tcp and tcp6."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append((address, int(hex_port, 16)))
    return found


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sim",
            "app",
            "scenarios/proportionate.toml",
            "--port",
            str(port),
            "--families",
            str(FAMILIES),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"famsim app stopped: {process.stderr.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("famsim app did not start listening within 120 s")
    yield port, process.pid
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def test_the_app_listens_on_the_loopback_address_only(server):
    port, pid = server
    sockets = _listening_sockets(pid)
    # 0100007F is 127.0.0.1 in /proc/net/tcp's byte order: the app's port, and no other
    # listening socket (none on 0.0.0.0, ::, or another port)
    assert sockets == [("0100007F", port)], sockets


def test_stepping_a_lever_and_a_hub_each_change_the_page(server, tmp_path):
    port, _ = server
    browser_path = _browser_or_fail()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=list(assets.CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1300})
            page.goto(f"http://127.0.0.1:{port}/")
            # the burn-in runs ahead, then the first measured week is shown
            page.wait_for_selector("text=measured week 0", timeout=90_000)
            status = page.locator(".famsim-status-0").inner_text()
            assert f"proportionate, {FAMILIES:,} families" in status

            def src(selector: str) -> str:
                return page.locator(selector).get_attribute("src")

            # 1. a step: the map and every plot are redrawn for week 1
            before = {
                s: src(s)
                for s in (
                    "img.famsim-map",
                    "img.famsim-participation",
                    "img.famsim-gradient",
                    "img.famsim-barriers",
                )
            }
            page.get_by_role("button", name="Step").click()
            page.wait_for_selector("img.famsim-participation[data-week='1']", timeout=30_000)
            page.wait_for_selector("img.famsim-map[data-week='1']", timeout=30_000)
            for selector, old in before.items():
                assert src(selector) != old, selector
            assert "measured week 1 of" in page.locator(".famsim-status-2").inner_text()

            # 2. a lever: 8 FTE of outreach at the same outlay buys fewer childcare places
            places = page.locator(".famsim-status-1").inner_text()
            page.locator(".v-select", has_text="outreach staff (FTE)").click()
            page.get_by_role("option", name="8", exact=True).click()
            page.get_by_role("button", name="Reset").click()
            page.wait_for_function(
                "old => document.querySelector('.famsim-status-1').innerText !== old",
                arg=places,
                timeout=60_000,
            )
            page.wait_for_selector("text=measured week 0", timeout=90_000)
            assert page.locator(".famsim-status-1").inner_text() != places

            # 3. a hub placed by a click on the map: the runs are rebuilt with it
            old_map = src("img.famsim-map")
            box = page.locator("img.famsim-map").bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.5)
            page.wait_for_selector("text=/placed: \\(\\d+, \\d+\\)/", timeout=60_000)
            page.wait_for_selector("text=measured week 0", timeout=90_000)
            page.wait_for_function(
                "old => document.querySelector('img.famsim-map').src !== old",
                arg=old_map,
                timeout=30_000,
            )
            page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
        finally:
            browser.close()
