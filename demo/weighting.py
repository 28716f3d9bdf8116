"""SYNTHETIC worlds for choosing the within-cell weighting of exposure estimates.

Each world has a population grid (persons per pixel), registrations sampled from it (so
the truth is known point by point) and a footprint:

- :func:`coastal_world`: people crowd the Abruzzo coast (density falling off over a
  kilometre inland), the footprint a tsunami strip 400 m deep along the coast: thinner
  than the released cells, the case where area and settlement shares fail;
- :func:`generated_world`: people follow a clustered random field that has nothing to
  do with GeoNames, under the Norcia ShakeMap bands;
- :func:`geonames_grid`: a grid drawn from the GeoNames places (each place's
  population spread over a few kilometres), the only grid one can give the demo
  registry (whose people are placed around GeoNames places or scattered uniformly).

Grids are also degraded (:func:`noisy_grid`, :func:`coarser_grid`) so that the
population weighting is not only measured on its own home ground. Used by
``benchmarks/weighting.py`` and the tests; outside the library, like all of ``demo/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import ndimage

from geo.io.settlements import read_settlements

ROOT = Path(__file__).resolve().parent.parent
REGIONS = ROOT / "data/admin/italy_regions_limits_IT_regions.geojson"
COAST_BOX = (13.95, 42.25, 14.55, 42.75)  # the Abruzzo coast from Pescara to Vasto
NATIONALITIES = ("ROU", "ALB", "MAR", "UKR", "CHN", "KOR", "THA", "PHL")


@dataclass(frozen=True)
class Grid:
    """Persons per pixel on a (lon, lat) grid: ``values[row, col]``, row 0 at the north."""

    values: np.ndarray
    west: float
    north: float
    pixel: float  # degrees, in both directions

    def write(self, path: Path) -> Path:
        """Write the grid as a GeoTIFF in EPSG:4326 (0 where nobody lives)."""
        import rasterio
        from rasterio.transform import from_origin

        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            height=self.values.shape[0],
            width=self.values.shape[1],
            count=1,
            dtype="float32",
            crs="EPSG:4326",
            transform=from_origin(self.west, self.north, self.pixel, self.pixel),
            nodata=-1,
        ) as target:
            target.write(self.values.astype("float32"), 1)
        return path


def sample_people(grid: Grid, cases: int, rng: np.random.Generator) -> pd.DataFrame:
    """Return registrations drawn from the grid (∝ persons), uniform inside each pixel.

    Nationalities follow a Zipf law over :data:`NATIONALITIES`; families of 1–5 persons.
    """
    weights = grid.values.ravel() / grid.values.sum()
    pixel = rng.choice(len(weights), size=cases, p=weights)
    row, col = np.divmod(pixel, grid.values.shape[1])
    lon = grid.west + (col + rng.random(cases)) * grid.pixel
    lat = grid.north - (row + rng.random(cases)) * grid.pixel
    zipf = 1 / np.arange(1, len(NATIONALITIES) + 1)
    nationality = rng.choice(NATIONALITIES, size=cases, p=zipf / zipf.sum())
    return pd.DataFrame(
        {
            "nationality": nationality,
            "latitude": lat,
            "longitude": lon,
            "persons": rng.integers(1, 6, cases),
        }
    )


def _pixel_centres(shape: tuple[int, int], west: float, north: float, pixel: float):
    rows, cols = np.indices(shape)
    return west + (cols + 0.5) * pixel, north - (rows + 0.5) * pixel


def coastal_world(rng: np.random.Generator, pixel: float = 0.001) -> tuple[Grid, gpd.GeoDataFrame]:
    """Return a coastal population grid and a tsunami strip 400 m deep along that coast."""
    west, south, east, north = COAST_BOX
    land = shapely.intersection(
        shapely.union_all(gpd.read_file(REGIONS).geometry.values), shapely.box(*COAST_BOX)
    )
    shape = (round((north - south) / pixel), round((east - west) / pixel))
    lon, lat = _pixel_centres(shape, west, north, pixel)
    on_land = shapely.contains_xy(land, lon, lat)
    metres = np.array([111_320 * np.cos(np.radians((north + south) / 2)), 110_570]) * pixel
    inland = ndimage.distance_transform_edt(on_land, sampling=metres[::-1])
    field = np.exp(ndimage.gaussian_filter(rng.normal(size=shape), 8) * 20)
    values = np.where(on_land, 40 * np.exp(-inland / 1000) + 0.5 * field / field.mean(), 0.0)
    sea = shapely.difference(shapely.box(*COAST_BOX), land)
    local = gpd.GeoSeries([land, sea], crs=4326).to_crs(3035)
    strip = shapely.intersection(local[0], local[1].buffer(400))
    classes = gpd.GeoDataFrame(
        {"class_label": ["tsunami strip"], "class_rank": [1]},
        geometry=gpd.GeoSeries([strip], crs=3035).to_crs(4326).values,
        crs=4326,
    )
    return Grid(values, west, north, pixel), classes


def generated_world(
    rng: np.random.Generator, classes: gpd.GeoDataFrame, pixel: float = 0.0025
) -> Grid:
    """Return a clustered random population grid over the classes' extent.

    A log-normal field (Gaussian-smoothed white noise at two scales, about 2 and 10 km)
    thresholded so that most of the land is empty: towns of every size, unrelated to
    any real place.
    """
    west, south, east, north = classes.total_bounds
    shape = (round((north - south) / pixel), round((east - west) / pixel))
    fine = ndimage.gaussian_filter(rng.normal(size=shape), 8)
    broad = ndimage.gaussian_filter(rng.normal(size=shape), 40)
    field = fine / fine.std() + 1.5 * broad / broad.std()
    values = np.exp(2 * field)
    values[field < 0.8] = 0.0
    return Grid(values, float(west), float(north), pixel)


def geonames_grid(
    bounds: tuple[float, float, float, float], pixel: float = 0.0025, spread_km: float = 2.0
) -> Grid:
    """Return the GeoNames places inside ``bounds`` spread over ``spread_km`` as a grid."""
    west, south, east, north = bounds
    shape = (round((north - south) / pixel), round((east - west) / pixel))
    places = read_settlements()
    places = places[places["lon"].between(west, east) & places["lat"].between(south, north)]
    row = ((north - places["lat"].to_numpy()) / pixel).astype(int).clip(0, shape[0] - 1)
    col = ((places["lon"].to_numpy() - west) / pixel).astype(int).clip(0, shape[1] - 1)
    values = np.zeros(shape)
    np.add.at(values, (row, col), places["population"].to_numpy(dtype=float))
    sigma = spread_km / (111.0 * pixel)
    return Grid(ndimage.gaussian_filter(values, sigma) + 1e-3, west, north, pixel)


def noisy_grid(grid: Grid, rng: np.random.Generator, sigma: float = 0.7) -> Grid:
    """Return the grid with log-normal noise on every pixel (σ of the log)."""
    noise = np.exp(rng.normal(0, sigma, grid.values.shape))
    return Grid(grid.values * noise, grid.west, grid.north, grid.pixel)


def coarser_grid(grid: Grid, factor: int = 4) -> Grid:
    """Return the grid summed into pixels ``factor`` times wider (1 km from 250 m)."""
    rows, cols = (n // factor * factor for n in grid.values.shape)
    blocks = grid.values[:rows, :cols].reshape(rows // factor, factor, cols // factor, factor)
    return Grid(blocks.sum(axis=(1, 3)), grid.west, grid.north, grid.pixel * factor)
