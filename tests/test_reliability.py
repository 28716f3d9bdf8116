"""Where the estimate cannot be trusted, every table, export and the CLI say so in words."""

from __future__ import annotations

import io
import json

import geopandas as gpd
import h3
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely

from demo.accuracy import points_to_records
from geo.cli import main
from geo.pipeline import ExposureRun, compute_exposure, export_bytes, write_release
from geo.release import ReleasePolicy, protect
from tests.export_files import read_exposure_csv

CELL = h3.latlng_to_cell(42.8303, 13.1092, 7)


def storage_shape(cell: str) -> shapely.Geometry:
    return shapely.union_all(
        [
            shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)])
            for c in h3.cell_to_children(cell, 8)
        ]
    )


@pytest.fixture(scope="module")
def release():
    """60 registrations of one nationality spread over CELL's resolution-8 children."""
    rng = np.random.default_rng(1)
    points = []
    for child in h3.cell_to_children(CELL, 8):
        lat, lng = h3.cell_to_latlng(child)
        points += [(lat + rng.normal(0, 1e-4), lng + rng.normal(0, 1e-4)) for _ in range(10)]
    lat, lng = np.array(points).T
    frame = pd.DataFrame({"nationality": "ROU", "latitude": lat, "longitude": lng, "persons": 2})
    return protect(points_to_records(frame), ReleasePolicy(noise_scale=0))


def classes() -> gpd.GeoDataFrame:
    shape = storage_shape(CELL)
    lat, lng = h3.cell_to_latlng(CELL)
    xmin, _, xmax, _ = shape.bounds
    return gpd.GeoDataFrame(
        {"class_label": ["whole", "half", "strip"], "class_rank": [3, 2, 1]},
        geometry=[
            shape.buffer(0.01),  # the cell inside: low = high
            shape.intersection(shapely.box(-180, -90, lng, 90)),  # low 0, half covered
            shapely.box(xmin, lat - 0.001, xmax, lat + 0.001),  # 200 m across a 2.5 km cell
        ],
        crs=4326,
    )


def test_each_row_says_whether_its_estimate_can_be_trusted(release):
    table = compute_exposure(release, classes(), weighting="area").table.set_index("hazard_class")
    assert table.loc["whole", "reliability"] == "ok"
    assert table.loc["half", "reliability"] == "wide range"
    assert table.loc["strip", "reliability"] == "footprint thinner than cells"
    assert table.loc["whole", "persons_low"] == table.loc["whole", "persons_high"] == 140


def test_every_export_carries_the_reliability_in_words(release, tmp_path):
    write_release(release, tmp_path / "r.release.parquet")  # sets the hash
    run = ExposureRun(compute_exposure(release, classes(), weighting="area"), classes(), [])
    csv_text = export_bytes(run, release, "csv").decode()
    table = read_exposure_csv(io.StringIO(csv_text))
    assert table["reliability"].tolist() == ["ok", "wide range", "footprint thinner than cells"]
    sidecar = json.loads(export_bytes(run, release, "csv-metadata", name="t.csv"))
    assert any(
        line.startswith("Reliability:") and "thinner than the released cells" in line
        for line in sidecar["dc:provenance"]
    )
    hxl = export_bytes(run, release, "hxl").decode().splitlines()
    assert next(line for line in hxl if line.startswith("#severity")).endswith(",#meta+reliability")
    book = openpyxl.load_workbook(io.BytesIO(export_bytes(run, release, "xlsx")))
    rows = list(book["exposure"].values)
    column = rows[0].index("Reliability of the estimate")
    assert [r[column] for r in rows[1:]] == ["ok", "wide range", "footprint thinner than cells"]


def test_the_cli_puts_the_range_first_when_the_estimate_cannot_be_trusted(
    release, tmp_path, capsys
):
    write_release(release, tmp_path / "r.release.parquet")
    strip = classes().iloc[[2]][["geometry"]].assign(name="strip")
    strip.to_file(tmp_path / "strip.geojson")
    code = main(
        [
            "exposure",
            "--release",
            str(tmp_path / "r.release.parquet"),
            "--hazard",
            str(tmp_path / "strip.geojson"),
            "--weighting",
            "area",
            "--out",
            str(tmp_path / "out.csv"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    headline = next(line for line in out.splitlines() if line.startswith("most severe"))
    assert headline.startswith("most severe class reached: strip: persons between 0 (low) and 140")
    assert "but the footprint is thinner than the released cells" in headline
    assert "cannot be trusted" in headline
