"""Audit a store's whole ledger: each snapshot's releases together, then the flows between.

Releases are never alone (design, point 4): whoever holds one may hold every release
the store ever made, at every store version. The attacker's knowledge then splits
cleanly. Releases made from the same store version share their unknowns (one registry
snapshot, several audiences): they are audited together by the linear-programming
attacker (:func:`geo.audit.audit_releases`). Releases made from different versions
share none: between two snapshots registrations may be added, removed, moved or
re-consented, so nothing links the true counts of one snapshot to the other's, and the
attacker's joint programme separates into one programme per snapshot. What that
attacker can prove about a flow x₂ − x₁ of a (cell, nationality) unit is therefore the
difference of what it can prove about each stock: [lo₂ − hi₁, hi₂ − lo₁]; an attacker
who also knows one side's stock exactly (the issue's attacker "knows everything except
the small groups": a stock of 0 or at least k) gets [lo₂ − x₁, hi₂ − x₁], or
[x₂ − hi₁, x₂ − lo₁].

The stock bounds used for the flows are the structure's (:func:`stock_bounds`): a
cell's published groups (exact values, rounding intervals, or ≥ k when noisy) plus at
most k−1 cases in each base cell under it that no group accounts for. For a noisy
release that is all its values prove. For an exact release the per-snapshot programme
can prove tighter stock intervals (the dropped total, breakdowns, the residual of an
enclosing group), so the flows found there are a floor on what a full attacker finds;
exact releases already fail on the flows these bounds alone expose. A flow whose true
value is between 1 and k−1 in absolute value is disclosed when one of those intervals
is a single value ("flow exact") or lies inside [1, k−1] or [−(k−1), −1] ("flow
existence"). Crossing the threshold (a group of 12 that falls to 8: proven in
[−12, −3]) is not reported: which groups are published is decided on true counts, by
both methods.

Cost: one linear-programming audit per store version (as for the releases alone), plus
one join per pair of releases made at different versions over the units (cells at each
resolution × nationalities) present in either snapshot: O(pairs × units), with
pairs = n(n−1)/2 for n releases. Pure: the ledger's releases and snapshots are handed in
(:func:`geo.pipeline.audit_ledger` reads them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl
import polars_h3

from geo import codes
from geo.audit import AuditReport, Finding, audit_releases
from geo.audit.confirmed import confirmed_findings
from geo.audit.model import audience_labels, audience_of, intervals, release_method
from geo.audit.report import TARGET_KINDS
from geo.freshness import audience_key
from geo.release import Release

OTH = codes.OTHER_NATIONALITIES


@dataclass(frozen=True)
class LedgerEntry:
    """One release to audit: its name, the store version it was made from, the release."""

    name: str
    store_version: int
    release: Release
    release_id: int | None = None


def audit_entries(
    entries: Sequence[LedgerEntry],
    snapshots: Mapping[int, pl.DataFrame],
    complete_from: int = 0,
) -> AuditReport:
    """Audit releases of one store: each store version's together, then the flows.

    Parameters
    ----------
    entries
        The releases, oldest first (a ledger, or release files with their versions).
    snapshots
        Store version → the registrations as they were then (as
        :func:`geo.io.store_reads.registration_records` returns them).
    complete_from
        The first store version whose snapshot is whole: registrations purged or
        erased at a later version are gone from the earlier snapshots too. Releases
        made before it were audited before the deletion (a purge refuses otherwise) and
        are not audited again; flows from them are judged on their published structure
        alone (:func:`flow_findings`).

    Returns
    -------
    AuditReport
        Every release's and every flow's findings, one ``audited`` line per release and
        one for the flows.

    Raises
    ------
    InputError
        If a release was not made from its snapshot by its method.
    """
    start = time.perf_counter()
    report = AuditReport(releases=[e.name for e in entries], checked=dict.fromkeys(TARGET_KINDS, 0))
    versions = sorted({e.store_version for e in entries})
    for version in versions:
        together = [e for e in entries if e.store_version == version]
        if version < complete_from:
            report.audited += [
                f"{e.name}: store v{version}, made before registrations were purged or "
                f"erased (store v{complete_from}): audited then, its flows only now"
                for e in together
            ]
            continue
        part = audit_releases({e.name: e.release for e in together}, snapshots[version])
        report.absorb(part)
        for entry in together:
            report.audited.append(_release_line(entry, together, part))
    confirmed, checked = confirmed_findings(
        [e for e in entries if e.store_version >= complete_from], snapshots
    )
    report.checked["confirmed"] = checked
    for finding in confirmed:
        (report.exact if finding.lo == finding.hi else report.existence).append(finding)
    if len(versions) > 1:
        findings, checked, pairs = flow_findings(entries, snapshots, complete_from)
        report.checked["flow"] += checked
        for finding in findings:
            (report.exact if finding.kind == "flow exact" else report.existence).append(finding)
        exact = sum(f.kind == "flow exact" for f in findings)
        report.audited.append(
            f"flows between store versions {', '.join(map(str, versions))}: {pairs} "
            f"pair{'s' if pairs != 1 else ''} of releases, {checked} flows between 1 and "
            f"k−1: {exact} exact, {len(findings) - exact} existence"
        )
    report.seconds = time.perf_counter() - start
    return report


def _release_line(entry: LedgerEntry, together: list[LedgerEntry], part: AuditReport) -> str:
    """Return one release's line: version, method, what it was audited with, its findings."""
    exact, existence = (
        sum(f.release in (entry.name, "") for f in findings)
        for findings in (part.exact, part.existence)
    )
    others = [e.name for e in together if e is not entry]
    method = release_method(entry.release)[1]
    return (
        f"{entry.name}: store v{entry.store_version}, method {method}, "
        f"{len(entry.release.groups)} groups, audited "
        f"{'with ' + ', '.join(others) if others else 'alone'}: "
        f"{exact} exact, {existence} existence"
    )


# ---------------------------------------------------------------------------------------
# Flows between snapshots


@dataclass
class _Side:
    """One release of a pair: its policy, labels, true stocks and structural bounds."""

    entry: LedgerEntry
    k: int
    base: int
    floor: int
    nationalities: tuple[str, ...] | None
    labels: dict[str, str]
    stocks: pl.DataFrame
    bounds: pl.DataFrame


def _side(entry: LedgerEntry, records: pl.DataFrame | None) -> _Side:
    """Return a release's true unit stocks (from its snapshot) and its structural bounds.

    Without a snapshot (registrations erased since) the stocks are unknown (none) and
    the labels are the published nationalities: any other holds under k in every cell.
    """
    policy = release_method(entry.release)[0]
    if records is None:
        published = set(entry.release.groups["nationality"]) - {OTH}
        stocks = pl.DataFrame(
            schema={"res": pl.Int64, "cell": pl.UInt64, "unit": pl.String, "x": pl.Float64}
        )
        return _Side(
            entry=entry,
            k=policy.k,
            base=policy.base_resolution,
            floor=policy.floor_resolution,
            nationalities=policy.nationalities,
            labels={n: n for n in published},
            stocks=stocks,
            bounds=stock_bounds(entry.release),
        )
    audience = audience_of(records, policy)
    labels = audience_labels(audience, policy.k)
    return _Side(
        entry=entry,
        k=policy.k,
        base=policy.base_resolution,
        floor=policy.floor_resolution,
        nationalities=policy.nationalities,
        labels=labels,
        stocks=_unit_stocks(audience, labels, policy.floor_resolution, policy.base_resolution),
        bounds=stock_bounds(entry.release),
    )


def stock_intervals(entry: LedgerEntry, records: pl.DataFrame) -> pl.DataFrame:
    """Return every unit's true stock in a release and the interval its structure proves.

    Parameters
    ----------
    entry
        The release.
    records
        The registrations of the store version it was made from.

    Returns
    -------
    polars.DataFrame
        Columns res, cell, unit (a nationality, or ``OTH`` for the rare ones together),
        ``x`` (true cases), ``lo`` and ``hi``; the truth always lies in [lo, hi].
    """
    side = _side(entry, records)
    return _bounded(side.stocks, side, "")


def _unit_stocks(audience: pl.DataFrame, labels: dict, floor: int, base: int) -> pl.DataFrame:
    """Return true cases per (resolution, cell, unit): per nationality, and ``OTH`` as one."""
    units = audience.select(
        "cell",
        pl.col("nationality").alias("unit"),
        pl.col("nationality").replace_strict(labels, return_dtype=pl.String).alias("label"),
    )
    units = pl.concat(
        [
            units.select("cell", "unit"),
            units.filter(pl.col("label") == OTH).select("cell", pl.lit(OTH).alias("unit")),
        ]
    )
    frames = [
        units.group_by(polars_h3.cell_to_parent("cell", res).alias("cell"), "unit")
        .agg(pl.len().cast(pl.Float64).alias("x"))
        .with_columns(pl.lit(res, dtype=pl.Int64).alias("res"))
        for res in range(floor, base + 1)
    ]
    return pl.concat(frames).select("res", "cell", "unit", "x")


def stock_bounds(release: Release) -> pl.DataFrame:
    """Return, per (resolution, cell, label) holding published groups, what they prove.

    The stock of a cell is the sum of the groups published inside it (at its resolution
    or finer) plus whatever its base cells not under such a group hold, each at most
    k−1 (an unpublished base group); a group at the cell itself accounts for all of it.

    Returns
    -------
    polars.DataFrame
        Columns res, cell, label, ``s_lo`` and ``s_hi`` (the groups' sum: exact or an
        interval, unbounded above when noisy), ``covered`` (base cells under a group)
        and ``own`` (a group at the cell itself).
    """
    policy, method = release_method(release)
    k, base, floor = policy.k, policy.base_resolution, policy.floor_resolution
    if method == "exact":
        bounds = intervals(pl.col("cases"), policy.round_to, k)
    else:
        bounds = [pl.lit(float(k)).alias("lo"), pl.lit(math.inf).alias("hi")]
    groups = pl.from_pandas(release.groups[["h3_cell", "resolution", "nationality", "cases"]])
    groups = _with_enclosing(
        groups.select(
            polars_h3.str_to_int("h3_cell").alias("g"),
            pl.col("resolution").cast(pl.Int64).alias("gres"),
            pl.col("nationality").alias("label"),
            *bounds,
        ).with_columns(polars_h3.cell_to_children_size("g", base).cast(pl.Int64).alias("size")),
        floor,
    )
    # A group under another group inside the cell adds no base cell to those covered.
    outermost = pl.col("up").is_null() | (pl.col("up") < pl.col("res"))
    frames = [
        groups.filter(pl.col("gres") >= res)
        .with_columns(pl.lit(res, dtype=pl.Int64).alias("res"))
        .group_by(polars_h3.cell_to_parent("g", res).alias("cell"), "label", "res")
        .agg(
            pl.col("lo").sum().alias("s_lo"),
            pl.col("hi").sum().alias("s_hi"),
            pl.col("size").filter(outermost).sum().alias("covered"),
            (pl.col("gres") == pl.col("res")).any().alias("own"),
        )
        for res in range(floor, base + 1)
    ]
    return pl.concat(frames).select("res", "cell", "label", "s_lo", "s_hi", "covered", "own")


def _with_enclosing(groups: pl.DataFrame, floor: int) -> pl.DataFrame:
    """Add ``up``: the resolution of the finest group of the same label enclosing each group."""
    cells = groups.select(pl.col("g").alias("a"), pl.col("gres").alias("up"), "label")
    found = [
        groups.filter(pl.col("gres") > res)
        .with_columns(polars_h3.cell_to_parent("g", res).alias("a"))
        .join(cells.filter(pl.col("up") == res), on=["a", "label"])
        .select("g", "label", "up")
        for res in range(floor, int(groups["gres"].max() or floor))
    ]
    schema = {"g": pl.UInt64, "label": pl.String, "up": pl.Int64}
    enclosing = pl.concat([pl.DataFrame(schema=schema), *found]).group_by("g", "label").max()
    return groups.join(enclosing, on=["g", "label"], how="left")


def _bounded(units: pl.DataFrame, side: _Side, suffix: str) -> pl.DataFrame:
    """Add one side's bounds ``lo``/``hi`` + suffix to (res, cell, unit) rows.

    A nationality the release counts as ``OTH`` has fewer than k cases in all, so at
    most k−1 in any cell; any other unit is bounded by its label's groups.
    """
    label = pl.col("unit").replace_strict(side.labels, default=OTH, return_dtype=pl.String)
    rare = (label == OTH) & (pl.col("unit") != OTH)
    free = polars_h3.cell_to_children_size("cell", side.base).cast(pl.Int64) - pl.col(
        "covered"
    ).fill_null(0)
    ceiling = side.k - 1
    joined = units.with_columns(label.alias("label")).join(
        side.bounds, on=["res", "cell", "label"], how="left"
    )
    return joined.with_columns(
        pl.when(rare).then(0.0).otherwise(pl.col("s_lo").fill_null(0.0)).alias(f"lo{suffix}"),
        pl.when(rare)
        .then(float(ceiling))
        .when(pl.col("own").fill_null(False))
        .then(pl.col("s_hi"))
        .otherwise(pl.col("s_hi").fill_null(0.0) + free.cast(pl.Float64) * ceiling)
        .alias(f"hi{suffix}"),
    ).drop("label", "s_lo", "s_hi", "covered", "own")


def _comparable(first: _Side, second: _Side) -> pl.Expr:
    """Return which units both releases count: nationalities both audiences hold.

    The ``OTH`` unit only between releases of the same audience (its members depend on
    the nationalities a release counts).
    """
    allowed = pl.lit(True)
    for side in (first, second):
        if side.nationalities:
            allowed = allowed & pl.col("unit").is_in(list(side.nationalities))
    policies = [release_method(side.entry.release)[0] for side in (first, second)]
    same_window = audience_key(policies[0]) == audience_key(policies[1])
    if first.nationalities != second.nationalities or not same_window:
        allowed = allowed & (pl.col("unit") != OTH)
    return allowed


def _pair_flows(first: _Side, second: _Side) -> pl.DataFrame:
    """Return the units whose true flow is 1..k−1 in absolute value, with both bounds."""
    k = max(first.k, second.k)
    low, high = max(first.floor, second.floor), min(first.base, second.base)
    keys = ["res", "cell", "unit"]
    if first.stocks.is_empty() and second.stocks.height:  # the first's truth was erased
        published = first.bounds.filter(pl.col("label") != OTH).select(
            "res", "cell", pl.col("label").alias("unit")
        )
        units = (
            pl.concat([second.stocks.select(keys), published])
            .unique()
            .join(second.stocks, on=keys, how="left")
            .select(
                *keys,
                pl.lit(None, dtype=pl.Float64).alias("x1"),
                pl.col("x").fill_null(0.0).alias("x2"),
            )
            .filter(pl.col("res").is_between(low, high) & _comparable(first, second))
            .with_columns(pl.lit(None, dtype=pl.Float64).alias("flow"))
        )
        return _bounded(_bounded(units, first, "1"), second, "2")
    units = (
        first.stocks.rename({"x": "x1"})
        .join(second.stocks.rename({"x": "x2"}), on=keys, how="full", coalesce=True)
        .with_columns(pl.col("x1").fill_null(0.0), pl.col("x2").fill_null(0.0))
        .filter(pl.col("res").is_between(low, high) & _comparable(first, second))
        .with_columns((pl.col("x2") - pl.col("x1")).alias("flow"))
        .filter(pl.col("flow").abs().is_between(1, k - 1))
    )
    return _bounded(_bounded(units, first, "1"), second, "2")


def _candidates(first: _Side, second: _Side) -> list[tuple[pl.Expr, pl.Expr]]:
    """Return the flow intervals the attacker proves, as (lo, hi) expressions.

    Without a prior the flow is in [lo₂ − hi₁, hi₂ − lo₁]; knowing a stock that is not
    small (0, or at least k) exactly narrows it to [lo₂ − x₁, hi₂ − x₁] or
    [x₂ − hi₁, x₂ − lo₁] (null where that stock is small).
    """
    x1, x2 = pl.col("x1"), pl.col("x2")
    lo1, hi1, lo2, hi2 = (pl.col(c) for c in ("lo1", "hi1", "lo2", "hi2"))
    known1 = (x1 == 0) | (x1 >= first.k)
    known2 = (x2 == 0) | (x2 >= second.k)
    return [
        (lo2 - hi1, hi2 - lo1),
        (pl.when(known1).then(lo2 - x1), pl.when(known1).then(hi2 - x1)),
        (pl.when(known2).then(x2 - hi1), pl.when(known2).then(x2 - lo1)),
    ]


def _disclosing(flows: pl.DataFrame, first: _Side, second: _Side) -> pl.DataFrame:
    """Return the flows some proven interval puts inside ±[1, k−1], with the narrowest.

    Adds ``lo`` and ``hi``: the narrowest such interval of each flow.
    """
    k = max(first.k, second.k)
    candidates = _candidates(first, second)
    frame = flows.with_columns(
        expr.alias(f"{end}{i}")
        for i, pair in enumerate(candidates)
        for end, expr in zip(("lo", "hi"), pair, strict=True)
    )
    widths = []
    for i in range(len(candidates)):
        lo, hi = pl.col(f"lo{i}"), pl.col(f"hi{i}")
        inside = ((lo >= 1) & (hi <= k - 1)) | ((lo >= 1 - k) & (hi <= -1))
        widths.append(pl.when(inside).then(hi - lo).otherwise(math.inf))
    frame = frame.with_columns(pl.concat_list(widths).list.arg_min().alias("best"))
    frame = frame.filter(pl.min_horizontal(widths).is_finite())
    return frame.with_columns(
        pl.concat_list([f"{end}{i}" for i in range(len(candidates))])
        .list.get(pl.col("best"))
        .alias(end)
        for end in ("lo", "hi")
    )


def flow_findings(
    entries: Sequence[LedgerEntry],
    snapshots: Mapping[int, pl.DataFrame],
    complete_from: int = 0,
) -> tuple[list[Finding], int, int]:
    """Return the disclosed flows between releases made at different store versions.

    A release made before ``complete_from`` (its snapshot lost erased registrations)
    meets later ones on its published structure alone: its stock is not known, so
    every flow whose proven interval lies within ±[1, k−1] is a finding (the interval
    holds the truth); two such releases are not compared again.

    Parameters
    ----------
    entries
        The releases, oldest first.
    snapshots
        Store version → the registrations then.

    Returns
    -------
    tuple
        The findings (kinds ``flow exact`` and ``flow existence``), the number of flows
        between 1 and k−1 checked, and the number of pairs of releases compared.
    """
    sides = [
        _side(
            entry, snapshots[entry.store_version] if entry.store_version >= complete_from else None
        )
        for entry in entries
    ]
    findings: list[Finding] = []
    checked = pairs = 0
    for i, one in enumerate(sides):
        for other in sides[i + 1 :]:
            if one.entry.store_version == other.entry.store_version:
                continue
            if max(one.entry.store_version, other.entry.store_version) < complete_from:
                continue
            first, second = sorted((one, other), key=lambda side: side.entry.store_version)
            pairs += 1
            flows = _pair_flows(first, second)
            checked += flows.height
            findings += _pair_findings(_disclosing(flows, first, second), first, second)
    return findings, checked, pairs


def _pair_findings(flows: pl.DataFrame, first: _Side, second: _Side) -> list[Finding]:
    """Return the findings of one pair's disclosing flows (with their ``lo`` and ``hi``)."""
    a, b = first.entry, second.entry
    findings = []
    for row in flows.sort("res", "cell", "unit").iter_rows(named=True):
        lo, hi = row["lo"], row["hi"]
        findings.append(
            Finding(
                kind="flow exact" if lo == hi else "flow existence",
                release=f"{a.name} → {b.name}",
                cell=f"{row['cell']:x}",
                resolution=row["res"],
                nationality=row["unit"],
                detail=f"cases from store v{a.store_version} to v{b.store_version}"
                + (" (earlier registrations erased)" if row["flow"] is None else ""),
                lo=int(math.ceil(lo)),
                hi=float(math.floor(hi)),
                true=int(row["flow"]) if row["flow"] is not None else int(math.ceil(lo)),
                pair=(a.release_id, b.release_id),
            )
        )
    return findings
