"""crisis-exposure: migrants exposed to a hazard footprint, from a protected H3 release.

The public names for library users, loaded lazily: ``import geo`` (or any ``geo.x``)
loads none of duckdb, scipy, geopandas or streamlit until a name that needs them is used.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# polars allocates through its own jemalloc, which keeps freed pages for 10 s by default:
# an ingest's or a release's frames, long freed, then still count in its peak. Returned
# after a quarter second instead: 10M records, ingest peak 882-920 -> 788 MiB for 3-4 %
# more CPU, release 969-1,044 -> 864-898 MiB for none. Read when polars loads, so only
# if geo is imported first; a value set by the user wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:250,muzzy_decay_ms:0")

_PUBLIC = {
    "InputError": "geo.errors",
    "Release": "geo.release",
    "ReleasePolicy": "geo.release",
    "protect": "geo.release",
    "build_release": "geo.pipeline",
    "publish_release": "geo.pipeline",
    "list_releases": "geo.pipeline",
    "release_as_of": "geo.pipeline",
    "ingest_files": "geo.pipeline",
    "read_release": "geo.pipeline",
    "write_release": "geo.pipeline",
    "read_footprints": "geo.pipeline",
    "footprint_classes": "geo.pipeline",
    "compute_exposure": "geo.pipeline",
    "run_exposure": "geo.pipeline",
    "run_outreach": "geo.pipeline",
    "write_export": "geo.pipeline",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'geo' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
