"""Raster footprints: ShakeMap grid.xml and GeoTIFFs generated in code, read as classes."""

from __future__ import annotations

import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapely
from rasterio.transform import from_origin

from geo.cli import main
from geo.io.footprints import FootprintError, RasterOptions, read_footprint
from geo.io.footprints.raster_classes import NO_CLASS, NODATA, scheme_for
from geo.tools.cell_pairs import cell_zone_shares
from tests.rasters import (
    NORCIA,
    depth_field,
    mmi_at,
    write_geotiff,
    write_grid_xml,
    write_mmi_tif,
    write_sparse_extent,
)

ROOT = Path(__file__).resolve().parents[1]
NORCIA_MMI = ROOT / "data" / "footprints" / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
DEMO_RELEASE = ROOT / "data" / "demo" / "central_italy.release.parquet"
UTM33 = "EPSG:32633"


def label_at(fp, lon: float, lat: float) -> list[str]:
    classes = fp.classes
    return classes[classes.intersects(shapely.Point(lon, lat))]["class_label"].tolist()


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def grid_xml(tmp_path_factory) -> Path:
    return write_grid_xml(tmp_path_factory.mktemp("grid") / "grid.xml")


@pytest.fixture(scope="module")
def depth_tif(tmp_path_factory) -> Path:
    """Flood depth in UTM 33N at 10 m near Norcia, nodata -9999 on the top 50 rows."""
    depth = depth_field(1200, 1500, seed=4)
    depth[:50] = -9999
    return write_geotiff(
        tmp_path_factory.mktemp("depth") / "flood_depth.tif",
        depth,
        transform=from_origin(345_000, 4_750_000, 10, 10),
        crs=UTM33,
        nodata=-9999,
    )


# --------------------------------------------------------------------------- class schemes


def test_mmi_is_binned_by_the_pager_rule_with_roman_labels():
    scheme = scheme_for(
        RasterOptions("mmi"), dtype="float32", hints="", display="x", hazard="earthquake"
    )
    values = np.array([0.3, 1.49, 1.5, 6.49, 6.5, 7.2, 12.7, np.nan], dtype="float32")
    codes = scheme.classify(values, np.isfinite(values), "x")
    labels = [scheme.labels[c] if c < NO_CLASS else None for c in codes]
    assert labels == ["MMI I", "MMI I", "MMI II", "MMI VI", "MMI VII", "MMI VII", "MMI XII", None]
    assert codes[-1] == NODATA
    assert [scheme.ranks[c] for c in codes[:-1]] == [1, 1, 2, 6, 7, 7, 12]


def test_depth_defaults_leave_dry_land_out_and_thresholds_are_half_open():
    scheme = scheme_for(RasterOptions(), dtype="float32", hints="depth", display="x", hazard="")
    values = np.array([-1.0, 0.0, 0.01, 0.15, 0.49, 0.5, 1.5, 2.99, 3.0, 8.0])
    codes = scheme.classify(values, np.ones(len(values), bool), "x")
    labels = [scheme.labels[c] if c < NO_CLASS else "dry" for c in codes]
    assert labels == [
        "dry",
        "dry",
        "0–0.15 m",
        "0.15–0.5 m",
        "0.15–0.5 m",
        "0.5–1.5 m",
        "1.5–3 m",
        "1.5–3 m",
        "≥ 3 m",
        "≥ 3 m",
    ]
    assert scheme.hazard == "flood" and scheme.ranks == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("kind", "thresholds", "labels", "message"),
    [
        ("wind", None, None, "unknown raster kind 'wind'"),
        ("auto", "3,1", None, "must be finite and increasing"),
        ("auto", "1,x", None, "are not numbers"),
        ("auto", None, "1=a,1=b", "each value and each label only once"),
        ("auto", None, "flooded", "write value=label pairs"),
    ],
)
def test_bad_raster_options_are_one_line_errors(kind, thresholds, labels, message):
    with pytest.raises(FootprintError, match=message) as info:
        RasterOptions.from_text(kind, thresholds, labels)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- ShakeMap grid.xml


def test_grid_xml_reads_as_pager_mmi_bands(grid_xml):
    fp = read_footprint(grid_xml)
    assert fp.provenance["format"] == "shakemap-grid"
    assert fp.provenance["hazard_type"] == "earthquake"
    assert fp.provenance["cumulative_available"] is True
    assert fp.classes["class_label"].tolist() == [
        "MMI IV",
        "MMI V",
        "MMI VI",
        "MMI VII",
        "MMI VIII",
        "MMI IX",
    ]
    assert fp.classes["class_rank"].tolist() == [4, 5, 6, 7, 8, 9]
    assert label_at(fp, *NORCIA) == ["MMI IX"]
    # away from band borders, a point's band is its grid value's PAGER band
    for lon, lat in [(13.4, 42.9), (12.6, 43.3), (14.3, 42.0), (11.8, 43.9)]:
        grid_lon = 11.6 + round((lon - 11.6) / 0.0166667) * 0.0166667
        grid_lat = 41.6 + round((lat - 41.6) / 0.0166667) * 0.0166667
        value = float(mmi_at(np.array(grid_lon), np.array(grid_lat)))
        expected = f"MMI {['IV', 'V', 'VI', 'VII', 'VIII', 'IX'][int(value + 0.5) - 4]}"
        assert label_at(fp, grid_lon, grid_lat) == [expected]
    # classes are disjoint and tile the grid's extent (no nodata in this grid)
    union = shapely.union_all(fp.classes.geometry.values)
    half = 3.0 / 180 / 2  # half the grid spacing: grid points are pixel centres
    extent = shapely.box(11.6 - half, 41.6 - half, 14.6 + half, 44.1 + half)
    assert abs(union.area - extent.area) / extent.area < 1e-6
    assert sum(g.area for g in fp.classes.geometry) == pytest.approx(union.area, rel=1e-9)


def test_grid_and_contour_labels_agree(grid_xml):
    """The same band gets the same label and rank from grid.xml and from contours."""
    grid = read_footprint(grid_xml).classes
    contours = read_footprint(NORCIA_MMI).classes
    pairs = dict(zip(contours["class_label"], contours["class_rank"], strict=True))
    shared = [label for label in grid["class_label"] if label in pairs]
    assert {"MMI VI", "MMI VII", "MMI VIII"} <= set(shared)
    for label, rank in zip(grid["class_label"], grid["class_rank"], strict=True):
        if label in pairs:
            assert pairs[label] == rank


def test_grid_xml_rows_missing_are_nodata_and_zipped_grid_reads(tmp_path, grid_xml):
    partial = read_footprint(write_grid_xml(tmp_path / "grid.xml", drop_rows=181 * 20))
    assert any("nodata pixels left out" in note for note in partial.provenance["notes"])
    assert label_at(partial, 12.0, 44.05) == []  # the first 20 rows (the north) are missing
    archive = tmp_path / "grid.xml.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(grid_xml, "grid.xml")
    zipped = read_footprint(archive)
    assert (
        zipped.classes["class_label"].tolist()
        == read_footprint(grid_xml).classes["class_label"].tolist()
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
            "<shakemap_grid>&b;</shakemap_grid>",
            "the XML declares a DTD or entities; refused",
        ),
        ("<shakemap_grid><grid_data>1 2 3", "not a readable ShakeMap grid.xml"),
        ("<shakemap_grid></shakemap_grid>", "has no grid_specification"),
    ],
)
def test_broken_grid_xml_is_a_one_line_error(tmp_path, text, message):
    path = tmp_path / "grid.xml"
    path.write_text(text)
    with pytest.raises(FootprintError, match=message) as info:
        read_footprint(path)
    assert str(info.value).startswith("grid.xml: ") and "\n" not in str(info.value)
    assert "Forbidden(" not in str(info.value)  # no internal repr like DTDForbidden(name=…)


def test_grid_xml_truncated_rows_and_missing_mmi(tmp_path, grid_xml):
    text = grid_xml.read_text()
    cut = text[: text.index("</grid_data>") - 7] + "\n</grid_data></shakemap_grid>"
    (tmp_path / "cut.xml").write_text(cut)
    with pytest.raises(FootprintError, match="grid_data is not rows of 10 numbers"):
        read_footprint(tmp_path / "cut.xml")
    (tmp_path / "nommi.xml").write_text(text.replace('name="MMI"', 'name="XYZ"'))
    with pytest.raises(FootprintError, match="has no MMI field"):
        read_footprint(tmp_path / "nommi.xml")


# --------------------------------------------------------------------------- GeoTIFFs


def test_mmi_geotiff_matches_the_grid(tmp_path, grid_xml):
    tif = read_footprint(write_mmi_tif(tmp_path / "mmi.tif"))
    grid = read_footprint(grid_xml)
    assert tif.provenance["format"] == "raster"
    assert tif.classes["class_label"].tolist() == grid.classes["class_label"].tolist()
    # the same field sampled at 30" and 60": band areas agree within a few per cent
    for a, b in zip(tif.describe()["area_km2"][1:], grid.describe()["area_km2"][1:], strict=True):
        assert a == pytest.approx(b, rel=0.05)


def test_depth_raster_in_utm_is_reprojected_decimated_and_keeps_areas(depth_tif):
    fp = read_footprint(depth_tif)
    assert fp.provenance["hazard_type"] == "flood"
    assert fp.classes.crs.to_epsg() == 4326
    notes = " ".join(fp.provenance["notes"])
    assert "5×5 px blocks" in notes and "75,000 nodata pixels left out" in notes
    # class areas match the pixel counts (10 m pixels, UTM scale factor ~0.9996)
    depth = depth_field(1200, 1500, seed=4)[50:]
    edges = [0.0, 0.15, 0.5, 1.5, 3.0, np.inf]
    wet = depth > 0
    expected = [
        ((depth >= lo) & (depth < hi) & wet).sum() * 1e-4
        for lo, hi in zip(edges, edges[1:], strict=False)
    ]
    got = fp.describe().set_index("class_label")["area_km2"]
    labels = ["0–0.15 m", "0.15–0.5 m", "0.5–1.5 m", "1.5–3 m", "≥ 3 m"]
    for label, km2 in zip(labels, expected, strict=True):
        assert got[label] == pytest.approx(km2, rel=0.03)
    assert sum(got) == pytest.approx(sum(expected), rel=0.01)


def test_user_thresholds_class_a_continuous_raster(tmp_path):
    values = np.tile(np.linspace(0, 50, 100, dtype="float32"), (80, 1))  # wind speed m/s
    path = write_geotiff(
        tmp_path / "wind.tif", values, transform=from_origin(13.0, 43.0, 0.01, 0.01)
    )
    with pytest.raises(FootprintError, match="needs thresholds to make classes"):
        read_footprint(path)
    fp = read_footprint(path, raster=RasterOptions("continuous", (17.0, 33.0)))
    assert fp.classes["class_label"].tolist() == ["17–33", "≥ 33"]
    assert label_at(fp, 13.0 + 0.5 * 0.01, 42.5) == []  # 0 m/s: below every class
    assert label_at(fp, 13.0 + 99.5 * 0.01, 42.5) == ["≥ 33"]


def test_categorical_extent_by_value_label_map_and_unordered_without_one(tmp_path):
    extent = np.zeros((100, 100), dtype="uint8")
    extent[20:60, 20:60] = 1
    extent[60:80, 60:80] = 2
    extent[:, :5] = 255
    path = write_geotiff(
        tmp_path / "extent.tif", extent, transform=from_origin(13.0, 43.0, 0.001, 0.001), nodata=255
    )
    plain = read_footprint(path)
    assert plain.classes["class_label"].tolist() == ["value 1", "value 2"]
    assert plain.provenance["cumulative_available"] is False
    labelled = read_footprint(path, raster=RasterOptions.from_text(labels="2=Deep,1=Flooded"))
    assert labelled.classes["class_label"].tolist() == ["Deep", "Flooded"]
    assert labelled.classes["class_rank"].tolist() == [1, 2]  # the order given
    assert labelled.provenance["cumulative_available"] is True
    area = labelled.describe().set_index("class_label")["area_km2"]
    assert area["Flooded"] / area["Deep"] == pytest.approx(1600 / 400, rel=1e-3)


def test_decimated_area_shares_stay_close_to_full_resolution(depth_tif, monkeypatch):
    """Per res-8 cell, the class shares of the 50 m polygons are within 0.05 of 10 m ones."""
    import h3

    fine = read_footprint(depth_tif, raster=RasterOptions("depth"))
    cells = sorted(h3.geo_to_cells(shapely.union_all(fine.classes.geometry.values).buffer(0.01), 8))
    monkeypatch.setattr("geo.io.footprints.raster.TARGET_PIXEL_M", 1.0)  # every pixel
    full = read_footprint(depth_tif)
    assert "pixel by pixel" in " ".join(full.provenance["notes"])

    def shares(fp):
        pairs = cell_zone_shares(cells, fp.classes.set_index("class_label"))
        return pairs.set_index(["h3_cell", "zone"])["area_share"]

    a, b = shares(fine).align(shares(full), fill_value=0.0)
    assert len(a) > 200
    assert np.abs(a - b).max() < 0.05
    assert np.abs(a - b).mean() < 0.005


@pytest.mark.parametrize("case", ["broken", "no crs", "all nodata", "text"])
def test_bad_rasters_are_one_line_errors_exit_2(tmp_path, depth_tif, capsys, case):
    values = np.ones((20, 20), dtype="float32")
    if case == "broken":
        path = tmp_path / "broken.tif"
        path.write_bytes(depth_tif.read_bytes()[:5000])
        message = "broken.tif: cannot read the raster"
    elif case == "no crs":
        path = write_geotiff(
            tmp_path / "nocrs.tif", values, transform=from_origin(0, 0, 1, 1), crs=None
        )
        message = "nocrs.tif: the raster has no CRS"
    elif case == "all nodata":
        path = write_geotiff(
            tmp_path / "empty_depth.tif",
            values * -1,
            transform=from_origin(13, 43, 0.01, 0.01),
            nodata=-1,
        )
        message = "empty_depth.tif: every pixel of the raster is nodata"
    else:
        path = tmp_path / "notes.tif"
        path.write_text("not a raster at all")
        message = "notes.tif: cannot read the raster"
    code, out, err = run(capsys, "hazard", path, "--raster-kind", "depth")
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_hazard_and_exposure_read_a_grid_and_a_geotiff(tmp_path, grid_xml, capsys):
    tif = write_mmi_tif(tmp_path / "mmi.tif")
    code, out, _ = run(capsys, "hazard", grid_xml, tif)
    assert code == 0
    assert "grid.xml: shakemap-grid, hazard earthquake" in out
    assert "mmi.tif: raster, hazard earthquake" in out and "MMI IX" in out
    for footprint in (grid_xml, tif):
        csv = tmp_path / f"{footprint.stem}.csv"
        code, out, err = run(
            capsys, "exposure", "--release", DEMO_RELEASE, "--hazard", footprint, "--out", csv
        )
        assert code == 0, err
        assert "most severe class reached: MMI IX" in out and csv.stat().st_size > 500


def test_a_raster_that_misses_the_release_is_an_error_and_writes_nothing(tmp_path, capsys):
    box = {"lon_min": -50, "lon_max": -48, "lat_min": -10, "lat_max": -8}
    far = write_grid_xml(tmp_path / "grid.xml", epicentre=(-49, -9), **box)
    out_csv = tmp_path / "x.csv"
    code, _, err = run(
        capsys, "exposure", "--release", DEMO_RELEASE, "--hazard", far, "--out", out_csv
    )
    assert code == 2
    assert "the footprint does not overlap any released cell" in err
    assert len(err.strip().splitlines()) == 1 and not out_csv.exists()


@pytest.mark.slow
def test_a_huge_sparse_raster_reads_in_bounded_memory(tmp_path):
    """20000 × 20000 uint8 (400 MB a band) read under a 900 MB address-space limit.

    Reading it whole would need the band, its mask and the class codes (1.2 GB); the
    reader reads strips and keeps only the 50 m block grid (16 MB).
    """
    path = write_sparse_extent(tmp_path / "extent.tif")
    code = (
        "import sys\nfrom geo.io.footprints import read_footprint\n"
        f"fp = read_footprint({str(path)!r}, name='extent.tif')\n"
        "print(fp.describe()['area_km2'].sum())"
    )
    limit = 900 * 2**20

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CPU, (180, 180))

    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        preexec_fn=limits,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # four ellipses of semi-axes 4 km and 2.5 km: 4 × π × 4 × 2.5 km²
    assert float(done.stdout.split()[-1]) == pytest.approx(4 * np.pi * 10, rel=0.01)


def test_scattered_pixels_keep_their_area_when_blocks_are_dithered(tmp_path):
    """Speckled depth (radar-like): a majority per 50 m block would erase the scattered
    shallow pixels; the reader keeps every class's area within 5 % of the pixel count."""
    depth = depth_field(600, 600, seed=7, speckle=0.3)
    path = write_geotiff(
        tmp_path / "speckled_depth.tif",
        depth,
        transform=from_origin(345_000, 4_760_000, 10, 10),
        crs=UTM33,
    )
    fp = read_footprint(path)
    assert any("ordered dithering" in note for note in fp.provenance["notes"])
    edges = [0.0, 0.15, 0.5, 1.5, 3.0, np.inf]
    got = fp.describe().set_index("class_label")["area_km2"]
    labels = ["0–0.15 m", "0.15–0.5 m", "0.5–1.5 m", "1.5–3 m", "≥ 3 m"]
    for label, lo, hi in zip(labels, edges, edges[1:], strict=False):
        pixels = ((depth > 0) & (depth >= lo) & (depth < hi)).sum()
        if pixels > 2000:
            assert got[label] == pytest.approx(pixels * 1e-4, rel=0.05), label
