"""ISTAT's foreign residents, as the SYNTHETIC demo generator reads them.

Two shipped tables (see ``data/README.md``): residents on 1 January 2023 by province,
citizenship area and sex (ISTAT SDMX-CSV, read and checked by
:func:`central_italy_residents`), and the country -> ISO alpha-3 -> area table
(``data/istat/citizenship_country_area.csv``, built once from ISTAT's by-country xlsx
by ``scripts/build_citizenship_table.py``). The generator draws persons per province
and area from the first and nationalities within an area from the second.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from demo.places import DATA_DIR, PROVINCES

SDMX_CSV = (
    DATA_DIR / "istat" / ("istat_2023_foreign_residents_by_citizenship_area_all_provinces_sdmx.csv")
)
CITIZENSHIP_CSV = DATA_DIR / "istat" / "citizenship_country_area.csv"

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


def read_citizenship_table(path: Path | str = CITIZENSHIP_CSV) -> pd.DataFrame:
    """Read the shipped citizenship table (built by ``scripts/build_citizenship_table.py``).

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
