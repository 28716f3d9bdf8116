"""Ingest: registration files → validated, binned batches → the steward store."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from geo.io.ingest_report import IngestReport
    from geo.io.registrations import FileHeader
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
    from geo.identity import load_kernels
    from geo.io.registrations import open_registration_file

    headers = [open_registration_file(path, sheet=sheet) for path in paths]
    loading = load_kernels() if any(header.identity_map for header in headers) else None
    try:
        from geo.io import store, store_ingest
        from geo.io.steward_key import derived

        secrets = (store.record_key_secret(), derived("identity encodings"))
        files = [(header, partial(_prepared_batches, header, *secrets)) for header in headers]
        return store_ingest.ingest_files(
            store_path, files, rejects_dir=rejects_dir, progress=progress
        )
    finally:
        if loading is not None:
            loading.join()


PREPARE_WORKERS = 2
# Batches read ahead of the one DuckDB stores (one per worker): bounds memory.
PREPARE_AHEAD = 2


def _prepared_batches(
    header: FileHeader, secret: bytes, identity_secret: bytes, batch_rows: int | None = None
) -> Iterator[tuple[ValidatedBatch, pa.Table]]:
    """Yield validated, binned, keyed batches in file order, prepared ahead on worker threads.

    One thread reads the file's batches in order (:func:`iter_validation_jobs`); two
    workers validate, bin, encode identities (:mod:`geo.identity`) and compute record
    keys, each on its own batch (polars releases the GIL), while DuckDB stores the
    current one. At most ``PREPARE_AHEAD`` batches are in flight; the order, and so row
    numbers and every output, is that of a single thread. An error in a worker is raised
    here. The Arrow table handed to the store has no record id, name, birth date or
    document number.
    """
    from collections import deque

    from geo.io.registrations import iter_validation_jobs

    jobs = iter_validation_jobs(header, batch_rows)
    reader = ThreadPoolExecutor(max_workers=1)
    workers = ThreadPoolExecutor(max_workers=PREPARE_WORKERS)

    def read_next() -> Future | None:
        # Runs on the single reader thread, so batches are read in submission order.
        job = next(jobs, None)
        return None if job is None else workers.submit(_prepared, job, secret, identity_secret)

    try:
        ahead = deque(reader.submit(read_next) for _ in range(PREPARE_AHEAD))
        while (prepared := ahead.popleft().result()) is not None:
            ahead.append(reader.submit(read_next))
            yield prepared.result()
    finally:
        reader.shutdown(wait=True, cancel_futures=True)
        workers.shutdown(wait=True, cancel_futures=True)


def _prepared(
    job: Callable[[], ValidatedBatch], secret: bytes, identity_secret: bytes
) -> tuple[ValidatedBatch, pa.Table]:
    """Validate one batch, bin it at the store's resolution and key its records."""
    import polars as pl

    from geo.hashing import record_keys
    from geo.identity import encode_identities
    from geo.io.store import STORE_RESOLUTION
    from geo.validate import coordinates_to_cell

    batch = job()
    binned = coordinates_to_cell(batch.accepted, STORE_RESOLUTION)
    if batch.identities is not None:
        binned = binned.hstack(batch.identities)
    encoded = encode_identities(binned, identity_secret)
    if "principal_record_id" in encoded.columns:
        principal = record_keys(
            encoded.select("source", pl.col("principal_record_id").alias("record_id")),
            secret,
        ).select(
            pl.when(encoded["principal_record_id"].is_not_null())
            .then(pl.col(c))
            .alias(c.replace("key", "principal"))
            for c in ("key_hi", "key_lo")
        )
        encoded = encoded.drop("principal_record_id").hstack(principal)
    return batch, record_keys(encoded, secret).to_arrow()
