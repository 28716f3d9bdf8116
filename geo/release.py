"""Turn the steward store into a protected release: threshold, roll-up, breakdowns.

The privacy unit is the registration (case). A (cell, nationality) group is published
only with at least k cases. A smaller group rolls up into its H3 parent (always
``cell_to_parent`` of the base cell, never re-binned), joining the other unpublished
groups under that parent, and so on up to the floor resolution; what is still under k
at the floor is dropped and reported only as a release-level total. A rolled-up residual
is published only where it cannot be pinned to its few possible child cells (see
``residual_is_safe``). Nationalities with fewer than k cases in the whole release
become ``OTH``.

Breakdowns (sex, age band) are published for a group only when every non-zero category
has at least k cases and no pair of categories of two published dimensions pins a
cross-cell between 1 and k−1; vulnerabilities only at the floor resolution, with each
case counted once under its first vulnerability in ``VULNERABILITY_PRIORITY``.

Everything downstream (map, exposure, exports) reads only the release file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import polars as pl
import polars_h3
import pyarrow as pa
import pyarrow.parquet as pq

from geo import codes
from geo.errors import InputError

RELEASE_FORMAT = "crisis-exposure-release"
METHOD_VERSION = "1.0"
METADATA_KEY = b"crisis_exposure"
MAX_BASE_RESOLUTION = 8

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
GROUP_COLUMNS = ["h3_cell", "resolution", "nationality", "cases", "persons"]
TABLE_COLUMNS = [
    "h3_cell",
    "resolution",
    "nationality",
    "dimension",
    "category",
    "cases",
    "persons",
]


@dataclass(frozen=True)
class ReleasePolicy:
    """Who the release is for and how it protects small counts."""

    base_resolution: int = 7
    floor_resolution: int = 4
    k: int = 10
    nationalities: tuple[str, ...] | None = None
    consent_scope: str = "aggregate"
    round_to: int | None = None

    def checked(self) -> ReleasePolicy:
        """Return the policy with nationalities normalised, after checking it.

        Raises
        ------
        InputError
            For resolutions out of order or range, k < 2, a bad rounding base, an
            unknown nationality or consent scope.
        """
        if not 0 <= self.floor_resolution <= self.base_resolution <= MAX_BASE_RESOLUTION:
            raise InputError(
                f"resolutions must satisfy 0 ≤ floor ({self.floor_resolution}) ≤ base "
                f"({self.base_resolution}) ≤ {MAX_BASE_RESOLUTION} (the store's resolution)."
            )
        if self.k < 2:
            raise InputError(f"k must be at least 2 (got {self.k}).")
        if self.round_to is not None and self.round_to < 1:
            raise InputError(f"the rounding base must be a positive integer (got {self.round_to}).")
        if self.consent_scope not in codes.CONSENT_SCOPES:
            raise InputError(
                f"unknown consent scope {self.consent_scope!r}; use one of "
                f"{', '.join(codes.CONSENT_SCOPES)}."
            )
        nationalities = None
        if self.nationalities:
            nationalities = []
            for value in self.nationalities:
                code = codes.nationality_to_iso3(value)
                if code is None:
                    raise InputError(f"unknown nationality {value!r} in the policy.")
                nationalities.append(code)
            nationalities = tuple(sorted(set(nationalities)))
        return ReleasePolicy(
            self.base_resolution,
            self.floor_resolution,
            self.k,
            nationalities,
            self.consent_scope,
            self.round_to,
        )


@dataclass
class Release:
    """A protected release: published groups, breakdowns and metadata."""

    groups: pd.DataFrame
    breakdowns: pd.DataFrame
    metadata: dict = field(default_factory=dict)

    @property
    def policy(self) -> ReleasePolicy:
        """Return the policy the release was made with."""
        raw = dict(self.metadata["policy"])
        if raw.get("nationalities") is not None:
            raw["nationalities"] = tuple(raw["nationalities"])
        return ReleasePolicy(**raw)

    @property
    def k(self) -> int:
        """Return the threshold k of the release."""
        return int(self.metadata["policy"]["k"])

    def table(self) -> pd.DataFrame:
        """Return groups and breakdowns as one long table (the file's layout), sorted."""
        totals = self.groups.assign(dimension="total", category="")
        table = pd.concat([totals[TABLE_COLUMNS], self.breakdowns[TABLE_COLUMNS]])
        return table.sort_values(TABLE_COLUMNS[:5], kind="stable").reset_index(drop=True)

    def breakdown(self, dimension: str) -> pd.DataFrame:
        """Return one breakdown dimension's rows (absent groups: not available)."""
        rows = self.breakdowns[self.breakdowns["dimension"] == dimension]
        return rows.drop(columns="dimension").reset_index(drop=True)


# ---------------------------------------------------------------------------------------
# Protection


def residual_is_safe(cases: int, unpublished_children: int, k: int) -> bool:
    """Return whether a rolled-up residual may be published.

    An attacker knows each of the parent's unpublished children holds between 0 and
    k−1 cases. If the residual exceeds what all but one child can hold, that child
    is proven non-empty (an existence disclosure) and possibly pinned. Publishing
    is safe when ``cases ≤ (unpublished_children − 1) × (k − 1)``.
    """
    return k <= cases <= (unpublished_children - 1) * (k - 1)


def _with_categories(records: pl.DataFrame) -> pl.DataFrame:
    """Add one 0/1 column per breakdown category (cases) for summing."""
    priority = [1 << codes.VULNERABILITIES.index(v) for v in VULNERABILITY_PRIORITY]
    primary = pl.lit("none")
    for name, bit in reversed(list(zip(VULNERABILITY_PRIORITY, priority, strict=True))):
        primary = (
            pl.when((pl.col("vulnerabilities") & bit) != 0).then(pl.lit(name)).otherwise(primary)
        )
    records = records.with_columns(primary.alias("vulnerability"))
    columns = []
    for dimension, categories in BREAKDOWN_DIMENSIONS.items():
        for category in categories:
            hit = (pl.col(dimension) == category).cast(pl.Int64)
            columns.append(hit.alias(f"c|{dimension}|{category}"))
            columns.append((hit * pl.col("persons")).alias(f"p|{dimension}|{category}"))
    return records.with_columns(columns)


def _cross_columns(records: pl.DataFrame) -> pl.DataFrame:
    """Add 0/1 columns for sex × age and vulnerability × (sex, age) cross-cells."""
    columns = []
    pairs = [("sex", "age_band"), ("vulnerability", "sex"), ("vulnerability", "age_band")]
    for first, second in pairs:
        for a in BREAKDOWN_DIMENSIONS[first]:
            for b in BREAKDOWN_DIMENSIONS[second]:
                hit = (pl.col(first) == a) & (pl.col(second) == b)
                columns.append(hit.cast(pl.Int64).alias(f"x|{first}|{a}|{second}|{b}"))
    return records.with_columns(columns)


def merge_rare_nationalities(records: pl.DataFrame, k: int) -> pl.DataFrame:
    """Return records with every nationality of fewer than k cases renamed ``OTH``."""
    counts = records.group_by("nationality").len()
    rare = counts.filter(pl.col("len") < k)["nationality"].to_list()
    return records.with_columns(
        pl.when(pl.col("nationality").is_in(rare))
        .then(pl.lit(codes.OTHER_NATIONALITIES))
        .otherwise(pl.col("nationality"))
        .alias("nationality")
    )


def _assign_published_cells(base: pl.DataFrame, policy: ReleasePolicy) -> pl.DataFrame:
    """Walk from the base resolution to the floor, deciding where each base group lands.

    ``base`` has one row per (base cell, nationality) with ``cases`` and the parent
    columns ``cell_r`` for every resolution r. Returns it with ``published_cell`` and
    ``published_res`` (null where the group is dropped).

    A residual at resolution r is published when ``residual_is_safe`` holds, counting
    as possible hiding places only the children that still have a base cell not
    accounted for by a published group (a child whose every base cell lies under a
    published group adds nothing to the residual, and the attacker knows it).
    """
    k = policy.k
    base = base.with_columns(
        pl.lit(None, dtype=pl.UInt64).alias("published_cell"),
        pl.lit(None, dtype=pl.Int8).alias("published_res"),
    )
    covered: pl.DataFrame | None = None  # (cell at res+1, nationality, covered, full)
    for res in range(policy.base_resolution, policy.floor_resolution - 1, -1):
        cell = f"cell_{res}"
        pending = base.filter(pl.col("published_res").is_null())
        level = pending.group_by(cell, "nationality").agg(pl.col("cases").sum())
        if covered is None:
            level = level.with_columns((pl.col("cases") >= k).alias("publish"))
        else:
            dead = (
                covered.filter(pl.col("covered") >= pl.col("full"))
                .with_columns(polars_h3.cell_to_parent(f"cell_{res + 1}", res).alias(cell))
                .group_by(cell, "nationality")
                .agg(pl.len().cast(pl.Int64).alias("dead_children"))
            )
            live = pl.col("n_children") - pl.col("dead_children").fill_null(0)
            level = (
                level.with_columns(
                    polars_h3.cell_to_children_size(cell, res + 1)
                    .cast(pl.Int64)
                    .alias("n_children")
                )
                .join(dead, on=[cell, "nationality"], how="left")
                .with_columns(
                    ((pl.col("cases") >= k) & (pl.col("cases") <= (live - 1) * (k - 1))).alias(
                        "publish"
                    )
                )
            )
        chosen = level.filter("publish").select(cell, "nationality", pl.lit(True).alias("hit"))
        base = (
            base.join(chosen, on=[cell, "nationality"], how="left")
            .with_columns(
                pl.when(pl.col("hit") & pl.col("published_res").is_null())
                .then(pl.col(cell))
                .otherwise(pl.col("published_cell"))
                .alias("published_cell"),
                pl.when(pl.col("hit") & pl.col("published_res").is_null())
                .then(pl.lit(res, dtype=pl.Int8))
                .otherwise(pl.col("published_res"))
                .alias("published_res"),
            )
            .drop("hit")
        )
        if res > policy.floor_resolution:
            covered = _coverage_at(covered, chosen, cell, res, policy.base_resolution)
    return base


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


def _available(frame: pl.DataFrame, dimension: str, k: int) -> pl.Expr:
    """Return an expression: every non-zero category of ``dimension`` has ≥ k cases."""
    checks = [
        (pl.col(f"c|{dimension}|{c}") == 0) | (pl.col(f"c|{dimension}|{c}") >= k)
        for c in BREAKDOWN_DIMENSIONS[dimension]
    ]
    return pl.all_horizontal(checks)


def _no_pinned_cross(first: str, second: str, k: int) -> pl.Expr:
    """Return an expression: no cross-cell of two dimensions is provably 1..k−1.

    From two published marginals an attacker proves a cross-cell holds at least
    ``n_a + n_b − total``. Where that bound is ≥ 1, the true cross count must be ≥ k.
    """
    checks = []
    for a in BREAKDOWN_DIMENSIONS[first]:
        for b in BREAKDOWN_DIMENSIONS[second]:
            bound = pl.col(f"c|{first}|{a}") + pl.col(f"c|{second}|{b}") - pl.col("cases")
            cross = pl.col(f"x|{first}|{a}|{second}|{b}")
            checks.append((bound < 1) | (cross == 0) | (cross >= k))
    return pl.all_horizontal(checks)


def _breakdown_rows(
    frame: pl.DataFrame, dimension: str, available: pl.Expr, cell: str, res: pl.Expr
) -> pl.DataFrame:
    """Return long breakdown rows for the units where ``available`` holds (non-zero only)."""
    rows = []
    for category in BREAKDOWN_DIMENSIONS[dimension]:
        rows.append(
            frame.filter(available & (pl.col(f"c|{dimension}|{category}") > 0)).select(
                pl.col(cell).alias("cell"),
                res.cast(pl.Int8).alias("resolution"),
                "nationality",
                pl.lit(dimension).alias("dimension"),
                pl.lit(category).alias("category"),
                pl.col(f"c|{dimension}|{category}").alias("cases"),
                pl.col(f"p|{dimension}|{category}").alias("persons"),
            )
        )
    return pl.concat(rows)


def _round(values: pd.Series, base: int, k: int) -> pd.Series:
    """Round counts to a multiple of ``base``; a non-zero count never falls below k."""
    rounded = (values / base + 0.5).astype("int64") * base
    floor = -(-k // base) * base
    return rounded.where(values == 0, rounded.clip(lower=floor))


def protect(records: pl.DataFrame, policy: ReleasePolicy) -> Release:
    """Protect an audience's records under a policy (pure: no I/O).

    Parameters
    ----------
    records
        One row per registration: nationality, cell (H3 integer at a resolution ≥ the
        policy's base), sex, age_band, vulnerabilities (bit mask), persons.
    policy
        The release policy.

    Returns
    -------
    Release
        Groups, breakdowns and the counting metadata (no source information).
    """
    policy = policy.checked()
    k = policy.k
    if policy.nationalities:
        records = records.filter(pl.col("nationality").is_in(list(policy.nationalities)))
    audience_cases, audience_persons = records.height, int(records["persons"].sum() or 0)
    records = merge_rare_nationalities(records, k)
    parents = [
        polars_h3.cell_to_parent("cell", res).alias(f"cell_{res}")
        for res in range(policy.base_resolution, policy.floor_resolution - 1, -1)
    ]
    records = _cross_columns(_with_categories(records.with_columns(parents)))
    sums = [c for c in records.columns if c[:2] in ("c|", "p|", "x|")]
    cell_columns = [
        f"cell_{r}" for r in range(policy.base_resolution, policy.floor_resolution - 1, -1)
    ]
    base = records.group_by(cell_columns + ["nationality"]).agg(
        pl.len().cast(pl.Int64).alias("cases"),
        pl.col("persons").sum(),
        *[pl.col(c).sum() for c in sums],
    )
    base = _assign_published_cells(base, policy)
    kept = base.filter(pl.col("published_res").is_not_null())
    dropped = base.filter(pl.col("published_res").is_null())
    groups = kept.group_by("published_cell", "published_res", "nationality").agg(
        pl.col("cases").sum(), pl.col("persons").sum(), *[pl.col(c).sum() for c in sums]
    )
    sex_ok = _available(groups, "sex", k)
    age_ok = _available(groups, "age_band", k) & (~sex_ok | _no_pinned_cross("sex", "age_band", k))
    breakdowns = [
        _breakdown_rows(groups, "sex", sex_ok, "published_cell", pl.col("published_res")),
        _breakdown_rows(groups, "age_band", age_ok, "published_cell", pl.col("published_res")),
    ]
    floor_cell = f"cell_{policy.floor_resolution}"
    floors = kept.group_by(floor_cell, "nationality").agg(
        pl.col("cases").sum(), *[pl.col(c).sum() for c in sums]
    )
    vulnerability_ok = (
        _available(floors, "vulnerability", k)
        & _no_pinned_cross("vulnerability", "sex", k)
        & _no_pinned_cross("vulnerability", "age_band", k)
    )
    breakdowns.append(
        _breakdown_rows(
            floors, "vulnerability", vulnerability_ok, floor_cell, pl.lit(policy.floor_resolution)
        )
    )
    group_frame = _to_pandas(
        groups.select(
            pl.col("published_cell").alias("cell"),
            pl.col("published_res").alias("resolution"),
            "nationality",
            "cases",
            "persons",
        )
    )
    breakdown_frame = _to_pandas(pl.concat(breakdowns))
    if policy.round_to:
        for frame in (group_frame, breakdown_frame):
            for column in ("cases", "persons"):
                frame[column] = _round(frame[column], policy.round_to, k)
            frame["persons"] = frame[["cases", "persons"]].max(axis=1)
    by_resolution = group_frame.groupby("resolution")["cases"].size()
    metadata = {
        "format": RELEASE_FORMAT,
        "method_version": METHOD_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "policy": asdict(policy),
        "audience": {"cases": audience_cases, "persons": audience_persons},
        "published": {
            "groups": int(len(group_frame)),
            "groups_by_resolution": {str(r): int(n) for r, n in by_resolution.items()},
            "cases": int(group_frame["cases"].sum()),
            "persons": int(group_frame["persons"].sum()),
            "nationalities": sorted(group_frame["nationality"].unique().tolist()),
            "breakdown_groups": {
                d: int(
                    len(
                        breakdown_frame[breakdown_frame["dimension"] == d].drop_duplicates(
                            ["h3_cell", "nationality"]
                        )
                    )
                )
                for d in BREAKDOWN_DIMENSIONS
            },
        },
        "dropped": {
            "cases": int(dropped["cases"].sum() or 0),
            "persons": int(dropped["persons"].sum() or 0),
        },
    }
    if policy.round_to:
        for section in ("published", "dropped"):
            for column in ("cases", "persons"):
                value = metadata[section][column]
                metadata[section][column] = int(_round(pd.Series([value]), policy.round_to, 1)[0])
    return Release(groups=group_frame[GROUP_COLUMNS], breakdowns=breakdown_frame, metadata=metadata)


def _to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """Return a release frame in pandas with H3 cells as hex strings, sorted."""
    out = frame.with_columns(polars_h3.int_to_str("cell").alias("h3_cell")).drop("cell").to_pandas()
    out["resolution"] = out["resolution"].astype("int8")
    for column in ("cases", "persons"):
        out[column] = out[column].astype("int64")
    keys = [c for c in ("h3_cell", "nationality", "dimension", "category") if c in out.columns]
    ordered = ["h3_cell", "resolution"] + [
        c for c in out.columns if c not in ("h3_cell", "resolution")
    ]
    return out[ordered].sort_values(keys, kind="stable").reset_index(drop=True)


def build_release(store_path: str | Path, policy: ReleasePolicy) -> Release:
    """Make a release from a store under a policy.

    Returns
    -------
    Release
        With the store's ingests (file names and hashes) recorded in the metadata.

    Raises
    ------
    InputError
        For a bad policy or a missing store, or when the audience is empty.
    """
    from geo import store

    policy = policy.checked()
    con = store.connect(store_path, read_only=True)
    try:
        records = store.audience_records(con, policy.consent_scope, policy.nationalities)
        summary = store.store_summary(con)
    finally:
        con.close()
    if records.height == 0:
        raise InputError(
            f"{Path(store_path).name}: no stored registration matches the audience "
            f"(consent {policy.consent_scope!r}, nationalities "
            f"{', '.join(policy.nationalities) if policy.nationalities else 'all'})."
        )
    release = protect(records, policy)
    release.metadata["source"] = {
        "store_records": summary["records"],
        "store_persons": summary["persons"],
        "ingests": summary["ingests"],
    }
    return release


# ---------------------------------------------------------------------------------------
# The release file


def _content_sha256(table: pd.DataFrame) -> str:
    """Return the SHA-256 of the sorted table written as CSV (stable across writers)."""
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, lineterminator="\n")
    return hashlib.sha256(buffer.getvalue().encode()).hexdigest()


def write_release(release: Release, path: str | Path) -> Path:
    """Write a release as one Parquet file with its metadata, atomically.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    table = release.table()
    release.metadata["content_sha256"] = _content_sha256(table)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({METADATA_KEY: json.dumps(release.metadata).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    pq.write_table(arrow, temporary)
    os.replace(temporary, path)
    return path


def read_release(path: str | Path) -> Release:
    """Read a release file and check its content hash.

    Returns
    -------
    Release

    Raises
    ------
    InputError
        If the file is missing, not a release, or its content does not match its hash.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such release file.")
    try:
        arrow = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path.name}: not a release file (not Parquet: {exc}).") from exc
    raw = (arrow.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise InputError(f"{path.name}: a Parquet file but not a crisis-exposure release.")
    metadata = json.loads(raw)
    table = arrow.to_pandas()
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if metadata.get("format") != RELEASE_FORMAT or missing:
        raise InputError(f"{path.name}: not a crisis-exposure release (columns {missing}).")
    table = table[TABLE_COLUMNS]
    table["resolution"] = table["resolution"].astype("int8")
    if _content_sha256(table) != metadata.get("content_sha256"):
        raise InputError(
            f"{path.name}: the release content does not match its hash; the file was altered."
        )
    totals = table["dimension"] == "total"
    groups = table[totals][GROUP_COLUMNS].reset_index(drop=True)
    breakdowns = table[~totals].reset_index(drop=True)
    return Release(groups=groups, breakdowns=breakdowns, metadata=metadata)
