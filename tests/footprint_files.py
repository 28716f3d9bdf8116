"""Hazard products written in code, in the shape their publishers deliver them.

Shared by the reader tests and the dashboard's CLI-and-page equality test:
a Copernicus EMS grading delivery (EMSR190-like), a CAP 1.2 alert, a USGS
finite-fault ``rupture.json`` and ShakeMap contours at integer levels.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import shapely
from pyproj import Transformer

NORCIA = (13.0935, 42.7925)  # lon, lat of the town
EMS_STEM = "EMSR190_AOI01_GRA_PRODUCT"
# (grade as the publisher writes it, number of buildings)
EMS_GRADES = [
    ("Completely Destroyed", 3),
    ("Highly Damaged", 4),
    ("Moderately Damaged", 5),
    ("Negligible to slight damage", 6),
    ("Not Affected", 7),
]


def _utm33(lon: float, lat: float) -> tuple[float, float]:
    return Transformer.from_crs(4326, 32633, always_xy=True).transform(lon, lat)


def write_ems_grading_zip(folder: Path, centre: tuple[float, float] = NORCIA) -> Path:
    """An EMS grading delivery in EPSG:32633 with eight layers, like EMSR190.

    Building points (``builtUpP``, field ``grading``) on a 60 m grid around the
    centre, graded worst in the middle; settlement polygons (``builtUpA``, field
    ``damage_gra``) with the older grade names; and the context layers that must
    never be read as hazard: area of interest, image footprint (map frame), land
    use, hydrography, and transportation lines that carry a grading too.
    """
    src = folder / "EMSR190_AOI01_GRA_PRODUCT_r1_VECTORS_v1"
    src.mkdir(parents=True)
    x0, y0 = _utm33(*centre)
    crs = 32633

    def layer(name: str, frame: dict, geoms: list) -> None:
        gdf = gpd.GeoDataFrame(frame, geometry=geoms, crs=crs)
        gdf.to_file(src / f"{EMS_STEM}_{name}_r1_v1.shp")

    points, grades = [], []
    i = 0
    for grade, n in EMS_GRADES:
        for _ in range(n):
            points.append(shapely.Point(x0 + (i % 5) * 60, y0 + (i // 5) * 60))
            grades.append(grade)
            i += 1
    points.append(shapely.Point(x0 - 60, y0 - 60))
    grades.append("Not Analysed")
    layer("builtUpP", {"obj_type": "11-Residential", "grading": grades}, points)
    blocks = [shapely.box(x0 + 400 + k * 150, y0, x0 + 500 + k * 150, y0 + 100) for k in range(4)]
    old = ["Destroyed", "Damaged", "Possibly damaged", "No visible damage"]
    layer("builtUpA", {"obj_type": "Block", "damage_gra": old}, blocks)
    aoi = shapely.box(x0 - 5000, y0 - 5000, x0 + 5000, y0 + 5000)
    layer("areaOfInterestA", {"name": ["Norcia"]}, [aoi])
    layer("imageFootprintA", {"sensor": ["WorldView-2"]}, [aoi.buffer(500)])
    layer("landUseA", {"obj_type": ["Forest", "Arable land"]}, [aoi, aoi.buffer(-100)])
    layer("hydrographyA", {"obj_type": ["Lake"]}, [shapely.box(x0 - 3000, y0, x0 - 2500, y0 + 500)])
    layer(
        "transportationL",
        {"obj_type": ["Road"], "grading": ["Completely Destroyed"]},
        [shapely.LineString([(x0 - 4000, y0 - 4000), (x0 + 4000, y0 + 4000)])],
    )
    layer(
        "hydrographyL",
        {"obj_type": ["River"]},
        [shapely.LineString([(x0 - 4000, y0 + 4000), (x0 + 4000, y0 - 4000)])],
    )
    out = folder / "EMSR190_AOI01_GRA_PRODUCT_r1_VECTORS_v1_vector.zip"
    with zipfile.ZipFile(out, "w") as zf:
        for path in sorted(src.iterdir()):
            zf.write(path, f"{src.name}/{path.name}")
    return out


def cap_alert_xml(centre: tuple[float, float] = NORCIA) -> str:
    """A CAP 1.2 alert: a Severe polygon and an Extreme 3 km circle (two info blocks)."""
    lon, lat = centre
    ring = [(lat - 0.1, lon - 0.15), (lat - 0.1, lon + 0.15), (lat + 0.1, lon + 0.15)]
    ring += [(lat + 0.1, lon - 0.15), ring[0]]
    polygon = " ".join(f"{a:.4f},{b:.4f}" for a, b in ring)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>TEST-2016-10-30-001</identifier>
  <sender>civil.protection@example.org</sender>
  <sent>2016-10-30T08:00:00+01:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <category>Geo</category>
    <event>Earthquake aftershock warning</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <area>
      <areaDesc>Valnerina</areaDesc>
      <polygon>{polygon}</polygon>
    </area>
    <area>
      <areaDesc>Province of Perugia</areaDesc>
      <geocode><valueName>ISTAT</valueName><value>054</value></geocode>
    </area>
  </info>
  <info>
    <category>Geo</category>
    <event>Earthquake aftershock warning</event>
    <urgency>Immediate</urgency>
    <severity>Extreme</severity>
    <certainty>Observed</certainty>
    <area>
      <areaDesc>Norcia</areaDesc>
      <circle>{lat:.4f},{lon:.4f} 3</circle>
    </area>
  </info>
</alert>
"""


def write_cap_alert(path: Path, centre: tuple[float, float] = NORCIA) -> Path:
    path.write_text(cap_alert_xml(centre), encoding="utf-8")
    return path


def rupture_document() -> dict:
    """A USGS finite-fault rupture: two dipping segments and a vertical one, plus a hypocentre."""

    def quad(lon0, lat0, lon1, lat1, dx, top=1.0, bottom=10.0):
        return [
            [
                [lon0, lat0, top],
                [lon1, lat1, top],
                [lon1 + dx, lat1, bottom],
                [lon0 + dx, lat0, bottom],
                [lon0, lat0, top],
            ]
        ]

    segments = [
        quad(13.05, 42.95, 13.15, 42.85, 0.08),
        quad(13.15, 42.85, 13.25, 42.75, 0.08),
        quad(13.25, 42.75, 13.30, 42.70, 0.0),  # vertical: no area on the ground
    ]
    return {
        "type": "FeatureCollection",
        "metadata": {
            "id": "us1000731j",
            "mag": 6.6,
            "lon": 13.11,
            "lat": 42.83,
            "depth": 8.0,
            "reference": "Test finite-fault model",
        },
        "features": [
            {
                "type": "Feature",
                "properties": {"rupture type": "rupture extent"},
                "geometry": {"type": "MultiPolygon", "coordinates": segments},
            },
            {
                "type": "Feature",
                "properties": {"rupture type": "hypocenter"},
                "geometry": {"type": "Point", "coordinates": [13.11, 42.83, 8.0]},
            },
        ],
    }


def write_rupture(path: Path) -> Path:
    path.write_text(json.dumps(rupture_document()))
    return path


def write_integer_contours(path: Path) -> Path:
    """USGS ShakeMap 3.5-style MMI contours at integer levels 2, 3, 4 (rings around a point)."""
    lon, lat = NORCIA
    features = []
    for level, radius in ((2, 1.0), (3, 0.6), (4, 0.3)):
        ring = shapely.Point(lon, lat).buffer(radius, quad_segs=16).exterior
        features.append(
            {
                "type": "Feature",
                "properties": {"value": level, "units": "intensity"},
                "geometry": shapely.geometry.mapping(shapely.MultiLineString([ring])),
            }
        )
    doc = {
        "type": "FeatureCollection",
        "bbox": [lon - 1.5, lat - 1.5, lon + 1.5, lat + 1.5],
        "features": features,
    }
    path.write_text(json.dumps(doc))
    return path


def write_nested_zones(path: Path, centre: tuple[float, float] = NORCIA) -> Path:
    """Three nested zones whose ``zone`` names say nothing of their order."""
    lon, lat = centre
    frame = gpd.GeoDataFrame(
        {"zone": ["Red zone", "Buffer", "Watch"]},
        geometry=[shapely.Point(lon, lat).buffer(r) for r in (0.05, 0.15, 0.3)],
        crs=4326,
    )
    frame.to_file(path)
    return path
