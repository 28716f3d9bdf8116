"""Exports open, carry their metadata, neutralise formulas and hold only released values."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import h3
import openpyxl
import pandas as pd
import pytest
import shapely

from geo.errors import InputError
from geo.export_columns import column_title
from geo.exposure_table import ROW_RANGES_SENTENCE, TRUTH_SENTENCE
from geo.pipeline import ExposureRun, compute_exposure, write_export, write_release
from geo.release import ReleasePolicy, protect
from tests.export_files import machine_columns
from tests.factories import clustered_records

HOSTILE = ['=HYPERLINK("http://evil")', "+1+1", "-2", "@SUM(A1)", "\tTAB"]


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    release = protect(clustered_records(20_000, seed=8), ReleasePolicy())
    write_release(release, tmp_path_factory.mktemp("r") / "r.release.parquet")  # sets the hash
    centre = shapely.Point(13.09, 42.79)
    rings = [centre.buffer(0.5).difference(centre.buffer(0.2)), centre.buffer(0.2)]
    classes = gpd.GeoDataFrame(
        {"class_label": HOSTILE[:2], "class_rank": [1, 2]}, geometry=rings, crs=4326
    )
    exposure = compute_exposure(release, classes)
    footprint = {
        "file_name": "=evil.json",
        "sha256": "ab" * 32,
        "format": "polygons",
        "hazard_type": "test",
        "class_field": "name",
        "repairs": ["closed 1 ring"],
    }
    return release, classes, exposure, [footprint]


def export(tmp_path, setting, name):
    release, classes, exposure, footprints = setting
    return write_export(tmp_path / name, ExposureRun(exposure, classes, footprints), release)


COUNTS = [
    "persons_low",
    "persons_estimate",
    "persons_high",
    "cases_low",
    "cases_estimate",
    "cases_high",
]
INTERNAL_WORDS = re.compile(r"persons_|cases|class_rank|_estimate|_low|_high|hazard_class")
# The core hashtags of the HXL standard (hxlstandard.org, dictionary 1.1) the exports use.
HXL_CORE = {"#severity", "#country", "#affected", "#adm1", "#meta"}


def test_csv_is_plain_and_reads_back_exactly(tmp_path, setting):
    """pandas.read_csv with no options: titles first, a BOM, names beside codes, no # lines."""
    path = export(tmp_path, setting, "table.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads "≥" and "–" right
    assert not [line for line in raw.decode("utf-8-sig").splitlines() if line.startswith("#")]
    table = pd.read_csv(path)
    assert list(table.columns) == [
        "Hazard class",
        "Severity rank (higher is more severe)",
        "Nationality code (ISO 3166-1 alpha-3)",
        "Nationality",
        "Persons exposed (low)",
        "Persons exposed (estimate)",
        "Persons exposed (high)",
        "Registrations exposed (low)",
        "Registrations exposed (estimate)",
        "Registrations exposed (high)",
        "Reliability of the estimate",
    ]
    assert not [c for c in table.columns if INTERNAL_WORDS.search(c)]
    expected = setting[2].table
    for name in COUNTS:
        assert table[column_title(name)].tolist() == expected[name].tolist()
        assert table[column_title(name)].dtype == "int64"
    codes = table["Nationality code (ISO 3166-1 alpha-3)"]
    assert codes.tolist() == expected["nationality"].tolist()
    names = dict(zip(codes, table["Nationality"], strict=True))
    assert names["ROU"] == "Romania" and names["UKR"] == "Ukraine"
    # the hostile class labels are neutralised, the rest of the row as computed
    assert table["Hazard class"].tolist() == ("'" + expected["hazard_class"]).tolist()
    pd.testing.assert_frame_equal(
        machine_columns(table).drop(columns="hazard_class"),
        expected.drop(columns="hazard_class"),
        check_dtype=False,
    )


def test_csvw_sidecar_describes_the_csv(tmp_path, setting):
    release, _, exposure, _ = setting
    path = export(tmp_path, setting, "table.csv")
    sidecar = json.loads((tmp_path / "table.csv-metadata.json").read_text(encoding="utf-8"))
    assert sidecar["@context"][0] == "http://www.w3.org/ns/csvw"
    assert sidecar["url"] == "table.csv"
    columns = sidecar["tableSchema"]["columns"]
    assert [c["titles"] for c in columns] == list(pd.read_csv(path).columns)
    assert [c["name"] for c in columns][:4] == [
        "hazard_class",
        "class_rank",
        "nationality",
        "nationality_name",
    ]
    types = {c["name"]: c["datatype"] for c in columns}
    assert types["persons_low"] == {"base": "integer", "minimum": 0}
    assert types["nationality"] == "string"
    assert all(c["dc:description"] for c in columns)
    assert sidecar["dialect"]["headerRowCount"] == 1
    assert sidecar["dc:description"] == exposure.statement()
    sources = {s["dc:type"]: s["dc:identifier"] for s in sidecar["dc:source"]}
    assert sources["crisis-exposure release"] == f"sha256:{release.metadata['content_sha256']}"
    assert sources["hazard footprint"] == "sha256:" + "ab" * 32
    policy = {p["schema:name"]: p["schema:value"] for p in sidecar["schema:additionalProperty"]}
    assert policy["k"] == 10 and policy["method"] == "noise"
    assert policy["withheld_persons"] == release.metadata["dropped"]["persons"]
    provenance = " ".join(sidecar["dc:provenance"])
    assert "Privacy: every figure is a sum of released values" in provenance
    assert "widened by the 99% bound of the noise" in provenance
    # Summing the rows' ranges would not give a class's (one bound for the whole sum).
    assert ROW_RANGES_SENTENCE in provenance


def test_csv_of_a_noisy_release_says_99_percent_and_the_withheld_persons(tmp_path, setting):
    release, _, exposure, _ = setting
    export(tmp_path, setting, "table.csv")
    sidecar = json.loads((tmp_path / "table.csv-metadata.json").read_text(encoding="utf-8"))
    withheld = release.metadata["dropped"]["persons"]
    scale = release.metadata["policy"]["noise_scale"]
    assert release.metadata["method"] == "noise" and withheld > 0
    statement = sidecar["dc:description"]
    assert "between low and high with 99% confidence" in statement
    assert f"random noise (scale {scale:.3g} for cases" in statement
    assert f"The release withholds {withheld:,} persons across all its nationalities" in statement
    assert "(groups still under k = 10" in statement
    assert TRUTH_SENTENCE not in statement
    policy = {p["schema:name"]: p["schema:value"] for p in sidecar["schema:additionalProperty"]}
    assert policy["noise_scale"] == scale and policy["withheld_persons"] == withheld


def test_exports_of_an_exact_release_keep_the_plain_statement(tmp_path, setting):
    _, classes, _, footprints = setting
    release = protect(clustered_records(20_000, seed=8), ReleasePolicy(noise_scale=0))
    write_release(release, tmp_path / "exact.release.parquet")
    run = ExposureRun(compute_exposure(release, classes), classes, footprints)
    write_export(tmp_path / "exact.csv", run, release)
    sidecar = json.loads((tmp_path / "exact.csv-metadata.json").read_text(encoding="utf-8"))
    assert sidecar["dc:description"] == TRUTH_SENTENCE
    policy = {p["schema:name"]: p["schema:value"] for p in sidecar["schema:additionalProperty"]}
    assert policy["method"] == "exact" and policy["noise_scale"] == 0.0
    assert policy["withheld_persons"] == release.metadata["dropped"]["persons"]


def test_formulas_are_neutralised_everywhere(tmp_path, setting):
    csv_text = export(tmp_path, setting, "t.csv").read_text(encoding="utf-8-sig")
    for line in csv_text.splitlines():
        assert not line.startswith(("=", "+", "-", "@", "\t"))
    assert "'=HYPERLINK" in csv_text and "'+1+1" in csv_text
    workbook = openpyxl.load_workbook(export(tmp_path, setting, "t.xlsx"))
    for sheet in workbook:
        for row in sheet.iter_rows(values_only=True):
            for value in row:
                assert not (isinstance(value, str) and value.startswith(("=", "+", "@", "\t")))
    meta = {r[2]: r[1] for r in workbook["metadata"].iter_rows(min_row=2, values_only=True)}
    assert meta["footprint1.file_name"] == "'=evil.json"


def hxl_errors(path, schema=None) -> list[str]:
    """Return libhxl's validation errors of a HXL file (default: libhxl's built-in schema).

    Issues of severity info (libhxl's "possible numeric outlier") and warning are not
    errors: a file with only those is valid HXL.
    """
    hxl = pytest.importorskip("hxl")
    issues = []
    source = hxl.data(str(path), hxl.InputOptions(allow_local=True))
    hxl.schema(schema, callback=issues.append).validate(source)
    return [f"{i.message}: {i.value}" for i in issues if i.rule.severity == "error"]


def test_hxl_is_valid_hxl(tmp_path, setting):
    """The hashtag row right under the titles; libhxl reads and validates it with no error."""
    hxl = pytest.importorskip("hxl")
    path = export(tmp_path, setting, "t.hxl.csv")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("Hazard class,")
    assert lines[1].split(",") == [
        "#severity+name",
        "#severity+num",
        "#country+origin+code",
        "#country+origin+name",
        "#affected+ind+min",
        "#affected+ind",
        "#affected+ind+max",
        "#affected+hh+min",
        "#affected+hh",
        "#affected+hh+max",
        "#meta+reliability",
    ]
    assert hxl_errors(path) == []
    # the project's own rules: every tag present, counts numbers ≥ 0, codes of 3 letters
    rules = [
        ["#valid_tag", "#valid_required", "#valid_datatype", "#valid_value+min", "#valid_regex"],
        *[[tag, "true", "number", "0", ""] for tag in ("#affected+ind", "#affected+hh")],
        ["#country+origin+code", "true", "text", "", "^[A-Z]{3}$"],
        ["#country+origin+name", "true", "text", "", ""],
        ["#severity+name", "true", "text", "", ""],
    ]
    assert hxl_errors(path, hxl.data(rules)) == []
    data = hxl.data(str(path), hxl.InputOptions(allow_local=True))
    assert {column.tag for column in data.columns} <= HXL_CORE
    rows = list(data)
    expected = setting[2].table
    assert [int(r.get("#affected+ind+min")) for r in rows] == expected["persons_low"].tolist()
    assert [int(r.get("#affected+ind-min-max")) for r in rows] == expected[
        "persons_estimate"
    ].tolist()
    assert [int(r.get("#affected+hh+max")) for r in rows] == expected["cases_high"].tolist()
    sidecar = json.loads((tmp_path / "t.hxl.csv-metadata.json").read_text(encoding="utf-8"))
    assert sidecar["dialect"]["headerRowCount"] == 2
    assert [c["titles"] for c in sidecar["tableSchema"]["columns"]] == [
        list(pair) for pair in zip(lines[0].split(","), lines[1].split(","), strict=True)
    ]


def test_hxl_validation_catches_a_broken_file(tmp_path):
    """The check above can fail: a count that is not a number is a libhxl error."""
    path = tmp_path / "broken.hxl.csv"
    path.write_text("Persons\n#affected+ind\nmany\n", encoding="utf-8")
    assert len(hxl_errors(path)) == 1


def test_area_column_is_titled_and_tagged(tmp_path, setting):
    release, classes, _, footprints = setting
    admin = gpd.GeoDataFrame(
        {"name": ["west", "east"]},
        geometry=[shapely.box(12.0, 42.0, 13.09, 43.5), shapely.box(13.09, 42.0, 14.5, 43.5)],
        crs=4326,
    )
    exposure = compute_exposure(release, classes, admin=admin, admin_field="name")
    run = ExposureRun(exposure, classes, footprints)
    table = pd.read_csv(write_export(tmp_path / "areas.csv", run, release))
    assert table.columns[0] == "Area (name)" and {"west", "east"} <= set(table["Area (name)"])
    assert (
        machine_columns(table)["persons_estimate"].tolist()
        == exposure.table["persons_estimate"].tolist()
    )
    lines = write_export(tmp_path / "areas.hxl.csv", run, release).read_text("utf-8-sig")
    assert lines.splitlines()[1].startswith("#adm1+name,#severity+name,")
    assert hxl_errors(tmp_path / "areas.hxl.csv") == []


def test_xlsx_has_a_frozen_header_number_formats_and_metadata(tmp_path, setting):
    release, _, exposure, _ = setting
    workbook = openpyxl.load_workbook(export(tmp_path, setting, "t.xlsx"))
    assert workbook.sheetnames == ["exposure", "metadata"]
    sheet = workbook["exposure"]
    assert sheet.freeze_panes == "A2"
    header = [cell.value for cell in sheet[1]]
    assert header == list(pd.read_csv(export(tmp_path, setting, "t.csv")).columns)
    for name in COUNTS:
        column = header.index(column_title(name)) + 1
        (cells,) = sheet.iter_cols(column, column, min_row=2)
        assert all(cell.number_format == "#,##0" for cell in cells)
        assert [cell.value for cell in cells] == exposure.table[name].tolist()
        letter = openpyxl.utils.get_column_letter(column)
        assert sheet.column_dimensions[letter].width >= 12
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == len(exposure.table) + 1
    meta_sheet = workbook["metadata"]
    meta = {row[2]: row[1] for row in meta_sheet.iter_rows(min_row=2, values_only=True)}
    formats = {row[2].value: row[1].number_format for row in meta_sheet.iter_rows(min_row=2)}
    assert meta["statement"] == exposure.statement()
    assert meta["release.k"] == 10
    assert meta["method.confidence"] == 0.99 and formats["method.confidence"] == "0%"
    assert meta["release.withheld_persons"] == exposure.withheld_persons
    assert formats["release.withheld_persons"] == "#,##0"
    assert meta["release.content_sha256"] == release.metadata["content_sha256"]
    assert meta["footprint1.sha256"] == "ab" * 32
    meanings = {row[0]: row[1] for row in meta_sheet.iter_rows(values_only=True)}
    assert "the truth is at least this" in meanings["Persons exposed (low)"]


def test_geojson_holds_only_released_groups(tmp_path, setting):
    release = setting[0]
    data = json.loads(export(tmp_path, setting, "t.geojson").read_text())
    exposure = setting[2]
    assert data["type"] == "FeatureCollection"
    assert data["metadata"]["statement"] == exposure.statement()
    assert data["metadata"]["release"]["method"] == "noise"
    assert data["metadata"]["release"]["withheld_persons"] == exposure.withheld_persons
    published = {
        (r.h3_cell, r.nationality): (r.persons, r.cases) for r in release.groups.itertuples()
    }
    assert data["features"]
    for feature in data["features"]:
        props = feature["properties"]
        assert published[(props["h3_cell"], props["nationality"])] == (
            props["persons"],
            props["cases"],
        )
        assert set(props) == {
            "h3_cell",
            "resolution",
            "nationality",
            "persons",
            "cases",
            "worst_class",
            "worst_class_rank",
            "entirely_inside_worst_class",
        }
        ring = feature["geometry"]["coordinates"][0]
        assert h3.latlng_to_cell(ring[0][1], ring[0][0], props["resolution"]) in h3.grid_disk(
            props["h3_cell"], 1
        )


def test_unknown_format(tmp_path, setting):
    with pytest.raises(InputError, match="unknown export format"):
        export(tmp_path, setting, "t.pdf")
