"""Trust in releases over time: the steward's keys, their rotation, the revocation list.

What the CLI (``key``, ``revoke``, ``inspect``/``exposure --revocations``) and the pages
both call. Releases are read in :mod:`geo.pipeline.releases`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from geo.errors import InputError

if TYPE_CHECKING:
    from geo.release import Release
    from geo.revocations import RevocationList, Standing


def steward_public_keys() -> str:
    """Return the key file to hand out: the current public key, then every retired one.

    Comment lines (``#``) name each key's fingerprint and whether it is current or
    retired; readers (``--trust``) ignore them. Releases signed before a rotation stay
    verifiable because the retired keys stay in the file.
    """
    from geo.io.steward_key import retired_keys_file, signing_seed
    from geo.signatures import fingerprint, public_key_of, public_key_text

    public = public_key_of(signing_seed())
    lines = [f"# current signing key, fingerprint {fingerprint(public)}", public_key_text(public)]
    retired = retired_keys_file()
    if retired.is_file():
        lines += [line for line in retired.read_text().splitlines() if line.strip()]
    return "\n".join(lines) + "\n"


def rotate_signing_key() -> tuple[str, str]:
    """Retire the steward's signing key and make a new one; return (old, new) fingerprints.

    The old public key joins the retired keys (:func:`steward_public_keys` keeps
    handing it out), so every release signed before stays verifiable; the old secret
    is overwritten. To withdraw a stolen key's releases, also list it with
    :func:`withdraw` (``crisis-exposure revoke --key``).

    Raises
    ------
    InputError
        When the key comes from the environment, or the key file cannot be written.
    """
    from geo.io.steward_key import rotate_signing_key as rotate
    from geo.io.steward_key import signing_seed
    from geo.signatures import fingerprint, public_key_of, public_key_text

    old = public_key_of(signing_seed())
    day = datetime.now(UTC).date().isoformat()
    rotate(f"# retired {day}, fingerprint {fingerprint(old)}\n{public_key_text(old)}")
    return fingerprint(old), fingerprint(public_key_of(signing_seed()))


def read_revocations(path: str | Path, trust: Sequence[str | Path] = ()) -> RevocationList:
    """Read and check the steward's revocation list against the trusted key files.

    Raises
    ------
    InputError
        For a list that is missing, unsigned, forged or malformed.
    """
    from geo.io.revocation_file import read_revocations as read
    from geo.pipeline.releases import trusted_keys

    return read(path, trusted_keys(trust))


def release_standing(
    release: Release,
    revocations: RevocationList | None = None,
    others: Iterable[tuple[str, dict]] = (),
) -> Standing:
    """Return a release's standing under a revocation list and the other releases held.

    Raises
    ------
    InputError
        For a list signed by a key that is neither trusted nor the release's signer.
    """
    from geo.revocations import assess

    return assess(release.metadata, revocations, others)


def refuse_revoked(release: Release, allow: bool = False) -> None:
    """Refuse a revoked release for exposure, unless the user said to use it anyway.

    Raises
    ------
    InputError
        For a revoked release when ``allow`` is false.
    """
    standing = release.standing
    if standing is not None and standing.revoked and not allow:
        raise InputError(
            f"{standing.revoked}. Refused; to use it anyway (to compare, knowingly) pass "
            "--allow-revoked."
        )


def refuse_unverified(release: Release, trusted_given: bool, allow: bool = False) -> None:
    """Refuse a release the user's trusted keys do not verify, once they named keys.

    Without ``--trust`` the user has said nothing about whom they trust, and the
    status is only shown; with it, an unverified or unsigned release is refused unless
    ``allow`` (``--allow-unverified``).

    Raises
    ------
    InputError
        For a release not verified by the trusted keys, when keys were given and
        ``allow`` is false.
    """
    verification = release.verification
    status = verification.status if verification is not None else "unsigned"
    if trusted_given and status != "verified" and not allow:
        raise InputError(
            f"the release is {status}: not signed by a key given with --trust. Refused; to "
            "use it anyway pass --allow-unverified."
        )


def withdraw(
    list_path: str | Path,
    releases: Sequence[str | Path] = (),
    keys: Sequence[str] = (),
    reason: str = "",
    superseded_by: str | Path | None = None,
) -> RevocationList:
    """Add releases (files or content hashes) and key fingerprints to the revocation list.

    The list is signed with the steward's current signing key. With ``superseded_by``
    (a newer release file or its content hash), the releases are marked superseded by it
    (readers warn) instead of revoked (readers refuse them for exposure).

    Raises
    ------
    InputError
        For nothing to withdraw, a release file that cannot be read, a target that is
        not a content hash or fingerprint, or an existing list that is not valid.
    """
    from geo.io.revocation_file import withdraw as write
    from geo.io.steward_key import signing_seed
    from geo.revocations import Withdrawal

    if not releases and not keys:
        raise InputError("name a release (file or content hash) or a key (--key) to withdraw.")
    day = datetime.now(UTC).date().isoformat()
    newer = _content_hash(superseded_by) if superseded_by is not None else None
    entries = [Withdrawal(_content_hash(r), day, reason, newer) for r in releases]
    withdrawn_keys = [Withdrawal(k.strip().upper(), day, reason) for k in keys]
    return write(list_path, signing_seed(), entries, withdrawn_keys)


def _content_hash(target: str | Path) -> str:
    """Return a release's content hash: read from its file (its metadata), or given as hex.

    The file's metadata is read, not the whole release checked: a steward withdraws
    what circulates, whatever it holds.
    """
    import json

    import pyarrow.parquet as pq

    from geo.release import METADATA_KEY

    path = Path(target)
    if path.is_file():
        try:
            metadata = json.loads(pq.read_schema(path).metadata[METADATA_KEY])
            return str(metadata["content_sha256"])
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path.name}: not a release file (no content hash).") from exc
    return str(target).strip().lower()
