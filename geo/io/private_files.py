"""Write files that hold personal data, readable by their owner only, and their run logs.

A contact list is created with mode 0600 from its first byte (``mkstemp`` under a
temporary name beside the target, then renamed into place): it is never readable by
others, not even while it is written, whatever the umask, and a failed run leaves no
half-written list. The run log beside it is appended one JSON line per run.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from geo.errors import InputError

PRIVATE_MODE = 0o600


def check_private_target(path: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """Return ``path`` once it is a place a private file can be written.

    Raises
    ------
    InputError
        If its folder does not exist, it is a folder, or it is one of ``inputs`` (an
        outreach must never overwrite the owner's raw file or the footprint).
    """
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{target}: is a folder; give a file name for the output (.csv).")
    if not target.parent.is_dir():
        raise InputError(f"{target}: the folder {target.parent} does not exist; create it first.")
    resolved = target.resolve()
    if any(Path(other).resolve() == resolved for other in inputs):
        raise InputError(f"{target}: is one of the input files; choose another output name.")
    return target


def write_private_csv(path: str | Path, frames: Iterable[pl.DataFrame]) -> int:
    """Write frames (same columns) as one UTF-8 CSV readable by its owner only.

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    InputError
        If the file cannot be written (the target is then left as it was).
    """
    target = Path(path)
    written, header = 0, True
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise InputError(f"{target}: cannot create the file ({exc.strerror}).") from exc
    try:
        with os.fdopen(handle, "wb") as out:
            for frame in frames:
                frame.write_csv(out, include_header=header)
                header, written = False, written + frame.height
        os.replace(temporary, target)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise InputError(f"{target}: cannot write the file ({exc.strerror}).") from exc
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return written


def append_log(path: str | Path, entry: dict) -> None:
    """Append one JSON line to a run log (created readable by its owner only).

    Raises
    ------
    InputError
        If the log cannot be written.
    """
    target = Path(path)
    line = json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n"
    try:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        with os.fdopen(os.open(target, flags, PRIVATE_MODE), "a", encoding="utf-8") as out:
            out.write(line)
    except OSError as exc:
        raise InputError(f"{target}: cannot write the outreach log ({exc.strerror}).") from exc
