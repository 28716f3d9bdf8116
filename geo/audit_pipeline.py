"""Audit release files against the steward store they were made from (the I/O side).

The audit itself (:func:`geo.audit.audit_releases`) is pure: releases and a records
frame in, a report out. This module does the reading around it: the release files
(signature and invariants checked by :func:`geo.release.read_release`) and the store's
registrations (:func:`geo.store.registration_records`). It is to be folded into
``geo/pipeline.py``, the one module the command line and the pages both call, once
that module exists; until then the ``audit`` command calls it from here. ``geo.audit``
(and so scipy) is imported only when an audit runs, so importing this module is light.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from geo import store
from geo.release import Release, read_release

if TYPE_CHECKING:
    from geo.audit import AuditReport


def run_audit(release_paths: Sequence[str | Path], store_path: str | Path) -> AuditReport:
    """Audit release files against the store they were made from.

    Parameters
    ----------
    release_paths
        Release files, all made from the store; each is named by its file name (its
        full path when two share a name).
    store_path
        The steward store.

    Returns
    -------
    AuditReport
        See :func:`geo.audit.audit_releases`.

    Raises
    ------
    InputError
        For a missing or altered release file, a missing store, or a release that was
        not made from this store.
    """
    from geo.audit import audit_releases

    releases: dict[str, Release] = {}
    for path in release_paths:
        name = Path(path).name
        releases[name if name not in releases else str(path)] = read_release(path)
    con = store.connect(store_path, read_only=True)
    try:
        records = store.registration_records(con)
    finally:
        con.close()
    return audit_releases(releases, records)
