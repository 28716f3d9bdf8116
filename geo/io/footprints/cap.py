"""CAP 1.2 alert messages (Common Alerting Protocol, OASIS): the areas of an alert by severity.

An alert holds one or more ``<info>`` blocks (one per language or per
severity), each with its ``<severity>`` and one or more ``<area>`` blocks whose
geometry is given as ``<polygon>`` ("lat,lon lat,lon ...", closed) and
``<circle>`` ("lat,lon radius_km") elements. Each polygon and circle becomes
part of the class of its info's severity, ranked as CAP orders it: Extreme 5 >
Severe 4 > Moderate 3 > Minor 2 > Unknown 1. Circles are drawn as geodesic
circles on the WGS 84 ellipsoid. Areas given only by ``<geocode>`` (a code
of some national list) cannot be drawn: they are counted in the notes.

The XML is parsed with defusedxml: no DTD, no entity, no external reference is
ever resolved (an alert comes from outside). The package ``capparser`` was
considered: it turns the XML into dictionaries, parses no geometry and is not
hardened against entity expansion, so it would save nothing here.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as DefusedET
import numpy as np
import shapely
from defusedxml import DefusedXmlException

from geo.errors import library_reason
from geo.footprint_classes import geometries_to_polygonal, rows_to_classes
from geo.io.footprints.common import (
    FootprintError,
    _antimeridian_split,
    _circle_to_polygon,
    _count,
    _Log,
    _name_to_hazard,
    _Options,
    _Result,
)

CAP_NAMESPACES = ("urn:oasis:names:tc:emergency:cap:1.2", "urn:oasis:names:tc:emergency:cap:1.1")
SEVERITIES = {"extreme": 5, "severe": 4, "moderate": 3, "minor": 2, "unknown": 1}
CAP_CATEGORIES = {"geo": "earthquake", "met": "weather", "fire": "wildfire"}


def _looks_like_cap(head: bytes) -> bool:
    """Whether the first bytes of a file are a CAP alert."""
    return b"<" in head[:200] and any(ns.encode() in head for ns in CAP_NAMESPACES)


def _cap_to_result(path: Path, opts: _Options, log: _Log) -> _Result:
    """CAP alert → one class per severity, polygons and geodesic circles."""
    root = _xml_root(path, opts.display)
    ns = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    if root.tag.split("}")[-1] != "alert" or ns not in CAP_NAMESPACES:
        raise FootprintError(f"{opts.display}: not a CAP 1.1/1.2 alert (root {root.tag}).")
    q = f"{{{ns}}}"
    by_severity: dict[str, list] = {}
    events, n_areas, geocoded = [], 0, 0
    for i, info in enumerate(root.findall(f"{q}info"), start=1):
        severity = (info.findtext(f"{q}severity") or "Unknown").strip().casefold()
        if severity not in SEVERITIES:
            raise FootprintError(
                f"{opts.display}: info {i} has severity {severity!r}; CAP allows Extreme, "
                "Severe, Moderate, Minor or Unknown."
            )
        events.append(
            " ".join(t or "" for t in (info.findtext(f"{q}event"), info.findtext(f"{q}category")))
        )
        for j, area in enumerate(info.findall(f"{q}area"), start=1):
            n_areas += 1
            where = f"info {i} area {j}"
            shapes = [_polygon(p.text, where, opts.display) for p in area.findall(f"{q}polygon")]
            shapes += [
                c
                for c in (
                    _circle(e.text, where, opts.display, log) for e in area.findall(f"{q}circle")
                )
                if c is not None
            ]
            if not shapes:
                geocoded += 1
                continue
            by_severity.setdefault(severity, []).extend(shapes)
    if geocoded:
        log.notes.append(
            f"{_count(geocoded, 'area')} given only by geocode or description left out "
            "(CAP draws areas only as polygons and circles)"
        )
    if not by_severity:
        raise FootprintError(
            f"{opts.display}: the CAP alert has no <polygon> or <circle> area "
            f"({_count(n_areas, 'area')} read); nothing to map."
        )
    hazard = _events_to_hazard(events, opts.display)
    rows = []
    for severity in sorted(by_severity, key=SEVERITIES.get):
        geoms = np.array(by_severity[severity], dtype=object)
        geoms = np.where(shapely.is_valid(geoms), geoms, shapely.make_valid(geoms))
        geoms = _antimeridian_split(geometries_to_polygonal(geoms), log)
        geoms = geoms[[g is not None for g in geoms]]
        rows.append((hazard, severity.capitalize(), SEVERITIES[severity], shapely.union_all(geoms)))
    log.notes.append(
        f"CAP alert: {_count(len(root.findall(f'{q}info')), 'info block')}, "
        f"{_count(n_areas, 'area')}; classes by <severity>"
    )
    return _Result(rows_to_classes(rows), "cap", hazard, "severity", n_areas, True)


def _xml_root(path: Path, display: str) -> Element:
    """Parse the XML safely (no DTD, entities or external references)."""
    try:
        return DefusedET.parse(
            path, forbid_dtd=True, forbid_entities=True, forbid_external=True
        ).getroot()
    except DefusedXmlException as exc:
        raise FootprintError(
            f"{display}: the XML declares a DTD or entities ({type(exc).__name__}); refused, "
            "a CAP alert needs none."
        ) from None
    except ParseError as exc:
        raise FootprintError(f"{display}: not well-formed XML ({library_reason(exc)}).") from None


def _pairs(text: str, where: str, display: str) -> np.ndarray:
    """``"lat,lon lat,lon"`` → array of (lon, lat)."""
    try:
        pairs = [tuple(float(v) for v in token.split(",")) for token in text.split()]
    except ValueError:
        pairs = [()]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise FootprintError(
            f"{display}: {where}: cannot read {text.strip()[:60]!r} as 'lat,lon' pairs."
        )
    latlon = np.array(pairs, dtype=float)
    if (np.abs(latlon[:, 0]) > 90).any() or (np.abs(latlon[:, 1]) > 180).any():
        raise FootprintError(
            f"{display}: {where}: a coordinate is out of range (CAP gives 'lat,lon')."
        )
    return latlon[:, ::-1]


def _polygon(text: str | None, where: str, display: str) -> shapely.Polygon:
    """Read a CAP ``<polygon>``: at least four pairs, first and last equal (closed if not)."""
    lonlat = _pairs(text or "", f"{where} polygon", display)
    if len(lonlat) < 3:
        raise FootprintError(
            f"{display}: {where} polygon has {len(lonlat)} points; CAP needs at least 4."
        )
    return shapely.Polygon(lonlat)


def _circle(text: str | None, where: str, display: str, log: _Log) -> shapely.Polygon | None:
    """Read a CAP ``<circle>`` ("lat,lon radius_km") as a geodesic polygon; None for radius 0."""
    parts = (text or "").split()
    if len(parts) != 2:
        raise FootprintError(
            f"{display}: {where} circle {(text or '').strip()[:60]!r} is not 'lat,lon radius'."
        )
    ((lon, lat),) = _pairs(parts[0], f"{where} circle", display)
    try:
        radius = float(parts[1])
    except ValueError:
        radius = -1.0
    if not radius >= 0:
        raise FootprintError(
            f"{display}: {where} circle radius {parts[1]!r} is not a number of km ≥ 0."
        )
    if radius == 0:
        log.notes.append(f"{where}: a circle of radius 0 (a point) left out")
        return None
    return _circle_to_polygon(lon, lat, radius)


def _events_to_hazard(events: list[str], display: str) -> str:
    """Hazard type from the alert's ``<event>`` and ``<category>``, else the file name."""
    text = " ".join(events)
    hazard = _name_to_hazard(text)
    if hazard == "unspecified":
        category = next((c for c in text.lower().split() if c in CAP_CATEGORIES), None)
        hazard = CAP_CATEGORIES[category] if category else _name_to_hazard(display)
    return hazard
