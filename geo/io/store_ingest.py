"""Ingest into the steward store: append each file, resolve duplicates, merge, link, log.

One store transaction takes every file of a call, in order. A file's records are
streamed into ``registrations`` by one INSERT, as versions valid from the file's ingest
id: DuckDB writes full row groups into the store file as they come (before it commits),
so memory does not grow with the file, and the records are written once, without a
staging copy. Then the file's duplicate records, and its records that restate or are
older than a stored version, are deleted again; the stored versions it changes are
closed; it is linked (:mod:`geo.io.store_links`) and logged. A failure anywhere leaves
the store exactly as it was (:class:`~geo.io.store_open.StoreFileGuard` cuts the file
back). The schema, the connection and the store version are :mod:`geo.io.store`'s.
"""

from __future__ import annotations

import contextlib
import gc
import os
import queue
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from geo.hashing import key_halves_sql, key_sql
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
    APPEND_MEMORY_LIMIT,
    DUCKDB_MEMORY_LIMIT,
    LINKING_MEMORY_LIMIT,
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

    Each file's records are streamed into ``registrations`` by one statement, which
    DuckDB writes to the store file as it goes (memory does not grow with the file);
    then its duplicates are resolved, it is merged with the stored versions, linked and
    logged. A failure anywhere leaves the store exactly as it was.

    Parameters
    ----------
    store_path
        The DuckDB store (created when missing).
    files
        Per file, its header (name, hash, format, dropped columns) and a function that
        yields its batches: the validated batch and its accepted records as Arrow, with
        the H3 cell at ``STORE_RESOLUTION`` instead of coordinates and the record key
        (:func:`geo.hashing.record_keys`) instead of the record id. Called once; a
        second time only for a file with duplicate records, to find their rows and
        record ids (record ids never enter the database).
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
    reports: list[IngestReport] = []
    try:
        check_steward_key(con, Path(store_path))
        linking = any(header.identity_map for header, _ in files)
        budgets = _Budgets(
            appending=LINKING_MEMORY_LIMIT if linking else APPEND_MEMORY_LIMIT,
            work=LINKING_MEMORY_LIMIT if linking else DUCKDB_MEMORY_LIMIT,
        )
        version = store_version(con)
        seen = {row[0] for row in con.execute("SELECT sha256 FROM ingests").fetchall()}
        con.begin()
        start_linking(con)
        for header, batches in files:
            report = _new_report(header)
            reports.append(report)
            digest = ingest_digest(header.sha256)
            if digest in seen:  # this file (or an identical one) is stored already
                report.already_ingested = True
                continue
            seen.add(digest)
            version += 1
            rejects = _ingest_file(con, _File(header, report, version, batches), say, budgets)
            if rejects.height:
                report.rejects_path = rejects_dir / f"{report.file_name}.rejects.csv"
                pending_rejects.append((report.rejects_path, rejects))
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
    return reports


@dataclass(frozen=True)
class _Budgets:
    """DuckDB's memory budgets: while a file's records are appended, and for the rest.

    Appends go to the store file beyond their budget, so a small one bounds the ingest's
    memory; resolving duplicates and merging need the larger one (at 100M records,
    256MB ran out).
    """

    appending: str
    work: str

    def to_appending(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"SET memory_limit = '{self.appending}'")

    def to_work(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"SET memory_limit = '{self.work}'")


@dataclass(frozen=True)
class _File:
    """One file being ingested: its header, report, ingest id and batches."""

    header: FileHeader
    report: IngestReport
    ingest_id: int
    batches: Callable[[], Iterable[PreparedBatch]]


def _new_report(header: FileHeader) -> IngestReport:
    return IngestReport(
        file_name=header.file_name,
        sha256=header.sha256,
        file_format=header.file_format,
        dropped_columns=header.dropped_columns,
        identifier_columns=header.identifier_columns,
        notes=list(header.notes),
    )


def _ingest_file(
    con: duckdb.DuckDBPyConnection, file: _File, say: Callable[[str], None], budgets: _Budgets
) -> pl.DataFrame:
    """Store one file's records as new versions, merge, link and log it; return its rejects.

    Inside the store's transaction. The file's records are first appended as versions
    valid from its ingest id; its duplicates, and then its records that restate or are
    older than a stored version, are deleted again before the transaction commits.
    """
    header, report, ingest_id = file.header, file.report, file.ingest_id
    start_staging(con)
    budgets.to_appending(con)
    rejects = _append_records(con, file, say)
    gc.collect()  # the batches' frames, held in reference cycles (70 MiB at 10M records)
    budgets.to_work(con)
    rejects.append(_drop_duplicates(con, file))
    all_rejects = pl.concat(rejects)
    report.rejected = all_rejects.height
    report.accepted = report.rows_read - report.rejected
    for reasons in all_rejects["reasons"]:
        report.rejects_by_reason.update(reasons.split("; "))
    appended, report.no_consent, report.unconfirmed = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE consent = 0),"
        " count(*) FILTER (WHERE updated_at IS NULL) FROM registrations WHERE valid_from = ?",
        [ingest_id],
    ).fetchall()[0]
    report.kept_newer, report.unchanged, report.updated, report.inserted = _merge(
        con, ingest_id, appended
    )
    con.execute(
        "CREATE OR REPLACE TEMP VIEW staging AS"
        f" FROM registrations WHERE valid_from = {int(ingest_id)}"
    )
    report.linking = report_lines(
        link_staged(con, ingest_id),
        has_names=bool({"full_name", "given_name", "family_name"} & set(header.identity_map)),
        has_companion_ids=bool({"household_id", "principal_record_id"} & set(header.identity_map)),
        has_family_counts="family_members" in header.column_map,
    )
    _log_ingest(con, ingest_id, header, report)
    con.execute("DROP VIEW staging")
    con.execute("DROP TABLE staging_ids")
    return all_rejects


# The columns of a prepared batch that make a registration version, as they are streamed.
_RECORDS = pa.schema(
    [
        ("key_hi", pa.uint64()),
        ("key_lo", pa.uint64()),
        ("source", pa.large_string()),
        ("nationality", pa.large_string()),
        ("cell", pa.uint64()),
        ("sex", pa.large_string()),
        ("age_band", pa.large_string()),
        ("family_members", pa.int16()),
        ("vulnerabilities", pa.uint16()),
        ("consent", pa.uint8()),
        ("updated_at", pa.timestamp("us")),
        ("valid_until", pa.date32()),
    ]
)


def _insert_records(con: duckdb.DuckDBPyConnection, records: str, ingest_id: int) -> None:
    """Append the registered Arrow records ``records`` as versions valid from ``ingest_id``."""
    con.execute(
        f"""
        INSERT INTO registrations BY NAME
        SELECT {key_sql("key_hi", "key_lo")} AS record_key, source,
               nationality, cell, sex, age_band, family_members, vulnerabilities, consent,
               updated_at, valid_until, ? AS valid_from
        FROM {records}
        """,
        [ingest_id],
    )


def _append_records(
    con: duckdb.DuckDBPyConnection, file: _File, say: Callable[[str], None]
) -> list[pl.DataFrame]:
    """Stream a file's accepted records into ``registrations``; return its batches' rejects.

    One INSERT reads every batch as it is prepared, so DuckDB writes full row groups to
    the store file instead of holding the transaction's appends in memory (one INSERT
    per batch of 125k held 1.25 GiB at 10M records in one transaction, the stream ~0.5
    GiB, batches included). DuckDB pulls the batches on its own threads, so the INSERT
    runs on a helper thread and this one reports the progress it sends (a dashboard
    page can only be updated from its own thread); an interrupt here stops the INSERT.
    A file with identity fields has them staged beside, on a second connection to the
    same database (the first is busy reading the stream), and copied into
    ``staging_ids`` once the stream ends. An error while preparing a batch ends the
    stream and is raised here.
    """
    report = file.report
    rejects: list[pl.DataFrame] = []
    failures: list[BaseException] = []
    progress: queue.SimpleQueue[str] = queue.SimpleQueue()
    side = con.cursor() if file.header.identity_map else None
    if side is not None:
        start_staging(side)
    prepared = iter(file.batches())

    def records() -> Iterator[pa.RecordBatch]:
        try:
            for batch, keyed in prepared:
                report.rows_read += batch.rows_read
                rejects.append(batch.rejects)
                if side is not None:
                    stage_identities(side, keyed)
                yield from keyed.select(_RECORDS.names).cast(_RECORDS).to_batches()
                progress.put(f"{file.header.file_name}: {report.rows_read} rows read")
        except BaseException as exc:  # raised below, with its own type and message
            failures.append(exc)

    try:
        con.register("prepared", pa.RecordBatchReader.from_batches(_RECORDS, records()))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-append") as runner:
            inserting = runner.submit(_insert_records, con, "prepared", file.ingest_id)
            try:
                while not inserting.done() or not progress.empty():
                    with contextlib.suppress(queue.Empty):
                        say(progress.get(timeout=0.1))
            except BaseException:
                con.interrupt()  # the runner's INSERT ends; the pool waits for it
                raise
            inserting.result()
        con.unregister("prepared")
        if failures:
            raise failures[0]
        if side is not None:
            _copy_identities(side, con)
    finally:
        close = getattr(prepared, "close", None)
        if close is not None:
            close()  # stops the workers of a stream that ended early
        if side is not None:
            side.close()
    return rejects


def _copy_identities(side: duckdb.DuckDBPyConnection, con: duckdb.DuckDBPyConnection) -> None:
    """Copy the identities staged on ``side`` into ``con``'s ``staging_ids``, streamed.

    128-bit keys cross as two 64-bit halves (Arrow has no 128-bit unsigned integer).
    """
    keys = ("record_key", "principal_key")
    halves = ", ".join(key_halves_sql(c, f"{c}_hi", f"{c}_lo") for c in keys)
    reader = side.sql(f"SELECT * EXCLUDE ({', '.join(keys)}), {halves} FROM staging_ids")
    con.register("side_ids", reader.to_arrow_reader())
    names = ", ".join(f"{c}_hi, {c}_lo" for c in keys)
    joined = ", ".join(f"{key_sql(f'{c}_hi', f'{c}_lo')} AS {c}" for c in keys)
    con.execute(
        f"INSERT INTO staging_ids BY NAME SELECT * EXCLUDE ({names}), {joined} FROM side_ids"
    )
    con.unregister("side_ids")


def _drop_duplicates(con: duckdb.DuckDBPyConnection, file: _File) -> pl.DataFrame:
    """Keep only the latest version of each record the file holds twice; return the others.

    The latest ``updated_at`` wins (the later row on a tie). The keys that occur twice
    are found in the store; their rows, their record ids and which one wins are read
    again from the file (rare; record ids never enter the database). Returns rejects
    (row, record_id, reasons).
    """
    ingest_id = file.ingest_id
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE duplicate_keys AS
        SELECT record_key, {key_halves_sql("record_key", "key_hi", "key_lo")}
        FROM registrations WHERE valid_from = ?
        GROUP BY record_key HAVING count(*) > 1
        """,
        [ingest_id],
    )
    keys = con.sql("SELECT key_hi, key_lo FROM duplicate_keys").pl()
    if not keys.height:
        con.execute("DROP TABLE duplicate_keys")
        return _NO_REJECTS
    versions, names = [], []
    for batch, keyed in file.batches():
        twice = pl.from_arrow(keyed).join(keys, on=["key_hi", "key_lo"], how="semi")
        if twice.height:
            versions.append(twice.select("row", *_RECORDS.names))
            names.append(
                batch.accepted.filter(pl.col("row").is_in(twice["row"].implode())).select(
                    pl.col("row").cast(pl.Int64), "record_id"
                )
            )
    versions = pl.concat(versions)
    latest = versions.sort(["updated_at", "row"], descending=True, nulls_last=True).unique(
        ["key_hi", "key_lo"], keep="first"
    )
    others = versions.join(latest.select("row"), on="row", how="anti").select(
        pl.col("row").cast(pl.Int64)
    )
    con.execute(
        "DELETE FROM registrations WHERE valid_from = ?"
        " AND record_key IN (SELECT record_key FROM duplicate_keys)",
        [ingest_id],
    )
    con.register("latest", latest.select(_RECORDS.names).to_arrow())
    _insert_records(con, "latest", ingest_id)
    con.unregister("latest")
    con.register("others", others.to_arrow())
    con.execute("DELETE FROM staging_ids WHERE row IN (SELECT row FROM others)")
    con.unregister("others")
    con.execute("DROP TABLE duplicate_keys")
    return others.join(pl.concat(names), on="row", how="left").select(
        "row",
        "record_id",
        pl.lit("duplicate record_id (the entry with the latest updated_at is kept)").alias(
            "reasons"
        ),
    )


_NO_REJECTS = pl.DataFrame(schema={"row": pl.Int64, "record_id": pl.String, "reasons": pl.String})


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


def _merge(
    con: duckdb.DuckDBPyConnection, ingest_id: int, appended: int
) -> tuple[int, int, int, int]:
    """Merge a file's appended versions with the stored ones; a stored newer version wins.

    Every step is one set-based statement, whatever the number of records. The file's
    records (``valid_from`` = ``ingest_id``) whose key has a current stored version are
    classed once, by a join on the key: older than the stored version (kept_newer) or
    restating it exactly (unchanged) are deleted again; changing it (updated) closes
    the stored version at this ingest (``valid_to``). The others are new.

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
        FROM registrations s JOIN registrations r
          ON r.record_key = s.record_key AND r.valid_to IS NULL AND r.valid_from < $id
        WHERE s.valid_from = $id
        """,
        {"id": ingest_id},
    )
    kept_newer, unchanged, updated = con.execute(
        """
        SELECT count(*) FILTER (WHERE outcome = 'kept_newer'),
               count(*) FILTER (WHERE outcome = 'unchanged'),
               count(*) FILTER (WHERE outcome = 'updated')
        FROM skipped
        """
    ).fetchall()[0]
    if updated:
        con.execute(
            """
            UPDATE registrations SET valid_to = $id
            WHERE valid_to IS NULL AND valid_from < $id
              AND record_key IN (SELECT record_key FROM skipped WHERE outcome = 'updated')
            """,
            {"id": ingest_id},
        )
    if kept_newer or unchanged:
        con.execute(
            """
            DELETE FROM registrations WHERE valid_from = $id
              AND record_key IN (SELECT record_key FROM skipped WHERE outcome <> 'updated')
            """,
            {"id": ingest_id},
        )
    con.execute("DROP TABLE skipped")
    return kept_newer, unchanged, updated, appended - kept_newer - unchanged - updated
