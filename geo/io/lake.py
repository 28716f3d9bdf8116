"""A registry held as a data lake of Parquet files: its snapshot, and its record in the store.

A lake release counts the files a glob names at one moment: the *snapshot* (each
file's path, size and SHA-256, in path order). The steward's store keeps it beside the
ledger row of the release that counted it (table ``lake_files``), so the history of
what each release counted stays with the steward; the release's own metadata carries
only the snapshot's digest (a hash of hashes, no file name).
"""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geo.errors import InputError
from geo.hashing import file_sha256

_SNAPSHOT_TABLE = """
CREATE TABLE IF NOT EXISTS lake_files (
    release_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    path VARCHAR NOT NULL,
    bytes BIGINT NOT NULL,
    sha256 VARCHAR NOT NULL
)
"""


@dataclass(frozen=True)
class LakeFile:
    """One file of a lake snapshot."""

    path: str
    bytes: int
    sha256: str
    modified_ns: int


def lake_snapshot(pattern: str) -> list[LakeFile]:
    """Return the Parquet files a glob names (``**`` recurses), in path order, hashed.

    The lake must be on a file system this machine sees (a local disk or a shared
    mount that the cluster's executors see under the same path).

    Raises
    ------
    InputError
        When the glob names no file.
    """
    paths = sorted(
        p for p in glob.glob(os.path.expanduser(pattern), recursive=True) if os.path.isfile(p)
    )
    if not paths:
        raise InputError(f"--lake {pattern!r}: no file matches (give a glob of Parquet files).")
    files = []
    for path in paths:
        stat = os.stat(path)
        files.append(
            LakeFile(str(Path(path).resolve()), stat.st_size, file_sha256(path), stat.st_mtime_ns)
        )
    return files


def refuse_changed(files: list[LakeFile]) -> None:
    """Refuse a snapshot whose files changed while they were counted (size or time).

    Raises
    ------
    InputError
        Naming the first file that changed or went away.
    """
    for file in files:
        try:
            stat = os.stat(file.path)
        except OSError:
            raise InputError(
                f"{Path(file.path).name}: removed while the lake was counted; run again."
            ) from None
        if (stat.st_size, stat.st_mtime_ns) != (file.bytes, file.modified_ns):
            raise InputError(
                f"{Path(file.path).name}: changed while the lake was counted; run again."
            )


def snapshot_digest(files: list[LakeFile]) -> str:
    """Return the SHA-256 of the snapshot: of its files' hashes, in path order."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(bytes.fromhex(file.sha256))
    return digest.hexdigest()


def record_snapshot(con: Any, release_id: int, files: list[LakeFile]) -> None:
    """Record in the store which files (paths, sizes, hashes) a ledger release counted."""
    con.execute(_SNAPSHOT_TABLE)
    con.executemany(
        "INSERT INTO lake_files VALUES (?, ?, ?, ?, ?)",
        [(release_id, i, f.path, f.bytes, f.sha256) for i, f in enumerate(files)],
    )


def recorded_snapshot(con: Any, release_id: int) -> list[dict]:
    """Return the files a ledger release counted (empty for a release made from the store)."""
    tables = {
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database()"
        ).fetchall()
    }
    if "lake_files" not in tables:
        return []
    rows = con.execute(
        "SELECT path, bytes, sha256 FROM lake_files WHERE release_id = ? ORDER BY position",
        [release_id],
    ).fetchall()
    return [{"path": p, "bytes": b, "sha256": s} for p, b, s in rows]
