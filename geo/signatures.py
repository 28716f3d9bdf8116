"""Signed releases: the steward's Ed25519 signature over a release's table and metadata.

A release is what an embassy or a planner trusts without seeing the registry, so its
content hash is not enough (anyone can recompute one). The steward signs the metadata —
which holds the table's content hash, so the signature covers both — and every reader
checks it:

- **forged**: a signature is there and does not match (table or metadata altered);
  the release is refused;
- **verified**: it matches, and the key is one the reader trusts (``--trust``);
- **unverified**: it matches, but the key is not known to the reader: the fingerprint
  (short enough to read over the phone) must be checked out of band;
- **unsigned**: no signature at all (a release made before signing existed).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from geo.errors import InputError

ALGORITHM = "ed25519"
PUBLIC_KEY_PREFIX = "crisis-exposure-ed25519 "


@dataclass(frozen=True)
class Verification:
    """What a reader can say about a release's signature."""

    status: str  # verified, unverified or unsigned (forged releases are refused)
    fingerprint: str | None = None

    def sentence(self) -> str:
        """Return the status in words, with the key's fingerprint."""
        if self.status == "verified":
            return f"signature verified: signed by the trusted steward key {self.fingerprint}"
        if self.status == "unverified":
            return (
                f"signature valid but unverified: signed by key {self.fingerprint}, which is "
                "not a trusted key here; check the fingerprint with the steward out of band"
            )
        return "unsigned: nothing proves who made this release"


def public_key_of(seed: bytes) -> bytes:
    """Return the raw Ed25519 public key of a 32-byte seed."""
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def fingerprint(public_key: bytes) -> str:
    """Return a key's fingerprint: 16 base-32 characters in groups of four."""
    text = base64.b32encode(hashlib.sha256(public_key).digest()).decode()[:16]
    return "-".join(text[i : i + 4] for i in range(0, 16, 4))


def public_key_text(public_key: bytes) -> str:
    """Return the one-line text of a public key, as the steward hands it out."""
    return PUBLIC_KEY_PREFIX + base64.b64encode(public_key).decode()


def parse_public_key(text: str, where: str) -> bytes:
    """Return the raw public key from its one-line text.

    Raises
    ------
    InputError
        If the text is not a crisis-exposure public key.
    """
    text = text.strip()
    if not text.startswith(PUBLIC_KEY_PREFIX):
        raise InputError(f"{where}: not a crisis-exposure public key ({PUBLIC_KEY_PREFIX}…).")
    try:
        raw = base64.b64decode(text.removeprefix(PUBLIC_KEY_PREFIX), validate=True)
    except ValueError as exc:
        raise InputError(f"{where}: the public key is not valid base64.") from exc
    if len(raw) != 32:
        raise InputError(f"{where}: an Ed25519 public key has 32 bytes (got {len(raw)}).")
    return raw


def _signed_bytes(metadata: dict) -> bytes:
    """Return the canonical bytes a signature covers: the metadata without its signature."""
    unsigned = {key: value for key, value in metadata.items() if key != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()


def sign(metadata: dict, seed: bytes) -> dict:
    """Return the signature entry for metadata (which must hold the content hash)."""
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes_raw()
    return {
        "algorithm": ALGORITHM,
        "public_key": base64.b64encode(public).decode(),
        "fingerprint": fingerprint(public),
        "value": base64.b64encode(key.sign(_signed_bytes(metadata))).decode(),
    }


def verify(
    metadata: dict, trusted: list[bytes] | None, where: str, what: str = "release"
) -> Verification:
    """Return the verification of a signed document (a release's metadata, a revocation list).

    Raises
    ------
    InputError
        If the signature does not match the document: it is forged.
    """
    entry = metadata.get("signature")
    if not entry:
        return Verification("unsigned")
    try:
        public = base64.b64decode(entry["public_key"], validate=True)
        value = base64.b64decode(entry["value"], validate=True)
        Ed25519PublicKey.from_public_bytes(public).verify(value, _signed_bytes(metadata))
    except (InvalidSignature, KeyError, TypeError, ValueError) as exc:
        altered = "table or metadata" if what == "release" else "content"
        raise InputError(
            f"{where}: forged: the steward's signature does not match this {what} (its "
            f"{altered} was altered after signing). Do not use it."
        ) from exc
    status = "verified" if trusted and public in trusted else "unverified"
    return Verification(status, fingerprint(public))
