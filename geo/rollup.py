"""Where each (cell, nationality) group is published: threshold k and the H3 roll-up.

A (cell, nationality) group is published only with at least k cases. A smaller group
rolls up into its H3 parent (always ``cell_to_parent`` of the base cell, never
re-binned), joining the other unpublished groups under that parent, and so on up to the
floor resolution; what is still under k at the floor is dropped. A rolled-up residual is
published only where it cannot be pinned to its few possible child cells: with n
children that can still hide someone, only when k ≤ cases ≤ (n − 1)(k − 1).
Nationalities with fewer than k cases in the whole release become ``OTH``. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import polars_h3

from geo import codes
from geo.noise import KEY_MODULUS

VULNERABILITY_PRIORITY = (
    "unaccompanied_minor",
    "disability",
    "medical",
    "pregnant",
    "older_person_alone",
    "other",
)
BREAKDOWN_DIMENSIONS = {
    "sex": codes.SEX_CATEGORIES,
    "age_band": codes.AGE_BANDS,
    "vulnerability": ("none",) + VULNERABILITY_PRIORITY,
}


def primary_vulnerability() -> pl.Expr:
    """Return the first vulnerability of a case in ``VULNERABILITY_PRIORITY``, or none."""
    primary = pl.lit("none")
    for name in reversed(VULNERABILITY_PRIORITY):
        bit = 1 << codes.VULNERABILITIES.index(name)
        primary = (
            pl.when((pl.col("vulnerabilities") & bit) != 0).then(pl.lit(name)).otherwise(primary)
        )
    return primary


def cube_of(records: pl.DataFrame, base_resolution: int) -> pl.DataFrame:
    """Return records counted per (base cell, nationality, sex, age band, vulnerability).

    ``records`` has one row per registration, or a ``cases`` column saying how many
    registrations a row stands for (as the store hands them over, pre-aggregated).
    """
    cases = pl.col("cases").sum() if "cases" in records.columns else pl.len()
    if "key_sum" not in records.columns:  # records built in code: keys from their position
        records = records.with_row_index("key_sum").with_columns(
            (pl.col("key_sum").cast(pl.UInt64) * 2654435761 % KEY_MODULUS).cast(pl.Int64)
        )
    # Categories as enums: every later grouping and join hashes small integers, not text.
    nationalities = pl.Enum(sorted(records["nationality"].unique().drop_nulls().to_list()))
    return (
        records.with_columns(
            polars_h3.cell_to_parent("cell", base_resolution).alias("base_cell"),
            pl.col("nationality").cast(nationalities),
            pl.col("sex").cast(pl.Enum(codes.SEX_CATEGORIES)),
            pl.col("age_band").cast(pl.Enum(codes.AGE_BANDS)),
            primary_vulnerability()
            .cast(pl.Enum(BREAKDOWN_DIMENSIONS["vulnerability"]))
            .alias("vulnerability"),
        )
        .group_by("base_cell", "nationality", "sex", "age_band", "vulnerability")
        .agg(
            cases.cast(pl.Int64).alias("cases"),
            pl.col("persons").sum().cast(pl.Int64),
            (pl.col("key_sum").cast(pl.Int64).sum() % KEY_MODULUS).alias("key_sum"),
        )
    )


def primary_vulnerability_sql(column: str = "vulnerabilities") -> str:
    """Return SQL for :func:`primary_vulnerability` of a bit-mask column (the same rule)."""
    cases = " ".join(
        f"WHEN ({column} & {1 << codes.VULNERABILITIES.index(name)}) != 0 THEN '{name}'"
        for name in VULNERABILITY_PRIORITY
    )
    return f"CASE {cases} ELSE 'none' END"


def merge_rare_nationalities(records: pl.DataFrame, k: int) -> pl.DataFrame:
    """Return records with every nationality of fewer than k cases renamed ``OTH``."""
    cases = pl.col("cases").sum() if "cases" in records.columns else pl.len()
    counts = records.group_by("nationality").agg(cases.alias("n"))
    rare = counts.filter(pl.col("n") < k)["nationality"].to_list()
    return rename_nationalities(records, rare)


def rename_nationalities(records: pl.DataFrame, rare: Sequence[str]) -> pl.DataFrame:
    """Return records with the ``rare`` nationalities renamed ``OTH``."""
    return records.with_columns(
        pl.when(pl.col("nationality").is_in(list(rare)))
        .then(pl.lit(codes.OTHER_NATIONALITIES))
        .otherwise(pl.col("nationality"))
        .alias("nationality")
    )


def assign_published_cells(
    base: pl.DataFrame, base_resolution: int, floor_resolution: int, k: int
) -> pl.DataFrame:
    """Walk from the base resolution to the floor, deciding where each base group lands.

    ``base`` has one row per (base cell, nationality) with ``cases``; each level's
    parent cells are computed from ``base_cell`` when needed (kept as columns, the four
    levels took 146 MB at 100M registrations). Returns it with ``published_cell`` and
    ``published_res`` (null where the group is dropped).

    A residual at resolution r is published when ``residual_is_safe`` holds, counting
    as possible hiding places only the children that still have a base cell not
    accounted for by a published group (a child whose every base cell lies under a
    published group adds nothing to the residual, and the attacker knows it).

    The walk runs on the unpublished groups of each level, which shrink as it climbs;
    ``base`` is read once at the end to place its rows (the roll-up's joins used to copy
    the whole base table at every level: 1.2 GB at 10M registrations).
    """
    cell = f"cell_{base_resolution}"
    # Group-bys on the streaming engine: the in-memory one's hash tables took 450 MB
    # for the 2M base groups of 10M registrations, the streaming one 130 MB.
    level = _collected(
        base.lazy()
        .group_by(pl.col("base_cell").alias(cell), "nationality")
        .agg(pl.col("cases").sum())
    )
    chosen_at: dict[int, pl.DataFrame] = {}
    covered: pl.DataFrame | None = None  # (cell at res+1, nationality, covered, full)
    for res in range(base_resolution, floor_resolution - 1, -1):
        cell = f"cell_{res}"
        level = publish_flags(level, covered, res, k)
        chosen = level.filter("publish").select(cell, "nationality", pl.lit(True).alias("hit"))
        chosen_at[res] = chosen
        if res > floor_resolution:
            covered = _coverage_at(covered, chosen, cell, res, base_resolution)
            # The unpublished groups of this level, counted under their parents.
            parent = f"cell_{res - 1}"
            level = _collected(
                level.lazy()
                .filter(~pl.col("publish"))
                .group_by(polars_h3.cell_to_parent(cell, res - 1).alias(parent), "nationality")
                .agg(pl.col("cases").sum())
            )
    return base.with_columns(_placed_at(base, chosen_at))


def publish_flags(
    level: pl.DataFrame, covered: pl.DataFrame | None, res: int, k: int
) -> pl.DataFrame:
    """Return a level's (cell, nationality) cases with ``publish``: the group is released here.

    At the base level a group publishes with at least ``k`` cases. Above it, also with at
    most (live children − 1)·(k − 1) cases, where a child is dead when ``covered`` (the
    finer level's coverage) says it is wholly published: otherwise the group minus its
    published children would give a small remainder away.
    """
    cell = f"cell_{res}"
    if covered is None:
        return level.with_columns((pl.col("cases") >= k).alias("publish"))
    dead = (
        covered.filter(pl.col("covered") >= pl.col("full"))
        .with_columns(polars_h3.cell_to_parent(f"cell_{res + 1}", res).alias(cell))
        .group_by(cell, "nationality")
        .agg(pl.len().cast(pl.Int64).alias("dead_children"))
    )
    live = pl.col("n_children") - pl.col("dead_children").fill_null(0)
    return (
        level.with_columns(
            polars_h3.cell_to_children_size(cell, res + 1).cast(pl.Int64).alias("n_children")
        )
        .join(dead, on=[cell, "nationality"], how="left")
        .with_columns(
            ((pl.col("cases") >= k) & (pl.col("cases") <= (live - 1) * (k - 1))).alias("publish")
        )
    )


def _collected(query: pl.LazyFrame) -> pl.DataFrame:
    """Return a query's result computed on polars' streaming engine (lighter group-bys)."""
    return query.collect(engine="streaming")


def _placed_at(base: pl.DataFrame, chosen_at: dict[int, pl.DataFrame]) -> list[pl.Series]:
    """Return ``published_cell`` and ``published_res`` of each base row (the finest hit).

    A row's (cell, nationality) at each level is packed into one integer (the
    nationality's code in the cell's unused digit bits) and looked up in that level's
    published groups: a mask per level, no join copying the base table.
    """
    nationality = base["nationality"]
    if not isinstance(nationality.dtype, pl.Enum):
        nationality = nationality.cast(pl.Enum(sorted(nationality.unique().drop_nulls())))
    codes_of = nationality.dtype
    placed = pl.DataFrame(
        {
            "published_cell": pl.repeat(None, base.height, dtype=pl.UInt64, eager=True),
            "published_res": pl.repeat(None, base.height, dtype=pl.Int8, eager=True),
        }
    )
    for res, chosen in chosen_at.items():  # finest first: a row lands at its finest hit
        cell = base.select(polars_h3.cell_to_parent("base_cell", res)).to_series()
        unused = (1 << (3 * (15 - res))) - 1
        if len(codes_of.categories) > unused:
            raise ValueError(f"too many nationalities to place at resolution {res}")
        code = pl.col("nationality").cast(codes_of).to_physical().cast(pl.UInt64)
        key = (pl.col("cell").cast(pl.UInt64) & ~pl.lit(unused, dtype=pl.UInt64)) | code
        chosen_keys = chosen.rename({f"cell_{res}": "cell"}).select(key)
        keys = pl.DataFrame({"cell": cell, "nationality": nationality}).select(key)
        new = (
            keys.to_series().is_in(chosen_keys.to_series().implode())
            & placed["published_res"].is_null()
        )
        placed = placed.with_columns(
            pl.when(new).then(cell).otherwise("published_cell").alias("published_cell"),
            pl.when(new)
            .then(pl.lit(res, dtype=pl.Int8))
            .otherwise("published_res")
            .alias("published_res"),
        )
    return placed.get_columns()


def _coverage_at(
    below: pl.DataFrame | None, chosen: pl.DataFrame, cell: str, res: int, base_res: int
) -> pl.DataFrame:
    """Return, per (cell at ``res``, nationality), how many base cells are accounted for.

    A base cell is accounted for once it lies under a published group. ``below`` holds
    the same for resolution res+1; ``chosen`` the groups published at ``res``, which
    account for all their base cells. ``full`` is the number of base cells under a cell.
    """
    full = polars_h3.cell_to_children_size(cell, base_res).cast(pl.Int64)
    parts = [chosen.select(cell, "nationality", full.alias("covered"))]
    if below is not None:
        parts.append(
            below.with_columns(polars_h3.cell_to_parent(f"cell_{res + 1}", res).alias(cell))
            .join(chosen.select(cell, "nationality"), on=[cell, "nationality"], how="anti")
            .group_by(cell, "nationality")
            .agg(pl.col("covered").sum())
        )
    return pl.concat(parts).with_columns(full.alias("full"))
