"""The invariants a release's method declares, checked on every read.

A release is trusted by people who never see the registry, so a reader refuses a file
that breaks what its method promises, whatever its hash says (a hash recomputed after an
edit proves nothing):

- the policy is a valid policy, the method one this library knows;
- every published group holds at least k cases and at least k persons; every count is
  non-negative and persons ≥ cases on every row;
- every cell is a valid H3 cell at the resolution the row states, between the floor
  and the base resolution (vulnerability rows at the floor);
- dimensions, categories and nationality codes come from the release vocabulary
  (ISO 3166-1 alpha-3 or OTH / XXA / XXX): no free text reaches a page or an export;
- the columns have their types (integer counts and resolution, string cells and codes)
  and no nulls (a null count compares false with every floor);
- no (cell, nationality, dimension, category) row appears twice, and the table's sums
  (groups, groups per resolution, cases, persons, nationalities, breakdown groups) equal
  the ``published`` totals the metadata states: those are sums of the published
  figures under every method (noise and rounding are applied before summing).
"""

from __future__ import annotations

import pandas as pd
import polars as pl
import polars_h3
import pyarrow as pa

from geo.errors import InputError
from geo.release import Release
from geo.rollup import BREAKDOWN_DIMENSIONS

NATIONALITY_PATTERN = r"[A-Z]{3}"
INTEGER_COLUMNS = ("resolution", "cases", "persons")
STRING_COLUMNS = ("h3_cell", "nationality", "dimension", "category")


def check_columns(arrow: pa.Table, name: str) -> None:
    """Refuse a release table whose columns have the wrong type or hold nulls.

    Checked on the Arrow table before it is split, since the hash (over the table as
    CSV) does not see a count column retyped to text.

    Raises
    ------
    InputError
        Naming the first column of the wrong type, or holding nulls.
    """
    for column in INTEGER_COLUMNS + STRING_COLUMNS:
        kind = arrow.schema.field(column).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        wanted = "integer" if column in INTEGER_COLUMNS else "string"
        if column in INTEGER_COLUMNS:
            right = pa.types.is_integer(kind)
        else:
            right = pa.types.is_string(kind) or pa.types.is_large_string(kind)
            right = right or pa.types.is_string_view(kind)
        if not right:
            raise InputError(f"{name}: column {column!r} is {kind}, not {wanted}.")
        if arrow[column].null_count:
            raise InputError(f"{name}: column {column!r} holds null values.")


def check_invariants(release: Release, name: str, table: pl.DataFrame) -> None:
    """Raise InputError naming the first invariant the release breaks (``name`` in messages).

    ``table`` is the release's published table in polars (the file's layout), its text
    as strings or categoricals: the checks run on it, not on the release's pandas frames.

    Raises
    ------
    InputError
        For a bad policy, a count under its floor, an invalid cell or resolution, or a
        value outside the release vocabulary.
    """
    try:
        policy = release.policy.checked()
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{name}: the release's policy is not valid ({exc}).") from exc
    if release.metadata.get("method", "exact") not in ("noise", "exact"):
        raise InputError(f"{name}: unknown protection method {release.metadata.get('method')!r}.")
    groups, rows = release.groups, release.breakdowns
    _check_counts(groups, name, "group", floor=policy.k)
    _check_counts(rows, name, "breakdown row", floor=0)
    # Checked in polars on the table as read (categorical text: codes, not strings, are
    # compared): the same checks in pandas took seconds on a national release's
    # millions of rows, paid before a dashboard draws its first map.
    totals = pl.col("dimension").cast(pl.String) == "total"
    frames = table.filter(totals), table.filter(~totals)
    _check_vocabulary(*frames, name)
    for frame, what in zip(frames, ("group", "breakdown row"), strict=True):
        _check_cells(frame, name, what, policy.floor_resolution, policy.base_resolution)
    vulnerability = frames[1].filter(pl.col("dimension") == "vulnerability")
    if (vulnerability["resolution"] != policy.floor_resolution).any():
        raise InputError(f"{name}: a vulnerability row is not at the floor resolution.")
    _check_duplicates(*frames, name)
    _check_published(*frames, release.metadata, name)
    if policy.method == "exact":
        _check_exact_breakdowns(groups, rows, name, rounded=bool(policy.round_to))


def _check_exact_breakdowns(
    groups: pd.DataFrame, rows: pd.DataFrame, name: str, rounded: bool
) -> None:
    """Refuse sex / age-band rows an exact release cannot hold.

    Under the exact method a shown breakdown belongs to a published group and, unless
    rounded, its categories add up to the group's cases and persons. (Noise, drawn per
    figure, legitimately breaks the sums, so a noisy release is not checked.)
    """
    keys = ["h3_cell", "nationality"]
    totals = groups.set_index(keys)[["cases", "persons"]]
    for dimension in ("sex", "age_band"):
        part = rows[rows["dimension"] == dimension]
        if part.empty:
            continue
        sums = part.groupby(keys)[["cases", "persons"]].sum()
        joined = sums.merge(
            totals, how="left", left_index=True, right_index=True, suffixes=("", "_group")
        )
        if joined["cases_group"].isna().any():
            raise InputError(f"{name}: a {dimension} breakdown has no published group.")
        if not rounded and (
            (joined["cases"] != joined["cases_group"]).any()
            or (joined["persons"] != joined["persons_group"]).any()
        ):
            raise InputError(
                f"{name}: a {dimension} breakdown does not add up to its group's exact counts."
            )


def _check_duplicates(groups: pl.DataFrame, rows: pl.DataFrame, name: str) -> None:
    """Refuse a (cell, nationality, dimension, category) that appears twice."""
    if _repeats(groups, ["h3_cell", "nationality"]):
        raise InputError(f"{name}: a group (cell, nationality) appears twice in the table.")
    if _repeats(rows, ["h3_cell", "nationality", "dimension", "category"]):
        raise InputError(f"{name}: a breakdown row appears twice in the table.")


def _repeats(frame: pl.DataFrame, keys: list[str]) -> bool:
    """Return whether a combination of ``keys`` appears twice in ``frame``.

    Rows with distinct 64-bit hashes are distinct, so the exact (slower, string-wise)
    count runs only when two hashes meet.
    """
    if frame.height < 2:
        return False
    # Categorical text is hashed by its codes (one code per value within a column).
    codes = [pl.col(k).to_physical() if frame.schema[k] == pl.Categorical else k for k in keys]
    if frame.select(pl.struct(codes).hash().n_unique()).item() == frame.height:
        return False
    return frame.select(keys).n_unique() != frame.height


def _check_published(groups: pl.DataFrame, rows: pl.DataFrame, metadata: dict, name: str) -> None:
    """Refuse a table whose sums differ from the ``published`` totals in its metadata."""
    published = metadata.get("published")
    if not isinstance(published, dict):
        raise InputError(f"{name}: the metadata has no published totals.")
    by_resolution = groups.group_by("resolution").len().sort("resolution")
    # Rows are unique (checked before), so a dimension's groups are its distinct
    # (cell, nationality) pairs.
    pair = pl.struct("h3_cell", "nationality")
    per_dimension = dict(
        rows.group_by("dimension").agg(pair.n_unique().alias("groups")).iter_rows()
    )
    found = {
        "groups": groups.height,
        "groups_by_resolution": {str(r): int(n) for r, n in by_resolution.iter_rows()},
        "cases": int(groups["cases"].sum()),
        "persons": int(groups["persons"].sum()),
        "nationalities": sorted(groups["nationality"].cast(pl.String).unique().to_list()),
        "breakdown_groups": {d: int(per_dimension.get(d, 0)) for d in BREAKDOWN_DIMENSIONS},
    }
    for key, value in found.items():
        stated = published.get(key)
        if stated == value:
            continue
        if isinstance(value, (list, dict)):
            raise InputError(
                f"{name}: the table's {key} differ from those its metadata publishes; "
                "the table or the metadata was altered."
            )
        raise InputError(
            f"{name}: the table holds {value} {key} but its metadata publishes {stated}; "
            "the table or the metadata was altered."
        )


def _check_counts(frame: pd.DataFrame, name: str, what: str, floor: int) -> None:
    """Refuse counts under their floor, negative counts, and fewer persons than cases."""
    small = frame[(frame["cases"] < floor) | (frame["persons"] < max(floor, 0))]
    if len(small):
        row = small.iloc[0]
        raise InputError(
            f"{name}: a {what} ({row['h3_cell']}, {row['nationality']}) publishes "
            f"{row['cases']} cases / {row['persons']} persons, under its floor of {floor}: "
            "not a protected release."
        )
    if (frame["persons"] < frame["cases"]).any():
        raise InputError(f"{name}: a {what} publishes fewer persons than cases.")


def _check_vocabulary(groups: pl.DataFrame, rows: pl.DataFrame, name: str) -> None:
    """Refuse nationality codes, dimensions and categories outside the release vocabulary."""
    for frame in (groups, rows):
        codes = frame["nationality"].unique().cast(pl.String)
        if not codes.str.contains(rf"\A{NATIONALITY_PATTERN}\z").all():
            raise InputError(f"{name}: a nationality is not a three-letter code.")
    pairs = rows.select("dimension", "category").unique().cast(pl.String)
    for dimension, categories in BREAKDOWN_DIMENSIONS.items():
        found = set(pairs.filter(pl.col("dimension") == dimension)["category"].to_list())
        if not found <= set(categories):
            raise InputError(f"{name}: unknown {dimension} categories in the release.")
    if not set(pairs["dimension"].to_list()) <= set(BREAKDOWN_DIMENSIONS):
        raise InputError(f"{name}: unknown breakdown dimensions in the release.")


def _check_cells(frame: pl.DataFrame, name: str, what: str, floor: int, base: int) -> None:
    """Refuse invalid cells, cells whose resolution is not the row's, or out of range."""
    if frame.is_empty():
        return
    # Each distinct (cell, resolution) once: a cell repeats over its nationalities and
    # breakdown rows.
    checked = frame.select("h3_cell", "resolution").unique().cast({"h3_cell": pl.String})
    checked = checked.select(
        polars_h3.is_valid_cell("h3_cell").alias("valid"),
        polars_h3.get_resolution("h3_cell").alias("found"),
        pl.col("resolution").alias("stated"),
    )
    if not checked["valid"].all():
        raise InputError(f"{name}: a {what} has an invalid H3 cell.")
    if (checked["found"] != checked["stated"]).any():
        raise InputError(f"{name}: a {what}'s cell is not at the resolution it states.")
    stated = checked["stated"]
    if ((stated < floor) | (stated > base)).any():
        raise InputError(f"{name}: a {what} lies outside the release's resolutions {floor}–{base}.")
