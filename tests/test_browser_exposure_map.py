"""The Exposure page's map in a real browser (Debian's Chromium via Playwright, offline).

An uploaded footprint is drawn at once (no Run button): the map canvas is not blank,
the deck's cell values (read from the page's websocket, as the browser receives them)
equal the exposure table's, and hovering a cell whose nationality and class label are
script payloads runs nothing.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geo import pipeline
from geo.release import ReleasePolicy, protect
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
from tests.factories import clustered_records
from tests.test_browser import (
    SCRIPT_FOOTPRINT,
    SCRIPT_NATIONALITY,
    WITHOUT_VOCABULARY_CHECK,
    footprint_over_umbria,
    offline_page,
    wait_idle,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
MAP = MAP_FRAME
UPLOADER = '.st-key-exposure_uploads [data-testid="stFileUploaderDropzoneInput"]'
SLOW = 240_000  # ms: a cold exposure on a shared 2-core machine


def flood_footprint() -> bytes:
    """A flood polygon over part of the released cells (one class, "flood")."""
    ring = [[12.2, 42.85], [12.75, 42.85], [12.75, 43.25], [12.2, 43.25], [12.2, 42.85]]
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    return json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()


def serve(folder: Path, log: Path, extra_env: dict | None = None):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (scripts/test.sh installs it)")
    try:
        return start_dashboard(folder, log, steward=False, extra_env=extra_env)
    except DashboardStartError as died:
        pytest.fail(str(died))


@pytest.fixture(scope="module")
def release_path(tmp_path_factory) -> Path:
    """An exact release: low and high are plain sums, equal cell by cell."""
    folder = tmp_path_factory.mktemp("map-releases")
    release = protect(clustered_records(20_000, seed=5), ReleasePolicy(k=10, noise_scale=0))
    return pipeline.write_release(release, folder / "exact.release.parquet")


@pytest.fixture(scope="module")
def server(release_path, tmp_path_factory):
    process, url = serve(release_path.parent, tmp_path_factory.mktemp("srv") / "log")
    yield url
    stop_dashboard(process)


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server, tmp_path):
    yield from offline_page(browser, server, tmp_path)


def record_frames(page) -> list[bytes]:
    """Collect every websocket frame the page receives (Streamlit's protobuf messages)."""
    frames: list[bytes] = []

    def on_socket(socket):
        socket.on(
            "framereceived",
            lambda data: frames.append(data if isinstance(data, bytes) else data.encode()),
        )

    page.on("websocket", on_socket)
    return frames


def exposure_decks(frames: list[bytes]) -> list[dict]:
    """Every map with exposed cells found in the frames, in order: its parsed layers.

    The map component's arguments travel as one JSON text (``{"layers": [...``) in which
    each layer is a JSON string of its own.
    """
    decks = []
    decoder = json.JSONDecoder()
    for frame in frames:
        if b"exposed-h" not in frame:
            continue
        text = frame.decode("utf-8", errors="replace")
        start = text.find('{"layers"')
        while start >= 0:
            try:
                arguments, _ = decoder.raw_decode(text, start)
            except ValueError:
                start = text.find('{"layers"', start + 1)
                continue
            decks.append({"layers": [json.loads(layer) for layer in arguments["layers"]]})
            break
    return decks


def map_screenshot(page, path: Path) -> bytes:
    """Screenshot the map's box (deck.gl keeps redrawing, so no wait for stillness)."""
    page.locator(MAP).first.scroll_into_view_if_needed(timeout=SLOW)
    page.wait_for_timeout(2000)
    box = page.locator(MAP).first.bounding_box()
    return page.screenshot(path=str(path), clip=box, timeout=SLOW)


def upload(page, name: str, payload: bytes) -> None:
    page.locator(UPLOADER).set_input_files(
        files=[{"name": name, "mimeType": "application/geo+json", "buffer": payload}]
    )
    wait_idle(page, SLOW)


def test_uploaded_footprint_is_drawn_with_the_table_values(page, server, release_path, tmp_path):
    frames = record_frames(page)
    page.goto(f"{server}/exposure")
    wait_idle(page, SLOW)
    upload(page, "flood.geojson", flood_footprint())
    wait_for_map(page, timeout=SLOW)
    page.wait_for_timeout(2500)  # let deck.gl draw
    assert page.get_by_role("button", name="Run exposure").count() == 0
    shot = map_screenshot(page, tmp_path / "exposure_map.png")
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"), dtype=int)
    assert pixels.std() > 20, "the map looks blank"
    # the flood's class colour (the palette's dark red, shaded by persons) fills many pixels
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    red = (r - g > 60) & (r - b > 40)
    assert red.sum() > 2000, f"only {red.sum()} class-coloured pixels"

    decks = [d for d in exposure_decks(frames) if "flood" in json.dumps(d)]
    assert decks, "no exposure deck reached the browser"
    rows = [
        row
        for layer in decks[-1]["layers"]
        if layer["@@type"] == "H3HexagonLayer"
        for row in layer["data"]
    ]
    release = pipeline.read_release(release_path)
    footprint = tmp_path / "flood.geojson"
    footprint.write_bytes(flood_footprint())
    run = pipeline.run_exposure(
        release, pipeline.read_footprints([footprint], names=["flood.geojson"])
    )
    (total,) = run.exposure.class_totals().to_dict("records")
    parts = [part for row in rows for part in row["by_class"]]
    assert {part[0] for part in parts} == {"flood"}
    assert sum(part[1] for part in parts) == total["persons_low"]
    assert sum(part[3] for part in parts) == total["persons_high"]
    assert round(sum(part[2] for part in parts)) == total["persons_estimate"]
    assert page.get_by_text("Persons per cell inside the footprint").is_visible()
    assert page.outside == [], f"requests left the machine: {page.outside}"


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """A server over a release whose only nationality is a script payload."""
    folder = tmp_path_factory.mktemp("hostile-map-releases")
    records = clustered_records(20_000, seed=5, nationalities={SCRIPT_NATIONALITY: 1.0})
    release = protect(records, ReleasePolicy(k=10))
    pipeline.write_release(release, folder / "hostile.release.parquet")
    hooks = tmp_path_factory.mktemp("hooks")
    (hooks / "sitecustomize.py").write_text(WITHOUT_VOCABULARY_CHECK)
    log = tmp_path_factory.mktemp("hostile-srv") / "log"
    process, url = serve(folder, log, {"PYTHONPATH": f"{hooks}:{ROOT}"})
    yield url
    stop_dashboard(process)


@pytest.fixture
def hostile_page(browser, hostile_server, tmp_path):
    yield from offline_page(browser, hostile_server, tmp_path)


def test_hovering_cells_with_script_labels_runs_nothing(hostile_page, hostile_server):
    page = hostile_page
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{hostile_server}/exposure")
    wait_idle(page, SLOW)
    upload(page, f"{SCRIPT_FOOTPRINT}.geojson", footprint_over_umbria())
    frame = wait_for_map(page, timeout=SLOW)
    page.locator(MAP).first.scroll_into_view_if_needed(timeout=SLOW)
    page.wait_for_timeout(2500)
    shown, tooltip = hover_tooltip(page, frame, np.linspace(0.2, 0.8, 13))
    assert SCRIPT_NATIONALITY in shown, f"no tooltip with the nationality: {shown!r}"
    assert SCRIPT_FOOTPRINT in shown  # the class label, as text
    assert tooltip.first.locator("img").count() == 0
    assert frame.locator("img").count() == 0
    assert not script_ran(page)
    assert dialogs == []
    assert page.outside == [], f"requests left the machine: {page.outside}"


def test_a_label_spelled_like_a_deck_expression_stays_text(page, server):
    # deck.gl's JSON converter reads "@@#A.b" as an enumeration and "@@=…" as an
    # expression wherever it meets one: a footprint named so broke the whole map (its
    # class label is in every exposed cell's data). Only the layers' props are converted.
    page.goto(f"{server}/exposure")
    wait_idle(page, SLOW)
    upload(page, "@@#Evil.label.geojson", flood_footprint())
    frame = wait_for_map(page, timeout=SLOW)
    page.locator(MAP).first.scroll_into_view_if_needed(timeout=SLOW)
    page.wait_for_timeout(2500)
    shown, _ = hover_tooltip(page, frame, np.linspace(0.2, 0.8, 13))
    assert "@@#Evil.label" in shown, f"no tooltip with the label: {shown!r}"
