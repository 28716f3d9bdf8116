"""Copernicus EMS rapid-mapping deliveries: the observed-event layers of the zip.

An EMS delivery is a zip of many shapefiles (areas of interest, hydrography,
transport, built-up ...); the footprint is only in the observed-event layers
(``*_observedEventA*``). They are read and cleaned like any polygons, then form
one class named after the event found in ``obj_desc`` ("Flooded area",
"Burnt area", "Landslide area"), or classes from ``class_field`` when given.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import geopandas as gpd
import numpy as np

from geo.io.footprints.common import (
    _column,
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
