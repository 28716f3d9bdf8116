"""The audit's pure entry point: releases and the steward's records in, a report out.

It strings the steps together (views of the releases, the attacker's model, the
targets, the subtrees, one linear programme family per subtree) and does no I/O:
reading release files and the store is the caller's job (see :mod:`geo.pipeline`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import polars as pl

from geo.audit.model import build_model, release_view
from geo.audit.parts import split_into_parts
from geo.audit.report import TARGET_KINDS, AuditReport
from geo.audit.subtrees import solve_subtree
from geo.audit.targets import build_targets
from geo.release import Release


def audit_releases(releases: Mapping[str, Release], records: pl.DataFrame) -> AuditReport:
    """Audit releases made from the same records (pure: no I/O).

    Parameters
    ----------
    releases
        Release name → release, all made from ``records`` (exact or noisy).
    records
        The steward's records at the store version the releases were made from:
        nationality, cell (H3 integer at resolution 8), sex, age_band, vulnerabilities
        (bit mask), persons, consent (bit mask).

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
        views.append(release_view(index, name, release, records, first))
        first += views[-1].groups.height
    report = AuditReport(releases=list(releases), checked=dict.fromkeys(TARGET_KINDS, 0))
    if any(view.labels for view in views):
        model = build_model(views, records)
        parts = split_into_parts(model, build_targets(model), report)
        for cg, part in parts.values():
            solve_subtree(model, part, cg, report)
        report.subtrees = len(parts)
    report.seconds = time.perf_counter() - start
    return report
