"""The class frame that footprint readers produce and class operations consume.

A class frame has one row per hazard class: ``hazard_type``, ``class_label``,
``class_rank`` (higher is more severe) and a polygonal ``geometry`` in EPSG:4326.
The readers in :mod:`geo.io.footprints` build such frames and the operations in
:mod:`geo.tools.classes` transform them; both need the few pure helpers here
(build, sort, keep the polygonal parts, measure), and neither may import the
other, so they live in this small core module. It reads nothing and depends
only on numpy, pandas, geopandas, shapely and pyproj.

Unordered classes
-----------------
Some classes have no severity order that anyone stated: the values of an
attribute the user names (region names, land-use codes) with no known scale and
no order given by the user. Such classes are never ranked by accident (say
alphabetically). A class frame marks them with the optional boolean column
``class_ordered`` (:data:`ORDER_COLUMN`):

* the column absent, or True on a row: the row's ``class_rank`` is a severity
  (higher is more severe) and may be compared with the other ordered rows;
* False on a row: the class has no place in any order. Its ``class_rank`` is
  :data:`UNORDERED_RANK` (0) for every such row, only so that integer code keeps
  working; it must not be read as a severity. No "or worse"/cumulative view, no
  "worst class reached" headline, no severity colour, no worst-class-wins cut
  against other classes (overlapping unordered classes keep their overlap).

Use :func:`rows_to_classes` with ``ordered=False`` to build such a frame,
:func:`classes_are_ordered` to test one, and :func:`ordered_mask` per row.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Geod

__all__ = [
    "CLASS_COLUMNS",
    "ORDER_COLUMN",
    "UNORDERED_RANK",
    "WGS84",
    "classes_are_ordered",
    "geometries_to_km2",
    "geometries_to_polygonal",
    "ordered_mask",
    "rows_to_classes",
    "sorted_classes",
]

WGS84 = "EPSG:4326"
# The files that travel with a .shp (an upload or a folder offers them together).
SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg")
CLASS_COLUMNS = ["hazard_type", "class_label", "class_rank", "geometry"]
ORDER_COLUMN = "class_ordered"  # optional; False marks a class without severity order
UNORDERED_RANK = 0
GEOD = Geod(ellps="WGS84")


def geometries_to_km2(geoms: Any) -> np.ndarray:
    """Geodesic area of lon/lat geometries on the WGS 84 ellipsoid.

    Parameters
    ----------
    geoms : array-like of shapely geometries
        Polygons or multipolygons in EPSG:4326.

    Returns
    -------
    numpy.ndarray
        Areas in km², 0 for empty or missing geometries.
    """
    oriented = shapely.orient_polygons(np.asarray(geoms, dtype=object))
    areas = [
        0.0 if g is None or g.is_empty else abs(GEOD.geometry_area_perimeter(g)[0]) / 1e6
        for g in oriented
    ]
    return np.array(areas, dtype=float)


def geometries_to_polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of each geometry.

    Parameters
    ----------
    geoms : numpy.ndarray of shapely geometries
        Any geometries; collections are repaired part by part.

    Returns
    -------
    numpy.ndarray
        Object array of the same length: the (multi)polygonal part of each
        geometry, or None when it has none.
    """
    out = np.array(geoms, dtype=object)
    types = shapely.get_type_id(out)
    out[(types >= 0) & ~np.isin(types, (3, 6, 7))] = None
    for i in np.flatnonzero(types == 7):
        parts = shapely.make_valid(shapely.get_parts(out[i]))
        parts = parts[np.isin(shapely.get_type_id(parts), (3, 6, 7))]
        parts = [geometries_to_polygonal(np.array([p], dtype=object))[0] for p in parts]
        parts = [p for p in parts if p is not None and not p.is_empty]
        out[i] = shapely.union_all(parts) if parts else None
    empty = np.array([g is not None and g.is_empty for g in out], dtype=bool)
    out[empty] = None
    return out


def rows_to_classes(rows: list[tuple], ordered: bool = True) -> gpd.GeoDataFrame:
    """Build a class frame from ``(hazard_type, label, rank, geometry)`` tuples.

    Parameters
    ----------
    rows : list of tuple
        One tuple per class, in the order of :data:`CLASS_COLUMNS`.
    ordered : bool, default True
        False: the classes have no severity order; their ranks are set to
        :data:`UNORDERED_RANK` and the frame gets ``class_ordered`` False.

    Returns
    -------
    geopandas.GeoDataFrame
        The class frame in EPSG:4326, rows in the given order.
    """
    frame = pd.DataFrame(rows, columns=CLASS_COLUMNS)
    if not ordered:
        frame["class_rank"] = UNORDERED_RANK
        frame[ORDER_COLUMN] = False
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=WGS84)


def ordered_mask(classes: pd.DataFrame) -> np.ndarray:
    """Return, per row, whether the class has a severity order (see the module docstring).

    Parameters
    ----------
    classes : pandas.DataFrame
        A class frame, with or without ``class_ordered``.

    Returns
    -------
    numpy.ndarray
        Booleans, True where ``class_rank`` is a severity.
    """
    if ORDER_COLUMN not in classes.columns:
        return np.ones(len(classes), dtype=bool)
    return classes[ORDER_COLUMN].fillna(True).astype(bool).to_numpy()


def classes_are_ordered(classes: pd.DataFrame) -> bool:
    """Return whether every class of a frame has a severity order.

    Parameters
    ----------
    classes : pandas.DataFrame
        A class frame, with or without ``class_ordered``.

    Returns
    -------
    bool
        False when any row is marked ``class_ordered`` False.
    """
    return bool(ordered_mask(classes).all())


def sorted_classes(classes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return standard columns and dtypes, sorted by rank then label, fresh index.

    Parameters
    ----------
    classes : geopandas.GeoDataFrame
        A frame with at least the columns of :data:`CLASS_COLUMNS`.

    Returns
    -------
    geopandas.GeoDataFrame
        Exactly those columns (str, str, int64, geometry), plus ``class_ordered``
        (bool) when any class is unordered, in the frame's CRS (EPSG:4326 when
        it has none), sorted by ``class_rank`` then ``class_label``.
    """
    columns = {
        "hazard_type": classes["hazard_type"].astype(str).to_numpy(),
        "class_label": classes["class_label"].astype(str).to_numpy(),
        "class_rank": classes["class_rank"].astype("int64").to_numpy(),
    }
    if not classes_are_ordered(classes):
        columns[ORDER_COLUMN] = ordered_mask(classes)
    out = gpd.GeoDataFrame(
        columns,
        geometry=np.asarray(classes.geometry.values),
        crs=classes.crs or WGS84,
    )
    return out.sort_values(["class_rank", "class_label"], kind="stable").reset_index(drop=True)
