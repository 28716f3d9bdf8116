"""Exports open, carry their metadata, neutralise formulas and hold only released values."""

from __future__ import annotations

import io
import json

import geopandas as gpd
import h3
import openpyxl
import pandas as pd
import pytest
import shapely

from geo.errors import InputError
from geo.exposure_table import TRUTH_SENTENCE
from geo.pipeline import ExposureRun, compute_exposure, write_export, write_release
from geo.release import ReleasePolicy, protect
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


def test_csv_has_metadata_and_stable_columns(tmp_path, setting):
    path = export(tmp_path, setting, "table.csv")
    text = path.read_text()
    assert "# release.k: 10" in text and "abababab" in text and "closed 1 ring" in text
    table = pd.read_csv(path, comment="#")
    assert list(table.columns) == [
        "hazard_class",
        "class_rank",
        "nationality",
        "persons_low",
        "persons_estimate",
        "persons_high",
        "cases_low",
        "cases_estimate",
        "cases_high",
        "reliability",
    ]
    assert table.equals(
        pd.read_csv(
            io.StringIO(
                setting[2]
                .table.assign(hazard_class=lambda t: "'" + t["hazard_class"])
                .to_csv(index=False)
            )
        )
    )


def test_csv_of_a_noisy_release_says_99_percent_and_the_withheld_persons(tmp_path, setting):
    release, _, exposure, _ = setting
    text = export(tmp_path, setting, "table.csv").read_text()
    withheld = release.metadata["dropped"]["persons"]
    scale = release.metadata["policy"]["noise_scale"]
    assert release.metadata["method"] == "noise" and withheld > 0
    statement = text.splitlines()[1]
    assert statement == f"# {exposure.statement()}"
    assert "between low and high with 99% confidence" in statement
    assert f"random noise (scale {scale:.3g} for cases" in statement
    assert f"The release withholds {withheld:,} persons (groups still under k = 10" in statement
    assert TRUTH_SENTENCE not in text
    assert '# release.method: "noise"' in text
    assert f"# release.noise_scale: {json.dumps(scale)}" in text
    assert f"# release.withheld_persons: {withheld}" in text
    assert "# method.confidence: 0.99" in text
    assert "widened by the 99% bound of the noise" in text


def test_exports_of_an_exact_release_keep_the_plain_statement(tmp_path, setting):
    _, classes, _, footprints = setting
    release = protect(clustered_records(20_000, seed=8), ReleasePolicy(noise_scale=0))
    write_release(release, tmp_path / "exact.release.parquet")
    run = ExposureRun(compute_exposure(release, classes), classes, footprints)
    text = write_export(tmp_path / "exact.csv", run, release).read_text()
    assert text.splitlines()[1] == f"# {TRUTH_SENTENCE}"
    assert '# release.method: "exact"' in text and "# release.noise_scale: 0.0" in text
    assert "# method.confidence: 1.0" in text
    withheld = release.metadata["dropped"]["persons"]
    assert f"# release.withheld_persons: {withheld}" in text


def test_formulas_are_neutralised_everywhere(tmp_path, setting):
    csv_text = export(tmp_path, setting, "t.csv").read_text()
    for line in csv_text.splitlines():
        assert not line.startswith(("=", "+", "-", "@", "\t"))
    assert "'=HYPERLINK" in csv_text and "'+1+1" in csv_text and "# footprint 1" in csv_text
    workbook = openpyxl.load_workbook(export(tmp_path, setting, "t.xlsx"))
    for sheet in workbook:
        for row in sheet.iter_rows(values_only=True):
            for value in row:
                assert not (isinstance(value, str) and value.startswith(("=", "+", "@", "\t")))


def test_hxl_has_a_hashtag_row(tmp_path, setting):
    path = export(tmp_path, setting, "t.hxl.csv")
    lines = [line for line in path.read_text().splitlines() if not line.startswith("# ")]
    assert lines[0].startswith("hazard_class,")
    assert lines[1].split(",")[:4] == [
        "#severity+hazard+name",
        "#severity+hazard+num",
        "#country+code+nationality",
        "#affected+ind+low",
    ]


def test_xlsx_has_data_and_metadata_sheets(tmp_path, setting):
    workbook = openpyxl.load_workbook(export(tmp_path, setting, "t.xlsx"))
    assert workbook.sheetnames == ["exposure", "metadata"]
    meta = dict(workbook["metadata"].iter_rows(min_row=2, values_only=True))
    assert meta["statement"] == setting[2].statement()
    assert json.loads(meta["release.k"]) == 10
    assert json.loads(meta["method.confidence"]) == 0.99
    assert json.loads(meta["release.withheld_persons"]) == setting[2].withheld_persons
    assert json.loads(meta["release.content_sha256"]) == setting[0].metadata["content_sha256"]
    rows = list(workbook["exposure"].iter_rows(values_only=True))
    assert len(rows) == len(setting[2].table) + 1


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
