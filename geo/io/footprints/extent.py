"""Where a vector footprint file lies, from its header alone (no feature is read).

The Map page picks the first shipped footprint that covers the release; reading each
footprint in full to learn its extent cost 0.8 s of CPU on the first page for a flood
map on the other side of the world. A file's header gives its bounds in a few ms.
"""

from __future__ import annotations

from pathlib import Path

VECTOR_SUFFIXES = (".shp", ".geojson", ".json", ".gpkg", ".topojson", ".kml")


def footprint_file_bounds(path: str | Path) -> tuple[float, float, float, float] | None:
    """Return a vector footprint file's (west, south, east, north) in WGS 84, from its header.

    Returns
    -------
    tuple or None
        The bounds of the file's features (before any buffer a reader adds); None when
        the header cannot tell (rasters, CSV, CAP XML, zips, no CRS, unreadable): read
        the footprint to know.
    """
    path = Path(path)
    if path.suffix.lower() not in VECTOR_SUFFIXES:
        return None
    try:
        import pyogrio
        from pyproj import CRS, Transformer

        info = pyogrio.read_info(path, force_total_bounds=True)
        bounds, crs = info.get("total_bounds"), info.get("crs")
        if bounds is None or crs is None or any(b != b for b in bounds):
            return None
        source = CRS.from_user_input(crs)
        if source.equals(CRS.from_epsg(4326)):
            return tuple(float(b) for b in bounds)
        to_wgs84 = Transformer.from_crs(source, 4326, always_xy=True)
        return tuple(float(b) for b in to_wgs84.transform_bounds(*bounds))
    except Exception:  # noqa: BLE001 - any doubt: the caller reads the file instead
        return None
