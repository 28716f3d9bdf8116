"""Content hashes: of files (provenance, re-ingest detection) and of release tables.

One place for both, so that a file is hashed the same way by the store, the footprint
readers and the dashboard's caches, and a release's table the same way by its writer
and every reader.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import polars as pl
import pyarrow as pa


def file_sha256(path: str | Path) -> str:
    """Return the SHA-256 hex digest of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _HashSink(io.RawIOBase):
    """A write-only file that feeds a SHA-256 digest (so a CSV is hashed, never held)."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.digest.update(data)
        return len(data)


def content_sha256(table: pa.Table, chunk_rows: int = 100_000) -> str:
    """Return the SHA-256 of the table written as CSV (stable across writers).

    The CSV has a header, LF line ends, minimal quoting and empty strings unquoted
    (the bytes ``pandas.DataFrame.to_csv`` writes). Polars writes it five times faster,
    in chunks straight into the digest, so a national release is hashed without holding
    its CSV text.
    """
    sink = _HashSink()
    frame = pl.from_arrow(table)
    for offset in range(0, max(frame.height, 1), chunk_rows):
        part = frame.slice(offset, chunk_rows).with_columns(pl.col(pl.String).replace("", None))
        part.write_csv(sink, line_terminator="\n", include_header=offset == 0)
    return sink.digest.hexdigest()
