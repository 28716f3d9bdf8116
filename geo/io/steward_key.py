"""The steward's secret key, kept outside any store: one registry, one set of record keys.

Record keys (the keyed hash of source and record_id) and the releases' keyed noise are
derived from this key, not from a random salt per store. The same registry ingested
into a new store (a rebuild, a dashboard session) therefore gets the same record keys
and the same noise: making a new store gives an attacker no fresh noise to average.

The key comes from ``CRISIS_EXPOSURE_STEWARD_KEY`` (hex, at least 32 characters) or from
the key file named by ``CRISIS_EXPOSURE_KEY_FILE`` (default
``~/.config/crisis-exposure/steward.key``), which is created readable by its owner only
on first use. Back it up with the stores: without it, new stores of the same registry
get other keys. The record keys' HMAC secret and the noise secret are derived from it
(:func:`derived`), one purpose each; a store refuses records keyed with another steward
key. The key that encrypts a store at rest (:func:`store_key`) is a separate secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from geo.errors import InputError

DEFAULT_KEY_FILE = Path.home() / ".config" / "crisis-exposure" / "steward.key"
DEFAULT_SIGNING_FILE = DEFAULT_KEY_FILE.with_name("signing.key")


def steward_key() -> bytes:
    """Return the steward's key (from the environment, or the key file, created if absent).

    Raises
    ------
    InputError
        For a key in the environment that is not hex of at least 32 characters, or a
        key file that cannot be read or created.
    """
    return _secret("CRISIS_EXPOSURE_STEWARD_KEY", "CRISIS_EXPOSURE_KEY_FILE", DEFAULT_KEY_FILE)


def signing_seed() -> bytes:
    """Return the 32-byte seed of the steward's Ed25519 signing key.

    From ``CRISIS_EXPOSURE_SIGNING_KEY`` (hex) or the key file named by
    ``CRISIS_EXPOSURE_SIGNING_KEY_FILE`` (default ``~/.config/crisis-exposure/
    signing.key``, created readable by its owner only). Apart from the steward key, so
    that either can be rotated alone; never inside a store, so a copied store cannot
    sign releases.

    Raises
    ------
    InputError
        For a key that is not 32 bytes of hex, or a key file that cannot be read.
    """
    seed = _secret(
        "CRISIS_EXPOSURE_SIGNING_KEY", "CRISIS_EXPOSURE_SIGNING_KEY_FILE", DEFAULT_SIGNING_FILE
    )
    return hashlib.sha256(seed).digest() if len(seed) != 32 else seed


def store_key() -> str | None:
    """Return the key that encrypts the store file at rest (hex), or None when none is set.

    From ``CRISIS_EXPOSURE_STORE_KEY`` (hex) or the key file named by
    ``CRISIS_EXPOSURE_STORE_KEY_FILE`` (created readable by its owner only when it does
    not exist yet: setting the variable turns encryption on for new stores). A key of
    its own, not derived from the steward key: the store and its key are backed up by
    different routes, the store key can be rotated (copy the store into a new one) while
    record keys and noise never change, and a missing key is told apart from a wrong one.

    Raises
    ------
    InputError
        For a key that is not hex of at least 32 characters, or an unreadable key file.
    """
    if not (
        os.environ.get("CRISIS_EXPOSURE_STORE_KEY", "").strip()
        or os.environ.get("CRISIS_EXPOSURE_STORE_KEY_FILE", "").strip()
    ):
        return None
    file_name = os.environ.get("CRISIS_EXPOSURE_STORE_KEY_FILE", "").strip()
    return _secret(
        "CRISIS_EXPOSURE_STORE_KEY", "CRISIS_EXPOSURE_STORE_KEY_FILE", Path(file_name)
    ).hex()


def _secret(variable: str, file_variable: str, default: Path) -> bytes:
    """Return a secret from an environment variable (hex) or a key file (created if absent)."""
    text = os.environ.get(variable, "").strip()
    if text:
        try:
            key = bytes.fromhex(text)
        except ValueError as exc:
            raise InputError(f"{variable} must be hexadecimal.") from exc
        if len(key) < 16:
            raise InputError(f"{variable} must hold at least 16 bytes (32 hex).")
        return key
    path = Path(os.environ.get(file_variable, default))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(secrets.token_hex(32))
    except FileExistsError:
        pass
    except OSError as exc:
        raise InputError(f"{path}: cannot create the key file ({exc.strerror}).") from exc
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable key file.") from exc
    if len(key) < 16:
        raise InputError(f"{path}: the key is too short (at least 32 hex characters).")
    return key


def derived(purpose: str, key: bytes | None = None) -> bytes:
    """Return a 32-byte secret for one purpose (record keys, noise), derived by HMAC-SHA256."""
    return hmac.new(key or steward_key(), purpose.encode(), hashlib.sha256).digest()


def signing_key_file() -> Path:
    """Return the signing key file (``CRISIS_EXPOSURE_SIGNING_KEY_FILE`` or the default)."""
    return Path(os.environ.get("CRISIS_EXPOSURE_SIGNING_KEY_FILE", DEFAULT_SIGNING_FILE))


def retired_keys_file() -> Path:
    """Return the file of the steward's retired public keys, beside the signing key file."""
    path = signing_key_file()
    return path.with_name(f"{path.stem}.retired.pub")


def rotate_signing_key(retired_line: str) -> None:
    """Replace the signing key file by a new key; append ``retired_line`` to the retired keys.

    ``retired_line`` is the old public key's text (with its comment lines): releases
    signed before the rotation stay verifiable with it. The old secret is overwritten
    (never kept): a retired key signs nothing more. The new file is written under a
    temporary name, readable by its owner only, then renamed into place.

    Raises
    ------
    InputError
        When the key comes from ``CRISIS_EXPOSURE_SIGNING_KEY`` (set a new one there), or
        a file cannot be written.
    """
    if os.environ.get("CRISIS_EXPOSURE_SIGNING_KEY", "").strip():
        raise InputError(
            "the signing key comes from CRISIS_EXPOSURE_SIGNING_KEY: put a new key there "
            "(64 hex characters) and keep handing out the old public key with the new one."
        )
    path = signing_key_file()
    temporary = path.with_name(f".{path.name}.new")
    try:
        with open(retired_keys_file(), "a", encoding="utf-8") as retired:
            retired.write(retired_line.rstrip("\n") + "\n")
        temporary.unlink(missing_ok=True)
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(secrets.token_hex(32))
        os.replace(temporary, path)
    except OSError as exc:
        raise InputError(f"{path}: cannot rotate the signing key ({exc.strerror}).") from exc
