"""Purge and erase: delete registrations from the store once the ledger audit passes.

Past releases can be checked against their registrations only while those exist:
both commands therefore run the ledger audit first and refuse when it finds a
disclosure. The deletion and its log row are one transaction; the store file is then
rewritten without the deleted rows (:func:`geo.io.store_open.compact_store`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from geo.errors import InputError


def purge_store(store_path: str | Path, older_than: int, as_of: str | None = None) -> dict:
    """Delete the registrations not confirmed within ``older_than`` days before ``as_of``.

    Parameters
    ----------
    store_path
        The steward store.
    older_than
        Days (≥ 1): a registration confirmed before ``as_of`` minus this, never
        confirmed, or whose ``valid_until`` is before that day goes, with its history.
    as_of
        The day counted back from (YYYY-MM-DD); default today (UTC).

    Returns
    -------
    dict
        ``records`` (deleted), ``cutoff`` (the first day still kept) and
        ``store_version`` (after the purge); for the steward's terminal only.

    Raises
    ------
    InputError
        For a bad number of days or date, a missing store, or when the ledger audit
        finds a disclosure (nothing is deleted then).
    """
    from geo.freshness import parse_day
    from geo.io.store_purge import purge_older_than

    if older_than < 1:
        raise InputError(f"--older-than must be a number of days ≥ 1 (got {older_than}).")
    day = parse_day(as_of, "--as-of") if as_of else datetime.now(UTC).date()
    cutoff = date.fromordinal(day.toordinal() - older_than)
    count, version = _delete(store_path, "purge", lambda con: purge_older_than(con, cutoff))
    return {"records": count, "cutoff": cutoff.isoformat(), "store_version": version}


def erase_registration(store_path: str | Path, source: str, record_id: str) -> dict:
    """Delete one registration (and the records the erasure covers) on request.

    The record is found by its keyed hash (:func:`geo.hashing.record_keys` of source
    and record id, as at ingest); neither is written or printed.

    Returns
    -------
    dict
        ``records`` (deleted) and ``store_version`` (after the erasure).

    Raises
    ------
    InputError
        When the registration is not in the store, for a missing store, or when the
        ledger audit finds a disclosure (nothing is deleted then).
    """
    import polars as pl

    from geo.hashing import record_keys
    from geo.io.store import record_key_secret
    from geo.io.store_purge import erase_keys, stored_keys

    frame = pl.DataFrame({"source": [source.strip()], "record_id": [record_id.strip()]})
    keyed = record_keys(frame, record_key_secret()).row(0, named=True)
    key = (int(keyed["key_hi"]) << 64) | int(keyed["key_lo"])

    def erase(con: Any) -> int:
        keys = stored_keys(con, key)
        if not keys:
            raise InputError(
                "no registration with this source and record id is in the store; "
                "nothing was erased."
            )
        return erase_keys(con, keys)

    count, version = _delete(store_path, "erasure", erase)
    return {"records": count, "store_version": version}


def _delete(store_path: str | Path, what: str, action: Callable[[Any], int]) -> tuple[int, int]:
    """Audit the ledger, run a deletion in one transaction, then rewrite the store file.

    Returns (registrations deleted, store version after).
    """
    from geo.io import store
    from geo.io.store_open import StoreFileGuard, compact_store, store_error
    from geo.pipeline.audit import audit_ledger

    path = Path(store_path)
    store.connect(path, create=False).close()  # a missing or foreign store says so first
    report = audit_ledger(path)
    if not report.ok:
        raise InputError(
            f"{path}: the ledger audit finds disclosures in the store's releases; no {what} "
            "was made (its registrations are still needed to re-check them): see "
            f"'crisis-exposure audit --store {path.name}'."
        )
    guard = StoreFileGuard(path)
    con = store.connect(path, create=False)
    try:
        store.check_steward_key(con, path)
        con.begin()
        count = action(con)
        version = store.store_version(con)
        con.commit()
    except BaseException as exc:
        store.rollback(con)
        con.close()
        guard.restore()
        if isinstance(exc, InputError):
            raise
        import duckdb

        if isinstance(exc, duckdb.Error):
            raise store_error(path, exc) from None
        raise
    con.close()
    if count:
        compact_store(path)
    return count, version
