"""The exposure on the map: cells equal the table, the ShakeMap edge is a frame, words plain."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from streamlit.testing.v1 import AppTest

from geo import pipeline
from geo.pipeline.exposure import exposure_cells
from geo.release import ReleasePolicy, protect
from geo.viz.basemap import base_layers, place_layers, spaced_places
from geo.viz.exposure_map import (
    cell_tooltips,
    exposure_deck,
    exposure_map,
    is_map_edge,
    map_edge_paths,
)
from tests.export_files import machine_columns
from tests.factories import clustered_records
from tests.map_decks import decks

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard.py")
NORCIA_MMI = ROOT / "data" / "footprints" / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
# The file's bbox member (its map edge), as the reader's note gives it.
NORCIA_EDGE = (11.1778, 41.5011, 15.1695, 44.1596)
H3_ID = re.compile(r"\b8[0-9a-f]{14}\b")


@pytest.fixture(scope="module")
def release():
    """An exact release (no noise), so that low and high are plain sums to compare."""
    return protect(clustered_records(6000, seed=3), ReleasePolicy(k=5, noise_scale=0))


@pytest.fixture(scope="module")
def norcia():
    return pipeline.read_footprints([NORCIA_MMI])


def cell_rows(payload: dict) -> list[dict]:
    """Every exposed-cell record of a deck's JSON."""
    return [
        row
        for layer in payload["layers"]
        if layer["@@type"] == "H3HexagonLayer"
        for row in layer["data"]
    ]


@pytest.mark.parametrize("cumulative", [False, True])
def test_cells_sum_to_the_exposure_table(release, norcia, cumulative):
    """The map's cells hold the table's figures: summed per class they give its rows."""
    run = pipeline.run_exposure(release, norcia, cumulative=cumulative)
    cells = exposure_cells(run, release)
    table = run.exposure.by_class.set_index(["hazard_class", "nationality"]).sort_index()
    summed = (
        cells.by_nationality.groupby(["class_label", "nationality"])[
            ["persons_low", "persons_estimate", "persons_high"]
        ]
        .sum()
        .sort_index()
    )
    assert list(summed.index) == list(table.index)
    for bound in ("persons_low", "persons_high"):
        assert (summed[bound].to_numpy() == table[bound].to_numpy()).all(), bound
    estimate = summed["persons_estimate"].round().astype(int).to_numpy()
    assert (estimate == table["persons_estimate"].to_numpy()).all()
    # and in the deck: each class's cells sum to the class's total row
    drawn = exposure_map(
        run.classes, cells.by_cell, cells.by_nationality, cells.worst(cumulative), cumulative
    )
    payload = json.loads(exposure_deck(drawn.layers, drawn.view).to_json())
    rows = cell_rows(payload)
    assert len(rows) == drawn.cells == cells.by_cell["h3_cell"].nunique()
    totals = run.exposure.class_totals().set_index("hazard_class")
    for label, total in totals.iterrows():
        parts = [c for row in rows for c in row["by_class"] if c[0] == label]
        assert sum(c[1] for c in parts) == total["persons_low"]
        assert sum(c[3] for c in parts) == total["persons_high"]
        assert abs(sum(c[2] for c in parts) - total["persons_estimate"]) <= len(table) / 2
    assert "http" not in json.dumps(payload)  # no basemap, no tiles, no request


def test_tooltips_are_plain_words_with_ranges(release, norcia):
    """Before: the tooltip gave an H3 id and "ROU 36"; now "Romania (ROU): 36 persons (range …)"."""
    run = pipeline.run_exposure(release, norcia)
    cells = exposure_cells(run, release)
    drawn = exposure_map(
        run.classes, cells.by_cell, cells.by_nationality, cells.worst(False), False
    )
    payload = json.loads(exposure_deck(drawn.layers, drawn.view).to_json())
    texts = [row["tooltip"] for row in cell_rows(payload)]
    assert texts and not any(H3_ID.search(text) for text in texts)
    assert not any(re.search(r"\b[A-Z]{3} \d", text) for text in texts)  # no "ROU 36"
    rou = [t for t in texts if "Romania (ROU): " in t]
    assert rou and re.search(r"Romania \(ROU\): [\d,]+ persons \(range [\d,]+–[\d,]+\)", rou[0])
    assert all(re.match(r"MMI [IVX<> ]+: [\d,]+ persons \(range ", t) for t in texts)


def test_a_cells_tooltip_lists_classes_then_its_largest_nationalities():
    """The text of one cell, line by line: pins the tooltip's order, rounding and counts."""
    by_cell = pd.DataFrame(
        {
            "h3_cell": ["881e8052c1fffff", "881e8052c1fffff", "881e8052c3fffff"],
            "class_label": ["MMI VI", "MMI VII", "MMI VI"],
            "class_rank": [2, 3, 2],
            "persons_low": [0, 1200, 3],
            "persons_estimate": [2.5, 1234.5, 3.5],
            "persons_high": [10, 2000, 4],
        }
    )
    # six nationalities in the first cell, in both classes; none in the second
    codes = ["ROU", "ALB", "UKR", "MAR", "IND", "CHN"]
    estimates = [40.0, 20.0, 20.0, 5.0, 3.0, 1.0]  # ALB and UKR tie: by code
    rows = [
        (label, rank, code, estimate)
        for label, rank in (("MMI VII", 3), ("MMI VI", 2))
        for code, estimate in zip(codes, estimates, strict=True)
    ]
    by_nationality = pd.DataFrame(
        {
            "h3_cell": "881e8052c1fffff",
            "class_label": [r[0] for r in rows],
            "class_rank": [r[1] for r in rows],
            "nationality": [r[2] for r in rows],
            "persons_low": [0] * len(rows),
            "persons_estimate": [r[3] for r in rows],
            "persons_high": [100] * len(rows),
        }
    )
    banded = cell_tooltips(by_cell, by_nationality, cumulative=False)
    assert list(banded.index) == ["881e8052c1fffff", "881e8052c3fffff"]
    assert banded["881e8052c1fffff"].split("\n") == [
        "MMI VII: 1,234 persons (range 1,200–2,000)",  # most severe first; half to even
        "MMI VI: 2 persons (range 0–10)",
        "Inside the footprint, by nationality:",
        "Romania (ROU): 80 persons (range 0–100)",  # summed over the bands
        "Albania (ALB): 40 persons (range 0–100)",
        "Ukraine (UKR): 40 persons (range 0–100)",
        "Morocco (MAR): 10 persons (range 0–100)",
        "India (IND): 6 persons (range 0–100)",
        "and 1 more nationalities",
    ]
    assert banded["881e8052c3fffff"] == "MMI VI: 4 persons (range 3–4)"
    # nested classes: the nationalities of the widest class only, not summed
    nested = cell_tooltips(by_cell, by_nationality, cumulative=True)
    assert "Romania (ROU): 40 persons (range 0–100)" in nested["881e8052c1fffff"]


def test_shakemap_edge_is_a_dashed_frame_not_a_class(release, norcia):
    """Before: the area below the lowest contour was drawn as a large orange rectangle."""
    run = pipeline.run_exposure(release, norcia)
    assert is_map_edge("MMI < V") and is_map_edge("MMI: whole map")
    assert is_map_edge("PGA < 2 %g") and not is_map_edge("MMI V") and not is_map_edge("flood")
    cells = exposure_cells(run, release)
    drawn = exposure_map(
        run.classes, cells.by_cell, cells.by_nationality, cells.worst(False), False
    )
    assert drawn.map_edge
    layers = {layer.id: layer for layer in drawn.layers}
    fill = layers["footprint-fill"].data["features"]
    assert len(fill) == len(run.classes) - 1  # every class but MMI < V is filled
    dashes = layers["map-edge"].data
    assert len(dashes) >= 100
    frame = shapely.box(*NORCIA_EDGE).exterior
    ends = np.array([point for dash in dashes for point in dash["path"]])
    assert shapely.distance(shapely.points(ends), frame).max() < 1e-3  # on the edge
    drawn_length = sum(shapely.LineString(d["path"]).length for d in dashes)
    assert 0.4 < drawn_length / frame.length < 0.7  # dashed: gaps between the dashes
    # a flood polygon has no map edge
    flood = gpd.GeoDataFrame(
        {"class_label": ["flood"], "class_rank": [1]},
        geometry=[shapely.box(12.3, 42.9, 12.5, 43.2)],
        crs=4326,
    )
    assert map_edge_paths(flood) == []


def test_base_layer_is_offline_countries_places_spaced():
    countries = pipeline.exposure.country_outlines((11.0, 41.0, 15.0, 44.5))
    assert {"ITA"} <= set(countries["iso_a3"])
    fine = ROOT / "data" / "basemap" / "italy_outline.geojson"
    land = base_layers(countries, [fine])[0].data["features"]
    # Italy drawn once, from the finer shipped outline (not Natural Earth's too)
    assert len(land) == len(countries)  # NE Italy replaced by the shipped one
    places = pipeline.exposure.place_names((11.0, 41.0, 15.0, 44.5), 200)
    kept = spaced_places(places, 0.3, 15)
    assert 0 < len(kept) <= 15 and kept["name"].iloc[0] == "Rome"
    xy = kept[["lon", "lat"]].to_numpy()
    gaps = [
        np.hypot((a[0] - b[0]) * np.cos(np.radians(a[1])), a[1] - b[1])
        for i, a in enumerate(xy)
        for b in xy[i + 1 :]
    ]
    assert min(gaps) >= 0.3
    labels = place_layers(kept)[1]
    assert labels.type == "TextLayer" and labels.data[0]["label"] == "Rome"
    assert pipeline.exposure.basemap_attribution().startswith("Country outlines: Natural Earth")


@pytest.fixture
def app(tmp_path, release, monkeypatch) -> AppTest:
    pipeline.write_release(release, tmp_path / "exact.release.parquet")
    monkeypatch.setenv("CRISIS_EXPOSURE_RELEASE_DIR", str(tmp_path))
    monkeypatch.setenv("CRISIS_EXPOSURE_STEWARD", "0")
    monkeypatch.delenv("CRISIS_EXPOSURE_BASEMAP_URL", raising=False)
    return AppTest.from_file(APP, default_timeout=120)


def test_page_shows_the_map_at_once_and_only_the_settings_that_apply(app, release):
    """Before: nothing until Run was pressed, and ACLED settings showed for an earthquake."""
    at = app.run()
    at.switch_page("app_pages/exposure.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [b for b in at.button if "Run" in str(b.label)]
    assert at.metric  # the headline, computed at once for the default footprint
    keys = {w.key for w in at.number_input} | {w.key for w in at.date_input}
    assert "exposure_buffer" not in keys and "exposure_date_from" not in keys
    assert not [s for s in at.selectbox if s.key == "exposure_raster_kind"]
    drawn = decks(at)
    assert len(drawn) == 1
    payload = drawn[0]
    types = {layer["@@type"] for layer in payload["layers"]}
    assert {"H3HexagonLayer", "GeoJsonLayer", "PathLayer", "TextLayer"} <= types
    classes = machine_columns(pd.DataFrame(at.dataframe[0].value)).set_index("hazard_class")
    rows = cell_rows(payload)
    for label, total in classes.iterrows():
        assert (
            sum(c[3] for r in rows for c in r["by_class"] if c[0] == label) == total["persons_high"]
        )
    caption = " ".join(c.value for c in at.caption)
    assert "Natural Earth" in caption and "GeoNames" in caption and "dashed frame" in caption
    # an ACLED export brings its settings
    acled = b"event_date,event_type,latitude,longitude,fatalities,iso3,notes\n"
    acled += b"9-May-20,Battles,42.79,13.09,1,ITA,x\n"
    at.file_uploader(key="exposure_uploads").upload("acled.csv", acled, "text/csv")
    at.run()
    assert [w for w in at.number_input if w.key == "exposure_buffer"]


def test_legend_labels_from_files_are_text_not_markup():
    """Before: a class named "[x](evil.org)" became a link in the map legend (HTML markdown)."""
    from geo.viz.legends import LegendEntry, legend_html

    legend = legend_html("<i>t</i>", [LegendEntry((1, 2, 3), "[x](evil.org) <b> it's *a*")])
    assert "[x](" not in legend and "<b>" not in legend and "<i>" not in legend
    assert "&#91;x&#93;&#40;evil.org&#41; &lt;b&gt; it&#x27;s &#42;a&#42;" in legend


def framed_bounds(view: dict, width: int, height: int) -> tuple[float, float, float, float]:
    """Return the (west, south, east, north) a deck's view shows in a width × height map."""
    scale = 512 * 2 ** view["zoom"]
    half_lon = width * 360 / scale / 2
    y = np.log(np.tan(np.pi / 4 + np.radians(view["latitude"]) / 2))
    half_y = height * np.pi / scale
    south, north = (np.degrees(2 * np.arctan(np.exp(y + d)) - np.pi / 2) for d in (-half_y, half_y))
    return (view["longitude"] - half_lon, south, view["longitude"] + half_lon, north)


@pytest.mark.parametrize(("narrow", "width"), [(False, 1000), (True, 350)])
@pytest.mark.parametrize("page", ["app_pages/map.py", "app_pages/exposure.py"])
def test_maps_frame_the_whole_shakemap_on_a_phone_too(app, page, narrow, width):
    """Before: at 390 px the view framed for 1000 px cut the ShakeMap's dashed edge."""
    at = app.run()
    at.session_state["narrow_viewport"] = narrow  # what the browser's probe reports
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    (deck,) = decks(at)
    view = deck["initialViewState"]
    west, south, east, north = framed_bounds(view, width, 560)
    edge_west, edge_south, edge_east, edge_north = NORCIA_EDGE
    assert west <= edge_west and east >= edge_east, (west, east)
    assert south <= edge_south and north >= edge_north, (south, north)
    # and not needlessly far out: the frame takes most of the map's width or height
    assert (edge_east - edge_west) / (east - west) > 0.7 or (
        (edge_north - edge_south) / (north - south) > 0.7
    )
