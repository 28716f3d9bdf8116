"""H3 helpers used across the library: cell codes, parents, boundaries, polygons.

Cells are strings in files and unsigned 64-bit integers in memory. Parents are always
``cell_to_parent`` (never a re-binning at the coarser resolution), here in H3's own bit
arithmetic so that numpy arrays and SQL get exactly what ``h3.cell_to_parent`` gives:
the resolution field (bits 52–55) set, every digit finer than it set to 7 (unused).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import polars as pl
import polars_h3
import shapely


def cells_to_ints(cells: Sequence[str]) -> np.ndarray:
    """Return H3 cells (strings) as unsigned 64-bit integers, vectorised."""
    strings = pl.from_pandas(pd.Series(cells)).cast(pl.String)  # no copy for Arrow strings
    return pl.select(polars_h3.str_to_int(strings)).to_series().to_numpy()


def cell_boundaries(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the vertices of cells (integers) as one (n, 2) array of (lon, lat), and counts.

    A cell whose boundary jumps across ±180° is unwrapped to one side, so its planar
    area stays right; zones crossing the antimeridian are split by the footprint reader.
    """
    if len(cells) == 0:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    boundary = pl.select(polars_h3.cell_to_boundary(pl.Series(cells, dtype=pl.UInt64)))
    boundary = boundary.to_series()
    sizes = boundary.list.len().to_numpy().astype(np.int64)
    latlng = boundary.explode().explode().to_numpy().reshape(-1, 2)
    lng, lat = latlng[:, 1], latlng[:, 0]
    starts = np.cumsum(sizes) - sizes
    span = np.maximum.reduceat(lng, starts) - np.minimum.reduceat(lng, starts)
    wraps = np.repeat(span > 180, sizes)
    lng = np.where(wraps & (lng < 0), lng + 360, lng)
    return np.column_stack([lng, lat]), sizes


def cells_to_polygons(cells: Sequence[str]) -> np.ndarray:
    """Return shapely polygons (lon, lat) for H3 cells, unwrapped at the antimeridian."""
    vertices, sizes = cell_boundaries(cells_to_ints(cells))
    if len(sizes) == 0:
        return np.array([], dtype=object)
    rings = shapely.linearrings(vertices, indices=np.repeat(np.arange(len(sizes)), sizes))
    return shapely.polygons(rings)


def cell_resolutions(cells: np.ndarray) -> np.ndarray:
    """Return the resolution of H3 cells (integers), read from bits 52–55 of the index."""
    return ((cells >> np.uint64(52)) & np.uint64(15)).astype(np.int64)


def cells_to_parents(cells: np.ndarray, resolution: int) -> np.ndarray:
    """Return each cell's parent at ``resolution`` (itself if coarser), in H3 bit arithmetic.

    The resolution field (bits 52–55) is set and the digits below it set to 7 (unused).
    """
    level = np.minimum(cell_resolutions(cells), resolution).astype(np.uint64)
    unused = (np.uint64(1) << (np.uint64(3) * (np.uint64(15) - level))) - np.uint64(1)
    cleared = cells & ~(np.uint64(15) << np.uint64(52)) & ~unused
    return cleared | (level << np.uint64(52)) | unused


def parent_sql(column: str, resolution: int) -> str:
    """Return SQL for the H3 parent of an integer cell column (bit operations, no extension).

    The parent has the resolution field set to ``resolution`` and every digit finer
    than it set to 7 (unused), exactly as ``h3.cell_to_parent`` does.
    """
    unused_digits = (1 << (3 * (15 - resolution))) - 1
    return (
        f"(({column} & ~(15::UBIGINT << 52)) | ({resolution}::UBIGINT << 52) "
        f"| {unused_digits}::UBIGINT)"
    )


def storage_to_released(storage: np.ndarray, released: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Match storage-resolution cells to the released cells that hold them.

    A released cell holds a storage cell when it is the storage cell's ancestor at the
    released cell's own resolution (``cell_to_parent``, as records are rolled up).

    Returns
    -------
    tuple of numpy.ndarray
        (index into ``storage``, index into ``released``) for every storage cell that a
        released cell holds.
    """
    order = np.argsort(released)
    entries, cells = [], []
    for resolution in np.unique(cell_resolutions(released)):
        parent = cells_to_parents(storage, int(resolution))
        position = np.minimum(np.searchsorted(released, parent, sorter=order), len(released) - 1)
        found = released[order[position]] == parent
        entries.append(np.flatnonzero(found))
        cells.append(order[position[found]])
    return np.concatenate(entries), np.concatenate(cells)
