"""Read hazard footprints and normalise them into classed polygons.

One entry point, :func:`read_footprint`, recognises the footprint formats met in
a crisis without being told which one it is given, and hands the file to the
reader of that format:

* USGS/INGV **ShakeMap contour lines** (``cont_mmi.json``, ``cont_pga.json``,
  ShakeMap 4 and 3.5), turned into disjoint intensity bands, and ShakeMap 4
  **shape.zip** (polygons in ``mi.shp`` with ``PARAMVALUE``): :mod:`.shakemap`;
* **Copernicus EMS** rapid-mapping deliveries (zipped shapefiles: building
  damage grades of a grading product, else the observed-event layers): :mod:`.cems`;
* **GDACS** event polygons (``Poly_Red``, ``Poly_Orange`` ...): :mod:`.gdacs`;
* **ACLED** conflict-event CSV exports (modern and legacy schemas), buffered
  into conflict zones: :mod:`.acled`;
* **CAP 1.2** alert messages (polygon and circle areas by severity): :mod:`.cap`;
* **USGS finite-fault** ``rupture.json`` (the rupture's surface projection):
  :mod:`.rupture`;
* **rasters**: ShakeMap ``grid.xml`` (:mod:`.shakemap_grid`), GeoTIFF and other
  GDAL rasters, bare or zipped (:mod:`.raster`), classed by MMI band, flood depth,
  thresholds or value (:mod:`.raster_classes`) and polygonised;
* any other polygons (GeoJSON, TopoJSON, Shapefile bare or zipped, GeoPackage,
  KML/KMZ), classed by an attribute the user names: :mod:`.generic`.

Every footprint comes out the same way: one row per class with columns
``hazard_type``, ``class_label``, ``class_rank`` (higher is more severe) and a
valid polygonal ``geometry`` in EPSG:4326, plus a provenance record that lists
what was repaired on the way (the cleaning shared by all readers is in
:mod:`.common`). Each reader's module says how it ranks its classes where the
format is silent. Operations on the classes once read (bands, cumulative
areas, combining footprints) are in :mod:`geo.tools.classes`.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import library_reason
from geo.footprint_classes import (
    CLASS_COLUMNS,
    SHAPEFILE_SIDECARS,
    classes_are_ordered,
    geometries_to_km2,
    geometries_to_polygonal,
    ordered_mask,
    sorted_classes,
)
from geo.io.footprints.acled import _acled_to_result
from geo.io.footprints.cap import _cap_to_result, _looks_like_cap
from geo.io.footprints.cems import _cems_to_result, _is_cems_delivery
from geo.io.footprints.common import (
    VECTOR_SUFFIXES,
    FootprintError,
    _classes_to_user_order,
    _column,
    _frame_to_kind,
    _layers_to_polygons,
    _Log,
    _Options,
    _Result,
    _sidecar,
    _source_to_layers,
    _vsizip,
    _zip_to_members,
    check_vertices,
)
from geo.io.footprints.event import file_to_event
from geo.io.footprints.gdacs import _gdacs_field, _gdacs_to_result
from geo.io.footprints.generic import _polygons_to_classes
from geo.io.footprints.raster_classes import RasterOptions
from geo.io.footprints.raster_formats import (
    grid_members,
    is_raster,
    is_shakemap_grid,
    raster_members,
)
from geo.io.footprints.rupture import _is_rupture, _json_to_document, _rupture_to_result
from geo.io.footprints.shakemap import (
    _contours_to_result,
    _json_path_to_bbox,
    _shakemap_zip_to_result,
    _zip_to_bbox,
)
from geo.io.limits import check_count, limit_bytes, refusal
from geo.io.zip_guard import check_zip

__all__ = [
    "CLASS_COLUMNS",
    "SHAPEFILE_SIDECARS",
    "Footprint",
    "FootprintError",
    "RasterOptions",
    "file_to_sha256",
    "read_footprint",
]


@dataclass(frozen=True, eq=False)
class Footprint:
    """A hazard footprint normalised into classes.

    Attributes
    ----------
    classes : geopandas.GeoDataFrame
        One row per class: ``hazard_type`` (str), ``class_label`` (str),
        ``class_rank`` (int, higher is more severe) and a valid polygonal
        ``geometry`` in EPSG:4326, sorted by ``class_rank``. Classes may overlap
        (ACLED buffers, nested polygons); see :func:`geo.tools.classes.to_bands`.
    provenance : dict
        ``file_name``, ``sha256``, ``format``, ``hazard_type``, ``class_field``,
        ``repairs`` (list of sentences), ``notes`` (list of sentences),
        ``feature_count``, ``cumulative_available`` and ``ordered`` (False when
        the classes have no severity order: see :mod:`geo.footprint_classes`).
    """

    classes: gpd.GeoDataFrame
    provenance: dict

    def describe(self) -> pd.DataFrame:
        """Summarise the classes for display.

        Returns
        -------
        pandas.DataFrame
            ``class_label``, ``class_rank`` (nullable; NA for a class without
            a severity order), ``area_km2`` (geodesic area on the WGS 84
            ellipsoid) and ``parts`` (number of polygons), one row per class in
            rank order.
        """
        geoms = self.classes.geometry.values
        ranks = pd.array(self.classes["class_rank"].to_numpy(), dtype="Int64")
        ranks[~ordered_mask(self.classes)] = pd.NA
        return pd.DataFrame(
            {
                "class_label": self.classes["class_label"].to_numpy(),
                "class_rank": ranks,
                "area_km2": geometries_to_km2(geoms),
                "parts": shapely.get_num_geometries(np.asarray(geoms)),
            }
        )


# --------------------------------------------------------------------------- public API


def read_footprint(
    path: str | Path,
    *,
    class_field: str | None = None,
    buffer_km: float = 10.0,
    date_from: Any = None,
    date_to: Any = None,
    name: str | None = None,
    class_order: str | Sequence[str] | None = None,
    raster: RasterOptions | None = None,
) -> Footprint:
    """Read any supported footprint file into classed polygons.

    Parameters
    ----------
    path : str or pathlib.Path
        The file: GeoJSON, TopoJSON, Shapefile (bare or zipped), GeoPackage,
        KML/KMZ, ShakeMap contour JSON or ``shape.zip``, Copernicus EMS zip,
        GDACS polygons, or an ACLED CSV export.
    class_field : str, optional
        Attribute whose values become the classes (case-insensitive match).
        Without it, generic polygons form one class named after the file and
        EMS deliveries one class "Flooded area".
    buffer_km : float, default 10.0
        Radius of the conflict zone around each ACLED event.
    date_from, date_to : str, date or Timestamp, optional
        Inclusive window on ACLED ``event_date``.
    name : str, optional
        File name to show and to guess the format from when ``path`` is a
        temporary upload.
    class_order : str or sequence of str, optional
        The classes' severity order, **worst first** (a comma-separated string
        or a list of labels, matched case-insensitively): overrides the order the
        reader found, and is how classes without a known order get one. Every
        class must be named.
    raster : RasterOptions, optional
        How to class a raster (GeoTIFF, ShakeMap ``grid.xml``): kind, thresholds,
        value → label map; by default as its publisher meant (see :mod:`.raster_classes`).

    Returns
    -------
    Footprint
        Classes in EPSG:4326 sorted by rank, with provenance.

    Raises
    ------
    FootprintError
        If the file is missing, empty, not a readable vector file, holds no
        polygons (and is no known point or line format), has no CRS where one is
        needed, lacks ``class_field``, is a malformed ACLED export, or has no
        event left after the date filter. The message names the file.
    """
    path = Path(path)
    display = name or path.name
    if not path.is_file():
        raise FootprintError(f"{display}: file not found; check the path.")
    if path.stat().st_size == 0:
        raise FootprintError(f"{display}: the file is empty (0 bytes); supply the footprint again.")
    if not buffer_km > 0:
        raise FootprintError(f"{display}: buffer_km must be positive, got {buffer_km}.")
    opts = _Options(
        display,
        class_field,
        float(buffer_km),
        _to_timestamp(date_from, display),
        _to_timestamp(date_to, display),
        _to_order(class_order),
        raster,
    )
    log = _Log()
    try:
        result = _path_to_result(path, opts, log)
    except FootprintError as exc:
        message = str(exc)
        if not message.startswith(f"{display}:"):
            raise FootprintError(f"{display}: {message}") from None
        raise
    except shapely.errors.GEOSException as exc:
        raise FootprintError(
            f"{display}: the geometry cannot be processed ({library_reason(exc)}); "
            "check the file in a GIS."
        ) from None
    classes = result.classes
    if opts.class_order:
        classes = _classes_to_user_order(classes, opts.class_order, display, log)
    classes = _finish_classes(classes, display)
    ordered = classes_are_ordered(classes)
    provenance = {
        "file_name": display,
        "sha256": file_to_sha256(path, display),
        "format": result.format,
        "hazard_type": result.hazard_type,
        "class_field": result.class_field,
        "repairs": list(dict.fromkeys(log.repairs)),
        "notes": list(dict.fromkeys(log.notes)),
        "feature_count": int(result.feature_count),
        "cumulative_available": ordered
        and (bool(result.cumulative_available) or bool(opts.class_order)),
        "ordered": ordered,
        **file_to_event(path, result.format),  # event_time, event: as the file states them
    }
    return Footprint(classes=classes, provenance=provenance)


def file_to_sha256(path: str | Path, display: str | None = None) -> str:
    """SHA-256 of a footprint file, including shapefile sidecars.

    Parameters
    ----------
    path : str or pathlib.Path
        The file read. For a ``.shp`` the digest runs over the ``.shp`` then
        its ``.shx``, ``.dbf``, ``.prj`` and ``.cpg`` sidecars that exist.
    display : str, optional
        Display name, used to recognise a ``.shp`` uploaded under a temporary name.

    Returns
    -------
    str
        Hexadecimal digest.
    """
    path = Path(path)
    digest = hashlib.sha256()
    files = [path]
    if (display or path.name).lower().endswith(".shp"):
        files += [s for s in (_sidecar(path, suffix) for suffix in SHAPEFILE_SIDECARS) if s]
    for file in files:  # in chunks: a footprint may be hundreds of MB
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- dispatch


def _path_to_result(path: Path, opts: _Options, log: _Log) -> _Result:
    """Pick the reader for a file by its content and name.

    Every zip passes the zip guard first (ratio, inflated size, member names), whatever
    it holds, and every text format the file-size limit; rasters are read by windows
    and need neither.
    """
    zipped = zipfile.is_zipfile(path)
    if zipped:
        check_zip(path, opts.display)
    if is_shakemap_grid(path):
        if not zipped:
            _check_vector_size(path, opts.display)
        from geo.io.footprints.shakemap_grid import shakemap_grid_to_result  # loads rasterio

        return shakemap_grid_to_result(path, opts, log)
    if is_raster(path, opts.display):
        from geo.io.footprints.raster import raster_to_result  # loads rasterio

        return raster_to_result(path, opts, log)
    if _looks_like_csv(path, opts.display):
        return _acled_to_result(path, opts, log)
    if zipped:
        return _zip_to_result(path, opts, log)
    _check_vector_size(path, opts.display)
    with path.open("rb") as fh:
        head = fh.read(4096)
    if _looks_like_cap(head):
        return _cap_to_result(path, opts, log)
    doc = _json_to_document(path)
    if _is_rupture(doc):
        return _rupture_to_result(doc, opts, log)
    layers = _source_to_layers(str(path), opts.display, log)
    return _layers_to_result(layers, opts, log, bbox=lambda: _json_path_to_bbox(path))


def _check_vector_size(path: Path, display: str) -> None:
    """Refuse a text footprint (GeoJSON, KML, XML …) larger than the VECTOR_MB limit."""
    if path.stat().st_size > limit_bytes("VECTOR_MB"):
        size = path.stat().st_size / (1024 * 1024)
        raise refusal("VECTOR_MB", display, f"the file is {size:,.0f} MB")


def _looks_like_csv(path: Path, display: str) -> bool:
    """Whether a file is a delimited text table (an ACLED export candidate)."""
    if Path(display).suffix.lower() in (".csv", ".tsv"):
        return True
    with path.open("rb") as fh:
        head = fh.read(4096)
    if b"\0" in head:
        return False
    first = head.splitlines()[0].strip().lower() if head.strip() else b""
    return bool(first) and first[:1] not in (b"{", b"<", b"[") and b"event_date" in first


def _zip_to_result(path: Path, opts: _Options, log: _Log) -> _Result:
    """Read a zip: ShakeMap shape.zip, Copernicus EMS delivery, KMZ or zipped files."""
    members = _zip_to_members(path, opts.display)
    shapefiles = [m for m in members if m.lower().endswith(".shp")]
    if any(PurePosixPath(m).stem.lower() == "mi" for m in shapefiles):
        return _shakemap_zip_to_result(path, shapefiles, opts, log)
    if _is_cems_delivery(shapefiles):
        return _cems_to_result(path, shapefiles, opts, log)
    vectors = [m for m in members if m.lower().endswith(VECTOR_SUFFIXES)]
    if not vectors and (grids := grid_members(members)):
        from geo.io.footprints.shakemap_grid import shakemap_grid_to_result  # loads rasterio

        return shakemap_grid_to_result(path, opts, log, grids[0])
    if not vectors and (rasters := raster_members(members)):
        from geo.io.footprints.raster import raster_to_result  # loads rasterio

        return raster_to_result(path, opts, log, rasters[0])
    if not vectors:
        raise FootprintError(
            f"{opts.display}: the zip holds no vector file (found "
            f"{', '.join(members[:5]) or 'nothing'}); zip a shapefile set, GeoJSON, GeoPackage "
            "or KML."
        )
    layers = []
    for member in vectors:
        layers += _source_to_layers(_vsizip(path, member), opts.display, log, prefix=member)
    return _layers_to_result(layers, opts, log, bbox=lambda: _zip_to_bbox(path, vectors))


def _layers_to_result(
    layers: list[tuple[str, gpd.GeoDataFrame]],
    opts: _Options,
    log: _Log,
    bbox: Callable[[], Any],
) -> _Result:
    """Classify read layers as ShakeMap contours, GDACS or generic polygons.

    ``bbox`` is called only for contour files, to fetch the map edge.
    """
    layers = [(name, gdf) for name, gdf in layers if len(gdf)]
    if not layers:
        raise FootprintError(f"{opts.display}: the file has no features; nothing to map.")
    n_features = sum(len(gdf) for _, gdf in layers)
    check_count("FEATURES", opts.display, n_features, "features")
    check_vertices([gdf for _, gdf in layers], opts.display)
    kinds = [_frame_to_kind(gdf) for _, gdf in layers]
    pairs = zip(kinds, layers, strict=True)
    if all(kind == "line" and _column(gdf, "value") for kind, (_, gdf) in pairs):
        lines = pd.concat([gdf for _, gdf in layers], ignore_index=True)
        return _contours_to_result(lines, bbox(), opts, log)
    polygons = _layers_to_polygons(layers, kinds, opts.display, log)
    if not len(polygons):
        raise FootprintError(f"{opts.display}: every polygon in the file is empty; nothing to map.")
    gdacs_field = _gdacs_field(polygons)
    if gdacs_field and opts.class_field is None:
        return _gdacs_to_result(polygons, gdacs_field, n_features, opts, log)
    classes, used_field, ordinal = _polygons_to_classes(polygons, opts, log)
    hazard = str(classes["hazard_type"].iloc[0])
    return _Result(classes, "polygons", hazard, used_field, n_features, ordinal)


# --------------------------------------------------------------------------- options and output


def _to_timestamp(value: Any, display: str) -> pd.Timestamp | None:
    """Parse a date bound given as str, date or Timestamp."""
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise FootprintError(
            f"{display}: cannot read the date {value!r}; use YYYY-MM-DD."
        ) from None
    return stamp.tz_convert(None) if stamp.tzinfo is not None else stamp


def _to_order(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Class order as a tuple of labels (a comma-separated string is split), or None.

    Raises
    ------
    FootprintError
        For an order that is given but names no class (``",,,"``).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    order = tuple(" ".join(str(item).split()) for item in items if str(item).strip())
    if items and not order:
        raise FootprintError(
            f"the class order {value!r} names no class; give the classes worst first, "
            "comma-separated (e.g. 'Destroyed,Damaged,Possibly damaged')."
        )
    return order or None


def _finish_classes(classes: gpd.GeoDataFrame, display: str) -> gpd.GeoDataFrame:
    """Validate reader output: polygonal, non-empty, typed columns, sorted by rank."""
    classes = classes.copy()
    classes["geometry"] = geometries_to_polygonal(np.asarray(classes.geometry.values))
    invalid = ~shapely.is_valid(np.asarray(classes.geometry.values))
    if invalid.any():
        geoms = np.asarray(classes.geometry.values)
        classes["geometry"] = geometries_to_polygonal(
            np.where(invalid, shapely.make_valid(geoms), geoms)
        )
    classes = classes[classes.geometry.notna()]
    if not len(classes):
        raise FootprintError(f"{display}: no polygon area left after cleaning the geometries.")
    return sorted_classes(classes)
