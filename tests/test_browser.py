"""The dashboard in a real browser: Debian's Chromium driven by Playwright, no network.

Run with the rest (``pytest``) or alone (``pytest -m browser``). Needs ``/usr/bin/chromium``
(``scripts/test.sh`` installs it); Playwright's own browser download is never used.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from geo.io.footprints import read_footprint
from geo.pipeline import compute_exposure, read_release, write_release
from geo.release import ReleasePolicy, protect
from geo.tools.classes import to_bands
from tests.dashboard_server import (
    CHROMIUM,
    CHROMIUM_ARGS,
    MAP_FRAME,
    DashboardStartError,
    hover_tooltip,
    script_ran,
    start_dashboard,
    stop_dashboard,
    wait_for_map,
)
from tests.export_files import read_exposure_csv
from tests.factories import clustered_records

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NORCIA_MMI = ROOT / "data" / "footprints" / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


@pytest.fixture(scope="module")
def release_path(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("browser-releases")
    release = protect(clustered_records(20_000, seed=5), ReleasePolicy(k=10))
    return write_release(release, folder / "browser_test.release.parquet")


@pytest.fixture(scope="module")
def server(release_path, tmp_path_factory):
    """Start the dashboard as demo.sh does, on a free port; print its output if it dies."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (scripts/test.sh installs it)")
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    try:
        process, url = start_dashboard(release_path.parent, log, launcher=True)
    except DashboardStartError as died:
        pytest.fail(str(died))
    yield url
    stop_dashboard(process)
    if process.returncode not in (0, -15):
        print(log.read_text())


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server, tmp_path):
    """A fresh page that refuses (and records) every request leaving the test server."""
    yield from offline_page(browser, server, tmp_path)


def offline_page(browser, server, tmp_path):
    """Yield a page that refuses (and records) every request leaving ``server``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    page = context.new_page()
    page.outside = []

    def route(request_route):
        if request_route.request.url.startswith(server):
            request_route.continue_()
        else:
            page.outside.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    yield page
    page.screenshot(path=str(tmp_path / "last.png"))
    context.close()


def wait_idle(page, timeout: float = 60_000) -> None:
    page.wait_for_timeout(300)
    page.wait_for_selector(IDLE, timeout=timeout)


def test_map_renders_offline_and_is_not_blank(page, server, tmp_path):
    started = time.monotonic()
    page.goto(server)
    wait_idle(page)
    wait_for_map(page)
    page.wait_for_timeout(1500)  # let deck.gl draw the first frames
    print(f"first complete render: {time.monotonic() - started:.1f} s")
    shot = page.locator(MAP_FRAME).screenshot(path=str(tmp_path / "map.png"))
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"), dtype=float)
    assert pixels.std() > 20, "the map looks blank"
    colours = len(np.unique(pixels.reshape(-1, 3).astype(int), axis=0))
    assert colours > 50, f"only {colours} colours on the map"
    assert page.get_by_text("Persons per cell").is_visible()
    assert page.outside == [], f"requests left the machine: {page.outside}"


# What a browser with WebGL switched off gives a page: no WebGL context, ever.
NO_WEBGL = """
const getContext = HTMLCanvasElement.prototype.getContext;
HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {
  return String(kind).startsWith("webgl") ? null : getContext.call(this, kind, ...rest);
};
"""


def test_a_browser_without_webgl_is_told_why_the_map_is_blank(page, server):
    # Before: deck.gl got no context and said nothing; the map stayed a blank frame
    # (also in Chromium started with --disable-3d-apis).
    page.add_init_script(NO_WEBGL)
    page.goto(server)
    wait_idle(page)
    note = page.frame_locator(MAP_FRAME).first.locator("#map-error")
    note.wait_for(timeout=30_000)
    assert note.inner_text() == (
        "The map could not be drawn: this browser has WebGL 2 switched off or does not support it"
    )
    # A filter change cannot draw either: the line stays.
    page.get_by_label("Breakdown").click()
    page.get_by_role("option", name="Sex").click()
    wait_idle(page)
    page.wait_for_timeout(500)
    assert note.count() == 1


def test_filter_change_keeps_the_page_working(page, server):
    page.goto(server)
    wait_idle(page)
    frame = wait_for_map(page)
    first = frame.locator("#map").get_attribute("data-rebuilt").split()
    assert {"basemap-land", "places-names", "footprint-outline"} <= set(first)
    started = time.monotonic()
    page.get_by_label("Breakdown").click()  # open the select, pick "Sex"
    page.get_by_role("option", name="Sex").click()
    wait_idle(page)
    print(f"rerun after a filter change: {time.monotonic() - started:.1f} s")
    assert page.get_by_text("Each hexagon shows its released count for sex").is_visible()
    assert frame.locator("canvas").count() == 1  # the same map, its layers updated
    # Only the cells were parsed and rebuilt: the basemap, the place names and the
    # footprint kept their deck.gl layers (Streamlit's own chart rebuilt all of them).
    rebuilt = frame.locator("#map").get_attribute("data-rebuilt").split()
    assert rebuilt and all(layer.startswith("cells-") for layer in rebuilt), rebuilt


def test_exposure_runs_and_downloads_the_csv(page, server, release_path):
    page.goto(f"{server}/exposure")
    wait_idle(page)
    page.wait_for_selector('[data-testid="stDownloadButton"]', timeout=60_000)
    wait_idle(page)
    assert page.get_by_text("The true number lies between low and high").first.is_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="CSV", exact=True).click()
    assert download.value.suggested_filename.endswith(".csv")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith("\ufeffHazard class,")  # plain: a BOM, then the titles
    table = read_exposure_csv(io.StringIO(text))
    expected = compute_exposure(
        read_release(release_path), to_bands(read_footprint(NORCIA_MMI).classes)
    ).table
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    assert page.outside == [], f"requests left the machine: {page.outside}"


# --------------------------------------------------------------------------- hostile text

SCRIPT_NATIONALITY = "<img src=x onerror=window.__pwned=1>"
SCRIPT_FOOTPRINT = "<img src=x onerror=window.__pwned=2>"  # upload names lose their quotes
# The release readers refuse a nationality outside the release vocabulary; this server
# has that check switched off (a sitecustomize written by the test), so the payload
# reaches the tooltip, set as text (never HTML) and escaped by Streamlit in its HTML form.
WITHOUT_VOCABULARY_CHECK = (
    "import geo.invariants\ngeo.invariants._check_vocabulary = lambda *args, **kwargs: None\n"
)


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """A server over a release whose only nationality is a script payload."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (scripts/test.sh installs it)")
    folder = tmp_path_factory.mktemp("hostile-releases")
    records = clustered_records(20_000, seed=5, nationalities={SCRIPT_NATIONALITY: 1.0})
    write_release(protect(records, ReleasePolicy(k=10)), folder / "hostile.release.parquet")
    hooks = tmp_path_factory.mktemp("hooks")
    (hooks / "sitecustomize.py").write_text(WITHOUT_VOCABULARY_CHECK)
    log = tmp_path_factory.mktemp("hostile-server") / "streamlit.log"
    try:
        process, url = start_dashboard(
            folder, log, steward=False, extra_env={"PYTHONPATH": f"{hooks}:{ROOT}"}
        )
    except DashboardStartError as died:
        pytest.fail(str(died))
    yield url
    stop_dashboard(process)


def footprint_over_umbria() -> bytes:
    """A GeoJSON polygon over every released cell (its class is named after the file)."""
    ring = [[11.5, 42.0], [14.0, 42.0], [14.0, 44.0], [11.5, 44.0], [11.5, 42.0]]
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    return json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()


@pytest.fixture
def hostile_page(browser, hostile_server, tmp_path):
    yield from offline_page(browser, hostile_server, tmp_path)


def test_script_payloads_in_a_release_and_a_footprint_never_run(hostile_page, hostile_server):
    page = hostile_page
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{hostile_server}/exposure")
    wait_idle(page)
    uploader = '.st-key-exposure_uploads [data-testid="stFileUploaderDropzoneInput"]'
    page.locator(uploader).set_input_files(
        files=[
            {
                "name": f"{SCRIPT_FOOTPRINT}.geojson",
                "mimeType": "application/geo+json",
                "buffer": footprint_over_umbria(),
            }
        ]
    )
    wait_idle(page)
    page.wait_for_selector('[data-testid="stDownloadButton"]', timeout=60_000)
    wait_idle(page)
    assert not script_ran(page)  # tables, chart, footprint details
    # the Map page in the same session: the uploaded footprint over the cells
    page.get_by_role("link", name="Map").click()
    wait_idle(page)
    page.get_by_label("Hazard footprint").click()
    page.keyboard.type("(uploaded)")  # filter the options down to the upload
    page.keyboard.press("Enter")
    wait_idle(page)
    frame = wait_for_map(page)
    page.wait_for_timeout(1500)
    legend = page.get_by_text(SCRIPT_FOOTPRINT, exact=True)
    assert legend.count() >= 1  # the class label and the footprint's name, as text
    shown, tooltip = hover_tooltip(page, frame, np.linspace(0.3, 0.7, 9))
    assert SCRIPT_NATIONALITY in shown, f"no tooltip with the nationality: {shown!r}"
    assert "&lt;img" in tooltip.first.inner_html()
    assert tooltip.first.locator("img").count() == 0
    assert not script_ran(page)
    assert dialogs == []
    assert page.outside == [], f"requests left the machine: {page.outside}"


BROKEN_MAP_APP = """
import sys
sys.path.insert(0, {root!r})
import pydeck as pdk
from app_pages.deck_map import deck_map
import streamlit as st
view = pdk.ViewState(latitude=42.0, longitude=12.5, zoom=6)
kind = "NoSuchLayer" if st.checkbox("Broken", value=True) else "ScatterplotLayer"
deck_map(pdk.Deck(layers=[pdk.Layer(kind, data=[], id="x")], initial_view_state=view),
         height=300, key="map", alt="A map that cannot be drawn")
"""


def test_a_map_that_cannot_be_drawn_says_why_and_hears_only_its_page(browser, tmp_path):
    # Before: a layer deck.gl refused (or no WebGL) left a blank frame and no word.
    app = tmp_path / "app"
    app.mkdir()
    (app / "dashboard.py").write_text(BROKEN_MAP_APP.format(root=str(ROOT)))
    try:
        process, url = start_dashboard(app, app / "log", steward=False, root=app)
    except DashboardStartError as died:
        pytest.fail(str(died))
    try:
        page = browser.new_page()
        page.goto(url)
        frame = page.frame_locator(MAP_FRAME)
        note = frame.locator("#map-error")
        note.wait_for(timeout=60_000)
        assert note.inner_text() == "The map could not be drawn: unknown layer type NoSuchLayer"
        assert note.get_attribute("role") == "alert"
        # The next map that draws takes the line away.
        page.get_by_text("Broken").click()
        note.wait_for(state="detached", timeout=60_000)
        # Only the page holding the map may draw in it: a message from anywhere else
        # (here the frame itself) is ignored.
        frame.locator("#map").evaluate(
            "() => window.postMessage({type: 'streamlit:render', args: {layers: ['{']}}, '*')"
        )
        page.wait_for_timeout(500)
        assert note.count() == 0
        page.close()
    finally:
        stop_dashboard(process)
