"""Audits: release files against their store, and the whole ledger of a store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geo.audit import AuditReport


def run_audit(release_paths: Sequence[str | Path], store_path: str | Path) -> AuditReport:
    """Audit release files against the store they were made from, each at its version.

    Each file meets the registrations as they were at the store version its metadata
    names (else the current ones); files are named by file name (full path when two
    share one) and audited as a ledger is (:func:`geo.ledger_audit.audit_entries`).

    Raises
    ------
    InputError
        For a missing or altered release file, a missing store, or a release that was
        not made from this store.
    """
    from geo.io import store, store_reads
    from geo.io.release_file import read_release
    from geo.ledger_audit import LedgerEntry, audit_entries

    con = store.connect(store_path, read_only=True)
    try:
        entries: list[LedgerEntry] = []
        for path in release_paths:
            name = Path(path).name
            name = name if name not in {e.name for e in entries} else str(path)
            release = read_release(path)
            version = release.metadata.get("store_version", store.store_version(con))
            entries.append(LedgerEntry(name, int(version), release))
        snapshots = _snapshots(con, entries)
        complete = store_reads.complete_from(con)
    finally:
        con.close()
    return audit_entries(entries, snapshots, complete)


def audit_ledger(store_path: str | Path) -> AuditReport:
    """Audit every release in a store's ledger, each against the registry as it was then.

    Releases of one store version are audited together by the linear-programming
    attacker, then the flows between versions (:mod:`geo.ledger_audit`: why the two
    separate, and the cost). The report has one ``audited`` line per release.

    Raises
    ------
    InputError
        For a missing store, an altered ledger, or a release its snapshot cannot give.
    """
    from geo.io import ledger, store, store_reads
    from geo.ledger_audit import LedgerEntry, audit_entries

    con = store.connect(store_path, read_only=True)
    try:
        entries = [
            LedgerEntry(
                f"#{row['release_id']} {row['file_name']}",
                row["store_version"],
                ledger.ledger_release(con, row["release_id"]),
                row["release_id"],
            )
            for row in ledger.ledger(con)
        ]
        snapshots = _snapshots(con, entries)
        complete = store_reads.complete_from(con)
    finally:
        con.close()
    return audit_entries(entries, snapshots, complete)


def _snapshots(con: Any, entries: Sequence[Any]) -> dict:
    """Return store version → the registrations then, for the entries' versions.

    Raises
    ------
    InputError
        For a release counted from a Parquet lake on Spark: its records are not in the
        store, so the store cannot give its snapshot.
    """
    from geo.errors import InputError
    from geo.io import store_reads

    for entry in entries:
        if entry.release.metadata.get("lake_snapshot"):
            raise InputError(
                f"release {entry.name} was counted from a Parquet lake on Spark: its records "
                "are not in the store, and the audit cannot read a lake yet."
            )

    versions = sorted({entry.store_version for entry in entries})
    return {v: store_reads.registration_records(con, as_of=v) for v in versions}
