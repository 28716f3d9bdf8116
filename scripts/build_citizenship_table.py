"""Build ``data/istat/citizenship_country_area.csv`` from ISTAT's by-country xlsx.

One-off preparation of a shipped file, not run by the demo: the generator reads the
CSV (:func:`demo.istat.read_citizenship_table`). Each Italian country label is
resolved to ISO alpha-3 and placed in its ISTAT citizenship area, and the result is
checked against the sheet's subtotal rows; ``tests/test_demo_registry.py`` rebuilds
the table and compares it with the shipped file. Run from the repository root::

    .venv/bin/python scripts/build_citizenship_table.py
"""

from __future__ import annotations

import functools
import gettext
import re
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pycountry

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as ``python scripts/build_citizenship_table.py``
    sys.path.insert(0, str(ROOT))

from demo.istat import AREA_SUBTOTAL_LABELS, CITIZENSHIP_CSV, STATELESS_AREA  # noqa: E402
from demo.places import DATA_DIR  # noqa: E402

COUNTRY_XLSX = (
    DATA_DIR / "istat" / ("istat_2023_foreign_residents_by_citizenship_north_italy_provinces.xlsx")
)
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


def main() -> None:
    """Rebuild the citizenship table from the xlsx and write it over the shipped CSV."""
    build_citizenship_table().to_csv(CITIZENSHIP_CSV, index=False)
    print(f"written {CITIZENSHIP_CSV}")


if __name__ == "__main__":
    main()
