"""What the command line and the dashboard both call: one path through the library.

Each function here reads from ``geo.io`` and hands the data to the pure functions of
``geo.release`` and ``geo.tools`` (which never open a file), so the CLI and every page
get the same answer from the same request. Heavy modules are imported where they are
used: importing this module is cheap, and a command pays only for what it runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geo.errors import InputError


def __getattr__(name: str) -> Any:
    """Hand on the footprint type lazily (``pipeline.Footprint``), for the pages' hints."""
    if name == "Footprint":
        from geo.io.footprints import Footprint

        return Footprint
    raise AttributeError(f"module 'geo.pipeline' has no attribute {name!r}")


if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd
    import pyarrow as pa

    from geo.audit import AuditReport
    from geo.exposure_table import Exposure
    from geo.io.footprints import Footprint
    from geo.io.registrations import FileHeader
    from geo.io.store import IngestReport
    from geo.release import Release, ReleasePolicy
    from geo.validate import ValidatedBatch


# --------------------------------------------------------------------------- ingest


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
    files = [(header, _prepared_batches(header)) for header in headers]
    return store.ingest_files(store_path, files, rejects_dir=rejects_dir, progress=progress)


def _prepared_batches(header: FileHeader) -> Iterator[tuple[ValidatedBatch, pa.Table]]:
    """Yield validated, binned batches, preparing the next one while DuckDB stores this one.

    Reading, validation and binning run in a worker thread (polars and pyarrow release
    the GIL), so the two cores share the work; an error in the worker is raised here.
    """
    from geo.io.registrations import iter_validated_batches
    from geo.io.store import STORE_RESOLUTION
    from geo.validate import coordinates_to_cell

    with ThreadPoolExecutor(max_workers=1) as worker:
        batches = iter_validated_batches(header)

        def prepare() -> tuple[ValidatedBatch, pa.Table] | None:
            batch = next(batches, None)
            if batch is None:
                return None
            return batch, coordinates_to_cell(batch.accepted, STORE_RESOLUTION).to_arrow()

        pending = worker.submit(prepare)
        while (ready := pending.result()) is not None:
            pending = worker.submit(prepare)
            yield ready


# --------------------------------------------------------------------------- release


def build_release(store_path: str | Path, policy: ReleasePolicy) -> Release:
    """Make a release from a store under a policy (not recorded: see :func:`publish_release`).

    Returns
    -------
    Release
        With the store version it was made from (``metadata["store_version"]``) and the
        store's ingests (file names and hashes) in the metadata.

    Raises
    ------
    InputError
        For a bad policy or a missing store, or when the audience is empty.
    """
    from geo.io import store

    con = store.connect(store_path, read_only=True)
    try:
        return _release_from(con, store_path, policy.checked())
    finally:
        con.close()


def _release_from(con: Any, store_path: str | Path, policy: ReleasePolicy) -> Release:
    """Protect the store's current audience under a checked policy (``con`` is open)."""
    from geo.io import store, store_reads
    from geo.release import protect
    from geo.series import refuse_small_nationalities

    records = store_reads.audience_records(
        con, policy.consent_scope, policy.nationalities, policy.base_resolution
    )
    if records.is_empty():
        raise InputError(
            f"{Path(store_path).name}: no stored registration matches the audience "
            f"(consent {policy.consent_scope!r}, nationalities "
            f"{', '.join(policy.nationalities) if policy.nationalities else 'all'})."
        )
    refuse_small_nationalities(records, policy)
    release = protect(records, policy, secret=store_reads.noise_secret(con))
    # Only the store version: counts over the whole store (other consents, other
    # nationalities) and ingest file names are not the release's to publish.
    release.metadata["store_version"] = store.store_version(con)
    return release


def publish_release(store_path: str | Path, policy: ReleasePolicy, out_path: str | Path) -> Release:
    """Make a release, write its file and record it in the store's ledger, all or nothing.

    The store stays open for writing from the first read to the commit, so no ingest
    can change it in between. The file is written under a temporary name, the release
    is recorded in the ledger and committed, and only then is the file renamed into
    place: a release file never exists without its ledger row, and a failure at any
    step leaves neither.

    Parameters
    ----------
    store_path
        The steward store (must exist).
    policy
        The release policy.
    out_path
        The release file to write (``.release.parquet``); an existing file is replaced.

    Returns
    -------
    Release
        As written, with its ``content_sha256`` and ``store_version``.

    Raises
    ------
    InputError
        For a bad policy, a missing store, an empty audience, or a file that cannot be
        written.
    """
    from geo.io import ledger, store
    from geo.series import refuse_series_conflict

    policy = policy.checked()
    out = Path(out_path)
    if out.is_dir():
        raise InputError(f"{out}: is a folder; give the name of the release file to write.")
    temporary = out.with_name(f".{out.name}.publishing")
    con = store.connect(store_path, create=False)
    try:
        refuse_series_conflict(ledger.ledger(con), policy)
        release = _release_from(con, store_path, policy)
        try:
            write_release(release, temporary)
            release_id = _record(con, release, out.name)
            try:
                os.replace(temporary, out)
            except BaseException:
                ledger.discard_release(con, release_id)
                raise
        except BaseException as exc:
            for leftover in (temporary, temporary.with_name(temporary.name + ".tmp")):
                with contextlib.suppress(OSError):  # never written, or not removable
                    leftover.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                reason = f"{exc.strerror or exc}: {exc.filename}" if exc.filename else exc
                raise InputError(f"{out}: cannot write the release ({reason}).") from exc
            raise
    finally:
        con.close()
    return release


def _record(con: Any, release: Release, file_name: str) -> int:
    """Record a release in the ledger in a transaction of its own, and commit it."""
    from geo.io import ledger

    con.begin()
    try:
        release_id = ledger.record_release(
            con, release, release.metadata["store_version"], file_name
        )
        con.commit()
    except BaseException:
        with contextlib.suppress(Exception):  # a failed commit has already rolled back
            con.rollback()
        raise
    return release_id


def list_releases(store_path: str | Path) -> list[dict]:
    """Return the store's ledger: one dict per release published from it, oldest first.

    See :func:`geo.io.ledger.ledger` for the keys.

    Raises
    ------
    InputError
        For a missing file or one that is not a store (of this schema version).
    """
    from geo.io import ledger, store

    con = store.connect(store_path, read_only=True)
    try:
        return ledger.ledger(con)
    finally:
        con.close()


def ledger_release(store_path: str | Path, release_id: int) -> Release:
    """Return a release as the store's ledger recorded it (:func:`geo.io.ledger.ledger_release`).

    Raises
    ------
    InputError
        For a missing store, or a release the ledger does not hold.
    """
    from geo.io import ledger, store

    con = store.connect(store_path, read_only=True)
    try:
        return ledger.ledger_release(con, release_id)
    finally:
        con.close()


def release_as_of(store_path: str | Path, policy: ReleasePolicy, store_version: int) -> Release:
    """Return the release a policy gives on the store as it was at a past store version.

    The same function of the same records as :func:`build_release` then (same keyed
    noise), so for a release in the ledger it reproduces the published table exactly:
    what the ledger audit and the tests check.

    Raises
    ------
    InputError
        For a bad policy, a missing store, or a version the store has not reached.
    """
    from geo.io import store, store_reads
    from geo.release import protect

    policy = policy.checked()
    con = store.connect(store_path, read_only=True)
    try:
        records = store_reads.audience_records(
            con,
            policy.consent_scope,
            policy.nationalities,
            policy.base_resolution,
            as_of=store_version,
        )
        return protect(records, policy, secret=store_reads.noise_secret(con))
    finally:
        con.close()


def store_summary(store_path: str | Path) -> dict:
    """Return what a steward checks of a store: records, persons, nationalities, ingests.

    Raises
    ------
    InputError
        For a missing file or one that is not a store.
    """
    from geo.io import store, store_reads

    con = store.connect(store_path, read_only=True)
    try:
        return store_reads.store_summary(con)
    finally:
        con.close()


def read_release(path: str | Path) -> Release:
    """Read and check a release file (see :func:`geo.io.release_file.read_release`)."""
    from geo.io.release_file import read_release as read

    return read(path)


def write_release(release: Release, path: str | Path) -> Path:
    """Write a release file atomically (see :func:`geo.io.release_file.write_release`)."""
    from geo.io.release_file import write_release as write

    return write(release, path)


# --------------------------------------------------------------------------- footprints


def read_footprints(
    paths: Sequence[str | Path],
    *,
    class_field: str | None = None,
    buffer_km: float = 10.0,
    date_from: str | None = None,
    date_to: str | None = None,
    names: Sequence[str | None] | None = None,
) -> list[Footprint]:
    """Read hazard footprints with the same reader options.

    Raises
    ------
    InputError
        For a file that cannot be read as a footprint.
    """
    from geo.io.footprints import read_footprint

    names = list(names) if names is not None else [None] * len(paths)
    return [
        read_footprint(
            path,
            class_field=class_field or None,
            buffer_km=buffer_km,
            date_from=date_from,
            date_to=date_to,
            name=name,
        )
        for path, name in zip(paths, names, strict=True)
    ]


def footprint_classes(footprints: Sequence[Footprint], cumulative: bool) -> gpd.GeoDataFrame:
    """Return the classes to expose: one footprint's banded, or several combined.

    Raises
    ------
    InputError
        For a cumulative ("or worse") view of classes that have no known order.
    """
    from geo.tools.classes import combine_footprints, to_bands, to_cumulative

    if not footprints:
        raise InputError("no footprint given.")
    classes = (
        combine_footprints(footprints) if len(footprints) > 1 else to_bands(footprints[0].classes)
    )
    if cumulative:
        unordered = [
            fp.provenance["file_name"]
            for fp in footprints
            if not fp.provenance.get("cumulative_available", True)
        ]
        if unordered:
            raise InputError(
                "a cumulative view needs classes with an order; "
                + ", ".join(unordered)
                + " has classes in alphabetical order only. Use banded classes."
            )
        classes = to_cumulative(classes)
    return classes


def read_boundaries(path: str | Path, name: str | None = None) -> gpd.GeoDataFrame:
    """Read administrative boundaries (see :func:`geo.io.boundaries.read_boundaries`)."""
    from geo.io.boundaries import read_boundaries as read

    return read(path, name)


# --------------------------------------------------------------------------- exposure


@dataclass(frozen=True)
class ExposureRun:
    """An exposure with what its exports need: classes and footprint provenance."""

    exposure: Exposure
    classes: gpd.GeoDataFrame
    provenance: list[dict]


def compute_exposure(release: Release, classes: gpd.GeoDataFrame, **options: Any) -> Exposure:
    """Return the exposure of a release for classes, with the shipped settlement weights.

    Takes the options of :func:`geo.tools.exposure.compute_exposure` (``cumulative``,
    ``weighting``, ``admin``, ``admin_field``, ``nationalities``); the GeoNames places
    behind the settlement and blend weightings are read here, at the edge.
    """
    from geo.exposure_table import DEFAULT_WEIGHTING, PLACE_WEIGHTINGS
    from geo.tools import exposure

    weighting = options.get("weighting", DEFAULT_WEIGHTING)
    places = _settlements() if weighting in PLACE_WEIGHTINGS else None
    return exposure.compute_exposure(release, classes, places=places, **options)


def _settlements() -> pd.DataFrame:
    from geo.io.settlements import read_settlements

    return read_settlements()


def run_exposure(
    release: Release,
    footprints: Sequence[Footprint],
    *,
    cumulative: bool = False,
    weighting: str | None = None,
    admin: gpd.GeoDataFrame | None = None,
    admin_field: str | None = None,
    nationalities: Sequence[str] | None = None,
) -> ExposureRun:
    """Return the exposure of a release for footprints: the one request both front ends make.

    Raises
    ------
    InputError
        For unusable footprints or boundaries, or bad options.
    """
    from geo.exposure_table import DEFAULT_WEIGHTING

    if admin is not None and not admin_field:
        raise InputError("--admin needs --admin-field (the field that names each area).")
    classes = footprint_classes(footprints, cumulative)
    exposure = compute_exposure(
        release,
        classes,
        cumulative=cumulative,
        weighting=weighting or DEFAULT_WEIGHTING,
        admin=admin,
        admin_field=admin_field if admin is not None else None,
        nationalities=list(nationalities) if nationalities else None,
    )
    return ExposureRun(exposure, classes, [fp.provenance for fp in footprints])


def export_bytes(
    run: ExposureRun,
    release: Release,
    file_format: str,
    nationalities: Sequence[str] | None = None,
) -> bytes:
    """Return an exposure run's export in ``file_format`` (csv, hxl, xlsx or geojson).

    Raises
    ------
    InputError
        For an unknown format.
    """
    from geo.io.export import export_bytes as payload
    from geo.tools.exposure import exposed_groups

    exposed = None
    if file_format == "geojson":
        exposed = exposed_groups(release, run.classes, list(nationalities or []) or None)
    return payload(file_format, run.exposure, release, run.provenance, exposed)


def write_export(path: str | Path, run: ExposureRun, release: Release) -> Path:
    """Write an exposure run as CSV, HXL CSV, XLSX or GeoJSON (by the file's suffix), atomically.

    Raises
    ------
    InputError
        For an unknown format.
    """
    from geo.io.export import export_format, write_bytes_atomically

    payload = export_bytes(run, release, export_format(path))
    return write_bytes_atomically(path, payload)


# --------------------------------------------------------------------------- audit


def run_audit(release_paths: Sequence[str | Path], store_path: str | Path) -> AuditReport:
    """Audit release files against the store they were made from, each at its version.

    Each file meets the registrations as they were at the store version its metadata
    names (else the current ones); files are named by file name (full path when two
    share one) and audited as a ledger is (:func:`geo.ledger_audit.audit_entries`).

    Raises
    ------
    InputError
        For a missing or altered release file, a missing store, or a release that was
        not made from this store.
    """
    from geo.io import store
    from geo.io.release_file import read_release
    from geo.ledger_audit import LedgerEntry, audit_entries

    con = store.connect(store_path, read_only=True)
    try:
        entries: list[LedgerEntry] = []
        for path in release_paths:
            name = Path(path).name
            name = name if name not in {e.name for e in entries} else str(path)
            release = read_release(path)
            version = release.metadata.get("store_version", store.store_version(con))
            entries.append(LedgerEntry(name, int(version), release))
        snapshots = _snapshots(con, entries)
    finally:
        con.close()
    return audit_entries(entries, snapshots)


def audit_ledger(store_path: str | Path) -> AuditReport:
    """Audit every release in a store's ledger, each against the registry as it was then.

    Releases of one store version are audited together by the linear-programming
    attacker, then the flows between versions (:mod:`geo.ledger_audit`: why the two
    separate, and the cost). The report has one ``audited`` line per release.

    Raises
    ------
    InputError
        For a missing store, an altered ledger, or a release its snapshot cannot give.
    """
    from geo.io import ledger, store
    from geo.ledger_audit import LedgerEntry, audit_entries

    con = store.connect(store_path, read_only=True)
    try:
        entries = [
            LedgerEntry(
                f"#{row['release_id']} {row['file_name']}",
                row["store_version"],
                ledger.ledger_release(con, row["release_id"]),
                row["release_id"],
            )
            for row in ledger.ledger(con)
        ]
        snapshots = _snapshots(con, entries)
    finally:
        con.close()
    return audit_entries(entries, snapshots)


def _snapshots(con: Any, entries: Sequence[Any]) -> dict:
    """Return store version → the registrations then, for the entries' versions."""
    from geo.io import store_reads

    versions = sorted({entry.store_version for entry in entries})
    return {v: store_reads.registration_records(con, as_of=v) for v in versions}
