"""The offline base map: Natural Earth country outlines shipped inside the package.

``geo/data/naturalearth_countries.parquet`` (177 countries, ``name``, ``iso_a3``,
WGS 84; built by ``scripts/build_basemap.py`` from Natural Earth 1:110m admin-0, public
domain) lets the map and the report draw where a footprint lies without any tile server.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import geopandas as gpd
import shapely

COUNTRIES_FILE = resources.files("geo").joinpath("data", "naturalearth_countries.parquet")
ATTRIBUTION = "Country outlines: Natural Earth (public domain)"


@cache
def _countries() -> gpd.GeoDataFrame:
    with resources.as_file(COUNTRIES_FILE) as local:
        return gpd.read_parquet(local)


def country_outlines(
    bounds: tuple[float, float, float, float] | None = None,
) -> gpd.GeoDataFrame:
    """Return the countries (``name``, ``iso_a3``, geometry), those meeting ``bounds`` if given.

    ``bounds`` is (west, south, east, north) in degrees; the frame is a copy the caller
    may change.
    """
    countries = _countries()
    if bounds is not None:
        countries = countries.iloc[
            list(countries.sindex.query(shapely.box(*bounds), predicate="intersects"))
        ]
    return countries.copy()
