"""The steward's secret key, kept outside any store: one registry, one set of record keys.

Record keys (the keyed hash of source and record_id) and the releases' keyed noise are
derived from this key, not from a random salt per store. The same registry ingested
into a new store (a rebuild, a dashboard session) therefore gets the same record keys
and the same noise: making a new store gives an attacker no fresh noise to average.

The key comes from ``CRISIS_EXPOSURE_STEWARD_KEY`` (hex, at least 32 characters) or from
the key file named by ``CRISIS_EXPOSURE_KEY_FILE`` (default
``~/.config/crisis-exposure/steward.key``), which is created readable by its owner only
on first use. Back it up with the stores: without it, new stores of the same registry
get other keys.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from geo.errors import InputError

DEFAULT_KEY_FILE = Path.home() / ".config" / "crisis-exposure" / "steward.key"


def steward_key() -> bytes:
    """Return the steward's key (from the environment, or the key file, created if absent).

    Raises
    ------
    InputError
        For a key in the environment that is not hex of at least 32 characters, or a
        key file that cannot be read or created.
    """
    text = os.environ.get("CRISIS_EXPOSURE_STEWARD_KEY", "").strip()
    if text:
        try:
            key = bytes.fromhex(text)
        except ValueError as exc:
            raise InputError("CRISIS_EXPOSURE_STEWARD_KEY must be hexadecimal.") from exc
        if len(key) < 16:
            raise InputError("CRISIS_EXPOSURE_STEWARD_KEY must hold at least 16 bytes (32 hex).")
        return key
    path = Path(os.environ.get("CRISIS_EXPOSURE_KEY_FILE", DEFAULT_KEY_FILE))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(secrets.token_hex(32))
    except FileExistsError:
        pass
    except OSError as exc:
        raise InputError(f"{path}: cannot create the steward key file ({exc.strerror}).") from exc
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable steward key file.") from exc
    if len(key) < 16:
        raise InputError(f"{path}: the steward key is too short (at least 32 hex characters).")
    return key


def derived(purpose: str, key: bytes | None = None) -> bytes:
    """Return a 32-byte secret for one purpose (record keys, noise), derived by HMAC-SHA256."""
    return hmac.new(key or steward_key(), purpose.encode(), hashlib.sha256).digest()
