"""Check a zip (KMZ, zipped footprint, XLSX workbook) before any other library opens it.

The sizes the zip declares are checked first; then every member is inflated once as a
stream and counted, one chunk at a time, so a member whose header lies about its size
is caught too (Python stops at the declared size and the CRC then fails). GDAL's
``/vsizip`` and openpyxl only ever see a file that passed. Member names that climb out
of the archive (``../``, absolute paths) are refused as well.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from geo.errors import InputError, library_reason
from geo.io.limits import RATIO_FLOOR_BYTES, check_count, limit, limit_bytes, refusal

CHUNK_BYTES = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class TokenCount:
    """Count a byte token in one member while inflating it, refused over a limit."""

    member: str
    token: bytes
    limit_name: str
    noun: str


@dataclass
class ZipSummary:
    """What a checked zip holds: its file members and what they inflate to."""

    members: list[str]
    expanded_bytes: int
    counts: dict[str, int] = field(default_factory=dict)


def check_zip(path: str | Path, display: str, tokens: tuple[TokenCount, ...] = ()) -> ZipSummary:
    """Check a zip's declared and actual sizes against the limits, streaming every member.

    Parameters
    ----------
    path
        The zip file.
    display
        The file's name as the user knows it (for messages).
    tokens
        Byte tokens to count while inflating (e.g. shared strings of a workbook).

    Returns
    -------
    ZipSummary

    Raises
    ------
    InputError
        A :class:`geo.io.limits.LimitError` when a member's compression ratio, the total
        inflated size, the number of members or a counted token is over its limit; an
        InputError for a damaged or encrypted zip or an unsafe member name.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            check_count("ZIP_MEMBERS", display, len(infos), "files")
            files = [info for info in infos if not info.is_dir()]
            for info in files:
                _check_name(info.filename, display)
            _check_declared(files, display)
            total, counts = 0, {}
            for info in files:
                wanted = [t for t in tokens if t.member == info.filename]
                size, found = _inflate(archive, info, display, total, wanted)
                total += size
                counts.update(found)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise InputError(
            f"{display}: damaged zip file ({library_reason(exc)}); supply it again."
        ) from None
    except (NotImplementedError, RuntimeError) as exc:
        raise InputError(
            f"{display}: a zip member is encrypted or uses an unsupported compression "
            f"({library_reason(exc)}); zip it again without a password, with deflate."
        ) from None
    members = [info.filename for info in files]
    return ZipSummary(members=members, expanded_bytes=total, counts=counts)


def _check_name(name: str, display: str) -> None:
    """Refuse member names that are absolute or climb out of the archive."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or ".." in parts or "\x00" in name or _DRIVE.match(name):
        raise InputError(
            f"{display}: the zip holds a member with an unsafe name (absolute or with '..'); "
            "zip the files again from their own folder."
        )


def _check_declared(files: list[zipfile.ZipInfo], display: str) -> None:
    """Refuse on the sizes the zip declares, before inflating anything."""
    ratio = limit("ZIP_RATIO")
    for info in files:
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > ratio * max(
            info.compress_size, 1
        ):
            raise refusal("ZIP_RATIO", display, _ratio_found(info, info.file_size))
    declared = sum(info.file_size for info in files)
    if declared > limit_bytes("EXPANDED_MB"):
        raise refusal("EXPANDED_MB", display, f"its members inflate to {_mb(declared)}")


def _inflate(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    display: str,
    before: int,
    tokens: list[TokenCount],
) -> tuple[int, dict[str, int]]:
    """Inflate one member chunk by chunk, counting bytes (and tokens) against the limits."""
    ratio, most = limit("ZIP_RATIO"), limit_bytes("EXPANDED_MB")
    counts = dict.fromkeys(tokens, 0)
    tails = dict.fromkeys(tokens, b"")
    size = 0
    with archive.open(info) as stream:
        while chunk := stream.read(CHUNK_BYTES):
            size += len(chunk)
            if before + size > most:
                raise refusal("EXPANDED_MB", display, f"its members inflate to over {_mb(most)}")
            if size > RATIO_FLOOR_BYTES and size > ratio * max(info.compress_size, 1):
                raise refusal("ZIP_RATIO", display, _ratio_found(info, size))
            for token in tokens:
                counts[token] += (tails[token] + chunk).count(token.token)
                tails[token] = chunk[len(chunk) - len(token.token) + 1 :]
                check_count(token.limit_name, display, counts[token], token.noun)
    return size, {token.noun: n for token, n in counts.items()}


def _ratio_found(info: zipfile.ZipInfo, size: int) -> str:
    times = size / max(info.compress_size, 1)
    return f"the member {info.filename!r} inflates {times:,.0f} times ({_mb(size)})"


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB"
