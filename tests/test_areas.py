"""Exposure by administrative area: estimates add up to the class totals, an outside row,
warnings when the boundaries miss the footprint, every boundary format, the same words
beside every table."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import h3
import pandas as pd
import pytest
import shapely

from geo.cli import main
from geo.exposure_table import AREA_SENTENCE, OUTSIDE_AREAS
from geo.pipeline import read_boundaries, read_footprints, read_release, run_exposure
from geo.release import Release
from geo.tools.areas import _largest_remainders
from tests.export_files import read_exposure_csv

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo" / "central_italy.release.parquet"
NORCIA_MMI = ROOT / "data" / "footprints" / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
REGIONS = ROOT / "data" / "admin" / "italy_regions_limits_IT_regions.geojson"
PERUGIA = ROOT / "data" / "admin" / "italy_perugia_municipalities_limits_P_54.geojson"
JAKARTA = ROOT / "data" / "footprints" / "indonesia_jakarta_2007_flood_RW.shp"
KEYS = ["hazard_class", "class_rank", "nationality"]


@pytest.fixture(scope="module")
def demo():
    return read_release(DEMO)


@pytest.fixture(scope="module")
def norcia():
    return read_footprints([NORCIA_MMI])


def area_run(release, footprints, boundaries, field, weighting="blend"):
    return run_exposure(
        release, footprints, admin=read_boundaries(boundaries), admin_field=field,
        weighting=weighting,
    )  # fmt: skip


def turkey(path: Path) -> Path:
    """Two provinces around Ankara, nowhere near the Norcia footprint."""
    areas = gpd.GeoDataFrame(
        {"name": ["Ankara", "Kırıkkale"]},
        geometry=[shapely.box(32.0, 39.5, 33.3, 40.5), shapely.box(33.3, 39.5, 34.2, 40.5)],
        crs=4326,
    )
    areas.to_file(path)
    return path


@pytest.mark.parametrize(
    ("boundaries", "field", "weighting"),
    [(REGIONS, "reg_name", "blend"), (REGIONS, "reg_name", "area"), (PERUGIA, "name", "blend")],
)
def test_area_estimates_add_up_to_the_class_totals(demo, norcia, boundaries, field, weighting):
    """Before: Italian regions summed to 63,328 persons in MMI VI against 64,960, and the
    Perugia municipalities to 10,308 of 153,545 persons with no outside row."""
    exposure = area_run(demo, norcia, boundaries, field, weighting).exposure
    table, by_class = exposure.table, exposure.by_class
    assert list(table.columns[:2]) == [field, "hazard_class"]
    for measure in ("persons", "cases"):
        summed = table.groupby(KEYS)[f"{measure}_estimate"].sum()
        expected = by_class.set_index(KEYS)[f"{measure}_estimate"]
        expected = expected[expected > 0]
        pd.testing.assert_series_equal(
            summed[summed > 0].sort_index(), expected.sort_index(), check_names=False
        )
    # The class totals the page shows over the areas equal the class table's.
    totals = exposure.area_totals().groupby("hazard_class")["persons_estimate"].sum()
    class_totals = exposure.class_totals().set_index("hazard_class")["persons_estimate"]
    assert totals.to_dict() == class_totals[class_totals.index.isin(totals.index)].to_dict()
    assert (class_totals[~class_totals.index.isin(totals.index)] == 0).all()
    # Per area, low ≤ estimate ≤ high holds as for the classes.
    assert (table["persons_low"] <= table["persons_estimate"]).all()
    assert (table["persons_estimate"] <= table["persons_high"]).all()
    # The outside row comes after every area, within the table.
    outside = table[field].eq(OUTSIDE_AREAS).to_numpy()
    assert outside.any() and not outside[: outside.argmax()].any()
    assert outside[outside.argmax() :].all()


def test_perugia_municipalities_say_what_falls_outside(demo, norcia):
    exposure = area_run(demo, norcia, PERUGIA, "name").exposure
    table = exposure.table
    inside = table[table["name"] != OUTSIDE_AREAS]
    outside = table[table["name"] == OUTSIDE_AREAS]
    assert {"Norcia", "Cascia", "Preci"} <= set(inside["name"])
    # Most of the exposure lies outside the province: the outside row carries it.
    assert outside["persons_estimate"].sum() > 10 * inside["persons_estimate"].sum()
    assert (
        outside["persons_estimate"].sum() + inside["persons_estimate"].sum()
        == exposure.by_class["persons_estimate"].sum()
    )
    notes = [n for n in exposure.notes if "outside the administrative boundaries" in n]
    assert len(notes) == 1 and OUTSIDE_AREAS in notes[0]
    headline = exposure.headline()
    assert f"{headline['hazard_class']}: " in notes[0]


@pytest.mark.parametrize("place", ["turkey", "jakarta"])
def test_boundaries_that_miss_the_footprint_are_said(demo, norcia, place, tmp_path):
    """Before: the headline said who was exposed and the area table was empty, silently."""
    path = turkey(tmp_path / "turkey.gpkg") if place == "turkey" else JAKARTA
    field = "name" if place == "turkey" else "KEL_NAME"
    exposure = area_run(demo, norcia, path, field).exposure
    assert exposure.headline()["persons_high"] > 0
    assert set(exposure.table[field]) == {OUTSIDE_AREAS}
    assert exposure.table["persons_estimate"].sum() == exposure.by_class["persons_estimate"].sum()
    (note,) = [n for n in exposure.notes if "boundaries" in n]
    assert note.startswith("the administrative boundaries do not overlap the footprint")


def test_boundaries_that_miss_the_release_are_said():
    """Boundaries over the footprint where the release has nobody: a warning too."""
    centre = h3.latlng_to_cell(42.8, 13.1, 7)
    groups = pd.DataFrame(
        [(cell, 7, "ROU", 10, 20) for cell in sorted(h3.grid_disk(centre, 1))],
        columns=["h3_cell", "resolution", "nationality", "cases", "persons"],
    )
    release = Release(groups=groups, breakdowns=pd.DataFrame(), metadata={})
    classes = gpd.GeoDataFrame(
        {"hazard_type": ["flood"], "class_label": ["flooded"], "class_rank": [1]},
        geometry=[shapely.box(12.5, 42.5, 13.5, 43.2)],
        crs=4326,
    )
    far = gpd.GeoDataFrame({"name": ["west"]}, geometry=[shapely.box(12.5, 42.5, 12.7, 42.7)])
    footprint = type("Fp", (), {"classes": classes, "provenance": {"file_name": "f"}})()
    exposure = run_exposure(
        release, [footprint], weighting="area", admin=far.set_crs(4326), admin_field="name"
    ).exposure
    (note,) = exposure.notes
    assert note.startswith("the administrative boundaries overlap no exposed released cell")
    assert exposure.table["persons_estimate"].sum() == 20 * 7


def test_cli_prints_the_warning_and_the_area_words_and_the_export_keeps_them(tmp_path, capsys):
    out = tmp_path / "turkey.csv"
    argv = ["exposure", "--release", str(DEMO), "--hazard", str(NORCIA_MMI), "--out", str(out)]
    argv += ["--admin", str(turkey(tmp_path / "turkey.geojson")), "--admin-field", "name"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    warnings = [line for line in printed if "do not overlap the footprint" in line]
    assert len(warnings) == 1 and warnings[0].startswith("note: ")
    assert AREA_SENTENCE in printed
    sidecar = json.loads((tmp_path / "turkey.csv-metadata.json").read_text(encoding="utf-8"))
    assert AREA_SENTENCE in sidecar["dc:provenance"]
    table = read_exposure_csv(out)
    assert set(table["name"]) == {OUTSIDE_AREAS}


def write_topojson(path: Path) -> Path:
    """Umbria and the rest as a hand-written TopoJSON (no CRS member: WGS 84 by definition)."""
    topology = {
        "type": "Topology",
        "arcs": [[[12.0, 42.5], [12.0, 43.5], [13.2, 43.5], [13.2, 42.5], [12.0, 42.5]]],
        "objects": {
            "areas": {
                "type": "GeometryCollection",
                "geometries": [
                    {"type": "Polygon", "arcs": [[0]], "properties": {"name": "west of 13.2"}}
                ],
            }
        },
    }
    path.write_text(json.dumps(topology), encoding="utf-8")
    return path


def test_every_boundary_format_reads(tmp_path):
    """GeoJSON, TopoJSON (no CRS), zipped shapefile and GeoPackage give the same areas."""
    perugia = gpd.read_file(PERUGIA)[["name", "geometry"]]
    perugia.to_file(tmp_path / "perugia.shp")
    with zipfile.ZipFile(tmp_path / "perugia.zip", "w") as archive:
        for suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            archive.write(tmp_path / f"perugia{suffix}", f"perugia{suffix}")
    perugia.to_file(tmp_path / "perugia.gpkg")
    names = sorted(perugia["name"])
    for path in (PERUGIA, tmp_path / "perugia.zip", tmp_path / "perugia.gpkg"):
        areas = read_boundaries(path)
        assert sorted(areas["name"]) == names and areas.crs.to_epsg() == 4326
    topo = read_boundaries(write_topojson(tmp_path / "areas.topojson"))
    assert topo["name"].tolist() == ["west of 13.2"] and topo.crs.to_epsg() == 4326


def test_topojson_boundaries_work_as_admin_on_the_cli(tmp_path):
    out = tmp_path / "t.csv"
    argv = ["exposure", "--release", str(DEMO), "--hazard", str(NORCIA_MMI), "--out", str(out)]
    argv += ["--admin", str(write_topojson(tmp_path / "areas.json")), "--admin-field", "name"]
    assert main(argv) == 0
    assert {"west of 13.2", OUTSIDE_AREAS} <= set(read_exposure_csv(out)["name"])


def test_largest_remainders_hit_each_target():
    values = pd.Series([0.4, 0.4, 0.2, 2.5, 2.5, 0.0])
    groups = pd.Series([0, 0, 0, 1, 1, 1])
    targets = pd.Series([1, 1, 1, 5, 5, 5])
    shares = _largest_remainders(values, targets, groups)
    assert shares.tolist() == [1, 0, 0, 3, 2, 0] or shares.tolist() == [0, 1, 0, 2, 3, 0]
    assert shares[:3].sum() == 1 and shares[3:].sum() == 5


def test_an_area_with_no_name_is_called_no_name_not_nan(demo, norcia, tmp_path):
    """Before: a null name became an area called 'nan'."""
    from geo.tools.areas import NO_NAME

    path = tmp_path / "unnamed.geojson"
    gpd.GeoDataFrame(
        {"name": ["Norcia box", None]},
        geometry=[shapely.box(12.9, 42.6, 13.3, 42.9), shapely.box(13.3, 42.6, 13.6, 42.9)],
        crs=4326,
    ).to_file(path)
    exposure = area_run(demo, norcia, path, "name").exposure
    names = set(exposure.table["name"])
    assert {"Norcia box", NO_NAME} <= names and "nan" not in names and "None" not in names
    assert exposure.table["persons_estimate"].sum() == exposure.by_class["persons_estimate"].sum()
