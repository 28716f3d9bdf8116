"""Population-grid shares: how much of a released cell's population lies inside a zone.

The population weighting splits each released cell's count by a population grid the
user supplies (:mod:`geo.io.population`): share = population of the cell's part inside
the zone / population of the whole cell. A grid entry belongs to the released cell that
would hold a record there: its resolution-8 cell rolled up with ``cell_to_parent``, as
the release does. A raster pixel counts where its centre is; an H3 table's resolution-8
cell is spread evenly over its resolution-10 children's centres (49 points about 70 m
apart), so that a footprint a few hundred metres wide still cuts it in proportion.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import polars as pl
import polars_h3
import shapely

from geo import h3cells
from geo.tools.cell_pairs import STORAGE_RESOLUTION, cell_reach, cell_zone_shares

SPREAD_RESOLUTION = 10  # an H3 table's cell is spread over its children at this resolution
_INSIDE_SHARE = 1 - 1e-9


def population_bounds(
    cells: Sequence[str], classes: gpd.GeoDataFrame
) -> tuple[float, float, float, float] | None:
    """Return the (lon, lat) bounds of every released cell touching the classes, or None.

    The window to read a population grid in: the whole of each touched cell (its
    storage-level children included), not only the footprint, since a share's
    denominator is the population of the whole cell.
    """
    zones = classes[["geometry"]].reset_index(drop=True)
    touched = cell_zone_shares(sorted(set(cells)), zones)["h3_cell"].unique()
    if len(touched) == 0:
        return None
    _, box = cell_reach(h3cells.cells_to_ints(list(touched)))
    return (
        float(box[:, 0].min()),
        float(box[:, 1].min()),
        float(box[:, 2].max()),
        float(box[:, 3].max()),
    )


def _entries(population: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return each grid entry's resolution-8 cell and population."""
    weight = population["population"].to_numpy(dtype=float)
    if "h3" in population.columns:
        return population["h3"].to_numpy().astype(np.uint64), weight
    located = pl.select(
        polars_h3.latlng_to_cell(
            pl.Series(population["lat"].to_numpy()),
            pl.Series(population["lon"].to_numpy()),
            STORAGE_RESOLUTION,
        )
    )
    return located.to_series().to_numpy().astype(np.uint64), weight


def _points(population: pd.DataFrame, entry: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return (position in ``entry``, lon, lat, population) of the points standing for entries."""
    weight = population["population"].to_numpy(dtype=float)[entry]
    if "h3" not in population.columns:
        lon, lat = population["lon"].to_numpy()[entry], population["lat"].to_numpy()[entry]
        return np.arange(len(entry)), lon, lat, weight
    children = pl.select(
        polars_h3.cell_to_children(
            pl.Series(population["h3"].to_numpy()[entry], dtype=pl.UInt64), SPREAD_RESOLUTION
        )
    ).to_series()
    counts = children.list.len().to_numpy().astype(np.int64)
    centres = pl.select(polars_h3.cell_to_latlng(children.explode()))
    lat, lon = centres.to_series().explode().to_numpy().reshape(-1, 2).T
    return (
        np.repeat(np.arange(len(entry)), counts),
        lon,
        lat,
        np.repeat(weight / np.maximum(counts, 1), counts),
    )


def population_shares(
    pairs: pd.DataFrame, zones: gpd.GeoDataFrame, population: pd.DataFrame
) -> pd.Series:
    """Return, per (cell, zone) pair, the share of the cell's grid population inside the zone.

    Parameters
    ----------
    pairs
        Columns h3_cell, zone (a label of ``zones``' index) and area_share; a pair with
        area share 1 is a cell wholly inside (share 1).
    zones
        The zone polygons in EPSG:4326.
    population
        :func:`geo.io.population.read_population`: ``lon``, ``lat``, ``population``
        (raster pixels) or ``h3``, ``population`` (resolution-8 cells).

    Returns
    -------
    pandas.Series
        Shares in [0, 1], NaN where the grid puts nobody in the cell (the caller falls
        back to the area share).
    """
    nothing = pd.Series(np.nan, index=pairs.index)
    if pairs.empty or population.empty:
        return nothing
    cell_of_pair, cells = pd.factorize(pairs["h3_cell"])
    ints = h3cells.cells_to_ints(cells)
    storage, weight = _entries(population)
    entry, cell = h3cells.storage_to_released(storage, ints)
    cell_population = np.bincount(cell, weight[entry], minlength=len(cells))
    zone_of_pair = zones.index.get_indexer(pairs["zone"])
    partial = np.flatnonzero(pairs["area_share"].to_numpy() < _INSIDE_SHARE)
    inside = np.zeros(len(pairs))
    if len(partial):
        cut = np.flatnonzero(np.isin(cell, np.unique(cell_of_pair[partial])))
        origin, lon, lat, point_weight = _points(population, entry[cut])
        points = pd.DataFrame({"cell": cell[cut][origin], "point": np.arange(len(origin))})
        expanded = points.merge(
            pd.DataFrame({"cell": cell_of_pair[partial], "pair": partial}), on="cell"
        )
        point, pair = expanded["point"].to_numpy(), expanded["pair"].to_numpy()
        geometries = np.asarray(zones.geometry.values, dtype=object)
        shapely.prepare(geometries)
        held = shapely.contains_xy(geometries[zone_of_pair[pair]], lon[point], lat[point])
        inside = np.bincount(pair, point_weight[point] * held, minlength=len(pairs))
    total = cell_population[cell_of_pair]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(np.isin(np.arange(len(pairs)), partial), inside / total, 1.0)
    return pd.Series(np.where(total > 0, share.clip(0.0, 1.0), np.nan), index=pairs.index)


def grid_coverage_note(cut_cell: np.ndarray, grid_share: np.ndarray) -> list[str]:
    """Say how many of the cells the footprint cuts the grid leaves empty (split by area).

    ``cut_cell`` is the released cell of each pair whose cell the zone only cuts,
    ``grid_share`` its :func:`population_shares` (NaN where the grid puts nobody in the
    cell). A grid that misses the footprint would otherwise give area-share figures
    under the population weighting's name, silently.
    """
    cells = np.unique(cut_cell)
    if not len(cells):
        return []
    empty = np.unique(cut_cell[np.isnan(grid_share)])
    if not len(empty):
        return []
    covered = len(cells) - len(empty)
    if not covered:
        return [
            f"the population grid puts nobody in any of the {len(cells):,} released cells the "
            "footprint cuts (it does not cover the footprint, or holds no values there): "
            "they are split by area share, so the estimate equals area weighting."
        ]
    return [
        f"the population grid covers only {100 * covered / len(cells):.0f} % ({covered:,} of "
        f"{len(cells):,}) of the released cells the footprint cuts; the other "
        f"{len(empty):,} are split by area share."
    ]
