"""The event a footprint describes, where its file says: time, publisher, event id.

The headline puts the footprint's event time beside the release's as-of date, so a
planner sees how far apart the registry and the hazard are. Only what the file states
is read (never guessed from a file name): a ShakeMap ``grid.xml`` (its ``<event>``
element and originator), a CAP alert (onset, else effective, else sent; sender and
event), and the ``metadata`` member of ShakeMap contour GeoJSON (event id, and time
where the publisher adds one). Best effort: a file that says nothing gives Nones.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

# Enough of a grid.xml to hold its root and <event> element (the grid data follow).
_GRID_HEAD_BYTES = 16_384
_CONTOUR_JSON_BYTES = 64 * 1024 * 1024
_ATTRIBUTE = r'\b{}\s*=\s*"([^"]*)"'
_TIME_KEYS = ("time", "event_time", "origintime", "origin_time", "eventtime")


def file_to_event(path: Path, file_format: str) -> dict:
    """Return ``{"event_time": str | None, "event": str | None}`` as the file states them.

    ``event_time`` is the time as published (ISO 8601 where the format uses it);
    ``event`` names the publisher and the event (id, description) where known.
    """
    try:
        if file_format == "shakemap-grid" and path.suffix.lower() == ".xml":
            return _grid_event(path)
        if file_format == "cap":
            return _cap_event(path)
        if file_format == "shakemap-contours" and path.stat().st_size <= _CONTOUR_JSON_BYTES:
            return _contour_event(path)
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    return {"event_time": None, "event": None}


def _attribute(text: str, name: str) -> str | None:
    found = re.search(_ATTRIBUTE.format(re.escape(name)), text)
    return found.group(1).strip() or None if found else None


def _grid_event(path: Path) -> dict:
    """ShakeMap grid.xml: ``<event event_timestamp= event_id= event_description=>``."""
    with path.open("rb") as fh:
        head = fh.read(_GRID_HEAD_BYTES).decode("utf-8", "replace")
    event = re.search(r"<(?:\w+:)?event\b[^>]*>", head)
    element = event.group(0) if event else ""
    root = re.search(r"<(?:\w+:)?shakemap_grid\b[^>]*>", head)
    origin = _attribute(root.group(0), "shakemap_originator") if root else None
    event_id = _attribute(element, "event_id") or (
        _attribute(root.group(0), "event_id") if root else None
    )
    words = [
        f"ShakeMap by {origin}" if origin else "ShakeMap",
        f"event {event_id}" if event_id else None,
        _attribute(element, "event_description"),
        f"magnitude {_attribute(element, 'magnitude')}"
        if _attribute(element, "magnitude")
        else None,
    ]
    return {
        "event_time": _attribute(element, "event_timestamp"),
        "event": ", ".join(w for w in words if w),
    }


def _cap_event(path: Path) -> dict:
    """CAP alert: onset, else effective, else sent; sender and event."""
    from defusedxml import ElementTree

    root = ElementTree.parse(
        path, forbid_dtd=True, forbid_entities=True, forbid_external=True
    ).getroot()
    q = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    info = root.find(f"{q}info")
    times = [info.findtext(f"{q}{t}") for t in ("onset", "effective")] if info is not None else []
    time = next((t.strip() for t in [*times, root.findtext(f"{q}sent")] if t and t.strip()), None)
    sender = (root.findtext(f"{q}sender") or "").strip()
    event = (info.findtext(f"{q}event") or "").strip() if info is not None else ""
    words = [f"CAP alert from {sender}" if sender else "CAP alert", event or None]
    return {"event_time": time, "event": ", ".join(w for w in words if w)}


def _contour_event(path: Path) -> dict:
    """ShakeMap contour GeoJSON: its ``metadata`` member (event id, time if any)."""
    doc = json.loads(path.read_bytes())
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    if not isinstance(meta, dict):
        return {"event_time": None, "event": None}
    lowered = {str(k).lower(): v for k, v in meta.items()}
    time = next((str(lowered[k]) for k in _TIME_KEYS if lowered.get(k)), None)
    event_id = lowered.get("eventid") or lowered.get("event_id") or lowered.get("id")
    where = ""
    lon, lat = lowered.get("longitude"), lowered.get("latitude")
    if isinstance(lon, int | float) and isinstance(lat, int | float):
        where = f"epicentre {abs(lat):.2f}° {'N' if lat >= 0 else 'S'} {abs(lon):.2f}° " + (
            "E" if lon >= 0 else "W"
        )
    words = ["ShakeMap", f"event {event_id}" if event_id else None, where or None]
    return {"event_time": time, "event": ", ".join(w for w in words if w)}
