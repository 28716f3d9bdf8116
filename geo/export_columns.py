"""Readable column titles, meanings, datatypes and HXL hashtags of the exposure tables.

One place for the words a reader sees, so that the page, the CSV, the XLSX, the HXL CSV
and the CSVW sidecar all say "Persons exposed (low)" where the computation says
``persons_low``. A *registration* is the release's privacy unit (a case: one person or
a family registered together); *persons* counts everyone it covers. The hashtags are
from the HXL standard: ``#affected+ind`` persons and ``#affected+hh`` registrations
(households), ``+min`` / ``+max`` the low and high bounds, ``#country+origin`` the
nationality, ``#severity`` the hazard class, ``#adm1+name`` the area.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from geo.codes import OTHER_NATIONALITIES, STATELESS, UNKNOWN_NATIONALITY, nationality_name

__all__ = [
    "AREA",
    "NATIONALITY_NAME",
    "PERSONS_COLUMNS",
    "Column",
    "column_specs",
    "column_title",
    "readable_table",
]

AREA = "area"  # the machine name of the administrative-area column in the CSVW sidecar
NATIONALITY_NAME = "nationality_name"
PERSONS_COLUMNS = ("persons_low", "persons_estimate", "persons_high")


@dataclass(frozen=True)
class Column:
    """One exported column: machine name, title, CSVW datatype, HXL hashtag, meaning."""

    name: str
    title: str
    datatype: str
    hxl: str
    description: str


_COLUMNS = {
    column.name: column
    for column in (
        Column(
            "hazard_class",
            "Hazard class",
            "string",
            "#severity+name",
            "the footprint class as its publisher names it (an MMI band, a flood depth, an "
            "alert level); with cumulative classes, 'at least' that class",
        ),
        Column(
            "class_rank",
            "Severity rank (higher is more severe)",
            "integer",
            "#severity+num",
            "orders the classes of one class system, most severe highest; 0 for classes "
            "with no known order",
        ),
        Column(
            "nationality",
            "Nationality code (ISO 3166-1 alpha-3)",
            "string",
            "#country+origin+code",
            f"the registrants' nationality; {OTHER_NATIONALITIES} groups the nationalities "
            f"with fewer than k registrations in the release, {STATELESS} stateless, "
            f"{UNKNOWN_NATIONALITY} unknown",
        ),
        Column(
            NATIONALITY_NAME,
            "Nationality",
            "string",
            "#country+origin+name",
            "the nationality's English name",
        ),
        Column(
            "persons_low",
            "Persons exposed (low)",
            "integer",
            "#affected+ind+min",
            "persons in the released cells entirely inside the class, lowered by what the "
            "release's noise can move: the truth is at least this",
        ),
        Column(
            "persons_estimate",
            "Persons exposed (estimate)",
            "integer",
            "#affected+ind",
            "persons in the cells touching the class, each cell weighted by the share of it "
            "inside (the weighting named in the metadata)",
        ),
        Column(
            "persons_high",
            "Persons exposed (high)",
            "integer",
            "#affected+ind+max",
            "persons in every released cell touching the class, raised by what the "
            "release's noise can move: the truth is at most this",
        ),
        Column(
            "cases_low",
            "Registrations exposed (low)",
            "integer",
            "#affected+hh+min",
            "registrations (a person or a family registered together) as persons low",
        ),
        Column(
            "cases_estimate",
            "Registrations exposed (estimate)",
            "integer",
            "#affected+hh",
            "registrations as persons estimate",
        ),
        Column(
            "cases_high",
            "Registrations exposed (high)",
            "integer",
            "#affected+hh+max",
            "registrations as persons high",
        ),
        Column(
            "reliability",
            "Reliability of the estimate",
            "string",
            "#meta+reliability",
            "'ok', or why the estimate cannot be trusted and low–high should be used "
            "instead (the metadata says what each value means)",
        ),
    )
}


def column_title(name: str) -> str:
    """Return the readable title of a table column (the name itself when unknown)."""
    column = _COLUMNS.get(name)
    return column.title if column else name


def _area_column(admin_field: str) -> Column:
    """Return the column of the administrative areas named by ``admin_field``."""
    return Column(
        AREA,
        f"Area ({admin_field})",
        "string",
        "#adm1+name",
        f"the administrative area (the boundary file's field {admin_field!r}); "
        "'(outside the boundaries)' holds what falls outside every area",
    )


def column_specs(columns: list[str], admin_field: str | None = None) -> list[Column]:
    """Return the exported columns of a table whose columns are ``columns``, in order.

    The nationality's name follows its code; the area column (``admin_field``) is
    named ``area``; a column this module does not know keeps its own name as title.
    """
    specs = []
    for name in columns:
        if admin_field is not None and name == admin_field:
            specs.append(_area_column(admin_field))
        else:
            specs.append(_COLUMNS.get(name, Column(name, name, "string", "#meta", name)))
        if name == "nationality":
            specs.append(_COLUMNS[NATIONALITY_NAME])
    return specs


def english_name(code: str) -> str:
    """Return a nationality's English name alone (no code beside it)."""
    return nationality_name(code).removesuffix(f" ({code})")


def readable_table(table: pd.DataFrame, admin_field: str | None = None) -> pd.DataFrame:
    """Return an exposure table with readable titles and the nationality's name beside its code.

    Parameters
    ----------
    table
        An exposure table (:class:`geo.exposure_table.Exposure` ``table``,
        ``class_totals()`` or ``area_totals()``).
    admin_field
        The field that names the areas, when the table has them.

    Returns
    -------
    pandas.DataFrame
        The same rows and values, columns titled as :func:`column_specs` says.
    """
    readable = table.copy()
    if "nationality" in readable.columns:
        position = readable.columns.get_loc("nationality") + 1
        names = readable["nationality"].map(english_name)
        readable.insert(position, NATIONALITY_NAME, names)
    specs = column_specs(list(table.columns), admin_field)
    readable.columns = [spec.title for spec in specs]
    return readable
