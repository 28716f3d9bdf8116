"""Which files and zip members are raster footprints, told without loading GDAL.

By name and first bytes only: the readers (:mod:`.raster`, :mod:`.shakemap_grid`)
load rasterio, about 20 MiB of a process that reads only vector footprints (the
dashboard's server, the CLI on a ShakeMap contour file), so they load when a raster
is read.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

# The raster formats a footprint may be, by suffix; GDAL tries no other driver (no VRT
# pointing at other files). A file without one of these suffixes is read if it is a TIFF.
DRIVERS = {
    ".tif": "GTiff",
    ".tiff": "GTiff",
    ".flt": "EHdr",
    ".bil": "EHdr",
    ".asc": "AAIGrid",
    ".img": "HFA",
}
RASTER_SUFFIXES = tuple(DRIVERS)
TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
SHAKEMAP_GRID_TAG = b"<shakemap_grid"


def is_raster(path: Path, display: str) -> bool:
    """Whether a file is a raster footprint: by its suffix, or a TIFF by its first bytes."""
    if Path(display).suffix.lower() in RASTER_SUFFIXES:
        return True
    with path.open("rb") as fh:
        return fh.read(4) in TIFF_MAGIC


def raster_members(members: list[str]) -> list[str]:
    """Return the raster members of a zip, the MMI one first (ShakeMap ``raster.zip``)."""
    rasters = [m for m in members if PurePosixPath(m).suffix.lower() in RASTER_SUFFIXES]

    def priority(member: str) -> tuple[int, str]:
        stem = PurePosixPath(member).stem.lower()
        return (0 if "mmi" in stem and "std" not in stem else 1, member)

    return sorted(rasters, key=priority)


def is_shakemap_grid(path: Path) -> bool:
    """Whether a file starts like a ShakeMap ``grid.xml``."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<") and (
        SHAKEMAP_GRID_TAG in head
    )


def grid_members(members: list[str]) -> list[str]:
    """Return the members of a zip named like a ShakeMap grid (``grid.xml``)."""
    return [m for m in members if PurePosixPath(m).name.lower().endswith("grid.xml")]
