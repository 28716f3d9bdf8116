"""A release counted on Spark from a Parquet lake, published through the steward's store.

What runs where: Spark (local mode, or a cluster through ``--master``) reads the lake,
applies the ingest's row rules, keys and de-duplicates the records and makes the first
count (cell at the store's resolution × nationality × categories × consent). This
machine then does everything else exactly as for a store: the roll-up, the keyed noise
(:func:`geo.release.protect_counts`), the series rule, the signature, and the ledger, which
also records the lake snapshot (paths, sizes, SHA-256) the release counted
(:mod:`geo.io.lake`). The steward's keys never leave this machine, except the record
keys' HMAC secret, which the executors need (they read the raw record ids anyway).
Cross-source linking stays on the local path (``ingest`` into a store).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geo.errors import InputError

# The connection's temporary table the lake's audience counts are kept in.
LAKE_AUDIENCE = "lake_audience"

if TYPE_CHECKING:
    from geo.io.lake_counts import LakeReport
    from geo.release import Release, ReleasePolicy


def publish_lake_release(
    store_path: str | Path,
    lake: str,
    policy: ReleasePolicy,
    out_path: str | Path,
    valid_days: int | None = None,
    master: str = "local[*]",
    spark_conf: Sequence[str] = (),
    progress: Any = None,
) -> tuple[Release, LakeReport]:
    """Count a lake on Spark, protect it, write the release and record it in the store's ledger.

    All or nothing, as :func:`geo.pipeline.releases.publish_release`: the release file
    appears only once its ledger row (and the lake snapshot) is committed. The store is
    created when missing; it keeps the ledger and the snapshots, never a record.

    Parameters
    ----------
    store_path
        The steward store that keeps this lake's ledger (a store holding ingested
        registrations is refused: its releases count those).
    lake
        A glob of Parquet files (``lake/**/*.parquet``) on a file system the driver and
        the executors both see.
    policy, out_path, valid_days
        As for :func:`geo.pipeline.releases.publish_release`.
    master, spark_conf
        The Spark master URL and ``spark.KEY=VALUE`` settings.
    progress
        Called with a short message as work advances.

    Returns
    -------
    tuple
        The release as written and the lake's report (rows read, rejected by reason).

    Raises
    ------
    InputError
        For a bad policy, a lake that matches nothing or cannot be read, a store with
        registrations or of another series policy, missing pyspark or Java, an empty
        audience, or a file that cannot be written.
    """
    import duckdb

    from geo.io import lake as lakes
    from geo.io import ledger, store, store_counts, store_reads
    from geo.io.lake_counts import LakeAudience, count_lake
    from geo.io.spark_session import parse_spark_conf, require_spark, start_spark
    from geo.io.store_open import store_error
    from geo.pipeline.releases import date_and_link, refuse_exact, write_release
    from geo.release import protect_counts
    from geo.series import refuse_series_conflict, refuse_small_nationalities

    say = progress or (lambda message: None)
    policy = policy.checked()
    refuse_exact(policy)
    if policy.as_of:
        raise InputError(
            "--as-of and --confirmed-within are applied to a store's registrations only, "
            "not yet on Spark (the lake's count keeps no dates): ingest the lake into a "
            "store for them."
        )
    out = Path(out_path)
    if out.is_dir():
        raise InputError(f"{out}: is a folder; give the name of the release file to write.")
    settings = parse_spark_conf(spark_conf)
    require_spark()  # before hashing a lake: a missing piece is said at once
    files = lakes.lake_snapshot(lake)
    say(f"lake: {len(files)} files hashed; starting Spark ({master})")
    spark = start_spark(master, settings)
    temporary = out.with_name(f".{out.name}.publishing")
    con = store.connect(store_path)
    try:
        if store.store_version(con):
            raise InputError(
                f"{Path(store_path).name}: holds ingested registrations; a lake release "
                "keeps its ledger in a store of its own (give another --store)."
            )
        entries = ledger.ledger(con)
        refuse_series_conflict(entries, policy)
        # Under another legal basis every registration counts, whatever its consent.
        basis_other = policy.legal_basis == "other"
        audience = LakeAudience(
            None if basis_other else store_reads.consent_bit(policy.consent_scope),
            policy.nationalities,
            policy.base_resolution,
        )
        keep = store_counts.counted_table(con, LAKE_AUDIENCE)
        report = count_lake(
            spark, files, store.record_key_secret(), store.STORE_RESOLUTION, audience, keep
        )
        lakes.refuse_changed(files)
        counts = store_counts.StoreCounts.of_counted(con, LAKE_AUDIENCE, policy.base_resolution)
        totals = counts.nationality_totals()
        refuse_small_nationalities(totals, policy)
        if totals.is_empty():
            whose = "legal basis other" if basis_other else f"consent {policy.consent_scope!r}"
            raise InputError(f"--lake {lake!r}: no registration matches the audience ({whose}).")
        release = protect_counts(counts, policy, secret=store_reads.noise_secret(con))
        con.execute(f"DROP TABLE {LAKE_AUDIENCE}")  # its memory back before the file is written
        store_reads.release_memory(con)
        release.metadata["store_version"] = store.store_version(con)
        release.metadata["lake_snapshot"] = lakes.snapshot_digest(files)
        _refuse_earlier_lake_snapshots(con, entries, release)
        date_and_link(release, entries, valid_days)
        try:
            write_release(release, temporary)
            con.begin()
            try:
                release_id = ledger.record_release(con, release, 0, out.name)
                lakes.record_snapshot(con, release_id, files)
                con.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    con.rollback()
                raise
            try:
                os.replace(temporary, out)
            except BaseException:
                ledger.discard_release(con, release_id)
                raise
        except BaseException as exc:
            for leftover in (temporary, temporary.with_name(temporary.name + ".tmp")):
                with contextlib.suppress(OSError):
                    leftover.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                reason = f"{exc.strerror or exc}: {exc.filename}" if exc.filename else exc
                raise InputError(f"{out}: cannot write the release ({reason}).") from exc
            if isinstance(exc, duckdb.Error):
                raise store_error(Path(store_path), exc) from None
            raise
    finally:
        con.close()
    return release, report


def _refuse_earlier_lake_snapshots(con: Any, entries: list[dict], release: Release) -> None:
    """Refuse a release of another lake snapshot beside earlier ones (flows not yet checked).

    Releases of one snapshot (several audiences) share their true counts and are
    protected together; releases of two snapshots need the flow guard of
    :func:`geo.pipeline.releases._refuse_disclosing_flows`, which reads each snapshot's
    records. A lake's earlier snapshot is not held by the store, so until the flow
    guard can re-count it on Spark, a changed lake is released on the local path
    (``ingest`` its files into a store). A new store would escape the series' checks.

    Raises
    ------
    InputError
        When the ledger holds a release of another lake snapshot.
    """
    from geo.io import ledger

    digest = release.metadata["lake_snapshot"]
    for entry in entries:
        earlier = ledger.ledger_release(con, entry["release_id"]).metadata.get("lake_snapshot")
        if earlier != digest:
            raise InputError(
                f"the ledger holds release #{entry['release_id']} of another lake snapshot; "
                "the flows between two snapshots are checked on the local path only: "
                "ingest the lake's files into a store and release from it."
            )
