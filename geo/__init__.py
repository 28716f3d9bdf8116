"""crisis-exposure: migrants exposed to a hazard footprint, from a protected H3 release.

The public names for library users; the modules hold the rest.
"""

from geo.errors import InputError
from geo.release import Release, ReleasePolicy, build_release, protect, read_release, write_release
from geo.store import ingest_files

__all__ = [
    "InputError",
    "Release",
    "ReleasePolicy",
    "build_release",
    "ingest_files",
    "protect",
    "read_release",
    "write_release",
]
