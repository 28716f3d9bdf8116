"""Exposure broken down by administrative area, adding up to the class totals.

Each class is cut by the areas, and what is left of it outside every area becomes one
more zone, ``OUTSIDE_AREAS``: the pieces partition the class. The released groups are
then summed over the pieces exactly as over the classes (:mod:`geo.tools.exposure`), so
a cell is split between areas by the same weighting as between classes. The estimates
are rounded once, by largest remainders within each class and nationality, so that the
areas' estimates (with the outside row) add up to the class's estimate exactly.

Low and high keep their meaning per piece: an area's low counts the cells entirely
inside the class and the area, its high every cell touching both, so a cell straddling
two areas counts in the high of both (:data:`geo.exposure_table.AREA_SENTENCE` says so
beside every table).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import InputError
from geo.exposure_table import OUTSIDE_AREAS
from geo.footprint_classes import geometries_to_polygonal
from geo.tools.exposure import exposure_sums

_MEASURES = ("persons", "cases")
_KEYS = ["hazard_class", "class_rank", "nationality"]

__all__ = ["NO_NAME", "OUTSIDE_AREAS", "area_breakdown", "area_zones"]

# An area whose name field is null or blank: counted under this name, never "nan".
NO_NAME = "(no name)"


def area_zones(
    classes: gpd.GeoDataFrame, admin: gpd.GeoDataFrame, admin_field: str
) -> gpd.GeoDataFrame:
    """Return the classes cut by the areas, plus each class's part outside every area.

    Parameters
    ----------
    classes
        Columns class_label, class_rank, geometry (EPSG:4326).
    admin, admin_field
        The boundaries and the field naming each area.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns class_label, class_rank, ``admin_field``, geometry; the outside parts
        have ``OUTSIDE_AREAS`` as area name, areas whose name is null or blank
        ``NO_NAME`` (kept, so that the breakdown still adds up). Index 0..n−1.

    Raises
    ------
    InputError
        If the boundaries have no field ``admin_field``.
    """
    if admin_field not in admin.columns:
        raise InputError(
            f"admin boundaries have no field {admin_field!r} (fields: "
            f"{', '.join(c for c in admin.columns if c != 'geometry')})."
        )
    zones = classes[["class_label", "class_rank", "geometry"]].reset_index(drop=True)
    areas = admin[[admin_field, "geometry"]].to_crs(4326)
    names = areas[admin_field]
    blank = names.isna() | names.astype(str).str.strip().eq("")
    areas = areas.assign(**{admin_field: names.astype(str).where(~blank, NO_NAME)})
    inside = gpd.overlay(
        zones.assign(_class=np.arange(len(zones))), areas, how="intersection", keep_geom_type=True
    )
    covered = inside.groupby("_class").geometry.agg(shapely.union_all)
    taken = covered.reindex(range(len(zones))).to_numpy()
    rest = np.array(
        [
            geom if part is None else shapely.difference(geom, part)
            for geom, part in zip(zones.geometry.values, taken, strict=True)
        ],
        dtype=object,
    )
    outside = zones.assign(geometry=geometries_to_polygonal(rest), **{admin_field: OUTSIDE_AREAS})
    outside = outside[outside.geometry.notna()]
    columns = ["class_label", "class_rank", admin_field, "geometry"]
    pieces = pd.concat([inside[columns], outside[columns]], ignore_index=True)
    return gpd.GeoDataFrame(pieces, geometry="geometry", crs=4326)


def _largest_remainders(values: pd.Series, targets: pd.Series, groups: pd.Series) -> np.ndarray:
    """Return integers proportional to ``values`` whose sum per group is the group's target.

    ``targets`` holds each row's group target (the same on every row of a group).
    """
    values = values.to_numpy(dtype=float)
    target = targets.to_numpy(dtype=float)
    total = pd.Series(values).groupby(groups.to_numpy()).transform("sum").to_numpy()
    scaled = np.divide(values * target, total, out=np.zeros_like(values), where=total > 0)
    base = np.floor(scaled + 1e-9)
    short = target - pd.Series(base).groupby(groups.to_numpy()).transform("sum").to_numpy()
    fraction = pd.Series(scaled - base)
    place = fraction.groupby(groups.to_numpy()).rank(method="first", ascending=False)
    return (base + (place.to_numpy() <= short)).astype("int64")


def _add_up(sums: pd.DataFrame, by_class: pd.DataFrame, admin_field: str) -> pd.DataFrame:
    """Round the areas' estimates so that they add up to each class row's estimate.

    A class row that no piece carries (rounding of geometry only) gets an outside row
    with the class's own bounds, which are valid bounds for any part of the class.
    """
    keys = pd.MultiIndex.from_frame(sums[_KEYS])
    carried = pd.MultiIndex.from_frame(by_class[_KEYS]).isin(keys)
    orphans = by_class[~carried & (by_class["persons_estimate"] + by_class["cases_estimate"] > 0)]
    if len(orphans):
        extra = orphans.assign(**{admin_field: OUTSIDE_AREAS})
        for measure in _MEASURES:
            extra[f"{measure}_low"] = 0
        extra["groups_low"] = 0
        sums = pd.concat([sums, extra[sums.columns]], ignore_index=True)
    group = pd.Series(pd.MultiIndex.from_frame(sums[_KEYS]).factorize()[0])
    targets = sums[_KEYS].merge(by_class, on=_KEYS, how="left")
    for measure in _MEASURES:
        column = f"{measure}_estimate"
        values = sums[column].astype(float)
        # A group whose pieces all round to nothing still carries the class's figure.
        empty = values.groupby(group.to_numpy()).transform("sum").to_numpy() <= 0
        values = values.where(~empty, 1.0)
        sums[column] = _largest_remainders(
            values.reset_index(drop=True), targets[column].fillna(0), group
        )
    return sums


def _notes(sums: pd.DataFrame, by_class: pd.DataFrame, admin_field: str, overlap: bool) -> list:
    """Return what the reader must know: no overlap, or part of the exposure outside."""
    if by_class.empty or not (by_class["persons_high"] > 0).any():
        return []
    outside = sums[admin_field] == OUTSIDE_AREAS
    where = f"the row {OUTSIDE_AREAS!r}"
    if not overlap:
        return [
            "the administrative boundaries do not overlap the footprint: every exposed "
            f"person is in {where}."
        ]
    if not (sums.loc[~outside, "persons_high"] > 0).any():
        return [
            "the administrative boundaries overlap no exposed released cell (they cover "
            f"none of the release where the footprint is): every exposed person is in {where}."
        ]
    out = sums[outside].groupby(["hazard_class", "class_rank"])["persons_estimate"].sum()
    out = out[out > 0].sort_index(level="class_rank", ascending=False)
    if out.empty:
        return []
    (label, _rank), persons = out.index[0], int(out.iloc[0])
    total = int(by_class.loc[by_class["hazard_class"] == label, "persons_estimate"].sum())
    share = out / by_class.groupby(["hazard_class", "class_rank"])["persons_estimate"].sum()
    (wide_label, _), wide = share.idxmax(), float(share.max())
    widest = (
        f"; most in {wide_label}: {wide:.0%} of its persons"
        if wide_label != label and wide > persons / max(total, 1)
        else ""
    )
    return [
        f"part of the exposure lies outside the administrative boundaries ({label}: "
        f"{persons:,} of {total:,} persons, estimate{widest}): see {where}."
    ]


def area_breakdown(
    groups: pd.DataFrame,
    classes: gpd.GeoDataFrame,
    by_class: pd.DataFrame,
    admin: gpd.GeoDataFrame,
    admin_field: str,
    weighting: str,
    places: pd.DataFrame | None,
    population: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Return the exposure sums by area, class and nationality, and notes for the reader.

    Parameters
    ----------
    groups
        The released groups to expose.
    classes
        The class zones (class_label, class_rank, geometry), as exposed by class.
    by_class
        The class sums before widening (estimates rounded): what the areas add up to.
    admin, admin_field
        The boundaries and the field naming each area.
    weighting, places, population
        The estimate's weighting and the settlement places or population grid it may need.

    Returns
    -------
    tuple of (pandas.DataFrame, list of str)
        The sums (``admin_field`` first, then the columns of ``by_class``), before
        widening, areas in alphabetical order and the outside row last within each
        class; and notes (the boundaries miss the footprint or the release, or part of
        the exposure lies outside them).

    Raises
    ------
    InputError
        If the boundaries have no field ``admin_field``.
    """
    zones = area_zones(classes, admin, admin_field)
    overlap = bool((zones[admin_field] != OUTSIDE_AREAS).any())
    sums, _ = exposure_sums(
        groups, zones, weighting, [admin_field], places, population, round_estimates=False
    )
    sums = _add_up(sums, by_class, admin_field)
    sums = sums.sort_values(
        [admin_field, "class_rank", "persons_high", "nationality"],
        ascending=[True, False, False, True],
        kind="stable",
    )
    outside = sums[admin_field].eq(OUTSIDE_AREAS)
    sums = pd.concat([sums[~outside], sums[outside]])  # areas alphabetically, then outside
    sums = sums.reset_index(drop=True)
    return sums, _notes(sums, by_class, admin_field, overlap)
