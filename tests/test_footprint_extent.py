"""A footprint file's extent from its header: what the Map page checks before a full read."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from geo.io.footprints import read_footprint
from geo.pipeline import footprint_file_bounds

ROOT = Path(__file__).resolve().parent.parent
FOOTPRINTS = ROOT / "data" / "footprints"


def test_header_bounds_hold_the_classes_of_the_shipped_footprints():
    for path in sorted(FOOTPRINTS.glob("*.shp")) + sorted(FOOTPRINTS.glob("*.json")):
        box = footprint_file_bounds(path)
        assert box is not None, path.name
        west, south, east, north = read_footprint(path).classes.total_bounds
        assert box[0] <= west + 1e-6 and box[1] <= south + 1e-6, path.name
        assert east - 1e-6 <= box[2] and north - 1e-6 <= box[3], path.name


def test_a_projected_file_is_given_in_wgs84(tmp_path):
    zone = gpd.GeoDataFrame(
        {"name": ["zone"]}, geometry=[shapely.box(12.9, 42.7, 13.3, 42.9)], crs=4326
    )
    zone.to_crs(32633).to_file(tmp_path / "utm.gpkg")
    box = footprint_file_bounds(tmp_path / "utm.gpkg")
    assert np.allclose(box, (12.9, 42.7, 13.3, 42.9), atol=0.01)


def test_what_the_header_cannot_tell_is_none(tmp_path):
    (tmp_path / "events.csv").write_text("latitude,longitude\n42.8,13.1\n")
    (tmp_path / "broken.geojson").write_text("{not json")
    assert footprint_file_bounds(tmp_path / "events.csv") is None
    assert footprint_file_bounds(tmp_path / "broken.geojson") is None
    assert footprint_file_bounds(FOOTPRINTS / "README.md") is None
