"""ShakeMap footprints: contour lines (``cont_mmi.json``, ``cont_pga.json``) and ``shape.zip``.

USGS and INGV publish shaking as contour *lines* (ShakeMap 4 and 3.5 GeoJSON),
not polygons: to know who is inside MMI VII the lines are noded with the map
edge (the file's ``bbox`` member), polygonized into faces, and each face is
given its band by walking across the contours from faces bounded by two
levels. ShakeMap 4 ``shape.zip`` already holds polygons (``mi.shp`` with
``PARAMVALUE``), nested or disjoint, which are turned into the same bands.

Class ranks chosen where the format is silent
---------------------------------------------
* MMI bands: rank = integer MMI of the band (PAGER bins, MMI n covers
  [n-0.5, n+0.5)). The area of the map below the lowest contour is labelled
  honestly, e.g. ``"MMI < V"`` (rank 4) when the lowest contour is 4.5, and
  always in Roman numerals, whatever the contour levels (``"MMI < II"`` for a
  lowest contour at 2, never ``"MMI < 2"``): the same labels for every file.
* Other ShakeMap parameters (PGA, PGV, PSA): one class per contour interval,
  ``"PGA 10–20 %g"``, rank 1 for the area below the lowest contour, then
  upwards; the top class is ``"PGA ≥ 50 %g"``.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections import deque
from pathlib import Path, PurePosixPath
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.footprint_classes import rows_to_classes
from geo.io.footprints.common import (
    FootprintError,
    _antimeridian_split,
    _column,
    _count,
    _frame_to_2d,
    _frame_to_clean_polygons,
    _frame_to_wgs84,
    _Log,
    _Options,
    _Result,
    _source_to_layers,
    _vsizip,
)

ROMAN = ["0", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]


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


# --------------------------------------------------------------------------- MMI and PGA classes


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
    """Label and rank for the map area below the lowest MMI contour, in Roman numerals.

    The area holds values below the lowest contour v, so every value there is
    below R = the smallest integer ≥ v: labelled ``"MMI < R"`` in Roman (v = 4.5
    gives "MMI < V", v = 2 gives "MMI < II", v = 2.3 gives "MMI < III"), ranked
    R - 1, the highest PAGER band it can reach.
    """
    ceiling = int(min(max(math.ceil(lowest - 1e-9), 1), 12))
    return f"MMI < {ROMAN[ceiling]}", ceiling - 1


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
    return rows_to_classes(rows)


# --------------------------------------------------------------------------- map edge (bbox member)


_BBOX_JSON_BYTES = 50_000_000  # larger files are not parsed for their bbox in Python


def _json_path_to_bbox(path: Path) -> Any:
    """Return the ``bbox`` member of a (small) JSON file, or None."""
    if path.stat().st_size > _BBOX_JSON_BYTES:
        return None
    with path.open("rb") as fh:
        if fh.read(1).strip() not in (b"{", b""):
            return None
    return _json_bytes_to_bbox(path.read_bytes())


def _zip_to_bbox(path: Path, members: list[str]) -> Any:
    """Return the ``bbox`` member of the first JSON file in a zip when it is small, or None.

    The member is read whole only up to the size a bare JSON file is (the zip was checked
    by :func:`geo.io.zip_guard.check_zip` before, so its declared size holds).
    """
    json_members = [m for m in members if m.lower().endswith((".json", ".geojson"))]
    if not json_members:
        return None
    with zipfile.ZipFile(path) as zf:
        if zf.getinfo(json_members[0]).file_size > _BBOX_JSON_BYTES:
            return None
        return _json_bytes_to_bbox(zf.read(json_members[0]))


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
