"""The steward store: a DuckDB file of validated, minimal registrations.

The store is the trusted side. It holds, per registration, only what a release needs:
a keyed hash of (source, record_id), nationality, the H3 cell at ``STORE_RESOLUTION``
(no coordinates), sex, age band, family size, vulnerability and consent bit masks and
the update time; plus a log of ingests. One ``ingest`` call is one transaction: it
either stores every file it was given or leaves the store exactly as it was.
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from geo import codes, h3cells
from geo.errors import InputError
from geo.io.registrations import FileHeader
from geo.sanitize import spreadsheet_safe
from geo.validate import ValidatedBatch

STORE_RESOLUTION = 8
PreparedBatch = tuple[ValidatedBatch, pa.Table]
DUCKDB_MEMORY_LIMIT = os.environ.get("CRISIS_EXPOSURE_DUCKDB_MEMORY", "384MB")
SCHEMA_VERSION = "1"

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
    ingest_id INTEGER NOT NULL
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
    kept_newer BIGINT NOT NULL,
    dropped_columns VARCHAR NOT NULL,
    ingested_at TIMESTAMP NOT NULL
);
"""


@dataclass
class IngestReport:
    """What happened to one file: counts, reasons, dropped columns, where the rejects are."""

    file_name: str
    sha256: str
    file_format: str
    rows_read: int = 0
    accepted: int = 0
    rejected: int = 0
    inserted: int = 0
    updated: int = 0
    kept_newer: int = 0
    already_ingested: bool = False
    rejects_by_reason: Counter = field(default_factory=Counter)
    dropped_columns: list[str] = field(default_factory=list)
    identifier_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rejects_path: Path | None = None

    def summary_lines(self) -> list[str]:
        """Return the report as short human-readable lines (no record values)."""
        if self.already_ingested:
            return [f"{self.file_name}: already ingested (same SHA-256); nothing changed."]
        lines = [
            f"{self.file_name}: {self.rows_read} rows read, {self.accepted} accepted, "
            f"{self.rejected} rejected ({self.inserted} new, {self.updated} updated, "
            f"{self.kept_newer} older than the stored version)"
        ]
        lines += [
            f"  rejected: {count} × {reason}"
            for reason, count in self.rejects_by_reason.most_common()
        ]
        if self.dropped_columns:
            lines.append("  dropped columns (never stored): " + ", ".join(self.dropped_columns))
        if self.identifier_columns:
            lines.append("  of which direct identifiers: " + ", ".join(self.identifier_columns))
        lines += [f"  note: {note}" for note in self.notes]
        if self.rejects_path:
            lines.append(f"  rejects written to {self.rejects_path}")
        return lines


def connect(path: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (and create if needed) a store and return its connection.

    Raises
    ------
    InputError
        If the file exists but is not a crisis-exposure store.
    """
    path = Path(path)
    if read_only and not path.exists():
        raise InputError(f"{path}: no such store; create it with 'crisis-exposure ingest'.")
    try:
        # A bounded memory budget: DuckDB spills to <store>.tmp beyond it, so a national
        # registry (tens of millions of rows) ingests within a couple of GiB.
        con = duckdb.connect(
            str(path),
            read_only=read_only,
            config={"memory_limit": DUCKDB_MEMORY_LIMIT, "preserve_insertion_order": False},
        )
    except duckdb.Error as exc:
        raise InputError(f"{path}: not a readable DuckDB store ({exc}).") from exc
    if not read_only:
        con.execute(_SCHEMA)
        con.execute(
            "INSERT INTO meta SELECT * FROM (VALUES ('schema_version', ?), ('resolution', ?),"
            " ('key_salt', ?)) v(k, val) WHERE k NOT IN (SELECT key FROM meta)",
            [SCHEMA_VERSION, str(STORE_RESOLUTION), secrets.token_hex(16)],
        )
    tables = {
        row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    if not {"meta", "registrations", "ingests"} <= tables:
        con.close()
        raise InputError(f"{path}: a DuckDB file but not a crisis-exposure store.")
    return con


def _meta(con: duckdb.DuckDBPyConnection, key: str) -> str:
    return con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()[0][0]


def ingest_files(
    store_path: str | Path,
    files: Sequence[tuple[FileHeader, Iterable[PreparedBatch]]],
    rejects_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[IngestReport]:
    """Add validated, binned batches of several files to the store, in one transaction.

    Parameters
    ----------
    store_path
        The DuckDB store (created when missing).
    files
        Per file, its header (name, hash, format, dropped columns) and its batches: the
        validated batch and its accepted records with the H3 cell at
        ``STORE_RESOLUTION`` instead of coordinates, as Arrow.
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
        If any batch cannot be read (the store is then left unchanged).
    """
    say = progress or (lambda message: None)
    rejects_dir = Path(rejects_dir) if rejects_dir else Path(store_path).resolve().parent
    con = connect(store_path)
    reports: list[IngestReport] = []
    pending_rejects: list[tuple[Path, pl.DataFrame]] = []
    try:
        con.begin()
        for header, batches in files:
            report, rejects = _ingest_one(con, header, batches, say)
            reports.append(report)
            if rejects is not None and rejects.height:
                report.rejects_path = rejects_dir / f"{header.file_name}.rejects.csv"
                pending_rejects.append((report.rejects_path, rejects))
        for target, rejects in pending_rejects:
            _write_rejects(target, rejects)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.close()
    return reports


def _write_rejects(target: Path, rejects: pl.DataFrame) -> None:
    """Write rejects atomically (temporary file, then rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    safe_ids = pl.col("record_id").map_elements(spreadsheet_safe, return_dtype=pl.String)
    rejects.with_columns(safe_ids).sort("row", nulls_last=True).write_csv(temporary)
    os.replace(temporary, target)


def _ingest_one(
    con: duckdb.DuckDBPyConnection,
    header: FileHeader,
    batches: Iterable[PreparedBatch],
    say: Callable[[str], None],
) -> tuple[IngestReport, pl.DataFrame | None]:
    """Stage one file's batches, resolve its duplicates, merge it and log the ingest.

    Returns the file's report and its rejects (None when the file was ingested before).
    """
    report = IngestReport(
        file_name=header.file_name,
        sha256=header.sha256,
        file_format=header.file_format,
        dropped_columns=header.dropped_columns,
        identifier_columns=header.identifier_columns,
        notes=list(header.notes),
    )
    if con.execute("SELECT count(*) FROM ingests WHERE sha256 = ?", [header.sha256]).fetchall()[0][
        0
    ]:
        report.already_ingested = True
        return report, None
    salt = _meta(con, "key_salt")
    con.execute("CREATE OR REPLACE TEMP TABLE staging AS SELECT * FROM registrations LIMIT 0")
    con.execute("ALTER TABLE staging ADD COLUMN row BIGINT")
    con.execute("ALTER TABLE staging ADD COLUMN record_id VARCHAR")
    rejects: list[pl.DataFrame] = []
    ingest_id = con.execute("SELECT coalesce(max(ingest_id), 0) + 1 FROM ingests").fetchall()[0][0]
    for batch, binned in batches:
        report.rows_read += batch.rows_read
        rejects.append(batch.rejects)
        con.register("binned", binned)
        con.execute(
            """
            INSERT INTO staging BY NAME
            SELECT md5_number(? || source || chr(31) || record_id) AS record_key, source,
                   nationality, cell, sex, age_band, family_members, vulnerabilities, consent,
                   updated_at, ? AS ingest_id, row, record_id
            FROM binned
            """,
            [salt, ingest_id],
        )
        con.unregister("binned")
        say(f"{header.file_name}: {report.rows_read} rows read")
    duplicates = _reject_duplicates(con)
    if duplicates.height:
        rejects.append(duplicates)
    all_rejects = pl.concat(rejects) if rejects else None
    report.rejected = all_rejects.height if all_rejects is not None else 0
    report.accepted = report.rows_read - report.rejected
    if all_rejects is not None:
        for reasons in all_rejects["reasons"]:
            report.rejects_by_reason.update(reasons.split("; "))
    report.kept_newer, report.updated, report.inserted = _merge_staging(con)
    con.execute(
        "INSERT INTO ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            report.kept_newer,
            ", ".join(header.dropped_columns),
            datetime.now(UTC).replace(tzinfo=None),
        ],
    )
    con.execute("DROP TABLE staging")
    return report, all_rejects


def _reject_duplicates(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Remove all but the latest version of each record staged twice; return them as rejects.

    The latest ``updated_at`` wins (the later row on a tie), decided by a window over
    the staged records that share a key.
    """
    duplicates = con.sql(
        """
        WITH ranked AS (
            SELECT row, record_id, record_key,
                   row_number() OVER w AS rank
            FROM staging
            WHERE record_key IN (
                SELECT record_key FROM staging GROUP BY record_key HAVING count(*) > 1)
            WINDOW w AS (PARTITION BY record_key ORDER BY updated_at DESC NULLS LAST, row DESC)
        )
        SELECT row, record_id,
               'duplicate record_id (the entry with the latest updated_at is kept)' AS reasons
        FROM ranked WHERE rank > 1
        """
    ).pl()
    if duplicates.height:
        con.register("duplicates", duplicates.to_arrow())
        con.execute("DELETE FROM staging WHERE row IN (SELECT row FROM duplicates)")
        con.unregister("duplicates")
    return duplicates.cast({"row": pl.Int64})


def _merge_staging(con: duckdb.DuckDBPyConnection) -> tuple[int, int, int]:
    """Merge staged records into the store; a stored newer version wins.

    Returns (kept_newer, updated, inserted). Into an empty store (the first ingest of a
    registry, the common case at national scale) the staged rows go straight in.
    """
    if not con.execute("SELECT count(*) FROM (SELECT 1 FROM registrations LIMIT 1)").fetchall()[0][
        0
    ]:
        inserted = con.execute(
            "INSERT INTO registrations SELECT * EXCLUDE (row, record_id) FROM staging"
        ).fetchall()[0][0]
        return 0, 0, inserted
    kept_newer = con.execute(
        """
        DELETE FROM staging WHERE record_key IN (
            SELECT s.record_key FROM staging s JOIN registrations r USING (record_key)
            WHERE r.updated_at IS NOT NULL
              AND (s.updated_at IS NULL OR s.updated_at < r.updated_at))
        """
    ).fetchall()[0][0]
    updated = con.execute(
        "DELETE FROM registrations WHERE record_key IN (SELECT record_key FROM staging)"
    ).fetchall()[0][0]
    total = con.execute(
        "INSERT INTO registrations SELECT * EXCLUDE (row, record_id) FROM staging"
    ).fetchall()[0][0]
    return kept_newer, updated, total - updated


def _consent_bit(consent_scope: str) -> int:
    """Return the consent bit of a scope.

    Raises
    ------
    InputError
        For an unknown consent scope.
    """
    if consent_scope not in codes.CONSENT_SCOPES:
        raise InputError(
            f"unknown consent scope {consent_scope!r}; "
            f"use one of {', '.join(codes.CONSENT_SCOPES)}."
        )
    return 1 << codes.CONSENT_SCOPES.index(consent_scope)


def audience_records(
    con: duckdb.DuckDBPyConnection,
    consent_scope: str,
    nationalities: Sequence[str] | None = None,
    resolution: int | None = None,
) -> pl.DataFrame:
    """Return the stored records whose consent covers ``consent_scope``, counted.

    Parameters
    ----------
    con
        A store connection.
    consent_scope
        The scope every record must carry.
    nationalities
        Keep only these (ISO alpha-3); default all.
    resolution
        Count records per cell at this H3 resolution (≤ the store's); default the
        store's own resolution.

    Returns
    -------
    polars.DataFrame
        Columns nationality, cell, sex, age_band, vulnerabilities, cases, persons: one
        row per distinct combination, ``cases`` registrations and their ``persons``.

    Raises
    ------
    InputError
        For an unknown consent scope.
    """
    cell = h3cells.parent_sql("cell", resolution if resolution is not None else STORE_RESOLUTION)
    query = f"""
        SELECT nationality, {cell} AS cell, sex, age_band, vulnerabilities,
               count(*)::BIGINT AS cases, sum(1 + family_members)::BIGINT AS persons
        FROM registrations WHERE (consent & ?) != 0
    """
    parameters: list = [_consent_bit(consent_scope)]
    if nationalities:
        query += " AND nationality IN (SELECT unnest(?))"
        parameters.append(list(nationalities))
    query += " GROUP BY ALL"
    return con.sql(query, params=parameters).pl()


def registration_records(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Return every stored registration, one row each, with its consent bit mask.

    This is the steward's truth at full detail (no consent filter, no grouping), for
    checks that must see the records a release was made from, such as the audit.

    Parameters
    ----------
    con
        A store connection.

    Returns
    -------
    polars.DataFrame
        Columns nationality, cell (H3 integer at the store's resolution), sex,
        age_band, vulnerabilities (bit mask), persons (1 + family members) and consent
        (bit mask).
    """
    return con.sql(
        "SELECT nationality, cell, sex, age_band, vulnerabilities,"
        " (1 + family_members)::BIGINT AS persons, consent FROM registrations"
    ).pl()


def store_summary(con: duckdb.DuckDBPyConnection) -> dict:
    """Return counts a steward checks: records, persons, nationalities, ingests."""
    records, persons, nationalities = con.execute(
        "SELECT count(*), coalesce(sum(1 + family_members), 0), count(DISTINCT nationality)"
        " FROM registrations"
    ).fetchall()[0]
    ingests = con.execute("SELECT file_name, sha256 FROM ingests ORDER BY ingest_id").fetchall()
    return {
        "records": int(records),
        "persons": int(persons),
        "nationalities": int(nationalities),
        "resolution": int(_meta(con, "resolution")),
        "ingests": [{"file_name": name, "sha256": digest} for name, digest in ingests],
    }
