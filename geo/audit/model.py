"""The attacker's model: what each release publishes and what the unknowns are.

Each release becomes a view: its published groups (with ids) and breakdown rows as
intervals of true values, and a bound on its dropped cases. What a published value
proves depends on the release's method:

- **exact** (method 1): the value itself (a rounded value allows a range); an absent
  category of an available breakdown is 0; the dropped cases are known.
- **noise** (method 2): keyed discrete-Laplace noise has unbounded support, so a value
  proves nothing beyond the structure, which was decided on true counts: a published
  group holds at least k cases (at most the audience), every category and the dropped
  cases at least 0 (constraints the linear programme can drop as vacuous).

In both, the structure's priors stay (an unpublished base group holds at most k−1
cases, see :mod:`geo.audit.subtrees`). The records handed in must be the releases' own
store snapshot; a release whose labels or totals the records cannot give is refused.

The nationalities the releases cannot tell apart (those all rolled into ``OTH``) form
one class; a consent pattern says which releases count a case, so releases with
different consent scopes are linked exactly as an attacker can link them; classes that
share a published label are linked into one class group. The steward's records become
true counts per (fine cell, class, pattern, sex, age band, primary vulnerability), and
every fine cell is placed in the published group that holds its cases (the cover).

Everything is keyed by subtree (``comp``: a floor cell of the coarsest floor and a
class group), the unit the audit solves one at a time. Pure: data in, frames out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import polars as pl
import polars_h3

from geo import codes
from geo.errors import InputError
from geo.freshness import audience_expr, audience_key, with_dates
from geo.release import Release, ReleasePolicy
from geo.rollup import BREAKDOWN_DIMENSIONS, primary_vulnerability

SEXES = BREAKDOWN_DIMENSIONS["sex"]
AGES = BREAKDOWN_DIMENSIONS["age_band"]
VULNERABILITIES = BREAKDOWN_DIMENSIONS["vulnerability"]
CATEGORIES = {"sex": SEXES, "age_band": AGES, "vulnerability": VULNERABILITIES}
JOINT_WIDTH = len(SEXES) * len(AGES)


# ---------------------------------------------------------------------------------------
# What each release publishes


@dataclass
class View:
    """One release in the audit's terms: groups with ids, breakdowns, dropped cases.

    ``lo`` and ``hi`` of groups and rows are the true values a published value allows
    (floats: ``hi`` may be infinite); ``dropped_hi`` bounds the dropped cases.
    """

    index: int
    name: str
    policy: ReleasePolicy
    labels: dict[str, str]
    groups: pl.DataFrame
    breakdowns: pl.DataFrame
    vulnerability: pl.DataFrame
    dropped_hi: float

    @property
    def bit(self) -> int:
        """Return the bit of this release in a consent pattern."""
        return 1 << self.index


def release_method(release: Release) -> tuple[ReleasePolicy, str]:
    """Return a release's checked policy and method (``exact`` or ``noise``).

    The metadata's ``method`` says it; a release from before method 2 (method version
    1.0, no ``method`` key) is exact.
    """
    metadata = release.metadata
    method = metadata.get("method") or (
        "exact" if metadata.get("method_version") == "1.0" else release.policy.method
    )
    policy = release.policy
    if method == "exact" and policy.noise_scale != 0:
        policy = replace(policy, noise_scale=0)
    return policy.checked(), method


def intervals(value: pl.Expr, round_to: int | None, k: int) -> list[pl.Expr]:
    """Return ``lo`` and ``hi``: the true values an exact (maybe rounded) value allows.

    A non-zero published count covers at least k cases; a rounded value v came from
    [v − m/2, v + m/2), and the smallest non-zero value from anything between k and it.
    """
    if not round_to:
        return [value.cast(pl.Float64).alias("lo"), value.cast(pl.Float64).alias("hi")]
    smallest = -(-k // round_to) * round_to
    lo = pl.when(value == smallest).then(k).otherwise(pl.max_horizontal(value - round_to // 2, k))
    hi = value + (round_to + 1) // 2 - 1
    zero = value == 0
    return [
        pl.when(zero).then(0).otherwise(lo).cast(pl.Float64).alias("lo"),
        pl.when(zero).then(0).otherwise(hi).cast(pl.Float64).alias("hi"),
    ]


def _noisy_intervals(lo: float, hi: float) -> list[pl.Expr]:
    """Return ``lo`` and ``hi`` of a noisy value: the structure's bounds, whatever it shows."""
    return [pl.lit(float(lo)).alias("lo"), pl.lit(float(hi)).alias("hi")]


def _scalar_interval(value: int, round_to: int | None) -> tuple[float, float]:
    """Return the interval of a release-level total (rounded with a minimum of 1)."""
    row = pl.DataFrame({"v": [value]}).select(intervals(pl.col("v"), round_to, 1)).row(0)
    return row[0], row[1]


def audience_of(records: pl.DataFrame, policy: ReleasePolicy) -> pl.DataFrame:
    """Return the records a release under ``policy`` counts: basis, window, nationalities."""
    audience = with_dates(records).filter(audience_expr(policy))
    if policy.nationalities:
        audience = audience.filter(pl.col("nationality").is_in(list(policy.nationalities)))
    return audience


def audience_labels(audience: pl.DataFrame, k: int) -> dict[str, str]:
    """Return nationality → published label (``OTH`` under k cases), as a release does."""
    counts = audience.group_by("nationality").len()
    return {
        nationality: codes.OTHER_NATIONALITIES if n < k else nationality
        for nationality, n in counts.iter_rows()
    }


def _check_source(name: str, release: Release, audience: pl.DataFrame, labels: dict) -> None:
    """Refuse a release the records cannot have given (its labels; its totals if exact).

    Raises
    ------
    InputError
        If the release publishes a nationality the audience does not hold (with k
        cases), or, for an exact release, if its groups and dropped cases do not add up
        to the audience.
    """
    advice = "audit a release against the store it was made from, as it was then."
    unknown = set(release.groups["nationality"]) - set(labels.values())
    if unknown:
        raise InputError(
            f"{name}: publishes {', '.join(sorted(unknown))}, which the store's records "
            f"for this audience do not hold with k cases; {advice}"
        )
    policy, method = release_method(release)
    if method != "exact":
        return
    groups = pl.from_pandas(release.groups[["cases"]]).select(
        intervals(pl.col("cases"), policy.round_to, policy.k)
    )
    dropped = _scalar_interval(release.metadata["dropped"]["cases"], policy.round_to)
    lo, hi = groups["lo"].sum() + dropped[0], groups["hi"].sum() + dropped[1]
    if not lo <= audience.height <= hi:
        raise InputError(
            f"{name}: the store holds {audience.height} cases for this release's audience, "
            f"its published and dropped cases allow {lo:g} to {hi:g}; {advice}"
        )


def release_view(
    index: int, name: str, release: Release, records: pl.DataFrame, first_gid: int
) -> View:
    """Return a release's published values with group ids from ``first_gid`` on.

    ``records`` must be the store snapshot the release was made from.

    Raises
    ------
    InputError
        If the records cannot have given the release (see :func:`_check_source`).
    """
    policy, method = release_method(release)
    k, round_to = policy.k, policy.round_to
    audience = audience_of(records, policy)
    labels = audience_labels(audience, k)
    _check_source(name, release, audience, labels)
    if method == "exact":
        group_bounds = intervals(pl.col("cases"), round_to, k)
        row_bounds = intervals(pl.col("cases"), round_to, k)
        dropped_hi = _scalar_interval(release.metadata["dropped"]["cases"], round_to)[1]
    else:
        group_bounds = _noisy_intervals(k, max(audience.height, k))
        row_bounds = _noisy_intervals(0, math.inf)
        dropped_hi = math.inf
    groups = (
        pl.from_pandas(release.groups)
        .select(
            polars_h3.str_to_int("h3_cell").alias("cell"),
            pl.col("resolution").cast(pl.Int64).alias("res"),
            pl.col("nationality").alias("label"),
            *group_bounds,
        )
        .with_row_index("gid", offset=first_gid)
        .with_columns(
            pl.col("gid").cast(pl.Int64),
            polars_h3.cell_to_parent("cell", policy.floor_resolution).alias("floor"),
        )
    )
    rows = (
        pl.from_pandas(release.breakdowns)
        .cast({pl.Categorical: pl.String})
        .select(
            polars_h3.str_to_int("h3_cell").alias("cell"),
            pl.col("nationality").alias("label"),
            pl.col("dimension").alias("dim"),
            pl.col("category").alias("cat"),
            pl.col("cases"),
        )
    )
    split = rows.filter(pl.col("dim") != "vulnerability").join(
        groups.select("cell", "label", "gid"), on=["cell", "label"]
    )
    vulnerability = rows.filter(pl.col("dim") == "vulnerability").rename({"cell": "floor"})
    return View(
        index=index,
        name=name,
        policy=policy,
        labels=labels,
        groups=groups,
        breakdowns=_complete(split, ["gid"], row_bounds),
        vulnerability=_complete(vulnerability, ["floor", "label"], row_bounds),
        dropped_hi=dropped_hi,
    )


def _complete(rows: pl.DataFrame, keys: list[str], bounds: list[pl.Expr]) -> pl.DataFrame:
    """Add the absent (zero) categories of every available breakdown; add intervals.

    In an exact release an absent category is 0; a noisy release has every category
    (its bounds do not depend on the value).
    """
    categories = pl.DataFrame(
        [(d, c) for d, cats in CATEGORIES.items() for c in cats],
        schema={"dim": pl.String, "cat": pl.String},
        orient="row",
    )
    available = rows.select(keys + ["dim"]).unique()
    return (
        available.join(categories, on="dim")
        .join(rows.select(keys + ["dim", "cat", "cases"]), on=keys + ["dim", "cat"], how="left")
        .with_columns(pl.col("cases").fill_null(0))
        .with_columns(*bounds)
    )


# ---------------------------------------------------------------------------------------
# The unknowns: nationality classes, consent patterns, units


@dataclass
class _Classes:
    """Nationalities the releases cannot tell apart, and how they link."""

    of_nationality: dict[str, int]
    names: list[str]
    group: list[int]
    patterns: list[list[int]]
    by_label: dict[tuple[int, str], list[int]]


def _classes(views: Sequence[View]) -> _Classes:
    """Return the nationality classes: nationalities with the same label in every release."""
    nationalities = sorted({n for v in views for n in v.labels})
    signatures: dict[tuple, list[str]] = {}
    for nationality in nationalities:
        signature = tuple(v.labels.get(nationality) for v in views)
        signatures.setdefault(signature, []).append(nationality)
    of_nationality, names, by_label = {}, [], {}
    for index, (signature, members) in enumerate(signatures.items()):
        of_nationality.update(dict.fromkeys(members, index))
        names.append(members[0] if len(members) == 1 else f"OTH ({len(members)} nationalities)")
        for view, label in zip(views, signature, strict=True):
            if label is not None:
                by_label.setdefault((view.index, label), []).append(index)
    return _Classes(
        of_nationality=of_nationality,
        names=names,
        group=_link(len(names), by_label.values()),
        patterns=[_patterns(views, signature) for signature in signatures],
        by_label=by_label,
    )


def _link(n: int, sets: Sequence[list[int]]) -> list[int]:
    """Return, per class, the id of its group of classes linked through shared labels."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for members in sets:
        for other in members[1:]:
            parent[root(other)] = root(members[0])
    return [root(i) for i in range(n)]


def _patterns(views: Sequence[View], signature: tuple) -> list[int]:
    """Return the consent patterns a class can have: sets of releases that count a case.

    Releases with the same consent scope count the same cases of a class, so a pattern
    is a non-empty union of per-scope sets of releases.
    """
    by_scope: dict[tuple, int] = {}
    for view, label in zip(views, signature, strict=True):
        if label is not None:
            scope = audience_key(view.policy)  # consent scope, legal basis, window
            by_scope[scope] = by_scope.get(scope, 0) | view.bit
    masks = list(by_scope.values())
    patterns = set()
    for chosen in range(1, 1 << len(masks)):
        patterns.add(sum(m for i, m in enumerate(masks) if chosen >> i & 1))
    return sorted(patterns)


def _units(records: pl.DataFrame, views: Sequence[View], classes: _Classes, fine: int):
    """Return true counts per (fine cell, class, pattern, sex, age band, vulnerability)."""
    pattern = pl.lit(0)
    for view in views:
        counted = pl.col("nationality").is_in(list(view.labels)) & audience_expr(view.policy)
        pattern = pattern + pl.when(counted).then(view.bit).otherwise(0)
    index = {name: {c: i for i, c in enumerate(cats)} for name, cats in CATEGORIES.items()}
    return (
        with_dates(records)
        .with_columns(
            pattern.alias("pattern"),
            primary_vulnerability().alias("vulnerability"),
        )
        .filter(pl.col("pattern") > 0)
        .select(
            polars_h3.cell_to_parent("cell", fine).alias("fine"),
            pl.col("nationality")
            .replace_strict(classes.of_nationality, return_dtype=pl.Int64)
            .alias("class"),
            pl.col("pattern").cast(pl.Int64),
            *[
                pl.col(d).replace_strict(index[d], return_dtype=pl.Int64).alias(d)
                for d in CATEGORIES
            ],
        )
        .group_by(["fine", "class", "pattern", *CATEGORIES])
        .agg(pl.len().cast(pl.Int64).alias("n"))
    )


# ---------------------------------------------------------------------------------------
# Where each published group's cases can be


def cover_at_base(view: View) -> pl.DataFrame:
    """Return, per base cell under a published group, the group that holds its cases.

    A base cell belongs to the finest published group of its nationality above it
    (itself included); a coarser group is the residual of what is left.
    """
    base = view.policy.base_resolution
    return (
        view.groups.select(
            "gid", "label", "res", polars_h3.cell_to_children("cell", base).alias("base")
        )
        .explode("base")
        .sort(["res", "gid"], descending=[True, False])
        .unique(["base", "label"], keep="first", maintain_order=True)
    )


def _cover(view: View, fine: int) -> pl.DataFrame:
    """Return (fine cell, release, label, gid, group resolution) for every covered cell."""
    cover = cover_at_base(view)
    if view.policy.base_resolution < fine:
        cover = cover.with_columns(polars_h3.cell_to_children("base", fine).alias("fine")).explode(
            "fine"
        )
    else:
        cover = cover.with_columns(pl.col("base").alias("fine"))
    return cover.select(
        "fine", pl.lit(view.index, dtype=pl.Int64).alias("rel"), "label", "gid", "res"
    )


def label_groups(classes: _Classes) -> pl.DataFrame:
    """Return (release, label) → class group, the nationality part of a subtree's key."""
    return pl.DataFrame(
        [
            (rel, label, classes.group[members[0]])
            for (rel, label), members in classes.by_label.items()
        ],
        schema={"rel": pl.Int64, "label": pl.String, "cg": pl.Int64},
        orient="row",
    )


@dataclass
class Model:
    """Everything the audit knows, as frames keyed by subtree (``comp``)."""

    views: list[View]
    classes: _Classes
    fine: int
    top: int
    units: pl.DataFrame
    cover: pl.DataFrame
    comps: pl.DataFrame

    def comp_of(self, frame: pl.DataFrame, cell: str) -> pl.DataFrame:
        """Return ``frame`` with its subtree id (from ``cell`` and the class group)."""
        return frame.with_columns(polars_h3.cell_to_parent(cell, self.top).alias("top")).join(
            self.comps, on=["top", "cg"]
        )


def build_model(views: list[View], records: pl.DataFrame) -> Model:
    """Return the attacker's model of the releases and the steward's truth."""
    classes = _classes(views)
    fine = max(v.policy.base_resolution for v in views)
    top = min(v.policy.floor_resolution for v in views)
    cover = pl.concat([_cover(v, fine) for v in views]).join(
        label_groups(classes), on=["rel", "label"]
    )
    cover = cover.with_columns(polars_h3.cell_to_parent("fine", top).alias("top"))
    comps = (
        cover.select("top", "cg")
        .unique()
        .sort("top", "cg")
        .with_row_index("comp")
        .with_columns(pl.col("comp").cast(pl.Int64))
    )
    cover = cover.join(comps, on=["top", "cg"])
    units = _units(records, views, classes, fine).with_columns(
        pl.col("class")
        .replace_strict(dict(enumerate(classes.group)), return_dtype=pl.Int64)
        .alias("cg")
    )
    return Model(views, classes, fine, top, units, cover, comps)
