"""The release ledger: every release published from a store, with its exact table.

Releases are never alone (design, point 4): whoever holds one release may hold every
other made from the same store, so a new release must be judged together with all of
them, and any past audience must be rebuildable. The ledger is the store's memory of
what it published. It lives in the store, in the tables ``releases`` and
``release_rows`` (defined with the rest of the schema in :mod:`geo.io.store`):

- ``releases``: one row per release: its id (1, 2, … in the order of publication), the
  creation time, the store version it was made from (with :func:`geo.io.store.
  audience_records` ``as_of`` that version, its audience can be rebuilt), the policy
  (JSON), the method version, the content hash, the file name and the full metadata
  (JSON: exactly what the file carries);
- ``release_rows``: the published table itself (:meth:`geo.release.Release.table`), so
  the ledger alone says what was published, even when the file is gone.

Writing happens inside the caller's transaction (:func:`geo.pipeline.publish_release`
records a release and commits before its file is put in place); reading never changes
anything.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb

from geo.errors import InputError
from geo.hashing import ContentHasher
from geo.io.release_file import release_from_table, table_parts
from geo.release import TABLE_COLUMNS, Release

_ROW_COLUMNS = ", ".join(TABLE_COLUMNS)


def record_release(
    con: duckdb.DuckDBPyConnection, release: Release, store_version: int, file_name: str
) -> int:
    """Record a published release in the ledger: its metadata and its whole table.

    Call it inside a transaction (both tables are written; the caller commits). The
    release's ``content_sha256`` is computed and set in its metadata if missing.

    Parameters
    ----------
    con
        A writable store connection.
    release
        The release as published.
    store_version
        The store version it was made from (its metadata's ``store_version``, if any,
        must agree).
    file_name
        The name of the file it is published as.

    Returns
    -------
    int
        The new release id.

    Raises
    ------
    ValueError
        If the metadata names another store version.
    """
    metadata = release.metadata
    if metadata.get("store_version", store_version) != store_version:
        raise ValueError(
            f"release made from store version {metadata['store_version']}, "
            f"recorded as made from {store_version}."
        )
    if "content_sha256" not in metadata:  # written releases have it: no second pass
        metadata["content_sha256"] = _table_sha256(release)
    release_id = con.execute("SELECT coalesce(max(release_id), 0) + 1 FROM releases").fetchall()[0][
        0
    ]
    created_at = datetime.fromisoformat(metadata["created_at"])
    if created_at.tzinfo is not None:
        created_at = created_at.astimezone(UTC).replace(tzinfo=None)
    con.execute(
        """
        INSERT INTO releases (release_id, created_at, store_version, policy, method_version,
                              content_sha256, file_name, metadata)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            release_id,
            created_at,
            store_version,
            json.dumps(metadata["policy"]),
            metadata["method_version"],
            metadata["content_sha256"],
            file_name,
            json.dumps(metadata),
        ],
    )
    # In the table's order, part by part (:func:`table_parts`): no whole copy of it.
    for part in table_parts(release):
        con.register("published", part)
        try:
            con.execute(
                f"INSERT INTO release_rows SELECT ? AS release_id, {_ROW_COLUMNS} FROM published",
                [release_id],
            )
        finally:
            con.unregister("published")
    return int(release_id)


def _table_sha256(release: Release) -> str:
    """Return the content hash of a release's table, hashed part by part (no whole copy)."""
    hasher = ContentHasher()
    for part in table_parts(release):
        hasher.update(part)
    return hasher.hexdigest()


def ledger(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Return the releases recorded in the store, oldest first.

    Returns
    -------
    list of dict
        One per release: ``release_id``, ``created_at`` (UTC, naive datetime),
        ``store_version``, ``policy`` (dict), ``method_version``, ``content_sha256``,
        ``file_name``, and the published ``groups``, ``cases`` and ``persons`` (as its
        metadata states them).
    """
    rows = con.execute(
        """
        SELECT release_id, created_at, store_version, policy, method_version,
               content_sha256, file_name, metadata
        FROM releases ORDER BY release_id
        """
    ).fetchall()
    entries = []
    for release_id, created_at, version, policy, method, digest, name, metadata in rows:
        published = json.loads(metadata)["published"]
        entries.append(
            {
                "release_id": int(release_id),
                "created_at": created_at,
                "store_version": int(version),
                "policy": json.loads(policy),
                "method_version": method,
                "content_sha256": digest,
                "file_name": name,
                "groups": int(published["groups"]),
                "cases": int(published["cases"]),
                "persons": int(published["persons"]),
            }
        )
    return entries


def ledger_release(con: duckdb.DuckDBPyConnection, release_id: int) -> Release:
    """Rebuild a recorded release from the ledger: its published table and metadata.

    Returns
    -------
    Release
        Equal to the release file as read back (same groups, breakdowns and metadata).

    Raises
    ------
    InputError
        If the ledger has no such release, or its rows do not match the recorded hash
        (the store was altered).
    """
    found = con.execute(
        "SELECT metadata FROM releases WHERE release_id = ?", [release_id]
    ).fetchall()
    if not found:
        raise InputError(
            f"release {release_id} is not in the store's ledger; "
            "'crisis-exposure releases --store STORE' lists those that are."
        )
    metadata = json.loads(found[0][0])
    table = con.sql(
        f"SELECT {_ROW_COLUMNS} FROM release_rows WHERE release_id = ? "
        f"ORDER BY {', '.join(TABLE_COLUMNS[:5])}",
        params=[release_id],
    ).to_arrow_table()
    release = release_from_table(table, metadata)
    if _table_sha256(release) != metadata.get("content_sha256"):
        raise InputError(
            f"release {release_id}: the ledger's rows do not match the recorded hash; "
            "the store was altered."
        )
    return release


def discard_release(con: duckdb.DuckDBPyConnection, release_id: int) -> None:
    """Remove a release from the ledger, for a release whose file was never put in place.

    Only :func:`geo.pipeline.publish_release` calls it, when the last step (renaming the
    written file into place) fails after the ledger was committed: a release nobody
    received is not published. Never use it for a release that was handed out.
    """
    con.begin()
    try:
        con.execute("DELETE FROM release_rows WHERE release_id = ?", [release_id])
        con.execute("DELETE FROM releases WHERE release_id = ?", [release_id])
        con.commit()
    except BaseException:
        con.rollback()
        raise
