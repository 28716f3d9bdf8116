"""Copernicus EMS rapid-mapping deliveries: grading layers and observed-event layers.

An EMS delivery is a zip of many shapefiles named
``EMSR190_AOI01_GRA_PRODUCT_<layer>_r1_v1.shp``: area of interest, image
footprint (map frames), land use, hydrography, transportation, physiography,
built-up ... Only some of them are the hazard:

* a **grading** product (``GRA``) grades buildings and settlements: the
  built-up / building / settlement layers (``builtUpP``, ``builtUpA``,
  ``settlementsA`` ...) with a ``grading`` (or ``damage_gra``) field. They are
  read into the EMS damage grades in the publisher's order, worst first:
  Completely Destroyed > Highly Damaged > Moderately Damaged > Negligible to
  slight damage > Not Affected (the current scale), and Destroyed > Damaged >
  Possibly damaged > No visible damage (older deliveries); the two scales
  interleave (Completely Destroyed > Destroyed > Highly Damaged > Damaged >
  Moderately Damaged > Possibly damaged > ...) so that a delivery mixing them
  still has one strict order. Grades the scale does not know, and features
  without a grade, are left out and counted in the notes. Transportation
  layers carry grades too, but roads are not where people live: like the area
  of interest, the map frames, land use and hydrography, they are never read
  as hazard (listed in the notes).
* a **delineation** product (``DEL``) maps the event: the observed-event layers
  (``observedEventA``, ``floodTraceA``, ``floodedAreaA``) form one class named
  after the event found in ``obj_desc`` ("Flooded area", "Burnt area",
  "Landslide area"), or classes from ``class_field`` when given.

When a delivery has both, the grading is read (it is the finer product) and
the observed-event layers are named in the notes.

From points to areas: EMS grades each building as a point (``builtUpP``) or a
polygon (``builtUpA``). A point marks a building, not an area, so it becomes a
circle of :data:`BUILDING_RADIUS_M` (25 m: a building and its plot) around it,
drawn in the layer's projected CRS (metres); polygons are used as they are.
Where circles or polygons of different grades overlap, the worst grade wins
(:func:`geo.tools.classes.to_bands`).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.io.footprints.common import (
    FootprintError,
    _column,
    _count,
    _frame_to_kind,
    _groups_to_classes,
    _layers_to_polygons,
    _Log,
    _Options,
    _Result,
    _source_to_layers,
    _vsizip,
)
from geo.io.footprints.generic import _polygons_to_classes

BUILDING_RADIUS_M = 25.0
OBSERVED_EVENT = re.compile(r"observed_?event|flood_?trace|flooded_?area|obsevent", re.I)
GRADED_LAYER = re.compile(r"built_?up|building|settlement", re.I)
EMS_STEM = re.compile(r"^EMSR\d+", re.I)
GRADING_FIELDS = ("grading", "damage_gra", "dmg_gra", "damage_grade", "dmg_src_gr")
# key (case-folded, spaces collapsed) → (label, rank); higher rank is more damage.
DAMAGE_GRADES = {
    "completely destroyed": ("Completely Destroyed", 9),
    "destroyed": ("Destroyed", 8),
    "highly damaged": ("Highly Damaged", 7),
    "damaged": ("Damaged", 6),
    "moderately damaged": ("Moderately Damaged", 5),
    "possibly damaged": ("Possibly damaged", 4),
    "negligible to slight damage": ("Negligible to slight damage", 3),
    "not affected": ("Not Affected", 2),
    "no visible damage": ("No visible damage", 1),
}


def _is_observed_event(member: str) -> bool:
    """Whether a zip member is a Copernicus EMS observed-event (flood trace, flooded area) layer."""
    return bool(OBSERVED_EVENT.search(PurePosixPath(member).stem))


def _is_cems_delivery(shapefiles: list[str]) -> bool:
    """Whether a zip's shapefiles are an EMS delivery with a hazard layer."""
    stems = [PurePosixPath(m).stem for m in shapefiles]
    if any(_is_observed_event(s) for s in stems):
        return True
    return any(EMS_STEM.search(s) for s in stems) and any(GRADED_LAYER.search(s) for s in stems)


def _cems_to_result(path: Path, shapefiles: list[str], opts: _Options, log: _Log) -> _Result:
    """Copernicus EMS delivery: damage grades, else the observed event's extent."""
    graded = [m for m in shapefiles if GRADED_LAYER.search(PurePosixPath(m).stem)]
    layers = _members_to_layers(path, graded, opts, log)
    layers = [(name, gdf) for name, gdf in layers if _grading_column(gdf)]
    if layers:
        used = [name for name, _ in layers]
        _note_unused(shapefiles, used, log)
        return _grading_to_result(layers, opts, log)
    events = [m for m in shapefiles if _is_observed_event(m)]
    if not events:
        raise FootprintError(
            f"{opts.display}: a Copernicus EMS delivery without a graded built-up layer "
            "(field grading or damage_gra) or an observed-event layer; nothing to map."
        )
    _note_unused(shapefiles, events, log)
    log.notes.append(
        "Copernicus EMS observed-event layers read: "
        + ", ".join(PurePosixPath(m).stem for m in events)
    )
    layers = _members_to_layers(path, events, opts, log)
    kinds = [_frame_to_kind(gdf) for _, gdf in layers]
    polygons = _layers_to_polygons(layers, kinds, opts.display, log)
    n_features = sum(len(gdf) for _, gdf in layers)
    hazard, label = _cems_hazard(polygons)
    if opts.class_field is None:
        classes = _groups_to_classes(polygons, np.zeros(len(polygons), int), [label], [1], hazard)
        return _Result(classes, "cems", hazard, None, n_features, False)
    classes, used, ordinal = _polygons_to_classes(polygons, opts, log, hazard=hazard)
    return _Result(classes, "cems", hazard, used, n_features, ordinal)


def _members_to_layers(
    path: Path, members: list[str], opts: _Options, log: _Log
) -> list[tuple[str, gpd.GeoDataFrame]]:
    """Read the named shapefiles of the zip, each under its stem."""
    layers = []
    for member in members:
        for _, gdf in _source_to_layers(_vsizip(path, member), opts.display, log, prefix=member):
            layers.append((PurePosixPath(member).stem, gdf))
    return layers


def _note_unused(shapefiles: list[str], used: list[str], log: _Log) -> None:
    """Say which layers of the delivery were not read as hazard."""
    used_stems = {PurePosixPath(m).stem for m in used}
    others = sorted(
        PurePosixPath(m).stem for m in shapefiles if PurePosixPath(m).stem not in used_stems
    )
    if others:
        log.notes.append(f"layers of the delivery not read as hazard: {', '.join(others)}")


def _grading_column(gdf: gpd.GeoDataFrame) -> str | None:
    """Return the damage-grade field of a layer, if it has one."""
    return next((c for c in (_column(gdf, f) for f in GRADING_FIELDS) if c), None)


def _grading_to_result(
    layers: list[tuple[str, gpd.GeoDataFrame]], opts: _Options, log: _Log
) -> _Result:
    """Graded built-up layers → one class per EMS damage grade, worst ranked highest."""
    log.notes.append("Copernicus EMS grading layers read: " + ", ".join(name for name, _ in layers))
    n_features = sum(len(gdf) for _, gdf in layers)
    frames, fields = [], []
    for _, gdf in layers:
        col = _grading_column(gdf)
        fields.append(col)
        frames.append(_points_to_circles(gdf.rename(columns={col: "_grade"}), log))
    kinds = [_frame_to_kind(gdf) for gdf in frames]
    named = [(name, gdf) for (name, _), gdf in zip(layers, frames, strict=True)]
    polygons = _layers_to_polygons(named, kinds, opts.display, log)
    if opts.class_field is not None:
        classes, used, ordinal = _polygons_to_classes(polygons, opts, log, hazard="damage")
        return _Result(classes, "cems-grading", "damage", used, n_features, ordinal)
    keys = polygons["_grade"].astype("string").str.strip().str.replace(r"\s+", " ", regex=True)
    keys = keys.str.casefold()
    known = keys.isin(list(DAMAGE_GRADES)).fillna(False).to_numpy(bool)
    if (~known).any():
        values = sorted(set(polygons["_grade"][~known].fillna("(blank)").astype(str)))
        log.notes.append(
            f"left out {_count(int((~known).sum()), 'feature')} whose grade is not on the EMS "
            f"damage scale: {', '.join(values[:8])}"
        )
    polygons, keys = polygons[known], keys[known]
    if not len(polygons):
        raise FootprintError(
            f"{opts.display}: no building or settlement carries an EMS damage grade "
            f"(field {fields[0]}); nothing to map."
        )
    grades = sorted(keys.unique(), key=lambda k: DAMAGE_GRADES[k][1])
    codes = pd.Series(keys).map({k: i for i, k in enumerate(grades)}).to_numpy()
    counts = keys.value_counts()
    log.notes.append(
        "buildings per grade: "
        + ", ".join(f"{DAMAGE_GRADES[k][0]} {counts[k]}" for k in reversed(grades))
    )
    classes = _groups_to_classes(
        polygons,
        codes,
        [DAMAGE_GRADES[k][0] for k in grades],
        [DAMAGE_GRADES[k][1] for k in grades],
        "damage",
    )
    return _Result(
        classes, "cems-grading", "damage", ",".join(dict.fromkeys(fields)), n_features, True
    )


def _points_to_circles(gdf: gpd.GeoDataFrame, log: _Log) -> gpd.GeoDataFrame:
    """Draw building points as circles of :data:`BUILDING_RADIUS_M` in a projected CRS."""
    geoms = np.asarray(gdf.geometry.values)
    is_point = np.isin(shapely.get_type_id(geoms), (0, 4))
    if not is_point.any():
        return gdf
    if gdf.crs is None or not gdf.crs.is_projected:
        crs = gdf.crs or "EPSG:4326"
        metric = gpd.GeoSeries(geoms[is_point], crs=crs)
        utm = metric.estimate_utm_crs()
        circles = metric.to_crs(utm).buffer(BUILDING_RADIUS_M, quad_segs=8).to_crs(crs).values
    else:
        circles = shapely.buffer(geoms[is_point], BUILDING_RADIUS_M, quad_segs=8)
    out = gdf.copy()
    geoms = geoms.copy()
    geoms[is_point] = np.asarray(circles)
    out["geometry"] = geoms
    log.notes.append(
        f"{_count(int(is_point.sum()), 'building point')} drawn as circles of "
        f"{BUILDING_RADIUS_M:g} m (a building and its plot)"
    )
    return out


def _cems_hazard(polygons: gpd.GeoDataFrame) -> tuple[str, str]:
    """Hazard type and default class label from the EMS ``obj_desc`` values."""
    col = _column(polygons, "obj_desc")
    text = " ".join(polygons[col].dropna().astype(str).str.lower().unique()) if col else ""
    if "fire" in text or "burn" in text:
        return "wildfire", "Burnt area"
    if "landslide" in text:
        return "landslide", "Landslide area"
    return "flood", "Flooded area"
