"""Read official migrant stocks: administrative area × nationality (or citizenship area) × persons.

Three layouts, told apart by their header:

- **plain CSV**: columns ``area``, ``nationality`` (ISO code or English name),
  ``persons``; the areas are named as in the boundary file's area field;
- **ISTAT SDMX-CSV** (dataflow DCIS_POPSTRCIT1, foreign residents on 1 January by
  province and citizenship **area**): ``REF_AREA`` (NUTS codes such as ``ITE21``),
  ``CITIZENSHIP`` (areas such as ``EU28``, ``AFR_N``), ``SEX`` (9 = total), ``OBS_VALUE``;
  regions are named as ISTAT names them (the region limits' ``reg_name``), provinces
  keep their code. Nationalities cannot be matched one by one: compare by citizenship
  area (:data:`ISTAT_AREAS_FILE` maps nationalities to ISTAT's areas);
- **UN DESA International Migrant Stock** (origin × destination matrix, ``Year``,
  ``Dest`` then one column per origin country; ``..`` and ``-`` missing): one country
  of destination, one year (the latest by default); national level only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from geo import codes
from geo.errors import InputError

ISTAT_AREAS_FILE = resources.files("geo").joinpath("data", "istat_citizenship_areas.csv")
MAX_BYTES = 200 << 20
# ISTAT's NUTS-2006-style region codes (the SDMX REF_AREA of regions) and their names as
# the ISTAT region limits spell them; Bolzano and Trento together make one region.
ISTAT_REGIONS = {
    "ITC1": "Piemonte",
    "ITC2": "Valle d'Aosta/Vallée d'Aoste",
    "ITC3": "Liguria",
    "ITC4": "Lombardia",
    "ITD1": "Trentino-Alto Adige/Südtirol",
    "ITD2": "Trentino-Alto Adige/Südtirol",
    "ITD3": "Veneto",
    "ITD4": "Friuli-Venezia Giulia",
    "ITD5": "Emilia-Romagna",
    "ITE1": "Toscana",
    "ITE2": "Umbria",
    "ITE3": "Marche",
    "ITE4": "Lazio",
    "ITF1": "Abruzzo",
    "ITF2": "Molise",
    "ITF3": "Campania",
    "ITF4": "Puglia",
    "ITF5": "Basilicata",
    "ITF6": "Calabria",
    "ITG1": "Sicilia",
    "ITG2": "Sardegna",
}
ISTAT_AREA_NAMES = {
    "EU28": "European Union (28)",
    "XEUR_NEU28_OTH": "Other European countries",
    "AFR_N": "Northern Africa",
    "AFR_W": "Western Africa",
    "AFR_E": "Eastern Africa",
    "AFR_C_S": "Central and southern Africa",
    "ASI_W": "Western Asia",
    "ASI_E": "Eastern Asia",
    "XASI_C_S": "Central and southern Asia",
    "AME_N": "Northern America",
    "AME_C_S": "Central and South America",
    "OCE": "Oceania",
    "999": "Stateless",
}


@dataclass
class Stocks:
    """An official stock table: ``area``, ``area_code``, ``key`` (what is counted), ``persons``.

    ``level`` is ``nationality`` (``key`` holds ISO3 codes) or ``citizenship area``
    (``key`` holds ISTAT area codes); ``source`` names the layout read.
    """

    table: pd.DataFrame
    level: str
    source: str
    name: str
    notes: list[str] = field(default_factory=list)


def istat_citizenship_areas() -> dict[str, str]:
    """Return ISTAT's citizenship area of each nationality (ISO3 → area code)."""
    with resources.as_file(ISTAT_AREAS_FILE) as local:
        table = pd.read_csv(local, dtype=str, keep_default_na=False)
    return dict(zip(table["iso3"], table["istat_area"], strict=True))


def read_stocks(
    path: str | Path,
    data: bytes | None = None,
    *,
    country: str | None = None,
    year: int | None = None,
) -> Stocks:
    """Read an official stock table in any of the three layouts (``data``: its bytes).

    ``country`` and ``year`` choose the destination and year of a UN DESA matrix.

    Raises
    ------
    InputError
        For a file that cannot be read, an unknown layout, missing columns, a bad
        count or nationality (naming the row), or a UN DESA destination not in the file.
    """
    name = Path(path).name
    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InputError(f"stocks {name}: cannot read the file ({exc.strerror}).") from None
    if len(data) > MAX_BYTES:
        raise InputError(f"stocks {name}: larger than {MAX_BYTES >> 20} MB.")
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
            sep=None,
            engine="python",
        )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(
            f"stocks {name}: not a readable CSV ({str(exc).splitlines()[0]})."
        ) from None
    columns = {c.strip().casefold(): c for c in frame.columns}
    if {"ref_area", "citizenship", "obs_value"} <= set(columns):
        return _istat(frame, columns, name)
    if {"year", "dest"} <= set(columns):
        return _un_desa(frame, columns, name, country, year)
    return _plain(frame, columns, name)


def _count(text: str, where: str) -> int:
    try:
        value = float(str(text).replace(" ", "").replace("\u00a0", ""))
    except ValueError:
        raise InputError(f"{where}: persons {text!r} is not a number.") from None
    if value < 0 or value != int(value):
        raise InputError(f"{where}: persons {text!r} is not a whole number ≥ 0.")
    return int(value)


def _plain(frame: pd.DataFrame, columns: dict, name: str) -> Stocks:
    aliases = {
        "area": ("area", "admin_area", "admin"),
        "nationality": ("nationality", "citizenship", "iso3"),
        "persons": ("persons", "stock", "residents", "population"),
    }
    found = {
        k: next((columns[a] for a in names if a in columns), None) for k, names in aliases.items()
    }
    missing = [k for k, v in found.items() if v is None]
    if missing:
        raise InputError(
            f"stocks {name}: missing column(s) {', '.join(missing)} (a plain table needs area, "
            "nationality, persons; or give an ISTAT SDMX-CSV or the UN DESA matrix)."
        )
    rows = []
    for line, (area, nationality, persons) in enumerate(
        frame[[found["area"], found["nationality"], found["persons"]]].itertuples(index=False),
        start=2,
    ):
        where = f"stocks {name} row {line}"
        iso3 = codes.nationality_to_iso3(nationality)
        if iso3 is None:
            raise InputError(f"{where}: unknown nationality {nationality!r}.")
        if not str(area).strip():
            raise InputError(f"{where}: area is empty.")
        rows.append((str(area).strip(), "", iso3, _count(persons, where)))
    table = pd.DataFrame(rows, columns=["area", "area_code", "key", "persons"])
    table = table.groupby(["area", "area_code", "key"], as_index=False)["persons"].sum()
    return Stocks(table, "nationality", "plain CSV", name)


def _istat(frame: pd.DataFrame, columns: dict, name: str) -> Stocks:
    area, citizenship, value = columns["ref_area"], columns["citizenship"], columns["obs_value"]
    sex = columns.get("sex")
    if sex is not None and (frame[sex] == "9").any():
        frame = frame[frame[sex] == "9"]
    frame = frame[~frame[citizenship].isin(["WORLD", "TOTAL", "_T"])]
    persons = [
        _count(v, f"stocks {name} row {i + 2}")
        for i, v in zip(frame.index, frame[value], strict=True)
    ]
    codes_ = frame[area].str.strip()
    table = pd.DataFrame(
        {
            "area": [ISTAT_REGIONS.get(c, c) for c in codes_],
            "area_code": ["ITD1+ITD2" if c in ("ITD1", "ITD2") else c for c in codes_],
            "key": frame[citizenship].str.strip().to_numpy(),
            "persons": persons,
        }
    )
    table = table.groupby(["area", "area_code", "key"], as_index=False)["persons"].sum()
    note = (
        "ISTAT publishes foreign residents by citizenship area, not by nationality: the "
        "registered persons are summed into the same areas to compare."
    )
    return Stocks(table, "citizenship area", "ISTAT SDMX-CSV", name, [note])


def _un_desa(
    frame: pd.DataFrame, columns: dict, name: str, country: str | None, year: int | None
) -> Stocks:
    dest, year_column = columns["dest"], columns["year"]
    if not country:
        raise InputError(
            f"stocks {name}: a UN DESA matrix needs the country of destination (--stocks-country)."
        )
    rows = frame[frame[dest].map(codes.fold_text) == codes.fold_text(country)]
    if rows.empty:
        raise InputError(f"stocks {name}: no destination {country!r} in the UN DESA matrix.")
    years = pd.to_numeric(rows[year_column], errors="coerce")
    chosen = int(year) if year else int(years.max())
    row = rows[years == chosen]
    if row.empty:
        raise InputError(
            f"stocks {name}: no year {chosen} for {country} "
            f"(years {', '.join(str(y) for y in sorted(years.dropna().astype(int).unique()))})."
        )
    record = row.iloc[0]
    table, unmatched = [], []
    for column in frame.columns:
        if column in (dest, year_column) or column.strip().casefold() in (
            "total",
            "other north",
            "other south",
        ):
            continue
        text = str(record[column]).strip().replace(" ", "")
        if text in ("", "..", "-"):
            continue
        iso3 = codes.nationality_to_iso3(_un_name(column))
        if iso3 is None:
            unmatched.append(column)
            continue
        table.append(
            (
                str(record[dest]),
                "",
                iso3,
                _count(text, f"stocks {name} ({country} {chosen}, {column})"),
            )
        )
    frame_out = pd.DataFrame(table, columns=["area", "area_code", "key", "persons"])
    notes = [f"UN DESA International Migrant Stock {chosen}: national figures for {record[dest]}."]
    if unmatched:
        notes.append(
            f"{len(unmatched)} origin columns not matched to a nationality (e.g. {unmatched[0]})."
        )
    return Stocks(frame_out, "nationality", "UN DESA matrix", name, notes)


def _un_name(column: str) -> str:
    """Return a UN country name as pycountry may know it ("Bolivia (Plurinational State of)")."""
    return column.split(" (")[0] if codes.nationality_to_iso3(column) is None else column
