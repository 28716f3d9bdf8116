"""Attack the confirmed-within figures: each, their gaps, and their changes between releases.

A release publishes how many cases of its audience were confirmed within 6, 12 and 24
months, and the audience's cases (``confirmed_within_months``,
:func:`geo.freshness.confirmed_block`). What a published figure proves is, as for every
count: the value itself for an exact release (a rounding interval when rounded), and
nothing beyond ``≥ 0`` for a noisy one (the keyed noise is unbounded). The attacker
combines them by interval arithmetic: every figure, every gap inside a release (the
cases confirmed between 12 and 24 months ago, the audience not confirmed within 6…)
and every change of one figure between two releases (another date, window or
audience). A target whose true value lies between 1 and k−1 is disclosed when its
proven interval is a single value or lies within [1, k−1]. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import TYPE_CHECKING

import polars as pl

from geo.audit.model import audience_of, release_method
from geo.audit.report import Finding
from geo.freshness import BLOCK_KEY, CONFIRMED_MONTHS, block_truth, reference_day

if TYPE_CHECKING:
    from geo.ledger_audit import LedgerEntry

BUCKETS = (*map(str, CONFIRMED_MONTHS), "audience")


def _figures(entry: LedgerEntry, records: pl.DataFrame) -> dict[str, tuple[float, float, int]]:
    """Return bucket → (proven lo, proven hi, true value) of one release's block."""
    policy, method = release_method(entry.release)
    block = entry.release.metadata[BLOCK_KEY]
    reference = reference_day(policy, entry.release.metadata["created_at"])
    truth = block_truth(audience_of(records, policy), reference)
    out = {}
    for bucket in BUCKETS:
        value = float(block[bucket])
        if method != "exact":
            lo, hi = 0.0, math.inf
        elif policy.round_to:
            lo, hi = max(value - policy.round_to // 2, 0.0), value + (policy.round_to + 1) // 2 - 1
        else:
            lo = hi = value
        out[bucket] = (lo, hi, truth[bucket])
    return out


def _targets(entries: Sequence[LedgerEntry], figures: list[dict]) -> list[tuple]:
    """Return (release name, what, lo, hi, true) of every figure, gap and change."""
    targets = []
    for entry, block in zip(entries, figures, strict=True):
        for bucket in BUCKETS:
            lo, hi, true = block[bucket]
            what = "audience cases" if bucket == "audience" else f"confirmed within {bucket} months"
            targets.append((entry.name, what, lo, hi, true))
        for small, large in combinations(BUCKETS, 2):
            lo_s, hi_s, x_s = block[small]
            lo_l, hi_l, x_l = block[large]
            what = f"cases in '{large}' not in '{small}' (months)"
            targets.append((entry.name, what, lo_l - hi_s, hi_l - lo_s, x_l - x_s))
    for (a, fa), (b, fb) in combinations(zip(entries, figures, strict=True), 2):
        for bucket in BUCKETS:
            lo_a, hi_a, x_a = fa[bucket]
            lo_b, hi_b, x_b = fb[bucket]
            name = f"{a.name} → {b.name}"
            targets.append((name, f"change of '{bucket}'", lo_b - hi_a, hi_b - lo_a, x_b - x_a))
    return targets


def confirmed_findings(
    entries: Sequence[LedgerEntry], snapshots: Mapping[int, pl.DataFrame]
) -> tuple[list[Finding], int]:
    """Return the disclosed confirmed-within figures of releases and the number checked.

    Parameters
    ----------
    entries
        The releases (those without the block are skipped), each with its snapshot.
    snapshots
        Store version → the registrations then.

    Returns
    -------
    tuple
        The findings (``confirmed`` kind; exact when lo = hi) and how many targets
        with a true value between 1 and k−1 (in absolute value) were checked.
    """
    entries = [e for e in entries if BLOCK_KEY in e.release.metadata]
    figures = [_figures(e, snapshots[e.store_version]) for e in entries]
    k = max((release_method(e.release)[0].k for e in entries), default=2)
    findings, checked = [], 0
    for name, what, lo, hi, true in _targets(entries, figures):
        if not 1 <= abs(true) <= k - 1:
            continue
        checked += 1
        inside = (lo >= 1 and hi <= k - 1) or (1 - k <= lo and hi <= -1)
        if lo == hi or inside:
            findings.append(
                Finding(
                    kind="confirmed",
                    release=name,
                    cell="-",
                    resolution=-1,
                    nationality="audience",
                    detail=what,
                    lo=int(math.ceil(lo)),
                    hi=float(math.floor(hi)),
                    true=int(true),
                )
            )
    return findings, checked
