"""The steward store: minimal registrations, their history, and the ledger of releases.

The store is the trusted side. It holds, per version of a registration, only what a
release needs: a keyed hash of (source, record_id) (HMAC-SHA256, computed before DuckDB
sees the record: :func:`geo.hashing.record_keys`; no raw id is ever written, not even
to DuckDB's spill files), nationality, the H3 cell at
``STORE_RESOLUTION`` (no coordinates), sex, age band, family size, vulnerability and
consent bit masks and the update time; plus a log of ingests. One ``ingest`` call is one
transaction: it either stores every file it was given or leaves the store exactly as it
was.

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
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from geo.errors import InputError
from geo.io.ingest_report import IngestReport
from geo.io.registrations import FileHeader
from geo.io.steward_key import derived
from geo.io.store_links import (
    LINK_SCHEMA,
    LINK_TABLES,
    link_staged,
    report_lines,
    stage_identities,
    start_staging,
)
from geo.io.store_open import StoreFileGuard, open_store, store_error
from geo.sanitize import spreadsheet_safe
from geo.validate import ValidatedBatch

STORE_RESOLUTION = 8
# A validated batch and its accepted records as Arrow: the H3 cell instead of
# coordinates, the keyed record key (key_hi, key_lo) instead of the record id.
PreparedBatch = tuple[ValidatedBatch, pa.Table]
SCHEMA_VERSION = "4"
# What each schema version changed, for the message that refuses an older store.
_SCHEMA_CHANGES = {
    "2": "record history and a release ledger",
    "3": "HMAC-SHA256 record keys computed before the database sees a record id",
    "4": (
        "each registration's valid_until date, a log of purges and erasures, and keyed"
        " identity encodings linking one person's registrations (one case per person)"
    ),
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
# What makes two versions of a registration the same: a re-statement of all of it is no
# new version.
_CONTENT = (
    "record_key, source, nationality, cell, sex, age_band, family_members, "
    "vulnerabilities, consent, updated_at, valid_until"
)


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
                [SCHEMA_VERSION, str(STORE_RESOLUTION), derived("record keys")[:16].hex()],
            )
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


def _meta(con: duckdb.DuckDBPyConnection, key: str) -> str:
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


def _next_ingest_id(con: duckdb.DuckDBPyConnection) -> int:
    """Return the ingest id of the file being ingested (its ``ingests`` row comes last)."""
    return store_version(con) + 1


def ingest_files(
    store_path: str | Path,
    files: Sequence[tuple[FileHeader, Callable[[], Iterable[PreparedBatch]]]],
    rejects_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[IngestReport]:
    """Add validated, binned, keyed batches of several files to the store, in one transaction.

    Two phases, so that memory does not grow with the files: every file's batches are
    first staged in temp tables, each batch committed on its own (DuckDB spills them to
    the private spill folder beyond its budget; appends held in one open transaction
    stay in memory, 1.4 GiB at 10M records), and each file's duplicate records resolved
    there; then one store transaction merges the files in order (one statement per step
    and file) and logs them. A failure anywhere leaves the store exactly as it was.

    Parameters
    ----------
    store_path
        The DuckDB store (created when missing).
    files
        Per file, its header (name, hash, format, dropped columns) and a function that
        yields its batches: the validated batch and its accepted records as Arrow, with
        the H3 cell at ``STORE_RESOLUTION`` instead of coordinates and the record key
        (:func:`geo.hashing.record_keys`) instead of the record id. Called once; a
        second time only for a file with duplicate records, to name their record ids
        in the rejects (record ids never enter the database).
    rejects_dir
        Folder for one ``<file>.rejects.csv`` per file with rejects (row, record_id,
        reasons); default: beside the store.
    progress
        Called with a short message as work advances.

    Returns
    -------
    list of IngestReport
        One per file, in the order given.

    Raises
    ------
    InputError
        If any batch cannot be read, the store was made with another steward key, or
        the store cannot be written (disk full, no permission): the store is then left
        unchanged.
    """
    say = progress or (lambda message: None)
    rejects_dir = Path(rejects_dir) if rejects_dir else Path(store_path).resolve().parent
    guard = StoreFileGuard(store_path)
    con = connect(store_path)
    pending_rejects: list[tuple[Path, pl.DataFrame]] = []
    try:
        _check_steward_key(con, Path(store_path))
        staged = _stage_files(con, files, say)
        con.begin()
        for file in staged:
            if file.table is not None:
                _merge_file(con, file)
            if file.rejects is not None and file.rejects.height:
                file.report.rejects_path = rejects_dir / f"{file.report.file_name}.rejects.csv"
                pending_rejects.append((file.report.rejects_path, file.rejects))
        for target, rejects in pending_rejects:
            _write_rejects(target, rejects)
        con.commit()
    except BaseException as exc:
        _rollback(con)
        con.close()
        guard.restore()
        for target, _ in pending_rejects:
            target.unlink(missing_ok=True)
        if isinstance(exc, duckdb.Error):
            raise store_error(Path(store_path), exc) from None
        raise
    finally:
        con.close()
    return [file.report for file in staged]


@dataclass
class _StagedFile:
    """One file staged in a temp table, waiting for the store's transaction."""

    header: FileHeader
    report: IngestReport
    ingest_id: int = 0
    table: str | None = None  # its temp table; None when the file was ingested before
    identities: str = ""  # the temp table of its staged identity encodings
    rejects: pl.DataFrame | None = None


def _stage_files(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[tuple[FileHeader, Callable[[], Iterable[PreparedBatch]]]],
    say: Callable[[str], None],
) -> list[_StagedFile]:
    """Stage every file's batches in temp tables (before the store's transaction begins).

    A file whose hash the store (or an earlier file of this call) already holds is not
    staged. Each staged file gets the ingest id it will have once merged.
    """
    staged: list[_StagedFile] = []
    version = store_version(con)
    seen = {row[0] for row in con.execute("SELECT sha256 FROM ingests").fetchall()}
    for index, (header, batches) in enumerate(files):
        file = _StagedFile(header=header, report=_new_report(header))
        staged.append(file)
        if header.sha256 in seen:
            file.report.already_ingested = True
            continue
        seen.add(header.sha256)
        version += 1
        file.ingest_id = version
        file.table = f"staged_{index}"
        file.rejects, file.identities = _stage_one(con, file, batches, say)
    return staged


def _new_report(header: FileHeader) -> IngestReport:
    return IngestReport(
        file_name=header.file_name,
        sha256=header.sha256,
        file_format=header.file_format,
        dropped_columns=header.dropped_columns,
        identifier_columns=header.identifier_columns,
        notes=list(header.notes),
    )


def _stage_one(
    con: duckdb.DuckDBPyConnection,
    file: _StagedFile,
    batches: Callable[[], Iterable[PreparedBatch]],
    say: Callable[[str], None],
) -> tuple[pl.DataFrame | None, str | None]:
    """Stage one file's batches, resolve its duplicates and count its rejects.

    Returns the file's rejects and the temp table of its identity encodings (empty when
    the file carries none).
    """
    report, table = file.report, file.table
    con.execute(f"CREATE TEMP TABLE {table} AS SELECT * FROM registrations LIMIT 0")
    con.execute(f"ALTER TABLE {table} ADD COLUMN row BIGINT")
    start_staging(con)
    rejects: list[pl.DataFrame] = []
    for batch, keyed in batches():
        report.rows_read += batch.rows_read
        rejects.append(batch.rejects)
        con.register("keyed", keyed)
        con.execute(
            f"""
            INSERT INTO {table} BY NAME
            SELECT ((key_hi::UHUGEINT << 64) | key_lo::UHUGEINT) AS record_key, source,
                   nationality, cell, sex, age_band, family_members, vulnerabilities, consent,
                   updated_at, valid_until, ? AS valid_from, row
            FROM keyed
            """,
            [file.ingest_id],
        )
        stage_identities(con, keyed)
        con.unregister("keyed")
        say(f"{file.header.file_name}: {report.rows_read} rows read")
    duplicates = _reject_duplicates(con, table)
    if duplicates.height:
        rejects.append(_name_duplicates(duplicates, batches))
    all_rejects = pl.concat(rejects) if rejects else None
    report.rejected = all_rejects.height if all_rejects is not None else 0
    report.accepted = report.rows_read - report.rejected
    if all_rejects is not None:
        for reasons in all_rejects["reasons"]:
            report.rejects_by_reason.update(reasons.split("; "))
    report.no_consent, report.unconfirmed = con.execute(
        "SELECT count(*) FILTER (WHERE consent = 0), count(*) FILTER (WHERE updated_at IS NULL)"
        f" FROM {table}"
    ).fetchall()[0]
    identities = f"staging_ids_{file.ingest_id}"
    con.execute(f"ALTER TABLE staging_ids RENAME TO {identities}")
    return all_rejects, identities


def _merge_file(con: duckdb.DuckDBPyConnection, file: _StagedFile) -> None:
    """Merge one staged file into the store, link it and log it (inside the transaction)."""
    header, report = file.header, file.report
    report.kept_newer, report.unchanged, report.updated, report.inserted = _merge_staged(
        con, file.table, file.ingest_id
    )
    con.execute(f"ALTER TABLE {file.identities} RENAME TO staging_ids")
    report.linking = report_lines(
        link_staged(con, file.ingest_id),
        has_names=bool({"full_name", "given_name", "family_name"} & set(header.identity_map)),
        has_companion_ids=bool({"household_id", "principal_record_id"} & set(header.identity_map)),
        has_family_counts="family_members" in header.column_map,
    )
    _log_ingest(con, file.ingest_id, header, report)
    con.execute("DROP VIEW staging")
    con.execute("DROP TABLE skipped")
    con.execute("DROP TABLE staging_ids")


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back, even on a connection DuckDB invalidated after an I/O fault."""
    with contextlib.suppress(duckdb.Error):
        con.rollback()


def _check_steward_key(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse to add records keyed with another steward key than the store's.

    Record keys are derived from the steward key: records keyed with another key
    would never match their earlier versions (updates would become new records).

    Raises
    ------
    InputError
        If the store's key salt is not the one the current steward key gives.
    """
    if _meta(con, "key_salt") != derived("record keys")[:16].hex():
        raise InputError(
            f"{path}: the store was made with another steward key; set "
            "CRISIS_EXPOSURE_STEWARD_KEY (or CRISIS_EXPOSURE_KEY_FILE) to the store's key."
        )


def record_key_secret() -> bytes:
    """Return the secret of the record keys' HMAC (derived from the steward key, never stored)."""
    return derived("record key hmac")


def _write_rejects(target: Path, rejects: pl.DataFrame) -> None:
    """Write rejects atomically (temporary file, then rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    safe_ids = pl.col("record_id").map_elements(spreadsheet_safe, return_dtype=pl.String)
    try:
        rejects.with_columns(safe_ids).sort("row", nulls_last=True).write_csv(temporary)
        os.replace(temporary, target)
    except OSError as exc:
        raise store_error(target, exc) from None
    finally:
        temporary.unlink(missing_ok=True)


def _name_duplicates(
    duplicates: pl.DataFrame, batches: Callable[[], Iterable[PreparedBatch]]
) -> pl.DataFrame:
    """Return the duplicate rejects with their record ids, read again from the file."""
    rows = duplicates["row"]
    named = [
        batch.accepted.filter(pl.col("row").is_in(rows.implode())).select(
            pl.col("row").cast(pl.Int64), "record_id"
        )
        for batch, _ in batches()
    ]
    ids = (
        pl.concat(named)
        if named
        else pl.DataFrame(schema={"row": pl.Int64, "record_id": pl.String})
    )
    return duplicates.join(ids, on="row", how="left").select("row", "record_id", "reasons")


def _log_ingest(
    con: duckdb.DuckDBPyConnection, ingest_id: int, header: FileHeader, report: IngestReport
) -> None:
    """Add a file's row to the ingest log; from now on it is the store version."""
    con.execute(
        """
        INSERT INTO ingests (ingest_id, file_name, sha256, file_format, rows_read, accepted,
                             rejected, inserted, updated, unchanged, kept_newer,
                             dropped_columns, ingested_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            ingest_id,
            header.file_name,
            header.sha256,
            header.file_format,
            report.rows_read,
            report.accepted,
            report.rejected,
            report.inserted,
            report.updated,
            report.unchanged,
            report.kept_newer,
            ", ".join(header.dropped_columns),
            datetime.now(UTC).replace(tzinfo=None),
        ],
    )


def _reject_duplicates(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    """Remove all but the latest version of each record staged twice; return their rows.

    The latest ``updated_at`` wins (the later row on a tie), decided by a window over
    the staged records that share a key. Returns columns row and reasons (the record
    ids are named by the caller, from the file: they never enter the database).
    """
    duplicates = con.sql(
        f"""
        WITH ranked AS (
            SELECT row, record_key,
                   row_number() OVER w AS rank
            FROM {table}
            WHERE record_key IN (
                SELECT record_key FROM {table} GROUP BY record_key HAVING count(*) > 1)
            WINDOW w AS (PARTITION BY record_key ORDER BY updated_at DESC NULLS LAST, row DESC)
        )
        SELECT row,
               'duplicate record_id (the entry with the latest updated_at is kept)' AS reasons
        FROM ranked WHERE rank > 1
        """
    ).pl()
    if duplicates.height:
        con.register("duplicates", duplicates.to_arrow())
        con.execute(f"DELETE FROM {table} WHERE row IN (SELECT row FROM duplicates)")
        con.unregister("duplicates")
    return duplicates.cast({"row": pl.Int64})


def _merge_staged(
    con: duckdb.DuckDBPyConnection, table: str, ingest_id: int
) -> tuple[int, int, int, int]:
    """Merge a staged file into the store as new versions; a stored newer version wins.

    Every step is one set-based statement, whatever the number of records. The staged
    records whose key has a current version are classed once, by a join on the key: older
    than the stored version (kept_newer: dropped), restating it exactly (unchanged: no
    new version) or changing it (updated: the stored version is closed at this ingest,
    ``valid_to``). The others are new. The records that make new versions (``valid_from``
    set when staged) are then appended in one statement; the temp view ``staging`` names
    them for linking.

    Returns
    -------
    tuple of int
        (kept_newer, unchanged, updated, inserted).
    """
    changed = " OR ".join(f"s.{c} IS DISTINCT FROM r.{c}" for c in _CONTENT.split(", "))
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE skipped AS
        SELECT s.record_key,
               CASE WHEN r.updated_at IS NOT NULL
                         AND (s.updated_at IS NULL OR s.updated_at < r.updated_at) THEN 'kept_newer'
                    WHEN NOT ({changed}) THEN 'unchanged'
                    ELSE 'updated' END AS outcome
        FROM {table} s JOIN registrations r
          ON r.record_key = s.record_key AND r.valid_to IS NULL
        """
    )
    staged, kept_newer, unchanged, updated = con.execute(
        f"""
        SELECT (SELECT count(*) FROM {table}),
               count(*) FILTER (WHERE outcome = 'kept_newer'),
               count(*) FILTER (WHERE outcome = 'unchanged'),
               count(*) FILTER (WHERE outcome = 'updated')
        FROM skipped
        """
    ).fetchall()[0]
    if updated:
        con.execute(
            """
            UPDATE registrations SET valid_to = ?
            WHERE valid_to IS NULL
              AND record_key IN (SELECT record_key FROM skipped WHERE outcome = 'updated')
            """,
            [ingest_id],
        )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW staging AS
        SELECT * FROM {table} ANTI JOIN (
            SELECT record_key FROM skipped WHERE outcome <> 'updated') USING (record_key)
        """
    )
    con.execute("INSERT INTO registrations BY NAME SELECT * EXCLUDE (row) FROM staging")
    return kept_newer, unchanged, updated, staged - kept_newer - unchanged - updated
