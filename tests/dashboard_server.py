"""Start the dashboard on a free local port: shared by the browser tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# The dashboard's maps (app_pages.deck_map) are iframes with a deck.gl canvas; an older
# checkout measured beside this one draws them with st.pydeck_chart.
MAP_FRAME = 'iframe[title="app_pages.deck_map.deck_map"]'
PYDECK_CANVAS = '[data-testid="stDeckGlJsonChart"] canvas'


def wait_for_map(page, timeout: float = 60_000, index: int = 0):
    """Wait until the page's ``index``-th map has its canvas; return its frame locator.

    For a checkout whose maps are ``st.pydeck_chart``s, returns None once the canvas is
    there.
    """
    page.wait_for_selector(f"{MAP_FRAME}, {PYDECK_CANVAS}", timeout=timeout)
    if page.locator(MAP_FRAME).count() == 0:
        page.wait_for_selector(PYDECK_CANVAS, timeout=timeout)
        return None
    frame = page.frame_locator(MAP_FRAME).nth(index)
    frame.locator("canvas").wait_for(timeout=timeout)
    return frame


def script_ran(page) -> bool:
    """Whether a hostile payload set ``window.__pwned`` in the page or any of its frames."""
    return any(frame.evaluate("window.__pwned") is not None for frame in page.frames)


def hover_tooltip(page, frame, fractions) -> tuple[str, object]:
    """Move the mouse over the map in ``frame`` until a tooltip counts persons.

    ``fractions`` are the positions tried across the map's width and height. Returns the
    tooltip's text ('' if none showed) and its locator.
    """
    box = page.locator(MAP_FRAME).first.bounding_box()
    tooltip = frame.locator(".deck-tooltip")
    shown = ""
    for fx in fractions:
        for fy in fractions:
            page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
            page.wait_for_timeout(60)
            if tooltip.count() and tooltip.first.is_visible():
                shown = tooltip.first.inner_text()
                if "persons" in shown:
                    return shown, tooltip
    return shown, tooltip


class DashboardStartError(RuntimeError):
    """The server exited or did not answer; the message holds its output."""


def free_port() -> int:
    """Return a TCP port nobody listens on (on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_dashboard(
    release_dir: Path,
    log: Path,
    steward: bool = True,
    timeout_s: float = 60,
    extra_env: dict[str, str] | None = None,
    root: Path = ROOT,
    launcher: bool = False,
) -> tuple[subprocess.Popen, str]:
    """Run ``streamlit run dashboard.py`` on releases in ``release_dir``; wait for health.

    ``extra_env`` adds environment variables to the server's; ``root`` is the checkout
    whose dashboard runs (a benchmark's baseline runs another). With ``launcher`` the
    server is started as ``scripts/demo.sh`` starts it (``python -m app_pages.serve``,
    which loads the release before the first visitor), when ``root`` has it. Returns
    the process and its URL. Raises DashboardStartError (with the server's output)
    when it exits or does not answer within ``timeout_s``.
    """
    env = {
        **os.environ,
        "CRISIS_EXPOSURE_RELEASE_DIR": str(release_dir),
        "CRISIS_EXPOSURE_STEWARD": "1" if steward else "0",
        **(extra_env or {}),
    }
    env.pop("CRISIS_EXPOSURE_BASEMAP_URL", None)
    port = free_port()
    if launcher and (root / "app_pages" / "serve.py").exists():
        command = [sys.executable, "-m", "app_pages.serve"]
    else:
        command = [sys.executable, "-m", "streamlit", "run", str(root / "dashboard.py")]
    command += [
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
    ]
    with open(log, "w") as output:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise DashboardStartError(
                f"streamlit exited with {process.returncode}:\n{log.read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.terminate()
            raise DashboardStartError(
                f"streamlit did not answer in {timeout_s} s:\n{log.read_text()}"
            )
        time.sleep(0.1)


def stop_dashboard(process: subprocess.Popen) -> None:
    """Stop the server, killing it if it does not stop within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
