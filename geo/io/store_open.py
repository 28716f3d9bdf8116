"""Opening the steward store: the one way in, with a private spill folder and faults named.

Every connection to a store is made here (:func:`open_store`). The store file is
attached to an in-memory DuckDB under the name ``store`` (and made the default
catalog), so that one code path serves plain and encrypted stores alike:

- **Spill folder.** DuckDB spills to disk beyond its memory budget. Its default folder,
  ``<store>.tmp/``, outlives a killed process. Here every connection gets its own folder
  beside the store (``.<store>.tmp-<pid>-XXXX``, created by ``mkdtemp``: readable by its
  owner only), removed when the connection is garbage-collected or the interpreter
  exits; folders left by a killed process (its PID gone) and DuckDB's old default
  folder are removed at the next writable open. Nothing raw is spilled anyway: record
  ids are keyed-hashed before DuckDB sees them (:func:`geo.hashing.record_keys`).
- **Encryption at rest.** With a store key set (:func:`geo.io.steward_key.store_key`),
  a new store is created encrypted (DuckDB's AES-GCM: data, WAL and spill files);
  an encrypted store opens only with its key. Writing needs a secure random generator:
  DuckDB's OpenSSL (the ``httpfs`` extension) when installed; its built-in fallback is
  refused unless ``CRISIS_EXPOSURE_STORE_WEAK_CRYPTO=1`` accepts it (DuckDB draws its
  nonces from a non-cryptographic generator there). Reading never needs it.
- **Faults.** A store locked by another process, a damaged file, a wrong or missing
  key, a folder without permission: each raises :class:`~geo.errors.InputError` with
  one line that names the store (never the other process's details, never the key).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import weakref
from pathlib import Path

import duckdb

from geo.errors import InputError
from geo.io.steward_key import store_key

DUCKDB_MEMORY_LIMIT = os.environ.get("CRISIS_EXPOSURE_DUCKDB_MEMORY", "384MB")
# An ingest that links holds its files' identity encodings (CLKs, block keys: ~400 bytes
# a record in staging and pending tables): with this budget 1M records stay in memory
# instead of spilling 0.5 GB (1.3 s); beyond it DuckDB spills as usual.
LINKING_MEMORY_LIMIT = os.environ.get("CRISIS_EXPOSURE_DUCKDB_MEMORY", "1GB")
# While a release counts its breakdowns part by part (geo.io.store_counts.StoreCounts):
# the cube each part is joined to waits in the temporary file instead of in memory.
BREAKDOWN_MEMORY_LIMIT = os.environ.get("CRISIS_EXPOSURE_DUCKDB_MEMORY", "160MB")
# While an ingest streams a file into the store (geo.io.store_ingest: its row groups are
# written to the store file as they fill).
APPEND_MEMORY_LIMIT = os.environ.get("CRISIS_EXPOSURE_DUCKDB_MEMORY", "256MB")
CATALOG = "store"
WEAK_CRYPTO_VARIABLE = "CRISIS_EXPOSURE_STORE_WEAK_CRYPTO"


def open_store(path: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Attach a store file (created when missing, unless read-only) and return the connection.

    Parameters
    ----------
    path
        The DuckDB store file.
    read_only
        Open without the right to write (several readers may share the file).

    Returns
    -------
    duckdb.DuckDBPyConnection
        With the store as its default catalog ``store``.

    Raises
    ------
    InputError
        If the store is in use by another process, damaged, encrypted with another key
        (or a key is missing), or cannot be opened for lack of permission.
    """
    path = Path(path)
    spill = _private_spill_folder(path)
    try:
        con = duckdb.connect(
            ":memory:",
            config={
                "memory_limit": DUCKDB_MEMORY_LIMIT,
                "preserve_insertion_order": False,
                "temp_directory": str(spill),
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
            },
        )
    except BaseException:
        shutil.rmtree(spill, ignore_errors=True)
        raise
    weakref.finalize(con, shutil.rmtree, spill, True)
    try:
        # DuckDB draws a progress bar on standard output for a query over 2 s (a national
        # ingest's INSERT, a release's cube): the CLI's output must stay clean.
        con.execute("SET enable_progress_bar = false")
        con.execute("SET enable_progress_bar_print = false")
        _attach(con, path, read_only)
        con.execute(f"USE {CATALOG}")
        _remove_stale_spill_folders(path, default_folder=not read_only)
    except BaseException:
        con.close()
        raise
    return con


def _attach(con: duckdb.DuckDBPyConnection, path: Path, read_only: bool) -> None:
    """Attach the store, encrypted when a store key is set (a plain store stays plain)."""
    key = store_key()
    quoted = str(path).replace("'", "''")
    options = ["READ_ONLY"] if read_only else []
    if key is not None:
        keyed = ", ".join([*options, f"ENCRYPTION_KEY '{key}'"])
        for attempt in range(2):
            try:
                con.execute(f"ATTACH '{quoted}' AS {CATALOG} ({keyed})")
                _encrypt_spill_files(con)
                return
            except duckdb.Error as exc:
                if "read-only crypto" in str(exc) and attempt == 0:
                    _secure_crypto(con)
                    continue
                if "is not encrypted" not in str(exc):
                    raise store_error(path, exc) from None
                break
    try:
        con.execute(f"ATTACH '{quoted}' AS {CATALOG}" + (f" ({options[0]})" if options else ""))
    except duckdb.Error as exc:
        raise store_error(path, exc) from None


def _encrypt_spill_files(con: duckdb.DuckDBPyConnection) -> None:
    """Ask DuckDB to encrypt what it spills too (a setting of DuckDB ≥ 1.4)."""
    with contextlib.suppress(duckdb.Error):
        con.execute("SET temp_file_encryption = true")


def _secure_crypto(con: duckdb.DuckDBPyConnection) -> None:
    """Make DuckDB able to write encrypted blocks, or raise.

    Raises
    ------
    InputError
        When OpenSSL (DuckDB's ``httpfs``) is missing and the built-in fallback has not
        been accepted.
    """
    try:
        con.execute("LOAD httpfs")
        return
    except duckdb.Error:
        pass
    if os.environ.get(WEAK_CRYPTO_VARIABLE, "").strip() == "1":
        con.execute("SET force_mbedtls_unsafe = true")
        return
    raise InputError(
        f"writing an encrypted store needs DuckDB's httpfs extension (OpenSSL) for DuckDB "
        f"{duckdb.__version__}; install it (INSTALL httpfs) or set {WEAK_CRYPTO_VARIABLE}=1 "
        "to accept DuckDB's built-in cipher (nonces from a non-cryptographic generator)."
    )


def store_error(path: Path, exc: BaseException) -> InputError:
    """Return the one-line error for a DuckDB or OS fault on a store (no detail of others).

    The lock message names the other process (its program and PID): it is never
    repeated. Disk full and file-size limits, permissions, damaged files and keys are
    told apart; anything else is reported as a store that cannot be read or written.
    """
    text = str(exc)
    lowered = text.lower()
    if "conflicting lock" in lowered or "could not set lock" in lowered:
        return InputError(
            f"{path}: the store is in use by another crisis-exposure process; "
            "try again when it has finished."
        )
    if "without a key" in lowered:
        return InputError(
            f"{path}: the store is encrypted; set CRISIS_EXPOSURE_STORE_KEY or "
            "CRISIS_EXPOSURE_STORE_KEY_FILE to its key."
        )
    if "wrong encryption key" in lowered:
        return InputError(f"{path}: the store key set does not open this encrypted store.")
    if re.search(r"no space left|file too large|disk quota|out of disk", lowered):
        return InputError(
            f"{path}: the disk is full (or a file-size limit was reached); nothing was "
            "stored: free some space and run it again."
        )
    if "permission denied" in lowered or "read-only file system" in lowered:
        return InputError(
            f"{path}: permission denied; the store and its folder must be writable by "
            "this user (read-only commands need only read access)."
        )
    if "out of memory" in lowered:
        return InputError(
            f"{path}: the store's memory budget ({DUCKDB_MEMORY_LIMIT}) is too small for this "
            "work; raise CRISIS_EXPOSURE_DUCKDB_MEMORY (e.g. 2GB) and run it again."
        )
    if "not a valid duckdb database" in lowered or "could not read enough bytes" in lowered:
        return InputError(
            f"{path}: the store file is damaged or not a DuckDB database; restore it from "
            "a backup (see 'Backing up the store' in the README)."
        )
    kind = type(exc).__name__
    first = text.splitlines()[0] if text else kind
    first = re.sub(r"\(PID \d+\)|held in \S+", "", first)
    return InputError(f"{path}: cannot use the store ({kind}: {first[:200]}).")


def _spill_prefix(path: Path) -> str:
    return f".{path.name}.tmp-"


def _private_spill_folder(path: Path) -> Path:
    """Create this connection's spill folder beside the store (mode 0700).

    Raises
    ------
    InputError
        If the store's folder does not exist or cannot be written.
    """
    folder = path.resolve().parent
    if not folder.is_dir():
        raise InputError(f"{path}: the folder {folder} does not exist.")
    try:
        return Path(tempfile.mkdtemp(prefix=f"{_spill_prefix(path)}{os.getpid()}-", dir=folder))
    except OSError as exc:
        if path.exists() and os.access(path, os.R_OK):
            # A read-only folder: DuckDB spills to a private folder of the system's.
            return Path(tempfile.mkdtemp(prefix=f"crisis-exposure-store-{os.getpid()}-"))
        raise store_error(path, exc) from None


def _remove_stale_spill_folders(path: Path, default_folder: bool) -> None:
    """Remove spill folders left by dead processes (and DuckDB's old default one).

    DuckDB's ``<store>.tmp`` is removed only from a writable open: no other process
    uses the store then, so the folder is nobody's.
    """
    folder = path.resolve().parent
    if default_folder:
        shutil.rmtree(folder / f"{path.name}.tmp", ignore_errors=True)
    places = (
        (folder, re.compile(re.escape(_spill_prefix(path)) + r"(\d+)-")),
        (Path(tempfile.gettempdir()), re.compile(r"crisis-exposure-store-(\d+)-")),
    )
    for place, pattern in places:
        for entry in place.iterdir():
            match = pattern.match(entry.name)
            if match and entry.is_dir() and not _alive(int(match.group(1))):
                shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Return whether a process with this PID exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


_HEADERS = 3 * 4096  # DuckDB's main header and its two database headers


class StoreFileGuard:
    """Put a store file back as it was after a failed write (disk full, killed writer).

    DuckDB writes a large append into the file's free space before it commits; a
    transaction that fails leaves those blocks unreferenced (the headers still point at
    the last checkpoint) and the file longer. If the headers are unchanged, cutting the
    file back to its old length gives back the very same bytes; a store this run
    created is removed.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.existed = self.path.exists()
        self.size = self.path.stat().st_size if self.existed else 0
        self.headers = self._headers() if self.existed else b""

    def _headers(self) -> bytes:
        with open(self.path, "rb") as handle:
            return handle.read(_HEADERS)

    def restore(self) -> None:
        """Restore the file after a failure (call once the connection is closed)."""
        with contextlib.suppress(OSError):
            if not self.existed:
                self.path.unlink(missing_ok=True)
                self.path.with_name(self.path.name + ".wal").unlink(missing_ok=True)
            elif self.path.stat().st_size > self.size and self._headers() == self.headers:
                os.truncate(self.path, self.size)


def compact_store(path: str | Path) -> None:
    """Rewrite a store into a fresh file, so that deleted rows leave no bytes in it.

    DuckDB marks deleted rows and, at a checkpoint, frees their blocks for reuse without
    overwriting them: an erased record's key would stay readable in the file. The store
    is therefore copied (``COPY FROM DATABASE``, encrypted with the same key when it is
    encrypted) into a new file beside it, which then replaces it atomically; the old
    file's blocks are left to the file system (keep the store on an encrypted volume or
    use encryption at rest so they say nothing).

    Raises
    ------
    InputError
        If the store cannot be read or the copy cannot be written (the store is then
        left as it was).
    """
    path = Path(path)
    fresh = path.with_name(f".{path.name}.compact-{os.getpid()}")
    leftovers = (fresh, fresh.with_name(fresh.name + ".wal"))
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    con = open_store(path, read_only=True)
    try:
        encrypted = con.execute(
            "SELECT encrypted FROM duckdb_databases() WHERE database_name = ?", [CATALOG]
        ).fetchall()[0][0]
        quoted = str(fresh).replace("'", "''")
        if encrypted:
            _secure_crypto(con)
            con.execute(f"ATTACH '{quoted}' AS fresh (ENCRYPTION_KEY '{store_key()}')")
        else:
            con.execute(f"ATTACH '{quoted}' AS fresh")
        con.execute(f"COPY FROM DATABASE {CATALOG} TO fresh")
        con.execute("DETACH fresh")
        con.close()
        os.chmod(fresh, path.stat().st_mode & 0o777)
        with open(fresh, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(fresh, path)
        path.with_name(path.name + ".wal").unlink(missing_ok=True)  # already in the copy
    except (duckdb.Error, OSError) as exc:
        con.close()
        raise store_error(path, exc) from None
    finally:
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)
