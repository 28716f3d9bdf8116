"""Releases: build, publish through the ledger, rebuild a past one, read and write files."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geo.errors import InputError

if TYPE_CHECKING:
    from geo.release import Release, ReleasePolicy


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
    from geo.freshness import BLOCK_KEY, confirmed_block
    from geo.io import store, store_reads
    from geo.release import protect_counts
    from geo.series import refuse_small_nationalities

    counts = _audience(con, policy)
    totals = counts.nationality_totals()
    refuse_small_nationalities(totals, policy)  # the same words for none and for 1..k−1
    # A whole audience under k (a narrow --confirmed-within window, say) is refused in the
    # words of an empty one: its existence, block and withheld figure would be about
    # fewer than k people.
    if totals.is_empty() or int(totals["cases"].sum()) < policy.k:
        basis = (
            "held under another legal basis"
            if policy.legal_basis == "other"
            else f"consent {policy.consent_scope!r}; a register held under another legal "
            "basis: --legal-basis other --basis-note '…'"
        )
        window = " still believed true at --as-of" if policy.as_of else ""
        raise InputError(
            f"{Path(store_path).name}: no stored registration{window} matches the "
            f"audience ({basis}), or fewer than k={policy.k} do: a release would be about "
            "fewer than k people."
        )
    # The confirmed-within figures are counted first (DuckDB's cache then emptied), so
    # their scan does not sit on top of the release's frames: one creation time for both.
    secret = store_reads.noise_secret(con)
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    confirmations = _confirmation_counts(con, policy, created_at)
    store_reads.release_memory(con)
    release = protect_counts(counts, policy, secret=secret)
    release.metadata["created_at"] = created_at
    release.metadata[BLOCK_KEY] = confirmed_block(confirmations, policy, secret)
    # Only the store version: counts over the whole store (other consents, other
    # nationalities) and ingest file names are not the release's to publish.
    release.metadata["store_version"] = store.store_version(con)
    return release


def _audience(con: Any, policy: ReleasePolicy, as_of: int | None = None) -> Any:
    """Return the store's audience for a policy (consent or basis, freshness), as counts.

    A :class:`geo.io.store_counts.StoreCounts`: the release's counts are pushed down into
    the store, so no record leaves it.
    """
    from geo.freshness import believed_sql
    from geo.io import store_counts

    scope = None if policy.legal_basis == "other" else policy.consent_scope
    return store_counts.StoreCounts(
        con,
        scope,
        policy.nationalities,
        policy.base_resolution,
        as_of=as_of,
        believed=believed_sql(policy),
    )


def _add_confirmed_block(con: Any, release: Release, as_of: int | None = None) -> None:
    """Add the protected ``confirmed_within_months`` block to a release's metadata."""
    from geo.freshness import BLOCK_KEY, confirmed_block
    from geo.io import store_reads

    policy = release.policy.checked()
    counts = _confirmation_counts(con, policy, release.metadata["created_at"], as_of)
    release.metadata[BLOCK_KEY] = confirmed_block(counts, policy, store_reads.noise_secret(con))


def _confirmation_counts(
    con: Any, policy: ReleasePolicy, created_at: str, as_of: int | None = None
) -> Any:
    """Return the counts behind the confirmed-within block of a release made at ``created_at``."""
    from geo.freshness import reference_day
    from geo.io import store_reads

    reference = reference_day(policy, created_at)
    return store_reads.confirmation_counts(con, policy, reference, as_of=as_of)


def publish_release(
    store_path: str | Path,
    policy: ReleasePolicy,
    out_path: str | Path,
    valid_days: int | None = None,
) -> Release:
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
    valid_days
        Days until the release expires (signed ``valid_until``); None for the default,
        :data:`geo.revocations.DEFAULT_VALID_DAYS`.

    Returns
    -------
    Release
        As written, with its ``content_sha256``, ``store_version``, ``valid_until`` and
        ``supersedes`` (the content hash of the latest earlier release of the same
        audience in the ledger, or None).

    Raises
    ------
    InputError
        For a bad policy, a missing store, an empty audience, or a file that cannot be
        written.
    """
    import duckdb

    from geo.io import ledger, store
    from geo.io.store_open import store_error
    from geo.series import refuse_series_conflict

    policy = policy.checked()
    refuse_exact(policy)
    out = Path(out_path)
    if out.is_dir():
        raise InputError(f"{out}: is a folder; give the name of the release file to write.")
    temporary = out.with_name(f".{out.name}.publishing")
    con = store.connect(store_path, create=False)
    try:
        entries = ledger.ledger(con)
        refuse_series_conflict(entries, policy)
        release = _release_from(con, store_path, policy)
        _refuse_disclosing_flows(con, entries, release)
        date_and_link(release, entries, valid_days)
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
            if isinstance(exc, duckdb.Error):  # the ledger could not be written (disk full…)
                raise store_error(Path(store_path), exc) from None
            raise
    finally:
        con.close()
    return release


def date_and_link(release: Release, entries: list[dict], valid_days: int | None) -> None:
    """Sign into the release until when it is valid and which earlier release it replaces."""
    from geo.revocations import DEFAULT_VALID_DAYS, valid_until

    metadata = release.metadata
    days = DEFAULT_VALID_DAYS if valid_days is None else valid_days
    metadata["valid_until"] = valid_until(metadata["created_at"], days)
    audience = release.policy.nationalities
    earlier = [
        e for e in entries if tuple(e["policy"]["nationalities"] or ()) == tuple(audience or ())
    ]
    metadata["supersedes"] = earlier[-1]["content_sha256"] if earlier else None


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


def release_as_of(
    store_path: str | Path,
    policy: ReleasePolicy,
    store_version: int,
    created_at: str | None = None,
) -> Release:
    """Return the release a policy gives on the store as it was at a past store version.

    The same function of the same records as :func:`build_release` then (same keyed
    noise), so for a release in the ledger it reproduces the published table exactly:
    what the ledger audit and the tests check. ``created_at`` (the ledger's) fixes the
    day a release without ``as_of`` counted its confirmed-within figures back from.

    Raises
    ------
    InputError
        For a bad policy, a missing store, or a version the store has not reached.
    """
    from geo.io import store, store_reads
    from geo.release import protect_counts

    policy = policy.checked()
    con = store.connect(store_path, read_only=True)
    try:
        counts = _audience(con, policy, as_of=store_version)
        release = protect_counts(counts, policy, secret=store_reads.noise_secret(con))
        if created_at:
            release.metadata["created_at"] = created_at
        _add_confirmed_block(con, release, as_of=store_version)
        return release
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


def read_release(
    path: str | Path,
    trust: Sequence[str | Path] = (),
    revocations: str | Path | None = None,
) -> Release:
    """Read and check a release file (see :func:`geo.io.release_file.read_release`).

    ``trust`` names files of steward public keys (one per line) the reader trusts;
    ``revocations`` the steward's signed revocation list, whose withdrawals then set
    the release's ``standing`` (:func:`geo.revocations.assess`).

    Raises
    ------
    InputError
        For a missing, altered, forged or invalid release, an unreadable key file, or a
        revocation list that is unsigned, forged or not the steward's.
    """
    from geo.io.release_file import read_release as read
    from geo.io.revocation_file import read_revocations
    from geo.revocations import assess

    keys = trusted_keys(trust)
    listed = read_revocations(revocations, keys) if revocations is not None else None
    release = read(path, keys)
    if listed is not None:
        release.standing = assess(release.metadata, listed)
    return release


def trusted_keys(paths: Sequence[str | Path]) -> list[bytes]:
    """Return the public keys in key files (one ``crisis-exposure-ed25519 …`` line each).

    Raises
    ------
    InputError
        For a missing file or a line that is not a public key.
    """
    from geo.signatures import parse_public_key

    keys = []
    for path in paths:
        path = Path(path)
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise InputError(f"{path}: cannot read the trusted key file ({exc.strerror}).") from exc
        for number, line in enumerate(lines, start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                keys.append(parse_public_key(line, f"{path.name}, line {number}"))
    return keys


def steward_public_key() -> str:
    """Return the steward's public key line (to hand out with releases) and its fingerprint."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from geo.io.steward_key import signing_seed
    from geo.signatures import fingerprint, public_key_text

    public = Ed25519PrivateKey.from_private_bytes(signing_seed()).public_key().public_bytes_raw()
    return f"{public_key_text(public)}\nfingerprint {fingerprint(public)}"


def write_release(release: Release, path: str | Path) -> Path:
    """Write a release file atomically (see :func:`geo.io.release_file.write_release`)."""
    from geo.io.release_file import write_release as write

    return write(release, path)


def _refuse_disclosing_flows(con: Any, entries: list[dict], release: Release) -> None:
    """Refuse a release that, beside the latest earlier release of each audience, shows a flow.

    The ledger audit's flow check (:func:`geo.ledger_audit.flow_findings`) between the new
    release and, per audience, the most recent release made at an earlier store version.
    A method-2 release passes by construction (its values prove only the structure); the
    check guards the method and the code. ``crisis-exposure audit --store`` checks every
    pair of the ledger.

    Raises
    ------
    InputError
        Naming the earlier release and the first flow it would give away.
    """
    from geo.io import ledger, store_reads
    from geo.ledger_audit import LedgerEntry, flow_findings

    version = release.metadata["store_version"]
    latest: dict[tuple, dict] = {}
    for entry in entries:
        if entry["store_version"] < version:
            latest[tuple(entry["policy"]["nationalities"] or ())] = entry
    if not latest:
        return
    new = LedgerEntry("the new release", version, release)
    snapshots = {version: store_reads.registration_records(con, as_of=version)}  # read once
    for entry in latest.values():
        earlier = LedgerEntry(
            f"#{entry['release_id']} {entry['file_name']}",
            entry["store_version"],
            ledger.ledger_release(con, entry["release_id"]),
            entry["release_id"],
        )
        if earlier.store_version not in snapshots:
            snapshots[earlier.store_version] = store_reads.registration_records(
                con, as_of=earlier.store_version
            )
        findings, _, _ = flow_findings([earlier, new], snapshots, store_reads.complete_from(con))
        if findings:
            raise InputError(  # no figure of what it would disclose: that is the secret
                f"this release would give away changes of fewer than k registrations beside "
                f"release {earlier.name}; nothing was written. Publish with the series' "
                "noisy method."
            )


def refuse_exact(policy: ReleasePolicy) -> None:
    """Refuse to publish exact counts (method 1): they show the changes between releases.

    Raises
    ------
    InputError
        For a policy without noise.
    """
    if policy.method != "noise":
        raise InputError(
            "a published release carries keyed noise (method 2): exact counts (noise scale "
            "0, method 1) would show the changes between releases. Use them only to compare."
        )
