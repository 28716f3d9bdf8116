"""One subtree's linear programme: unknowns, constraints, the truth check, the bounds.

The unknowns of a subtree are counts per (atom, class, consent pattern), split by
sex × age band and by primary vulnerability where such breakdowns are published. The
constraints are what the attacker knows: each published group and breakdown row, the
vulnerability rows of a floor cell, the method's bound that an unpublished base group
holds at most k−1 cases (the "priors"), and the dropped cases projected onto the
subtree. A row that every non-negative count satisfies (a noisy release's category,
``[0, ∞)``) is no constraint and is left out, which keeps a noisy release's programme
to one unknown per block. The steward's true counts must satisfy every constraint
(else the release was not made from these records by this method); then each target
is minimised, and maximised when its minimum is at least 1, and what is disclosed
becomes a finding.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from scipy import sparse

from geo.audit.lp import TOLERANCE, LinearSystem, classify
from geo.audit.model import AGES, CATEGORIES, JOINT_WIDTH, SEXES, VULNERABILITIES, Model
from geo.audit.parts import Part
from geo.audit.report import AuditReport, Finding
from geo.errors import InputError


class _Subtree:
    """The attacker's unknowns in one subtree and the constraints on them.

    Unknowns come in blocks, one per (atom, class, consent pattern): 20 sex × age band
    counts (or one total when no sex or age breakdown is published in the subtree), then
    7 primary-vulnerability counts when a vulnerability breakdown is.
    """

    def __init__(self, model: Model, part: Part, cg: int) -> None:
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
        self.breakdowns = _binding(part.breakdowns)
        self.vulnerability = _binding(part.vulnerability)
        dims = set(self.breakdowns["dim"].unique().to_list())
        self.joint = JOINT_WIDTH if dims & {"sex", "age_band"} else 1
        self.has_vulnerability = self.vulnerability.height > 0
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


def _binding(rows: pl.DataFrame) -> pl.DataFrame:
    """Return the rows that constrain non-negative counts (not ``[0, ∞)``)."""
    return rows.filter((pl.col("lo") > 0) | pl.col("hi").is_finite())


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
    rows = tree.breakdowns.select("gid", "rel", "label", "cell", "dim", "cat", "lo", "hi")
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
    rows = tree.vulnerability.select("rel", "label", "floor", "cat", "lo", "hi")
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


def _add_dropped(tree: _Subtree) -> None:
    """Add the dropped cases, projected onto this subtree.

    The dropped cases bound the cases of the subtree's cells outside a release's groups
    (an exact release's; a noisy release's dropped figure bounds nothing).
    """
    total = tree.offsets("total", -1)
    groups = tree.part.groups
    for view in tree.model.views:
        if not math.isfinite(view.dropped_hi):
            continue
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


def solve_subtree(model: Model, part: Part, cg: int, report: AuditReport) -> None:
    """Bound every target of one subtree and add what is disclosed to the report."""
    tree = _Subtree(model, part, cg)
    _add_published(tree)
    if tree.has_vulnerability:
        _add_vulnerability(tree)
    _add_priors(tree)
    _add_dropped(tree)
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
