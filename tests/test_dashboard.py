"""AppTest checks of every dashboard page: payloads and downloads hold only released values."""

from __future__ import annotations

import io
import json
import re
import threading
import zipfile
from pathlib import Path

import geopandas as gpd
import h3
import pandas as pd
import pytest
import shapely
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from geo.exposure_table import AREA_SENTENCE, OUTSIDE_AREAS, ROW_RANGES_SENTENCE, TRUTH_SENTENCE
from geo.io.footprints import read_footprint
from geo.noise import noise_bound
from geo.pipeline import compute_exposure, read_release, write_release
from geo.release import ReleasePolicy, protect
from geo.tools.classes import to_bands
from geo.viz.cells import BREAKDOWN_FILTERS, MAX_MAP_CELLS, release_to_map_cells
from geo.viz.layers import CELL_FIELDS
from tests.export_files import machine_columns, read_exposure_csv
from tests.factories import clustered_records, registration_row, write_rows
from tests.footprint_files import write_cap_alert, write_ems_grading_zip, write_nested_zones
from tests.map_decks import decks

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard.py")
NORCIA_MMI = ROOT / "data" / "footprints" / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
FORBIDDEN = re.compile(
    r"lat(itude)?$|^lon(gitude)?$|^lng$|record_id|record_key|name$|phone|e_?mail|passport|"
    r"address|birth|^age$|family_members|vulnerabilities|consent|source|updated_at",
    re.IGNORECASE,
)
# Keys allowed in the map: released fields, layer styling and deck.gl settings.
ALLOWED_NAMED_KEYS = {"class_label"}
TIMEOUT = 60


@pytest.fixture(scope="module")
def release_dir(tmp_path_factory) -> Path:
    """Two small releases: the public one (all nationalities) and an embassy's (ROU)."""
    folder = tmp_path_factory.mktemp("releases")
    records = clustered_records(6000, seed=3)
    write_release(protect(records, ReleasePolicy(k=5)), folder / "a_public.release.parquet")
    embassy = ReleasePolicy(k=5, nationalities=("ROU",))
    write_release(protect(records, embassy), folder / "b_embassy_rou.release.parquet")
    return folder


@pytest.fixture
def app(release_dir, monkeypatch) -> AppTest:
    """The dashboard over the test releases, steward mode, no tile basemap."""
    monkeypatch.setenv("CRISIS_EXPOSURE_RELEASE_DIR", str(release_dir))
    monkeypatch.setenv("CRISIS_EXPOSURE_STEWARD", "1")
    monkeypatch.delenv("CRISIS_EXPOSURE_BASEMAP_URL", raising=False)
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


@pytest.fixture
def media(monkeypatch) -> list[MediaFileManager]:
    """Record the media file managers AppTest creates, so download payloads can be read."""
    managers: list[MediaFileManager] = []

    class Recording(MediaFileManager):
        def __init__(self, storage) -> None:
            super().__init__(storage)
            managers.append(self)

    monkeypatch.setattr("streamlit.testing.v1.app_test.MediaFileManager", Recording)
    return managers


def public_release(release_dir: Path):
    return read_release(release_dir / "a_public.release.parquet")


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def deck(at: AppTest, index: int = 0) -> dict:
    return decks(at)[index]


def all_keys(value) -> set[str]:
    """Every dict key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value) | set().union(*(all_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(all_keys(v) for v in value)) if value else set()
    return set()


def check_no_identifier_keys(value) -> None:
    bad = {k for k in all_keys(value) if FORBIDDEN.search(k) and k not in ALLOWED_NAMED_KEYS}
    assert not bad, f"identifier or raw field in the payload: {bad}"


def parse_nationalities(text: str) -> tuple[dict[str, int], int]:
    """'Romania (ROU): 1,234\nAlbania (ALB): 56\nand 3 more' → ({'ROU': 1234, 'ALB': 56}, 3)."""
    parts = text.split("\n")
    more = int(parts.pop()[4:].removesuffix(" more")) if parts[-1].startswith("and ") else 0
    pairs = [part.rsplit(": ", 1) for part in parts]
    codes = [label[-4:-1] if label.endswith(")") else label for label, _ in pairs]
    return {c: int(v.replace(",", "")) for c, (_, v) in zip(codes, pairs, strict=True)}, more


def check_cells_are_released(payload: dict, values: pd.DataFrame) -> int:
    """Check each drawn cell against released values (h3_cell, nationality, persons, cases)."""
    released = values.set_index(["h3_cell", "nationality"])
    drawn = 0
    for layer in payload["layers"]:
        if layer["@@type"] != "H3HexagonLayer":
            continue
        assert layer["extruded"] is False
        # Each drawn cell holds its released fields only, by their short names.
        assert all(set(row) == set(CELL_FIELDS.values()) for row in layer["data"])
        rows = [{name: row[short] for name, short in CELL_FIELDS.items()} for row in layer["data"]]
        resolutions = {h3.get_resolution(row["h3_cell"]) for row in rows}
        assert len(resolutions) == 1, "one layer per resolution and colour"
        for row in rows:
            per_nationality, more = parse_nationalities(row["nationalities"])
            for code, persons in per_nationality.items():
                assert released.loc[(row["h3_cell"], code), "persons"] == persons
            groups = released.loc[row["h3_cell"]]
            groups = groups[groups["persons"] > 0]
            assert len(groups) == len(per_nationality) + more
            # The listed ones are the largest.
            largest = groups["persons"].nlargest(len(per_nationality))
            assert sorted(per_nationality.values()) == sorted(largest)
            assert row["persons"] == groups["persons"].sum()
            assert row["cases"] == groups["cases"].sum()
            drawn += 1
    return drawn


def downloads(at: AppTest, managers: list[MediaFileManager]) -> dict[str, bytes]:
    """Return every download button's payload by its key, as a click would write it.

    The exposure page writes its files on click (deferred); a static button has a URL.
    """
    manager = managers[-1]
    payloads = {}
    for button in at.get("download_button"):
        url = button.proto.url
        if button.proto.deferred_file_id:
            url = manager.execute_deferred(button.proto.deferred_file_id)
        file_id = url.rsplit("/", 1)[-1].split(".", 1)[0]
        content = manager._storage.get_file(file_id).content
        payloads[button.proto.id.rsplit("-", 1)[-1]] = content
    return payloads


def test_map_payload_holds_only_released_values(app, release_dir):
    at = app.run()
    no_exception(at)
    release = public_release(release_dir)
    payload = deck(at)
    assert payload["tiles"] is None  # no basemap, no network request
    assert "http" not in json.dumps(payload)
    check_no_identifier_keys(payload["layers"])
    drawn = check_cells_are_released(payload, release.groups)
    assert drawn == release.groups["h3_cell"].nunique()
    types = [layer["@@type"] for layer in payload["layers"]]
    assert types[:2] == ["GeoJsonLayer", "GeoJsonLayer"]  # offline outlines first
    assert types[-1] == "TextLayer"  # place names over everything
    ids = [layer["id"] for layer in payload["layers"]]
    # the footprint over the cells, its ShakeMap edge a dashed frame, not a class outline
    assert ids.index("footprint-outline") > max(i for i, t in enumerate(types) if "H3" in t)
    assert "map-edge" in ids
    footprint = payload["layers"][ids.index("footprint-outline")]["data"]["features"]
    properties = {k for f in footprint for k in f["properties"]}
    assert properties == {"fill", "line"}
    shown = {m.label: m.value for m in at.metric}
    assert shown["Persons shown"] == f"{release.groups['persons'].sum():,}"
    assert "Persons per cell" in " ".join(m.value for m in at.markdown)


def test_a_first_breakdown_filter_is_drawn_in_advance_with_the_same_figures(
    app, release_dir, monkeypatch
):
    # A first filter change at 10M waited 0.17 s for the cells of its category and
    # 20-30 ms for their layers; the background worker now counts every category of the
    # whole release after the first map, and writes its layers.
    from app_pages import map_drawings

    map_drawings.wait_for_map_preparation()  # an earlier test's drawing must not be counted here
    called_by = []

    def counted(function):
        def counting(*args, **kwargs):
            called_by.append((function.__name__, threading.current_thread().name))
            return function(*args, **kwargs)

        return counting

    for name in ("release_to_map_cells", "cells_to_layers"):
        monkeypatch.setattr(map_drawings, name, counted(getattr(map_drawings, name)))
    map_drawings.map_categories.clear()  # another test may have drawn them in this process
    map_drawings.map_drawing.clear()
    at = app.run()
    no_exception(at)
    map_drawings.wait_for_map_preparation()
    categories = sum(len(c) for c in BREAKDOWN_FILTERS.values())
    for function in ("release_to_map_cells", "cells_to_layers"):
        in_advance = [
            thread
            for name, thread in called_by
            if name == function and thread.startswith("crisis-exposure-map")
        ]
        assert len(in_advance) == categories, function
    called_by.clear()
    at.selectbox(key="map_dimension").set_value("Sex").run()
    at.selectbox(key="map_category_sex").set_value("M").run()
    no_exception(at)
    assert called_by == []  # nothing computed while the user waits
    release = public_release(release_dir)
    direct = release_to_map_cells(release, (), "sex", "M", MAX_MAP_CELLS)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Persons shown"] == f"{int(direct.cells['persons'].sum()):,}"
    drawn = {
        row["h"]: row["p"]
        for layer in deck(at)["layers"]
        if layer["@@type"] == "H3HexagonLayer"
        for row in layer["data"]
    }
    assert drawn == dict(zip(direct.cells["h3_cell"], direct.cells["persons"], strict=True))


def test_map_sums_fine_cells_into_coarser_hexagons_beyond_the_limit(app, release_dir, monkeypatch):
    release = public_release(release_dir)
    monkeypatch.setattr("geo.viz.cells.MAX_MAP_CELLS", 60)
    at = app.run()
    no_exception(at)
    payload = deck(at)
    check_no_identifier_keys(payload["layers"])
    caption = " ".join(c.value for c in at.caption)
    released_cells = release.groups["h3_cell"].nunique()
    match = re.search(r"cells finer than H3 resolution (\d) are summed", caption)
    assert match and f"{released_cells:,} released cells are drawn as" in caption
    target = int(match.group(1))
    # Every drawn value is a sum of released values: those of the groups in the hexagon.
    groups = release.groups.assign(
        h3_cell=[
            h3.cell_to_parent(c, target) if r > target else c
            for c, r in zip(release.groups["h3_cell"], release.groups["resolution"], strict=True)
        ]
    )
    summed = groups.groupby(["h3_cell", "nationality"], as_index=False)[["persons", "cases"]].sum()
    drawn = check_cells_are_released(payload, summed)
    assert drawn == summed["h3_cell"].nunique() <= 60
    at.toggle(key="map_every_cell").set_value(True).run()
    no_exception(at)
    assert check_cells_are_released(deck(at), release.groups) == released_cells
    assert "are summed" not in " ".join(c.value for c in at.caption)


def map_place(at: AppTest) -> tuple[int, ...]:
    """The map's place in the page: its index in each block from the page down to it."""

    def place_in(block) -> tuple[int, ...] | None:
        for index, node in block.children.items():
            if node.type == "component_instance":
                return (index,)
            if hasattr(node, "children") and (inner := place_in(node)) is not None:
                return (index, *inner)
        return None

    return place_in(at.main)


def test_the_map_keeps_its_place_in_the_page_when_filters_change(app, monkeypatch):
    # The browser keeps a map (its WebGL context and compiled shaders) only while the
    # chart stays at the same place in the page; a filter that added or removed a
    # caption above it made a new map: 2 s of every rerun in software WebGL (measured).
    monkeypatch.setattr("geo.viz.cells.MAX_MAP_CELLS", 60)  # the "are summed" caption shows
    at = app.run()
    place = map_place(at)
    at.selectbox(key="map_dimension").set_value("Sex").run()  # adds the breakdown caption
    assert map_place(at) == place
    at.toggle(key="map_every_cell").set_value(True).run()  # removes the "summed" caption
    assert map_place(at) == place
    at.selectbox(key="map_dimension").set_value("All persons").run()
    no_exception(at)
    assert map_place(at) == place


def test_the_release_picker_names_no_server_folder(app, release_dir):
    at = app.run()
    picker = at.selectbox(key="release_path")
    assert "release folder" in picker.help and str(release_dir) not in picker.help


def test_a_footprint_away_from_the_release_is_said_on_the_map(app):
    at = app.run()
    jakarta = "indonesia_jakarta_2007_flood_RW.shp"
    assert not any("does not overlap" in w.value for w in at.warning)
    at.selectbox(key="map_footprint").set_value(jakarta).run()
    no_exception(at)
    said = [w.value for w in at.warning]
    assert f"{jakarta} does not overlap the released cells: the map shows both." in said


def test_map_filters_use_released_breakdowns_and_keep_the_view(app, release_dir):
    at = app.run()
    view = deck(at)["initialViewState"]
    release = public_release(release_dir)
    at.multiselect(key="map_nationalities").set_value(["ROU", "ALB"]).run()
    at.selectbox(key="map_dimension").set_value("Sex").run()
    at.selectbox(key="map_category_sex").set_value("M").run()
    no_exception(at)
    payload = deck(at)
    assert payload["initialViewState"] == view
    check_no_identifier_keys(payload["layers"])
    groups = release.groups[release.groups["nationality"].isin(["ROU", "ALB"])]
    sex = release.breakdown("sex")
    published = sex[["h3_cell", "nationality"]].drop_duplicates()
    available = groups.merge(published, on=["h3_cell", "nationality"])
    males = sex[(sex["category"] == "M") & sex["nationality"].isin(["ROU", "ALB"])]
    drawn = check_cells_are_released(payload, males)
    # A noisy category can show 0 persons: such cells have nothing to draw.
    assert drawn == males.loc[males["persons"] > 0, "h3_cell"].nunique()
    # A noisy release publishes every breakdown: no group is "not available", and the
    # page says instead what a noisy category can show.
    assert len(groups) == len(available)
    caption = " ".join(c.value for c in at.caption)
    assert "released groups have no published" not in caption
    assert "Each hexagon shows its released count for sex M." in caption
    assert "even more than the hexagon's count for all persons" in caption
    # The tooltip says what the hovered figures count.
    tooltip = payload["tooltip"]
    assert tooltip["text"].startswith(
        "Released in this hexagon (ROU, ALB, sex M): persons {p}, cases {c}"
    )


def test_exposure_page_headline_table_and_downloads(app, release_dir, media):
    at = app.run()
    at.switch_page("app_pages/exposure.py").run()
    no_exception(at)
    assert "true number lies between low and high" in at.markdown[0].value
    assert at.multiselect(key="exposure_footprints").value == [NORCIA_MMI.name]
    at.run()
    no_exception(at)
    series = [c.value for c in at.caption if "for its audience" in c.value]
    assert series == [
        "This release is release 1 of 1 here for its audience (all), made at store version 0, "
        "the newest."
    ]
    release = public_release(release_dir)
    exposure = compute_exposure(release, to_bands(read_footprint(NORCIA_MMI).classes))
    expected = exposure.table
    headline = {m.label: m.value for m in at.metric}
    worst = exposure.headline()
    assert headline["Low (cells entirely inside)"] == f"{worst['persons_low']:,}"
    assert headline["Estimate"] == f"{worst['persons_estimate']:,}"
    assert headline["High (cells touching)"] == f"{worst['persons_high']:,}"
    # The release is noisy: the page says where the truth lies, and what it withholds.
    scale = release.metadata["policy"]["noise_scale"]
    withheld = release.metadata["dropped"]["persons"]
    captions = [c.value for c in at.caption]
    said = (
        f"The release withholds {withheld:,} persons across all its nationalities, whatever a "
        "page or table filters (groups still under k = 5 cases"
    )
    beside_headline = next(c for c in captions if c.startswith("The true number lies"))
    assert "between low and high with 99% confidence" in beside_headline
    assert f"random noise (scale {scale:.3g} for cases" in beside_headline
    assert said in beside_headline
    # Under the rows: their ranges are not parts of the class's range; the withheld persons
    # are in none of them.
    under_rows = f"{ROW_RANGES_SENTENCE}. {said}"
    assert any(c.startswith(under_rows) and "in no row of these tables" in c for c in captions)
    assert "with 99% confidence" in at.markdown[0].value

    files = downloads(at, media)
    assert set(files) == {
        "download_csv",
        "download_csvw",
        "download_xlsx",
        "download_hxl",
        "download_geojson",
        "download_report",  # the one-page report (tests/test_report.py checks its text)
    }
    assert files["download_report"].startswith(b"%PDF-")
    csv = read_exposure_csv(files["download_csv"])
    pd.testing.assert_frame_equal(csv, expected, check_dtype=False)
    sidecar = json.loads(files["download_csvw"])
    titles = pd.read_csv(io.BytesIO(files["download_csv"])).columns.tolist()
    assert [c["titles"] for c in sidecar["tableSchema"]["columns"]] == titles
    assert sidecar["url"].endswith(".csv")
    hxl_lines = files["download_hxl"].decode("utf-8-sig").splitlines()
    assert hxl_lines[0].startswith("Hazard class,")
    assert hxl_lines[1].startswith("#severity+name,")
    hxl = machine_columns(pd.read_csv(io.StringIO("\n".join(hxl_lines[:1] + hxl_lines[2:]))))
    pd.testing.assert_frame_equal(hxl, expected, check_dtype=False)
    xlsx = pd.read_excel(io.BytesIO(files["download_xlsx"]), sheet_name=None)
    pd.testing.assert_frame_equal(machine_columns(xlsx["exposure"]), expected, check_dtype=False)
    for frame in (csv, hxl, xlsx["exposure"]):
        assert not [c for c in frame.columns if FORBIDDEN.search(c)]

    # low and high are sums of released values, widened by the noise of the groups summed
    totals = release.groups.groupby("nationality")["persons"].sum()
    sums = exposure.sums.set_index(["hazard_class", "nationality"])
    keys = pd.MultiIndex.from_frame(csv[["hazard_class", "nationality"]])
    margin = [noise_bound(int(n), 2 * scale) for n in sums.loc[keys, "groups_high"]]
    assert (csv["persons_high"] - margin == sums.loc[keys, "persons_high"].to_numpy()).all()
    assert (sums["persons_high"] <= sums.index.get_level_values(1).map(totals)).all()
    assert (csv["persons_low"] <= csv["persons_estimate"]).all()
    assert (csv["persons_estimate"] <= csv["persons_high"]).all()

    geojson = json.loads(files["download_geojson"])
    check_no_identifier_keys(geojson["features"])
    released = release.groups.set_index(["h3_cell", "nationality"])
    for feature in geojson["features"]:
        props = feature["properties"]
        group = released.loc[(props["h3_cell"], props["nationality"])]
        assert (props["persons"], props["cases"]) == (group["persons"], group["cases"])
        assert props["resolution"] == group["resolution"]


def test_exposure_bad_upload_shows_a_message_not_a_traceback(app):
    at = app.run()
    at.switch_page("app_pages/exposure.py").run()
    at.file_uploader(key="exposure_uploads").upload("broken.geojson", b"{not json", "text/plain")
    at.run()
    # the upload replaces the footprint chosen before
    assert at.multiselect(key="exposure_footprints").value == ["broken.geojson (uploaded)"]
    at.run()
    no_exception(at)
    errors = [e.value for e in at.error]
    assert errors and "broken.geojson" in errors[0]
    assert "Traceback" not in errors[0]


def flood_geojson(box: tuple[float, float, float, float]) -> bytes:
    """A one-polygon flood footprint as GeoJSON bytes."""
    flood = gpd.GeoDataFrame({"depth": ["deep"]}, geometry=[shapely.box(*box)], crs=4326)
    return flood.to_json().encode()


def test_an_upload_replaces_the_default_footprint_unless_combining(app):
    """Before: the shipped Norcia ShakeMap stayed selected beside the upload, and its
    MMI IX was the headline of a run the user meant for their own file."""
    at = app.run()
    at.switch_page("app_pages/exposure.py").run()
    assert at.multiselect(key="exposure_footprints").value == [NORCIA_MMI.name]
    uploader = at.file_uploader(key="exposure_uploads")
    uploader.upload("flood.geojson", flood_geojson((12.3, 42.9, 12.5, 43.2)), "application/json")
    at.run()
    assert at.multiselect(key="exposure_footprints").value == ["flood.geojson (uploaded)"]
    at.run()
    no_exception(at)
    assert at.subheader[0].value.endswith(": flood")  # the upload's class, not MMI IX
    # Several footprints are combined only when the user asks.
    at.multiselect(key="exposure_footprints").set_value(
        [NORCIA_MMI.name, "flood.geojson (uploaded)"]
    ).run()
    assert not at.metric  # several footprints, not combined: nothing is computed
    assert any("Combine several footprints" in i.value for i in at.info)
    at.checkbox(key="exposure_combine").check().run()
    assert at.metric  # combined: computed at once, no Run button
    at.file_uploader(key="exposure_uploads").upload(
        "second.geojson", flood_geojson((12.6, 42.9, 12.8, 43.2)), "application/json"
    )
    at.run()
    assert at.multiselect(key="exposure_footprints").value == [
        NORCIA_MMI.name,
        "flood.geojson (uploaded)",
        "second.geojson (uploaded)",
    ]


def test_uploaded_boundaries_break_the_exposure_down_with_an_outside_row(app, tmp_path):
    """A zipped shapefile of the Perugia municipalities, uploaded; then boundaries elsewhere."""
    areas = gpd.read_file(PERUGIA)[["name", "prov_acr", "geometry"]]
    areas.to_file(tmp_path / "perugia.shp")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        for suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            bundle.write(tmp_path / f"perugia{suffix}", f"perugia{suffix}")
    at = app.run()
    at.switch_page("app_pages/exposure.py").run()
    upload = at.file_uploader(key="exposure_admin_upload")
    upload.upload("perugia.zip", archive.getvalue(), "application/zip")
    at.run()
    assert at.selectbox(key="exposure_admin").value == "perugia.zip (uploaded)"
    at.selectbox(key="exposure_admin_field_perugia.zip (uploaded)").set_value("name")
    at.run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    # the page shows the exports' titles; read back under the table's names
    by_area, detail = (machine_columns(at.dataframe[i].value) for i in (1, 2))
    assert OUTSIDE_AREAS in set(by_area["name"]) and OUTSIDE_AREAS in set(detail["name"])
    assert "Norcia" in set(detail["name"])
    class_totals = machine_columns(at.dataframe[0].value)
    class_totals = class_totals.set_index("hazard_class")["persons_estimate"]
    summed = by_area.groupby("hazard_class")["persons_estimate"].sum()
    assert summed.to_dict() == class_totals.loc[summed.index].to_dict()
    assert AREA_SENTENCE in [c.value for c in at.caption]
    assert any("outside the administrative boundaries" in w.value for w in at.warning)

    far = gpd.GeoDataFrame({"name": ["Ankara"]}, geometry=[shapely.box(32, 39.5, 33, 40.5)])
    at.file_uploader(key="exposure_admin_upload").upload(
        "ankara.geojson", far.set_crs(4326).to_json().encode(), "application/json"
    )
    at.run()
    assert at.selectbox(key="exposure_admin").value == "ankara.geojson (uploaded)"
    at.run()
    no_exception(at)
    warnings = [w.value for w in at.warning]
    assert any("do not overlap the footprint" in w for w in warnings), warnings


def test_exposure_by_admin_area_and_cumulative(app):
    at = app.run()
    at.switch_page("app_pages/exposure.py").run()
    at.radio(key="exposure_mode").set_value("Cumulative (at least)")
    at.selectbox(key="exposure_weighting").set_value("area")
    at.selectbox(key="exposure_admin").set_value("italy_regions_limits_IT_regions.geojson").run()
    at.run()
    no_exception(at)
    table = machine_columns(at.dataframe[2].value)
    assert "reg_name" in table.columns
    assert set(table["reg_name"]) >= {"Umbria"}
    labels = set(table["hazard_class"])
    assert "MMI ≥ VI" in labels
    assert all(label.startswith("MMI ≥") or label == "MMI: whole map" for label in labels)


def test_release_page_shows_published_figures_and_switches(app, release_dir):
    at = app.run()
    at.switch_page("app_pages/release.py").run()
    no_exception(at)
    release = public_release(release_dir)
    # signed with the test key, which this dashboard is not told to trust
    fingerprint = release.metadata["signature"]["fingerprint"]
    assert [w.value for w in at.warning if "unverified" in w.value][0].startswith(
        f"Signature valid but unverified: signed by key {fingerprint}"
    )
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Persons published"] == f"{release.metadata['published']['persons']:,}"
    assert metrics["Persons withheld"] == (f"{release.metadata['dropped']['persons']:,}")
    by_nationality = at.dataframe[0].value
    assert by_nationality["persons (sum of released)"].sum() == release.groups["persons"].sum()
    # Method 2 in plain words, with the accuracy of one published count.
    scale = release.metadata["policy"]["noise_scale"]
    method = " ".join(m.value for m in at.markdown)
    assert "Every count carries random noise" in method
    assert (
        f"Each published count of cases is within ±{noise_bound(1, scale)} of the truth, and "
        f"each count of persons within ±{noise_bound(1, 2 * scale)}, with 99% confidence"
    ) in " ".join(method.split())
    assert "only when every" not in method  # method 1's withholding rule is not described
    assert at.table[0].value.loc["Protection method", "value"] == (
        f"random noise (method 2), scale {scale:.3g} for cases, {2 * scale:.3g} for persons"
    )
    at.sidebar.selectbox[0].set_value(str(release_dir / "b_embassy_rou.release.parquet")).run()
    no_exception(at)
    embassy = read_release(release_dir / "b_embassy_rou.release.parquet")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Persons published"] == f"{embassy.metadata['published']['persons']:,}"
    assert list(at.dataframe[0].value["name"]) == ["Romania (ROU)"]


def test_pages_of_an_exact_release_describe_method_1(monkeypatch, tmp_path):
    release = protect(clustered_records(6000, seed=3), ReleasePolicy(k=5, noise_scale=0))
    write_release(release, tmp_path / "exact.release.parquet")
    monkeypatch.setenv("CRISIS_EXPOSURE_RELEASE_DIR", str(tmp_path))
    monkeypatch.delenv("CRISIS_EXPOSURE_BASEMAP_URL", raising=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/release.py").run()
    no_exception(at)
    method = " ".join(" ".join(m.value for m in at.markdown).split())
    assert "published for a group only when every category it has counts at least k" in method
    assert "Each published count is the true count." in method
    assert "random noise" not in method
    at.switch_page("app_pages/exposure.py").run()
    at.run()
    no_exception(at)
    withheld = f"The release withholds {release.metadata['dropped']['persons']:,} persons"
    beside_headline = next(c.value for c in at.caption if c.value.startswith(TRUTH_SENTENCE))
    assert "confidence" not in beside_headline and withheld in beside_headline


def test_data_page_ingests_builds_and_previews(app, tmp_path):
    rows = [
        registration_row(f"r{i}", nationality="ROU" if i % 2 else "ALB", family_members=str(i % 3))
        for i in range(80)
    ]
    rows += [registration_row("bad1", latitude="north"), registration_row("bad2", nationality="")]
    raw = write_rows(tmp_path / "consular.csv", rows).read_bytes()
    at = app.run()
    at.switch_page("app_pages/data.py").run()
    at.file_uploader(key="data_records").upload("consular.csv", raw, "text/csv")
    at.run()
    at.button(key="data_ingest").click().run()
    no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Rows read"], metrics["Accepted"], metrics["Rejected"]) == ("82", "80", "2")
    page_text = " ".join(m.value for m in at.markdown)
    assert "full_name" in page_text and "phone" in page_text  # dropped, as column names
    assert "Test Person" not in page_text and "+39" not in page_text  # never their values
    at.number_input(key="data_k").set_value(5)
    at.number_input(key="data_base").set_value(6)
    at.text_input(key="data_name").set_value("steward test")
    at.button(key="data_build").click().run()
    no_exception(at)
    assert at.session_state["release_path"].endswith("steward_test.release.parquet")
    built = Path(at.session_state["release_path"])
    session_folder = Path(at.session_state["_session_dir"].name)
    assert built.parent.parent == session_folder
    assert not list((session_folder / "uploads").iterdir())  # raw uploads are not kept
    assert "k=5 cases" in at.code[0].value
    # the footprint previewer
    at.file_uploader(key="data_footprints").upload(
        NORCIA_MMI.name, NORCIA_MMI.read_bytes(), "application/json"
    )
    at.run()
    no_exception(at)
    assert "MMI IX" in set(at.dataframe[-1].value["class_label"])
    preview = deck(at, -1)
    check_no_identifier_keys(preview["layers"])
    assert not any(layer["@@type"] == "H3HexagonLayer" for layer in preview["layers"])


def test_steward_page_is_off_when_configured(app, monkeypatch):
    monkeypatch.setenv("CRISIS_EXPOSURE_STEWARD", "0")
    at = app.run()
    no_exception(at)
    with pytest.raises(Exception, match="(?i)page"):
        at.switch_page("app_pages/data.py").run()


def test_no_release_says_how_to_get_one(app, monkeypatch, tmp_path):
    monkeypatch.setenv("CRISIS_EXPOSURE_RELEASE_DIR", str(tmp_path))
    at = app.run()
    no_exception(at)
    assert "No release file" in at.info[0].value
    assert not decks(at)


def test_the_servers_arrow_buffers_come_from_the_c_librarys_heap(app):
    # Arrow's mimalloc pool kept about 55 MiB of a 10M release's freed reading buffers
    # for the server's life; the C library's heap gives them back (give_back_memory).
    # benchmarks/dashboard.py at 10M: 630 -> 546 MiB after an exposure.
    import pyarrow as pa

    no_exception(app.run())
    assert pa.default_memory_pool().backend_name == "system"


def test_every_page_run_gives_freed_memory_back_even_when_it_stops_early(
    app, monkeypatch, tmp_path
):
    # A run frees what it built (the map's layers and JSON, an overlay's copies) into the
    # C library's heap, which kept it for the server's life: at 10M, 521 -> 453 MiB
    # resident after the first map, 620 -> 508 MiB after two "every cell" maps.
    import geo.process_memory

    asked = []
    monkeypatch.setattr(geo.process_memory, "give_back_memory", lambda: asked.append(1))
    at = app.run()
    no_exception(at)
    assert len(asked) == 1  # the Map page
    at.switch_page("app_pages/exposure.py").run()
    no_exception(at)
    assert len(asked) == 2
    # No release: the Map page stops early (st.stop) and still gives memory back.
    monkeypatch.setenv("CRISIS_EXPOSURE_RELEASE_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert "No release file" in at.info[0].value
    assert len(asked) == 3


def test_tile_basemap_only_when_configured(app, monkeypatch):
    monkeypatch.setenv("CRISIS_EXPOSURE_BASEMAP_URL", "https://tiles.example.org/{z}/{x}/{y}.png")
    at = app.run()
    payload = deck(at)
    assert payload["tiles"] == "https://tiles.example.org/{z}/{x}/{y}.png"
    at.switch_page("app_pages/exposure.py").run()
    no_exception(at)
    assert deck(at)["tiles"] == "https://tiles.example.org/{z}/{x}/{y}.png"
    land = next(layer for layer in payload["layers"] if layer["id"] == "basemap-land")
    assert land["filled"] is False  # the tiles show through


def test_exposure_acled_upload_with_a_date_window(app):
    import datetime

    acled = (
        b"event_date,event_type,latitude,longitude,fatalities,iso3,notes\n"
        b"9-May-20,Battles,42.79,13.09,1,ITA,x\n10-May-20,Protests,43.1,12.4,0,ITA,y\n"
    )
    at = app.run()
    at.switch_page("app_pages/exposure.py").run()
    at.file_uploader(key="exposure_uploads").upload("acled.csv", acled, "text/csv")
    at.run()
    at.multiselect(key="exposure_footprints").set_value(["acled.csv (uploaded)"]).run()
    at.date_input(key="exposure_date_from").set_value(datetime.date(2020, 5, 10)).run()
    at.run()
    no_exception(at)
    assert not at.error
    classes = {row for table in at.dataframe for row in table.value.get("Hazard class", [])}
    assert "Protests" in classes and "Battles" not in classes  # the 9 May event is outside
    at.date_input(key="exposure_date_from").set_value(datetime.date(2021, 1, 1)).run()
    at.run()
    errors = [e.value for e in at.error]
    assert errors and "acled.csv: no ACLED event between 2021-01-01" in errors[0]


NORCIA_PGA = NORCIA_MMI.with_name(NORCIA_MMI.name.replace("_mmi", "_pga"))
REGIONS = ROOT / "data" / "admin" / "italy_regions_limits_IT_regions.geojson"
PERUGIA = ROOT / "data" / "admin" / "italy_perugia_municipalities_limits_P_54.geojson"
ADMIN_FIELDS = {REGIONS: "reg_name", PERUGIA: "name"}
SAME_REQUESTS = {
    "banded": ([NORCIA_MMI], False, None),
    "cumulative": ([NORCIA_MMI], True, None),
    "admin": ([NORCIA_MMI], False, REGIONS),
    "admin with an outside row": ([NORCIA_MMI], False, PERUGIA),
    "combined": ([NORCIA_MMI, NORCIA_PGA], False, None),
    "combined cumulative by admin": ([NORCIA_MMI, NORCIA_PGA], True, REGIONS),
    # products written in code (tests/footprint_files.py), uploaded on the page
    "EMS grading": (["ems"], False, None),
    "CAP alert cumulative by admin": (["cap"], True, REGIONS),
}
GENERATED = {
    "ems": write_ems_grading_zip,
    "cap": lambda folder: write_cap_alert(folder / "alert.xml"),
}


def page_exposure(at: AppTest, media, footprints, cumulative, admin) -> pd.DataFrame:
    """Run the Exposure page's request and return its CSV download as a frame."""
    at.switch_page("app_pages/exposure.py").run()
    at.checkbox(key="exposure_combine").set_value(len(footprints) > 1)
    shipped = ROOT / "data" / "footprints"
    names = []
    for path in footprints:
        if path.parent == shipped:
            names.append(path.name)
            continue
        at.file_uploader(key="exposure_uploads").upload(path.name, path.read_bytes(), "")
        at.run()
        names.append(f"{path.name} (uploaded)")
    at.multiselect(key="exposure_footprints").set_value(names)
    at.radio(key="exposure_mode").set_value("Cumulative (at least)" if cumulative else "Banded")
    at.selectbox(key="exposure_admin").set_value(admin.name if admin else "None").run()
    if admin:
        at.selectbox(key=f"exposure_admin_field_{admin.name}").set_value(ADMIN_FIELDS[admin])
    at.run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    return read_exposure_csv(downloads(at, media)["download_csv"])


@pytest.mark.slow
@pytest.mark.parametrize("request_name", list(SAME_REQUESTS))
def test_cli_and_page_give_the_same_table(request_name, app, release_dir, media, tmp_path):
    from geo.cli import main

    footprints, cumulative, admin = SAME_REQUESTS[request_name]
    footprints = [GENERATED[f](tmp_path) if isinstance(f, str) else f for f in footprints]
    out = tmp_path / "cli.csv"
    argv = ["exposure", "--release", str(release_dir / "a_public.release.parquet")]
    argv += [arg for path in footprints for arg in ("--hazard", str(path))]
    argv += ["--cumulative"] * cumulative + ["--out", str(out)]
    argv += ["--admin", str(admin), "--admin-field", ADMIN_FIELDS[admin]] if admin else []
    assert main(argv) == 0
    cli = read_exposure_csv(out)
    page = page_exposure(app.run(), media, footprints, cumulative, admin)
    assert len(cli) > 0
    pd.testing.assert_frame_equal(page, cli)
    if admin:  # the areas add up to the classes, with a row for what falls outside them
        outside = cli[ADMIN_FIELDS[admin]] == OUTSIDE_AREAS
        share = cli.loc[outside, "persons_estimate"].sum() / cli["persons_estimate"].sum()
        # Perugia's municipalities cover a corner of the footprint; the regions all of
        # it on land (only coastal cells' sea share, if any, falls outside them)
        assert outside.any() if admin == PERUGIA else share < 0.05
        keys = ["hazard_class", "nationality"]
        plain = cli.groupby(keys)["persons_estimate"].sum()
        argv = argv[: argv.index("--admin")]
        argv[argv.index("--out") + 1] = str(tmp_path / "classes.csv")
        assert main(argv) == 0
        classes = read_exposure_csv(tmp_path / "classes.csv")
        by_class = classes.set_index(keys)["persons_estimate"]
        assert plain.to_dict() == by_class.loc[plain.index].to_dict()


def test_unordered_classes_have_no_cumulative_view_on_either_side(app, capsys, tmp_path):
    """Regions named alphabetically: both the CLI and the page refuse 'or worse'."""
    from geo.cli import main

    argv = ["exposure", "--release", str(ROOT / "data" / "demo" / "central_italy.release.parquet")]
    argv += ["--hazard", str(REGIONS), "--class-field", "reg_name", "--cumulative"]
    assert main([*argv, "--out", str(tmp_path / "x.csv")]) == 2
    cli_message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "a cumulative view needs classes with an order" in cli_message
    assert not (tmp_path / "x.csv").exists()

    at = app.run()
    at.switch_page("app_pages/exposure.py").run()
    at.file_uploader(key="exposure_uploads").upload(
        REGIONS.name, REGIONS.read_bytes(), "application/geo+json"
    )
    at.run()
    at.multiselect(key="exposure_footprints").set_value([f"{REGIONS.name} (uploaded)"])
    at.text_input(key="exposure_class_field").set_value("reg_name")
    at.radio(key="exposure_mode").set_value("Cumulative (at least)")
    at.run()
    no_exception(at)
    errors = [" ".join(e.value.split()) for e in at.error]
    assert errors and errors[0] in cli_message


def test_class_order_on_the_page_gives_the_cli_table(app, media, release_dir, tmp_path):
    """The page's class-order control ranks unordered classes as --class-order does."""
    from geo.cli import main

    zones = write_nested_zones(tmp_path / "zones.geojson")
    order = "Red zone, Buffer, Watch"
    out = tmp_path / "cli.csv"
    argv = ["exposure", "--release", str(release_dir / "a_public.release.parquet")]
    argv += ["--hazard", str(zones), "--class-field", "zone", "--class-order", order]
    assert main([*argv, "--cumulative", "--out", str(out)]) == 0
    at = app.run()
    at.switch_page("app_pages/exposure.py").run()
    at.file_uploader(key="exposure_uploads").upload(zones.name, zones.read_bytes(), "")
    at.run()
    at.multiselect(key="exposure_footprints").set_value([f"{zones.name} (uploaded)"])
    at.text_input(key="exposure_class_field").set_value("zone")
    at.text_input(key="exposure_class_order").set_value(order)
    at.radio(key="exposure_mode").set_value("Cumulative (at least)")
    at.run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert "Red zone or worse" in at.subheader[0].value
    page = read_exposure_csv(downloads(at, media)["download_csv"])
    cli = read_exposure_csv(out)
    assert len(cli) > 0
    pd.testing.assert_frame_equal(page, cli)


def test_a_thin_footprint_puts_the_range_first_and_says_why(app, monkeypatch, tmp_path):
    """A strip 400 m wide over 5 km² cells: no confident point figure in the headline."""
    import json

    import shapely

    from tests.test_population import west_raster

    west_raster(tmp_path / "grid.tif", "EPSG:4326")
    monkeypatch.setenv("CRISIS_EXPOSURE_POPULATION", str(tmp_path / "grid.tif"))
    strip = shapely.LineString([(12.9, 42.83), (13.3, 42.83)]).buffer(0.002)
    feature = {
        "type": "Feature",
        "properties": {"name": "strip"},
        "geometry": strip.__geo_interface__,
    }
    payload = json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()
    at = app.run()
    at.switch_page("app_pages/exposure.py").run()
    weighting = at.selectbox(key="exposure_weighting")
    assert "population" in weighting.options and weighting.value == "population"
    at.file_uploader(key="exposure_uploads").upload("strip.geojson", payload, "application/json")
    at.run()
    at.multiselect(key="exposure_footprints").set_value(["strip.geojson (uploaded)"]).run()
    at.run()
    no_exception(at)
    labels = [m.label for m in at.metric]
    assert labels == ["Between low and high", "Estimate (not to be trusted)"]
    warnings = [w.value for w in at.warning]
    assert any(
        w.startswith("footprint thinner than cells: the footprint is thinner") for w in warnings
    )


def test_the_exposure_map_keeps_its_place_when_the_notes_change(app):
    """A thin footprint adds notes and a warning above the map: the map stays where it was."""
    import json

    import shapely

    strip = shapely.LineString([(12.9, 42.83), (13.3, 42.83)]).buffer(0.002)
    feature = {"type": "Feature", "properties": {}, "geometry": strip.__geo_interface__}
    payload = json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()
    at = app.run()
    at.switch_page("app_pages/exposure.py").run()
    place = map_place(at)
    warnings = len(at.warning)
    at.file_uploader(key="exposure_uploads").upload("strip.geojson", payload, "application/json")
    at.run()
    no_exception(at)
    assert len(at.warning) > warnings  # the page above the map did change
    assert map_place(at) == place


def raster_footprint(case: str, folder: Path) -> tuple[Path, list[str]]:
    """A raster footprint over the test releases and the CLI options that class it."""
    from pyproj import Transformer
    from rasterio.transform import from_origin

    from tests.rasters import depth_field, write_geotiff, write_grid_xml

    if case == "grid.xml":
        return write_grid_xml(folder / "grid.xml"), []
    x, y = Transformer.from_crs(4326, 32633, always_xy=True).transform(13.0, 42.86)
    depth = depth_field(700, 900, seed=2)
    path = write_geotiff(
        folder / "flood_depth.tif",
        depth,
        transform=from_origin(x, y, 20, 20),
        crs="EPSG:32633",
    )
    return path, ["--raster-kind", "depth", "--thresholds", "0.5,2"]


@pytest.mark.slow
@pytest.mark.parametrize("case", ["grid.xml", "depth GeoTIFF"])
def test_cli_and_page_give_the_same_table_on_a_raster(case, app, release_dir, media, tmp_path):
    from geo.cli import main

    path, options = raster_footprint(case, tmp_path)
    out = tmp_path / "cli.csv"
    argv = ["exposure", "--release", str(release_dir / "a_public.release.parquet")]
    assert main([*argv, "--hazard", str(path), *options, "--out", str(out)]) == 0
    cli = read_exposure_csv(out)

    at = app.run()
    at.switch_page("app_pages/exposure.py").run()
    mime = "application/xml" if path.suffix == ".xml" else "image/tiff"
    at.file_uploader(key="exposure_uploads").upload(path.name, path.read_bytes(), mime)
    at.run()
    at.multiselect(key="exposure_footprints").set_value([f"{path.name} (uploaded)"])
    if options:
        at.selectbox(key="exposure_raster_kind").set_value(options[1])
        at.text_input(key="exposure_thresholds").set_value(options[3])
    at.run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    page = read_exposure_csv(downloads(at, media)["download_csv"])
    assert len(cli) > 0
    labels = set(cli["hazard_class"])
    if options:  # the user's thresholds, in metres
        assert labels == {"0.5–2 m", "≥ 2 m"}
    else:
        assert "MMI IX" in labels and all(label.startswith("MMI ") for label in labels)
    pd.testing.assert_frame_equal(page, cli)
