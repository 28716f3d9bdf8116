"""Outreach computations: which registrations lie inside a footprint, in which class.

Pure functions on frames (no file is opened here): exact point-in-polygon of the real
coordinates against the footprint's classes as read (shapely's ``covers``: a point on a
class boundary is inside it), the worst class when a point lies in several, the latest
version of each registration, and the contact list itself.
"""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import polars as pl
import shapely

from geo.footprint_classes import ordered_mask
from geo.sanitize import FORMULA_PREFIXES

NO_CLASS = -1
# A phone number as messaging systems take it: its leading "+" must survive (it is not a
# spreadsheet formula there); any other value starting like a formula is quoted.
_PHONE = re.compile(r"^\+?[0-9][0-9 ().\-/]*$")


def class_severity(classes: gpd.GeoDataFrame) -> np.ndarray:
    """Return each class's severity position: 0 the least severe, higher worse.

    Ordered classes are ranked by ``class_rank`` then label (as
    :func:`geo.tools.classes.to_bands` breaks ties: the later label wins); classes
    without a severity order get :data:`NO_CLASS`.
    """
    ranks = classes["class_rank"].to_numpy()
    labels = classes["class_label"].astype(str).to_numpy()
    order = np.lexsort((labels, ranks))
    position = np.empty(len(classes), dtype=np.int64)
    position[order] = np.arange(len(classes))
    return np.where(ordered_mask(classes), position, NO_CLASS)


def points_to_classes(
    latitude: np.ndarray, longitude: np.ndarray, classes: gpd.GeoDataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Return, per point, the worst class covering it and that class's severity.

    Exact point-in-polygon, vectorised: each class polygon (few: one per class) is
    prepared and tested against the coordinates inside its bounding box with
    ``intersects_xy`` (no point objects are built), which for a point is ``covers``:
    interior or boundary; a point in a hole is outside. A point covered by several
    ordered classes takes the worst one; classes without an order are never ranked, so
    a point in several of them gets all their labels, joined by ``"; "`` in the
    footprint's order (after its worst ordered class).

    Parameters
    ----------
    latitude, longitude
        Coordinates in degrees (EPSG:4326), same length.
    classes
        A class frame (:mod:`geo.footprint_classes`), overlapping classes allowed.

    Returns
    -------
    tuple of numpy.ndarray
        ``(labels, severity)``: the class label (None outside every class) and the
        severity position of the worst ordered class (:data:`NO_CLASS` when none).
    """
    latitude, longitude = np.asarray(latitude, dtype=float), np.asarray(longitude, dtype=float)
    labels = np.full(latitude.size, None, dtype=object)
    severity = np.full(latitude.size, NO_CLASS, dtype=np.int64)
    position = class_severity(classes)
    names = classes["class_label"].astype(str).to_numpy()
    geometries = np.asarray(classes.geometry.values, dtype=object)
    unordered = []
    for index in np.argsort(position, kind="stable"):  # least severe first, unordered first
        geometry = geometries[index]
        if geometry is None or geometry.is_empty or latitude.size == 0:
            continue
        west, south, east, north = geometry.bounds
        near = np.flatnonzero(
            (longitude >= west) & (longitude <= east) & (latitude >= south) & (latitude <= north)
        )
        shapely.prepare(geometry)  # a point intersects a polygon iff the polygon covers it
        inside = near[shapely.intersects_xy(geometry, longitude[near], latitude[near])]
        if position[index] == NO_CLASS:
            unordered.append((index, inside))
        else:  # classes come least severe first: a worse class overwrites
            severity[inside] = position[index]
            labels[inside] = names[index]
    for index, inside in sorted(unordered, key=lambda item: item[0]):
        for point in inside:
            labels[point] = (
                names[index] if labels[point] is None else f"{labels[point]}; {names[index]}"
            )
    return labels, severity


def latest_versions(versions: pl.DataFrame) -> pl.Series:
    """Return the ``seq`` of the latest version of each registration.

    Parameters
    ----------
    versions
        One row per accepted row read: ``key`` (a hash of source and record_id),
        ``updated`` (the row's ``updated_at``; null is older than any date) and ``seq``
        (the order read: at equal dates, the row read last wins).

    Returns
    -------
    polars.Series
        The ``seq`` values to keep, one per registration.
    """
    return (
        versions.sort(["updated", "seq"], nulls_last=False)
        .unique("key", keep="last", maintain_order=False)
        .get_column("seq")
    )


def contact_list(
    candidates: pl.DataFrame,
    keep_seq: pl.Series,
    contact_names: list[str],
    classes: list[str] | None = None,
    consent_bit: int | None = None,
) -> pl.DataFrame:
    """Return the contact list: latest versions inside the footprint, filtered, sorted, safe.

    Parameters
    ----------
    candidates
        Rows inside the footprint: ``seq``, ``record_id``, ``source``, ``class``,
        ``severity``, ``consent`` (bit mask) and the contact columns.
    keep_seq
        From :func:`latest_versions`: a row whose registration has a later version
        elsewhere (inside or outside) is dropped.
    contact_names
        The contact columns to write, in order (missing ones are left empty).
    classes
        Keep only these class labels (None: every class).
    consent_bit
        Keep only rows whose consent mask has this bit (None: no consent filter).

    Returns
    -------
    polars.DataFrame
        ``record_id``, ``source``, ``class`` and the contact columns, worst class first,
        then by source and record_id; text a spreadsheet would run as a formula is
        quoted (phone numbers keep their leading ``+``).
    """
    frame = candidates.filter(pl.col("seq").is_in(keep_seq.implode()))
    if classes is not None:  # a point in several unordered classes carries all their labels
        named = pl.col("class").str.split("; ").list.eval(pl.element().is_in(classes))
        frame = frame.filter(named.list.any())
    if consent_bit is not None:
        frame = frame.filter((pl.col("consent").cast(pl.Int64) & consent_bit) != 0)
    missing = [name for name in contact_names if name not in frame.columns]
    frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(name) for name in missing)
    frame = frame.sort(["severity", "source", "record_id"], descending=[True, False, False])
    text = ["record_id", "source", "class", *contact_names]
    frame = frame.select(pl.col(name).cast(pl.String) for name in text)
    return frame.with_columns(_spreadsheet_safe(name, name.startswith("phone")) for name in text)


def _spreadsheet_safe(name: str, phone: bool) -> pl.Expr:
    """Quote a text column's values that a spreadsheet would run as a formula.

    Vectorised :func:`geo.sanitize.spreadsheet_safe`; a phone number (``+39 …``) is not
    quoted, since the messaging system needs its leading ``+``.
    """
    column = pl.col(name)
    risky = column.str.starts_with(FORMULA_PREFIXES[0])
    for prefix in FORMULA_PREFIXES[1:]:
        risky = risky | column.str.starts_with(prefix)
    if phone:
        risky = risky & ~column.str.contains(_PHONE.pattern)
    return pl.when(risky).then(pl.lit("'") + column).otherwise(column).alias(name)
