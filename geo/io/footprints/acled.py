"""ACLED conflict-event CSV exports (modern and legacy schemas), buffered into conflict zones.

ACLED gives points, not areas: each event is buffered by ``buffer_km`` with a
geodesically correct circle, and the circles form one class per event type.
Real exports are messy, so rows with unusable coordinates, dates or types are
skipped with their spreadsheet row numbers, a truncated last row is dropped,
and the date window (``date_from``, ``date_to``) is applied here.

Class ranks: Battles 6, Explosions/Remote violence 5, Violence against
civilians 4, Riots (and legacy Riots/Protests) 3, Protests 2, Strategic
developments 1, any other event type 0.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import library_reason
from geo.footprint_classes import WGS84
from geo.io.footprints.common import (
    FootprintError,
    _antimeridian_split,
    _count,
    _groups_to_classes,
    _Log,
    _Options,
    _Result,
)
from geo.io.limits import check_count

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
_CHUNK_ROWS = 200_000
_ZONE_CHUNK = 20_000
_SCAN_BYTES = 16 << 20
ACLED_DATE_FORMATS = (
    "%Y-%m-%d",
    "%d-%b-%y",
    "%d-%B-%Y",
    "%d-%b-%Y",
    "%d %B %Y",
    "%d %b %Y",
    "%d/%m/%Y",
)


# --------------------------------------------------------------------------- reading the export


def _acled_to_result(path: Path, opts: _Options, log: _Log) -> _Result:
    """ACLED events → geodesic buffers, one class per event type."""
    table, used = _csv_to_table(path, opts.display, log)
    n_read = len(table)
    events = _table_to_events(table, opts, log)
    del table
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
    return _Result(classes, "acled", "conflict", used, n_read, False)


def _table_columns(path: Path, display: str, encoding: str) -> dict[str, str]:
    """Return the export's columns: lower-cased stripped name → name in the file."""
    try:
        names = pd.read_csv(path, nrows=0, encoding=encoding, dtype=str).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise FootprintError(f"{display}: unreadable CSV ({library_reason(exc)}).") from None
    return {str(c).strip().lower(): str(c) for c in names}


def _encoding(path: Path) -> str:
    """``utf-8-sig`` when the whole file decodes as UTF-8 (checked in chunks), else Latin-1."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        try:
            while chunk := handle.read(_SCAN_BYTES):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "latin-1"
    return "utf-8-sig"


def _csv_to_table(path: Path, display: str, log: _Log) -> tuple[pd.DataFrame, str]:
    """Read the four columns ACLED needs, in chunks, into compact parsed columns.

    Only ``event_date``, ``latitude``, ``longitude`` and ``event_type`` (and the last
    column, to recognise a truncated last row) are read, ``_CHUNK_ROWS`` rows at a
    time, so a national export of a million events (tens of columns of notes and actors)
    is read in bounded memory. Quoted newlines and a truncated last row are tolerated.

    Returns
    -------
    tuple
        The table and the name of the event type column in the file. The table has
        ``latitude``, ``longitude`` (float, NaN when unreadable), ``event_date``
        (datetime, NaT when unreadable) and ``label`` (canonical event type, "" when
        missing), indexed by spreadsheet row number (the header is row 1).
    """
    encoding = _encoding(path)
    if encoding == "latin-1":
        log.notes.append("the CSV is not UTF-8: read as Latin-1")
    columns = _table_columns(path, display, encoding)
    missing = [c for c in ACLED_REQUIRED if c not in columns]
    if missing:
        raise FootprintError(
            f"{display}: not an ACLED export, missing column(s) {', '.join(missing)}; "
            f"expected {', '.join(ACLED_REQUIRED)} (upper or lower case)."
        )
    last = list(columns.values())[-1]
    wanted = {columns[c] for c in ACLED_REQUIRED} | {last}
    kwargs = {
        "dtype": str,
        "keep_default_na": False,
        "index_col": False,  # a row with an extra field must not turn a column into the index
        "encoding": encoding,
        "usecols": lambda c: c in wanted,
        "chunksize": _CHUNK_ROWS,
    }
    try:
        parts, last_value = _chunks_to_parts(pd.read_csv(path, **kwargs), columns, last, display)
    except pd.errors.ParserError as exc:
        m = re.search(r"EOF inside string starting at row (\d+)", str(exc))
        if not m:
            raise FootprintError(f"{display}: unreadable CSV ({library_reason(exc)}).") from None
        reader = pd.read_csv(path, nrows=int(m.group(1)) - 1, **kwargs)
        parts, last_value = _chunks_to_parts(reader, columns, last, display)
        n_kept = sum(len(p) for p in parts)
        log.notes.append(
            f"skipped the truncated last row (row {n_kept + 2}): the file ends inside a "
            "quoted field"
        )
    except (UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise FootprintError(f"{display}: unreadable CSV ({library_reason(exc)}).") from None
    table = pd.concat(parts) if parts else _parsed_chunk(pd.DataFrame(columns=ACLED_REQUIRED))
    with path.open("rb") as handle:
        handle.seek(max(path.stat().st_size - 16, 0))
        tail = handle.read()
    if len(table) and not tail.rstrip(b" ").endswith((b"\n", b"\r")) and last_value == "":
        log.notes.append(
            f"skipped the truncated last row (row {len(table) + 1}): it has missing fields"
        )
        table = table.iloc[:-1]
    return table, columns["event_type"]


def _chunks_to_parts(
    reader, columns: dict[str, str], last: str, display: str
) -> tuple[list[pd.DataFrame], str | None]:
    """Parse each chunk into compact columns; return the parts and the last row's last value."""
    parts, last_value, rows = [], None, 0
    rename = {columns[c]: c for c in ACLED_REQUIRED}
    with reader:
        for chunk in reader:
            rows += len(chunk)
            check_count("EVENTS", display, rows, "rows or more")
            if len(chunk):
                last_value = chunk[last].iloc[-1]
            chunk = chunk.rename(columns=rename)
            chunk.index = chunk.index + 2  # spreadsheet row numbers, header is row 1
            parts.append(_parsed_chunk(chunk))
    return parts, last_value


def _parsed_chunk(chunk: pd.DataFrame) -> pd.DataFrame:
    """Coordinates as numbers, dates as timestamps, event types as canonical labels."""
    types = chunk["event_type"]
    labels = {raw: _event_type_to_label(raw) for raw in types.unique()}
    return pd.DataFrame(
        {
            "latitude": pd.to_numeric(chunk["latitude"].str.strip(), errors="coerce"),
            "longitude": pd.to_numeric(chunk["longitude"].str.strip(), errors="coerce"),
            "event_date": _dates_to_timestamps(chunk["event_date"].astype(str)),
            "label": types.map(labels).astype("category"),
        },
        index=chunk.index,
    )


def _table_to_events(table: pd.DataFrame, opts: _Options, log: _Log) -> pd.DataFrame:
    """Check coordinates, dates and event types; drop unusable rows with notes."""
    lon, lat, keep = _table_to_coordinates(table, log)
    keep &= _dates_to_window(table["event_date"], keep, opts, log)
    labels = table["label"].astype(str)
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
    lat, lon = table["latitude"], table["longitude"]
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


# --------------------------------------------------------------------------- conflict zones


def _events_to_zones(events: pd.DataFrame, buffer_km: float, log: _Log) -> gpd.GeoDataFrame:
    """One zone per event type: the union of geodesically correct circles around its events.

    Circles are buffered in the UTM zone of each point and brought back to lon/lat,
    ``_ZONE_CHUNK`` points at a time, each batch merged before the next is built, so a
    million events at tens of thousands of places stay within bounded memory.
    """
    unique = events.drop_duplicates(["label", "lon", "lat"])
    labels, zones, split = [], [], 0
    for label, group in unique.groupby("label", sort=False):
        lon, lat = group["lon"].to_numpy(float), group["lat"].to_numpy(float)
        parts = []
        for start in range(0, len(group), _ZONE_CHUNK):
            scratch = _Log()
            chunk = slice(start, start + _ZONE_CHUNK)
            circles = _antimeridian_split(_circles(lon[chunk], lat[chunk], buffer_km), scratch)
            split += sum(int(r.split()[1]) for r in scratch.repairs)
            parts.append(shapely.union_all(circles))
        labels.append(label)
        zones.append(shapely.union_all(parts))
    if split:
        log.repairs.append(f"split {_count(split, 'feature')} at the antimeridian (180°)")
    return gpd.GeoDataFrame({"label": labels}, geometry=zones, crs=WGS84)


def _circles(lon: np.ndarray, lat: np.ndarray, buffer_km: float) -> np.ndarray:
    """Circles of ``buffer_km`` around points, buffered in each point's UTM zone."""
    zone = np.floor((lon + 180) / 6).astype(int) % 60 + 1
    epsg = np.where(lat >= 0, 32600, 32700) + zone
    geoms = np.empty(len(lon), dtype=object)
    for code in np.unique(epsg):
        mask = epsg == code
        points = gpd.GeoSeries(gpd.points_from_xy(lon[mask], lat[mask]), crs=WGS84)
        circles = points.to_crs(int(code)).buffer(buffer_km * 1000, quad_segs=16)
        geoms[mask] = circles.to_crs(WGS84).values
    return geoms


# --------------------------------------------------------------------------- small helpers


def _day(value: pd.Timestamp | None) -> str:
    """Format a date bound, open ends as '…'."""
    return "…" if value is None else f"{value:%Y-%m-%d}"


def _rows(mask: pd.Series, limit: int = 10) -> str:
    """Spreadsheet row numbers of a mask, shortened after ``limit``."""
    rows = [str(i) for i in mask[mask].index]
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return "rows " + ", ".join(rows[:limit]) + more
