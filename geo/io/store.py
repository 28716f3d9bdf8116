"""The steward store: minimal registrations, their history, and the ledger of releases.

The store is the trusted side. It holds, per version of a registration, only what a
release needs: a keyed hash of (source, record_id) (HMAC-SHA256, computed before DuckDB
sees the record: :func:`geo.hashing.record_keys`; no raw id is ever written, not even
to DuckDB's spill files), nationality, the H3 cell at
``STORE_RESOLUTION`` (no coordinates), sex, age band, family size, vulnerability and
consent bit masks and the update time; plus a log of ingests. One ``ingest`` call
(:mod:`geo.io.store_ingest`) either stores every file it was given or leaves the store
exactly as it was.

History. Every ingested file gets the next *ingest id*, and the highest ingest id so far
is the *store version* (:func:`store_version`: counted, never read from a clock, so a
version names the same state on every machine). A registration version is valid from
the ingest that stored it (``valid_from``) until the ingest that replaced it
(``valid_to``, NULL while it is current). An update closes the current version and adds
the new one instead of overwriting it, so the audience of any past store version can be
rebuilt (:func:`audience_records` with ``as_of``). Every query about "the registry now"
reads the current versions only (``valid_to IS NULL``).

Ledger. The tables ``releases`` and ``release_rows`` record every release published
from the store: its store version, policy, full metadata, content hash, file name and
the exact published table (:mod:`geo.io.ledger` writes and reads them). The whole schema
is defined here under one ``SCHEMA_VERSION``; a store of another schema version is
refused with a message to ingest the registration files again into a new store.

Every open goes through :func:`geo.io.store_open.open_store` (private spill folder,
encryption at rest, faults as one-line errors); a write that fails (disk full, no
permission) is rolled back and reported as an :class:`~geo.errors.InputError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from pathlib import Path

import duckdb

from geo.errors import InputError
from geo.io.steward_key import derived
from geo.io.store_links import (
    LINK_SCHEMA,
    LINK_TABLES,
)
from geo.io.store_open import open_store, store_error

STORE_RESOLUTION = 8
SCHEMA_VERSION = "7"
# What each schema version changed, for the message that refuses an older store.
_SCHEMA_CHANGES = {
    "2": "record history and a release ledger",
    "3": "HMAC-SHA256 record keys computed before the database sees a record id",
    "4": (
        "each registration's valid_until date, a log of purges and erasures, and keyed"
        " identity encodings linking one person's registrations (one case per person)"
    ),
    "5": "identity encodings (CLKs) as arrays of sixteen 64-bit words",
    "6": "an integer id joining each identity encoding to its block keys",
    "7": "block keys and household keys as keyed SipHash-2-4 instead of truncated HMAC-SHA256",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS registrations (
    record_key UHUGEINT NOT NULL,
    source VARCHAR NOT NULL,
    nationality VARCHAR NOT NULL,
    cell UBIGINT NOT NULL,
    sex VARCHAR NOT NULL,
    age_band VARCHAR NOT NULL,
    family_members SMALLINT NOT NULL,
    vulnerabilities USMALLINT NOT NULL,
    consent UTINYINT NOT NULL,
    updated_at TIMESTAMP,
    valid_from INTEGER NOT NULL,
    valid_to INTEGER,
    valid_until DATE
);
CREATE TABLE IF NOT EXISTS ingests (
    ingest_id INTEGER NOT NULL,
    file_name VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    file_format VARCHAR NOT NULL,
    rows_read BIGINT NOT NULL,
    accepted BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    inserted BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    unchanged BIGINT NOT NULL,
    kept_newer BIGINT NOT NULL,
    dropped_columns VARCHAR NOT NULL,
    ingested_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS purges (
    store_version INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    records BIGINT NOT NULL,
    cutoff DATE,
    purged_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS releases (
    release_id INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    store_version INTEGER NOT NULL,
    policy VARCHAR NOT NULL,
    method_version VARCHAR NOT NULL,
    content_sha256 VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL,
    metadata VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS release_rows (
    release_id INTEGER NOT NULL,
    h3_cell VARCHAR NOT NULL,
    resolution TINYINT NOT NULL,
    nationality VARCHAR NOT NULL,
    dimension VARCHAR NOT NULL,
    category VARCHAR NOT NULL,
    cases BIGINT NOT NULL,
    persons BIGINT NOT NULL
);
"""
_TABLES = {"meta", "registrations", "ingests", "purges", "releases", "release_rows"} | LINK_TABLES


def connect(
    path: str | Path, read_only: bool = False, create: bool = True
) -> duckdb.DuckDBPyConnection:
    """Open a store (creating it when missing, unless told not to) and return its connection.

    Parameters
    ----------
    path
        The DuckDB store.
    read_only
        Open without the right to write (several readers may share the file).
    create
        Create a missing store (a read-only connection never creates one).

    Returns
    -------
    duckdb.DuckDBPyConnection

    Raises
    ------
    InputError
        If the store is missing (and not to be created), if the file is not a
        crisis-exposure store, or if it is a store of another schema version.
    """
    path = Path(path)
    if (read_only or not create) and not path.exists():
        raise InputError(f"{path}: no such store; create it with 'crisis-exposure ingest'.")
    # A bounded memory budget: DuckDB spills beyond it (to a private folder), so a
    # national registry (tens of millions of rows) ingests within a couple of GiB.
    con = open_store(path, read_only=read_only)
    try:
        _check_schema(con, path)
        if not read_only:
            con.execute(_SCHEMA + LINK_SCHEMA)
            con.execute(
                "INSERT INTO meta SELECT * FROM (VALUES ('schema_version', ?), ('resolution', ?),"
                " ('key_salt', ?)) v(k, val) WHERE k NOT IN (SELECT key FROM meta)",
                [SCHEMA_VERSION, str(STORE_RESOLUTION), _key_salt()],
            )
            _key_ingest_digests(con)
        if not _TABLES.issubset(_table_names(con)):
            raise InputError(f"{path}: a DuckDB file but not a crisis-exposure store.")
    except duckdb.Error as exc:
        con.close()
        raise store_error(path, exc) from None
    except BaseException:
        con.close()
        raise
    return con


def _table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database()"
    ).fetchall()
    return {row[0] for row in rows}


def _check_schema(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse a file that holds tables but is not a store of this schema version.

    An empty DuckDB file passes (it becomes a store); nothing is written here, so an
    old store is left exactly as it was.

    Raises
    ------
    InputError
        For a DuckDB file of other tables, or a store of another schema version.
    """
    tables = _table_names(con)
    if not tables:
        return
    if "meta" not in tables:
        raise InputError(f"{path}: a DuckDB file but not a crisis-exposure store.")
    rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    if not rows:
        raise InputError(f"{path}: a DuckDB file but not a crisis-exposure store.")
    if rows[0][0] != SCHEMA_VERSION:
        old = int(rows[0][0]) if rows[0][0].isdigit() else 0
        newer = [change for version, change in _SCHEMA_CHANGES.items() if int(version) > old]
        made = f"made before the store kept {' and '.join(newer)}" if newer else "unknown here"
        raise InputError(
            f"{path}: a store of schema version {rows[0][0]}, {made} (schema version "
            f"{SCHEMA_VERSION}); ingest the registration files again into a new store."
        )


def meta_value(con: duckdb.DuckDBPyConnection, key: str) -> str:
    """Return the store's setting ``key`` (its resolution, the steward key's salt)."""
    return con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()[0][0]


def store_version(con: duckdb.DuckDBPyConnection) -> int:
    """Return the store version: the highest ingest id so far (0 for an empty store).

    Every ingested file advances it by one; a file already ingested does not. A purge
    or an erasure advances it too (its row in ``purges``): the versions before it no
    longer hold the registrations it deleted.
    """
    return int(
        con.execute(
            "SELECT greatest(coalesce(max(ingest_id), 0),"
            " (SELECT coalesce(max(store_version), 0) FROM purges)) FROM ingests"
        ).fetchall()[0][0]
    )


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back, even on a connection DuckDB invalidated after an I/O fault."""
    with contextlib.suppress(duckdb.Error):
        con.rollback()


def check_steward_key(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse to add records keyed with another steward key than the store's.

    Record keys are derived from the steward key: records keyed with another key
    would never match their earlier versions (updates would become new records).

    Raises
    ------
    InputError
        If the store's key salt is not the one the current steward key gives.
    """
    if not _made_with_this_key(con):
        raise InputError(
            f"{path}: the store was made with another steward key; set "
            "CRISIS_EXPOSURE_STEWARD_KEY (or CRISIS_EXPOSURE_KEY_FILE) to the store's key."
        )


def _key_salt() -> str:
    """Return the salt a store keeps of the steward key (which key made its record keys)."""
    return derived("record keys")[:16].hex()


def _made_with_this_key(con: duckdb.DuckDBPyConnection) -> bool:
    """Return whether the store was made with the current steward key."""
    return meta_value(con, "key_salt") == _key_salt()


def ingest_digest(file_sha256: str) -> str:
    """Return what the ingest log keeps of a file: HMAC-SHA256 of its SHA-256, keyed.

    Enough to know a file again (a second ingest of it is skipped), nothing to whoever
    holds the file without the steward key: with its plain SHA-256 in the log, the
    holder of a raw file could prove it was ingested, even after an erasure.
    """
    return hmac.new(derived("ingest files"), file_sha256.encode(), hashlib.sha256).hexdigest()


def _key_ingest_digests(con: duckdb.DuckDBPyConnection) -> None:
    """Key the plain SHA-256 an older store logged for each ingested file (once).

    Only under the store's own steward key (keyed with another, the store would no
    longer know its files; that key's ingest is refused anyway).
    """
    if con.execute("SELECT 1 FROM meta WHERE key = 'ingest_digests'").fetchall():
        return
    if not _made_with_this_key(con):
        return
    logged = con.execute("SELECT ingest_id, sha256 FROM ingests").fetchall()
    con.begin()
    try:
        if logged:
            con.executemany(
                "UPDATE ingests SET sha256 = ? WHERE ingest_id = ?",
                [[ingest_digest(digest), ingest_id] for ingest_id, digest in logged],
            )
        con.execute("INSERT INTO meta VALUES ('ingest_digests', 'keyed')")
        con.commit()
    except BaseException:
        rollback(con)
        raise


def record_key_secret() -> bytes:
    """Return the secret of the record keys' HMAC (derived from the steward key, never stored)."""
    return derived("record key hmac")
