"""Hazard products read as their publishers mean them, class order, and one-line errors.

Copernicus EMS grading deliveries, CAP alerts, USGS finite-fault ruptures and
ShakeMap labels (fixtures in :mod:`tests.footprint_files`); classes without a
known order; footprints that meet no released cell; a broken file of every
format the reader knows; every footprint file of the shared public data.
"""

from __future__ import annotations

import json
import math
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from pyproj import Geod

from geo.cli import main
from geo.io.footprints import FootprintError, read_footprint
from geo.tools.classes import to_bands
from tests.export_files import read_exposure_csv
from tests.footprint_files import (
    EMS_GRADES,
    NORCIA,
    rupture_document,
    write_cap_alert,
    write_ems_grading_zip,
    write_integer_contours,
    write_nested_zones,
    write_rupture,
)

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "data" / "demo" / "central_italy.release.parquet"
NORCIA_MMI = ROOT / "data" / "footprints" / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
NORCIA_PGA = NORCIA_MMI.with_name(NORCIA_MMI.name.replace("_mmi", "_pga"))
GEOD = Geod(ellps="WGS84")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def km2(geom) -> float:
    return abs(GEOD.geometry_area_perimeter(shapely.orient_polygons(geom))[0]) / 1e6


# --------------------------------------------------------------------------- Copernicus EMS grading


@pytest.fixture(scope="module")
def ems_zip(tmp_path_factory) -> Path:
    return write_ems_grading_zip(tmp_path_factory.mktemp("ems"))


def test_ems_grading_reads_damage_grades_in_the_publishers_order(ems_zip):
    fp = read_footprint(ems_zip)
    prov = fp.provenance
    assert prov["format"] == "cems-grading" and prov["ordered"] is True
    # worst last (rank ascending): both EMS scales interleaved, the publisher's words
    assert fp.classes["class_label"].tolist() == [
        "No visible damage",
        "Not Affected",
        "Negligible to slight damage",
        "Possibly damaged",
        "Moderately Damaged",
        "Damaged",
        "Highly Damaged",
        "Destroyed",
        "Completely Destroyed",
    ]
    assert fp.classes["class_rank"].is_monotonic_increasing and fp.classes["class_rank"].is_unique
    ranks = fp.classes.set_index("class_label")["class_rank"]
    assert ranks["Completely Destroyed"] > ranks["Highly Damaged"] > ranks["Not Affected"]
    assert ranks["Destroyed"] > ranks["Damaged"] > ranks["No visible damage"]
    # building points became 25 m circles: one part per building, each ≈ π·25² m²
    parts = fp.describe().set_index("class_label")["parts"]
    assert {g: int(parts[g]) for g, _ in EMS_GRADES} == dict(EMS_GRADES)
    destroyed = fp.classes.set_index("class_label").geometry["Completely Destroyed"]
    assert km2(destroyed) == pytest.approx(3 * math.pi * 25**2 / 1e6, rel=0.03)
    # settlement polygons (100 m × 100 m) kept as they are
    block = fp.classes.set_index("class_label").geometry["Destroyed"]
    assert km2(block) == pytest.approx(0.01, rel=0.01)
    assert any("Not Analysed" in n for n in prov["notes"])


def test_ems_context_layers_are_never_hazard(ems_zip):
    fp = read_footprint(ems_zip)
    everything = shapely.union_all(fp.classes.geometry.values)
    # the whole hazard is a few buildings (0.1 km²), not the 100 km² area of interest
    assert km2(everything) < 0.2
    lon, lat = NORCIA
    assert not everything.intersects(shapely.Point(lon - 0.03, lat - 0.03))  # on the graded road
    assert not any("transportation" in label for label in fp.classes["class_label"])
    unused = next(n for n in fp.provenance["notes"] if n.startswith("layers of the delivery not"))
    for layer in ("areaOfInterestA", "imageFootprintA", "landUseA", "hydrographyA"):
        assert layer in unused
    assert "transportationL" in unused


def test_ems_observed_flood_trace_is_the_flooded_area(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    stem = "EMSR333_AOI02_DEL_MONIT01"
    gpd.GeoDataFrame(
        {"obj_desc": ["Riverine flood"]},
        geometry=[shapely.box(300_000, 4_500_000, 301_000, 4_501_000)],
        crs=32633,
    ).to_file(src / f"{stem}_floodTraceA_r1_v1.shp")
    gpd.GeoDataFrame(
        {"name": ["AOI"]}, geometry=[shapely.box(290_000, 4_490_000, 310_000, 4_510_000)], crs=32633
    ).to_file(src / f"{stem}_areaOfInterestA_r1_v1.shp")
    path = tmp_path / f"{stem}_VECTORS.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for file in src.iterdir():
            zf.write(file, file.name)
    fp = read_footprint(path)
    assert fp.provenance["format"] == "cems"
    assert fp.classes["class_label"].tolist() == ["Flooded area"]
    assert fp.describe()["area_km2"].iloc[0] == pytest.approx(1.0, rel=0.01)


def test_hazard_command_prints_the_ems_grades(ems_zip, capsys):
    code, out, err = run(capsys, "hazard", ems_zip)
    assert code == 0 and not err
    assert "cems-grading" in out and "Completely Destroyed" in out


# ------------------------------------------------------------------ USGS finite-fault rupture


def test_rupture_is_one_fault_rupture_class(tmp_path):
    fp = read_footprint(write_rupture(tmp_path / "rupture.json"))
    assert fp.provenance["format"] == "usgs-rupture"
    assert fp.provenance["hazard_type"] == "earthquake"
    assert fp.classes["class_label"].tolist() == ["Fault rupture"]
    assert any("hypocentre" in n for n in fp.provenance["notes"])
    # the two dipping quads projected to the ground, plus the vertical one as a 1 km band
    doc = rupture_document()
    quads = [
        shapely.Polygon([c[:2] for c in q[0]])
        for q in doc["features"][0]["geometry"]["coordinates"]
    ]
    expected = km2(shapely.union_all(quads[:2]))
    vertical_km = (
        GEOD.line_length(
            *zip(
                *[c[:2] for c in doc["features"][0]["geometry"]["coordinates"][2][0][:2]],
                strict=True,
            )
        )
        / 1000
    )
    area = fp.describe()["area_km2"].iloc[0]
    assert area == pytest.approx(expected + 1.0 * vertical_km, rel=0.03)


def test_a_vertical_fault_no_longer_crashes_hazard(tmp_path, capsys):
    """Before: IndexError traceback (every polygon collapsed to a line on the ground)."""
    doc = rupture_document()
    doc["features"][0]["geometry"]["coordinates"] = doc["features"][0]["geometry"]["coordinates"][
        2:
    ]
    path = tmp_path / "rupture.json"
    path.write_text(json.dumps(doc))
    code, out, err = run(capsys, "hazard", path)
    assert code == 0 and "Fault rupture" in out and not err


def test_a_point_source_rupture_is_one_line(tmp_path, capsys):
    doc = rupture_document()
    doc["features"] = doc["features"][1:]
    path = tmp_path / "rupture.json"
    path.write_text(json.dumps(doc))
    code, _, err = run(capsys, "hazard", path)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "no fault segment" in err


# --------------------------------------------------------------------------- CAP alerts


def test_cap_alert_classes_by_severity_with_geodesic_circles(tmp_path):
    fp = read_footprint(write_cap_alert(tmp_path / "alert.xml"))
    prov = fp.provenance
    assert prov["format"] == "cap" and prov["hazard_type"] == "earthquake"
    assert fp.classes["class_label"].tolist() == ["Severe", "Extreme"]
    assert fp.classes["class_rank"].tolist() == [4, 5]
    by_label = fp.classes.set_index("class_label").geometry
    assert km2(by_label["Extreme"]) == pytest.approx(math.pi * 3**2, rel=2e-3)
    lon, lat = NORCIA
    assert by_label["Extreme"].contains(shapely.Point(lon, lat))
    assert by_label["Severe"].contains(shapely.Point(lon + 0.1, lat + 0.05))
    assert any("geocode" in n for n in prov["notes"])
    bands = to_bands(fp.classes).set_index("class_label").geometry
    assert not bands["Severe"].contains(shapely.Point(lon, lat))  # the worst wins


def test_cap_with_entities_is_refused_unresolved(tmp_path, capsys):
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><info><severity>&b;</severity>'
        "</info></alert>"
    )
    path = tmp_path / "alert.xml"
    path.write_text(bomb)
    code, _, err = run(capsys, "hazard", path)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "DTD or entities" in err


# --------------------------------------------------------------------------- MMI labels


MMI_LABEL = r"MMI (< )?[IVX]+"


def test_integer_contours_are_labelled_in_roman(tmp_path):
    """Before: 'MMI < 2' here and 'MMI < V' for the INGV file."""
    fp = read_footprint(write_integer_contours(tmp_path / "cont_mmi.json"))
    assert fp.classes["class_label"].tolist() == ["MMI < II", "MMI II", "MMI III", "MMI IV"]


def test_every_shipped_shakemap_has_consistent_labels():
    mmi = read_footprint(NORCIA_MMI).classes["class_label"]
    assert mmi.str.fullmatch(MMI_LABEL).all()
    assert "MMI < V" in set(mmi)
    pga = read_footprint(NORCIA_PGA).classes["class_label"]
    assert pga.str.fullmatch(r"PGA (< \S+|\S+–\S+|≥ \S+) %g").all()


def test_shape_zip_labels_are_roman(tmp_path):
    src = tmp_path / "shape"
    src.mkdir()
    disks = [shapely.Point(13, 42.8).buffer(r) for r in (0.6, 0.4, 0.2)]
    rings = [disks[0].difference(disks[1]), disks[1].difference(disks[2]), disks[2]]
    gpd.GeoDataFrame({"PARAMVALUE": [4.0, 5.0, 6.0]}, geometry=rings, crs=4326).to_file(
        src / "mi.shp"
    )
    path = tmp_path / "shape.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for file in src.iterdir():
            zf.write(file, file.name)
    labels = read_footprint(path).classes["class_label"]
    assert labels.tolist() == ["MMI IV", "MMI V", "MMI VI"]


# --------------------------------------------------------------------------- class order


@pytest.fixture
def zones(tmp_path) -> Path:
    return write_nested_zones(tmp_path / "zones.geojson")


def test_unknown_order_is_reported_unordered_on_the_cli(zones, tmp_path, capsys):
    out_csv = tmp_path / "x.csv"
    code, out, err = run(
        capsys,
        "exposure",
        "--release",
        RELEASE,
        "--hazard",
        zones,
        "--class-field",
        "zone",
        "--out",
        out_csv,
    )
    assert code == 0, err
    assert "classes unordered" in out and "most severe class reached" not in out
    table = read_exposure_csv(out_csv)
    assert set(table["hazard_class"]) == {"Red zone", "Buffer", "Watch"}
    # nested zones stay whole: no alphabetical "worst wins" cut (Watch would have won)
    totals = table.groupby("hazard_class")["persons_high"].sum()
    assert totals["Watch"] >= totals["Buffer"] >= totals["Red zone"] > 0
    assert "unordered" in Path(f"{out_csv}-metadata.json").read_text()  # the export says so
    code, _, err = run(
        capsys,
        "exposure",
        "--release",
        RELEASE,
        "--hazard",
        zones,
        "--class-field",
        "zone",
        "--cumulative",
        "--out",
        tmp_path / "y.csv",
    )
    assert code == 2 and "a cumulative view needs classes with an order" in err
    assert not (tmp_path / "y.csv").exists()


def test_class_order_ranks_the_classes(zones, tmp_path, capsys):
    order = "Red zone, Buffer, Watch"
    fp = read_footprint(zones, class_field="zone", class_order=order)
    assert fp.provenance["ordered"] and fp.provenance["cumulative_available"]
    assert fp.classes.sort_values("class_rank")["class_label"].tolist() == [
        "Watch",
        "Buffer",
        "Red zone",
    ]
    code, out, err = run(
        capsys,
        "exposure",
        "--release",
        RELEASE,
        "--hazard",
        zones,
        "--class-field",
        "zone",
        "--class-order",
        order,
        "--cumulative",
        "--out",
        tmp_path / "x.csv",
    )
    assert code == 0, err
    assert "most severe class reached: Red zone or worse" in out
    code, _, err = run(
        capsys, "hazard", zones, "--class-field", "zone", "--class-order", "Red zone,Buffer"
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "the class order lacks 'Watch'" in err


# --------------------------------------------------------------------------- no overlap


def test_a_footprint_on_another_continent_is_one_line_and_no_file(tmp_path, capsys):
    """Before: nan, 0.0, Empty DataFrame, a header-only CSV and exit 0."""
    lima = write_cap_alert(tmp_path / "lima_alert.xml", centre=(-77.04, -12.05))
    out_csv = tmp_path / "x.csv"
    code, out, err = run(
        capsys, "exposure", "--release", RELEASE, "--hazard", lima, "--out", out_csv
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "the footprint does not overlap any released cell (footprint bbox -77." in lines[0]
    assert "release bbox 1" in lines[0]
    assert "nan" not in out + err and "Empty DataFrame" not in out
    assert not out_csv.exists()


# --------------------------------------------------------------------------- broken files


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


BROKEN = {
    "geojson": (
        "zones.geojson",
        lambda p: p.write_text('{"type": "FeatureCollection", "features": ['),
    ),
    "topojson": (
        "zones.topojson",
        lambda p: p.write_text(
            '{"type": "Topology", "objects": {"a": {"type": "GeometryCollection", '
            '"geometries": [{"type": "Polygon", "arcs": [[7]]}]}}, "arcs": []}'
        ),
    ),
    "shp zip": ("zones.zip", lambda p: _zip(p, {"zones.shp": b"\0" * 100, "zones.dbf": b"x"})),
    "gpkg": ("zones.gpkg", lambda p: p.write_bytes(b"SQLite format 3\0" + b"\1" * 200)),
    "kml": ("zones.kml", lambda p: p.write_text('<?xml version="1.0"?><kml><Document><Placemark>')),
    "kmz": ("zones.kmz", lambda p: _zip(p, {"doc.kml": b"<kml><Document><Placemark><Polygon>"})),
    "shakemap json": (
        "cont_mmi.json",
        lambda p: p.write_text(
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "properties": {"value": "high", "units": "mmi"},
                            "geometry": {
                                "type": "LineString",
                                "coordinates": [[13, 42], [13.5, 42.5]],
                            },
                        }
                    ],
                }
            )
        ),
    ),
    "shape.zip": ("shape.zip", lambda p: _zip(p, {"mi.shp": b"\0" * 100, "mi.dbf": b"x"})),
    "cems": (
        "EMSR1_AOI01_GRA_PRODUCT_VECTORS.zip",
        lambda p: _zip(
            p,
            {
                "EMSR1_AOI01_GRA_PRODUCT_builtUpP_r1_v1.shp": b"\0" * 100,
                "EMSR1_AOI01_GRA_PRODUCT_builtUpP_r1_v1.dbf": b"x",
            },
        ),
    ),
    "gdacs": (
        "gdacs.geojson",
        lambda p: p.write_text(
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "properties": {"Class": "Poly_Red", "eventtype": "TC"},
                            "geometry": {"type": "Polygon", "coordinates": [[[10, 0], [11, 1]]]},
                        }
                    ],
                }
            )
        ),
    ),
    "acled": ("acled.csv", lambda p: p.write_text("event_date,notes\n9-May-20,x\n")),
    "cap": (
        "alert.xml",
        lambda p: p.write_text(
            '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><info><area><polygon>1,2'
        ),
    ),
    "rupture": (
        "rupture.json",
        lambda p: p.write_text(
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "metadata": {"reference": "x", "mag": 6},
                    "features": [
                        {
                            "type": "Feature",
                            "properties": {"rupture type": "rupture extent"},
                            "geometry": {"type": "MultiPolygon", "coordinates": [[[["a"]]]]},
                        }
                    ],
                }
            )
        ),
    ),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_broken_file_of_every_reader_is_one_line_and_exit_2(kind, tmp_path, capsys):
    name, write = BROKEN[kind]
    path = tmp_path / name
    write(path)
    with warnings.catch_warnings(record=True) as caught:  # they would print to stderr
        warnings.simplefilter("always")
        code, out, err = run(capsys, "hazard", path)
    assert not caught, [str(w.message) for w in caught]
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith(f"crisis-exposure hazard: error: {name}:"), err
    with pytest.raises(FootprintError):
        read_footprint(path)


# ------------------------------------------------------------------ the shared public files


def _public_folder() -> Path | None:
    for parent in ROOT.parents:
        folder = parent / "shared" / "data" / "public"
        if folder.is_dir():
            return folder
    return None


PUBLIC = _public_folder()
PUBLIC_FOOTPRINTS = sorted(
    p.relative_to(PUBLIC).as_posix()
    for folder in ("earthquake", "flood", "volcano", "admin", "basemap")
    for p in ((PUBLIC / folder).iterdir() if PUBLIC and (PUBLIC / folder).is_dir() else [])
    if p.suffix.lower() in (".json", ".geojson", ".shp")
)


@pytest.mark.skipif(PUBLIC is None, reason="the shared public data are not beside the checkout")
def test_hazard_reads_every_public_footprint_and_every_built_product(tmp_path, capsys):
    built = [
        write_ems_grading_zip(tmp_path),
        write_cap_alert(tmp_path / "alert.xml"),
        write_rupture(tmp_path / "rupture.json"),
    ]
    assert len(PUBLIC_FOOTPRINTS) >= 7
    for path in [PUBLIC / name for name in PUBLIC_FOOTPRINTS] + built:
        code, out, err = run(capsys, "hazard", path)
        assert code == 0, (path.name, err)
        assert out.startswith(f"{path.name}: ") and not err


def test_unordered_classes_get_no_alert_colours(zones):
    from geo.viz.layers import classes_to_layer
    from geo.viz.legends import CLASS_PALETTE

    unordered = read_footprint(zones, class_field="zone").classes
    _, legend = classes_to_layer(unordered)
    assert not {entry.colour for entry in legend} & set(CLASS_PALETTE)
    ordered = read_footprint(zones, class_field="zone", class_order="Red zone,Buffer,Watch")
    _, legend = classes_to_layer(ordered.classes)
    assert {entry.colour for entry in legend} <= set(CLASS_PALETTE)


def test_unordered_classes_combine_without_a_rank(zones):
    """Overlaid on the ShakeMap, unordered zones stay whole and rank nothing."""
    from geo.tools.classes import combine_footprints, to_cumulative

    unordered = read_footprint(zones, class_field="zone")
    combined = combine_footprints([read_footprint(NORCIA_MMI), unordered])
    mmi = combined[combined["class_ordered"]]
    assert mmi["class_rank"].tolist() == [1, 2, 3, 4, 5, 6]
    assert mmi["class_label"].iloc[-1] == "earthquake: MMI IX"
    rest = combined[~combined["class_ordered"]]
    assert set(rest["class_rank"]) == {0}
    # nested zones are not cut by one another: Watch keeps its whole disk
    watch = rest.set_index("class_label").geometry["unspecified: Watch"]
    assert watch.area == pytest.approx(
        unordered.classes.set_index("class_label").geometry["Watch"].area
    )
    with pytest.raises(ValueError, match="no cumulative view"):
        to_cumulative(unordered.classes)
