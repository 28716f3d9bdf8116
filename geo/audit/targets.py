"""The counts the audit checks (targets), each with its true value between 1 and k−1.

Per release: every (base cell, nationality) group and its categories, every
unpublished residual at a coarser resolution, the categories and sex × age cross-cells
of published groups whose breakdown is not published; with several releases, every
(cell, nationality class, consent pattern) subgroup, which is where differences
between releases show. Targets that are the same count under two names (a public and
an embassy release with one consent scope) are kept once.
"""

from __future__ import annotations

import polars as pl
import polars_h3

from geo.audit.model import AGES, CATEGORIES, Model, View, cover_at_base, label_groups

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


def _release_units(model: Model, view: View) -> pl.DataFrame:
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


def _base_targets(units: pl.DataFrame, view: View) -> list[pl.DataFrame]:
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


def _residual_targets(units: pl.DataFrame, view: View) -> list[pl.DataFrame]:
    """Return the unpublished residuals between 1 and k−1 at every coarser resolution."""
    placed = units.join(
        cover_at_base(view).select("base", "label", pl.col("res").alias("gres")),
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


def _group_targets(units: pl.DataFrame, view: View) -> list[pl.DataFrame]:
    """Return categories and sex × age cells of published groups between 1 and k−1.

    In an exact release a category of a published breakdown is either 0 or at least k,
    so only the dimensions a group does not publish are checked (vulnerability: every
    group); in a noisy release a published category can be anything, so all are.
    """
    k = view.policy.k
    placed = units.join(cover_at_base(view).select("base", "label", "gid"), on=["base", "label"])
    cells = view.groups.select("gid", "cell", "res", "label")
    published = view.breakdowns.select("gid", "dim").unique()
    if view.policy.method != "exact":
        published = published.clear()
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


def _subgroup_targets(model: Model) -> pl.DataFrame:
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


def build_targets(model: Model) -> pl.DataFrame:
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
        label_groups(model.classes).join(_label_units(model), on=["rel", "label"]),
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


def _label_units(model: Model) -> pl.DataFrame:
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
