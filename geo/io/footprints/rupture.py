"""USGS finite-fault rupture GeoJSON (``rupture.json``, ShakeMap's fault model).

A rupture file is a FeatureCollection with a ``metadata`` member (event id,
magnitude, hypocentre, reference). Its features are the fault: usually one
MultiPolygon feature (``"rupture type": "rupture extent"``) whose polygons are
the fault segments as 3-D quadrilaterals (longitude, latitude, depth km), and,
for a point-source rupture, a Point (the hypocentre) with no extent. GDAL reads
the 3-D quads of several segments as one odd multipolygon and the point as a
second layer type, so the file is parsed here with :mod:`json` and shapely.

What it becomes: one class, ``"Fault rupture"`` (rank 1, hazard
``earthquake``): the surface projection of the rupture plane, the union of
the segments projected to the ground (depth dropped). A vertical segment
projects to a line, with no area: it is drawn as its surface trace widened
by :data:`TRACE_HALF_WIDTH_KM` on each side (noted). A rupture with no segment
(a point source) has no area to map: the message says to use the ShakeMap.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import shape

from geo.errors import library_reason
from geo.footprint_classes import WGS84, geometries_to_polygonal, rows_to_classes
from geo.io.footprints.common import (
    FootprintError,
    _antimeridian_split,
    _count,
    _Log,
    _Options,
    _Result,
)

TRACE_HALF_WIDTH_KM = 0.5
_MAX_JSON_BYTES = 50_000_000


def _json_to_document(path: Path) -> dict | None:
    """Return a small JSON file's object, or None (too large, not JSON, not an object)."""
    if path.stat().st_size > _MAX_JSON_BYTES:
        return None
    with path.open("rb") as fh:
        if fh.read(64).lstrip()[:1] != b"{":
            return None
    data = path.read_bytes()
    if b"rupture" not in data and b'"metadata"' not in data:
        return None  # cheap: most GeoJSON files are not parsed twice
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _is_rupture(doc: dict | None) -> bool:
    """Whether a GeoJSON document is a USGS/ShakeMap finite-fault rupture."""
    if not doc or doc.get("type") != "FeatureCollection":
        return False
    features = doc.get("features") or []
    rupture_type = any(
        isinstance(f, dict) and "rupture type" in (f.get("properties") or {}) for f in features
    )
    metadata = doc.get("metadata")
    return rupture_type or (
        isinstance(metadata, dict) and "reference" in metadata and "mag" in metadata
    )


def _rupture_to_result(doc: dict, opts: _Options, log: _Log) -> _Result:
    """Finite-fault rupture → one "Fault rupture" class: the rupture's surface projection."""
    segments, points = [], 0
    for i, feature in enumerate(doc.get("features") or [], start=1):
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not geometry:
            continue
        try:
            geom = shape(geometry)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            raise FootprintError(
                f"{opts.display}: rupture feature {i}: unreadable geometry ({library_reason(exc)})."
            ) from None
        if geom.geom_type in ("Point", "MultiPoint"):
            points += 1
            continue
        segments.extend(p for p in shapely.get_parts(shapely.force_2d(geom)) if not p.is_empty)
    if points:
        log.notes.append(f"{_count(points, 'point')} (hypocentre) ignored: a point has no extent")
    if not segments:
        raise FootprintError(
            f"{opts.display}: the rupture has no fault segment (a point source); it has no "
            "area to map: use the event's ShakeMap instead."
        )
    areas, traces = _segments_to_areas(segments)
    if traces:
        log.notes.append(
            f"{_count(traces, 'vertical segment')} drawn as the surface trace "
            f"± {TRACE_HALF_WIDTH_KM:g} km (no area when projected to the ground)"
        )
    geoms = _antimeridian_split(geometries_to_polygonal(np.array(areas, dtype=object)), log)
    geoms = geoms[[g is not None for g in geoms]]
    meta = doc.get("metadata") or {}
    event = ", ".join(f"{k} {meta[k]}" for k in ("id", "mag", "reference") if k in meta)
    log.notes.append(
        f"finite-fault rupture: {_count(len(segments), 'segment')}, surface projection"
        + (f" ({event})" if event else "")
    )
    rows = [("earthquake", "Fault rupture", 1, shapely.union_all(geoms))]
    return _Result(rows_to_classes(rows), "usgs-rupture", "earthquake", None, len(segments), True)


def _segments_to_areas(segments: list[Any]) -> tuple[list[Any], int]:
    """Each segment projected to the ground; zero-area ones widened around their trace."""
    areas, traces = [], 0
    for segment in segments:
        if segment.geom_type == "Polygon":
            polygon = segment if segment.is_valid else shapely.make_valid(segment)
            polygonal = geometries_to_polygonal(np.array([polygon], dtype=object))[0]
            if polygonal is not None and polygonal.area > 1e-12:
                areas.append(polygonal)
                continue
            line = segment.exterior
        else:
            line = segment
        traces += 1
        areas.append(_line_to_band(line))
    return areas, traces


def _line_to_band(line: Any) -> Any:
    """Widen a line by :data:`TRACE_HALF_WIDTH_KM` on each side, in metres (UTM)."""
    series = gpd.GeoSeries([line], crs=WGS84)
    utm = series.estimate_utm_crs()
    return series.to_crs(utm).buffer(TRACE_HALF_WIDTH_KM * 1000).to_crs(WGS84).iloc[0]
