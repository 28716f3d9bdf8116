"""Ingest: registration files → validated, binned batches → the steward store."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from geo.io.registrations import FileHeader
    from geo.io.store import IngestReport
    from geo.validate import ValidatedBatch


def ingest_files(
    store_path: str | Path,
    paths: Sequence[str | Path],
    rejects_dir: str | Path | None = None,
    sheet: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[IngestReport]:
    """Validate registration files and add their accepted records to the store.

    Every file is opened (and its header checked) before anything is stored; all files
    go in one transaction.

    Parameters
    ----------
    store_path
        The DuckDB store (created when missing).
    paths
        Registration files (CSV, XLSX, Parquet).
    rejects_dir
        Folder for the rejects files; default: beside the store.
    sheet
        Worksheet name for workbooks with several sheets.
    progress
        Called with a short message as work advances.

    Returns
    -------
    list of IngestReport
        One per file, in the order given.

    Raises
    ------
    InputError
        If any file cannot be read (the store is then left unchanged).
    """
    from geo.io import store
    from geo.io.registrations import open_registration_file

    headers = [open_registration_file(path, sheet=sheet) for path in paths]
    secret = store.record_key_secret()
    files = [(header, partial(_prepared_batches, header, secret)) for header in headers]
    return store.ingest_files(store_path, files, rejects_dir=rejects_dir, progress=progress)


def _prepared_batches(
    header: FileHeader, secret: bytes
) -> Iterator[tuple[ValidatedBatch, pa.Table]]:
    """Yield validated, binned, keyed batches, preparing the next while DuckDB stores this one.

    Reading, validation, binning and the record keys' HMAC run in a worker thread
    (polars and pyarrow release the GIL), so the two cores share the work; an error in
    the worker is raised here. The Arrow table handed to the store has no record id.
    """
    from geo.hashing import record_keys
    from geo.io.registrations import iter_validated_batches
    from geo.io.store import STORE_RESOLUTION
    from geo.validate import coordinates_to_cell

    with ThreadPoolExecutor(max_workers=1) as worker:
        batches = iter_validated_batches(header)

        def prepare() -> tuple[ValidatedBatch, pa.Table] | None:
            batch = next(batches, None)
            if batch is None:
                return None
            binned = coordinates_to_cell(batch.accepted, STORE_RESOLUTION)
            return batch, record_keys(binned, secret).to_arrow()

        pending = worker.submit(prepare)
        while (ready := pending.result()) is not None:
            pending = worker.submit(prepare)
            yield ready
