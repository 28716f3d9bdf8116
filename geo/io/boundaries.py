"""Administrative boundaries for a breakdown of exposure by area: one reader for all.

Any vector format pyogrio reads. Polygons only, repaired, in EPSG:4326. TopoJSON has no
CRS field because it is WGS 84 by definition, so a TopoJSON file without one is read as
EPSG:4326 (as the footprint reader does); any other file without a CRS is refused.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from geo.errors import InputError, library_reason
from geo.io.limits import check_count, limit, limit_bytes, refusal
from geo.io.zip_guard import check_zip


def _is_topojson(path: Path) -> bool:
    """Return whether a file is TopoJSON (by suffix, or a JSON object of type Topology)."""
    if path.suffix.lower() == ".topojson":
        return True
    if path.suffix.lower() not in (".json", ".geojson"):
        return False
    with open(path, "rb") as handle:
        head = handle.read(4096).decode("utf-8", errors="replace")
    compact = "".join(head.split())
    return '"type":"Topology"' in compact


def read_boundaries(path: str | Path, name: str | None = None) -> gpd.GeoDataFrame:
    """Read administrative boundaries as valid polygons in EPSG:4326.

    Parameters
    ----------
    path
        Any vector file pyogrio reads (GeoJSON, TopoJSON, Shapefile, GeoPackage …).
    name
        The name to use in messages (default: the file's name).

    Returns
    -------
    geopandas.GeoDataFrame
        The file's attributes and polygon geometries, index 0..n−1.

    Raises
    ------
    InputError
        If the file cannot be read, holds no polygons, has no CRS (and is not TopoJSON),
        or is over a reader limit (size, zip inflation, features, vertices).
    """
    path = Path(path)
    display = name or path.name
    if path.is_file() and zipfile.is_zipfile(path):
        check_zip(path, display)
    elif path.is_file() and path.stat().st_size > limit_bytes("VECTOR_MB"):
        size = path.stat().st_size / (1024 * 1024)
        raise refusal("VECTOR_MB", display, f"the file is {size:,.0f} MB")
    most = limit("FEATURES")
    try:
        areas = gpd.read_file(path, engine="pyogrio", max_features=most + 1)
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise InputError(f"{display}: cannot read the boundaries ({library_reason(exc)}).") from exc
    if len(areas) > most:
        raise refusal("FEATURES", display, f"it has over {most:,} features")
    geoms = np.asarray(areas.geometry.values)
    check_count("VERTICES", display, int(shapely.get_num_coordinates(geoms).sum()), "vertices")
    coords = shapely.get_coordinates(geoms)
    if not np.isfinite(coords).all():
        bad = int((~np.isfinite(coords)).any(axis=1).sum())
        raise InputError(
            f"{display}: {bad:,} boundary vertices are NaN or infinite; fix or drop those areas."
        )
    areas = areas[areas.geometry.notna()]
    areas = areas[areas.geom_type.isin(["Polygon", "MultiPolygon"])]
    if areas.empty:
        raise InputError(f"{display}: the boundaries file holds no polygons.")
    if areas.crs is None:
        if not _is_topojson(path):
            raise InputError(f"{display}: the boundaries have no CRS; save them with one.")
        areas = areas.set_crs(4326)
    areas = areas.to_crs(4326)
    areas["geometry"] = shapely.make_valid(areas.geometry.values)
    return areas.reset_index(drop=True)
