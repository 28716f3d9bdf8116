"""An audience's counts as a release asks for them, never its records.

A release needs three kinds of figures: the nationality totals (rare ones become
``OTH``), the (base cell × nationality) table the roll-up walks, and, once every base
group has its published cell, the breakdown counts per published unit (one table per
grouping of the placement's columns and the categories). :class:`FrameCounts` counts
them from records in memory; :class:`geo.io.store_counts.StoreCounts` pushes the same
groupings down into the store, so a national registry never leaves DuckDB as rows.

Every figure carries its ``cases``, ``persons`` and ``key_sum`` (its records' keys
summed modulo 2³²): key sums add up, so a figure counted from a marginal gets the same
keyed noise as from the joint cube. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import polars as pl

from geo.noise import KEY_MODULUS
from geo.rollup import cube_of, rename_nationalities

# The placement of a base group: where it is published, and its floor cell.
PLACEMENT = ["base_cell", "nationality", "published_cell", "published_res", "floor_cell"]


class AudienceCounts(Protocol):
    """What :func:`geo.release.protect_counts` asks of an audience."""

    def nationality_totals(self) -> pl.DataFrame:
        """Return nationality (text) and cases, one row per nationality present."""

    def base_counts(self, rare: Sequence[str]) -> pl.DataFrame:
        """Return base_cell, nationality, cases, persons, key_sum; ``rare`` counted as OTH."""

    def unit_counts(
        self, parts: Sequence[pl.DataFrame], groupings: Sequence[tuple[str, ...]]
    ) -> Iterator[list[pl.DataFrame]]:
        """Yield, for each part of the placement in turn, its records counted per grouping.

        Each part has the :data:`PLACEMENT` columns (one row per published base group;
        the parts split the placement by floor cell, so a release's breakdowns are made
        part by part); a grouping names placement columns and categories (``sex``,
        ``age_band``, ``vulnerability``: the case's first in priority).
        """


def summed() -> list[pl.Expr]:
    """Return the aggregations of a figure: cases, persons and key sum modulo 2³²."""
    return [
        pl.col("cases").sum().cast(pl.Int64),
        pl.col("persons").sum().cast(pl.Int64),
        (pl.col("key_sum").sum() % KEY_MODULUS).cast(pl.Int64),
    ]


class FrameCounts:
    """An audience's counts from records in memory (built in code, or a lake's counts)."""

    def __init__(self, records: pl.DataFrame, base_resolution: int) -> None:
        self._records = records
        self._resolution = base_resolution
        self._cube: pl.DataFrame | None = None

    def nationality_totals(self) -> pl.DataFrame:
        """Return nationality and cases of the records."""
        cases = pl.col("cases").sum() if "cases" in self._records.columns else pl.len()
        return self._records.group_by("nationality").agg(cases.cast(pl.Int64).alias("cases"))

    def base_counts(self, rare: Sequence[str]) -> pl.DataFrame:
        """Return the (base cell × nationality) table, counting ``rare`` as OTH."""
        renamed = rename_nationalities(self._records, rare)
        self._cube = cube_of(renamed, self._resolution).with_columns(
            pl.col("nationality").cast(pl.String)
        )
        return self._cube.group_by("base_cell", "nationality").agg(summed())

    def unit_counts(
        self, parts: Sequence[pl.DataFrame], groupings: Sequence[tuple[str, ...]]
    ) -> Iterator[list[pl.DataFrame]]:
        """Yield each placement part's cube counted by each grouping (after :meth:`base_counts`)."""
        if self._cube is None:
            raise RuntimeError("unit_counts needs base_counts first")
        for placement in parts:
            cube = self._cube.with_columns(
                pl.col("nationality").cast(placement.schema["nationality"])
            )
            kept = cube.join(placement, on=["base_cell", "nationality"])
            yield [kept.group_by(list(grouping)).agg(summed()) for grouping in groupings]
