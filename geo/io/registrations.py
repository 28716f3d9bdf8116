"""Read and validate raw registration files: CSV, XLSX and Parquet.

The reader keeps only the canonical columns the analysis needs and drops every other
column on the way in (names, phones, e-mails, passport numbers, addresses, free text).
Each row read is either accepted or rejected with its row number, its record_id and the
reasons, never its other values: accepted + rejected = rows read.

Row numbers are those a spreadsheet shows: the header is row 1, the first record row 2.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from geo import codes
from geo.errors import InputError, library_reason
from geo.hashing import file_sha256
from geo.identity import IDENTITY_PREFIX, identity_map
from geo.io.limits import check_count
from geo.io.zip_guard import TokenCount, check_zip
from geo.sanitize import quote_value
from geo.validate import (
    ACCEPTED_SCHEMA,
    CANONICAL_COLUMNS,
    REJECTS_SCHEMA,
    REQUIRED_COLUMNS,
    ValidatedBatch,
    reference_point_of,
    validate_batch,
)

# Rows per batch read, validated and stored. At 10M Parquet rows 125k against 250k took
# the same time and 914 against 1,068 MiB at the peak (two batches in flight per worker);
# 65k took 23 % longer.
BATCH_ROWS = 125_000
_PRECISE_ROW_SCAN_BYTES = 200 * 1024 * 1024
_HEADER_BYTES = 1 << 20
_SCAN_BYTES = 16 << 20


COLUMN_ALIASES = {
    "record_id": ("id", "registration_id", "case_id", "case_number", "reg_id", "record"),
    "nationality": ("citizenship", "nationality_code", "country_of_citizenship", "nat"),
    "latitude": ("lat", "y", "lat_dd"),
    "longitude": ("lon", "lng", "long", "x", "lon_dd"),
    "sex": ("gender",),
    "age": ("age_years",),
    "birth_year": ("year_of_birth", "yob"),
    "family_members": (
        "dependants",
        "dependents",
        "accompanying_family",
        "accompanying_family_members",
        "family",
    ),
    "vulnerabilities": ("vulnerability", "specific_needs"),
    "consent": ("consents", "consent_scope", "consent_scopes"),
    "source": ("data_source",),
    "updated_at": ("last_updated", "updated", "modified", "date_updated", "confirmed_at"),
    "valid_until": ("departure_date", "return_date", "valid_to", "expires", "expiry_date"),
}

_IDENTIFIER_PATTERN = re.compile(
    r"name|phone|mobile|tel|e_?mail|passport|address|street|note|comment|"
    r"remark|birth_?date|date_of_birth|dob|national_id|id_number|document"
)


@dataclass
class FileHeader:
    """What the reader learnt from a file before reading its rows."""

    path: Path
    file_name: str
    sha256: str
    file_format: str
    column_map: dict[str, str]
    dropped_columns: list[str]
    identifier_columns: list[str]
    sheet: str | None = None
    header_row: int = 1
    encoding: str | None = None
    delimiter: str | None = None
    notes: list[str] = field(default_factory=list)
    # Identity name → header: read into memory for linking only, never stored.
    identity_map: dict[str, str] = field(default_factory=dict)

    def read_columns(self) -> list[str]:
        """Return the headers to read: the canonical columns, then the identity ones."""
        return list(self.column_map.values()) + list(self.identity_map.values())


def fold_column_name(name: object) -> str:
    """Return a header folded to snake case: ``'Family Members '`` → ``family_members``."""
    return re.sub(r"[^0-9a-z]+", "_", codes.fold_text(str(name or ""))).strip("_")


def map_columns(columns: list[str], where: str) -> tuple[dict[str, str], list[str], list[str]]:
    """Map a file's headers to canonical names.

    Returns
    -------
    tuple
        ``(column_map, dropped, identifiers)``: canonical name → header in the file, the
        headers that will be dropped, and those among them that look like direct
        identifiers.

    Raises
    ------
    InputError
        If a required column is missing or two headers map to the same canonical name.
    """
    by_alias = {name: name for name in CANONICAL_COLUMNS}
    for canonical, aliases in COLUMN_ALIASES.items():
        by_alias.update({alias: canonical for alias in aliases})
    column_map: dict[str, str] = {}
    dropped: list[str] = []
    for column in columns:
        canonical = by_alias.get(fold_column_name(column))
        if canonical is None:
            dropped.append(column)
        elif canonical in column_map:
            raise InputError(
                f"{where}: columns {quote_value(column_map[canonical])} and "
                f"{quote_value(column)} both mean '{canonical}'; keep one of them."
            )
        else:
            column_map[canonical] = column
    missing = [name for name in REQUIRED_COLUMNS if name not in column_map]
    if missing:
        shown = ", ".join(quote_value(c) for c in columns[:20]) or "none"
        raise InputError(
            f"{where}: missing required column(s) {', '.join(missing)} "
            f"(found: {shown}). Accepted names include "
            + "; ".join(f"{m}: {', '.join((m,) + COLUMN_ALIASES.get(m, ()))}" for m in missing)
            + "."
        )
    identifiers = [c for c in dropped if _IDENTIFIER_PATTERN.search(fold_column_name(c))]
    return column_map, dropped, identifiers


# ---------------------------------------------------------------------------------------
# Opening files


def detect_format(path: Path) -> str:
    """Return ``csv``, ``xlsx`` or ``parquet`` from the file's first bytes and name.

    Raises
    ------
    InputError
        If the file is missing, empty, binary but not XLSX/Parquet, or an old .xls.
    """
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give the registration files in it.")
    if path.stat().st_size == 0:
        raise InputError(f"{path.name}: the file is empty (0 bytes); expected a header row.")
    with open(path, "rb") as handle:
        head = handle.read(65536)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise InputError(
            f"{path.name}: this is an old binary Excel (.xls) workbook; save it as .xlsx or CSV."
        )
    if b"\x00" in head:
        raise InputError(
            f"{path.name}: the file is binary, not a CSV text file "
            "(it contains NUL bytes); expected CSV, XLSX or Parquet."
        )
    _refuse_nul_bytes(path)
    return "csv"


def _refuse_nul_bytes(path: Path) -> None:
    """Refuse a text file with a NUL byte anywhere, naming its line (streamed, 16 MB at a time).

    A NUL in a CSV is damage or an attack (it would end up inside a value, e.g. a
    record_id); no registry exports one.
    """
    lines = 1
    with open(path, "rb") as handle:
        while chunk := handle.read(_SCAN_BYTES):
            at = chunk.find(b"\x00")
            if at >= 0:
                line = lines + chunk.count(b"\n", 0, at)
                raise InputError(
                    f"{path.name}: line {line:,} holds a NUL byte (the file is damaged or not "
                    "text); remove it or export the file again as UTF-8 CSV."
                )
            lines += chunk.count(b"\n")


def _detect_encoding(head: bytes) -> str:
    """Return ``utf-8`` when the first bytes decode as UTF-8 (BOM or not), else ``latin-1``."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def _detect_delimiter(header_line: str) -> str:
    """Return the most frequent of ``,``, ``;`` and tab in the header line."""
    counts = {sep: header_line.count(sep) for sep in (",", ";", "\t")}
    return max(counts, key=lambda sep: counts[sep]) if any(counts.values()) else ","


def open_registration_file(path: str | Path, sheet: str | None = None) -> FileHeader:
    """Open a registration file, read its header and map its columns.

    Parameters
    ----------
    path
        A CSV (UTF-8, UTF-8 with BOM or Latin-1; comma, semicolon or tab), XLSX or
        Parquet file.
    sheet
        The worksheet to read in a workbook with several sheets.

    Returns
    -------
    FileHeader

    Raises
    ------
    InputError
        For a missing, empty or binary file, a workbook whose sheet cannot be chosen,
        or missing required columns.
    """
    path = Path(path)
    file_format = detect_format(path)
    header = FileHeader(
        path=path,
        file_name=path.name,
        sha256=file_sha256(path),
        file_format=file_format,
        column_map={},
        dropped_columns=[],
        identifier_columns=[],
    )
    if file_format == "csv":
        columns = _csv_header(header)
    elif file_format == "parquet":
        try:
            columns = pq.ParquetFile(path).schema_arrow.names
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(
                f"{path.name}: not a readable Parquet file ({library_reason(exc)})."
            ) from exc
    else:
        shared = TokenCount("xl/sharedStrings.xml", b"<si", "SHARED_STRINGS", "shared strings")
        check_zip(path, path.name, tokens=(shared,))
        columns = _xlsx_header(header, sheet)
    check_count("COLUMNS", path.name, len(columns), "columns")
    header.column_map, header.dropped_columns, header.identifier_columns = map_columns(
        [str(c) for c in columns], path.name + (f" [sheet {header.sheet}]" if header.sheet else "")
    )
    header.identity_map = identity_map(header.dropped_columns, fold_column_name)
    return header


def _csv_header(header: FileHeader) -> list[str]:
    with open(header.path, "rb") as handle:
        head = handle.read(_HEADER_BYTES)
    header.encoding = _detect_encoding(head)
    text = head.decode(header.encoding, errors="replace").lstrip("\ufeff")
    first_line = text.splitlines()[0] if text.strip() else ""
    if not first_line.strip():
        raise InputError(f"{header.file_name}: the first line is empty; expected a header row.")
    header.delimiter = _detect_delimiter(first_line)
    columns = next(csv.reader(io.StringIO(first_line), delimiter=header.delimiter))
    check_count("COLUMNS", header.file_name, len(columns), "columns or more")
    if len(head) == _HEADER_BYTES and not (b"\n" in head or b"\r" in head):
        raise InputError(
            f"{header.file_name}: the header line is longer than 1 MB; expected one line of "
            "column names."
        )
    if header.encoding == "latin-1":
        header.notes.append("read as Latin-1 (the file is not valid UTF-8)")
    return columns


def _open_workbook(header: FileHeader):
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(header.path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken workbook
        raise InputError(
            f"{header.file_name}: not a readable XLSX workbook ({library_reason(exc)})."
        ) from exc
    return workbook


def _find_header_row(rows: list[tuple]) -> int | None:
    """Return the index of the first row that holds a required column, or None."""
    wanted = {"record_id", "nationality", *COLUMN_ALIASES["record_id"]}
    for index, row in enumerate(rows):
        if wanted & {fold_column_name(cell) for cell in row if cell is not None}:
            return index
    return None


def _xlsx_header(header: FileHeader, sheet: str | None) -> list[str]:
    workbook = _open_workbook(header)
    names = workbook.sheetnames
    if sheet is not None and sheet not in names:
        raise InputError(
            f"{header.file_name}: no sheet named {quote_value(sheet)} "
            f"(sheets: {', '.join(quote_value(n) for n in names)})."
        )
    candidates = []
    for name in [sheet] if sheet else names:
        top = list(workbook[name].iter_rows(max_row=20, values_only=True))
        index = _find_header_row(top)
        if index is not None:
            candidates.append((name, index, top[index]))
    workbook.close()
    if not candidates:
        raise InputError(
            f"{header.file_name}: no sheet has a header with record_id and nationality "
            f"in its first 20 rows (sheets: {', '.join(quote_value(n) for n in names)})."
        )
    if len(candidates) > 1:
        raise InputError(
            f"{header.file_name}: several sheets look like registrations "
            f"({', '.join(quote_value(c[0]) for c in candidates)}); name one with --sheet."
        )
    header.sheet, header_index, row = candidates[0]
    header.notes.append(f"read sheet {quote_value(header.sheet)}")
    if header_index:
        header.notes.append(f"skipped {header_index} line(s) above the header")
    header.header_row = header_index + 1
    return [str(c) if c is not None else f"column_{i + 1}" for i, c in enumerate(row)]


# ---------------------------------------------------------------------------------------
# Reading rows as batches of raw strings/values


def _csv_batches(header: FileHeader, batch_rows: int) -> Iterator[tuple[pl.DataFrame, list]]:
    """Yield (frame of canonical columns as strings, malformed-row notes) per block."""
    malformed: list[tuple[int, int]] = []

    def on_invalid(row) -> str:
        malformed.append((row.actual_columns, row.expected_columns))
        return "skip"

    wanted = header.read_columns()
    try:
        reader = pacsv.open_csv(
            header.path,
            read_options=pacsv.ReadOptions(encoding=header.encoding, block_size=2 << 20),
            parse_options=pacsv.ParseOptions(
                delimiter=header.delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted,
                column_types=dict.fromkeys(wanted, pa.string()),
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=True,
            ),
        )
        # Small blocks, gathered into batches of ``batch_rows``: pyarrow parses several
        # blocks ahead (10M rows: ingest peak 1,442 MiB with 16 MiB blocks, 881 MiB with
        # 2 MiB ones, the same time), and validating and staging each small block on
        # its own cost 30 % more time.
        pending: list[pa.RecordBatch] = []
        for record_batch in reader:
            pending.append(record_batch)
            if sum(b.num_rows for b in pending) >= batch_rows:
                yield pl.from_arrow(pa.Table.from_batches(pending)), list(malformed)
                pending.clear()
                malformed.clear()
        if pending:
            yield pl.from_arrow(pa.Table.from_batches(pending)), list(malformed)
            malformed.clear()
    except pa.ArrowInvalid as exc:
        reason = library_reason(exc)
        raise InputError(f"{header.file_name}: cannot be read as CSV ({reason}).") from exc
    if malformed:
        yield pl.DataFrame(schema=dict.fromkeys(wanted, pl.String)), list(malformed)


def _parquet_batches(header: FileHeader, batch_rows: int) -> Iterator[pl.DataFrame]:
    """Yield the file's wanted columns in batches of ``batch_rows``, read by pyarrow.

    Memory stays flat whatever the file's size: without pre-buffering (pyarrow's
    default keeps every pre-buffered range of the row groups read so far: +1 GiB over
    30M rows read), through a 1 MiB read buffer, a row group decoded batch by batch
    (a 100M-row file of 1M-row groups: 310 MiB flat over 30M rows; polars' streaming
    reader, 3× cheaper in CPU, held 1,091 MiB after 5M rows).
    """
    try:
        parquet = pq.ParquetFile(header.path, pre_buffer=False, buffer_size=1 << 20)
        for record_batch in parquet.iter_batches(
            batch_size=batch_rows, columns=header.read_columns()
        ):
            yield pl.from_arrow(pa.Table.from_batches([record_batch]))
    except (pa.ArrowException, OSError) as exc:
        raise InputError(
            f"{header.file_name}: not a readable Parquet file ({library_reason(exc)})."
        ) from exc


def _xlsx_batches(header: FileHeader, batch_rows: int) -> Iterator[pl.DataFrame]:
    workbook = _open_workbook(header)
    sheet = workbook[header.sheet]
    skip = header.header_row
    columns = [str(c) for c in next(sheet.iter_rows(min_row=skip, max_row=skip, values_only=True))]
    positions = {src: columns.index(src) for src in header.read_columns()}
    buffer: list[tuple] = []

    def flush() -> pl.DataFrame:
        data = {src: [_cell_text(row, pos) for row in buffer] for src, pos in positions.items()}
        return pl.DataFrame(data, schema=dict.fromkeys(data, pl.String))

    for row in sheet.iter_rows(min_row=skip + 1, values_only=True):
        buffer.append(row)
        if len(buffer) >= batch_rows:
            yield flush()
            buffer = []
    if buffer:
        yield flush()
    workbook.close()


def _cell_text(row: tuple, position: int) -> str | None:
    """Return a worksheet cell as text (dates as ISO), None when empty."""
    value = row[position] if position < len(row) else None
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def iter_validated_batches(
    header: FileHeader, batch_rows: int = BATCH_ROWS
) -> Iterator[ValidatedBatch]:
    """Read a file's rows in batches and validate them.

    Malformed CSV rows (a wrong number of fields, e.g. a truncated last row) are
    rejected too. Rows are numbered as a spreadsheet shows them.

    Yields
    ------
    ValidatedBatch
    """
    for job in iter_validation_jobs(header, batch_rows):
        yield job()


def iter_validation_jobs(
    header: FileHeader, batch_rows: int | None = None
) -> Iterator[Callable[[], ValidatedBatch]]:
    """Read a file's rows in batches and yield, in file order, a job that validates each.

    Reading, row numbering and the reference point depend on the batches before, so
    they run here, in order; each job is independent of the others, so a caller may run
    several at once (on threads: polars releases the GIL) and keep their order.

    Yields
    ------
    callable
        Takes no argument and returns the batch's :class:`ValidatedBatch`.
    """
    batch_rows = batch_rows or BATCH_ROWS
    next_row = header.header_row + 1
    reference: tuple[float, float] | None = None
    malformed_rows: list[int] | None = None  # exact row numbers, scanned only when needed
    malformed: list[tuple[int, int]] = []
    for raw, found in raw_batches(header, batch_rows):
        malformed.extend(found)
        if malformed and malformed_rows is None:
            # The reader reports a malformed row while parsing its block, before that
            # block's batch arrives here: earlier batches were numbered right.
            malformed_rows = _malformed_csv_rows(header)
        if not raw.height:
            continue
        raw = raw.rename({src: IDENTITY_PREFIX + n for n, src in header.identity_map.items()})
        if reference is None:
            reference = reference_point_of(raw, header.column_map)
        job = partial(_validated, raw, header, next_row, reference, malformed_rows)
        next_row += raw.height
        check_count("ROWS", header.file_name, next_row - header.header_row - 1, "rows or more")
        yield job
    if malformed:
        rows = malformed_rows if len(malformed_rows or []) == len(malformed) else None
        yield partial(_malformed_batch, malformed, rows or [None] * len(malformed))


def _validated(
    raw: pl.DataFrame,
    header: FileHeader,
    first_row: int,
    reference: tuple[float, float] | None,
    malformed_rows: list[int] | None,
) -> ValidatedBatch:
    """Validate one raw batch, numbering its rows past the malformed rows before it."""
    batch = validate_batch(raw, header.column_map, first_row, header.file_name, reference)
    if malformed_rows:
        batch = _renumber_after_malformed(batch, malformed_rows)
    return batch


def _malformed_batch(malformed: list[tuple[int, int]], rows: list[int | None]) -> ValidatedBatch:
    """Return the rejects of the rows with the wrong number of fields."""
    return ValidatedBatch(
        accepted=pl.DataFrame(schema=ACCEPTED_SCHEMA),
        rejects=pl.DataFrame(
            {
                "row": rows,
                "record_id": [None] * len(malformed),
                "reasons": [
                    f"malformed row: {got} field(s) where the header has {want} "
                    "(truncated row or unquoted delimiter)"
                    for got, want in malformed
                ],
            },
            schema=REJECTS_SCHEMA,
        ),
        rows_read=len(malformed),
    )


def raw_batches(header: FileHeader, batch_rows: int) -> Iterator[tuple[pl.DataFrame, list]]:
    """Yield the file's raw batches of its wanted columns, each with its malformed rows."""
    if header.file_format == "csv":
        yield from _csv_batches(header, batch_rows)
    elif header.file_format == "parquet":
        for frame in _parquet_batches(header, batch_rows):
            yield frame, []
    else:
        for frame in _xlsx_batches(header, batch_rows):
            yield frame, []


def _malformed_csv_rows(header: FileHeader) -> list[int]:
    """Return the spreadsheet row numbers of rows with the wrong number of fields.

    Only files up to 200 MB are scanned for exact numbers (a second, slower pass); in
    larger files a malformed row is rejected without a row number.
    """
    if header.path.stat().st_size > _PRECISE_ROW_SCAN_BYTES:
        return []
    with open(header.path, encoding=header.encoding, newline="", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=header.delimiter)
        width = len(next(reader, []))
        return [number for number, row in enumerate(reader, start=2) if len(row) != width and row]


def _renumber_after_malformed(batch: ValidatedBatch, malformed_rows: list[int]) -> ValidatedBatch:
    """Shift row numbers of well-formed rows past the malformed rows that precede them."""

    def shift(frame: pl.DataFrame) -> pl.DataFrame:
        rows = frame["row"].to_list()
        shifted, skipped = [], 0
        for row in rows:
            while skipped < len(malformed_rows) and malformed_rows[skipped] <= row + skipped:
                skipped += 1
            shifted.append(row + skipped)
        return frame.with_columns(pl.Series("row", shifted, dtype=pl.Int64))

    batch.accepted = shift(batch.accepted)
    batch.rejects = shift(batch.rejects)
    return batch
