"""How much any reader takes from one file: sizes, ratios and counts, each overridable.

A hostile or broken file (a zip bomb, a sheet padded with gigabytes of whitespace, a
million contour vertices) must end in a one-line refusal, not in a machine out of
memory. Every limit lives here with a default that fits real products (ShakeMap and
Copernicus EMS deliveries, GADM boundaries, a national ACLED export, a registry of
tens of millions of rows) and can be raised with an environment variable
``CRISIS_EXPOSURE_MAX_<NAME>``; a refusal names the limit, the file and that variable.

The dashboard's upload limit (``server.maxUploadSize`` in ``.streamlit/config.toml``,
100 MB) sits below these: an upload that inflates beyond them is refused here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from geo.errors import InputError

ENV_PREFIX = "CRISIS_EXPOSURE_MAX_"


@dataclass(frozen=True)
class Limit:
    """One limit: its environment name, default and what it bounds (with its unit)."""

    name: str
    default: int
    what: str


LIMITS = {
    limit.name: limit
    for limit in (
        Limit("EXPANDED_MB", 1024, "MB inflated from one zip, KMZ or XLSX file"),
        Limit("ZIP_RATIO", 100, "times compression of one zip member"),
        Limit("ZIP_MEMBERS", 10_000, "files in one zip"),
        Limit("VECTOR_MB", 1024, "MB for one footprint or boundary file"),
        Limit("FEATURES", 1_000_000, "features in one footprint or boundary file"),
        Limit("VERTICES", 20_000_000, "vertices in one footprint or boundary file"),
        Limit("EVENTS", 5_000_000, "rows in one ACLED export"),
        Limit("ROWS", 100_000_000, "rows in one registration file"),
        Limit("COLUMNS", 1_000, "columns in one registration file"),
        Limit("SHARED_STRINGS", 5_000_000, "shared strings in one XLSX workbook"),
    )
}

# A member smaller than this is never refused for its ratio (tiny files compress well).
RATIO_FLOOR_BYTES = 1 << 20


class LimitError(InputError):
    """A file over one of the reader limits; the message says how to raise it."""


def limit(name: str) -> int:
    """Return the current value of a limit: its environment variable, else the default.

    Raises
    ------
    InputError
        If the environment variable is set but is not a positive whole number.
    """
    spec = LIMITS[name]
    raw = os.environ.get(ENV_PREFIX + name, "").strip().replace("_", "")
    if not raw:
        return spec.default
    if not raw.isdigit() or int(raw) <= 0:
        raise InputError(
            f"{ENV_PREFIX}{name}={os.environ[ENV_PREFIX + name]!r} is not a positive whole "
            f"number ({spec.what}; default {spec.default:,})."
        )
    return int(raw)


def limit_bytes(name: str) -> int:
    """Return a limit given in MB as a number of bytes."""
    return limit(name) * 1024 * 1024


def refusal(name: str, display: str, found: str) -> LimitError:
    """Return the one-line error for a file over a limit.

    Parameters
    ----------
    name
        The limit's name (a key of :data:`LIMITS`).
    display
        The file as the user knows it.
    found
        What was found, e.g. ``"the member doc.kml inflates to 4,096 MB"``.
    """
    spec = LIMITS[name]
    return LimitError(
        f"{display}: {found}, over the limit of {limit(name):,} {spec.what}; "
        f"if the file is genuine, raise it with the environment variable {ENV_PREFIX}{name}."
    )


def check_count(name: str, display: str, count: int, noun: str) -> None:
    """Raise the refusal of ``name`` when ``count`` is over the limit.

    Raises
    ------
    LimitError
        If ``count`` exceeds the limit.
    """
    if count > limit(name):
        raise refusal(name, display, f"it has {count:,} {noun}")
