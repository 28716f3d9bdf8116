"""Breakdowns of released groups: sex and age band per group, vulnerability per floor cell.

Two ways, one per method:

- **exact** (method 1): a breakdown is published for a group only when every non-zero
  category has at least k cases and no pair of categories of two published dimensions
  pins a cross-cell between 1 and k−1; vulnerabilities only at the floor resolution,
  with each case counted once under its first vulnerability in ``VULNERABILITY_PRIORITY``,
  and only where no released group under the floor cell is thereby proven to hold
  between 1 and k−1 cases of a category. Withholding says something (a withheld
  breakdown has a small category), which is why method 2 exists.
- **noisy** (method 2): every category of every group (and every vulnerability category
  of every floor cell × nationality), zeros included, each with the key sum of its
  records for the noise. Nothing is withheld, so withholding says nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from geo.rollup import BREAKDOWN_DIMENSIONS

# A breakdown row's dimension and category as enums (4 bytes a row, not a text each: the
# rows of a national release are millions); the release turns them into text.
DIMENSION = pl.Enum(list(BREAKDOWN_DIMENSIONS))
CATEGORY = pl.Enum(sorted({c for values in BREAKDOWN_DIMENSIONS.values() for c in values}))
GROUP = ["published_cell", "published_res", "nationality"]
FLOOR = ["floor_cell", "nationality"]
# What each method counts of the placed records (geo.counting.AudienceCounts.unit_counts):
# only marginals, never the joint cube, so their size follows the published units.
NOISE_GROUPINGS = ((*GROUP, "sex"), (*GROUP, "age_band"), (*FLOOR, "vulnerability"))
EXACT_GROUPINGS = (
    (*GROUP, "sex", "age_band"),  # the exact method's pinning check crosses the two
    (*FLOOR, "vulnerability", "sex"),
    (*FLOOR, "vulnerability", "age_band"),
    (*FLOOR, "vulnerability", "published_cell"),
)


def _counted(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Return cases and persons summed by ``keys``."""
    return frame.group_by(keys).agg(pl.col("cases").sum(), pl.col("persons").sum())


def _breakdown(
    cube: pl.DataFrame, unit: list[str], dimension: str, k: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return a dimension's non-zero category counts per unit, and which units may show it.

    A unit (group, or floor cell × nationality) may show the dimension when every
    non-zero category has at least k cases.
    """
    counts = _counted(cube, [*unit, dimension])
    allowed = counts.group_by(unit).agg((pl.col("cases") >= k).all().alias("allowed"))
    return counts, allowed


def _pinned_cross(cube: pl.DataFrame, unit: list[str], first: str, second: str, k: int):
    """Return, per unit, whether two published dimensions would pin a cross-cell.

    From the marginals an attacker proves a cross-cell holds at least
    ``n_a + n_b − total``; where that is ≥ 1 and the true cross count is 1..k−1, the
    second dimension must not be shown beside the first.
    """
    total = cube.group_by(unit).agg(pl.col("cases").sum().alias("total"))
    n_first = cube.group_by(*unit, first).agg(pl.col("cases").sum().alias("n_first"))
    n_second = cube.group_by(*unit, second).agg(pl.col("cases").sum().alias("n_second"))
    cross = (
        cube.group_by(*unit, first, second)
        .agg(pl.col("cases").sum().alias("cross"))
        .join(total, on=unit)
        .join(n_first, on=[*unit, first])
        .join(n_second, on=[*unit, second])
    )
    pinned = (pl.col("cross") < k) & (pl.col("n_first") + pl.col("n_second") - pl.col("total") >= 1)
    return cross.group_by(unit).agg(pinned.any().alias("pinned"))


def _shown(
    counts: pl.DataFrame,
    allowed: pl.DataFrame,
    unit: list[str],
    dimension: str,
    cell: str,
    resolution: pl.Expr,
) -> pl.DataFrame:
    """Return the long breakdown rows of the units allowed to show a dimension."""
    return counts.join(allowed.filter("allowed").select(unit), on=unit).select(
        pl.col(cell).alias("cell"),
        resolution.cast(pl.Int8).alias("resolution"),
        "nationality",
        pl.lit(dimension, dtype=DIMENSION).alias("dimension"),
        pl.col(dimension).cast(pl.String).cast(CATEGORY).alias("category"),
        "cases",
        "persons",
    )


def exact_breakdown_rows(
    tables: Sequence[pl.DataFrame], k: int, floor_resolution: int
) -> pl.DataFrame:
    """Return the sex and age-band rows per group and the vulnerability rows per floor cell.

    ``tables`` are the placed records counted by each of :data:`EXACT_GROUPINGS`.
    """
    group = GROUP
    by_sex_age, *by_vulnerability_and = tables
    sex_counts, sex_allowed = _breakdown(by_sex_age, group, "sex", k)
    age_counts, age_allowed = _breakdown(by_sex_age, group, "age_band", k)
    age_allowed = (
        age_allowed.join(sex_allowed.rename({"allowed": "sex_allowed"}), on=group)
        .join(_pinned_cross(by_sex_age, group, "sex", "age_band", k), on=group)
        .select(
            *group,
            (pl.col("allowed") & ~(pl.col("sex_allowed") & pl.col("pinned"))).alias("allowed"),
        )
    )
    floor = FLOOR
    seconds = ("sex", "age_band", "published_cell")
    by_vulnerability = dict(zip(seconds, by_vulnerability_and, strict=True))
    vul_counts, vul_allowed = _breakdown(by_vulnerability["sex"], floor, "vulnerability", k)
    for second in seconds:
        pinned = _pinned_cross(by_vulnerability[second], floor, "vulnerability", second, k)
        vul_allowed = vul_allowed.join(pinned.rename({"pinned": second}), on=floor)
    vul_allowed = vul_allowed.select(
        *floor, (pl.col("allowed") & ~pl.any_horizontal(seconds)).alias("allowed")
    )
    resolution = pl.col("published_res")
    return pl.concat(
        [
            _shown(sex_counts, sex_allowed, group, "sex", "published_cell", resolution),
            _shown(age_counts, age_allowed, group, "age_band", "published_cell", resolution),
            _shown(
                vul_counts,
                vul_allowed,
                floor,
                "vulnerability",
                "floor_cell",
                pl.lit(floor_resolution),
            ),
        ]
    )


def all_category_rows(
    placement: pl.DataFrame, tables: list[pl.DataFrame], floor_resolution: int
) -> pl.DataFrame:
    """Return every category of the groups' and floor cells' breakdowns, zeros included.

    Sex and age band per published group, vulnerability per floor cell × nationality
    (``tables``: the placed records counted by each of :data:`NOISE_GROUPINGS`); each
    row with cases, persons (32-bit) and the key sum of its records. The units are the
    placement's: every published group, every floor cell × nationality holding one.
    The list ``tables`` is emptied as each is used, so that a table is freed once its
    rows are made (at 100M registrations the tables and the rows took 550 MB each).
    """
    # Lazy queries on the streaming engine: their joins and uniques hold far less than
    # the in-memory engine's at national scale (3.8M rows). Each dimension is collected
    # on its own and the parts are kept as chunks, not copied into one: at 100M
    # registrations (15.8M rows) one query over all three peaked 930 MB higher.
    groups, floors = (
        placement.lazy().select(unit).unique().collect(engine="streaming").lazy()
        for unit in (GROUP, FLOOR)
    )
    units = {
        "sex": (groups, "published_cell", pl.col("published_res")),
        "age_band": (groups, "published_cell", pl.col("published_res")),
        "vulnerability": (floors, "floor_cell", pl.lit(floor_resolution)),
    }
    parts = []
    for dimension, (unit, cell, resolution) in units.items():
        counted = tables.pop(0)
        parts.append(
            _complete(unit, counted, dimension, cell, resolution).collect(engine="streaming")
        )
        del counted
    return pl.concat(parts, rechunk=False)


def _complete(
    units: pl.LazyFrame, counted: pl.DataFrame, dimension: str, cell: str, resolution: pl.Expr
) -> pl.LazyFrame:
    """Return one dimension's categories for every unit, absent categories as zero rows."""
    unit = units.collect_schema().names()
    categories = pl.LazyFrame({dimension: list(BREAKDOWN_DIMENSIONS[dimension])}).with_columns(
        pl.col(dimension).cast(counted.schema[dimension])
    )
    return (
        units.join(categories, how="cross")
        .join(counted.lazy(), on=[*unit, dimension], how="left")
        .select(
            pl.col(cell).alias("cell"),
            resolution.cast(pl.Int8).alias("resolution"),
            "nationality",
            pl.lit(dimension, dtype=DIMENSION).alias("dimension"),
            pl.col(dimension).cast(pl.String).cast(CATEGORY).alias("category"),
            pl.col("cases").fill_null(0).cast(pl.Int32),
            pl.col("persons").fill_null(0).cast(pl.Int32),
            pl.col("key_sum").fill_null(0).cast(pl.UInt32),
        )
    )
