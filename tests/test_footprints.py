"""Footprint reader: real public files from data/footprints and fixtures built in code."""

from __future__ import annotations

import itertools
import json
import math
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.errors import InputError
from geo.io.footprints import Footprint, FootprintError, read_footprint
from geo.tools.classes import combine_footprints, to_bands, to_cumulative

DATA = Path(__file__).resolve().parents[1] / "data" / "footprints"
NORCIA_MMI = DATA / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
NORCIA_PGA = DATA / "italy_norcia_20161030_M6.5_ingv8863681_cont_pga.json"
JAKARTA = DATA / "indonesia_jakarta_2007_flood_RW.shp"
MARAPI = DATA / "indonesia_marapi_volcano_evac_zone_3000m.shp"
EPICENTRE = shapely.Point(13.1092, 42.8303)
# a regular 64-gon of radius r has area (64 / 2) r² sin(2π / 64)
BUFFER_10KM_KM2 = 32 * 10**2 * math.sin(2 * math.pi / 64)


# --------------------------------------------------------------------------- helpers


def equal_area_km2(geoms) -> np.ndarray:
    """Area in km² through EPSG:6933, independent of the module's geodesic areas."""
    return gpd.GeoSeries(list(geoms), crs=4326).to_crs(6933).area.to_numpy() / 1e6


def label_at(fp_or_classes, x: float, y: float) -> list[str]:
    classes = fp_or_classes.classes if isinstance(fp_or_classes, Footprint) else fp_or_classes
    return classes[classes.intersects(shapely.Point(x, y))]["class_label"].tolist()


def assert_disjoint(classes: gpd.GeoDataFrame) -> None:
    for a, b in itertools.combinations(classes.geometry.values, 2):
        assert shapely.intersection(a, b).area < 1e-9


def assert_clean(fp: Footprint) -> None:
    classes = fp.classes
    columns = ["hazard_type", "class_label", "class_rank", "geometry"]
    if not fp.provenance["ordered"]:  # classes without a known order (geo.footprint_classes)
        columns.insert(3, "class_ordered")
    assert list(classes.columns) == columns
    assert classes.crs.to_epsg() == 4326
    assert classes["class_rank"].is_monotonic_increasing
    assert shapely.is_valid(classes.geometry.values).all()
    assert set(classes.geom_type) <= {"Polygon", "MultiPolygon"}
    assert classes["class_label"].is_unique


def write_json(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


def ring(x: float, y: float, r: float) -> list[list[float]]:
    return [list(c) for c in shapely.Point(x, y).buffer(r, quad_segs=32).exterior.coords]


def zip_files(path: Path, files: list[Path], arcdir: str = "") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for f in files:
            zf.write(f, f"{arcdir}{f.name}")
    return path


def shapefile_set(folder: Path, stem: str) -> list[Path]:
    return sorted(folder.glob(f"{stem}.*"))


# --------------------------------------------------------------------------- fixtures in code


def write_shakemap35(path: Path, with_bbox: bool = True) -> Path:
    """ShakeMap 3.5 contours: concentric rings, units 'intensity', ints and floats, no crs.

    Levels 4, 4.5, 5, 5.5, 6 around (10, 45); an island of 4 in the north-east and
    a pocket below 5.5 inside the 5.5–6 ring.
    """
    rings = [(2.5, 4), (2.0, 4.5), (1.5, 5), (1.0, 5.5), (0.5, 6)]
    features = [
        {
            "type": "Feature",
            "properties": {"value": v, "units": "intensity", "color": "#fff"},
            "geometry": {"type": "LineString", "coordinates": ring(10, 45, r)},
        }
        for r, v in rings
    ]
    features.append(
        {
            "type": "Feature",
            "properties": {"value": 4, "units": "intensity"},
            "geometry": {"type": "LineString", "coordinates": ring(14, 49, 0.3)},
        }
    )
    features.append(
        {
            "type": "Feature",
            "properties": {"value": 5.5, "units": "intensity"},
            "geometry": {"type": "MultiLineString", "coordinates": [ring(10.75, 45, 0.1)]},
        }
    )
    doc = {"type": "FeatureCollection", "features": features}
    if with_bbox:
        doc["bbox"] = [5, 40, 15, 50]
    return write_json(path, doc)


def write_shape_zip(folder: Path, nested: bool) -> Path:
    """ShakeMap 4 shape.zip with mi.shp (and pga.shp) around (10, 45).

    nested=True: each polygon is the area at or above PARAMVALUE 4.5, 5.5, 6.5.
    nested=False: disjoint bands like pcontour writes, PARAMVALUE at mid-band.
    """
    disks = [shapely.Point(10, 45).buffer(r, quad_segs=32) for r in (1.5, 1.0, 0.5)]
    if nested:
        geoms, values = disks, [4.5, 5.5, 6.5]
    else:
        geoms = [disks[0].difference(disks[1]), disks[1].difference(disks[2]), disks[2]]
        values = [5.0, 6.0, 7.0]
    src = folder / "shape"
    src.mkdir()
    gpd.GeoDataFrame({"PARAMVALUE": values}, geometry=geoms, crs=4326).to_file(src / "mi.shp")
    gpd.GeoDataFrame({"PARAMVALUE": [0.05, 0.1]}, geometry=disks[:2], crs=4326).to_file(
        src / "pga.shp"
    )
    return zip_files(folder / "shape.zip", sorted(src.iterdir()))


def write_cems_zip(folder: Path, n_side: int = 50, n_bowties: int = 20) -> Path:
    """Copernicus EMS delivery in EPSG:32633: 2,000 small flood polygons, some bow-ties."""
    src = folder / "EMSR999"
    src.mkdir()
    polys, descs = [], []
    for i, (gx, gy) in enumerate(itertools.product(range(n_side), range(40))):
        x, y = 400_000 + gx * 200, 4_700_000 + gy * 200
        if i < n_bowties:  # self-intersecting: two triangles of 1/4 square each
            polys.append(shapely.Polygon([(x, y), (x + 100, y + 100), (x + 100, y), (x, y + 100)]))
        else:
            polys.append(shapely.box(x, y, x + 100, y + 100))
        descs.append("Riverine flood" if i % 2 else "Flash flood")
    stem = "EMSR999_AOI01_DEL_PRODUCT"
    gpd.GeoDataFrame(
        {"obj_desc": descs, "notation": "Flooded area"}, geometry=polys, crs=32633
    ).to_file(src / f"{stem}_observedEventA_r1_v1.shp")
    gpd.GeoDataFrame(
        {"name": ["AOI01"]},
        geometry=[shapely.box(399_000, 4_699_000, 411_000, 4_709_000)],
        crs=32633,
    ).to_file(src / f"{stem}_areaOfInterestA_r1_v1.shp")
    return zip_files(
        folder / "EMSR999_AOI01_DEL_PRODUCT_r1_VECTORS_v1.zip",
        sorted(src.iterdir()),
        arcdir="vectors/",
    )


def write_gdacs(path: Path) -> Path:
    def square(x, y, r):
        return shapely.geometry.mapping(shapely.box(x - r, y - r, x + r, y + r))

    features = [
        {
            "type": "Feature",
            "properties": {"Class": cls, "eventtype": "TC", "eventid": 1001},
            "geometry": geom,
        }
        for cls, geom in [
            ("Poly_Green", square(120, 15, 3)),
            ("Poly_Orange", square(120, 15, 2)),
            ("Poly_Red", square(120, 15, 1)),
            ("Poly_Cones", square(125, 18, 2)),
            ("Point_Centroid", {"type": "Point", "coordinates": [120, 15]}),
        ]
    ]
    return write_json(path, {"type": "FeatureCollection", "features": features})


ACLED_MODERN = (
    "data_id,iso,event_id_cnty,event_date,year,event_type,sub_event_type,actor1,country,"
    "location,latitude,longitude,notes,fatalities,timestamp,iso3\n"
    "1,404,KEN1,9-May-20,2020,Battles,Armed clash,Militia,Kenya,Nairobi,-1.3,36.8,"
    '"Clash near the market.\nTwo injured, one ""serious"".",2,1589155200,KEN\n'
    "2,404,KEN2,2020-05-10,2020,Battles,Armed clash,Militia,Kenya,Nairobi,-1.3,36.8,"
    "Second clash,0,1589155200,KEN\n"
    "3,404,KEN3,12-May-20,2020,Protests,Peaceful protest,Protesters,Kenya,Thika,-1.0,37.0,"
    '"Protest\nagainst prices",0,1589155200,KEN\n'
    "4,404,KEN4,15-Jun-20,2020,Explosions/Remote violence,Remote explosive,Unknown,Kenya,"
    "Nakuru,-0.5,36.0,IED,1,1589155200,KEN\n"
    "5,404,KEN5,1-Jul-20,2020,Violence against civilians,Attack,Militia,Kenya,Nanyuki,0.5,"
    "36.5,Attack,3,1589155200,KEN\n"
    "6,404,KEN6,2-Jul-20,2020,Riots,Mob violence,Rioters,Kenya,Nowhere,abc,36.5,bad lat,0,"
    "1589155200,KEN\n"
    "7,404,KEN7,3-Jul-20,2020,Riots,Mob violence,Rioters,Kenya,Nowhere,95,36.5,bad lat,0,"
    "1589155200,KEN\n"
    '8,404,KEN8,4-Jul-20,2020,Battles,Armed clash,Militia,Kenya,Nairobi,-1.3,36.8,"Cut off'
)

ACLED_LEGACY = (
    "GWNO,EVENT_ID_CNTY,EVENT_DATE,YEAR,EVENT_TYPE,ACTOR1,COUNTRY,LOCATION,LATITUDE,"
    "LONGITUDE,NOTES,FATALITIES\n"
    "500,UGA1,01-January-2015,2015,Battles-No change of territory,Army,Uganda,Gulu,2.77,32.3,"
    '"Fighting\nreported",4\n'
    "500,UGA2,02-January-2015,2015,BATTLE-GOVERNMENT REGAINS TERRITORY,Army,Uganda,Lira,"
    "2.25,32.9,Retaken,1\n"
    "500,UGA3,03-February-2015,2015,VIOLENCE AGAINST CIVILIANS,Militia,Uganda,Arua,3.02,"
    "30.9,Attack,2\n"
    "500,UGA4,04-March-2015,2015,Riots/Protests,Protesters,Uganda,Kampala,0.31,32.58,"
    "Demonstration,0\n"
    "500,UGA5,05-March-2015,2015,Remote Violence,Unknown,Uganda,Kasese,0.18,30.08,Shelling,0\n"
    "500,UGA6,06-April-2015,2015,Strategic development,Army,Uganda,Moroto,2.53,34.66,Base,0\n"
    "500,UGA7,07-April-2015,2015,Battles-No change of territory,Army"
)


def write_kml(path: Path) -> Path:
    def placemark(name, x0):
        coords = f"{x0},0,0 {x0 + 1},0,0 {x0 + 1},1,0 {x0},1,0 {x0},0,0"
        return (
            f"<Placemark><name>{name}</name><Polygon><outerBoundaryIs><LinearRing>"
            f"<coordinates>{coords}</coordinates></LinearRing></outerBoundaryIs></Polygon>"
            "</Placemark>"
        )

    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2">'
        f"<Document><name>zones</name>{placemark('Zone A', 10)}{placemark('Zone B', 12)}"
        "</Document></kml>\n"
    )
    return path


TOPOJSON = {
    "type": "Topology",
    "objects": {
        "zones": {
            "type": "GeometryCollection",
            "geometries": [
                {"type": "Polygon", "arcs": [[0, 1]], "properties": {"risk": "High"}},
                {"type": "Polygon", "arcs": [[2, -1]], "properties": {"risk": "low"}},
            ],
        }
    },
    "arcs": [
        [[10, 0], [10, 1]],
        [[10, 1], [9, 1], [9, 0], [10, 0]],
        [[10, 0], [11, 0], [11, 1], [10, 1]],
    ],
}


@pytest.fixture(scope="module")
def norcia() -> Footprint:
    return read_footprint(NORCIA_MMI)


# --------------------------------------------------------------------------- ShakeMap contours


def test_norcia_mmi_bands_from_real_contours(norcia):
    assert_clean(norcia)
    assert norcia.classes["class_label"].tolist() == [
        "MMI < V",
        "MMI V",
        "MMI VI",
        "MMI VII",
        "MMI VIII",
        "MMI IX",
    ]
    assert norcia.classes["class_rank"].tolist() == [4, 5, 6, 7, 8, 9]
    assert label_at(norcia, EPICENTRE.x, EPICENTRE.y) == ["MMI IX"]
    prov = norcia.provenance
    assert prov["format"] == "shakemap-contours"
    assert prov["hazard_type"] == "earthquake"
    assert prov["feature_count"] == 10
    assert prov["cumulative_available"] is True
    assert prov["repairs"] == []
    assert not any("inconsistent" in n for n in prov["notes"])
    areas = norcia.describe().set_index("class_label")["area_km2"]
    assert areas["MMI IX"] == pytest.approx(563.7, rel=0.01)
    assert areas["MMI VIII"] == pytest.approx(1352.8, rel=0.01)
    assert areas["MMI VII"] == pytest.approx(8547.6, rel=0.01)


def test_norcia_bands_are_disjoint_cover_the_bbox_and_step_one_band_at_a_time(norcia):
    bbox = shapely.box(*json.loads(NORCIA_MMI.read_text())["bbox"])
    geoms = norcia.classes.geometry.values
    assert_disjoint(norcia.classes)
    assert shapely.union_all(geoms).symmetric_difference(bbox).area < 1e-9
    assert equal_area_km2(geoms).sum() == pytest.approx(equal_area_km2([bbox])[0], rel=1e-6)
    # nested by severity: a band borders the next one, never one two steps away
    for i, j in itertools.combinations(range(len(geoms)), 2):
        shared = shapely.intersection(geoms[i].boundary, geoms[j].boundary).length
        assert (shared > 0) == (j == i + 1), (i, j)


def test_norcia_cumulative_and_bands_round_trip(norcia):
    cumulative = to_cumulative(norcia.classes)
    assert cumulative["class_label"].tolist() == [
        "MMI: whole map",
        "MMI ≥ V",
        "MMI ≥ VI",
        "MMI ≥ VII",
        "MMI ≥ VIII",
        "MMI ≥ IX",
    ]
    band_areas = equal_area_km2(norcia.classes.geometry)
    cum_areas = equal_area_km2(cumulative.geometry)
    assert cum_areas[3] == pytest.approx(band_areas[3:].sum(), rel=1e-6)
    assert cum_areas[0] == pytest.approx(band_areas.sum(), rel=1e-6)
    again = to_bands(cumulative)
    assert equal_area_km2(again.geometry) == pytest.approx(band_areas, rel=1e-6)


def test_norcia_pga_contours_become_pga_bands():
    fp = read_footprint(NORCIA_PGA)
    assert_clean(fp)
    assert fp.provenance["hazard_type"] == "earthquake-pga"
    assert fp.classes["hazard_type"].unique().tolist() == ["earthquake-pga"]
    assert fp.classes["class_label"].tolist() == [
        "PGA < 0.2 %g",
        "PGA 0.2–0.5 %g",
        "PGA 0.5–1 %g",
        "PGA 1–2 %g",
        "PGA 2–5 %g",
        "PGA 5–10 %g",
        "PGA 10–20 %g",
        "PGA 20–50 %g",
        "PGA ≥ 50 %g",
    ]
    assert label_at(fp, EPICENTRE.x, EPICENTRE.y)[0] in ("PGA 20–50 %g", "PGA ≥ 50 %g")
    assert_disjoint(fp.classes)
    assert "PGA ≥ 10 %g" in to_cumulative(fp.classes)["class_label"].tolist()


def test_shakemap35_intensity_contours_with_island_and_pocket(tmp_path):
    fp = read_footprint(write_shakemap35(tmp_path / "cont_mi.json"))
    assert_clean(fp)
    assert fp.classes["class_label"].tolist() == ["MMI < IV", "MMI IV", "MMI V", "MMI VI"]
    assert label_at(fp, 10, 45) == ["MMI VI"]
    assert label_at(fp, 10.75, 45) == ["MMI V"]  # pocket below 5.5 inside the 5.5 ring
    assert label_at(fp, 14, 49) == ["MMI IV"]  # island of 4 outside the main rings
    assert label_at(fp, 5.5, 40.5) == ["MMI < IV"]
    assert_disjoint(fp.classes)
    assert shapely.union_all(fp.classes.geometry.values).area == pytest.approx(100, rel=1e-9)
    disks = {r: shapely.Point(10, 45).buffer(r, quad_segs=32) for r in (1.0, 2.0)}
    pocket = shapely.Point(10.75, 45).buffer(0.1, quad_segs=32)
    by_label = fp.classes.set_index("class_label").geometry
    assert by_label["MMI VI"].area == pytest.approx(disks[1.0].area - pocket.area, rel=1e-6)
    assert by_label["MMI V"].area == pytest.approx(
        disks[2.0].area - disks[1.0].area + pocket.area, rel=1e-6
    )


def test_shakemap35_without_bbox_uses_the_extent_of_the_lines(tmp_path):
    fp = read_footprint(write_shakemap35(tmp_path / "cont_mi.json", with_bbox=False))
    assert fp.classes["class_label"].tolist() == ["MMI < IV", "MMI IV", "MMI V", "MMI VI"]
    assert any("no bbox member" in n for n in fp.provenance["notes"])
    assert label_at(fp, 10, 45) == ["MMI VI"]


def test_open_contours_short_of_the_edge_are_extended(tmp_path):
    doc = {
        "type": "FeatureCollection",
        "bbox": [5, 40, 15, 50],
        "features": [
            {
                "type": "Feature",
                "properties": {"value": 5.0, "units": "mmi"},
                "geometry": {"type": "LineString", "coordinates": [[10, 40.5], [10, 49.5]]},
            },
            {
                "type": "Feature",
                "properties": {"value": 5.5, "units": "mmi"},
                "geometry": {"type": "LineString", "coordinates": [[12, 40], [12, 50]]},
            },
        ],
    }
    fp = read_footprint(write_json(tmp_path / "cont_mmi.json", doc))
    assert "extended 2 open contour ends to the map edge" in fp.provenance["repairs"]
    assert label_at(fp, 7, 45) == ["MMI < V"]
    assert label_at(fp, 11, 45) == ["MMI V"]
    assert label_at(fp, 14, 45) == ["MMI VI"]
    assert fp.classes.set_index("class_label").geometry["MMI V"].area == pytest.approx(20)


def test_single_contour_level_assumes_shaking_decreases_outwards(tmp_path):
    doc = {
        "type": "FeatureCollection",
        "bbox": [5, 40, 15, 50],
        "features": [
            {
                "type": "Feature",
                "properties": {"value": 6, "units": "intensity"},
                "geometry": {"type": "LineString", "coordinates": ring(10, 45, 1)},
            }
        ],
    }
    fp = read_footprint(write_json(tmp_path / "cont_mi.json", doc))
    assert fp.classes["class_label"].tolist() == ["MMI < VI", "MMI VI"]
    assert label_at(fp, 10, 45) == ["MMI VI"]
    assert any("single contour level" in n for n in fp.provenance["notes"])


# --------------------------------------------------------------------------- ShakeMap shape.zip


@pytest.mark.parametrize("nested", [True, False])
def test_shakemap_shape_zip_mi_to_mmi_bands(tmp_path, nested):
    fp = read_footprint(write_shape_zip(tmp_path, nested=nested))
    assert_clean(fp)
    assert fp.provenance["format"] == "shakemap-shape-zip"
    assert fp.provenance["class_field"] == "PARAMVALUE"
    assert fp.classes["class_label"].tolist() == ["MMI V", "MMI VI", "MMI VII"]
    assert label_at(fp, 10, 45) == ["MMI VII"]
    assert label_at(fp, 10, 45.75) == ["MMI VI"]
    assert_disjoint(fp.classes)
    assert any("pga" in n for n in fp.provenance["notes"])
    total = equal_area_km2(fp.classes.geometry).sum()
    disk = shapely.Point(10, 45).buffer(1.5, quad_segs=32)
    assert total == pytest.approx(equal_area_km2([disk])[0], rel=1e-6)


# --------------------------------------------------------------------------- Copernicus EMS


@pytest.fixture(scope="module")
def cems_zip(tmp_path_factory) -> Path:
    return write_cems_zip(tmp_path_factory.mktemp("cems"))


def test_cems_delivery_is_one_flooded_area_class(cems_zip):
    fp = read_footprint(cems_zip)
    assert_clean(fp)
    prov = fp.provenance
    assert prov["format"] == "cems"
    assert prov["hazard_type"] == "flood"
    assert prov["feature_count"] == 2000
    assert fp.classes["class_label"].tolist() == ["Flooded area"]
    assert "repaired 20 invalid polygons with make_valid" in prov["repairs"]
    assert "reprojected from EPSG:32633" in prov["repairs"]
    assert any("areaOfInterestA" in n for n in prov["notes"])
    # 1,980 squares of 0.01 km² and 20 bow-ties of 0.005 km² (UTM scale ≈ 0.9997)
    assert fp.describe()["area_km2"].iloc[0] == pytest.approx(19.9 / 0.9997**2, rel=2e-3)


def test_cems_split_by_obj_desc(cems_zip):
    fp = read_footprint(cems_zip, class_field="obj_desc")
    assert fp.classes["class_label"].tolist() == ["Flash flood", "Riverine flood"]
    assert fp.provenance["class_field"] == "obj_desc"


# --------------------------------------------------------------------------- GDACS


def test_gdacs_alert_polygons(tmp_path):
    fp = read_footprint(write_gdacs(tmp_path / "gdacs_tc_1001.geojson"))
    assert_clean(fp)
    assert fp.provenance["format"] == "gdacs"
    assert fp.provenance["hazard_type"] == "cyclone"
    assert fp.classes["class_label"].tolist() == [
        "Forecast cone",
        "Green alert",
        "Orange alert",
        "Red alert",
    ]
    assert fp.classes["class_rank"].tolist() == [-1, 1, 2, 3]
    assert any("dropped 1 point or line feature" in n for n in fp.provenance["notes"])
    bands = to_bands(fp.classes).set_index("class_label").geometry
    assert bands["Green alert"].area == pytest.approx(36 - 16)
    assert bands["Orange alert"].area == pytest.approx(16 - 4)
    assert label_at(to_bands(fp.classes), 120, 15) == ["Red alert"]
    assert to_cumulative(fp.classes).set_index("class_rank").loc[2, "class_label"] == (
        "Orange alert or worse"
    )


# --------------------------------------------------------------------------- ACLED


def test_acled_modern_export(tmp_path):
    path = tmp_path / "acled_kenya.csv"
    path.write_text(ACLED_MODERN)
    fp = read_footprint(path)
    assert_clean(fp)
    prov = fp.provenance
    assert prov["format"] == "acled"
    assert prov["hazard_type"] == "conflict"
    assert prov["feature_count"] == 7  # the truncated 8th record is skipped
    assert fp.classes["class_label"].tolist() == [
        "Protests",
        "Violence against civilians",
        "Explosions/Remote violence",
        "Battles",
    ]
    assert fp.classes["class_rank"].tolist() == [2, 4, 5, 6]
    notes = " | ".join(prov["notes"])
    assert "event_date" not in notes  # 9-May-20 and 2020-05-10 both read
    assert "truncated last row (row 9)" in notes
    assert "2 rows with unusable coordinates: rows 7, 8" in notes
    areas = fp.describe().set_index("class_label")["area_km2"]
    assert areas["Battles"] == pytest.approx(BUFFER_10KM_KM2, rel=2e-3)  # duplicates merged
    assert equal_area_km2(fp.classes.geometry)[0] == pytest.approx(BUFFER_10KM_KM2, rel=3e-3)


def test_acled_buffer_and_date_window(tmp_path):
    path = tmp_path / "acled.csv"
    path.write_text(ACLED_MODERN)
    small = read_footprint(path, buffer_km=5)
    assert small.describe()["area_km2"].iloc[0] == pytest.approx(BUFFER_10KM_KM2 / 4, rel=2e-3)
    window = read_footprint(path, date_from="2020-05-11", date_to="2020-06-30")
    assert window.classes["class_label"].tolist() == ["Protests", "Explosions/Remote violence"]
    with pytest.raises(FootprintError, match=r"acled\.csv: no ACLED event between 2019-01-01"):
        read_footprint(path, date_from="2019-01-01", date_to="2019-12-31")


def test_acled_legacy_upper_case_export(tmp_path):
    path = tmp_path / "ACLED_Uganda_1997-2015.csv"
    path.write_bytes(ACLED_LEGACY.encode())
    fp = read_footprint(path)
    assert_clean(fp)
    assert fp.classes["class_label"].tolist() == [
        "Strategic developments",
        "Riots/Protests",
        "Violence against civilians",
        "Explosions/Remote violence",
        "Battles",
    ]
    assert any("truncated last row (row 8)" in n for n in fp.provenance["notes"])
    assert fp.describe().set_index("class_label").loc["Battles", "parts"] == 2
    window = read_footprint(path, date_from="2015-03-01")
    assert "Battles" not in window.classes["class_label"].tolist()


def test_acled_buffer_across_the_antimeridian_is_split(tmp_path):
    path = tmp_path / "acled_fiji.csv"
    path.write_text(
        "event_date,event_type,latitude,longitude,fatalities\n2021-03-01,Protests,-17.0,179.95,0\n"
    )
    fp = read_footprint(path)
    geom = fp.classes.geometry.iloc[0]
    assert geom.geom_type == "MultiPolygon"
    assert geom.bounds[0] == pytest.approx(-180) and geom.bounds[2] == pytest.approx(180)
    assert fp.describe()["area_km2"].iloc[0] == pytest.approx(BUFFER_10KM_KM2, rel=3e-3)
    assert any("antimeridian" in r for r in fp.provenance["repairs"])


def test_csv_that_is_not_acled_is_refused(tmp_path):
    path = tmp_path / "places.csv"
    path.write_text("name,lat,lon\nA,1,2\n")
    with pytest.raises(FootprintError, match=r"places\.csv: not an ACLED export.*event_date"):
        read_footprint(path)


# --------------------------------------------------------------------------- real polygon files


def test_jakarta_flood_floodprone_yes_is_one_class():
    fp = read_footprint(JAKARTA, class_field="FLOODPRONE")
    assert_clean(fp)
    prov = fp.provenance
    assert fp.classes["class_label"].tolist() == ["Yes"]
    assert prov["feature_count"] == 1009
    assert prov["hazard_type"] == "flood"
    assert "repaired 7 invalid polygons with make_valid" in prov["repairs"]
    assert any("'YES', 'Yes' merged" in n for n in prov["notes"])
    assert fp.describe()["area_km2"].iloc[0] == pytest.approx(238.0, rel=0.01)


def test_marapi_unclosed_ring_is_closed_and_reported():
    fp = read_footprint(MARAPI)
    assert_clean(fp)
    assert "closed 1 unclosed ring" in fp.provenance["repairs"]
    assert fp.provenance["hazard_type"] == "volcano"
    assert fp.classes["class_label"].tolist() == ["indonesia_marapi_volcano_evac_zone_3000m"]
    assert fp.describe()["area_km2"].iloc[0] == pytest.approx(math.pi * 3**2, rel=0.01)
    assert len(fp.provenance["sha256"]) == 64


def test_admin_boundaries_read_as_polygons(tmp_path):
    regions = gpd.GeoDataFrame(
        {"reg_name": ["Umbria", "Marche", "Lazio"]},
        geometry=[
            shapely.box(12, 42.4, 13, 43.5),
            shapely.box(13, 42.6, 14, 43.9),
            shapely.box(11.5, 41, 14, 42.4),
        ],
        crs=4326,
    )
    path = tmp_path / "regions.geojson"
    regions.to_file(path)
    fp = read_footprint(path, class_field="REG_NAME")
    assert fp.classes["class_label"].tolist() == ["Lazio", "Marche", "Umbria"]
    # no known order: unordered, never ranked alphabetically (Umbria was the "worst")
    assert fp.provenance["ordered"] is False
    assert fp.classes["class_rank"].tolist() == [0, 0, 0]
    assert fp.classes["class_ordered"].tolist() == [False, False, False]
    assert fp.describe()["class_rank"].isna().all()
    assert any("unordered" in n for n in fp.provenance["notes"])
    assert fp.provenance["cumulative_available"] is False


@pytest.mark.parametrize(
    "path", sorted((DATA.parent / "admin").glob("*.geojson")), ids=lambda p: p.name
)
def test_shipped_admin_boundaries_read_as_polygons(path):
    fp = read_footprint(path)
    assert_clean(fp)
    assert fp.provenance["format"] == "polygons"
    assert fp.provenance["feature_count"] >= 20
    assert fp.describe()["area_km2"].iloc[0] > 1000


# --------------------------------------------------------------------------- other formats


def test_geopackage_numeric_classes_reprojected(tmp_path):
    zones = gpd.GeoDataFrame(
        {"level": [1, 3, 2]},
        geometry=[
            shapely.box(0, 0, 3, 3),
            shapely.box(1, 1, 2, 2),
            shapely.box(0.5, 0.5, 2.5, 2.5),
        ],
        crs=4326,
    ).to_crs(3857)
    path = tmp_path / "zones.gpkg"
    zones.to_file(path, layer="zones")
    gpd.GeoDataFrame({"n": [1]}, geometry=[shapely.Point(1, 1)], crs=3857).to_file(
        path, layer="sites"
    )
    fp = read_footprint(path, class_field="level")
    assert_clean(fp)
    assert fp.classes["class_label"].tolist() == ["1", "2", "3"]
    assert fp.provenance["cumulative_available"] is True
    assert "reprojected from EPSG:3857" in fp.provenance["repairs"]
    assert any("sites" in n for n in fp.provenance["notes"])
    assert fp.classes.total_bounds == pytest.approx([0, 0, 3, 3], abs=1e-9)


def test_kml_and_kmz_read_the_same(tmp_path):
    kml = write_kml(tmp_path / "zones.kml")
    kmz = zip_files(tmp_path / "zones.kmz", [kml.rename(tmp_path / "doc.kml")])
    write_kml(kml)
    for path in (kml, kmz):
        fp = read_footprint(path, class_field="Name")
        assert_clean(fp)
        assert fp.classes["class_label"].tolist() == ["Zone A", "Zone B"]
        assert fp.describe()["area_km2"].sum() == pytest.approx(2 * 12308, rel=0.01)


def test_topojson_with_ordinal_classes(tmp_path):
    fp = read_footprint(write_json(tmp_path / "risk.topojson", TOPOJSON), class_field="risk")
    assert_clean(fp)
    assert fp.classes["class_label"].tolist() == ["Low", "High"]
    assert fp.provenance["cumulative_available"] is True
    assert label_at(fp, 10.5, 0.5) == ["Low"]


def test_zip_with_several_shapefiles_reads_all_polygon_layers(tmp_path):
    for name, x in (("north", 0), ("south", 5)):
        gpd.GeoDataFrame(
            {"zone": [name]}, geometry=[shapely.box(x, 0, x + 1, 1)], crs=4326
        ).to_file(tmp_path / f"{name}.shp")
    files = shapefile_set(tmp_path, "north") + shapefile_set(tmp_path, "south")
    fp = read_footprint(zip_files(tmp_path / "zones.zip", files), class_field="zone")
    assert fp.classes["class_label"].tolist() == ["North", "South"]
    assert fp.provenance["feature_count"] == 2


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_shapefile_without_prj(tmp_path):
    gpd.GeoDataFrame(geometry=[shapely.box(10, 10, 11, 11)]).to_file(tmp_path / "lonlat.shp")
    fp = read_footprint(tmp_path / "lonlat.shp")
    assert any("assumed EPSG:4326" in n for n in fp.provenance["notes"])
    gpd.GeoDataFrame(geometry=[shapely.box(4e5, 4e6, 4.1e5, 4.1e6)]).to_file(tmp_path / "utm.shp")
    with pytest.raises(FootprintError, match=r"utm\.shp: footprint has no CRS"):
        read_footprint(tmp_path / "utm.shp")


def test_3d_and_antimeridian_polygons(tmp_path):
    coords = [[179, -17, 5], [-179, -17, 5], [-179, -16, 5], [179, -16, 5], [179, -17, 5]]
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Polygon", "coordinates": [coords]},
            }
        ],
    }
    fp = read_footprint(write_json(tmp_path / "fiji_flood.geojson", doc))
    repairs = fp.provenance["repairs"]
    assert "dropped Z from 1 feature" in repairs
    assert "split 1 feature at the antimeridian (180°)" in repairs
    geom = fp.classes.geometry.iloc[0]
    assert geom.geom_type == "MultiPolygon" and len(geom.geoms) == 2
    assert geom.area == pytest.approx(2.0)
    assert not shapely.has_z(geom)


def test_upload_name_is_used_for_display_and_hazard(tmp_path):
    upload = write_json(
        tmp_path / "tmpa1b2c3",
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {},
                    "geometry": shapely.geometry.mapping(shapely.box(0, 0, 1, 1)),
                }
            ],
        },
    )
    fp = read_footprint(upload, name="river_flood_extent.geojson")
    assert fp.provenance["file_name"] == "river_flood_extent.geojson"
    assert fp.provenance["hazard_type"] == "flood"
    assert fp.classes["class_label"].tolist() == ["river_flood_extent"]


def test_zipped_shapefile_uploaded_under_a_temporary_name(tmp_path):
    upload = zip_files(tmp_path / "tmp8f2k1", shapefile_set(DATA, MARAPI.stem))
    fp = read_footprint(upload, name="marapi_volcano_zone.zip")
    assert fp.classes["class_label"].tolist() == ["marapi_volcano_zone"]
    assert fp.provenance["hazard_type"] == "volcano"
    assert "closed 1 unclosed ring" in fp.provenance["repairs"]


# --------------------------------------------------------------------------- unusable files


def _points(tmp_path):
    return write_json(
        tmp_path / "sites.geojson",
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {},
                    "geometry": {"type": "Point", "coordinates": [1, 2]},
                }
            ],
        },
    )


def _lines(tmp_path):
    return write_json(
        tmp_path / "roads.geojson",
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"name": "a"},
                    "geometry": {"type": "LineString", "coordinates": [[1, 2], [3, 4]]},
                }
            ],
        },
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda p: (p / "empty.geojson").write_bytes(b"") and None or p / "empty.geojson",
            r"empty\.geojson: the file is empty",
        ),
        (_points, r"sites\.geojson: no polygons in the file \(1 point layer"),
        (_lines, r"roads\.geojson: no polygons in the file \(1 line layer"),
        (
            lambda p: (p / "notes.xyz").write_text("hello world") and p / "notes.xyz",
            r"notes\.xyz: not a vector file this reader knows",
        ),
        (
            lambda p: (p / "blob.bin").write_bytes(bytes(range(256)) * 8) and p / "blob.bin",
            r"blob\.bin: not a vector file this reader knows",
        ),
        (
            lambda p: zip_files(p / "docs.zip", [(p / "a.txt").write_text("x") and p / "a.txt"]),
            r"docs\.zip: the zip holds no vector file",
        ),
        (
            lambda p: write_json(p / "none.geojson", {"type": "FeatureCollection", "features": []}),
            r"none\.geojson: the file has no features",
        ),
        (lambda p: p / "missing.geojson", r"missing\.geojson: file not found"),
    ],
)
def test_unusable_footprints_raise_one_line_errors(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(FootprintError, match=message) as err:
        read_footprint(path)
    assert "\n" not in str(err.value)
    assert isinstance(err.value, ValueError)
    assert isinstance(err.value, InputError)


def test_a_readers_error_names_the_file_never_the_servers_folder(tmp_path):
    """The dashboard keeps an upload in a session folder; its visitor sees the file's name."""
    upload = tmp_path / "crisis-exposure-session-x" / "footprints" / "notes.geojson"
    upload.parent.mkdir(parents=True)
    upload.write_text("hello world, just notes")
    with pytest.raises(FootprintError) as err:
        read_footprint(upload)
    message = str(err.value)
    assert message.startswith("notes.geojson: not a vector file this reader knows ('notes.geojson'")
    assert str(tmp_path) not in message and "session" not in message
    assert "DRIVER" not in message  # GDAL's advice to programmers is left out


def test_a_shapefile_without_its_sidecars_says_what_to_supply(tmp_path):
    alone = tmp_path / "upload" / "flood.shp"
    alone.parent.mkdir()
    alone.write_bytes((DATA / "indonesia_jakarta_2007_flood_RW.shp").read_bytes())
    with pytest.raises(FootprintError) as err:
        read_footprint(alone)
    assert str(err.value) == (
        "flood.shp: its .shx index file is missing; supply the .shp with its .shx, .dbf and "
        ".prj (together, or in one .zip)."
    )


def test_missing_class_field_lists_the_fields():
    expected = r"no field 'depth'; the fields are KAB_NAME, KEC_NAME"
    with pytest.raises(FootprintError, match=expected):
        read_footprint(JAKARTA, class_field="depth")


# --------------------------------------------------------------------------- combining


def test_combine_footprints_keeps_class_systems_apart(tmp_path, norcia):
    """A flood and an earthquake: a place gets one class of each, never only the 'worst'."""
    flood = gpd.GeoDataFrame(
        geometry=[shapely.box(13.0, 42.7, 13.2, 42.9), shapely.box(12.0, 43.8, 12.2, 44.0)],
        crs=4326,
    )
    flood.to_file(tmp_path / "flood.geojson")
    flood_fp = read_footprint(tmp_path / "flood.geojson")
    combined = combine_footprints([flood_fp, norcia])
    assert list(combined.columns) == ["hazard_type", "class_label", "class_rank", "geometry"]
    assert combined["class_rank"].tolist() == list(range(1, len(combined) + 1))
    quake = combined[combined["class_label"].str.startswith("earthquake: ")]
    flooded = combined[combined["class_label"].str.startswith("flood: ")]
    assert len(quake) + len(flooded) == len(combined)
    assert_disjoint(quake)
    # the first footprint's system is listed first (ranks above), its classes whole
    assert flooded["class_rank"].min() > quake["class_rank"].max()
    assert label_at(combined, EPICENTRE.x, EPICENTRE.y) == ["earthquake: MMI IX", "flood: flood"]
    assert label_at(combined, 12.1, 43.9) == ["earthquake: MMI V", "flood: flood"]
    assert label_at(combined, 13.25, 42.75) == ["earthquake: MMI IX"]
    assert equal_area_km2(quake.geometry).sum() == pytest.approx(
        equal_area_km2(norcia.classes.geometry).sum(), rel=1e-6
    )
    assert equal_area_km2(flooded.geometry).sum() == pytest.approx(
        equal_area_km2(flood.geometry).sum(), rel=1e-6
    )


def test_to_bands_rejects_frames_without_class_columns():
    with pytest.raises(ValueError, match="class_rank"):
        to_bands(
            gpd.GeoDataFrame(
                {"class_label": ["a"], "hazard_type": ["x"]},
                geometry=[shapely.box(0, 0, 1, 1)],
                crs=4326,
            )
        )


def _one_polygon(path, ring):
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        ],
    }
    return write_json(path, doc)


@pytest.mark.parametrize(("west", "east"), [(-10, 175), (-100, 100), (-170, 170)])
def test_wide_polygon_is_not_moved_to_the_other_side_of_the_globe(tmp_path, west, east):
    """A four-corner box wider than 180° is read as drawn, not split at 180°."""
    ring = [[west, 35], [east, 35], [east, 47], [west, 47], [west, 35]]
    fp = read_footprint(_one_polygon(tmp_path / "wide.geojson", ring))
    geom = fp.classes.geometry.iloc[0]
    assert geom.bounds == pytest.approx((west, 35, east, 47))
    assert geom.area == pytest.approx((east - west) * 12)
    assert geom.contains(shapely.Point(12.5, 42.0))  # Italy stays inside
    assert not any("antimeridian" in r for r in fp.provenance["repairs"])


def test_sparse_ring_across_the_antimeridian_is_still_split(tmp_path):
    ring = [[176, -17], [-176, -17], [-176, -16], [176, -16], [176, -17]]
    fp = read_footprint(_one_polygon(tmp_path / "fiji.geojson", ring))
    geom = fp.classes.geometry.iloc[0]
    assert geom.geom_type == "MultiPolygon" and geom.area == pytest.approx(8.0)
    assert geom.bounds[0] == pytest.approx(-180) and geom.bounds[2] == pytest.approx(180)
