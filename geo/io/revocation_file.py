"""The steward's revocation list: a small JSON file, signed like a release, read by every reader.

Layout::

    {"format": "crisis-exposure-revocations/1", "issued_at": "2026-05-01T09:00:00+00:00",
     "releases": [{"target": CONTENT_SHA256, "date": "2026-05-01", "reason": "...",
                   "superseded_by": null}],
     "keys": [{"target": "ABCD-EFGH-IJKL-MNOP", "date": "2026-05-01", "reason": "..."}],
     "signature": {...}}

The signature (:func:`geo.signatures.sign`) covers everything but itself. A list that
is unsigned, forged or malformed is refused: a reader that was told to honour a list
and cannot must not carry on as if nothing were withdrawn.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from geo.errors import InputError
from geo.revocations import (
    FINGERPRINT_PATTERN,
    HASH_PATTERN,
    MAX_REASON,
    REVOCATIONS_FORMAT,
    RevocationList,
    Withdrawal,
)
from geo.signatures import fingerprint, sign, verify

MAX_LIST_BYTES = 4 * 1024 * 1024  # tens of thousands of entries; a list is small


def read_revocations(path: str | Path, trusted: list[bytes] | None = None) -> RevocationList:
    """Read and check a revocation list (signature, layout, every entry).

    Returns
    -------
    RevocationList
        With the key that signed it and whether the reader trusts that key.

    Raises
    ------
    InputError
        For a missing, oversized, unsigned, forged or malformed list.
    """
    path = Path(path)
    document = _load(path)
    if not document.get("signature"):
        raise InputError(
            f"{path.name}: the revocation list is unsigned: nothing proves the steward made "
            "it. Refused."
        )
    verification = verify(document, trusted, path.name, what="revocation list")
    public = base64.b64decode(document["signature"]["public_key"])
    return RevocationList(
        issued_at=str(document["issued_at"]),
        releases=_entries(document.get("releases", []), path.name, HASH_PATTERN, "release"),
        keys=_entries(document.get("keys", []), path.name, FINGERPRINT_PATTERN, "key"),
        public_key=public,
        fingerprint=fingerprint(public),
        trusted=verification.status == "verified",
    )


def withdraw(
    path: str | Path,
    seed: bytes,
    releases: list[Withdrawal] = (),
    keys: list[Withdrawal] = (),
) -> RevocationList:
    """Add withdrawals to the list at ``path`` (created if absent), re-sign and write it.

    An existing list must carry a valid signature (by any key: after a key rotation the
    new key signs the list the old one signed). An entry already listed is replaced.
    Written atomically.

    Returns
    -------
    RevocationList
        The list as written.

    Raises
    ------
    InputError
        For an existing list that is unsigned, forged or malformed, or an entry that is
        not a content hash or key fingerprint.
    """
    path = Path(path)
    old_releases: tuple[Withdrawal, ...] = ()
    old_keys: tuple[Withdrawal, ...] = ()
    if path.exists():
        current = read_revocations(path)
        old_releases, old_keys = current.releases, current.keys
    merged = {}
    for kind, old, new, pattern in (
        ("releases", old_releases, releases, HASH_PATTERN),
        ("keys", old_keys, keys, FINGERPRINT_PATTERN),
    ):
        by_target = {entry.target: entry for entry in old}
        for entry in _entries([asdict(e) for e in new], "the new entry", pattern, kind[:-1]):
            by_target[entry.target] = entry
        merged[kind] = [asdict(entry) for entry in sorted(by_target.values(), key=_order)]
    document = {
        "format": REVOCATIONS_FORMAT,
        "issued_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **merged,
    }
    document["signature"] = sign(document, seed)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(document, indent=1) + "\n")
        os.replace(temporary, path)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the revocation list ({exc.strerror}).") from exc
    return read_revocations(path)


def _order(entry: Withdrawal) -> tuple[str, str]:
    return entry.date, entry.target


def _load(path: Path) -> dict:
    """Return the list's JSON object, refusing a missing, huge or non-JSON file."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read the revocation list ({exc.strerror}).") from exc
    if size > MAX_LIST_BYTES:
        raise InputError(
            f"{path.name}: {size:,} bytes is too large for a revocation list "
            f"(at most {MAX_LIST_BYTES:,})."
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path.name}: not a revocation list (not JSON).") from exc
    if not isinstance(document, dict) or document.get("format") != REVOCATIONS_FORMAT:
        raise InputError(f"{path.name}: not a revocation list (format {REVOCATIONS_FORMAT}).")
    if not isinstance(document.get("issued_at"), str):
        raise InputError(f"{path.name}: the revocation list has no issue date.")
    return document


def _entries(raw: object, where: str, pattern, kind: str) -> tuple[Withdrawal, ...]:
    """Return checked withdrawals: a well-formed target, an ISO date, a short reason."""
    if not isinstance(raw, list):
        raise InputError(f"{where}: the list of withdrawn {kind}s is not a list.")
    entries = []
    for number, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise InputError(f"{where}: withdrawn {kind} {number} is not an object.")
        target, date = str(item.get("target", "")), str(item.get("date", ""))
        reason = " ".join(str(item.get("reason") or "").split())
        superseded_by = item.get("superseded_by")
        if not pattern.fullmatch(target):
            what = "a content hash (64 hex)" if kind == "release" else "a key fingerprint"
            raise InputError(f"{where}: withdrawn {kind} {number}: {target[:70]!r} is not {what}.")
        try:
            datetime.fromisoformat(date)
        except ValueError as exc:
            raise InputError(
                f"{where}: withdrawn {kind} {number}: bad date {date[:30]!r}."
            ) from exc
        if len(reason) > MAX_REASON:
            raise InputError(
                f"{where}: withdrawn {kind} {number}: reason over {MAX_REASON} characters."
            )
        if superseded_by is not None and not HASH_PATTERN.fullmatch(str(superseded_by)):
            raise InputError(f"{where}: withdrawn {kind} {number}: superseded_by is not a hash.")
        entries.append(Withdrawal(target, date, reason, superseded_by))
    return tuple(entries)
