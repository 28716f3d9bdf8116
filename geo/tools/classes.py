"""Operations on hazard classes that are already read: bands, cumulative areas, combining.

A class frame (see :mod:`geo.footprint_classes`) may hold overlapping classes;
the exposure needs either disjoint bands (each place counted once, in its worst
class) or "at least this class" areas, and several footprints overlaid into one
scale. These functions do that and nothing else: they read no file, and take
footprints as any object with a ``classes`` frame (such as
:class:`geo.io.footprints.Footprint`) so that this module does not depend on the
readers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.footprint_classes import (
    CLASS_COLUMNS,
    ORDER_COLUMN,
    UNORDERED_RANK,
    WGS84,
    classes_are_ordered,
    geometries_to_km2,
    geometries_to_polygonal,
    ordered_mask,
    rows_to_classes,
    sorted_classes,
)

__all__ = [
    "class_system",
    "combine_footprints",
    "geometries_to_km2",
    "label_to_at_least",
    "to_bands",
    "to_cumulative",
]


class _HasClasses(Protocol):
    """Anything carrying a class frame, such as a :class:`geo.io.footprints.Footprint`."""

    @property
    def classes(self) -> gpd.GeoDataFrame:
        """One row per class (see :mod:`geo.footprint_classes`)."""
        ...


def to_bands(classes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Make classes disjoint: each place keeps only the worst class covering it.

    Parameters
    ----------
    classes : geopandas.GeoDataFrame
        Frame with the columns of :attr:`Footprint.classes`; classes may overlap.
        Equal ranks are ordered by label (alphabetically later wins). Classes
        marked unordered (see :mod:`geo.footprint_classes`) are kept whole: with
        no order there is no worst class to win an overlap.

    Returns
    -------
    geopandas.GeoDataFrame
        Same columns, ordered classes disjoint, classes left with no area
        removed, sorted by ``class_rank``.

    Raises
    ------
    ValueError
        If a required column is missing.
    """
    keep = ordered_mask(classes)
    if not keep.all():
        banded = to_bands(classes[keep]) if keep.any() else classes[keep]
        both = pd.concat([banded, classes[~keep]], ignore_index=True)
        both[ORDER_COLUMN] = ordered_mask(both)
        return sorted_classes(gpd.GeoDataFrame(both, geometry="geometry", crs=WGS84))
    ordered = _severity_order(classes)
    geoms = ordered.geometry.values
    bands, taken = [], None
    for geom in geoms:
        band = geom if taken is None else shapely.difference(geom, taken)
        bands.append(band)
        taken = geom if taken is None else shapely.union(taken, geom)
    out = ordered.copy()
    out["geometry"] = geometries_to_polygonal(np.array(bands, dtype=object))
    return sorted_classes(out[~shapely.is_empty(out.geometry.values)])


def to_cumulative(classes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Turn classes into "at least this class" areas.

    Parameters
    ----------
    classes : geopandas.GeoDataFrame
        Frame with the columns of :attr:`Footprint.classes`.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per class: the union of that class and every more severe one,
        labelled e.g. ``"MMI ≥ VII"``, ``"PGA ≥ 10 %g"`` or
        ``"Orange alert or worse"``; sorted by ``class_rank``.

    Raises
    ------
    ValueError
        If a required column is missing, or a class has no severity order
        (see :mod:`geo.footprint_classes`): "at least" needs an order.
    """
    if not classes_are_ordered(classes):
        raise ValueError("classes without a severity order have no cumulative view.")
    ordered = _severity_order(classes)
    union, geoms = None, []
    for geom in ordered.geometry.values:
        union = geom if union is None else shapely.union(union, geom)
        geoms.append(union)
    out = ordered.copy()
    out["geometry"] = geometries_to_polygonal(np.array(geoms, dtype=object))
    out["class_label"] = [label_to_at_least(label) for label in out["class_label"]]
    return sorted_classes(out)


def combine_footprints(
    footprints: Sequence[_HasClasses], cumulative: bool = False
) -> gpd.GeoDataFrame:
    """Overlay several footprints, each class system kept apart.

    Footprints of one class system (:func:`class_system`: two MMI maps, say) are
    overlaid into disjoint bands where the worst class wins; footprints of different
    systems (MMI and flood depth) are never ranked against each other: a place gets
    one class per system, so its people count once in each system's classes. Labels
    are prefixed by hazard type (``"earthquake: MMI VIII"``), or by hazard type and
    file name where two systems would otherwise share a label; identical labels of
    one system are merged.

    Parameters
    ----------
    footprints : sequence of Footprint
        The footprints, most important first (any objects with a ``classes``
        frame, and optionally a ``provenance`` dict).
    cumulative : bool
        Return each system's "at least this class" areas instead of its bands.

    Returns
    -------
    geopandas.GeoDataFrame
        The columns of :attr:`Footprint.classes`; disjoint (or nested, when
        cumulative) within each system. ``class_rank`` is 1..n over the ordered
        classes: the order within each system, the system of the first footprint
        ranked above the next one's, so that sorting by rank lists each system's
        classes together, worst first. Unordered classes keep rank 0 and
        ``class_ordered`` False.

    Raises
    ------
    ValueError
        If no footprint is given.
    """
    if not footprints:
        raise ValueError("combine_footprints needs at least one footprint.")
    systems: dict[tuple, list[int]] = {}
    for position, footprint in enumerate(footprints):
        systems.setdefault(class_system(footprint), []).append(position)
    frames = []
    for members in systems.values():
        classes = pd.concat([footprints[i].classes for i in members], ignore_index=True)
        bands = _merge_same_labels(to_bands(gpd.GeoDataFrame(classes, crs=WGS84)))
        frames.append((members, bands))
    prefixes = _system_prefixes(footprints, frames)
    out, above = [], sum(int(ordered_mask(bands).sum()) for _, bands in frames)
    for (_members, bands), prefix in zip(frames, prefixes, strict=True):
        bands = bands.assign(class_label=prefix + bands["class_label"])
        if cumulative:
            bands = to_cumulative(bands)
        keep = ordered_mask(bands)
        above -= int(keep.sum())
        ranks = np.where(keep, bands["class_rank"] + above, UNORDERED_RANK).astype("int64")
        out.append(bands.assign(class_rank=ranks))
    combined = pd.concat(out, ignore_index=True)
    if ORDER_COLUMN in combined.columns:
        combined[ORDER_COLUMN] = ordered_mask(combined)
        if combined[ORDER_COLUMN].all():
            combined = combined.drop(columns=ORDER_COLUMN)
    return sorted_classes(gpd.GeoDataFrame(combined, geometry="geometry", crs=WGS84))


def class_system(footprint: _HasClasses) -> tuple:
    """Return the key of a footprint's class system: footprints sharing it are comparable.

    A reader may name the system (``provenance["class_system"]``). Otherwise MMI
    classes form one system whatever the map (their rank is the integer MMI), and any
    other footprint shares a system only with footprints of the same hazard type and
    the same classes in the same order (two GDACS alerts, say).
    """
    named = (getattr(footprint, "provenance", None) or {}).get("class_system")
    if named:
        return ("named", str(named))
    classes = footprint.classes
    hazard = "/".join(sorted(set(classes["hazard_type"].astype(str))))
    labels = classes["class_label"].astype(str)
    if len(labels) and labels.str.match(r"MMI\b").all():
        return (hazard, "MMI")
    ranked = classes.sort_values(["class_rank", "class_label"], kind="stable")
    ranks, labels = ranked["class_rank"].astype(int), ranked["class_label"].astype(str)
    return (hazard, tuple(zip(ranks, labels, strict=True)))


def _system_prefixes(
    footprints: Sequence[_HasClasses], frames: list[tuple[list[int], gpd.GeoDataFrame]]
) -> list[str]:
    """Return each system's label prefix: its hazard type, with a file name if labels clash."""
    prefixes = [f"{'/'.join(dict.fromkeys(bands['hazard_type']))}: " for _, bands in frames]
    labelled = [
        {prefix + label for label in bands["class_label"]}
        for prefix, (_, bands) in zip(prefixes, frames, strict=True)
    ]
    for i, (members, _) in enumerate(frames):
        if any(labelled[i] & other for j, other in enumerate(labelled) if j != i):
            provenance = getattr(footprints[members[0]], "provenance", None) or {}
            name = provenance.get("file_name") or f"footprint {members[0] + 1}"
            prefixes[i] = f"{prefixes[i][:-2]} ({name}): "
    return prefixes


def label_to_at_least(label: str) -> str:
    """Label of the "at least" area that starts at a class.

    Parameters
    ----------
    label : str
        A class label such as ``"MMI VII"``, ``"PGA 10–20 %g"``, ``"Red alert"``,
        optionally prefixed by a hazard type (``"earthquake: MMI VII"``).

    Returns
    -------
    str
        ``"MMI ≥ VII"``, ``"PGA ≥ 10 %g"``, ``"MMI: whole map"`` for the class
        below the lowest contour, otherwise ``"<label> or worse"``.
    """
    prefix, _, core = label.rpartition(": ")
    prefix = f"{prefix}: " if prefix else ""
    if m := re.fullmatch(r"MMI ([IVX]+)", core):
        return f"{prefix}MMI ≥ {m.group(1)}"
    if m := re.fullmatch(r"(PGA|PGV|PSA\S*|VALUE) (\S+)–\S+ (.+)", core):
        return f"{prefix}{m.group(1)} ≥ {m.group(2)} {m.group(3)}"
    if re.fullmatch(r"(MMI|PGA|PGV|PSA\S*|VALUE) ≥ .+", core):
        return label
    if m := re.fullmatch(r"(MMI|PGA|PGV|PSA\S*|VALUE) < .+", core):
        return f"{prefix}{m.group(1)}: whole map"
    return f"{label} or worse"


def _severity_order(classes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Classes sorted from most to least severe (rank, then label)."""
    missing = [c for c in CLASS_COLUMNS if c not in classes.columns]
    if missing:
        raise ValueError(f"class frame lacks column(s) {', '.join(missing)}")
    return classes.sort_values(["class_rank", "class_label"], ascending=False, kind="stable")


def _merge_same_labels(bands: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Union rows that share a label, keep the higher rank, renumber ordered ranks 1..n."""
    rows, flags = [], []
    bands = bands.assign(_ordered=ordered_mask(bands))
    for (label, flag), group in bands.groupby(["class_label", "_ordered"], sort=False):
        rows.append(
            (
                group["hazard_type"].iloc[0],
                label,
                int(group["class_rank"].max()),
                shapely.union_all(group.geometry.values),
            )
        )
        flags.append(bool(flag))
    merged = rows_to_classes(rows)
    if not all(flags):
        merged[ORDER_COLUMN] = flags
    merged = sorted_classes(merged)
    keep = ordered_mask(merged)
    merged["class_rank"] = np.where(keep, np.cumsum(keep), UNORDERED_RANK).astype("int64")
    return merged
