"""The community profile of an exposed population, from released values only.

Who is exposed, in words a responder can act on (MICIC Guideline 2): the top
nationalities, the languages to warn them in (:mod:`geo.tools.languages`), sex and age
structure, persons per registration (family size) and vulnerabilities, for one area of
the footprint (a cumulative "at least" class, or the whole footprint).

Every figure is an exposure of released values over that area, made by the same
computation as the exposure table (:func:`geo.tools.exposure.compute_exposure`): the
nationalities from the release's groups, and each breakdown from the release's own
breakdown rows (a group's sex and age-band rows, a floor cell's vulnerability rows)
taken as if they were groups, category in place of nationality. So a category's low,
estimate and high mean what they mean in the exposure table, widened by the release's
noise the same way; nothing is read from a store. A breakdown the release does not
publish is "not available in this release".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.release import Release

WHOLE_FOOTPRINT = "anywhere in the footprint"
NOT_AVAILABLE = "not available in this release"
DIMENSIONS = ("sex", "age_band", "vulnerability")
DIMENSION_TITLES = {
    "sex": "Sex",
    "age_band": "Age",
    "vulnerability": "Vulnerabilities",
    "family": "Family size",
}
CATEGORY_WORDS = {
    "sex": {"F": "female", "M": "male", "X": "another sex", "unknown": "sex not recorded"},
    "age_band": {
        "0-4": "children under 5",
        "5-17": "children 5–17",
        "18-59": "adults 18–59",
        "60+": "older people 60+",
        "unknown": "age not recorded",
    },
    "vulnerability": {
        "none": "no vulnerability recorded",
        "unaccompanied_minor": "unaccompanied minor",
        "disability": "disability",
        "medical": "medical need",
        "pregnant": "pregnant",
        "older_person_alone": "older person alone",
        "other": "other vulnerability",
    },
}
VULNERABILITY_NOTE = (
    "Vulnerabilities are published per floor cell (coarse H3 cells), each registration "
    "under its first vulnerability; the range covers every floor cell the area touches."
)
FAMILY_NOTE = (
    "Family size: persons per registration (released persons ÷ released cases); the "
    "distribution of family sizes is not available in this release."
)
# Categories adding up to more than the groups by this share are said to be overstated.
OVERSTATED = 0.05
MEASURES = ["persons_low", "persons_estimate", "persons_high", "cases_estimate"]


@dataclass
class CommunityProfile:
    """Who is exposed in one area of the footprint, as released values say.

    Attributes
    ----------
    scope
        The area described: an "at least" class label, or :data:`WHOLE_FOOTPRINT`.
    total
        Persons low / estimate / high and cases estimate of everyone in the area.
    nationalities
        One row per nationality, most persons first: ``nationality``, persons low /
        estimate / high, ``cases_estimate``, ``persons_per_case``.
    languages
        :func:`geo.tools.languages.languages_by_persons` of the nationalities.
    structure
        ``sex``, ``age_band``, ``vulnerability``: ``category``, ``label``, persons low /
        estimate / high, ``cases_estimate``, ``share`` (of the persons estimate of the
        categories); None where the release publishes no such breakdown.
    notes
        What the reader should know (coverage of breakdowns, the language rule).
    """

    scope: str
    total: dict
    nationalities: pd.DataFrame
    languages: pd.DataFrame
    structure: dict[str, pd.DataFrame | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def persons_per_case(self) -> float | None:
        """Return the persons per registration of everyone in the area (None: no case)."""
        cases = self.total["cases_estimate"]
        return self.total["persons_estimate"] / cases if cases else None


def profile_area(
    classes: gpd.GeoDataFrame,
    at_least: str | None = None,
    *,
    cumulative: bool = False,
    comparable: bool = True,
) -> gpd.GeoDataFrame:
    """Return the one area a profile describes, as a one-row class frame.

    Parameters
    ----------
    classes
        The run's classes (banded or cumulative).
    at_least
        A class label: the area of that class and every more severe one (for banded
        classes, its "at least" area; for cumulative ones, the class itself). None:
        the whole footprint.
    cumulative
        Whether ``classes`` are already "at least" areas.
    comparable
        False when the classes mix class systems or have no order: only the whole
        footprint is then a meaningful area.

    Raises
    ------
    ValueError
        For a label that is not one of the classes.
    """
    from geo.footprint_classes import classes_are_ordered
    from geo.tools.classes import to_cumulative

    if at_least is None or not comparable or not classes_are_ordered(classes):
        geometry = shapely.union_all(classes.geometry.to_numpy())
        return gpd.GeoDataFrame(
            {"class_label": [WHOLE_FOOTPRINT], "class_rank": [1]},
            geometry=[geometry],
            crs=classes.crs,
        )
    labels = classes["class_label"].tolist()
    if at_least not in labels:
        raise ValueError(f"no class {at_least!r} (classes: {', '.join(labels)}).")
    areas = classes if cumulative else to_cumulative(classes)
    position = labels.index(at_least)
    area = (
        areas.iloc[[position]]
        if cumulative
        else areas[areas["class_rank"] == _rank(classes, position)]
    )
    return area[["class_label", "class_rank", "geometry"]].reset_index(drop=True)


def _rank(classes: gpd.GeoDataFrame, position: int) -> int:
    return int(classes["class_rank"].iloc[position])


def _touching(rows: pd.DataFrame, area: gpd.GeoDataFrame) -> pd.DataFrame:
    """Return the breakdown rows whose cell shares area with ``area`` (the others add 0).

    A national release holds millions of breakdown rows; an area touches a few hundred
    cells, whose pairs the area's exposure has already found.
    """
    from geo.tools.cell_pairs import cell_zone_pairs
    from geo.tools.exposure import class_zones

    cells = pd.unique(rows["h3_cell"])
    cell, _, _, _ = cell_zone_pairs(list(cells), class_zones(area))
    return rows[rows["h3_cell"].isin(set(cells[np.unique(cell)]))]


def _as_groups(rows: pd.DataFrame, release: Release) -> Release:
    """Return breakdown rows as a release whose groups are (cell, category) values."""
    groups = rows[["h3_cell", "resolution", "category", "cases", "persons"]].rename(
        columns={"category": "nationality"}
    )
    # A read release's breakdowns are categorical; the exposure works on text groups,
    # taken from the categories by code (a cast of every value took a quarter second).
    groups = groups.assign(**{c: _as_text(groups[c]) for c in ("h3_cell", "nationality")})
    return Release(
        groups=groups.reset_index(drop=True), breakdowns=rows.iloc[:0], metadata=release.metadata
    )


def _as_text(column: pd.Series) -> pd.Series:
    """Return a column as text: a categorical's categories taken by its codes."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return column.astype("str")
    text = column.cat.categories.astype("str").take(column.cat.codes.to_numpy())
    return pd.Series(text, index=column.index)


def _exposed(release: Release, area: gpd.GeoDataFrame, options: dict) -> pd.DataFrame:
    """Return one row per 'nationality' of the release's groups over the area (widened)."""
    from geo.tools.exposure import compute_exposure

    exposure = compute_exposure(release, area, **options)
    table = exposure.by_class
    return table[table["persons_high"] > 0].reset_index(drop=True)


def _structure(
    release: Release,
    near: pd.DataFrame,
    dimension: str,
    area: gpd.GeoDataFrame,
    options: dict,
    nationalities,
) -> pd.DataFrame | None:
    """Return a breakdown's categories over the area, or None when not published.

    ``near`` are the release's breakdown rows whose cell touches the area
    (:func:`_touching`): the others add nothing to the area.
    """
    published = release.breakdowns["dimension"] == dimension
    if nationalities:
        published &= release.breakdowns["nationality"].isin(list(nationalities))
    if not published.any():
        return None
    rows = near[near["dimension"] == dimension]
    if nationalities:
        rows = rows[rows["nationality"].isin(list(nationalities))]
    options = {**options, "nationalities": None}
    table = _exposed(_as_groups(rows, release), area, options)
    words = CATEGORY_WORDS.get(dimension, {})
    order = {category: i for i, category in enumerate(words)}
    table = table.rename(columns={"nationality": "category"})
    table = table.assign(
        label=table["category"].map(lambda c: words.get(c, c)),
        _order=table["category"].map(lambda c: order.get(c, len(order))),
    ).sort_values("_order", kind="stable")
    total = float(table["persons_estimate"].sum())
    table["share"] = table["persons_estimate"] / total if total else 0.0
    return table[["category", "label", *MEASURES, "share"]].reset_index(drop=True)


def community_profile(
    release: Release,
    area: gpd.GeoDataFrame,
    *,
    weighting: str,
    places: pd.DataFrame | None = None,
    population: pd.DataFrame | None = None,
    nationalities: list[str] | None = None,
) -> CommunityProfile:
    """Return the community profile of the released population in one area.

    Parameters
    ----------
    release
        The protected release (the only data read).
    area
        A one-row class frame (:func:`profile_area`).
    weighting, places, population
        The estimate's weighting and what it needs, as for the exposure table.
    nationalities
        Restrict to these nationalities (default: all in the release).

    Returns
    -------
    CommunityProfile
    """
    from geo.tools.exposure import compute_exposure
    from geo.tools.languages import LANGUAGE_RULE, languages_by_persons

    options = {
        "weighting": weighting,
        "places": places,
        "population": population,
        "nationalities": list(nationalities) if nationalities else None,
    }
    exposure = compute_exposure(release, area, **options)
    by_nationality = exposure.by_class[exposure.by_class["persons_high"] > 0]
    by_nationality = by_nationality.sort_values(
        ["persons_estimate", "persons_high", "nationality"],
        ascending=[False, False, True],
        kind="stable",
    )
    columns = ["nationality", *MEASURES]
    by_nationality = by_nationality[columns].reset_index(drop=True)
    by_nationality["persons_per_case"] = _ratio(
        by_nationality["persons_estimate"], by_nationality["cases_estimate"]
    )
    totals = exposure.class_totals()
    total = {m: int(totals[m].sum()) for m in MEASURES}
    notes = [LANGUAGE_RULE, FAMILY_NOTE]
    structure = {}
    near = _touching(release.breakdowns, area)  # once for every dimension
    for dimension in DIMENSIONS:
        table = _structure(release, near, dimension, area, options, nationalities)
        structure[dimension] = table
        if table is None:
            notes.append(f"{DIMENSION_TITLES[dimension]}: {NOT_AVAILABLE}.")
            continue
        covered = int(table["persons_estimate"].sum())
        if dimension == "vulnerability" or not total["persons_estimate"]:
            continue
        if covered > (1 + OVERSTATED) * total["persons_estimate"]:
            notes.append(
                f"{DIMENSION_TITLES[dimension]}: the categories add up to {covered:,} persons "
                f"against {total['persons_estimate']:,} in the groups: every published "
                "category carries noise and is never below 0, so small and empty categories "
                "are overstated; read the shares as indicative."
            )
        elif covered < 0.9 * total["persons_estimate"]:
            notes.append(
                f"{DIMENSION_TITLES[dimension]}: published for groups holding about "
                f"{covered / total['persons_estimate']:.0%} of the persons in the area "
                "(the release withholds the breakdown of the others)."
            )
    if structure.get("vulnerability") is not None:
        notes.append(VULNERABILITY_NOTE)
    return CommunityProfile(
        scope=str(area["class_label"].iloc[0]),
        total=total,
        nationalities=by_nationality,
        languages=languages_by_persons(by_nationality),
        structure=structure,
        notes=notes,
    )


def _ratio(persons: pd.Series, cases: pd.Series) -> pd.Series:
    """Return persons per case, rounded to one decimal (missing where no case)."""
    return (persons / cases.where(cases > 0)).round(1)


def profile_lines(profile: CommunityProfile, top: int = 10, name=None) -> list[str]:
    """Return the profile as short lines of text (the CLI prints them, the report may too).

    ``name`` turns a nationality code into its display name (default: the code).
    """
    name = name or str
    total = profile.total
    lines = [
        f"community profile ({profile.scope}): persons {total['persons_low']:,} (low) – "
        f"{total['persons_estimate']:,} (estimate) – {total['persons_high']:,} (high)",
        "top nationalities (persons low – estimate – high):",
    ]
    for row in profile.nationalities.head(top).itertuples():
        lines.append(
            f"  {name(row.nationality)}: {row.persons_low:,} – {row.persons_estimate:,} – "
            f"{row.persons_high:,}"
        )
    lines.append("languages to communicate in (persons who may speak them, estimate):")
    for row in profile.languages.head(top).itertuples():
        lines.append(
            f"  {row.language_name}: {row.persons_estimate:,} "
            f"({row.persons_low:,} – {row.persons_high:,}; {_short(row.nationalities)})"
        )
    for dimension in DIMENSIONS:
        table = profile.structure.get(dimension)
        title = DIMENSION_TITLES[dimension]
        if table is None:
            lines.append(f"{title}: {NOT_AVAILABLE}")
            continue
        parts = [
            f"{row.label} {row.persons_estimate:,} ({row.share:.0%})" for row in table.itertuples()
        ]
        lines.append(f"{title} (persons, estimate): " + "; ".join(parts))
    per_case = profile.persons_per_case
    lines.append(
        f"{DIMENSION_TITLES['family']}: "
        + (f"{per_case:.1f} persons per registration" if per_case else NOT_AVAILABLE)
        + "; distribution of family sizes "
        + NOT_AVAILABLE
    )
    lines += [f"note: {note}" for note in profile.notes if not note.startswith("Family size")]
    return lines


def _short(codes: str, most: int = 6) -> str:
    """Return a comma-separated list cut to ``most`` entries ('… and n more')."""
    items = [c for c in codes.split(", ") if c]
    if len(items) <= most:
        return ", ".join(items)
    return ", ".join(items[:most]) + f" and {len(items) - most} more"
