"""Ingest into the steward store: stage each file, resolve duplicates, merge, log.

Two phases, so that memory does not grow with the files. Every file's batches are first
staged in temp tables, each batch committed on its own: DuckDB spills them to the
connection's private spill folder beyond its budget, whereas appends held in one open
transaction stay in memory (1.4 GiB at 10M records). Each file's duplicate records are
resolved there. Then one store transaction merges the files in order, one set-based
statement per step and file, links them (:mod:`geo.io.store_links`) and logs them, so a
failure anywhere leaves the store exactly as it was. The schema, the connection and the
store version are :mod:`geo.io.store`'s.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from geo.io.ingest_report import IngestReport
from geo.io.registrations import FileHeader
from geo.io.store import check_steward_key, connect, ingest_digest, rollback, store_version
from geo.io.store_links import (
    finish_linking,
    link_staged,
    report_lines,
    stage_identities,
    start_linking,
    start_staging,
)
from geo.io.store_open import (
    DUCKDB_MEMORY_LIMIT,
    LINKING_MEMORY_LIMIT,
    STAGING_MEMORY_LIMIT,
    StoreFileGuard,
    store_error,
)
from geo.sanitize import spreadsheet_safe
from geo.validate import ValidatedBatch

# A validated batch and its accepted records as Arrow: the H3 cell instead of
# coordinates, the keyed record key (key_hi, key_lo) instead of the record id.
PreparedBatch = tuple[ValidatedBatch, pa.Table]
# What makes two versions of a registration the same: a re-statement of all of it is no
# new version.
_CONTENT = (
    "record_key, source, nationality, cell, sex, age_band, family_members, "
    "vulnerabilities, consent, updated_at, valid_until"
)


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
        check_steward_key(con, Path(store_path))
        linking = any(header.identity_map for header, _ in files)
        budgets = _Budgets(
            staging=LINKING_MEMORY_LIMIT if linking else STAGING_MEMORY_LIMIT,
            work=LINKING_MEMORY_LIMIT if linking else DUCKDB_MEMORY_LIMIT,
        )
        staged = _stage_files(con, files, say, budgets)
        con.begin()
        start_linking(con)
        for file in staged:
            if file.table is not None:
                _merge_file(con, file)
            if file.rejects is not None and file.rejects.height:
                file.report.rejects_path = rejects_dir / f"{file.report.file_name}.rejects.csv"
                pending_rejects.append((file.report.rejects_path, file.rejects))
        finish_linking(con)
        for target, rejects in pending_rejects:
            _write_rejects(target, rejects)
        con.commit()
    except BaseException as exc:
        rollback(con)
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


@dataclass(frozen=True)
class _Budgets:
    """DuckDB's memory budgets: while appending a file's batches, and for the rest.

    Appends spill beyond their budget, so a small one bounds the ingest's memory (10M
    Parquet rows: peak 914 MiB at 384MB, 796 MiB at 256MB, the same time); resolving
    duplicates and merging need the larger one (at 100M records, 256MB ran out).
    """

    staging: str
    work: str

    def to_staging(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"SET memory_limit = '{self.staging}'")

    def to_work(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"SET memory_limit = '{self.work}'")


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
    budgets: _Budgets,
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
        digest = ingest_digest(header.sha256)
        if digest in seen:
            file.report.already_ingested = True
            continue
        seen.add(digest)
        version += 1
        file.ingest_id = version
        file.table = f"staged_{index}"
        file.rejects, file.identities = _stage_one(con, file, batches, say, budgets)
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
    budgets: _Budgets,
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
    budgets.to_staging(con)
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
    gc.collect()  # the batches' frames, held in reference cycles (70 MiB at 10M records)
    budgets.to_work(con)
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
            ingest_digest(header.sha256),
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
