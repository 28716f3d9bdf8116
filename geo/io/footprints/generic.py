"""Any other polygons (GeoJSON, TopoJSON, Shapefile, GeoPackage, KML/KMZ), classed by a field.

Without ``class_field`` the polygons form one class named after the file.
With it, the field's values become the classes: spellings that differ only by
case or spaces are merged, and the classes are ranked in the only order the
values allow.

Class ranks: numbers in numeric order (higher is more severe, noted in the
provenance); known ordinal words (no < yes, low < medium < high, green <
yellow < orange < red ...); the order the user gives (``class_order``, worst
first, applied by :func:`geo.io.footprints.read_footprint`); otherwise the
classes are **unordered** (see :mod:`geo.footprint_classes`): never ranked
alphabetically, no cumulative view, no worst class.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.io.footprints.common import (
    FootprintError,
    _column,
    _count,
    _groups_to_classes,
    _Log,
    _name_to_hazard,
    _Options,
)

ORDINAL_SCALES = (
    ("no", "yes"),
    ("false", "true"),
    ("very low", "low", "moderate", "medium", "high", "very high", "extreme"),
    ("minor", "moderate", "severe", "extreme"),
    ("green", "yellow", "orange", "red"),
)


def _polygons_to_classes(
    polygons: gpd.GeoDataFrame, opts: _Options, log: _Log, hazard: str | None = None
) -> tuple[gpd.GeoDataFrame, str | None, bool]:
    """Classes from ``class_field`` values, or one class named after the file."""
    hazard = hazard or _name_to_hazard(opts.display)
    if opts.class_field is None:
        label = _display_to_stem(opts.display)
        codes = np.zeros(len(polygons), int)
        return _groups_to_classes(polygons, codes, [label], [1], hazard), None, False
    col = _column(polygons, opts.class_field)
    if col is None:
        fields = [c for c in polygons.columns if c != "geometry"]
        raise FootprintError(
            f"{opts.display}: no field '{opts.class_field}'; the fields are "
            f"{', '.join(fields) or '(none)'}."
        )
    raw = polygons[col]
    blank = raw.isna() | (raw.astype(str).str.strip() == "")
    if blank.any():
        log.notes.append(f"dropped {_count(int(blank.sum()), 'feature')} with no value in {col}")
    polygons, raw = polygons[~blank], raw[~blank]
    keys, labels, ranks, ordinal = _values_to_classes(raw, log, col, opts.class_order is None)
    codes = keys.map({k: i for i, k in enumerate(labels)}).to_numpy()
    classes = _groups_to_classes(polygons, codes, list(labels.values()), ranks, hazard, ordinal)
    return classes, col, ordinal


def _values_to_classes(
    raw: pd.Series, log: _Log, col: str, say_unordered: bool = True
) -> tuple[pd.Series, dict[str, str], list[int], bool]:
    """Normalise attribute values (strip, case-fold) and rank them.

    Returns the key of each value, the display label of each key (in rank
    order for ordered values, by label otherwise: only for a stable display),
    the ranks, and whether the values have an order (numeric or a known
    ordinal scale). Unordered values get no rank (see
    :mod:`geo.footprint_classes`).
    """
    numbers = pd.to_numeric(raw, errors="coerce")
    if numbers.notna().all():
        keys = numbers.map(_number_to_label)
        order = sorted(keys.unique(), key=float)
        if len(order) > 1 and say_unordered:
            log.notes.append(f"values of {col} are numbers: ranked so that higher is more severe")
        return keys, {k: k for k in order}, list(range(1, len(order) + 1)), True
    text = raw.astype(str).str.strip().str.replace(r"\s+", " ", regex=True)
    keys = text.str.casefold()
    scale = next((s for s in ORDINAL_SCALES if set(keys.unique()) <= set(s)), None)
    order = sorted(keys.unique(), key=scale.index) if scale else sorted(keys.unique())
    if not scale and len(order) > 1 and say_unordered:
        log.notes.append(
            f"values of {col} have no known order: classes reported unordered (no worst "
            "class, no 'or worse' view); give the order, worst first, as the class order"
        )
    merged = {k: sorted(set(text[keys == k])) for k in order}
    for variants in merged.values():
        if len(variants) > 1:
            spellings = ", ".join(repr(v) for v in variants)
            log.notes.append(f"{col} values {spellings} merged into one class")
    labels = {k: _variants_to_label(text[keys == k]) for k in order}
    return keys, labels, list(range(1, len(order) + 1)), scale is not None or len(order) < 2


def _number_to_label(value: float) -> str:
    """Format a class value: integers without decimals, others as given."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _variants_to_label(variants: pd.Series) -> str:
    """Display label for spellings of one value: the commonest mixed-case one, else capitalised."""
    counts = variants.value_counts()
    mixed = [v for v in counts.index if not (v.isupper() or v.islower())]
    label = mixed[0] if mixed else str(counts.index[0])
    if label.isupper() or label.islower():
        label = label[:1].upper() + label[1:].lower()
    return label


def _display_to_stem(display: str) -> str:
    """File name without directories and known extensions."""
    stem = PurePosixPath(display.replace("\\", "/")).name
    suffixes = r"(\.(shp|zip|geojson|json|topojson|gpkg|kml|kmz|gml|fgb))+$"
    return re.sub(suffixes, "", stem, flags=re.IGNORECASE)
