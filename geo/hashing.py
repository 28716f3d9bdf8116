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


def content_sha256(table: pa.Table | pl.DataFrame, chunk_rows: int = 100_000) -> str:
    """Return the SHA-256 of the table written as CSV (stable across writers).

    The CSV has a header, LF line ends, minimal quoting and empty strings unquoted
    (the bytes ``pandas.DataFrame.to_csv`` writes). Polars writes it five times faster,
    in chunks straight into the digest, so a national release is hashed without holding
    its CSV text.
    """
    hasher = ContentHasher(chunk_rows)
    hasher.update(table)
    return hasher.hexdigest()


class ContentHasher:
    """:func:`content_sha256` of a table handed over in consecutive parts (streamed)."""

    def __init__(self, chunk_rows: int = 100_000) -> None:
        self._sink = _HashSink()
        self._chunk_rows = chunk_rows
        self._header = True

    def update(self, table: pa.Table | pl.DataFrame) -> None:
        """Hash the next rows of the table (the first part gives the header)."""
        frame = table if isinstance(table, pl.DataFrame) else pl.from_arrow(table)
        for offset in range(
            0, max(frame.height, 1) if self._header else frame.height, self._chunk_rows
        ):
            # Empty text written unquoted, as nothing; categoricals compared by their
            # codes, not cast to text (a third of the hash's time at national scale).
            part = frame.slice(offset, self._chunk_rows).with_columns(
                pl.col(pl.String).replace("", None),
                pl.when(pl.col(pl.Categorical) != "").then(pl.col(pl.Categorical)),
            )
            part.write_csv(self._sink, line_terminator="\n", include_header=self._header)
            self._header = False

    def hexdigest(self) -> str:
        """Return the hex digest of everything hashed so far."""
        return self._sink.digest.hexdigest()


RECORD_KEY_SEPARATOR = "\x1f"


def key_sql(hi: str, lo: str) -> str:
    """Return DuckDB SQL for the 128-bit key (UHUGEINT) of two unsigned 64-bit halves.

    The halves are :func:`record_keys`' ``key_hi`` and ``key_lo`` or any pair made by
    :func:`key_halves_sql`: Arrow has no 128-bit unsigned integer, so keys cross between
    DuckDB and Arrow as halves.
    """
    return f"(({hi}::UHUGEINT << 64) | {lo}::UHUGEINT)"


def key_halves_sql(key: str, hi: str, lo: str) -> str:
    """Return DuckDB SQL selecting a 128-bit key's halves as columns ``hi`` and ``lo``."""
    return f"({key} >> 64)::UBIGINT AS {hi}, ({key} & 18446744073709551615)::UBIGINT AS {lo}"


def record_keys(frame: pl.DataFrame, key: bytes) -> pl.DataFrame:
    r"""Return ``frame`` with its record ids replaced by keyed hashes (``key_hi``, ``key_lo``).

    The record key is HMAC-SHA256 (RFC 2104) of ``source + "\x1f" + record_id`` in
    UTF-8, keyed with the 64 ASCII hex characters of ``key``; its first 16 bytes, read
    big-endian as two unsigned 64-bit halves, make the 128-bit record key. A standard
    MAC over bytes, so any engine (Python's ``hmac``, Spark or DuckDB SQL via two passes
    of ``sha256``) gives the same key; computed vectorised (``polars-hash``), before
    any database sees the record id. ``record_id`` is dropped.

    Parameters
    ----------
    frame
        With String columns ``source`` and ``record_id``.
    key
        The secret (32 bytes, from :func:`geo.io.steward_key.derived`).

    Returns
    -------
    polars.DataFrame
        ``frame`` without ``record_id``, with UInt64 ``key_hi`` and ``key_lo``.
    """
    import polars_hash  # noqa: F401  (registers the ``chash`` namespace)

    message = pl.concat_str("source", pl.lit(RECORD_KEY_SEPARATOR), "record_id")
    digest = pl.col("_record_digest")
    return (
        frame.with_columns(message.chash.hmac_sha256(key=key.hex()).alias("_record_digest"))
        .with_columns(
            digest.str.slice(0, 16).str.to_integer(base=16, dtype=pl.UInt64).alias("key_hi"),
            digest.str.slice(16, 16).str.to_integer(base=16, dtype=pl.UInt64).alias("key_lo"),
        )
        .drop("record_id", "_record_digest")
    )
