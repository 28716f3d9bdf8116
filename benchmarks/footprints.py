"""The footprints the exposure benchmark runs against, as disjoint classes."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from benchmarks.common import ROOT, settlements
from geo.io.footprints import read_footprint
from geo.tools.classes import to_bands

FOOTPRINTS = ROOT / "data" / "footprints"


def synthetic_flood(polygons: int = 5_000, vertices: int = 100, seed: int = 11) -> gpd.GeoDataFrame:
    """Return one flood class of ``polygons`` ragged patches of ``vertices`` vertices each.

    Patches of 0.3–2 km radius are placed on Italian settlements, as a real flood extent
    of several thousand polygons and half a million vertices would be.
    """
    rng = np.random.default_rng(seed)
    places = settlements("IT")
    centres = places[rng.choice(len(places), polygons)]
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    patches = []
    for lat, lon, _ in centres:
        radius_km = rng.uniform(0.3, 2.0) * (1 + 0.25 * rng.standard_normal(vertices)).clip(0.4)
        ring = np.column_stack(
            [
                lon + radius_km * np.cos(angles) / (111 * np.cos(np.radians(lat))),
                lat + radius_km * np.sin(angles) / 111,
            ]
        )
        patches.append(shapely.make_valid(shapely.Polygon(ring)))
    flooded = shapely.union_all(patches)
    return gpd.GeoDataFrame(
        {"hazard_type": ["flood"], "class_label": ["Flooded area"], "class_rank": [1]},
        geometry=[flooded],
        crs=4326,
    )


def footprint_classes(name: str) -> gpd.GeoDataFrame:
    """Return the disjoint classes of a benchmark footprint by name."""
    if name == "norcia":
        path = FOOTPRINTS / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
        return to_bands(read_footprint(path).classes)
    if name == "jakarta":
        path = FOOTPRINTS / "indonesia_jakarta_2007_flood_RW.shp"
        return to_bands(read_footprint(path, class_field="FLOODPRONE").classes)
    return synthetic_flood()
