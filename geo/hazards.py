"""Read hazard footprints and normalise them into classed polygons.

One entry point, :func:`read_footprint`, recognises the footprint formats met in
a crisis without being told which one it is given:

* USGS/INGV **ShakeMap contour lines** (``cont_mmi.json``, ``cont_pga.json``,
  ShakeMap 4 and 3.5), turned into disjoint intensity bands;
* ShakeMap 4 **shape.zip** (polygons in ``mi.shp`` with ``PARAMVALUE``);
* **Copernicus EMS** rapid-mapping deliveries (zipped shapefiles, observed-event
  layer);
* **GDACS** event polygons (``Poly_Red``, ``Poly_Orange`` ...);
* **ACLED** conflict-event CSV exports (modern and legacy schemas), buffered
  into conflict zones;
* any other polygons (GeoJSON, TopoJSON, Shapefile bare or zipped, GeoPackage,
  KML/KMZ), classed by an attribute the user names.

Every footprint comes out the same way: one row per class with columns
``hazard_type``, ``class_label``, ``class_rank`` (higher is more severe) and a
valid polygonal ``geometry`` in EPSG:4326, plus a provenance record that lists
what was repaired on the way. :func:`to_bands`, :func:`to_cumulative` and
:func:`combine_footprints` are pure functions over such class frames.

Class ranks chosen where the formats are silent
-----------------------------------------------
* MMI bands: rank = integer MMI of the band (PAGER bins, MMI n covers
  [n-0.5, n+0.5)). The area of the map below the lowest contour is labelled
  honestly, e.g. ``"MMI < V"`` (rank 4) when the lowest contour is 4.5.
* Other ShakeMap parameters (PGA, PGV, PSA): one class per contour interval,
  ``"PGA 10–20 %g"``, rank 1 for the area below the lowest contour, then
  upwards; the top class is ``"PGA ≥ 50 %g"``.
* GDACS: Red alert 3, Orange alert 2, Green alert 1, Affected area 0,
  Forecast cone -1 (other ``Poly_*`` classes -2).
* ACLED: Battles 6, Explosions/Remote violence 5, Violence against civilians 4,
  Riots (and legacy Riots/Protests) 3, Protests 2, Strategic developments 1,
  any other event type 0.
* Attribute classes: numbers in numeric order; known ordinal words
  (no < yes, low < medium < high, green < yellow < orange < red ...);
  otherwise alphabetical (noted in the provenance, no cumulative view).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
import zipfile
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from pyproj import CRS, Geod
from shapely import affinity

from geo.errors import InputError

__all__ = [
    "Footprint",
    "FootprintError",
    "combine_footprints",
    "file_to_sha256",
    "geometries_to_km2",
    "label_to_at_least",
    "read_footprint",
    "to_bands",
    "to_cumulative",
]

WGS84 = "EPSG:4326"
CLASS_COLUMNS = ["hazard_type", "class_label", "class_rank", "geometry"]
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
SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg")
ROMAN = ["0", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]
GDACS_CLASSES = {
    "red": ("Red alert", 3),
    "orange": ("Orange alert", 2),
    "green": ("Green alert", 1),
    "affected": ("Affected area", 0),
    "cones": ("Forecast cone", -1),
}
GDACS_EVENT_TYPES = {
    "EQ": "earthquake",
    "TC": "cyclone",
    "FL": "flood",
    "VO": "volcano",
    "DR": "drought",
    "WF": "wildfire",
    "TS": "tsunami",
}
ACLED_SEVERITY = {
    "Battles": 6,
    "Explosions/Remote violence": 5,
    "Violence against civilians": 4,
    "Riots": 3,
    "Riots/Protests": 3,
    "Protests": 2,
    "Strategic developments": 1,
}
ACLED_REQUIRED = ("event_date", "latitude", "longitude", "event_type")
ACLED_DATE_FORMATS = (
    "%Y-%m-%d",
    "%d-%b-%y",
    "%d-%B-%Y",
    "%d-%b-%Y",
    "%d %B %Y",
    "%d %b %Y",
    "%d/%m/%Y",
)
ORDINAL_SCALES = (
    ("no", "yes"),
    ("false", "true"),
    ("very low", "low", "moderate", "medium", "high", "very high", "extreme"),
    ("minor", "moderate", "severe", "extreme"),
    ("green", "yellow", "orange", "red"),
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
GEOD = Geod(ellps="WGS84")


class FootprintError(InputError):
    """A footprint file that cannot be used, with a message naming the file and the fix.

    A :class:`ValueError` (through :class:`geo.errors.InputError`), so the command
    line and the dashboard show it as one line.
    """


@dataclass(frozen=True, eq=False)
class Footprint:
    """A hazard footprint normalised into classes.

    Attributes
    ----------
    classes : geopandas.GeoDataFrame
        One row per class: ``hazard_type`` (str), ``class_label`` (str),
        ``class_rank`` (int, higher is more severe) and a valid polygonal
        ``geometry`` in EPSG:4326, sorted by ``class_rank``. Classes may overlap
        (ACLED buffers, nested polygons); see :func:`to_bands`.
    provenance : dict
        ``file_name``, ``sha256``, ``format``, ``hazard_type``, ``class_field``,
        ``repairs`` (list of sentences), ``notes`` (list of sentences),
        ``feature_count`` and ``cumulative_available``.
    """

    classes: gpd.GeoDataFrame
    provenance: dict

    def describe(self) -> pd.DataFrame:
        """Summarise the classes for display.

        Returns
        -------
        pandas.DataFrame
            ``class_label``, ``class_rank``, ``area_km2`` (geodesic area on the
            WGS 84 ellipsoid) and ``parts`` (number of polygons), one row per
            class in rank order.
        """
        geoms = self.classes.geometry.values
        return pd.DataFrame(
            {
                "class_label": self.classes["class_label"].to_numpy(),
                "class_rank": self.classes["class_rank"].to_numpy(),
                "area_km2": geometries_to_km2(geoms),
                "parts": shapely.get_num_geometries(np.asarray(geoms)),
            }
        )


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


@dataclass
class _Result:
    """What a format reader hands back to :func:`read_footprint`."""

    classes: gpd.GeoDataFrame
    format: str
    hazard_type: str
    class_field: str | None
    feature_count: int
    cumulative_available: bool


# --------------------------------------------------------------------------- public API


def read_footprint(
    path: str | Path,
    *,
    class_field: str | None = None,
    buffer_km: float = 10.0,
    date_from: Any = None,
    date_to: Any = None,
    name: str | None = None,
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
            f"{display}: the geometry cannot be processed ({_one_line(exc)}); "
            "check the file in a GIS."
        ) from None
    classes = _finish_classes(result.classes, display)
    provenance = {
        "file_name": display,
        "sha256": file_to_sha256(path, display),
        "format": result.format,
        "hazard_type": result.hazard_type,
        "class_field": result.class_field,
        "repairs": log.repairs,
        "notes": log.notes,
        "feature_count": int(result.feature_count),
        "cumulative_available": bool(result.cumulative_available),
    }
    return Footprint(classes=classes, provenance=provenance)


def to_bands(classes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Make classes disjoint: each place keeps only the worst class covering it.

    Parameters
    ----------
    classes : geopandas.GeoDataFrame
        Frame with the columns of :attr:`Footprint.classes`; classes may overlap.
        Equal ranks are ordered by label (alphabetically later wins).

    Returns
    -------
    geopandas.GeoDataFrame
        Same columns, disjoint polygonal geometries, classes left with no area
        removed, sorted by ``class_rank``.

    Raises
    ------
    ValueError
        If a required column is missing.
    """
    ordered = _severity_order(classes)
    geoms = ordered.geometry.values
    bands, taken = [], None
    for geom in geoms:
        band = geom if taken is None else shapely.difference(geom, taken)
        bands.append(band)
        taken = geom if taken is None else shapely.union(taken, geom)
    out = ordered.copy()
    out["geometry"] = _geometries_to_polygonal(np.array(bands, dtype=object))
    return _sorted_classes(out[~shapely.is_empty(out.geometry.values)])


def to_cumulative(classes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Turn classes into "at least this class" areas.

    Parameters
    ----------
    classes : geopandas.GeoDataFrame
        Frame with the columns of :attr:`Footprint.classes`.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per class: the union of that class and every more severe one,
        labelled e.g. ``"MMI ≥ VII"``, ``"PGA ≥ 10 %g"`` or
        ``"Orange alert or worse"``; sorted by ``class_rank``.

    Raises
    ------
    ValueError
        If a required column is missing.
    """
    ordered = _severity_order(classes)
    union, geoms = None, []
    for geom in ordered.geometry.values:
        union = geom if union is None else shapely.union(union, geom)
        geoms.append(union)
    out = ordered.copy()
    out["geometry"] = _geometries_to_polygonal(np.array(geoms, dtype=object))
    out["class_label"] = [label_to_at_least(label) for label in out["class_label"]]
    return _sorted_classes(out)


def combine_footprints(footprints: Sequence[Footprint]) -> gpd.GeoDataFrame:
    """Overlay several footprints into disjoint classes, worst class wins.

    Each class gets a severity: its position in its own footprint's rank order
    divided by that footprint's number of classes, so every footprint's worst
    class has severity 1 and the scales are comparable. A place covered by
    several classes takes the highest severity; on equal severity the footprint
    earlier in the list wins. Labels are prefixed by hazard type
    (``"earthquake: MMI VIII"``), identical labels are merged.

    Parameters
    ----------
    footprints : sequence of Footprint
        The footprints, most important first.

    Returns
    -------
    geopandas.GeoDataFrame
        The columns of :attr:`Footprint.classes`, disjoint, with ``class_rank``
        1..n in the combined severity order.

    Raises
    ------
    ValueError
        If no footprint is given.
    """
    if not footprints:
        raise ValueError("combine_footprints needs at least one footprint.")
    frames = [_classes_to_severity(fp.classes, order) for order, fp in enumerate(footprints)]
    combined = pd.concat(frames, ignore_index=True)
    combined = combined.sort_values(["severity", "order"], ascending=[True, False], kind="stable")
    combined["class_rank"] = np.arange(1, len(combined) + 1)
    bands = to_bands(gpd.GeoDataFrame(combined[CLASS_COLUMNS], geometry="geometry", crs=WGS84))
    return _merge_same_labels(bands)


# --------------------------------------------------------------------------- small public helpers


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


def label_to_at_least(label: str) -> str:
    """Label of the "at least" area that starts at a class.

    Parameters
    ----------
    label : str
        A class label such as ``"MMI VII"``, ``"PGA 10–20 %g"``, ``"Red alert"``,
        optionally prefixed by a hazard type (``"earthquake: MMI VII"``).

    Returns
    -------
    str
        ``"MMI ≥ VII"``, ``"PGA ≥ 10 %g"``, ``"MMI: whole map"`` for the class
        below the lowest contour, otherwise ``"<label> or worse"``.
    """
    prefix, _, core = label.rpartition(": ")
    prefix = f"{prefix}: " if prefix else ""
    if m := re.fullmatch(r"MMI ([IVX]+)", core):
        return f"{prefix}MMI ≥ {m.group(1)}"
    if m := re.fullmatch(r"(PGA|PGV|PSA\S*|VALUE) (\S+)–\S+ (.+)", core):
        return f"{prefix}{m.group(1)} ≥ {m.group(2)} {m.group(3)}"
    if re.fullmatch(r"(MMI|PGA|PGV|PSA\S*|VALUE) ≥ .+", core):
        return label
    if m := re.fullmatch(r"(MMI|PGA|PGV|PSA\S*|VALUE) < .+", core):
        return f"{prefix}{m.group(1)}: whole map"
    return f"{label} or worse"


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
    digest = hashlib.sha256(path.read_bytes())
    if (display or path.name).lower().endswith(".shp"):
        for suffix in SHAPEFILE_SIDECARS:
            sidecar = _sidecar(path, suffix)
            if sidecar is not None:
                digest.update(sidecar.read_bytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- dispatch


def _path_to_result(path: Path, opts: _Options, log: _Log) -> _Result:
    """Pick the reader for a file by its content and name."""
    if _looks_like_csv(path, opts.display):
        return _acled_to_result(path, opts, log)
    if zipfile.is_zipfile(path):
        return _zip_to_result(path, opts, log)
    layers = _source_to_layers(str(path), opts.display, log)
    return _layers_to_result(layers, opts, log, bbox=lambda: _json_path_to_bbox(path))


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
    if any(_is_observed_event(m) for m in shapefiles):
        return _cems_to_result(path, shapefiles, opts, log)
    vectors = [m for m in members if m.lower().endswith(VECTOR_SUFFIXES)]
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


def _zip_to_bbox(path: Path, members: list[str]) -> Any:
    """Return the ``bbox`` member of the first JSON file in a zip, or None."""
    json_members = [m for m in members if m.lower().endswith((".json", ".geojson"))]
    if not json_members:
        return None
    with zipfile.ZipFile(path) as zf:
        return _json_bytes_to_bbox(zf.read(json_members[0]))


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
    kinds = [_frame_to_kind(gdf) for _, gdf in layers]
    pairs = zip(kinds, layers, strict=True)
    if all(kind == "line" and _column(gdf, "value") for kind, (_, gdf) in pairs):
        lines = pd.concat([gdf for _, gdf in layers], ignore_index=True)
        return _contours_to_result(lines, bbox(), opts, log)
    polygons = _layers_to_polygons(layers, kinds, opts.display, log)
    gdacs_field = _gdacs_field(polygons)
    if gdacs_field and opts.class_field is None:
        return _gdacs_to_result(polygons, gdacs_field, n_features, opts, log)
    classes, used_field, ordinal = _polygons_to_classes(polygons, opts, log)
    hazard = str(classes["hazard_type"].iloc[0])
    return _Result(classes, "polygons", hazard, used_field, n_features, ordinal)


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
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- reading layers


def _source_to_layers(
    source: str, display: str, log: _Log, prefix: str | None = None
) -> list[tuple[str, gpd.GeoDataFrame]]:
    """Read every spatial layer of a GDAL source."""
    try:
        layers = pyogrio.list_layers(source)
    except (DataSourceError, DataLayerError, OSError) as exc:
        raise FootprintError(
            f"{display}: not a vector file this reader knows ({_one_line(exc)}); supply GeoJSON, "
            "TopoJSON, Shapefile (.shp or zipped), GeoPackage, KML/KMZ, a ShakeMap contour file "
            "or an ACLED CSV."
        ) from None
    out = []
    for layer, geometry_type in layers:
        if geometry_type is None:
            log.notes.append(f"table without geometry ignored: {layer}")
            continue
        name = prefix if prefix and len(layers) == 1 else str(layer)
        out.append((name, _layer_to_frame(source, layer, display, log)))
    return out


def _layer_to_frame(source: str, layer: str, display: str, log: _Log) -> gpd.GeoDataFrame:
    """Read one layer; close unclosed rings that GEOS refuses, and count them."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Nn]on closed ring.*")
            gdf = pyogrio.read_dataframe(source, layer=layer, on_invalid="ignore")
            missing = int(gdf.geometry.isna().sum())
            if missing:
                gdf = pyogrio.read_dataframe(source, layer=layer, on_invalid="fix")
                fixed = missing - int(gdf.geometry.isna().sum())
                if fixed:
                    log.repairs.append(f"closed {_count(fixed, 'unclosed ring')}")
    except (DataSourceError, DataLayerError, OSError, ValueError) as exc:
        raise FootprintError(f"{display}: cannot read layer {layer} ({_one_line(exc)}).") from None
    return gdf


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
    gdf["geometry"] = _geometries_to_polygonal(geoms)
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


def _geometries_to_polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of each geometry (None when there are none)."""
    out = np.array(geoms, dtype=object)
    types = shapely.get_type_id(out)
    out[(types >= 0) & ~np.isin(types, (3, 6, 7))] = None
    for i in np.flatnonzero(types == 7):
        parts = shapely.make_valid(shapely.get_parts(out[i]))
        parts = parts[np.isin(shapely.get_type_id(parts), (3, 6, 7))]
        parts = [_geometries_to_polygonal(np.array([p], dtype=object))[0] for p in parts]
        parts = [p for p in parts if p is not None and not p.is_empty]
        out[i] = shapely.union_all(parts) if parts else None
    empty = np.array([g is not None and g.is_empty for g in out], dtype=bool)
    out[empty] = None
    return out


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
    merged = _geometries_to_polygonal(np.array([shapely.union_all(pieces)], dtype=object))[0]
    return merged


def _polygon_to_unwrapped(polygon: Any) -> tuple[Any, bool]:
    """Remove 360° jumps in a polygon's rings; report whether any was found."""
    rings = [polygon.exterior, *polygon.interiors]
    coords = [np.asarray(r.coords) for r in rings]
    jumps = any(
        (np.abs(np.diff(c[:, 0])) > 180).any() and not (np.abs(c[:, 0]) == 180).any()
        for c in coords
    )
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


# --------------------------------------------------------------------------- ShakeMap contours


def _contours_to_result(lines: gpd.GeoDataFrame, bbox: Any, opts: _Options, log: _Log) -> _Result:
    """ShakeMap contour lines (MMI, PGA ...) → disjoint bands covering the map."""
    value_col = _column(lines, "value")
    lines = _frame_to_2d(lines[~lines.geometry.isna()], log)
    lines = _frame_to_wgs84(lines, opts.display, log)
    values = pd.to_numeric(lines[value_col], errors="coerce")
    if values.isna().any():
        log.notes.append(f"dropped {_count(int(values.isna().sum()), 'contour')} without a value")
    lines, values = lines[values.notna()], values[values.notna()].to_numpy(float)
    if not len(lines):
        raise FootprintError(f"{opts.display}: contour lines carry no numeric `value`.")
    parameter, unit = _contour_parameter(lines, opts.display)
    levels = np.unique(values)
    frame = _bbox_to_frame(bbox, lines, log)
    faces, bands = _lines_to_bands(lines.geometry.values, values, levels, frame, log)
    if parameter == "MMI":
        labels, ranks = _bands_to_mmi_classes(bands, levels, log)
        hazard = "earthquake"
    else:
        labels, ranks = _bands_to_interval_classes(bands, levels, parameter, unit)
        hazard = f"earthquake-{parameter.lower()}"
    log.notes.append(
        f"{len(levels)} contour levels {levels.min():g}–{levels.max():g} ({unit}); "
        f"map edge {', '.join(f'{v:g}' for v in frame.bounds)}"
    )
    classes = _faces_to_classes(faces, labels, ranks, hazard)
    classes["geometry"] = _antimeridian_split(np.asarray(classes.geometry.values), log)
    return _Result(classes, "shakemap-contours", hazard, value_col, len(lines), True)


def _contour_parameter(lines: gpd.GeoDataFrame, display: str) -> tuple[str, str]:
    """Ground-motion parameter and unit from the ``units`` property or the file name."""
    units_col = _column(lines, "units")
    units = str(lines[units_col].dropna().iloc[0]).strip().lower() if units_col else ""
    stem = display.lower()
    named = re.search(r"cont_(mmi|mi|pga|pgv|psa\w*)", stem)
    if units in ("mmi", "intensity") or (not units and named and named.group(1) in ("mmi", "mi")):
        return "MMI", "mmi"
    if units == "pctg" or (not units and named and named.group(1).startswith(("pga", "psa"))):
        parameter = named.group(1).upper() if named and named.group(1) != "pga" else "PGA"
        return parameter, "%g"
    if units in ("cms", "cm/s") or (named and named.group(1) == "pgv"):
        return "PGV", "cm/s"
    return "VALUE", units or "units"


def _bbox_to_frame(bbox: Any, lines: gpd.GeoDataFrame, log: _Log) -> Any:
    """Map-edge rectangle: the file's ``bbox`` member, else the lines' extent plus 1 %."""
    minx, miny, maxx, maxy = lines.total_bounds
    if bbox is not None:
        b = list(bbox)
        box = b if len(b) == 4 else [b[0], b[1], b[3], b[4]]
        frame = shapely.box(*box)
        if frame.buffer(1e-9).covers(shapely.box(minx, miny, maxx, maxy)):
            return frame
        log.notes.append("the bbox member does not hold all contours: enlarged to hold them")
        return shapely.box(
            min(box[0], minx), min(box[1], miny), max(box[2], maxx), max(box[3], maxy)
        )
    else:
        log.notes.append("no bbox member: map edge taken as the contours' extent plus 1%")
    dx, dy = (maxx - minx) * 0.01, (maxy - miny) * 0.01
    return shapely.box(minx - dx, miny - dy, maxx + dx, maxy + dy)


def _lines_to_bands(
    geoms: np.ndarray, values: np.ndarray, levels: np.ndarray, frame: Any, log: _Log
) -> tuple[np.ndarray, np.ndarray]:
    """Polygonize contours with the map edge; give each face its band index.

    Band ``b`` is the interval [levels[b], levels[b+1]); ``-1`` is below the
    lowest level and ``len(levels) - 1`` is at or above the highest.
    """
    tol = 1e-7 * math.hypot(*np.subtract(frame.bounds[2:], frame.bounds[:2]))
    level_parts, level_index = _contour_parts(geoms, values, levels, frame, tol, log)
    noded = shapely.union_all(np.append(level_parts, frame.boundary))
    edges = shapely.get_parts(noded)
    faces = shapely.get_parts(shapely.polygonize(edges))
    faces = faces[shapely.area(faces) > 0]
    edge_levels = _edges_to_levels(edges, level_parts, level_index, tol)
    adjacency, touching = _faces_to_adjacency(faces, edges, edge_levels, tol)
    bands = _adjacency_to_bands(faces, adjacency, touching, frame, tol, log)
    return faces, bands


def _contour_parts(
    geoms: np.ndarray, values: np.ndarray, levels: np.ndarray, frame: Any, tol: float, log: _Log
) -> tuple[np.ndarray, np.ndarray]:
    """Contour lines clipped to the frame, open ends extended to the map edge."""
    parts, index, extended = [], [], 0
    edge = frame.boundary
    for geom, value in zip(geoms, values, strict=True):
        level = int(np.searchsorted(levels, value))
        for part in shapely.get_parts(geom):
            if shapely.get_type_id(part) != 1 or part.length == 0:
                continue
            parts.append(part)
            index.append(level)
            if part.is_closed:
                continue
            for end in (shapely.Point(part.coords[0]), shapely.Point(part.coords[-1])):
                if frame.contains(end) and edge.distance(end) > tol:
                    parts.append(shapely.shortest_line(end, edge))
                    index.append(level)
                    extended += 1
    parts = list(shapely.intersection(np.array(parts, dtype=object), frame))
    keep = [i for i, p in enumerate(parts) if not p.is_empty]
    parts, index = [parts[i] for i in keep], [index[i] for i in keep]
    if not parts:
        raise FootprintError("no contour line lies inside the map edge.")
    if extended:
        log.repairs.append(f"extended {_count(extended, 'open contour end')} to the map edge")
    return np.array(parts, dtype=object), np.array(index)


def _edges_to_levels(
    edges: np.ndarray, level_parts: np.ndarray, level_index: np.ndarray, tol: float
) -> np.ndarray:
    """Contour level index of each noded edge (-1 for map-edge segments)."""
    mids = shapely.line_interpolate_point(edges, 0.5, normalized=True)
    pairs = shapely.STRtree(level_parts).query(mids, predicate="dwithin", distance=tol)
    out = np.full(len(edges), -1)
    out[pairs[0]] = level_index[pairs[1]]
    return out


def _faces_to_adjacency(
    faces: np.ndarray, edges: np.ndarray, edge_levels: np.ndarray, tol: float
) -> tuple[list[list[tuple[int, int]]], list[set[int]]]:
    """Neighbouring faces across each contour edge, and the levels each face touches."""
    mids = shapely.line_interpolate_point(edges, 0.5, normalized=True)
    edge_idx, face_idx = shapely.STRtree(faces).query(mids, predicate="dwithin", distance=tol)
    adjacency: list[list[tuple[int, int]]] = [[] for _ in faces]
    touching: list[set[int]] = [set() for _ in faces]
    by_edge = pd.Series(face_idx).groupby(edge_idx).agg(list)
    for e, members in by_edge.items():
        level = int(edge_levels[e])
        if level < 0:
            continue
        for f in members:
            touching[f].add(level)
        if len(members) == 2:
            a, b = members
            adjacency[a].append((b, level))
            adjacency[b].append((a, level))
    return adjacency, touching


def _adjacency_to_bands(
    faces: np.ndarray, adjacency: list, touching: list[set[int]], frame: Any, tol: float, log: _Log
) -> np.ndarray:
    """Band of each face, propagated across contours from faces between two levels.

    A contour of level j separates band j-1 (below) from band j (at or above).
    A face bounded by two consecutive levels j and j+1 is in band j; from those
    anchors each neighbour across a level-j contour is on the other side.
    Without any such face (a single level), the largest face touching the map
    edge is taken as below the level: ShakeMap shaking decreases outwards.
    """
    bands = np.full(len(faces), -99)
    for f, levels in enumerate(touching):
        if len(levels) >= 2:
            bands[f] = min(levels)
    if not (bands > -99).any():
        bands[_outer_face(faces, touching, frame, tol)] = min(min(t) for t in touching if t) - 1
        log.notes.append("a single contour level: assumed values decrease towards the map edge")
    conflicts = _propagate_bands(bands, adjacency)
    if conflicts:
        log.notes.append(f"{_count(conflicts, 'contour crossing')} inconsistent with the levels")
    unset = bands == -99
    if unset.any():
        bands[unset] = [min(touching[f]) - 1 if touching[f] else -1 for f in np.flatnonzero(unset)]
        log.notes.append(f"{_count(int(unset.sum()), 'face')} not reached from the others")
    return bands


def _propagate_bands(bands: np.ndarray, adjacency: list) -> int:
    """Breadth-first propagation of band indices across contour edges; returns conflicts."""
    queue = deque(np.flatnonzero(bands > -99).tolist())
    conflicts = 0
    while queue:
        f = queue.popleft()
        for g, level in adjacency[f]:
            expected = level - 1 if bands[f] == level else level if bands[f] == level - 1 else None
            if expected is None:
                conflicts += 1
            elif bands[g] == -99:
                bands[g] = expected
                queue.append(g)
            elif bands[g] != expected:
                conflicts += 1
    return conflicts // 2


def _outer_face(faces: np.ndarray, touching: list[set[int]], frame: Any, tol: float) -> int:
    """Index of the largest face touching the map edge that touches a contour."""
    on_edge = shapely.dwithin(faces, frame.boundary, tol) & np.array([bool(t) for t in touching])
    areas = np.where(on_edge, shapely.area(faces), -1.0)
    return int(np.argmax(areas))


def _bands_to_mmi_classes(
    bands: np.ndarray, levels: np.ndarray, log: _Log
) -> tuple[list[str], list[int]]:
    """PAGER MMI bins: MMI n covers [n-0.5, n+0.5); below the lowest contour labelled as such."""
    labels, ranks, straddle = [], [], False
    step = float(np.diff(levels)[-1]) if len(levels) > 1 else 0.5
    for b in bands:
        if b < 0:
            label, rank = _mmi_below(float(levels[0]))
        else:
            lo = float(levels[b])
            hi = float(levels[b + 1]) if b + 1 < len(levels) else lo + step
            rank = _value_to_mmi(lo)
            straddle |= hi > rank + 0.5 + 1e-9
            label = f"MMI {ROMAN[rank]}"
        labels.append(label)
        ranks.append(rank)
    if straddle:
        log.notes.append(
            "contour intervals do not align with PAGER's MMI bands; each area is assigned "
            "to the band of its lower contour"
        )
    below = _mmi_below(float(levels[0]))[0]
    log.notes.append(
        f"area below the lowest contour ({levels[0]:g}) labelled '{below}': its intensity is "
        "only known to be lower"
    )
    return labels, ranks


def _value_to_mmi(value: float) -> int:
    """Integer MMI of the PAGER band [n-0.5, n+0.5) holding a value, within I–XII."""
    return int(min(max(math.floor(value + 0.5 + 1e-9), 1), 12))


def _mmi_below(lowest: float) -> tuple[str, int]:
    """Label and rank for the map area below the lowest MMI contour."""
    n = lowest - 0.5
    if abs(n - round(n)) < 1e-9 and 1 <= round(n) + 1 <= 12:
        return f"MMI < {ROMAN[round(n) + 1]}", int(round(n))
    return f"MMI < {lowest:g}", int(max(math.floor(lowest + 0.5 + 1e-9) - 1, 0))


def _bands_to_interval_classes(
    bands: np.ndarray, levels: np.ndarray, parameter: str, unit: str
) -> tuple[list[str], list[int]]:
    """One class per contour interval for PGA/PGV/PSA, rank 1 below the lowest contour."""
    labels = []
    for b in bands:
        if b < 0:
            labels.append(f"{parameter} < {levels[0]:g} {unit}")
        elif b + 1 < len(levels):
            labels.append(f"{parameter} {levels[b]:g}–{levels[b + 1]:g} {unit}")
        else:
            labels.append(f"{parameter} ≥ {levels[b]:g} {unit}")
    return labels, [int(b) + 2 for b in bands]


def _faces_to_classes(
    faces: np.ndarray, labels: list[str], ranks: list[int], hazard: str
) -> gpd.GeoDataFrame:
    """Dissolve faces by label into one row per class."""
    table = pd.DataFrame({"label": labels, "rank": ranks, "face": np.arange(len(faces))})
    rows = []
    for (label, rank), group in table.groupby(["label", "rank"], sort=False):
        rows.append((hazard, label, rank, shapely.union_all(faces[group["face"].to_numpy()])))
    return _rows_to_classes(rows)


def _json_path_to_bbox(path: Path) -> Any:
    """Return the ``bbox`` member of a (small) JSON file, or None."""
    if path.stat().st_size > 50_000_000:
        return None
    with path.open("rb") as fh:
        if fh.read(1).strip() not in (b"{", b""):
            return None
    return _json_bytes_to_bbox(path.read_bytes())


def _json_bytes_to_bbox(raw: bytes) -> Any:
    """Parse a GeoJSON document's top-level ``bbox``; None if absent or not JSON."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    bbox = doc.get("bbox") if isinstance(doc, dict) else None
    return bbox if isinstance(bbox, list) and len(bbox) in (4, 6) else None


# --------------------------------------------------------------------------- ShakeMap shape.zip


def _shakemap_zip_to_result(
    path: Path, shapefiles: list[str], opts: _Options, log: _Log
) -> _Result:
    """ShakeMap ``shape.zip``: MMI bands from ``mi.shp`` and its PARAMVALUE."""
    mi = next(m for m in shapefiles if PurePosixPath(m).stem.lower() == "mi")
    others = sorted(PurePosixPath(m).stem for m in shapefiles if m != mi)
    if others:
        log.notes.append(f"also in the zip, not used: {', '.join(others)} (MMI comes from mi.shp)")
    layers = _source_to_layers(_vsizip(path, mi), opts.display, log, prefix=mi)
    gdf = _frame_to_clean_polygons(layers[0][1], opts.display, log)
    value_col = _column(gdf, "PARAMVALUE")
    if not value_col or not len(gdf):
        raise FootprintError(f"{opts.display}: mi.shp has no PARAMVALUE field or no polygons.")
    values = pd.to_numeric(gdf[value_col], errors="coerce").to_numpy(float)
    gdf, values = gdf[~np.isnan(values)], values[~np.isnan(values)]
    by_value = (
        pd.Series(list(gdf.geometry.values))
        .groupby(values)
        .agg(lambda s: shapely.union_all(s.to_numpy()))
    )
    levels, geoms = by_value.index.to_numpy(float), by_value.to_numpy()
    if _polygons_are_nested(geoms):
        # each polygon is "at least v": the band [v, next v) is binned by its lower bound
        log.notes.append("mi.shp polygons are nested (each is 'at least PARAMVALUE'): made bands")
        geoms = _nested_to_disjoint(geoms)
    else:
        # pcontour bands: PARAMVALUE is the mid-band value, binned where it falls
        log.notes.append("mi.shp polygons are disjoint bands; PARAMVALUE binned to PAGER MMI bands")
    ranks = [_value_to_mmi(v) for v in levels]
    labels = [f"MMI {ROMAN[r]}" for r in ranks]
    classes = _faces_to_classes(np.array(geoms, dtype=object), labels, ranks, "earthquake")
    return _Result(classes, "shakemap-shape-zip", "earthquake", value_col, len(gdf), True)


def _polygons_are_nested(geoms: np.ndarray) -> bool:
    """Whether per-value polygons overlap (cumulative) rather than tile (bands)."""
    total = shapely.area(geoms).sum()
    return bool(total > 1.01 * shapely.union_all(geoms).area)


def _nested_to_disjoint(geoms: np.ndarray) -> list[Any]:
    """Subtract from each "≥ value" area every higher one (geoms sorted by value)."""
    out, above = [], None
    for geom in geoms[::-1]:
        out.append(geom if above is None else shapely.difference(geom, above))
        above = geom if above is None else shapely.union(above, geom)
    return out[::-1]


# --------------------------------------------------------------------------- Copernicus EMS


def _is_observed_event(member: str) -> bool:
    """Whether a zip member is a Copernicus EMS observed-event layer."""
    return bool(re.search(r"observed_?event", PurePosixPath(member).stem, re.IGNORECASE))


def _cems_to_result(path: Path, shapefiles: list[str], opts: _Options, log: _Log) -> _Result:
    """Copernicus EMS delivery: flood (or other) extent from the observed-event layers."""
    events = [m for m in shapefiles if _is_observed_event(m)]
    others = sorted(PurePosixPath(m).stem for m in shapefiles if m not in events)
    read = ", ".join(PurePosixPath(m).stem for m in events)
    log.notes.append(f"Copernicus EMS observed-event layers read: {read}")
    if others:
        log.notes.append(f"other layers of the delivery not used: {', '.join(others)}")
    layers = []
    for member in events:
        layers += _source_to_layers(_vsizip(path, member), opts.display, log, prefix=member)
    kinds = [_frame_to_kind(gdf) for _, gdf in layers]
    polygons = _layers_to_polygons(layers, kinds, opts.display, log)
    n_features = sum(len(gdf) for _, gdf in layers)
    hazard, label = _cems_hazard(polygons)
    if opts.class_field is None:
        classes = _groups_to_classes(polygons, np.zeros(len(polygons), int), [label], [1], hazard)
        return _Result(classes, "cems", hazard, None, n_features, False)
    classes, used, ordinal = _polygons_to_classes(polygons, opts, log, hazard=hazard)
    return _Result(classes, "cems", hazard, used, n_features, ordinal)


def _cems_hazard(polygons: gpd.GeoDataFrame) -> tuple[str, str]:
    """Hazard type and default class label from the EMS ``obj_desc`` values."""
    col = _column(polygons, "obj_desc")
    text = " ".join(polygons[col].dropna().astype(str).str.lower().unique()) if col else ""
    if "fire" in text or "burn" in text:
        return "wildfire", "Burnt area"
    if "landslide" in text:
        return "landslide", "Landslide area"
    return "flood", "Flooded area"


# --------------------------------------------------------------------------- GDACS


def _gdacs_field(polygons: gpd.GeoDataFrame) -> str | None:
    """Find the GDACS class property (``Class``, ``class``, ``polygonlabel``) with Poly_*."""
    for name in ("Class", "class", "polygonlabel"):
        col = _column(polygons, name)
        if col and polygons[col].astype(str).str.match(r"(?i)poly_").any():
            return col
    return None


def _gdacs_to_result(
    polygons: gpd.GeoDataFrame, col: str, n_features: int, opts: _Options, log: _Log
) -> _Result:
    """GDACS alert polygons → Red > Orange > Green > Affected > Cones classes."""
    keys = polygons[col].astype(str).str.strip().str.lower()
    is_poly = keys.str.startswith("poly_")
    if (~is_poly).any():
        dropped = _count(int((~is_poly).sum()), "feature")
        log.notes.append(f"dropped {dropped} whose {col} is not Poly_*")
    polygons, keys = polygons[is_poly], keys[is_poly].str.removeprefix("poly_")
    known = {k: GDACS_CLASSES.get(k, (k.replace("_", " ").capitalize(), -2)) for k in keys.unique()}
    unknown = [k for k in known if k not in GDACS_CLASSES]
    if unknown:
        log.notes.append(f"unknown GDACS classes ranked lowest: {', '.join(unknown)}")
    hazard = _gdacs_hazard(polygons, opts.display)
    names = list(known)
    codes = keys.map({k: i for i, k in enumerate(names)}).to_numpy()
    classes = _groups_to_classes(
        polygons, codes, [known[k][0] for k in names], [known[k][1] for k in names], hazard
    )
    return _Result(classes, "gdacs", hazard, col, n_features, True)


def _gdacs_hazard(polygons: gpd.GeoDataFrame, display: str) -> str:
    """Hazard type from the GDACS ``eventtype`` property, else from the file name."""
    col = _column(polygons, "eventtype")
    if col and polygons[col].notna().any():
        code = str(polygons[col].dropna().iloc[0]).strip().upper()
        return GDACS_EVENT_TYPES.get(code, code.lower())
    return _name_to_hazard(display)


# --------------------------------------------------------------------------- generic polygons


def _polygons_to_classes(
    polygons: gpd.GeoDataFrame, opts: _Options, log: _Log, hazard: str | None = None
) -> tuple[gpd.GeoDataFrame, str | None, bool]:
    """Classes from ``class_field`` values, or one class named after the file."""
    hazard = hazard or _name_to_hazard(opts.display)
    if opts.class_field is None:
        label = _display_to_stem(opts.display)
        codes = np.zeros(len(polygons), int)
        return _groups_to_classes(polygons, codes, [label], [1], hazard), None, False
    col = _column(polygons, opts.class_field)
    if col is None:
        fields = [c for c in polygons.columns if c != "geometry"]
        raise FootprintError(
            f"{opts.display}: no field '{opts.class_field}'; the fields are "
            f"{', '.join(fields) or '(none)'}."
        )
    raw = polygons[col]
    blank = raw.isna() | (raw.astype(str).str.strip() == "")
    if blank.any():
        log.notes.append(f"dropped {_count(int(blank.sum()), 'feature')} with no value in {col}")
    polygons, raw = polygons[~blank], raw[~blank]
    keys, labels, ranks, ordinal = _values_to_classes(raw, log, col)
    codes = keys.map({k: i for i, k in enumerate(labels)}).to_numpy()
    classes = _groups_to_classes(polygons, codes, list(labels.values()), ranks, hazard)
    return classes, col, ordinal


def _values_to_classes(
    raw: pd.Series, log: _Log, col: str
) -> tuple[pd.Series, dict[str, str], list[int], bool]:
    """Normalise attribute values (strip, case-fold) and rank them.

    Returns the key of each value, the display label of each key (in rank
    order), the ranks, and whether the order is meaningful (numeric or a known
    ordinal scale) rather than alphabetical.
    """
    numbers = pd.to_numeric(raw, errors="coerce")
    if numbers.notna().all():
        keys = numbers.map(_number_to_label)
        order = sorted(keys.unique(), key=float)
        return keys, {k: k for k in order}, list(range(1, len(order) + 1)), True
    text = raw.astype(str).str.strip().str.replace(r"\s+", " ", regex=True)
    keys = text.str.casefold()
    scale = next((s for s in ORDINAL_SCALES if set(keys.unique()) <= set(s)), None)
    order = sorted(keys.unique(), key=scale.index) if scale else sorted(keys.unique())
    if not scale and len(order) > 1:
        log.notes.append(f"values of {col} have no known order: ranked alphabetically")
    merged = {k: sorted(set(text[keys == k])) for k in order}
    for variants in merged.values():
        if len(variants) > 1:
            spellings = ", ".join(repr(v) for v in variants)
            log.notes.append(f"{col} values {spellings} merged into one class")
    labels = {k: _variants_to_label(text[keys == k]) for k in order}
    return keys, labels, list(range(1, len(order) + 1)), scale is not None


def _number_to_label(value: float) -> str:
    """Format a class value: integers without decimals, others as given."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _variants_to_label(variants: pd.Series) -> str:
    """Display label for spellings of one value: the commonest mixed-case one, else capitalised."""
    counts = variants.value_counts()
    mixed = [v for v in counts.index if not (v.isupper() or v.islower())]
    label = mixed[0] if mixed else str(counts.index[0])
    if label.isupper() or label.islower():
        label = label[:1].upper() + label[1:].lower()
    return label


def _groups_to_classes(
    gdf: gpd.GeoDataFrame, codes: np.ndarray, labels: list[str], ranks: list[int], hazard: str
) -> gpd.GeoDataFrame:
    """Dissolve features by class code into one row per class."""
    geoms = np.asarray(gdf.geometry.values)
    rows = [
        (hazard, labels[i], int(ranks[i]), shapely.union_all(geoms[codes == i]))
        for i in range(len(labels))
        if (codes == i).any()
    ]
    return _rows_to_classes(rows)


def _name_to_hazard(display: str) -> str:
    """Guess a hazard type from words in the file name."""
    lower = display.lower()
    return next((hazard for word, hazard in HAZARD_WORDS if word in lower), "unspecified")


def _display_to_stem(display: str) -> str:
    """File name without directories and known extensions."""
    stem = PurePosixPath(display.replace("\\", "/")).name
    suffixes = r"(\.(shp|zip|geojson|json|topojson|gpkg|kml|kmz|gml|fgb))+$"
    return re.sub(suffixes, "", stem, flags=re.IGNORECASE)


# --------------------------------------------------------------------------- ACLED


def _acled_to_result(path: Path, opts: _Options, log: _Log) -> _Result:
    """ACLED events → geodesic buffers, one class per event type."""
    table = _csv_to_table(path, opts.display, log)
    missing = [c for c in ACLED_REQUIRED if c not in table.columns]
    if missing:
        raise FootprintError(
            f"{opts.display}: not an ACLED export, missing column(s) {', '.join(missing)}; "
            f"expected {', '.join(ACLED_REQUIRED)} (upper or lower case)."
        )
    n_read = len(table)
    events = _table_to_events(table, opts, log)
    labels = sorted(events["label"].unique(), key=lambda k: (ACLED_SEVERITY.get(k, 0), k))
    counts = events["label"].value_counts()
    log.notes.append(
        "events per type: "
        + ", ".join(f"{k} {counts[k]}" for k in reversed(labels))
        + f"; buffered {opts.buffer_km:g} km"
    )
    zones = _events_to_zones(events, opts.buffer_km, log)
    codes = zones["label"].map({k: i for i, k in enumerate(labels)}).to_numpy()
    ranks = [ACLED_SEVERITY.get(k, 0) for k in labels]
    classes = _groups_to_classes(zones, codes, labels, ranks, "conflict")
    used = table.attrs.get("original", {}).get("event_type", "event_type")
    return _Result(classes, "acled", "conflict", used, n_read, False)


def _csv_to_table(path: Path, display: str, log: _Log) -> pd.DataFrame:
    """Read a CSV as text, tolerating quoted newlines and a truncated last row."""
    raw = path.read_bytes()
    encoding = "utf-8-sig"
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        encoding = "latin-1"
        log.notes.append("the CSV is not UTF-8: read as Latin-1")
    kwargs = {"dtype": str, "keep_default_na": False, "encoding": encoding}
    try:
        table = pd.read_csv(path, **kwargs)
    except pd.errors.ParserError as exc:
        m = re.search(r"EOF inside string starting at row (\d+)", str(exc))
        if not m:
            raise FootprintError(f"{display}: unreadable CSV ({_one_line(exc)}).") from None
        table = pd.read_csv(path, nrows=int(m.group(1)) - 1, **kwargs)
        log.notes.append(
            f"skipped the truncated last row (row {len(table) + 2}): the file ends inside a "
            "quoted field"
        )
    except (UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise FootprintError(f"{display}: unreadable CSV ({_one_line(exc)}).") from None
    if len(table) and not raw.rstrip(b" ").endswith((b"\n", b"\r")) and table.iloc[-1, -1] == "":
        log.notes.append(
            f"skipped the truncated last row (row {len(table) + 1}): it has missing fields"
        )
        table = table.iloc[:-1]
    original = {c.strip().lower(): c for c in table.columns}
    table.columns = [c.strip().lower() for c in table.columns]
    table.attrs["original"] = original
    table.index = np.arange(2, len(table) + 2)  # spreadsheet row numbers, header is row 1
    return table


def _table_to_events(table: pd.DataFrame, opts: _Options, log: _Log) -> pd.DataFrame:
    """Parse coordinates, dates and event types; drop unusable rows with notes."""
    lon, lat, keep = _table_to_coordinates(table, log)
    keep &= _dates_to_window(_dates_to_timestamps(table["event_date"]), keep, opts, log)
    labels = table["event_type"].map(_event_type_to_label)
    untyped = keep & (labels == "")
    if untyped.any():
        n_untyped = _count(int(untyped.sum()), "row")
        log.notes.append(f"skipped {n_untyped} without event_type: {_rows(untyped)}")
        keep &= ~untyped
    if not keep.any():
        raise FootprintError(f"{opts.display}: no ACLED event with usable coordinates and type.")
    return pd.DataFrame({"lon": lon[keep], "lat": lat[keep], "label": labels[keep]})


def _table_to_coordinates(table: pd.DataFrame, log: _Log) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Longitude, latitude and the mask of rows whose coordinates are usable."""
    lat = pd.to_numeric(table["latitude"].str.strip(), errors="coerce")
    lon = pd.to_numeric(table["longitude"].str.strip(), errors="coerce")
    bad = lat.isna() | lon.isna() | (lat.abs() > 90) | (lon.abs() > 180) | ((lat == 0) & (lon == 0))
    if bad.any():
        n_bad = _count(int(bad.sum()), "row")
        log.notes.append(f"skipped {n_bad} with unusable coordinates: {_rows(bad)}")
    return lon, lat, ~bad


def _dates_to_window(dates: pd.Series, keep: pd.Series, opts: _Options, log: _Log) -> pd.Series:
    """Mask of rows inside the date window (all rows when there is no window)."""
    if opts.date_from is None and opts.date_to is None:
        if dates.isna().any():
            n_undated = _count(int(dates.isna().sum()), "row")
            log.notes.append(f"{n_undated} with unreadable event_date kept: {_rows(dates.isna())}")
        return pd.Series(True, index=dates.index)
    undated = keep & dates.isna()
    if undated.any():
        n_undated = _count(int(undated.sum()), "row")
        log.notes.append(f"skipped {n_undated} with unreadable event_date: {_rows(undated)}")
    inside = dates.notna()
    if opts.date_from is not None:
        inside &= dates >= opts.date_from
    if opts.date_to is not None:
        inside &= dates <= opts.date_to
    if not (keep & inside).any():
        known = dates[keep].dropna()
        span = f"{known.min():%Y-%m-%d} to {known.max():%Y-%m-%d}" if len(known) else "no dates"
        raise FootprintError(
            f"{opts.display}: no ACLED event between {_day(opts.date_from)} and "
            f"{_day(opts.date_to)} (the file covers {span}); widen the date window."
        )
    return inside


def _dates_to_timestamps(text: pd.Series) -> pd.Series:
    """Parse ACLED dates in any of the export formats (ISO, 9-May-20, 01-January-2015 ...)."""
    text = text.str.strip()
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for fmt in ACLED_DATE_FORMATS:
        missing = out.isna()
        if not missing.any():
            break
        out[missing] = pd.to_datetime(text[missing], format=fmt, errors="coerce")
    return out


def _event_type_to_label(raw: str) -> str:
    """Canonical ACLED event type for modern and legacy spellings."""
    key = re.sub(r"\s+", " ", str(raw)).strip().casefold()
    if not key:
        return ""
    if key.startswith("battle"):
        return "Battles"
    if "remote violence" in key or key.startswith("explosion"):
        return "Explosions/Remote violence"
    if key.startswith("violence against civilian"):
        return "Violence against civilians"
    if key.startswith("riots/protest"):
        return "Riots/Protests"
    if key.startswith("riot"):
        return "Riots"
    if key.startswith("protest"):
        return "Protests"
    if key.startswith(("strategic development", "non-violent transfer", "headquarters or base")):
        return "Strategic developments"
    return key[:1].upper() + key[1:]


def _events_to_zones(events: pd.DataFrame, buffer_km: float, log: _Log) -> gpd.GeoDataFrame:
    """Geodesically correct circles: buffer in the UTM zone of each point, back to lon/lat."""
    unique = events.drop_duplicates(["label", "lon", "lat"])
    lon, lat = unique["lon"].to_numpy(float), unique["lat"].to_numpy(float)
    zone = np.floor((lon + 180) / 6).astype(int) % 60 + 1
    epsg = np.where(lat >= 0, 32600, 32700) + zone
    geoms = np.empty(len(unique), dtype=object)
    for code in np.unique(epsg):
        mask = epsg == code
        points = gpd.GeoSeries(gpd.points_from_xy(lon[mask], lat[mask]), crs=WGS84)
        circles = points.to_crs(int(code)).buffer(buffer_km * 1000, quad_segs=16)
        geoms[mask] = circles.to_crs(WGS84).values
    geoms = _antimeridian_split(geoms, log)
    return gpd.GeoDataFrame({"label": unique["label"].to_numpy()}, geometry=geoms, crs=WGS84)


# --------------------------------------------------------------------------- class frames


def _finish_classes(classes: gpd.GeoDataFrame, display: str) -> gpd.GeoDataFrame:
    """Validate reader output: polygonal, non-empty, typed columns, sorted by rank."""
    classes = classes.copy()
    classes["geometry"] = _geometries_to_polygonal(np.asarray(classes.geometry.values))
    invalid = ~shapely.is_valid(np.asarray(classes.geometry.values))
    if invalid.any():
        geoms = np.asarray(classes.geometry.values)
        classes["geometry"] = _geometries_to_polygonal(
            np.where(invalid, shapely.make_valid(geoms), geoms)
        )
    classes = classes[classes.geometry.notna()]
    if not len(classes):
        raise FootprintError(f"{display}: no polygon area left after cleaning the geometries.")
    return _sorted_classes(classes)


def _sorted_classes(classes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return standard columns and dtypes, sorted by rank then label, fresh index."""
    out = gpd.GeoDataFrame(
        {
            "hazard_type": classes["hazard_type"].astype(str).to_numpy(),
            "class_label": classes["class_label"].astype(str).to_numpy(),
            "class_rank": classes["class_rank"].astype("int64").to_numpy(),
        },
        geometry=np.asarray(classes.geometry.values),
        crs=classes.crs or WGS84,
    )
    return out.sort_values(["class_rank", "class_label"], kind="stable").reset_index(drop=True)


def _severity_order(classes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Classes sorted from most to least severe (rank, then label)."""
    missing = [c for c in CLASS_COLUMNS if c not in classes.columns]
    if missing:
        raise ValueError(f"class frame lacks column(s) {', '.join(missing)}")
    return classes.sort_values(["class_rank", "class_label"], ascending=False, kind="stable")


def _classes_to_severity(classes: gpd.GeoDataFrame, order: int) -> pd.DataFrame:
    """Prefix labels by hazard type and add severity = position / number of classes."""
    ranked = _sorted_classes(classes)
    out = pd.DataFrame(ranked.drop(columns="geometry"))
    out["geometry"] = ranked.geometry.values
    out["class_label"] = ranked["hazard_type"] + ": " + ranked["class_label"]
    out["severity"] = np.arange(1, len(ranked) + 1) / max(len(ranked), 1)
    out["order"] = order
    return out


def _merge_same_labels(bands: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Union rows that share a label, keep the higher rank, renumber ranks 1..n."""
    rows = []
    for label, group in bands.groupby("class_label", sort=False):
        rows.append(
            (
                group["hazard_type"].iloc[0],
                label,
                int(group["class_rank"].max()),
                shapely.union_all(group.geometry.values),
            )
        )
    merged = _rows_to_classes(rows)
    merged = _sorted_classes(merged)
    merged["class_rank"] = np.arange(1, len(merged) + 1, dtype="int64")
    return merged


# --------------------------------------------------------------------------- small helpers


def _rows_to_classes(rows: list[tuple]) -> gpd.GeoDataFrame:
    """Build a class frame from (hazard_type, label, rank, geometry) tuples."""
    frame = pd.DataFrame(rows, columns=CLASS_COLUMNS)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=WGS84)


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


def _day(value: pd.Timestamp | None) -> str:
    """Format a date bound, open ends as '…'."""
    return "…" if value is None else f"{value:%Y-%m-%d}"


def _rows(mask: pd.Series, limit: int = 10) -> str:
    """Spreadsheet row numbers of a mask, shortened after ``limit``."""
    rows = [str(i) for i in mask[mask].index]
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return "rows " + ", ".join(rows[:limit]) + more


def _count(n: int, noun: str) -> str:
    """``'1 unclosed ring'`` / ``'2 unclosed rings'``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _one_line(exc: BaseException) -> str:
    """Return an exception message on one line."""
    return " ".join(str(exc).split())
