"""What every footprint reader shares: reading GDAL layers and cleaning them into polygons.

The format readers (:mod:`.shakemap`, :mod:`.cems`, :mod:`.gdacs`, :mod:`.acled`,
:mod:`.generic`) all meet the same faults in real files, so they are handled once
here: layers are read with pyogrio (unclosed rings closed), points and lines
dropped, Z removed, coordinates brought to EPSG:4326, polygons crossing 180°
split, invalid polygons repaired; each repair and note is written to the
reader's :class:`_Log` so that the provenance says what was changed. Also here:
the error type, the options and result records passed between
:func:`geo.io.footprints.read_footprint` and the readers, zip member listing,
and the small text helpers for messages.
"""

from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from pyproj import CRS, Geod
from shapely import affinity

from geo.errors import InputError, library_reason, one_line
from geo.footprint_classes import (
    ORDER_COLUMN,
    WGS84,
    geometries_to_polygonal,
    rows_to_classes,
)
from geo.io.limits import check_count, limit, refusal

VECTOR_SUFFIXES = (
    ".shp",
    ".gpkg",
    ".geojson",
    ".json",
    ".topojson",
    ".kml",
    ".gml",
    ".fgb",
    ".gpx",
)
HAZARD_WORDS = (
    ("flood", "flood"),
    ("inundat", "flood"),
    ("volcan", "volcano"),
    ("lahar", "volcano"),
    ("earthquake", "earthquake"),
    ("shake", "earthquake"),
    ("seism", "earthquake"),
    ("cyclone", "cyclone"),
    ("hurricane", "cyclone"),
    ("typhoon", "cyclone"),
    ("wind", "cyclone"),
    ("fire", "wildfire"),
    ("burn", "wildfire"),
    ("landslide", "landslide"),
    ("tsunami", "tsunami"),
    ("drought", "drought"),
    ("conflict", "conflict"),
    ("acled", "conflict"),
)


class FootprintError(InputError):
    """A footprint file that cannot be used, with a message naming the file and the fix.

    A :class:`ValueError` (through :class:`geo.errors.InputError`), so the command
    line and the dashboard show it as one line.
    """


@dataclass
class _Log:
    """Repairs and notes collected while reading one file."""

    repairs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Options:
    """Reader options passed down from :func:`read_footprint`."""

    display: str
    class_field: str | None
    buffer_km: float
    date_from: pd.Timestamp | None
    date_to: pd.Timestamp | None
    class_order: tuple[str, ...] | None = None
    raster: Any = None  # RasterOptions of raster footprints (see .raster_classes)


@dataclass
class _Result:
    """What a format reader hands back to :func:`read_footprint`."""

    classes: gpd.GeoDataFrame
    format: str
    hazard_type: str
    class_field: str | None
    feature_count: int
    cumulative_available: bool


# --------------------------------------------------------------------------- zip members


def _zip_to_members(path: Path, display: str) -> list[str]:
    """File members of a zip, without folders and macOS resource forks."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile as exc:
        raise FootprintError(f"{display}: damaged zip file ({exc}); supply it again.") from None
    return [n for n in names if not n.endswith("/") and "__MACOSX" not in n]


def _vsizip(path: Path, member: str) -> str:
    """GDAL virtual path of a zip member."""
    return f"/vsizip/{{{path.resolve()}}}/{member}"


# --------------------------------------------------------------------------- reading layers


def _source_to_layers(
    source: str, display: str, log: _Log, prefix: str | None = None
) -> list[tuple[str, gpd.GeoDataFrame]]:
    """Read every spatial layer of a GDAL source."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            layers = pyogrio.list_layers(source)
        _warnings_to_notes(caught, log)
    except (DataSourceError, DataLayerError, OSError) as exc:
        if "SHAPE_RESTORE_SHX" in str(exc):  # a .shp alone: its index file is missing
            raise FootprintError(
                f"{display}: its .shx index file is missing; supply the .shp with its "
                ".shx, .dbf and .prj (together, or in one .zip)."
            ) from None
        raise FootprintError(
            f"{display}: not a vector file this reader knows ({library_reason(exc)}); supply "
            "GeoJSON, TopoJSON, Shapefile (.shp or zipped), GeoPackage, KML/KMZ, a ShakeMap "
            "contour file, a CAP alert, a USGS rupture.json or an ACLED CSV."
        ) from None
    out = []
    for layer, geometry_type in layers:
        if geometry_type is None:
            log.notes.append(f"table without geometry ignored: {layer}")
            continue
        name = prefix if prefix and len(layers) == 1 else str(layer)
        out.append((name, _layer_to_frame(source, layer, display, log)))
    return out


def _warnings_to_notes(caught: list, log: _Log) -> None:
    """Turn GDAL's run-time warnings into provenance notes, not lines on stderr."""
    for warning in caught:
        if issubclass(warning.category, RuntimeWarning):
            log.notes.append(f"GDAL: {one_line(warning.message)}")
        else:
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )


def _layer_to_frame(source: str, layer: str, display: str, log: _Log) -> gpd.GeoDataFrame:
    """Read one layer; close unclosed rings that GEOS refuses, and count them."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            warnings.filterwarnings("ignore", message=".*[Nn]on closed ring.*")
            most = limit("FEATURES")
            gdf = pyogrio.read_dataframe(
                source, layer=layer, on_invalid="ignore", max_features=most + 1
            )
            if len(gdf) > most:
                raise refusal("FEATURES", display, f"layer {layer} has over {most:,} features")
            missing = int(gdf.geometry.isna().sum())
            if missing:
                gdf = pyogrio.read_dataframe(
                    source, layer=layer, on_invalid="fix", max_features=most + 1
                )
                fixed = missing - int(gdf.geometry.isna().sum())
                if fixed:
                    log.repairs.append(f"closed {_count(fixed, 'unclosed ring')}")
        _warnings_to_notes(caught, log)
    except (DataSourceError, DataLayerError, OSError, ValueError) as exc:
        reason = library_reason(exc)
        raise FootprintError(f"{display}: cannot read layer {layer} ({reason}).") from None
    check_vertices([gdf], display)
    return gdf


def check_vertices(frames: list[gpd.GeoDataFrame], display: str) -> None:
    """Refuse frames whose geometries hold more vertices than the limit, before any work.

    Raises
    ------
    LimitError
        Over ``CRISIS_EXPOSURE_MAX_VERTICES``.
    """
    total = sum(
        int(shapely.get_num_coordinates(np.asarray(gdf.geometry.values)).sum()) for gdf in frames
    )
    check_count("VERTICES", display, total, "vertices")


def _frame_to_kind(gdf: gpd.GeoDataFrame) -> str:
    """Dominant geometry kind of a frame: polygon, line, point or none."""
    types = set(shapely.get_type_id(gdf.geometry.values[~gdf.geometry.isna().to_numpy()]))
    if types & {3, 6, 7}:
        return "polygon"
    if types & {1, 2, 5}:
        return "line"
    if types & {0, 4}:
        return "point"
    return "none"


def _layers_to_polygons(
    layers: list[tuple[str, gpd.GeoDataFrame]], kinds: list[str], display: str, log: _Log
) -> gpd.GeoDataFrame:
    """Clean every polygon layer and stack them; explain what was left out."""
    polygon_layers = [layer for layer, kind in zip(layers, kinds, strict=True) if kind == "polygon"]
    if not polygon_layers:
        counts = pd.Series(kinds).value_counts()
        what = ", ".join(f"{n} {k} layer(s)" for k, n in counts.items())
        hint = (
            "for conflict events supply the ACLED CSV export, for ShakeMap contours the "
            "lines need `value` and `units` properties; otherwise buffer them into zones first"
        )
        raise FootprintError(f"{display}: no polygons in the file ({what}); {hint}.")
    skipped = [name for (name, _), kind in zip(layers, kinds, strict=True) if kind != "polygon"]
    if skipped:
        log.notes.append(f"layers without polygons ignored: {', '.join(skipped)}")
    if len(layers) > 1:
        log.notes.append(f"polygon layers read: {', '.join(n for n, _ in polygon_layers)}")
    frames = [_frame_to_clean_polygons(gdf, display, log) for _, gdf in polygon_layers]
    polygons = pd.concat(frames, ignore_index=True)
    if not len(polygons):
        raise FootprintError(
            f"{display}: no polygon with an area is left after cleaning (they collapse to "
            "lines or points, e.g. a vertical fault plane seen from above); nothing to map."
        )
    return polygons


# --------------------------------------------------------------------------- cleaning polygons


def _frame_to_clean_polygons(gdf: gpd.GeoDataFrame, display: str, log: _Log) -> gpd.GeoDataFrame:
    """Return valid 2-D polygons in EPSG:4326, split at 180°; other features dropped.

    Order matters: points and lines go first, then reprojection (coordinates
    only), then the antimeridian split (before make_valid, which would mangle a
    ring that jumps from 179° to -179°), then make_valid.
    """
    gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)].copy()
    gdf = _frame_to_2d(gdf, log)
    not_polygonal = np.isin(shapely.get_type_id(np.asarray(gdf.geometry.values)), (0, 1, 2, 4, 5))
    if not_polygonal.any():
        log.notes.append(
            f"dropped {_count(int(not_polygonal.sum()), 'point or line feature')} "
            "(a footprint is made of polygons)"
        )
        gdf = gdf[~not_polygonal]
    gdf = _frame_to_wgs84(gdf, display, log)
    geoms = _antimeridian_split(np.asarray(gdf.geometry.values), log)
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        n_invalid = _count(int(invalid.sum()), "invalid polygon")
        log.repairs.append(f"repaired {n_invalid} with make_valid")
        geoms = np.where(invalid, shapely.make_valid(geoms), geoms)
    gdf["geometry"] = geometries_to_polygonal(geoms)
    collapsed = gdf.geometry.isna()
    if collapsed.any():
        log.notes.append(f"dropped {_count(int(collapsed.sum()), 'feature')} with no area left")
        gdf = gdf[~collapsed]
    return gdf


def _frame_to_2d(gdf: gpd.GeoDataFrame, log: _Log) -> gpd.GeoDataFrame:
    """Drop Z (and M) coordinates, recording how many features had them."""
    has_z = shapely.has_z(np.asarray(gdf.geometry.values))
    if has_z.any():
        log.repairs.append(f"dropped Z from {_count(int(has_z.sum()), 'feature')}")
        gdf = gdf.copy()
        gdf["geometry"] = shapely.force_2d(np.asarray(gdf.geometry.values))
    return gdf


def _frame_to_wgs84(gdf: gpd.GeoDataFrame, display: str, log: _Log) -> gpd.GeoDataFrame:
    """Reproject to EPSG:4326; assume it only when a CRS-less file is in lon/lat range."""
    if gdf.crs is None:
        if not _bounds_are_lonlat(gdf.total_bounds):
            raise FootprintError(
                f"{display}: footprint has no CRS and its coordinates are not longitude/latitude; "
                "add the .prj file (zip it with the shapefile) or save the file with its CRS."
            )
        log.notes.append("no CRS in the file: assumed EPSG:4326 (coordinates are in lon/lat range)")
        return gdf.set_crs(WGS84)
    crs = CRS.from_user_input(gdf.crs)
    if crs.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        gdf = gdf.set_crs(WGS84, allow_override=True)
    else:
        gdf = gdf.to_crs(WGS84)
        epsg = crs.to_epsg()
        log.repairs.append(f"reprojected from {f'EPSG:{epsg}' if epsg else crs.name}")
    if len(gdf) and not _bounds_are_lonlat(gdf.total_bounds):
        raise FootprintError(
            f"{display}: coordinates are outside longitude/latitude range in the CRS the file "
            "declares; the declared CRS is probably wrong. Save the file with its real CRS."
        )
    return gdf


def _bounds_are_lonlat(bounds: Any) -> bool:
    """Whether bounds fit lon/lat (longitudes up to ±360 allowed for antimeridian files)."""
    minx, miny, maxx, maxy = bounds
    return bool(-360 <= minx <= maxx <= 360 and -90.000001 <= miny <= maxy <= 90.000001)


# --------------------------------------------------------------------------- antimeridian


def _antimeridian_split(geoms: np.ndarray, log: _Log) -> np.ndarray:
    """Split polygons that cross 180° into parts on either side of it."""
    out = np.array(geoms, dtype=object)
    if not len(out):
        return out
    bounds = shapely.bounds(out)
    crossing = (bounds[:, 2] - bounds[:, 0] > 180) | (bounds[:, 0] < -180) | (bounds[:, 2] > 180)
    candidates = crossing & np.isin(shapely.get_type_id(out), (3, 6))
    split = 0
    for i in np.flatnonzero(candidates):
        new = _polygonal_to_split(out[i])
        if new is not None:
            out[i] = new
            split += 1
    if split:
        log.repairs.append(f"split {_count(split, 'feature')} at the antimeridian (180°)")
    return out


def _polygonal_to_split(geom: Any) -> Any:
    """One (multi)polygon unwrapped across 180° and cut into the [-180, 180] world."""
    polygons = [_polygon_to_unwrapped(p) for p in shapely.get_parts(geom)]
    inside = -180 <= geom.bounds[0] <= geom.bounds[2] <= 180
    if inside and not any(changed for _, changed in polygons):
        return None
    pieces = []
    for polygon, _ in polygons:
        polygon = polygon if polygon.is_valid else shapely.make_valid(polygon)
        for shift in (-360, 0, 360):
            window = shapely.box(-180 - shift, -90, 180 - shift, 90)
            piece = shapely.intersection(polygon, window)
            if not piece.is_empty:
                pieces.append(affinity.translate(piece, xoff=shift))
    merged = geometries_to_polygonal(np.array([shapely.union_all(pieces)], dtype=object))[0]
    return merged


# An edge whose ends differ by over 180° of longitude is read as crossing 180° only
# when the short way round is at most this many degrees (179° -> -179° is 2°): a
# four-corner box from -10° to 175° (or -170° to 170°) is a wide polygon drawn with
# straight edges (RFC 7946), not a thin one on the other side of the globe.
ANTIMERIDIAN_GAP_DEG = 10.0


def _ring_crosses_antimeridian(lons: np.ndarray) -> bool:
    """Whether a ring jumps across 180°: every > 180° step ends near 180° on both sides."""
    steps = np.abs(np.diff(lons))
    big = steps > 180
    if not big.any() or (np.abs(lons) == 180).any():
        return False
    return bool((360 - steps[big] <= ANTIMERIDIAN_GAP_DEG).all())


def _polygon_to_unwrapped(polygon: Any) -> tuple[Any, bool]:
    """Remove 360° jumps in a polygon's rings; report whether any was found."""
    rings = [polygon.exterior, *polygon.interiors]
    coords = [np.asarray(r.coords) for r in rings]
    jumps = any(_ring_crosses_antimeridian(c[:, 0]) for c in coords)
    if not jumps:
        return polygon, False
    unwrapped = []
    for c in coords:
        xy = c[:, :2].copy()
        xy[:, 0] = np.unwrap(xy[:, 0], period=360)
        if unwrapped:
            xy[:, 0] -= 360 * np.round((xy[:, 0].mean() - unwrapped[0][:, 0].mean()) / 360)
        unwrapped.append(xy)
    return shapely.make_valid(shapely.Polygon(unwrapped[0], unwrapped[1:])), True


# --------------------------------------------------------------------------- circles


def _circle_to_polygon(lon: float, lat: float, radius_km: float, n: int = 72) -> Any:
    """Geodesic circle on the WGS 84 ellipsoid: ``n`` points at ``radius_km`` from the centre.

    Exact at any radius (no projection), split at 180° where it crosses it; a
    circle over a pole is not supported (none of the products read here has one).
    """
    azimuths = np.linspace(0.0, 360.0, n, endpoint=False)
    lons, lats, _ = Geod(ellps="WGS84").fwd(
        np.full(n, lon), np.full(n, lat), azimuths, np.full(n, radius_km * 1000.0)
    )
    ring = np.column_stack([lons, lats])
    return shapely.Polygon(ring)


# --------------------------------------------------------------------------- classes


def _groups_to_classes(
    gdf: gpd.GeoDataFrame,
    codes: np.ndarray,
    labels: list[str],
    ranks: list[int],
    hazard: str,
    ordered: bool = True,
) -> gpd.GeoDataFrame:
    """Dissolve features by class code into one row per class (``ordered`` False: no ranks)."""
    geoms = np.asarray(gdf.geometry.values)
    rows = [
        (hazard, labels[i], int(ranks[i]), shapely.union_all(geoms[codes == i]))
        for i in range(len(labels))
        if (codes == i).any()
    ]
    return rows_to_classes(rows, ordered=ordered or len(rows) < 2)


def _classes_to_user_order(
    classes: gpd.GeoDataFrame, order: tuple[str, ...], display: str, log: _Log
) -> gpd.GeoDataFrame:
    """Rank classes by the order the user gives, worst first; every class must be named.

    Labels match case- and space-insensitively. The result is ordered (no
    ``class_ordered`` column) with ranks n..1 from the worst down.
    """
    wanted = [" ".join(str(label).split()).casefold() for label in order]
    if len(set(wanted)) != len(wanted):
        raise FootprintError(
            f"{display}: the class order names a class twice ({', '.join(order)})."
        )
    keys = [" ".join(str(label).split()).casefold() for label in classes["class_label"]]
    missing = [
        label for label, key in zip(classes["class_label"], keys, strict=True) if key not in wanted
    ]
    if missing:
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise FootprintError(
            f"{display}: the class order lacks {', '.join(map(repr, missing[:8]))}{more}; "
            "list every class, worst first."
        )
    unused = [label for label, key in zip(order, wanted, strict=True) if key not in keys]
    if unused:
        log.notes.append(f"class order names classes the file does not have: {', '.join(unused)}")
    out = classes.drop(columns=[c for c in (ORDER_COLUMN,) if c in classes.columns]).copy()
    out["class_rank"] = [len(wanted) - wanted.index(key) for key in keys]
    log.notes.append(f"classes ranked in the order given, worst first: {', '.join(order)}")
    return out


def _name_to_hazard(display: str) -> str:
    """Guess a hazard type from words in the file name."""
    lower = display.lower()
    return next((hazard for word, hazard in HAZARD_WORDS if word in lower), "unspecified")


# --------------------------------------------------------------------------- small helpers


def _column(frame: pd.DataFrame, name: str) -> str | None:
    """Column matching ``name`` exactly, else case-insensitively, else None."""
    if name in frame.columns:
        return name
    matches = [c for c in frame.columns if str(c).lower() == name.lower()]
    return matches[0] if matches else None


def _sidecar(path: Path, suffix: str) -> Path | None:
    """Existing shapefile sidecar in either case of the suffix."""
    for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if candidate.is_file():
            return candidate
    return None


def _count(n: int, noun: str) -> str:
    """``'1 unclosed ring'`` / ``'2 unclosed rings'``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
