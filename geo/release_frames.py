"""A release's frames in pandas: sorted as the file is, text as categoricals.

A release holds its groups (a tenth of its rows) as text and its breakdowns as
categoricals of their sorted, used values, whether it was just built
(:func:`geo.release.protect_counts`) or read from a file or the ledger
(:mod:`geo.io.release_file`): at national scale (15.8M breakdown rows at 100M
registrations) text columns took 1,153 MB, categoricals 380 MB. Categories sorted
as text make the codes sort and compare as the text does.

:class:`BreakdownParts` gathers breakdowns made part by part of whole floor cells
into one such frame without sorting them all again.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import polars_h3

# A release's breakdown counts are 32-bit integers in memory (int64 in the file):
# released counts are far below 2**31, and a dashboard holds a national release's
# millions of breakdown rows for hours (26 MiB less at 10M registrations).
BREAKDOWN_FIGURES = np.int32


def sorted_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Return a release frame sorted by cell, nationality, dimension and category as texts."""
    return frame.sort(_sort_keys(frame), maintain_order=True)


def _sort_keys(frame: pl.DataFrame) -> list[pl.Expr]:
    """Return the keys that sort a release frame by cell, nationality, dimension, category.

    Integers: an H3 cell's 15 hex digits sort as the cell's integer, and each text column
    as its rank among its values (:func:`_text_key`; 2× faster than sorting the texts at
    national scale).
    """
    keys = [_text_key(frame[c]) for c in ("nationality", "dimension", "category") if c in frame]
    fifteen_digits = frame.height == 0 or (
        frame["cell"].min() >= 1 << 56 and frame["cell"].max() < 1 << 60
    )
    keys.insert(0, pl.col("cell") if fifteen_digits else polars_h3.int_to_str("cell"))
    return keys


def _text_key(column: pl.Series) -> pl.Expr:
    """Return a key that sorts a text or enum column as its texts do.

    An enum sorts by its codes: as it is when its categories are in text order, else
    through the text rank of each category (a lookup, not a cast through text: keeping
    a 10M release's breakdown parts took 0.68-0.81 s with the casts, 0.34-0.37 s so).
    Other text by an enum of its sorted values; a column with nulls by its text.
    """
    name = column.name
    if column.null_count():
        return pl.col(name).cast(pl.String)
    if isinstance(column.dtype, pl.Enum):
        categories = column.dtype.categories.to_list()
        ranks = np.argsort(np.argsort(np.array(categories, dtype=object), kind="stable"))
        if (ranks == np.arange(len(ranks))).all():
            return pl.col(name)
        return pl.lit(pl.Series(ranks, dtype=pl.UInt32)).gather(pl.col(name).to_physical())
    return pl.col(name).cast(pl.String).cast(pl.Enum(sorted(column.cast(pl.String).unique())))


def categorical_frame(frame: pl.DataFrame) -> pd.DataFrame:
    """Return release rows in pandas in :func:`sorted_frame`'s order, their text as categoricals.

    Every text column is a categorical of its sorted, used values
    (:func:`sorted_categorical`), as a read release's breakdowns are: at national scale
    (15.8M breakdown rows at 100M registrations) a third of the memory of text columns.
    Taken column by column through the sort's permutation: no sorted copy of the frame.
    (One 64-bit key of the codes instead of the four sort columns took 100 MB more.)
    """
    order = frame.select(pl.arg_sort_by(_sort_keys(frame), maintain_order=True))
    order = order.to_series().to_numpy()
    names = [c for c in frame.columns if c not in ("cell", "resolution")]
    columns = {
        "h3_cell": _cell_categorical(frame["cell"], order),
        "resolution": frame["resolution"].cast(pl.Int8).to_numpy()[order],
    }
    for name in names:
        column = frame[name]
        if column.dtype in (pl.Enum, pl.String, pl.Categorical):
            columns[name] = _text_categorical(column, order)
        else:
            columns[name] = column.cast(pl.Int32).to_numpy()[order]  # BREAKDOWN_FIGURES
    return pd.DataFrame(columns, columns=["h3_cell", "resolution", *names], copy=False)


def text_frame(frame: pl.DataFrame) -> pd.DataFrame:
    """Return a sorted release frame (:func:`sorted_frame`) in pandas, H3 cells as hex strings.

    Converted in slices through Arrow, so the texts of the whole frame are never held
    twice (polars' and pandas').
    """
    import pyarrow as pa

    ordered = ["h3_cell", "resolution"] + [
        c for c in frame.columns if c not in ("cell", "resolution")
    ]
    parts = [
        frame.slice(offset, _PANDAS_SLICE)
        .with_columns(
            polars_h3.int_to_str("cell").alias("h3_cell"),
            pl.col("resolution").cast(pl.Int8),
            pl.col("cases", "persons").cast(pl.Int64),
            pl.selectors.by_dtype(pl.Enum).cast(pl.String),
        )
        .select(ordered)
        .to_arrow()
        for offset in range(0, max(frame.height, 1), _PANDAS_SLICE)
    ]
    return pa.concat_tables(parts).to_pandas()


_PANDAS_SLICE = 500_000


def _cell_categorical(cells: pl.Series, order: np.ndarray) -> pd.Categorical:
    """Return H3 cells (integers) taken in ``order`` as a categorical of their hex strings."""
    distinct = cells.unique().sort()
    hexes = pl.select(polars_h3.int_to_str(distinct)).to_series()
    codes = distinct.search_sorted(cells).to_numpy()[order]
    return sorted_categorical(codes, hexes.to_numpy(), np.arange(len(distinct)))


def _text_categorical(column: pl.Series, order: np.ndarray) -> pd.Categorical:
    """Return an enum or text column taken in ``order`` as a categorical (nulls: missing)."""
    if column.dtype != pl.Enum:
        column = column.cast(pl.String).cast(pl.Enum(column.drop_nulls().unique().sort()))
    codes = column.to_physical().cast(pl.Int32).fill_null(-1).to_numpy()[order]
    return sorted_categorical(codes, column.dtype.categories.to_numpy())


def sorted_categorical(
    codes: np.ndarray, categories: np.ndarray | pd.Index, used: np.ndarray | None = None
) -> pd.Categorical:
    """Return codes into categories as a categorical of the used categories, sorted.

    Sorted categories sort and compare as the text does; only used ones, so two frames
    of the same values have the same categories whatever dictionary they came from.
    ``used`` as in :func:`_sorted_codes`.
    """
    return pd.Categorical.from_codes(*_sorted_codes(codes, categories, used))


def _sorted_codes(
    codes: np.ndarray, categories: np.ndarray | pd.Index, used: np.ndarray | None = None
) -> tuple[np.ndarray, pd.Index]:
    """Return codes into categories as codes into the used categories sorted, and those.

    ``used`` (the positions of the used categories) is counted from the codes when not
    given: counted, not sorted (pandas' ``remove_unused_categories`` sorts every code).
    A code of −1 is a missing value and stays −1. The codes are of the smallest integer
    type.
    """
    categories = pd.Index(categories, dtype="str")  # text even when empty
    if used is None:
        present = codes[codes >= 0] if len(codes) and codes.min() < 0 else codes
        used = np.flatnonzero(np.bincount(present, minlength=len(categories)))
    order = used[np.argsort(categories[used].to_numpy(), kind="stable")]
    smallest = next(t for t in (np.int8, np.int16, np.int32) if len(order) < np.iinfo(t).max)
    position = np.full(len(categories) + 1, -1, dtype=smallest)  # the last: missing
    position[order] = np.arange(len(order), dtype=smallest)
    # none used: a fresh empty index (an empty selection of one converts to Arrow as nulls)
    kept = categories[order] if len(order) else pd.Index([], dtype="str")
    return position[codes], kept


_TEXT = ("nationality", "dimension", "category")
_FIGURES = ("cases", "persons")


class BreakdownParts:
    """Noisy breakdown rows gathered part by part into one release frame.

    The parts hold whole floor cells and come in floor-cell order. Each is sorted alone
    and kept as 14–16 bytes a row (its cells' codes, enum codes, 32-bit figures). An H3
    cell's integer (and hex text) orders by resolution first, then by its ancestors'
    digits, so within one resolution every cell of a part comes before those of the
    next part: the whole, in the file's order, is every part's rows of the coarsest
    resolution, then of the next, and so on. No sort of the whole, no copy of it.
    """

    def __init__(self) -> None:
        self._parts: list[dict[str, np.ndarray]] = []
        self._schema: pl.Schema | None = None

    def add(self, rows: pl.DataFrame) -> None:
        """Keep one part's rows: cell, resolution, the three enums, cases and persons."""
        rows = sorted_frame(rows.select("cell", "resolution", *_TEXT, *_FIGURES))
        if self._schema is None:
            self._schema = rows.schema
        if rows.schema != self._schema or any(
            not isinstance(rows.schema[name], pl.Enum) for name in _TEXT
        ):
            raise ValueError(f"breakdown parts of other types: {rows.schema}")
        distinct = rows["cell"].unique().sort()
        part = {
            "cells": distinct.to_numpy(),
            "h3_cell": distinct.search_sorted(rows["cell"])
            .cast(_smallest(len(distinct)))
            .to_numpy(),
            "resolution": rows["resolution"].cast(pl.Int8).to_numpy(),
        }
        part.update({name: rows[name].to_physical().to_numpy() for name in _TEXT})
        part.update({name: rows[name].cast(pl.Int32).to_numpy() for name in _FIGURES})
        self._parts.append(part)

    def frame(self) -> pd.DataFrame:
        """Return every part's rows as one breakdowns frame, in order (the parts are let go).

        Column by column: each is gathered from the parts, then dropped from them.
        """
        parts, self._parts = self._parts, []
        everything = np.unique(np.concatenate([p["cells"] for p in parts]))
        for part in parts:  # each part's cell codes become codes into every part's cells
            into = np.searchsorted(everything, part.pop("cells")).astype(np.int32)
            part["h3_cell"] = into[part["h3_cell"]]
        levels = np.unique(np.concatenate([np.unique(p["resolution"]) for p in parts]))
        plan = [
            (part, *np.searchsorted(part["resolution"], [level, level + 1]))
            for level in levels
            for part in parts
        ]

        def gathered(name: str, dtype: type | None = None) -> np.ndarray:
            empty = [p[name][:0] for p in parts]  # the type, even with no rows
            values = np.concatenate(empty + [p[name][a:b] for p, a, b in plan], dtype=dtype)
            for part in parts:
                del part[name]
            return values

        hexes = pl.select(polars_h3.int_to_str(pl.Series(everything, dtype=pl.UInt64)))
        every = np.arange(len(everything))
        columns = {
            "h3_cell": sorted_categorical(gathered("h3_cell"), hexes.to_series().to_numpy(), every),
            "resolution": gathered("resolution"),
        }
        for name in _TEXT:
            categories = self._schema[name].categories.to_numpy()
            used = sum(np.bincount(p[name], minlength=len(categories)) for p in parts)
            columns[name] = sorted_categorical(gathered(name), categories, np.flatnonzero(used))
        for name in _FIGURES:
            columns[name] = gathered(name, BREAKDOWN_FIGURES)
        return pd.DataFrame(columns, copy=False)  # its arrays as they are: no second copy


def _smallest(count: int) -> pl.DataType:
    """Return the smallest signed integer type that numbers ``count`` values (a part's cells)."""
    return pl.Int16 if count < 1 << 15 else pl.Int32
