"""Cut the attacker's model into subtrees, with the cells it cannot tell apart merged.

Every target and constraint ranges over a set of fine cells ("keys": a published
group, an unpublished base cell of a coarser release, a target's cell set). Fine cells
of one subtree that belong to exactly the same keys are merged into one atom of ``m``
cells: exact for a linear programme, since the sum of m copies of a convex set is m
times the set, and it keeps every programme as small as the releases make it. The
frames of each subtree (atoms, groups, breakdowns, vulnerability rows, priors, true
units, targets) are then handed to :mod:`geo.audit.subtrees` one subtree at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import polars_h3

from geo.audit.model import Model, label_groups
from geo.audit.report import AuditReport

# ---------------------------------------------------------------------------------------
# Cells the attacker cannot tell apart (atoms)


def _cell_sets(
    model: Model, targets: pl.DataFrame, first: int
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


def _anchor_resolutions(model: Model, sets: pl.DataFrame) -> list[int]:
    """Return the resolutions of the sets' anchor cells (never empty: frames keep columns)."""
    return sorted(set(sets["anchor_res"].to_list()) | {model.fine})


def _residual_members(model: Model, members: pl.DataFrame) -> pl.DataFrame:
    """Drop from residual sets the cells under a group finer than the residual."""
    placed = model.cover.select(
        "comp", "fine", pl.col("rel").alias("set_rel"), "label", pl.col("res").alias("gres")
    )
    members = members.join(placed, on=["comp", "fine", "set_rel", "label"], how="left")
    return members.filter(
        (pl.col("cond") < 0) | pl.col("gres").is_null() | (pl.col("gres") <= pl.col("cond"))
    )


def _set_sizes(
    model: Model, universe: pl.DataFrame, sets: pl.DataFrame, members: pl.DataFrame
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


def _prior_keys(model: Model) -> pl.DataFrame:
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
# One subtree's frames


@dataclass
class Part:
    """One subtree's frames (each possibly empty)."""

    atoms: pl.DataFrame
    groups: pl.DataFrame
    breakdowns: pl.DataFrame
    vulnerability: pl.DataFrame
    priors: pl.DataFrame
    units: pl.DataFrame
    targets: pl.DataFrame


def _group_comps(model: Model) -> pl.DataFrame:
    """Return every published group with its release and subtree."""
    groups = pl.concat(
        [v.groups.with_columns(pl.lit(v.index, dtype=pl.Int64).alias("rel")) for v in model.views]
    )
    return groups.join(model.cover.select("gid", "comp").unique(), on="gid")


def split_into_parts(model: Model, targets: pl.DataFrame, report: AuditReport) -> dict[int, tuple]:
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
        comp: (cgs[comp], Part(**{n: split[n].get((comp,), frames[n].clear()) for n in frames}))
        for (comp,) in split["targets"]
    }


def _breakdown_comps(model: Model, groups: pl.DataFrame) -> pl.DataFrame:
    """Return every breakdown row with its group's release, label, cell and subtree."""
    rows = pl.concat([v.breakdowns for v in model.views])
    return rows.join(groups.select("gid", "rel", "label", "cell", "comp"), on="gid")


def _vulnerability_comps(model: Model) -> pl.DataFrame:
    """Return every vulnerability row with its release and subtree."""
    rows = pl.concat(
        [
            v.vulnerability.with_columns(pl.lit(v.index, dtype=pl.Int64).alias("rel"))
            for v in model.views
        ]
    ).join(label_groups(model.classes), on=["rel", "label"])
    return model.comp_of(rows, "floor")
