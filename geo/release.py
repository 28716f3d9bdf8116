"""Turn an audience's records into a protected release: the policy, the types, ``protect``.

The privacy unit is the registration (case). Where each (cell, nationality) group is
published (threshold k, H3 roll-up up to the floor, ``OTH`` for rare nationalities) is
decided by :mod:`geo.rollup`, on true counts. What the published numbers are depends on
the policy's method:

- **noise** (method 2, the default): every published figure (a group's cases and
  persons, every category of its sex and age-band breakdowns, every vulnerability
  category of a floor cell, the dropped total) carries keyed discrete-Laplace noise of
  scale ``noise_scale`` (:mod:`geo.noise`): the same records always give the same
  value, a change of records gives fresh noise, and no combination of releases proves
  an interval about a small count. Groups show at least k, categories at least 0.
  Breakdowns are complete (nothing is withheld, so withholding says nothing).
- **exact** (method 1, ``noise_scale=0``): the true counts, optionally rounded, with the
  withholding rules of :mod:`geo.breakdowns`. Safe for one release seen alone only;
  kept for comparison and for tests of the roll-up rules.

Everything downstream (map, exposure, exports) reads only the release.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import polars as pl
import polars_h3

from geo import codes
from geo.breakdowns import (
    EXACT_GROUPINGS,
    NOISE_GROUPINGS,
    all_category_rows,
    exact_breakdown_rows,
)
from geo.counting import PLACEMENT, AudienceCounts, FrameCounts
from geo.errors import InputError
from geo.freshness import BLOCK_KEY, checked_basis, parse_day
from geo.noise import KEY_MODULUS, figure_noise, text_code
from geo.release_frames import BreakdownParts, categorical_frame, sorted_frame, text_frame
from geo.rollup import BREAKDOWN_DIMENSIONS, assign_published_cells

RELEASE_FORMAT = "crisis-exposure-release"
METHOD_VERSION = "2.0"  # keyed noise; "1.0" releases are exact
METADATA_KEY = b"crisis_exposure"
MAX_BASE_RESOLUTION = 8

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
    noise_scale: float | None = None  # None: k / 3; 0: no noise (method 1, exact)
    as_of: str | None = None  # YYYY-MM-DD: only what is still believed true then
    confirmed_within: int | None = None  # days before as_of (geo.freshness)
    legal_basis: str = "consent"  # or "other": every record counts, basis_note says why
    basis_note: str | None = None

    @property
    def method(self) -> str:
        """Return ``noise`` or ``exact`` (a checked policy always has a noise scale)."""
        return "noise" if (self.noise_scale is None or self.noise_scale > 0) else "exact"

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
        noise = self.k / 3 if self.noise_scale is None else float(self.noise_scale)
        if noise < 0 or (0 < noise < 1):
            raise InputError(f"the noise scale must be 0 (no noise) or at least 1 (got {noise}).")
        if noise and self.round_to:
            raise InputError("a release is either rounded or noisy: give --round or --noise.")
        if self.consent_scope not in codes.CONSENT_SCOPES:
            raise InputError(
                f"unknown consent scope {self.consent_scope!r}; use one of "
                f"{', '.join(codes.CONSENT_SCOPES)}."
            )
        if self.confirmed_within is not None and (not self.as_of or int(self.confirmed_within) < 1):
            raise InputError("--confirmed-within needs --as-of DATE and a number of days ≥ 1.")
        as_of = parse_day(self.as_of, "--as-of").isoformat() if self.as_of else None
        basis, note = checked_basis(self)
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
            noise,
            as_of,
            None if self.confirmed_within is None else int(self.confirmed_within),
            basis,
            note,
        )


@dataclass
class Release:
    """A protected release: published groups, breakdowns and metadata."""

    groups: pd.DataFrame
    breakdowns: pd.DataFrame
    metadata: dict = field(default_factory=dict)
    verification: object = None  # geo.signatures.Verification, set by a file reader
    standing: object = None  # geo.revocations.Standing, set by a file reader

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
        if policy.get("noise_scale"):
            rounding = f", keyed noise of scale {policy['noise_scale']:.3g} on every count"
        basis = f"consent {policy['consent_scope']!r}"
        if policy.get("legal_basis") == "other":
            basis = f"legal basis other than consent ({policy['basis_note']})"
        lines = [
            f"policy: k={policy['k']} cases, base resolution {policy['base_resolution']}, "
            f"floor {policy['floor_resolution']}, {basis}, "
            f"nationalities {nationalities}{rounding}",
            f"published: {published['groups']} groups ({by_res}), {published['cases']} cases, "
            f"{published['persons']} persons, {len(published['nationalities'])} nationalities",
            f"dropped (under k at the floor): {dropped['persons']} persons",
            "breakdowns available for: "
            + ", ".join(f"{d} {n} groups" for d, n in published["breakdown_groups"].items()),
            f"method {metadata['method_version']}, created {metadata['created_at']}, "
            f"sha256 {metadata.get('content_sha256', '')[:16]}…",
        ]
        if policy.get("as_of"):
            within = policy.get("confirmed_within")
            lines.insert(
                1,
                f"believed true on {policy['as_of']}: "
                + (f"confirmed within {within} days before, " if within else "")
                + "not past valid_until",
            )
        block = metadata.get(BLOCK_KEY)
        if block:
            whole = max(block["audience"], 1)
            shares = " / ".join(
                f"{block[str(m)]} ({block[str(m)] / whole:.0%})" for m in (6, 12, 24)
            )
            lines.insert(
                -1,
                f"confirmed within 6 / 12 / 24 months: {shares} of "
                f"{block['audience']} cases (protected figures)",
            )
        return lines


# ---------------------------------------------------------------------------------------
# Protection


def _round(value: int, base: int, k: int) -> int:
    """Round a count to a multiple of ``base``; a non-zero count never falls below k."""
    rounded = int(value / base + 0.5) * base
    return 0 if value == 0 else max(rounded, -(-k // base) * base)


def _rounded(frame: pl.DataFrame, base: int, k: int) -> pl.DataFrame:
    """Return figures rounded as :func:`_round` does, persons never below cases."""
    floor = -(-k // base) * base
    frame = frame.with_columns(
        pl.when(pl.col(c) == 0)
        .then(0)
        .otherwise(pl.max_horizontal((pl.col(c) / base + 0.5).cast(pl.Int64) * base, floor))
        .cast(pl.Int64)
        .alias(c)
        for c in ("cases", "persons")
    )
    return frame.with_columns(pl.max_horizontal("cases", "persons").alias("persons"))


def protect(records: pl.DataFrame, policy: ReleasePolicy, secret: int = 0) -> Release:
    """Protect an audience's records under a policy (pure: no I/O).

    Parameters
    ----------
    records
        Nationality, cell (H3 integer at a resolution ≥ the policy's base), sex,
        age_band, vulnerabilities (bit mask) and persons: one row per registration, or
        with a ``cases`` column when each row counts several (as the store hands them),
        and then a ``key_sum`` column (the rows' record keys summed modulo 2³²). Rows
        without ``key_sum`` take keys from their position (records built in code).
    policy
        The release policy.
    secret
        The store's secret behind the keyed noise (never published).

    Returns
    -------
    Release
        Groups, breakdowns and the metadata (policy, method, published totals).
    """
    policy = policy.checked()
    if policy.nationalities:
        records = records.filter(pl.col("nationality").is_in(list(policy.nationalities)))
    if "key_sum" not in records.columns:  # records built in code: keys from their position
        records = records.with_row_index("key_sum").with_columns(
            (pl.col("key_sum").cast(pl.UInt64) * 2654435761 % KEY_MODULUS).cast(pl.Int64)
        )
    return protect_counts(FrameCounts(records, policy.base_resolution), policy, secret)


def protect_counts(counts: AudienceCounts, policy: ReleasePolicy, secret: int = 0) -> Release:
    """Protect an audience given by its counts (:mod:`geo.counting`), not its records.

    What :func:`protect` does, asking the audience only for its nationality totals, its
    (base cell × nationality) table and, once the roll-up has placed every base group,
    the breakdown marginals of the placed records: a store answers them in SQL, so the
    memory follows the populated cells, not the registry.

    Returns
    -------
    Release
        Groups, breakdowns and the metadata (policy, method, published totals).
    """
    policy = policy.checked()
    groups, dropped, placement = _placed(counts, policy)
    if policy.method == "noise":
        parts = _floor_parts(placement, _PART_UNITS)
        del placement  # each part is freed once its breakdowns are made
        breakdowns, units = _noisy_breakdowns(counts, parts, policy, secret)
        groups = _noisy(groups, "total", policy, secret, floor=policy.k)
        dropped_total = _noisy_dropped(dropped, policy, secret)
    else:
        with contextlib.closing(counts.unit_counts([placement], EXACT_GROUPINGS)) as counted:
            tables = [_categorised(t) for t in next(counted)]
        rows = exact_breakdown_rows(tables, policy.k, policy.floor_resolution)
        del tables, placement
        if policy.round_to:
            rows = _rounded(rows, policy.round_to, policy.k)
        units = _units_by_dimension(rows)
        breakdowns = categorical_frame(rows)
        del rows
        dropped_total = {c: int(dropped[c].sum() or 0) for c in ("cases", "persons")}
    del dropped
    groups = groups.drop("key_sum")
    if policy.round_to:
        groups = _rounded(groups, policy.round_to, policy.k)
    metadata = _metadata(policy, groups, units, dropped_total)
    group_frame = text_frame(sorted_frame(groups))[GROUP_COLUMNS]
    return Release(groups=group_frame, breakdowns=breakdowns, metadata=metadata)


def _noisy_breakdowns(
    counts: AudienceCounts, parts: list[pl.DataFrame], policy: ReleasePolicy, secret: int
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Return every breakdown row of the placed groups with its keyed noise, and its units.

    Made part by part of the placement (:func:`_floor_parts`, whole floor cells in
    order): each part's counts, rows (every category, zeros included) and noise, kept
    compact (:class:`geo.release_frames.BreakdownParts`); ``parts`` is emptied as they
    are used. At 100M registrations the whole breakdowns at once (15.8M rows, their
    counts, joins and sort) took 1.3 GB above the rest of the release. The units are
    :func:`_units_by_dimension`'s, summed over the parts (a unit is in one part).
    """
    gathered, units = BreakdownParts(), dict.fromkeys(BREAKDOWN_DIMENSIONS, 0)
    with contextlib.closing(counts.unit_counts(parts, NOISE_GROUPINGS)) as counted:
        for number, tables in enumerate(counted):
            rows = all_category_rows(
                parts[number], [_categorised(t) for t in tables], policy.floor_resolution
            )
            parts[number] = None  # freed once the counts have moved on from it too
            rows = _noisy(rows, "breakdown", policy, secret, floor=0)
            for dimension, count in _units_by_dimension(rows).items():
                units[dimension] += count
            gathered.add(rows)
    return gathered.frame(), units


# Placed base groups per part of the breakdowns. Each part reads only its own key range
# of the sorted cube, so smaller parts cost little: 250,000 rather than 500,000 took the
# 100M release's peak from 992 to 907 MiB, +0.4 s at 10M.
_PART_UNITS = 250_000


def _floor_parts(placement: pl.DataFrame, units: int) -> list[pl.DataFrame]:
    """Split a placement into parts of whole floor cells, about ``units`` rows each.

    A floor cell holds every group published inside it and its own vulnerability
    breakdown, so each part's breakdowns are complete alone. In floor-cell order (what
    :class:`geo.release_frames.BreakdownParts` needs); at least one part.
    """
    count = -(-placement.height // units)
    if count <= 1:
        return [placement]
    floors = placement["floor_cell"].sort()
    cuts = floors.gather([i * placement.height // count for i in range(1, count)]).unique().sort()
    part = cuts.search_sorted(placement["floor_cell"], side="right").alias("part")
    split = placement.with_columns(part).partition_by("part", as_dict=True)
    return [split[key].drop("part") for key in sorted(split)]


def _placed(
    counts: AudienceCounts, policy: ReleasePolicy
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Return the published groups, the dropped base groups and the placement.

    The roll-up (:func:`geo.rollup.assign_published_cells`) on the audience's
    (base cell × nationality) table, rare nationalities counted as OTH. The groups have
    cell, resolution, nationality, cases, persons and key_sum; the placement the
    :data:`geo.counting.PLACEMENT` columns.
    """
    totals = counts.nationality_totals()
    rare = totals.filter(pl.col("cases") < policy.k)["nationality"].to_list()
    base = counts.base_counts(rare)
    # Nationalities as an enum in code order: the roll-up's joins and the breakdowns'
    # hash small integers, and sorting by it is sorting by the code's text.
    nationalities = pl.Enum(sorted(base["nationality"].cast(pl.String).unique().to_list()))
    base = base.with_columns(pl.col("nationality").cast(nationalities))
    base = assign_published_cells(base, policy.base_resolution, policy.floor_resolution, policy.k)
    # Lazily, on the streaming engine: each result takes only its own columns of the
    # base table, and the group-by's hash tables stay small (−450 MB at 10M).
    published = base.lazy().filter(pl.col("published_res").is_not_null())
    placement = published.select(
        *PLACEMENT[:-1],
        polars_h3.cell_to_parent("base_cell", policy.floor_resolution).alias("floor_cell"),
    )
    groups = (
        published.group_by("published_cell", "published_res", "nationality")
        .agg(pl.col("cases").sum(), pl.col("persons").sum(), pl.col("key_sum").sum())
        .select(
            pl.col("published_cell").alias("cell"),
            pl.col("published_res").alias("resolution"),
            "nationality",
            "cases",
            "persons",
            "key_sum",
        )
    )
    dropped = (
        base.lazy()
        .filter(pl.col("published_res").is_null())
        .select("nationality", "cases", "persons", "key_sum")
    )
    groups, dropped, placement = (
        q.collect(engine="streaming") for q in (groups, dropped, placement)
    )
    return groups, dropped, placement


def _categorised(table: pl.DataFrame) -> pl.DataFrame:
    """Return a unit table with its categories as enums (every category, in code order)."""
    return table.with_columns(
        pl.col(name).cast(pl.Enum(BREAKDOWN_DIMENSIONS[name]))
        for name in BREAKDOWN_DIMENSIONS
        if name in table.columns
    )


def _noisy(
    frame: pl.DataFrame, kind: str, policy: ReleasePolicy, secret: int, floor: int
) -> pl.DataFrame:
    """Return figures with keyed noise on cases and persons, never below ``floor``.

    A figure is named by its cell and its nationality, dimension and category, so the
    same records in the same figure always get the same noise.
    """
    named_by = ["nationality", "dimension", "category"] if kind == "breakdown" else ["nationality"]
    # Written into arrays of the figures' own type (32-bit for breakdown rows), in
    # slices: the hashes' temporaries stay small at national scale (15.8M figures).
    measures = ("cases", "persons")
    noisy = {
        m: np.empty(frame.height, dtype=np.int32 if frame[m].dtype == pl.Int32 else np.int64)
        for m in measures
    }
    for offset in range(0, frame.height, _NOISE_SLICE):
        part = frame.slice(offset, _NOISE_SLICE)
        cells = part["cell"].cast(pl.UInt64).to_numpy()
        labels = _label_codes(part, named_by)
        keys = (part["key_sum"].cast(pl.UInt64) % KEY_MODULUS).to_numpy()
        values = {}
        for measure, scale in (("cases", policy.noise_scale), ("persons", 2 * policy.noise_scale)):
            noise = figure_noise(cells, labels, measure, keys, scale, secret)
            values[measure] = np.maximum(part[measure].to_numpy() + noise, floor)
        where = slice(offset, offset + part.height)
        noisy["cases"][where] = values["cases"]
        # a case is a person
        noisy["persons"][where] = np.maximum(values["persons"], values["cases"])
    return frame.with_columns(pl.Series(m, noisy[m]) for m in measures)


_NOISE_SLICE = 500_000


def _label_codes(frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """Return the text code (:func:`geo.noise.text_code`) of each row's figure label.

    The label is the row's ``columns`` as text joined by ``|`` (a missing part makes it
    missing). Each distinct label is made and folded once and spread back by a join: a
    10M release's 3.8M breakdown figures have a few thousand labels, and with the label
    text made for every figure its noise took 1.36-1.41 s, 0.80-0.94 s so.
    """
    keys = frame.select(columns)
    distinct = keys.unique().with_row_index("label")
    labels = distinct.select(
        pl.concat_str([pl.col(c).cast(pl.String) for c in columns], separator="|")
    ).to_series()
    position = keys.join(distinct, on=columns, how="left", maintain_order="left", nulls_equal=True)[
        "label"
    ]
    return text_code(labels)[position.to_numpy()]


def _noisy_dropped(dropped: pl.DataFrame, policy: ReleasePolicy, secret: int) -> dict:
    """Return the dropped cases and persons: a sum of one noisy figure per nationality.

    Per nationality, so that every audience holding a nationality adds the same noisy
    figure for it: releases for several audiences give no independent draws to average.
    """
    per_label = dropped.group_by("nationality").agg(
        pl.col("cases").sum(), pl.col("persons").sum(), pl.col("key_sum").sum()
    )
    frame = per_label.select(
        pl.lit(0, dtype=pl.UInt64).alias("cell"),
        ("dropped|" + pl.col("nationality").cast(pl.String)).alias("nationality"),
        "cases",
        "persons",
        "key_sum",
    )
    noisy = _noisy(frame, "total", policy, secret, floor=0)
    return {c: int(noisy[c].sum()) for c in ("cases", "persons")}


def _metadata(
    policy: ReleasePolicy,
    groups: pl.DataFrame,
    units: dict[str, int],
    dropped: dict,
) -> dict:
    """Return a release's metadata: format, method, policy and published figures only.

    The totals are sums of the published values; the dropped figure is protected like
    any count (noisy, or rounded). Nothing here counts the audience itself.
    """
    by_resolution = groups.group_by("resolution").len().sort("resolution")
    metadata = {
        "format": RELEASE_FORMAT,
        "method_version": METHOD_VERSION if policy.method == "noise" else "1.0",
        "method": policy.method,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "policy": asdict(policy),
        "published": {
            "groups": int(groups.height),
            "groups_by_resolution": {str(r): int(n) for r, n in by_resolution.iter_rows()},
            "cases": int(groups["cases"].sum()),
            "persons": int(groups["persons"].sum()),
            "nationalities": sorted(groups["nationality"].cast(pl.String).unique().to_list()),
            "breakdown_groups": units,
        },
        "dropped": dict(dropped),
    }
    if policy.round_to:
        for column in ("cases", "persons"):
            value = metadata["dropped"][column]
            metadata["dropped"][column] = _round(value, policy.round_to, 1)
    return metadata


def _units_by_dimension(rows: pl.DataFrame) -> dict[str, int]:
    """Return how many (cell, nationality) units show each breakdown dimension.

    On the streaming engine: a national release has 16M rows, and a hash of them all
    (``n_unique`` of two columns) took 700 MB at 100M registrations.
    """
    units = (
        rows.lazy()
        .group_by("dimension", "cell", "nationality")
        .agg()
        .group_by("dimension")
        .len()
        .collect(engine="streaming")
    )
    found = {str(d): int(n) for d, n in units.iter_rows()}
    return {d: found.get(d, 0) for d in BREAKDOWN_DIMENSIONS}
