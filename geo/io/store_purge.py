"""Deleting registrations from the store: by age (purge), one on request (erase), logged.

A deletion removes every version of the registrations it covers (their history too),
advances the store version and adds one row to the ``purges`` log: the store version,
the kind (``purge`` or ``erase``), how many registrations, the cut-off day of a purge
and the time, never a record key or any other identifier. The ledger keeps what was
published; snapshots of versions before the deletion no longer hold the deleted
registrations (:func:`geo.io.store_reads.complete_from`). Runs inside the caller's
transaction; :func:`geo.io.store_open.compact_store` then rewrites the file so the
deleted rows leave no bytes behind.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb

from geo.io.store import store_version
from geo.io.store_links import forget_identities, refresh_absorbed

# A registration's confirmation day and departure day, as the purge judges them.
_STALE = "updated_at IS NULL OR updated_at::DATE < ? OR valid_until < ?"


def purge_older_than(con: duckdb.DuckDBPyConnection, cutoff: date) -> int:
    """Delete every registration not confirmed on or after ``cutoff``, or gone before it.

    A registration is judged by its current version: no ``updated_at``, an
    ``updated_at`` before the cut-off day, or a ``valid_until`` before it. Every version
    of it goes.

    Returns
    -------
    int
        The number of registrations deleted (logged).
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE doomed AS SELECT record_key FROM registrations"
        f" WHERE valid_to IS NULL AND ({_STALE})",
        [cutoff, cutoff],
    )
    return _delete_doomed(con, "purge", cutoff)


def erase_keys(con: duckdb.DuckDBPyConnection, keys: list[int]) -> int:
    """Delete every version of the registrations with these record keys (right to erasure).

    Returns
    -------
    int
        The number of registrations deleted (0 when none is stored; nothing is logged
        then).
    """
    con.execute("CREATE OR REPLACE TEMP TABLE doomed (record_key UHUGEINT)")
    con.executemany("INSERT INTO doomed VALUES (?)", [[key] for key in keys])
    con.execute("DELETE FROM doomed WHERE record_key NOT IN (SELECT record_key FROM registrations)")
    return _delete_doomed(con, "erase", None)


def stored_keys(con: duckdb.DuckDBPyConnection, key: int) -> list[int]:
    """Return the registrations an erasure request for one record key covers.

    The record itself when it is stored (an empty list otherwise) and every record
    linked to the same person at ingest (records of one person across sources share a
    person key, :mod:`geo.io.store_links`), so that erasing one erases the person.
    """
    rows = con.execute(
        "SELECT DISTINCT record_key FROM registrations WHERE record_key = ?"
        " UNION SELECT i.record_key FROM identities i JOIN identities me"
        " ON i.person_key = me.person_key WHERE me.record_key = ?"
        " AND i.record_key IN (SELECT record_key FROM registrations)",
        [key, key],
    ).fetchall()
    if not any(int(row[0]) == key for row in rows):
        return []
    return [int(row[0]) for row in rows]


def _delete_doomed(con: duckdb.DuckDBPyConnection, kind: str, cutoff: date | None) -> int:
    """Delete the registrations in the temporary table ``doomed``; log it if any went."""
    count = int(con.execute("SELECT count(DISTINCT record_key) FROM doomed").fetchall()[0][0])
    if count:
        forget_identities(con, "SELECT record_key FROM doomed")
        for table in ("registrations", "absorbed"):
            con.execute(f"DELETE FROM {table} WHERE record_key IN (SELECT record_key FROM doomed)")
        con.execute(
            "INSERT INTO purges (store_version, kind, records, cutoff, purged_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [store_version(con) + 1, kind, count, cutoff, datetime.now(UTC).replace(tzinfo=None)],
        )
        refresh_absorbed(con, store_version(con))
    con.execute("DROP TABLE doomed")
    return count


def purge_log(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Return the purge log, oldest first: store_version, kind, records, cutoff, purged_at."""
    rows = con.execute(
        "SELECT store_version, kind, records, cutoff, purged_at FROM purges ORDER BY store_version"
    ).fetchall()
    names = ("store_version", "kind", "records", "cutoff", "purged_at")
    return [dict(zip(names, row, strict=True)) for row in rows]
