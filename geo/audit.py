"""Audit releases with a linear-programming attacker.

The steward knows the true counts; the audit plays an attacker who knows the method
and sees every number of every release given (all resolutions, all breakdowns, the
release-level totals; any polygon sum or exposure figure is a linear combination of
these, so it adds nothing). For every count between 1 and k−1 the audit computes the
interval the attacker can prove by linear programming (scipy ``linprog``, HiGHS) and
reports

- **exact** disclosures: the interval is a single value;
- **existence** disclosures: the lower bound is at least 1, so the attacker can prove
  that someone is there.

What the attacker knows, per release: each published group equals the sum of its base
cells not published at a finer resolution (an interval when the release is rounded);
each breakdown row equals the sum of its category over the same cells, and an absent
category of an available breakdown is 0; the vulnerability rows sum a category over
every released group of a floor cell; every base group the release does not publish
holds 0 to k−1 cases; the dropped cases bound what lies outside the released groups.

The unknowns are counts per (cell at the finest base resolution, nationality class,
consent pattern), split by sex × age band and by primary vulnerability. Classes are the
nationalities the releases cannot tell apart (those all rolled into ``OTH``); a consent
pattern says which of the releases count a case, so a public and an embassy release with
different consent scopes are linked exactly as the attacker can link them. Cells that
no constraint and no target tells apart are merged into one variable (exact for a linear
programme: the sum of m copies of a convex set is m times the set), and the problem is
solved per floor-cell subtree and group of linked nationalities.

The counts checked ("targets") are: every (base cell, nationality) group of every
release, every unpublished residual at a coarser resolution, their breakdown categories,
the categories and sex × age cross-cells of published groups whose breakdown is not
published, and, with several releases, every (cell, nationality, consent pattern)
subgroup. A target is solved only when no feasible point seen so far puts it at 0.

Not modelled: persons (any case counts the rest allows admit person counts between the
cases and any family size, so they bound nothing further); that a withheld breakdown
has some category under k (a disjunction, not linear); sex × vulnerability cross-cells
(the release checks those at the floor); and outside knowledge such as cells at sea.
The release-level totals couple all subtrees; each subtree gets them as bounds that
hold whatever the other subtrees hold (a relaxation; for one unrounded release they
add nothing).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import polars_h3
from scipy import sparse
from scipy.optimize import linprog

from geo import codes
from geo import store as steward_store
from geo.errors import InputError
from geo.release import (
    BREAKDOWN_DIMENSIONS,
    Release,
    ReleasePolicy,
    primary_vulnerability,
    read_release,
)

TOLERANCE = 1e-6
SEXES = BREAKDOWN_DIMENSIONS["sex"]
AGES = BREAKDOWN_DIMENSIONS["age_band"]
VULNERABILITIES = BREAKDOWN_DIMENSIONS["vulnerability"]
CATEGORIES = {"sex": SEXES, "age_band": AGES, "vulnerability": VULNERABILITIES}
JOINT_WIDTH = len(SEXES) * len(AGES)
TARGET_KINDS = {
    "group": "groups",
    "residual": "residuals",
    "category": "categories",
    "group category": "group categories",
    "cross-cell": "cross-cells",
    "consent subgroup": "consent subgroups",
}

# ---------------------------------------------------------------------------------------
# The linear-programming core


@dataclass(frozen=True)
class LinearSystem:
    """What the attacker knows: ``a_eq @ x == b_eq`` and ``lower <= x <= upper``."""

    a_eq: sparse.csr_array
    b_eq: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def optimum(self, objective: np.ndarray, maximise: bool = False) -> tuple[float, np.ndarray]:
        """Return the minimum (or maximum) of ``objective @ x`` and a point attaining it.

        Returns
        -------
        tuple of float and numpy.ndarray
            The optimal value (±inf when unbounded, with an empty point) and the point.

        Raises
        ------
        ValueError
            If the constraints have no solution.
        """
        sign = -1.0 if maximise else 1.0
        has_rows = self.a_eq.shape[0] > 0
        result = linprog(
            sign * np.asarray(objective, dtype=float),
            A_eq=self.a_eq if has_rows else None,
            b_eq=self.b_eq if has_rows else None,
            bounds=np.column_stack([self.lower, self.upper]),
            method="highs",
        )
        if result.status == 3:
            return sign * -math.inf, np.empty(0)
        if result.status != 0:
            raise ValueError(f"the attacker's constraints have no solution ({result.message})")
        return sign * result.fun, result.x


def interval_bounds(
    a_eq: np.ndarray | sparse.sparray,
    b_eq: Sequence[float],
    lower: Sequence[float],
    upper: Sequence[float],
    targets: Sequence[int],
) -> list[tuple[float, float]]:
    """Return, per target variable, the interval an attacker can prove.

    Parameters
    ----------
    a_eq, b_eq
        Equality constraints ``a_eq @ x == b_eq`` (m × n, dense or sparse).
    lower, upper
        Bounds of every variable (``numpy.inf`` for none).
    targets
        Indices of the variables to bound.

    Returns
    -------
    list of tuple of float
        ``(minimum, maximum)`` of each target over the constraints, by HiGHS.

    Raises
    ------
    ValueError
        If the constraints have no solution.
    """
    system = LinearSystem(
        sparse.csr_array(np.atleast_2d(a_eq) if not sparse.issparse(a_eq) else a_eq),
        np.asarray(b_eq, dtype=float),
        np.asarray(lower, dtype=float),
        np.asarray(upper, dtype=float),
    )
    bounds = []
    for target in targets:
        objective = np.zeros(system.lower.size)
        objective[target] = 1.0
        bounds.append((system.optimum(objective)[0], system.optimum(objective, maximise=True)[0]))
    return bounds


@dataclass(frozen=True)
class Verdict:
    """What a proven interval discloses about a count that is truly between 1 and k−1."""

    lo: int
    hi: float
    exact: bool
    existence: bool
    small: bool

    @property
    def disclosed(self) -> bool:
        """Return whether the interval is a disclosure (exact, or existence proven)."""
        return self.exact or self.existence


def classify(lo: float, hi: float, k: int) -> Verdict:
    """Classify a proven interval, rounded inward to the integers the attacker knows.

    Returns
    -------
    Verdict
        ``exact`` when the interval is one value, ``existence`` when its lower bound is
        at least 1, ``small`` when its upper bound is below k (the group is proven small).
    """
    low = math.ceil(lo - TOLERANCE)
    high = math.floor(hi + TOLERANCE) if math.isfinite(hi) else math.inf
    return Verdict(low, high, low == high, low >= 1, high < k)


# ---------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class Finding:
    """One disclosed count: what it is, where, and the interval the attacker proves."""

    kind: str
    release: str
    cell: str
    resolution: int
    nationality: str
    detail: str
    lo: int
    hi: float
    true: int

    def line(self) -> str:
        """Return the finding as one line for the steward (true count included)."""
        hi = "?" if math.isinf(self.hi) else str(int(self.hi))
        detail = f" {self.detail}" if self.detail else ""
        release = f" of {self.release}" if self.release else ""
        return (
            f"{self.kind} {self.cell} (res {self.resolution}) {self.nationality}{detail}"
            f"{release}: proven [{self.lo}, {hi}], true {self.true}"
        )


@dataclass
class AuditReport:
    """The audit's result: counts checked, disclosures with examples, time taken."""

    releases: list[str]
    checked: dict[str, int]
    exact: list[Finding] = field(default_factory=list)
    existence: list[Finding] = field(default_factory=list)
    subtrees: int = 0
    linear_programs: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Return whether nothing is disclosed."""
        return not self.exact and not self.existence

    def lines(self, examples: int = 10) -> list[str]:
        """Return the report as short lines, with up to ``examples`` findings of each kind."""
        checked = ", ".join(f"{n} {TARGET_KINDS[kind]}" for kind, n in self.checked.items() if n)
        lines = [
            f"audit of {', '.join(self.releases)}",
            f"checked {sum(self.checked.values())} counts between 1 and k−1 ({checked or 'none'})"
            f" in {self.subtrees} subtrees with {self.linear_programs} linear programmes, "
            f"{self.seconds:.1f} s",
            f"exact disclosures: {len(self.exact)}",
            f"existence disclosures (lower bound ≥ 1, not exact): {len(self.existence)}",
        ]
        for name, findings in (("exact", self.exact), ("existence", self.existence)):
            lines += [f"  {name}: {f.line()}" for f in findings[:examples]]
        lines.append("verdict: " + ("nothing disclosed" if self.ok else "DISCLOSURES FOUND"))
        return lines


# ---------------------------------------------------------------------------------------
# What each release publishes


@dataclass
class _View:
    """One release in the audit's terms: groups with ids, breakdowns, totals."""

    index: int
    name: str
    policy: ReleasePolicy
    labels: dict[str, str]
    groups: pl.DataFrame
    breakdowns: pl.DataFrame
    vulnerability: pl.DataFrame
    dropped_hi: int
    group_sum: tuple[int, int] | None

    @property
    def bit(self) -> int:
        """Return the bit of this release in a consent pattern."""
        return 1 << self.index


def _intervals(value: pl.Expr, round_to: int | None, k: int) -> list[pl.Expr]:
    """Return ``lo`` and ``hi``: the true values a published (maybe rounded) value allows.

    A non-zero published count covers at least k cases; a rounded value v came from
    [v − m/2, v + m/2), and the smallest non-zero value from anything between k and it.
    """
    if not round_to:
        return [value.alias("lo"), value.alias("hi")]
    smallest = -(-k // round_to) * round_to
    lo = pl.when(value == smallest).then(k).otherwise(pl.max_horizontal(value - round_to // 2, k))
    hi = value + (round_to + 1) // 2 - 1
    zero = value == 0
    return [
        pl.when(zero).then(0).otherwise(lo).alias("lo"),
        pl.when(zero).then(0).otherwise(hi).alias("hi"),
    ]


def _scalar_interval(value: int, round_to: int | None) -> tuple[int, int]:
    """Return the interval of a release-level total (rounded with a minimum of 1)."""
    row = pl.DataFrame({"v": [value]}).select(_intervals(pl.col("v"), round_to, 1)).row(0)
    return int(row[0]), int(row[1])


def _audience(records: pl.DataFrame, policy: ReleasePolicy) -> pl.DataFrame:
    """Return the records a release under ``policy`` counts (consent and nationalities)."""
    bit = 1 << codes.CONSENT_SCOPES.index(policy.consent_scope)
    audience = records.filter((pl.col("consent") & bit) != 0)
    if policy.nationalities:
        audience = audience.filter(pl.col("nationality").is_in(list(policy.nationalities)))
    return audience


def _labels(records: pl.DataFrame, policy: ReleasePolicy, name: str, metadata: dict) -> dict:
    """Return nationality → published label (``OTH`` for the rare), as the release did.

    Raises
    ------
    InputError
        If the store's audience differs from the one the release was made from.
    """
    audience = _audience(records, policy)
    expected = metadata["audience"]
    persons = int(audience["persons"].sum() or 0)
    if (audience.height, persons) != (expected["cases"], expected["persons"]):
        raise InputError(
            f"{name}: the store holds {audience.height} cases / {persons} persons for this "
            f"release's audience, the release was made from {expected['cases']} / "
            f"{expected['persons']}; audit a release against the store it was made from."
        )
    counts = audience.group_by("nationality").len()
    return {
        nationality: codes.OTHER_NATIONALITIES if n < policy.k else nationality
        for nationality, n in counts.iter_rows()
    }


def _view(index: int, name: str, release: Release, records: pl.DataFrame, first_gid: int) -> _View:
    """Return a release's published values with group ids from ``first_gid`` on."""
    policy = release.policy.checked()
    k, round_to = policy.k, policy.round_to
    groups = (
        pl.from_pandas(release.groups)
        .select(
            polars_h3.str_to_int("h3_cell").alias("cell"),
            pl.col("resolution").cast(pl.Int64).alias("res"),
            pl.col("nationality").alias("label"),
            *_intervals(pl.col("cases"), round_to, k),
        )
        .with_row_index("gid", offset=first_gid)
        .with_columns(
            pl.col("gid").cast(pl.Int64),
            polars_h3.cell_to_parent("cell", policy.floor_resolution).alias("floor"),
        )
    )
    rows = pl.from_pandas(release.breakdowns).select(
        polars_h3.str_to_int("h3_cell").alias("cell"),
        pl.col("nationality").alias("label"),
        pl.col("dimension").alias("dim"),
        pl.col("category").alias("cat"),
        pl.col("cases"),
    )
    split = rows.filter(pl.col("dim") != "vulnerability").join(
        groups.select("cell", "label", "gid"), on=["cell", "label"]
    )
    vulnerability = rows.filter(pl.col("dim") == "vulnerability").rename({"cell": "floor"})
    metadata = release.metadata
    dropped = _scalar_interval(metadata["dropped"]["cases"], round_to)
    audience = metadata["audience"]["cases"]
    return _View(
        index=index,
        name=name,
        policy=policy,
        labels=_labels(records, policy, name, metadata),
        groups=groups,
        breakdowns=_complete(split, ["gid"], round_to, k),
        vulnerability=_complete(vulnerability, ["floor", "label"], round_to, k),
        dropped_hi=dropped[1],
        group_sum=(audience - dropped[1], audience - dropped[0]) if round_to else None,
    )


def _complete(rows: pl.DataFrame, keys: list[str], round_to: int | None, k: int) -> pl.DataFrame:
    """Add the absent (zero) categories of every available breakdown; add intervals."""
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
        .with_columns(*_intervals(pl.col("cases"), round_to, k))
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


def _classes(views: Sequence[_View]) -> _Classes:
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


def _patterns(views: Sequence[_View], signature: tuple) -> list[int]:
    """Return the consent patterns a class can have: sets of releases that count a case.

    Releases with the same consent scope count the same cases of a class, so a pattern
    is a non-empty union of per-scope sets of releases.
    """
    by_scope: dict[str, int] = {}
    for view, label in zip(views, signature, strict=True):
        if label is not None:
            scope = view.policy.consent_scope
            by_scope[scope] = by_scope.get(scope, 0) | view.bit
    masks = list(by_scope.values())
    patterns = set()
    for chosen in range(1, 1 << len(masks)):
        patterns.add(sum(m for i, m in enumerate(masks) if chosen >> i & 1))
    return sorted(patterns)


def _units(records: pl.DataFrame, views: Sequence[_View], classes: _Classes, fine: int):
    """Return true counts per (fine cell, class, pattern, sex, age band, vulnerability)."""
    pattern = pl.lit(0)
    for view in views:
        scope_bit = 1 << codes.CONSENT_SCOPES.index(view.policy.consent_scope)
        counted = pl.col("nationality").is_in(list(view.labels)) & (
            (pl.col("consent") & scope_bit) != 0
        )
        pattern = pattern + pl.when(counted).then(view.bit).otherwise(0)
    index = {name: {c: i for i, c in enumerate(cats)} for name, cats in CATEGORIES.items()}
    return (
        records.with_columns(
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


def _cover_at_base(view: _View) -> pl.DataFrame:
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


def _cover(view: _View, fine: int) -> pl.DataFrame:
    """Return (fine cell, release, label, gid, group resolution) for every covered cell."""
    cover = _cover_at_base(view)
    if view.policy.base_resolution < fine:
        cover = cover.with_columns(polars_h3.cell_to_children("base", fine).alias("fine")).explode(
            "fine"
        )
    else:
        cover = cover.with_columns(pl.col("base").alias("fine"))
    return cover.select(
        "fine", pl.lit(view.index, dtype=pl.Int64).alias("rel"), "label", "gid", "res"
    )


def _label_groups(classes: _Classes) -> pl.DataFrame:
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
class _Model:
    """Everything the audit knows, as frames keyed by subtree (``comp``)."""

    views: list[_View]
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


def _model(views: list[_View], records: pl.DataFrame) -> _Model:
    """Return the attacker's model of the releases and the steward's truth."""
    classes = _classes(views)
    fine = max(v.policy.base_resolution for v in views)
    top = min(v.policy.floor_resolution for v in views)
    cover = pl.concat([_cover(v, fine) for v in views]).join(
        _label_groups(classes), on=["rel", "label"]
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
    return _Model(views, classes, fine, top, units, cover, comps)


# ---------------------------------------------------------------------------------------
# The counts to check (targets)

_TARGET_SCHEMA = {
    "kind": pl.String,
    "rel": pl.Int64,
    "cell": pl.UInt64,
    "res": pl.Int64,
    "label": pl.String,
    "dim": pl.String,
    "cat": pl.Int64,
    "true": pl.Int64,
    "gid": pl.Int64,
    "anchor_res": pl.Int64,
    "cond": pl.Int64,
    "klass": pl.Int64,
    "pattern": pl.Int64,
    "k": pl.Int64,
}


def _target_frame(frame: pl.DataFrame, k: int, **columns) -> pl.DataFrame:
    """Return the rows of ``frame`` with a true count in 1..k−1, in the target schema."""
    defaults = {"dim": "total", "cat": -1, "gid": -1, "anchor_res": -1, "cond": -1}
    defaults |= {"klass": -1, "pattern": 0, "k": k}
    values = defaults | columns
    return (
        frame.filter(pl.col("true").is_between(1, k - 1))
        .with_columns(
            (v if isinstance(v, pl.Expr) else pl.lit(v)).alias(name)
            for name, v in values.items()
            if name not in frame.columns or isinstance(v, pl.Expr)
        )
        .select([pl.col(name).cast(dtype) for name, dtype in _TARGET_SCHEMA.items()])
    )


def _release_units(model: _Model, view: _View) -> pl.DataFrame:
    """Return the true units a release counts, with its label and base cell."""
    label_of = {
        c: label
        for (rel, label), members in model.classes.by_label.items()
        if rel == view.index
        for c in members
    }
    return model.units.filter((pl.col("pattern") & view.bit) != 0).with_columns(
        pl.col("class").replace_strict(label_of, return_dtype=pl.String).alias("label"),
        polars_h3.cell_to_parent("fine", view.policy.base_resolution).alias("base"),
    )


def _base_targets(units: pl.DataFrame, view: _View) -> list[pl.DataFrame]:
    """Return (base cell, label) groups and their categories between 1 and k−1."""
    base, k = view.policy.base_resolution, view.policy.k
    common = {"rel": view.index, "res": base, "anchor_res": base}
    frames = [
        _target_frame(
            units.group_by("base", "label").agg(pl.col("n").sum().alias("true")),
            k,
            kind="group",
            cell=pl.col("base"),
            **common,
        )
    ]
    for dim in CATEGORIES:
        per = units.group_by("base", "label", dim).agg(pl.col("n").sum().alias("true"))
        frames.append(
            _target_frame(
                per, k, kind="category", cell=pl.col("base"), dim=dim, cat=pl.col(dim), **common
            )
        )
    return frames


def _residual_targets(units: pl.DataFrame, view: _View) -> list[pl.DataFrame]:
    """Return the unpublished residuals between 1 and k−1 at every coarser resolution."""
    placed = units.join(
        _cover_at_base(view).select("base", "label", pl.col("res").alias("gres")),
        on=["base", "label"],
        how="left",
    )
    frames = []
    for res in range(view.policy.floor_resolution, view.policy.base_resolution):
        left = placed.filter(pl.col("gres").is_null() | (pl.col("gres") <= res))
        per = (
            left.with_columns(polars_h3.cell_to_parent("base", res).alias("cell"))
            .group_by("cell", "label")
            .agg(pl.col("n").sum().alias("true"))
        )
        frames.append(
            _target_frame(
                per,
                view.policy.k,
                kind="residual",
                rel=view.index,
                res=res,
                anchor_res=res,
                cond=res,
            )
        )
    return frames


def _group_targets(units: pl.DataFrame, view: _View) -> list[pl.DataFrame]:
    """Return categories and sex × age cells of published groups between 1 and k−1.

    A category of a published breakdown is either 0 or at least k, so only the
    dimensions a group does not publish are checked (vulnerability: every group).
    """
    k = view.policy.k
    placed = units.join(_cover_at_base(view).select("base", "label", "gid"), on=["base", "label"])
    cells = view.groups.select("gid", "cell", "res", "label")
    published = view.breakdowns.select("gid", "dim").unique()
    frames = []
    for dim in CATEGORIES:
        per = placed.group_by("gid", dim).agg(pl.col("n").sum().alias("true"))
        per = per.with_columns(pl.lit(dim).alias("dim")).join(
            published, on=["gid", "dim"], how="anti"
        )
        frames.append(
            _target_frame(
                per.join(cells, on="gid"),
                k,
                kind="group category",
                rel=view.index,
                cat=pl.col(dim),
            )
        )
    cross = placed.group_by("gid", "sex", "age_band").agg(pl.col("n").sum().alias("true"))
    frames.append(
        _target_frame(
            cross.join(cells, on="gid"),
            k,
            kind="cross-cell",
            rel=view.index,
            dim="cross",
            cat=pl.col("sex") * len(AGES) + pl.col("age_band"),
        )
    )
    return frames


def _subgroup_targets(model: _Model) -> pl.DataFrame:
    """Return (cell, class, consent pattern) subgroups between 1 and k−1 (several releases)."""
    ks = {v.bit: v.policy.k for v in model.views}
    smallest = {
        p: min(k for bit, k in ks.items() if p & bit) for p in range(1, 1 << len(model.views))
    }
    per = (
        model.units.group_by("fine", "class", "pattern")
        .agg(pl.col("n").sum().alias("true"))
        .with_columns(pl.col("pattern").replace_strict(smallest, return_dtype=pl.Int64).alias("k"))
    )
    frames = [
        _target_frame(
            per.filter(pl.col("k") == k),
            k,
            kind="consent subgroup",
            rel=-1,
            cell=pl.col("fine"),
            res=model.fine,
            label=pl.col("class").replace_strict(
                dict(enumerate(model.classes.names)), return_dtype=pl.String
            ),
            anchor_res=model.fine,
            klass=pl.col("class"),
        )
        for k in sorted(set(smallest.values()))
    ]
    return pl.concat(frames)


def _targets(model: _Model) -> pl.DataFrame:
    """Return every count to check, with its class group (``cg``)."""
    frames = []
    for view in model.views:
        units = _release_units(model, view)
        frames += _base_targets(units, view)
        frames += _residual_targets(units, view)
        frames += _group_targets(units, view)
    if len(model.views) > 1:
        frames.append(_subgroup_targets(model))
    targets = pl.concat(frames).with_row_index("tid")
    by_label = targets.filter(pl.col("rel") >= 0).join(
        _label_groups(model.classes).join(_label_units(model), on=["rel", "label"]),
        on=["rel", "label"],
    )
    by_class = targets.filter(pl.col("rel") < 0).with_columns(
        pl.col("klass")
        .replace_strict(dict(enumerate(model.classes.group)), return_dtype=pl.Int64)
        .alias("cg"),
        pl.concat_str("klass", "pattern", separator=":").alias("units"),
    )
    identity = ["gid", "cell", "anchor_res", "cond", "cond_rel", "units", "dim", "cat"]
    return (
        pl.concat([by_label, by_class])
        .sort("tid")
        .with_columns(pl.when(pl.col("cond") >= 0).then("rel").otherwise(-1).alias("cond_rel"))
        .unique(identity, keep="first", maintain_order=True)
        .drop("cond_rel")
    )


def _label_units(model: _Model) -> pl.DataFrame:
    """Return (release, label) → the (class, pattern) pairs it counts, as one string.

    Two targets over the same cells and the same pairs are the same count (a public and
    an embassy release with one consent scope count the same cases of that nationality).
    """
    rows = []
    for (rel, label), members in model.classes.by_label.items():
        pairs = [
            f"{c}:{p}" for c in sorted(members) for p in model.classes.patterns[c] if p >> rel & 1
        ]
        rows.append((rel, label, ";".join(pairs)))
    return pl.DataFrame(
        rows, schema={"rel": pl.Int64, "label": pl.String, "units": pl.String}, orient="row"
    )


# ---------------------------------------------------------------------------------------
# Cells the attacker cannot tell apart (atoms)


def _cell_sets(
    model: _Model, targets: pl.DataFrame, first: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return the universe cells of each target's cell set, and the targets with set keys.

    A target's cell set is every fine cell under its anchor cell (for a residual at
    resolution r: those not under a finer published group). Cells outside the subtree's
    universe are in no constraint: a target with some is ``open`` (its maximum is not
    bounded by the release), one with only such cells is ``free`` (it can be 0).
    """
    universe = model.cover.select("comp", "fine").unique()
    by_cells = model.comp_of(targets.filter(pl.col("gid") < 0), "cell")
    by_cells = by_cells.with_columns(
        pl.when(pl.col("cond") < 0).then(-1).otherwise(pl.col("rel")).alias("set_rel")
    )
    sets = (
        by_cells.select("comp", "cell", "anchor_res", "set_rel", "label", "cond")
        .unique()
        .with_row_index("key", offset=first)
        .with_columns(pl.col("key").cast(pl.Int64))
    )
    members = []
    for res in _anchor_resolutions(model, sets):
        anchored = universe.with_columns(polars_h3.cell_to_parent("fine", res).alias("cell"))
        members.append(anchored.join(sets.filter(pl.col("anchor_res") == res), on=["comp", "cell"]))
    members = _residual_members(model, pl.concat(members))
    sizes = _set_sizes(model, universe, sets, members)
    keyed = by_cells.join(sets, on=["comp", "cell", "anchor_res", "set_rel", "label", "cond"]).join(
        sizes, on="key"
    )
    return members.select("comp", "fine", "key"), keyed


def _anchor_resolutions(model: _Model, sets: pl.DataFrame) -> list[int]:
    """Return the resolutions of the sets' anchor cells (never empty: frames keep columns)."""
    return sorted(set(sets["anchor_res"].to_list()) | {model.fine})


def _residual_members(model: _Model, members: pl.DataFrame) -> pl.DataFrame:
    """Drop from residual sets the cells under a group finer than the residual."""
    placed = model.cover.select(
        "comp", "fine", pl.col("rel").alias("set_rel"), "label", pl.col("res").alias("gres")
    )
    members = members.join(placed, on=["comp", "fine", "set_rel", "label"], how="left")
    return members.filter(
        (pl.col("cond") < 0) | pl.col("gres").is_null() | (pl.col("gres") <= pl.col("cond"))
    )


def _set_sizes(
    model: _Model, universe: pl.DataFrame, sets: pl.DataFrame, members: pl.DataFrame
) -> pl.DataFrame:
    """Return, per set key, whether it is open (cells outside the universe) or free."""
    parts = []
    for res in _anchor_resolutions(model, sets):
        chosen = sets.filter(pl.col("anchor_res") == res)
        under = (
            universe.with_columns(polars_h3.cell_to_parent("fine", res).alias("cell"))
            .group_by("comp", "cell")
            .len("inside")
        )
        parts.append(
            chosen.join(under, on=["comp", "cell"], how="left").with_columns(
                polars_h3.cell_to_children_size("cell", model.fine).alias("size")
            )
        )
    counted = members.group_by("key").len("members")
    return (
        pl.concat(parts)
        .join(counted, on="key", how="left")
        .select(
            "key",
            (pl.col("inside").fill_null(0) < pl.col("size")).alias("open"),
            (pl.col("members").fill_null(0) == 0).alias("free"),
        )
    )


def _prior_keys(model: _Model) -> pl.DataFrame:
    """Return (comp, fine, key) for the base cells of releases coarser than the finest.

    Each such base cell is one set of fine cells holding at most k−1 cases when its
    group is not published.
    """
    first = int(model.cover["gid"].max() or 0) + 1
    universe = model.cover.select("comp", "fine").unique()
    frames = []
    for view in model.views:
        if view.policy.base_resolution == model.fine:
            continue
        frames.append(
            universe.with_columns(
                polars_h3.cell_to_parent("fine", view.policy.base_resolution).alias("base"),
                pl.lit(view.index, dtype=pl.Int64).alias("rel"),
            )
        )
    if not frames:
        schema = {"comp": pl.Int64, "fine": pl.UInt64, "key": pl.Int64, "rel": pl.Int64}
        return pl.DataFrame(schema=schema)
    keyed = pl.concat(frames)
    ids = (
        keyed.select("rel", "base").unique().sort("rel", "base").with_row_index("key", offset=first)
    )
    return keyed.join(ids, on=["rel", "base"]).select(
        "comp", "fine", pl.col("key").cast(pl.Int64), "rel"
    )


def _atoms(key_rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return (comp, fine, atom) and (comp, atom, key, m): cells with equal key sets merge."""
    signatures = key_rows.unique().group_by("comp", "fine").agg(pl.col("key").sort().alias("keys"))
    text = pl.col("keys").cast(pl.List(pl.String)).list.join(",")
    signatures = signatures.with_columns(
        text.rank("dense").over("comp").cast(pl.Int64).sub(1).alias("atom")
    )
    sizes = signatures.group_by("comp", "atom").len("m")
    atom_keys = (
        signatures.select("comp", "atom", "keys")
        .unique(["comp", "atom"])
        .explode("keys")
        .rename({"keys": "key"})
        .join(sizes, on=["comp", "atom"])
    )
    return signatures.select("comp", "fine", "atom"), atom_keys


# ---------------------------------------------------------------------------------------
# One subtree's linear programme


@dataclass
class _Part:
    """One subtree's frames (each possibly empty)."""

    atoms: pl.DataFrame
    groups: pl.DataFrame
    breakdowns: pl.DataFrame
    vulnerability: pl.DataFrame
    priors: pl.DataFrame
    units: pl.DataFrame
    targets: pl.DataFrame


class _Subtree:
    """The attacker's unknowns in one subtree and the constraints on them.

    Unknowns come in blocks, one per (atom, class, consent pattern): 20 sex × age band
    counts (or one total when no sex or age breakdown is published in the subtree), then
    7 primary-vulnerability counts when a vulnerability breakdown is.
    """

    def __init__(self, model: _Model, part: _Part, cg: int) -> None:
        self.model, self.part = model, part
        atoms = part.atoms.select("atom", "m").unique().sort("atom")
        self.m = atoms["m"].to_numpy()
        self.atoms_of = {
            key: np.sort(group["atom"].to_numpy())
            for (key,), group in part.atoms.partition_by("key", as_dict=True).items()
        }
        classes = model.classes
        members = [c for c, g in enumerate(classes.group) if g == cg]
        self.pairs = [pair for pair in classes.by_label if classes.by_label[pair][0] in members]
        cps = [(c, p) for c in members for p in classes.patterns[c]]
        self.cp_class = np.array([c for c, _ in cps])
        self.cp_pattern = np.array([p for _, p in cps])
        dims = set(part.breakdowns["dim"].unique().to_list())
        self.joint = JOINT_WIDTH if dims & {"sex", "age_band"} else 1
        self.has_vulnerability = part.vulnerability.height > 0
        self.width = self.joint + (len(VULNERABILITIES) if self.has_vulnerability else 0)
        self.rows: list[tuple[np.ndarray, np.ndarray | None, float, float, str]] = []
        self.masks: dict[tuple[int, str], np.ndarray] = {}

    @property
    def structural(self) -> int:
        """Return the number of count unknowns (before slack variables)."""
        return self.m.size * self.cp_class.size * self.width

    def release_mask(self, rel: int, label: str) -> np.ndarray:
        """Return which (class, pattern) pairs a release counts under a label."""
        if (rel, label) not in self.masks:
            members = self.model.classes.by_label[(rel, label)]
            counted = np.isin(self.cp_class, members) & ((self.cp_pattern & (1 << rel)) != 0)
            self.masks[(rel, label)] = counted
        return self.masks[(rel, label)]

    def offsets(self, dim: str, cat: int) -> np.ndarray | None:
        """Return a block's columns for a category, or None when it is not modelled."""
        if dim == "total":
            return np.arange(self.joint)
        if dim == "vulnerability":
            return np.array([self.joint + cat]) if self.has_vulnerability else None
        if self.joint == 1:
            return None
        grid = np.arange(JOINT_WIDTH).reshape(len(SEXES), len(AGES))
        if dim == "sex":
            return grid[cat]
        return grid[:, cat] if dim == "age_band" else np.array([cat])

    def columns(self, atoms: np.ndarray, mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Return the columns of the given atoms, (class, pattern) pairs and categories."""
        blocks = (atoms[:, None] * mask.size + np.flatnonzero(mask)[None, :]).ravel()
        return (blocks[:, None] * self.width + offsets[None, :]).ravel()

    def add(self, cols: np.ndarray, lo: float, hi: float, tag: str, coefs=None) -> None:
        """Add the constraint ``lo <= sum(coefs * x[cols]) <= hi``."""
        self.rows.append((cols, coefs, float(lo), float(hi), tag))


def _cell_name(cell: int) -> str:
    """Return an H3 cell as its hex string."""
    return f"{cell:x}"


def _add_published(tree: _Subtree) -> None:
    """Add one equation (or interval) per published group and breakdown row."""
    names = [v.name for v in tree.model.views]
    total = tree.offsets("total", -1)
    for gid, rel, label, cell, lo, hi in tree.part.groups.select(
        "gid", "rel", "label", "cell", "lo", "hi"
    ).iter_rows():
        cols = tree.columns(tree.atoms_of[gid], tree.release_mask(rel, label), total)
        tree.add(cols, lo, hi, f"group {_cell_name(cell)} {label} of {names[rel]}")
    rows = tree.part.breakdowns.select("gid", "rel", "label", "cell", "dim", "cat", "lo", "hi")
    for gid, rel, label, cell, dim, cat, lo, hi in rows.iter_rows():
        offsets = tree.offsets(dim, CATEGORIES[dim].index(cat))
        cols = tree.columns(tree.atoms_of[gid], tree.release_mask(rel, label), offsets)
        tree.add(cols, lo, hi, f"{dim} {cat} of {_cell_name(cell)} {label} of {names[rel]}")


def _add_vulnerability(tree: _Subtree) -> None:
    """Add the vulnerability rows: a category summed over a floor cell's groups."""
    names = [v.name for v in tree.model.views]
    under: dict[tuple, list[np.ndarray]] = {}
    for gid, rel, label, floor in tree.part.groups.select(
        "gid", "rel", "label", "floor"
    ).iter_rows():
        under.setdefault((rel, label, floor), []).append(tree.atoms_of[gid])
    rows = tree.part.vulnerability.select("rel", "label", "floor", "cat", "lo", "hi")
    for rel, label, floor, cat, lo, hi in rows.iter_rows():
        atoms = np.concatenate(under[(rel, label, floor)])
        offsets = tree.offsets("vulnerability", VULNERABILITIES.index(cat))
        cols = tree.columns(atoms, tree.release_mask(rel, label), offsets)
        tree.add(
            cols, lo, hi, f"vulnerability {cat} of {_cell_name(floor)} {label} of {names[rel]}"
        )
    joint = np.arange(tree.joint)
    vulnerable = tree.joint + np.arange(len(VULNERABILITIES))
    coefs = np.concatenate([np.ones(vulnerable.size), -np.ones(joint.size)])
    for block in range(tree.structural // tree.width):
        cols = block * tree.width + np.concatenate([vulnerable, joint])
        tree.add(cols, 0, 0, "vulnerabilities add up to the cases", coefs)


def _base_published(tree: _Subtree) -> dict[tuple[int, str], set[int]]:
    """Return, per (release, label), the atoms under a group published at the base."""
    placed = tree.part.atoms.join(
        tree.part.groups.select(pl.col("gid").alias("key"), "rel", "label", "res"), on="key"
    )
    out: dict[tuple[int, str], set[int]] = {}
    for atom, rel, label, res in placed.select("atom", "rel", "label", "res").iter_rows():
        if res == tree.model.views[rel].policy.base_resolution:
            out.setdefault((rel, label), set()).add(atom)
    return out


def _add_priors(tree: _Subtree) -> None:
    """Add the method's bound: a base group the release does not publish has < k cases."""
    published = _base_published(tree)
    total = tree.offsets("total", -1)
    prior_atoms = {
        rel: [tree.atoms_of[key] for key in group["key"].to_list()]
        for (rel,), group in tree.part.priors.partition_by("rel", as_dict=True).items()
    }
    for rel, label in tree.pairs:
        view = tree.model.views[rel]
        ceiling = view.policy.k - 1
        mask, skip = tree.release_mask(rel, label), published.get((rel, label), set())
        tag = f"unpublished base group {label} of {view.name}"
        if view.policy.base_resolution == tree.model.fine:
            for atom in range(tree.m.size):
                if atom not in skip:
                    tree.add(
                        tree.columns(np.array([atom]), mask, total), 0, tree.m[atom] * ceiling, tag
                    )
            continue
        for atoms in prior_atoms.get(rel, []):
            if not skip.intersection(atoms.tolist()):
                tree.add(tree.columns(atoms, mask, total), 0, ceiling, tag)


def _add_totals(tree: _Subtree) -> None:
    """Add the release-level totals, projected onto this subtree.

    The dropped cases bound the cases of the subtree's cells outside a release's groups.
    A rounded release's audience minus its dropped cases bounds the sum of its groups;
    the other subtrees' groups are given their published intervals.
    """
    total = tree.offsets("total", -1)
    groups = tree.part.groups
    for view in tree.model.views:
        cols = []
        for rel, label in tree.pairs:
            if rel != view.index:
                continue
            held = groups.filter((pl.col("rel") == rel) & (pl.col("label") == label))["gid"]
            covered = {int(a) for gid in held.to_list() for a in tree.atoms_of[gid]}
            free = np.array(sorted(set(range(tree.m.size)) - covered), dtype=np.int64)
            cols.append(tree.columns(free, tree.release_mask(rel, label), total))
        if cols and sum(c.size for c in cols):
            tree.add(np.concatenate(cols), 0, view.dropped_hi, f"dropped cases of {view.name}")
        if view.group_sum is not None:
            _add_group_sum(tree, view, total)


def _add_group_sum(tree: _Subtree, view: _View, total: np.ndarray) -> None:
    """Add the bound on this subtree's groups of a rounded release."""
    mine = tree.part.groups.filter(pl.col("rel") == view.index)
    if mine.height == 0:
        return
    cols = np.concatenate(
        [
            tree.columns(tree.atoms_of[gid], tree.release_mask(view.index, label), total)
            for gid, label in mine.select("gid", "label").iter_rows()
        ]
    )
    others_lo = int(view.groups["lo"].sum()) - int(mine["lo"].sum())
    others_hi = int(view.groups["hi"].sum()) - int(mine["hi"].sum())
    lo, hi = view.group_sum
    tree.add(cols, lo - others_hi, hi - others_lo, f"published cases of {view.name}")


def _system(tree: _Subtree) -> tuple[LinearSystem, sparse.csr_array, list[tuple]]:
    """Return the subtree's linear system, its count rows and their (lo, hi, tag).

    A row with ``lo < hi`` gets a slack variable bounded by [lo, hi].
    """
    n = tree.structural
    data, row_ids, col_ids, intervals = [], [], [], []
    for i, (cols, coefs, lo, hi, tag) in enumerate(tree.rows):
        data.append(np.ones(cols.size) if coefs is None else coefs)
        row_ids.append(np.full(cols.size, i))
        col_ids.append(cols)
        intervals.append((lo, hi, tag))
    shape = (len(tree.rows), n)
    if tree.rows:
        counts = sparse.csr_array(
            (np.concatenate(data), (np.concatenate(row_ids), np.concatenate(col_ids))), shape=shape
        )
    else:
        counts = sparse.csr_array(shape)
    lo = np.array([r[0] for r in intervals])
    hi = np.array([r[1] for r in intervals])
    slack = np.flatnonzero(lo < hi)
    link = sparse.csr_array(
        (-np.ones(slack.size), (slack, np.arange(slack.size))), shape=(shape[0], slack.size)
    )
    system = LinearSystem(
        sparse.hstack([counts, link], format="csr"),
        np.where(lo < hi, 0.0, lo),
        np.concatenate([np.zeros(n), lo[slack]]),
        np.concatenate([np.full(n, np.inf), hi[slack]]),
    )
    return system, counts, intervals


def _truth(tree: _Subtree) -> np.ndarray:
    """Return the true counts of the subtree's unknowns (the steward's point)."""
    x = np.zeros(tree.structural)
    units = tree.part.units
    if units.height == 0:
        return x
    pair = {(c, p): i for i, (c, p) in enumerate(zip(tree.cp_class, tree.cp_pattern, strict=True))}
    cp = np.array([pair[key] for key in units.select("class", "pattern").iter_rows()])
    block = units["atom"].to_numpy() * tree.cp_class.size + cp
    joint = units["sex"].to_numpy() * len(AGES) + units["age_band"].to_numpy()
    n = units["n"].to_numpy().astype(float)
    np.add.at(x, block * tree.width + (joint if tree.joint > 1 else 0), n)
    if tree.has_vulnerability:
        np.add.at(x, block * tree.width + tree.joint + units["vulnerability"].to_numpy(), n)
    return x


def _check_truth(counts: sparse.csr_array, intervals: list[tuple], truth: np.ndarray) -> None:
    """Check that the true counts satisfy every constraint (the model is the method).

    Raises
    ------
    InputError
        Naming the first published value the store's counts do not reproduce.
    """
    activity = counts @ truth
    for value, (lo, hi, tag) in zip(activity, intervals, strict=True):
        if not lo - TOLERANCE <= value <= hi + TOLERANCE:
            raise InputError(
                f"{tag}: the store's records give {value:g} where the release allows "
                f"[{lo:g}, {hi:g}]; the release was not made from this store by this method."
            )


# ---------------------------------------------------------------------------------------
# Bounding the targets


def _objectives(
    tree: _Subtree, targets: pl.DataFrame
) -> tuple[sparse.csr_array, np.ndarray, np.ndarray]:
    """Return the objective rows of the distinct targets, each target's id and each id's row.

    Targets over the same atoms, (class, pattern) pairs and category are one count. A
    category the subtree does not model (no breakdown of that dimension is published
    there) can be moved to another category: its row is -1 (it can be 0).
    """
    ids: dict[tuple, int] = {}
    rows: list[int] = []
    cols_of: list[np.ndarray] = []
    index = np.empty(targets.height, dtype=np.int64)
    fields = ("key", "rel", "label", "klass", "pattern", "dim", "cat")
    for i, (key, rel, label, klass, pattern, dim, cat) in enumerate(
        targets.select(fields).iter_rows()
    ):
        if rel >= 0:
            mask = tree.release_mask(rel, label)
        else:
            mask = (tree.cp_class == klass) & (tree.cp_pattern == pattern)
        identity = (tree.atoms_of[key].tobytes(), mask.tobytes(), dim, cat)
        index[i] = ids.setdefault(identity, len(ids))
        if index[i] < len(rows):
            continue
        offsets = tree.offsets(dim, cat)
        rows.append(-1 if offsets is None else len(cols_of))
        if offsets is not None:
            cols_of.append(tree.columns(tree.atoms_of[key], mask, offsets))
    sizes = [c.size for c in cols_of]
    matrix = sparse.csr_array(
        (
            np.ones(sum(sizes)),
            (np.repeat(np.arange(len(sizes)), sizes), np.concatenate(cols_of or [np.empty(0)])),
        ),
        shape=(len(cols_of), tree.structural),
    )
    return matrix, index, np.array(rows, dtype=np.int64)


def _lower_bounds(system: LinearSystem, objectives: sparse.csr_array) -> tuple[np.ndarray, int]:
    """Return each objective's minimum (0 once a feasible point puts it at 0), and LPs run.

    Minimising the sum of the objectives not yet at 0 finds, in a few programmes, a
    point where most of them are 0; only the rest are minimised one by one.
    """
    padding = system.lower.size - objectives.shape[1]
    objectives = sparse.hstack(
        [objectives, sparse.csr_array((objectives.shape[0], padding))], format="csr"
    )
    lows = np.full(objectives.shape[0], np.nan)
    pending, programmes = np.arange(objectives.shape[0]), 0
    while pending.size:
        _, point = system.optimum(np.asarray(objectives[pending].sum(axis=0)).ravel())
        programmes += 1
        zero = objectives[pending] @ point <= TOLERANCE
        if not zero.any():
            break
        lows[pending[zero]] = 0.0
        pending = pending[~zero]
    for row in pending:
        lows[row] = system.optimum(objectives[[row]].toarray().ravel())[0]
        programmes += 1
    return lows, programmes


def _upper_bound(system: LinearSystem, objective: np.ndarray) -> float:
    """Return the maximum of one objective (padded to the system's variables)."""
    padded = np.zeros(system.lower.size)
    padded[: objective.size] = objective
    return system.optimum(padded, maximise=True)[0]


def _detail(dim: str, cat: int, pattern: int, names: list[str]) -> str:
    """Return what a target counts beyond its group, for the report."""
    if dim == "cross":
        return f"sex={SEXES[cat // len(AGES)]} age_band={AGES[cat % len(AGES)]}"
    if dim != "total":
        return f"{dim}={CATEGORIES[dim][cat]}"
    if pattern:
        counted = [name for i, name in enumerate(names) if pattern >> i & 1]
        missed = [name for i, name in enumerate(names) if not pattern >> i & 1]
        return f"counted in {' and '.join(counted)} but not in {' and '.join(missed)}"
    return ""


def _finding(row: dict, lo: float, hi: float, names: list[str]) -> Finding | None:
    """Return the finding for a target if its proven interval discloses it."""
    verdict = classify(lo, hi, row["k"])
    if not verdict.disclosed:
        return None
    return Finding(
        kind=row["kind"],
        release=names[row["rel"]] if row["rel"] >= 0 else "",
        cell=_cell_name(row["cell"]),
        resolution=row["res"],
        nationality=row["label"],
        detail=_detail(row["dim"], row["cat"], row["pattern"], names),
        lo=verdict.lo,
        hi=verdict.hi,
        true=row["true"],
    )


def _solve_subtree(model: _Model, part: _Part, cg: int, report: AuditReport) -> None:
    """Bound every target of one subtree and add what is disclosed to the report."""
    tree = _Subtree(model, part, cg)
    _add_published(tree)
    if tree.has_vulnerability:
        _add_vulnerability(tree)
    _add_priors(tree)
    _add_totals(tree)
    system, counts, intervals = _system(tree)
    _check_truth(counts, intervals, _truth(tree))
    objectives, index, rows = _objectives(tree, part.targets)
    lows, programmes = _lower_bounds(system, objectives)
    report.linear_programs += programmes
    names = [v.name for v in model.views]
    seen: set[int] = set()
    for identity, row in zip(index, part.targets.iter_rows(named=True), strict=True):
        if identity in seen:
            continue
        seen.add(identity)
        report.checked[row["kind"]] += 1
        expr = rows[identity]
        if expr < 0 or lows[expr] <= TOLERANCE:
            continue
        hi = math.inf if row["open"] else _upper_bound(system, objectives[[expr]].toarray().ravel())
        report.linear_programs += 0 if row["open"] else 1
        finding = _finding(row, lows[expr], hi, names)
        (report.exact if finding.lo == finding.hi else report.existence).append(finding)


def _group_comps(model: _Model) -> pl.DataFrame:
    """Return every published group with its release and subtree."""
    groups = pl.concat(
        [v.groups.with_columns(pl.lit(v.index, dtype=pl.Int64).alias("rel")) for v in model.views]
    )
    return groups.join(model.cover.select("gid", "comp").unique(), on="gid")


def _parts(model: _Model, targets: pl.DataFrame, report: AuditReport) -> dict[int, tuple]:
    """Return, per subtree with targets, its class group and frames.

    Targets outside every subtree, or whose cells are in no constraint, can be 0: they
    are counted as checked here and not solved.
    """
    priors = _prior_keys(model)
    first = max(int(model.cover["gid"].max() or 0), int(priors["key"].max() or 0)) + 1
    members, keyed = _cell_sets(model, targets.filter(pl.col("gid") < 0), first)
    groups = _group_comps(model)
    by_group = (
        targets.filter(pl.col("gid") >= 0)
        .join(groups.select("gid", "comp"), on="gid")
        .with_columns(
            pl.col("gid").alias("key"), pl.lit(False).alias("open"), pl.lit(False).alias("free")
        )
    )
    placed = pl.concat([keyed.select(by_group.columns), by_group], how="vertical_relaxed")
    solvable = placed.filter(~pl.col("free")).sort("tid")
    unsolved = targets.join(solvable.select("tid"), on="tid", how="anti").unique(
        ["gid", "cell", "anchor_res", "units", "dim", "cat"], keep="first"
    )
    for kind, n in unsolved.group_by("kind").len().iter_rows():
        report.checked[kind] += n
    key_rows = pl.concat(
        [
            model.cover.select("comp", "fine", pl.col("gid").alias("key")),
            priors.select("comp", "fine", "key"),
            members,
        ]
    )
    fine_atoms, atom_keys = _atoms(key_rows)
    units = model.comp_of(model.units, "fine").join(fine_atoms, on=["comp", "fine"])
    frames = {
        "atoms": atom_keys,
        "groups": groups,
        "breakdowns": _breakdown_comps(model, groups),
        "vulnerability": _vulnerability_comps(model),
        "priors": priors.select("comp", "key", "rel").unique(),
        "units": units,
        "targets": solvable,
    }
    split = {name: frame.partition_by("comp", as_dict=True) for name, frame in frames.items()}
    cgs = dict(model.comps.select("comp", "cg").iter_rows())
    return {
        comp: (cgs[comp], _Part(**{n: split[n].get((comp,), frames[n].clear()) for n in frames}))
        for (comp,) in split["targets"]
    }


def _breakdown_comps(model: _Model, groups: pl.DataFrame) -> pl.DataFrame:
    """Return every breakdown row with its group's release, label, cell and subtree."""
    rows = pl.concat([v.breakdowns for v in model.views])
    return rows.join(groups.select("gid", "rel", "label", "cell", "comp"), on="gid")


def _vulnerability_comps(model: _Model) -> pl.DataFrame:
    """Return every vulnerability row with its release and subtree."""
    rows = pl.concat(
        [
            v.vulnerability.with_columns(pl.lit(v.index, dtype=pl.Int64).alias("rel"))
            for v in model.views
        ]
    ).join(_label_groups(model.classes), on=["rel", "label"])
    return model.comp_of(rows, "floor")


# ---------------------------------------------------------------------------------------
# Entry points


def audit_releases(releases: Mapping[str, Release], records: pl.DataFrame) -> AuditReport:
    """Audit releases made from the same records (pure: no I/O).

    Parameters
    ----------
    releases
        Release name → release, all made from ``records``.
    records
        The steward's records: nationality, cell (H3 integer at resolution 8), sex,
        age_band, vulnerabilities (bit mask), persons, consent (bit mask).

    Returns
    -------
    AuditReport
        Counts checked, exact and existence disclosures, time taken.

    Raises
    ------
    InputError
        If a release was not made from these records by this method.
    """
    start = time.perf_counter()
    views, first = [], 0
    for index, (name, release) in enumerate(releases.items()):
        views.append(_view(index, name, release, records, first))
        first += views[-1].groups.height
    report = AuditReport(releases=list(releases), checked=dict.fromkeys(TARGET_KINDS, 0))
    if any(view.labels for view in views):
        model = _model(views, records)
        parts = _parts(model, _targets(model), report)
        for cg, part in parts.values():
            _solve_subtree(model, part, cg, report)
        report.subtrees = len(parts)
    report.seconds = time.perf_counter() - start
    return report


def store_records(store_path: str | Path) -> pl.DataFrame:
    """Return every stored registration with its consent bit mask (steward side).

    Raises
    ------
    InputError
        If the store is missing or not a crisis-exposure store.
    """
    con = steward_store.connect(store_path, read_only=True)
    try:
        return con.sql(
            "SELECT nationality, cell, sex, age_band, vulnerabilities,"
            " (1 + family_members)::BIGINT AS persons, consent FROM registrations"
        ).pl()
    finally:
        con.close()


def run_audit(release_paths: Sequence[str | Path], store_path: str | Path) -> AuditReport:
    """Audit release files against the store they were made from.

    Returns
    -------
    AuditReport
        See :func:`audit_releases`.

    Raises
    ------
    InputError
        For a missing or altered release file, a missing store, or a release that was
        not made from this store.
    """
    releases: dict[str, Release] = {}
    for path in release_paths:
        name = Path(path).name
        releases[name if name not in releases else str(path)] = read_release(path)
    return audit_releases(releases, store_records(store_path))


def _cmd_audit(args: argparse.Namespace) -> int:
    report = run_audit(args.releases, args.store)
    print("\n".join(report.lines(args.examples)))
    return 0 if report.ok else 1


def add_audit_command(commands: argparse._SubParsersAction) -> None:
    """Register the ``audit`` subcommand on an argparse subparsers object.

    Its ``run`` default returns the exit code: 0 when nothing is disclosed, 1 otherwise.
    """
    audit = commands.add_parser(
        "audit",
        help="check releases with a linear-programming attacker (exit 1 on disclosure)",
        description="Play an attacker who knows the method and sees every number of every "
        "release given; for each count between 1 and k−1 in the store, compute the interval "
        "the attacker can prove (HiGHS) and report exact and existence disclosures, also "
        "those that only appear between releases. Exit code 1 when anything is disclosed.",
    )
    audit.add_argument(
        "releases",
        nargs="+",
        type=Path,
        metavar="RELEASE",
        help="release files made from the store",
    )
    audit.add_argument(
        "--store", required=True, type=Path, help="the steward store the releases were made from"
    )
    audit.add_argument(
        "--examples", type=int, default=10, help="findings to show of each kind (default 10)"
    )
    audit.set_defaults(run=_cmd_audit)
