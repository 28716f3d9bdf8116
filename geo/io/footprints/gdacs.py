"""GDACS event polygons: the alert areas (``Poly_Red``, ``Poly_Orange`` ...) of one event.

GDACS publishes each event's areas as polygons whose ``Class`` (or
``polygonlabel``) property is ``Poly_<class>``; they become classes ranked by
alert level, the hazard type taken from ``eventtype``.

Class ranks: Red alert 3, Orange alert 2, Green alert 1, Affected area 0,
Forecast cone -1 (other ``Poly_*`` classes -2).
"""

from __future__ import annotations

import geopandas as gpd

from geo.io.footprints.common import (
    _column,
    _count,
    _groups_to_classes,
    _Log,
    _name_to_hazard,
    _Options,
    _Result,
)

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
