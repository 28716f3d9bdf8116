"""A release's standing: current, expired, superseded or revoked (pure; no file access).

A signature proves who made a release, not that it is still the one to use. Three
things can retire a release, and every reader says so in plain words:

- **expired**: the steward signed a ``valid_until`` date into it and that date has
  passed (a warning: the figures may be out of date, not wrong);
- **superseded**: a newer release of the same audience names it in its signed
  ``supersedes`` field, or the steward's revocation list says so (a warning);
- **revoked**: the steward's signed revocation list withdraws it by content hash, or
  withdraws the key that signed it (readers refuse it for exposure unless told to
  use it anyway).

The revocation list is honoured only when its signature is valid and made by a key
the reader trusts or by the key that signed the release: anyone can sign a list with
a key of their own, and must not be able to withdraw a genuine release with it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from geo.errors import InputError

DEFAULT_VALID_DAYS = 30
REVOCATIONS_FORMAT = "crisis-exposure-revocations/1"
HASH_PATTERN = re.compile(r"[0-9a-f]{64}")
FINGERPRINT_PATTERN = re.compile(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}")
MAX_REASON = 200


@dataclass(frozen=True)
class Withdrawal:
    """One entry of a revocation list: a release (by content hash) or a signing key."""

    target: str  # a release's content_sha256, or a key fingerprint
    date: str  # ISO date the steward withdrew it
    reason: str = ""
    superseded_by: str | None = None  # content hash of the newer release, for supersessions


@dataclass(frozen=True)
class RevocationList:
    """The steward's signed list of withdrawn releases and keys, as a reader checked it."""

    issued_at: str
    releases: tuple[Withdrawal, ...]
    keys: tuple[Withdrawal, ...]
    public_key: bytes  # the key that signed the list
    fingerprint: str
    trusted: bool  # signed by a key the reader trusts


@dataclass(frozen=True)
class Standing:
    """Whether a release is still the one to use, with each reason in plain words."""

    revoked: str | None = None
    superseded: str | None = None
    expired: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def status(self) -> str:
        """Return the worst state: revoked, superseded, expired or current."""
        if self.revoked:
            return "revoked"
        if self.superseded:
            return "superseded"
        return "expired" if self.expired else "current"

    def sentences(self) -> list[str]:
        """Return what a reader must be told, worst first (the notes when all is well)."""
        said = [s for s in (self.revoked, self.superseded, self.expired) if s]
        return said + list(self.notes)


def valid_until(created_at: str, days: int | None) -> str | None:
    """Return the ISO time ``days`` after ``created_at`` (None for no stated end)."""
    if days is None:
        return None
    if days < 1:
        raise InputError("--valid-days must be at least 1 (a release valid for no day).")
    return (_parse_time(created_at, "created_at") + timedelta(days=days)).isoformat(
        timespec="seconds"
    )


def check_fields(metadata: dict, where: str) -> None:
    """Refuse a release whose ``valid_until`` or ``supersedes`` is malformed.

    Raises
    ------
    InputError
        For a ``valid_until`` that is not an ISO time after ``created_at``, or a
        ``supersedes`` that is not a SHA-256 content hash.
    """
    until = metadata.get("valid_until")
    if until is not None:
        end = _parse_time(until, f"{where}: valid_until")
        if end <= _parse_time(metadata["created_at"], f"{where}: created_at"):
            raise InputError(f"{where}: valid_until is not after the release's creation.")
    supersedes = metadata.get("supersedes")
    if supersedes is not None and not HASH_PATTERN.fullmatch(str(supersedes)):
        raise InputError(f"{where}: supersedes is not a release's content hash (SHA-256).")


def assess(
    metadata: dict,
    revocations: RevocationList | None = None,
    newer: Iterable[tuple[str, dict]] = (),
    now: datetime | None = None,
) -> Standing:
    """Return a release's standing from its metadata, a revocation list and newer releases.

    Parameters
    ----------
    metadata
        The release's (signed) metadata.
    revocations
        The steward's revocation list, already checked (:mod:`geo.io.revocation_file`).
    newer
        Other releases the reader holds, as (name, metadata): one whose ``supersedes``
        is this release's content hash supersedes it.
    now
        The time to judge expiry at (default: now, UTC).

    Raises
    ------
    InputError
        For a revocation list signed by a key that neither the reader trusts nor signed
        the release.
    """
    digest = metadata.get("content_sha256", "")
    now = now or datetime.now(UTC)
    revoked = superseded = expired = None
    notes: list[str] = []
    if revocations is not None:
        _refuse_foreign_list(revocations, metadata)
        revoked, superseded = _listed(revocations, metadata, digest)
        if revoked is None and superseded is None:
            notes.append(
                f"not withdrawn by the steward's revocation list of {revocations.issued_at} "
                f"(signed by {revocations.fingerprint})"
            )
    if superseded is None:
        for name, other in newer:
            if other.get("supersedes") == digest and other.get("content_sha256") != digest:
                superseded = (
                    f"superseded: the newer release {name} (created {other['created_at']}) "
                    "replaces it; use that one"
                )
                break
    until = metadata.get("valid_until")
    if until is None:
        notes.append("no end of validity stated (a release made before releases expired)")
    elif _parse_time(until, "valid_until") < now:
        expired = (
            f"expired: valid until {until}; its figures may be out of date, ask the steward "
            "for a current release"
        )
    else:
        notes.append(f"valid until {until}")
    return Standing(revoked, superseded, expired, tuple(notes))


def _listed(
    revocations: RevocationList, metadata: dict, digest: str
) -> tuple[str | None, str | None]:
    """Return the revoked and superseded sentences the list gives for this release."""
    for entry in revocations.releases:
        if entry.target != digest:
            continue
        because = f" ({entry.reason})" if entry.reason else ""
        if entry.superseded_by:
            return None, (
                f"superseded: the steward's revocation list says release "
                f"{entry.superseded_by[:12]}… replaces it since {entry.date}{because}"
            )
        return (
            f"REVOKED: the steward withdrew this release on {entry.date}{because}; do not "
            "use its figures",
            None,
        )
    signer = (metadata.get("signature") or {}).get("fingerprint")
    for entry in revocations.keys:
        if signer is not None and entry.target == signer:
            because = f" ({entry.reason})" if entry.reason else ""
            return (
                f"REVOKED: the key that signed it ({signer}) was withdrawn on {entry.date}"
                f"{because}; do not use its figures",
                None,
            )
    return None, None


def _refuse_foreign_list(revocations: RevocationList, metadata: dict) -> None:
    """Refuse a list signed by a key that is neither trusted nor the release's signer."""
    if revocations.trusted:
        return
    signer = (metadata.get("signature") or {}).get("public_key")
    if signer and base64.b64decode(signer) == revocations.public_key:
        return
    raise InputError(
        f"the revocation list is signed by key {revocations.fingerprint}, which neither "
        "signed this release nor is a trusted key (--trust): it is not the steward's list."
    )


def _parse_time(text: str, what: str) -> datetime:
    """Return an ISO time as an aware UTC datetime (a date alone is midnight UTC)."""
    try:
        parsed = datetime.fromisoformat(str(text))
    except ValueError as exc:
        raise InputError(f"{what}: not an ISO date or time ({str(text)[:40]!r}).") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
