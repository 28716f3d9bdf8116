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
case counted once under its first vulnerability in ``VULNERABILITY_PRIORITY``, and
only where no released group under the floor cell is thereby proven to hold between 1
and k−1 cases of a vulnerability category (a group is one more "dimension" of the
floor cell: group total + category count − floor total is a lower bound).

Everything downstream (map, exposure, exports) reads only the release file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pandas as pd
import polars as pl
import polars_h3

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

    def summary_lines(self) -> list[str]:
        """Return the policy and totals as short lines (only published figures)."""
        metadata = self.metadata
        policy, published = metadata["policy"], metadata["published"]
        dropped = metadata["dropped"]
        nationalities = ", ".join(policy["nationalities"]) if policy["nationalities"] else "all"
        by_res = ", ".join(
            f"res {r}: {n}"
            for r, n in sorted(published["groups_by_resolution"].items(), reverse=True)
        )
        rounding = f", rounded to {policy['round_to']}" if policy["round_to"] else ""
        return [
            f"policy: k={policy['k']} cases, base resolution {policy['base_resolution']}, "
            f"floor {policy['floor_resolution']}, consent {policy['consent_scope']!r}, "
            f"nationalities {nationalities}{rounding}",
            f"published: {published['groups']} groups ({by_res}), {published['cases']} cases, "
            f"{published['persons']} persons, {len(published['nationalities'])} nationalities",
            f"dropped (under k at the floor): {dropped['persons']} persons",
            "breakdowns available for: "
            + ", ".join(f"{d} {n} groups" for d, n in published["breakdown_groups"].items()),
            f"method {metadata['method_version']}, created {metadata['created_at']}, "
            f"sha256 {metadata.get('content_sha256', '')[:16]}…",
        ]


# ---------------------------------------------------------------------------------------
# Protection


def primary_vulnerability() -> pl.Expr:
    """Return the first vulnerability of a case in ``VULNERABILITY_PRIORITY``, or none."""
    primary = pl.lit("none")
    for name in reversed(VULNERABILITY_PRIORITY):
        bit = 1 << codes.VULNERABILITIES.index(name)
        primary = (
            pl.when((pl.col("vulnerabilities") & bit) != 0).then(pl.lit(name)).otherwise(primary)
        )
    return primary


def _cube(records: pl.DataFrame, policy: ReleasePolicy) -> pl.DataFrame:
    """Return records counted per (base cell, nationality, sex, age band, vulnerability).

    ``records`` has one row per registration, or a ``cases`` column saying how many
    registrations a row stands for (as the store hands them over, pre-aggregated).
    """
    cases = pl.col("cases").sum() if "cases" in records.columns else pl.len()
    # Categories as enums: every later grouping and join hashes small integers, not text.
    nationalities = pl.Enum(sorted(records["nationality"].unique().drop_nulls().to_list()))
    return (
        records.with_columns(
            polars_h3.cell_to_parent("cell", policy.base_resolution).alias("base_cell"),
            pl.col("nationality").cast(nationalities),
            pl.col("sex").cast(pl.Enum(codes.SEX_CATEGORIES)),
            pl.col("age_band").cast(pl.Enum(codes.AGE_BANDS)),
            primary_vulnerability()
            .cast(pl.Enum(BREAKDOWN_DIMENSIONS["vulnerability"]))
            .alias("vulnerability"),
        )
        .group_by("base_cell", "nationality", "sex", "age_band", "vulnerability")
        .agg(cases.cast(pl.Int64).alias("cases"), pl.col("persons").sum().cast(pl.Int64))
    )


def merge_rare_nationalities(records: pl.DataFrame, k: int) -> pl.DataFrame:
    """Return records with every nationality of fewer than k cases renamed ``OTH``."""
    cases = pl.col("cases").sum() if "cases" in records.columns else pl.len()
    counts = records.group_by("nationality").agg(cases.alias("n"))
    rare = counts.filter(pl.col("n") < k)["nationality"].to_list()
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
        pl.lit(dimension).alias("dimension"),
        pl.col(dimension).cast(pl.String).alias("category"),
        "cases",
        "persons",
    )


def _breakdown_rows(kept: pl.DataFrame, policy: ReleasePolicy) -> pl.DataFrame:
    """Return the sex and age-band rows per group and the vulnerability rows per floor cell."""
    k = policy.k
    group = ["published_cell", "published_res", "nationality"]
    # Count once per pair of dimensions; every margin and check below reads these
    # smaller tables instead of the full cube.
    by_sex_age = _counted(kept, [*group, "sex", "age_band"])
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
    floor = ["floor_cell", "nationality"]
    seconds = ("sex", "age_band", "published_cell")
    by_vulnerability = {s: _counted(kept, [*floor, "vulnerability", s]) for s in seconds}
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
                pl.lit(policy.floor_resolution),
            ),
        ]
    )


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
        Nationality, cell (H3 integer at a resolution ≥ the policy's base), sex,
        age_band, vulnerabilities (bit mask) and persons: one row per registration, or
        with a ``cases`` column when each row counts several (as the store hands them).
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
    audience_cases = int(records["cases"].sum()) if "cases" in records.columns else records.height
    audience_persons = int(records["persons"].sum() or 0)
    records = merge_rare_nationalities(records, k)
    cube = _cube(records, policy)
    base = (
        cube.group_by("base_cell", "nationality")
        .agg(pl.col("cases").sum(), pl.col("persons").sum())
        .with_columns(
            polars_h3.cell_to_parent("base_cell", res).alias(f"cell_{res}")
            for res in range(policy.base_resolution, policy.floor_resolution - 1, -1)
        )
    )
    base = _assign_published_cells(base, policy)
    dropped = base.filter(pl.col("published_res").is_null())
    placement = base.filter(pl.col("published_res").is_not_null()).select(
        "base_cell",
        "nationality",
        "published_cell",
        "published_res",
        pl.col(f"cell_{policy.floor_resolution}").alias("floor_cell"),
    )
    kept = cube.join(placement, on=["base_cell", "nationality"])
    groups = kept.group_by("published_cell", "published_res", "nationality").agg(
        pl.col("cases").sum(), pl.col("persons").sum()
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
    breakdown_frame = _to_pandas(_breakdown_rows(kept, policy))
    if policy.round_to:
        for frame in (group_frame, breakdown_frame):
            for column in ("cases", "persons"):
                frame[column] = _round(frame[column], policy.round_to, k)
            frame["persons"] = frame[["cases", "persons"]].max(axis=1)
    metadata = _metadata(
        policy, group_frame, breakdown_frame, audience_cases, audience_persons, dropped
    )
    return Release(groups=group_frame[GROUP_COLUMNS], breakdowns=breakdown_frame, metadata=metadata)


def _metadata(
    policy: ReleasePolicy,
    group_frame: pd.DataFrame,
    breakdown_frame: pd.DataFrame,
    audience_cases: int,
    audience_persons: int,
    dropped: pl.DataFrame,
) -> dict:
    """Return a release's metadata: format, method, policy and its totals."""
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
    return metadata


def _to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """Return a release frame in pandas with H3 cells as hex strings, sorted."""
    out = (
        frame.with_columns(
            polars_h3.int_to_str("cell").alias("h3_cell"),
            pl.selectors.by_dtype(pl.Enum).cast(pl.String),
        )
        .drop("cell")
        .to_pandas()
    )
    out["resolution"] = out["resolution"].astype("int8")
    for column in ("cases", "persons"):
        out[column] = out[column].astype("int64")
    keys = [c for c in ("h3_cell", "nationality", "dimension", "category") if c in out.columns]
    ordered = ["h3_cell", "resolution"] + [
        c for c in out.columns if c not in ("h3_cell", "resolution")
    ]
    return out[ordered].sort_values(keys, kind="stable").reset_index(drop=True)
