"""Raster footprints built in code: ShakeMap grid.xml, MMI and flood-depth GeoTIFFs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

NORCIA = (13.1092, 42.8303)
GRID_FIELDS = ["LON", "LAT", "PGA", "PGV", "MMI", "PSA03", "PSA10", "PSA30", "STDPGA", "URAT"]


def mmi_at(lon: np.ndarray, lat: np.ndarray, epicentre=NORCIA, top: float = 9.4) -> np.ndarray:
    """A smooth, decreasing intensity field around an epicentre (elliptical, like a fault)."""
    dx = (lon - epicentre[0]) * 111.32 * np.cos(np.radians(epicentre[1]))
    dy = (lat - epicentre[1]) * 110.57
    r = np.hypot(dx / 1.4, dy)  # km, stretched along the fault
    return np.clip(top - 3.2 * np.log10(1 + r / 4.0), 1.0, 10.0)


def write_grid_xml(
    path: Path,
    *,
    lon_min: float = 11.6,
    lat_min: float = 41.6,
    lon_max: float = 14.6,
    lat_max: float = 44.1,
    spacing: float = 0.0166667,
    epicentre=NORCIA,
    drop_rows: int = 0,
) -> Path:
    """Write a ShakeMap 4 style grid.xml (rows from the north-west corner, lat descending)."""
    nlon = int(round((lon_max - lon_min) / spacing)) + 1
    nlat = int(round((lat_max - lat_min) / spacing)) + 1
    lons = np.linspace(lon_min, lon_max, nlon)
    lats = np.linspace(lat_max, lat_min, nlat)
    lon, lat = (a.ravel() for a in np.meshgrid(lons, lats))
    mmi = mmi_at(lon, lat, epicentre)
    pga = 10 ** ((mmi - 1.78) / 1.55)
    columns = [lon, lat, pga, pga * 0.9, mmi, pga * 1.8, pga * 0.6, pga * 0.2, 0.6 + 0 * lon]
    columns.append(0.0 * lon)
    data = np.column_stack(columns)[drop_rows:]
    head = [
        '<?xml version="1.0" encoding="US-ASCII" standalone="yes"?>',
        '<shakemap_grid xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns="http://earthquake.usgs.gov/eqcenter/shakemap" event_id="test0001" '
        'shakemap_id="test0001" shakemap_version="1" code_version="4.0" '
        'process_timestamp="2016-10-30T08:00:00Z" shakemap_originator="us" '
        'map_status="RELEASED" shakemap_event_type="ACTUAL">',
        f'<event event_id="test0001" magnitude="6.5" depth="9" lat="{epicentre[1]}" '
        f'lon="{epicentre[0]}" event_timestamp="2016-10-30T06:40:18Z" event_network="us" '
        'event_description="Synthetic" />',
        f'<grid_specification lon_min="{lon_min}" lat_min="{lat_min}" lon_max="{lon_max}" '
        f'lat_max="{lat_max}" nominal_lon_spacing="{spacing:.6f}" '
        f'nominal_lat_spacing="{spacing:.6f}" nlon="{nlon}" nlat="{nlat}" />',
        '<event_specific_uncertainty name="pga" value="0.0" numsta="" />',
    ]
    units = ["dd", "dd", "pctg", "cms", "intensity", "pctg", "pctg", "pctg", "ln(pctg)", ""]
    head += [
        f'<grid_field index="{i}" name="{name}" units="{unit}" />'
        for i, (name, unit) in enumerate(zip(GRID_FIELDS, units, strict=True), start=1)
    ]
    with path.open("w", encoding="ascii") as fh:
        fh.write("\n".join(head) + "\n<grid_data>\n")
        np.savetxt(fh, data, fmt="%.4f %.4f %.4f %.4f %.2f %.4f %.4f %.4f %.4f %.2f")
        fh.write("</grid_data>\n</shakemap_grid>\n")
    return path


def write_geotiff(
    path: Path,
    values: np.ndarray,
    *,
    transform,
    crs: str | None = "EPSG:4326",
    nodata=None,
    **options,
) -> Path:
    """Write one band as a tiled, deflate-compressed GeoTIFF."""
    profile = {
        "driver": "GTiff",
        "width": values.shape[1],
        "height": values.shape[0],
        "count": 1,
        "dtype": values.dtype.name,
        "transform": transform,
        "nodata": nodata,
        "compress": "deflate",
        "tiled": True,
        **options,
    }
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
    return path


def write_mmi_tif(path: Path, spacing: float = 0.0083333, crs: str = "EPSG:4326") -> Path:
    """An MMI GeoTIFF in lon/lat over central Italy (float32, NaN outside a margin)."""
    lon_min, lat_max, width, height = 11.6, 44.1, int(3.0 / spacing), int(2.5 / spacing)
    lons = lon_min + (np.arange(width) + 0.5) * spacing
    lats = lat_max - (np.arange(height) + 0.5) * spacing
    lon, lat = np.meshgrid(lons, lats)
    values = mmi_at(lon, lat).astype("float32")
    values[:5] = np.nan
    return write_geotiff(
        path, values, transform=from_origin(lon_min, lat_max, spacing, spacing), crs=crs
    )


def depth_field(height: int, width: int, seed: int = 1, speckle: float = 0.0) -> np.ndarray:
    """A flood-depth field in metres: a few smooth basins and a river, dry (≤ 0) elsewhere.

    ``speckle`` adds pixel noise of that standard deviation (m), as radar-derived flood
    maps have: class borders then break into many small pixel groups.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype("float32")
    depth = np.full((height, width), -0.5, dtype="float32")
    for _ in range(6):
        cx, cy = rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height
        sx, sy = rng.uniform(0.04, 0.15) * width, rng.uniform(0.04, 0.15) * height
        depth += rng.uniform(1.5, 4.5) * np.exp(-(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))
    river = np.abs(y - height * (0.5 + 0.2 * np.sin(x / width * 6.0))) < height * 0.01
    depth[river] = np.maximum(depth[river], 2.0)
    wobble = 0.15 * np.sin(x / 7.0) * np.cos(y / 5.0)  # ragged borders, like real rasters
    depth += wobble
    if speckle:
        depth += rng.normal(0.0, speckle, depth.shape).astype("float32")
    return depth.astype("float32")


def write_sparse_extent(path: Path, size: int = 20000, pixel_m: float = 10.0) -> Path:
    """A size × size uint8 flood extent (1 = flooded) in UTM 33N, mostly empty (sparse tiles).

    Written window by window, so building it takes no more memory than reading it should.
    """
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": from_origin(300_000, 4_800_000, pixel_m, pixel_m),
        "nodata": 255,
        "compress": "deflate",
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "sparse_ok": True,
    }
    y, x = np.mgrid[0:1024, 0:1024]
    blob = ((x - 512) ** 2 / 400**2 + (y - 512) ** 2 / 250**2 < 1).astype("uint8")
    with rasterio.open(path, "w", **profile) as dst:
        for row, col in [(2048, 2048), (9216, 4096), (15360, 15360), (6144, 17408)]:
            dst.write(blob, 1, window=rasterio.windows.Window(col, row, 1024, 1024))
    return path
