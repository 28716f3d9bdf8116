"""Raster footprints (GeoTIFF and other GDAL rasters) read into classed polygons.

A raster is read with rasterio by strips of rows (memory stays bounded however
large the file), its values are classed by a :class:`~.raster_classes.Scheme`
(MMI bands, flood depth, thresholds or categories), and the class codes are
polygonised so that the exposure works on them exactly as on any vector
footprint: low, estimate and high keep their meaning.

Polygonising every pixel of a 10 m flood raster would make millions of
polygons for nothing: the finest released cell is an H3 resolution-8 hexagon
(edge about 531 m), and area shares inside such a cell are settled to within a
percent or so by a grid ten times finer. So codes are first reduced to blocks of
f × f pixels, f chosen so that a block is at most 1/10 of a res-8 edge (about 53 m).
Each block takes its majority class (ties to the more severe), unless that would
change a class's area by more than 5 % (scattered pixels vanish under a majority):
then blocks are classed by ordered dithering of their class fractions, which keeps
each class's area within a few blocks;
rasters already coarser than that (ShakeMap grids) are polygonised pixel by
pixel. ``benchmarks/raster_footprints.py`` measures the area-share error against
full-resolution polygonisation.

Nodata (the nodata value, a mask band, NaN) is no class; any CRS is accepted and
the polygons are reprojected to EPSG:4326; a raster without a CRS is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import h3
import numpy as np
import rasterio
import rasterio.features
import shapely
from pyproj import CRS, Transformer
from rasterio._err import CPLE_BaseError
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioError
from rasterio.windows import Window

from geo.errors import library_reason
from geo.footprint_classes import WGS84, geometries_to_polygonal, rows_to_classes
from geo.io.footprints.common import (
    FootprintError,
    _antimeridian_split,
    _bounds_are_lonlat,
    _Log,
    _name_to_hazard,
    _Options,
    _Result,
    _vsizip,
)
from geo.io.footprints.raster_classes import NO_CLASS, NODATA, RasterOptions, Scheme, scheme_for
from geo.io.footprints.raster_formats import DRIVERS

# Finest block that still settles area shares in the finest released cell (res 8).
TARGET_PIXEL_M = h3.average_hexagon_edge_length(8, "m") / 10
MAX_OUTPUT_PIXELS = 40_000_000  # the decimated code grid, 40 MB of uint8
STRIP_PIXELS = 4_000_000  # pixels read at once (16 MB of float32)
MAX_AREA_CHANGE = 0.05  # majority blocks may change a class's area by at most this
GDAL_CACHE_MB = 64
ERRORS = (RasterioError, CPLE_BaseError, OSError, ValueError)


@dataclass
class RasterGrid:
    """A raster to class: size, georeferencing and a strip reader.

    ``read(row, height)`` returns the values of rows ``row … row+height-1`` and a
    boolean array of which of them are valid (not nodata).
    """

    width: int
    height: int
    transform: Any  # affine.Affine
    crs: CRS
    dtype: str
    read: Callable[[int, int], tuple[np.ndarray, np.ndarray]]


def raster_to_result(source: str | Path, opts: _Options, log: _Log, member: str = "") -> _Result:
    """Read a raster file (or a zip's raster ``member``) into classes.

    Raises
    ------
    FootprintError
        For a file GDAL cannot read, a raster without CRS, a continuous raster
        without thresholds, all nodata, or no pixel in any class.
    """
    display = opts.display
    path = _vsizip(Path(source), member) if member else str(source)
    driver = DRIVERS.get(PurePosixPath(member or display).suffix.lower(), "GTiff")
    if member:
        log.notes.append(f"raster read from the zip: {member}")
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), rasterio.open(path, driver=driver) as src:
            grid = _dataset_to_grid(src, display, log)
            hints = " ".join(
                [display, member, src.descriptions[0] or "", *src.tags(1).values()]
            ).lower()
            scheme = scheme_for(
                _raster_options(opts),
                dtype=grid.dtype,
                hints=hints,
                display=display,
                hazard=_name_to_hazard(f"{display} {member}"),
            )
            return grid_to_result(grid, scheme, opts, log, "raster")
    except FootprintError:
        raise
    except ERRORS as exc:
        raise FootprintError(
            f"{display}: cannot read the raster ({library_reason(exc)}); supply a GeoTIFF with "
            "its CRS, or check that the file is complete."
        ) from None


def _raster_options(opts: _Options) -> RasterOptions:
    """Return the raster options carried by the reader options (defaults when none)."""
    return getattr(opts, "raster", None) or RasterOptions()


def _dataset_to_grid(src: Any, display: str, log: _Log) -> RasterGrid:
    """Check an open dataset's georeferencing and return its band 1 as a strip reader."""
    if src.crs is None:
        hint = (
            " (it has ground control points only: warp it first, e.g. gdalwarp)"
            if src.gcps[0]
            else ""
        )
        raise FootprintError(
            f"{display}: the raster has no CRS{hint}; save it as a GeoTIFF with its CRS "
            "(e.g. gdal_translate -a_srs EPSG:4326)."
        )
    if src.transform.is_identity:
        raise FootprintError(f"{display}: the raster has no geotransform; it cannot be placed.")
    if src.count > 1:
        log.notes.append(f"band 1 of {src.count} read")
    floating = np.issubdtype(np.dtype(src.dtypes[0]), np.floating)
    flags = src.mask_flag_enums[0]
    nodata = src.nodata

    def read(row: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        window = Window(0, row, src.width, height)
        values = src.read(1, window=window)
        if MaskFlags.all_valid in flags:
            valid = np.ones(values.shape, dtype=bool)
        elif MaskFlags.nodata in flags and nodata is not None and not math.isnan(nodata):
            valid = values != np.asarray(nodata).astype(values.dtype)
        else:  # a mask band (or NaN nodata, caught below)
            valid = src.read_masks(1, window=window) > 0
        if floating:
            valid &= np.isfinite(values)
        return values, valid

    return RasterGrid(
        src.width, src.height, src.transform, CRS.from_user_input(src.crs), src.dtypes[0], read
    )


def grid_to_result(
    grid: RasterGrid, scheme: Scheme, opts: _Options, log: _Log, fmt: str
) -> _Result:
    """Class, decimate and polygonise a raster grid into a reader result.

    Raises
    ------
    FootprintError
        If every pixel is nodata, no pixel falls in a class, or the grid is not on Earth.
    """
    display = opts.display
    factor = _decimation(grid, log)
    codes, valid_count = _grid_to_codes(grid, scheme, factor, display, log)
    if valid_count == 0:
        raise FootprintError(f"{display}: every pixel of the raster is nodata; nothing to map.")
    labels, ranks, remap = scheme.finish()
    codes = remap[codes] if scheme.learn else codes
    transform = grid.transform @ grid.transform.scale(factor)
    parts = _codes_to_parts(codes, transform, display)
    if not parts:
        raise FootprintError(
            f"{display}: no pixel falls in any class ({scheme.description}); check the "
            "thresholds or the value→label map."
        )
    rows = []
    for code, geoms in sorted(parts.items()):
        geom = _parts_to_wgs84(np.array(geoms, dtype=object), grid.crs, transform)
        if geom is not None:
            rows.append((scheme.hazard, labels[code], ranks[code], geom))
    classes = rows_to_classes(rows)
    bounds = shapely.total_bounds(np.asarray(classes.geometry.values))
    if not _bounds_are_lonlat(bounds):
        raise FootprintError(
            f"{display}: the raster's coordinates are outside longitude/latitude range in its "
            "CRS; the declared CRS is probably wrong."
        )
    classes["geometry"] = _antimeridian_split(np.asarray(classes.geometry.values), log)
    log.notes.append(f"classes: {scheme.description}")
    invalid = grid.width * grid.height - valid_count
    if invalid:
        log.notes.append(f"{invalid:,} nodata pixel{'s' * (invalid != 1)} left out (no class)")
    polygons = sum(len(g) for g in parts.values())
    return _Result(classes, fmt, scheme.hazard, None, polygons, scheme.ordered)


# --------------------------------------------------------------------------- decimation


def _pixel_metres(grid: RasterGrid) -> float:
    """Return a pixel's larger side in metres (at the centre for lon/lat rasters)."""
    t = grid.transform
    size_x, size_y = math.hypot(t.a, t.d), math.hypot(t.b, t.e)
    if grid.crs.is_geographic:
        lat = (t @ (grid.width / 2, grid.height / 2))[1]
        size_x *= 111_320 * max(math.cos(math.radians(min(abs(lat), 89.0))), 0.01)
        size_y *= 110_574
        return max(size_x, size_y)
    factor = grid.crs.axis_info[0].unit_conversion_factor if grid.crs.axis_info else 1.0
    return max(size_x, size_y) * factor


def _decimation(grid: RasterGrid, log: _Log) -> int:
    """Block size f (pixels per side) for polygonising, and say what it means."""
    pixel = _pixel_metres(grid)
    factor = max(1, int(TARGET_PIXEL_M // pixel)) if pixel > 0 else 1
    budget = math.ceil(math.sqrt(grid.width * grid.height / MAX_OUTPUT_PIXELS))
    size = f"{grid.width}×{grid.height} px of {pixel:.3g} m"
    if budget > factor:
        factor = budget
        log.notes.append(
            f"raster {size}: polygonised at {factor * pixel:.3g} m ({factor}×{factor} px "
            "blocks) to keep memory bounded; coarser than 1/10 of a res-8 "
            "hexagon edge"
        )
    elif factor > 1:
        log.notes.append(
            f"raster {size}: polygonised at {factor * pixel:.3g} m ({factor}×{factor} px "
            "blocks, ≤ 1/10 of a res-8 hexagon edge)"
        )
    else:
        log.notes.append(f"raster {size}: polygonised pixel by pixel")
    return factor


def _strips(grid: RasterGrid, factor: int) -> Iterator[tuple[int, int]]:
    """Row ranges to read: whole blocks, about ``STRIP_PIXELS`` pixels at a time."""
    rows = factor * max(1, STRIP_PIXELS // max(grid.width * factor, 1))
    for row in range(0, grid.height, rows):
        yield row, min(rows, grid.height - row)


def _grid_to_codes(
    grid: RasterGrid, scheme: Scheme, factor: int, display: str, log: _Log
) -> tuple[np.ndarray, int]:
    """Class codes of the grid reduced to f × f blocks, and the number of valid pixels.

    Each block takes its majority class, unless that would change a class's area by
    more than ``MAX_AREA_CHANGE`` (scattered pixels, as radar flood maps have, vanish
    under a majority): then every block takes a class by ordered dithering of its
    class fractions, which keeps each class's area over a few blocks.
    """
    shape = (math.ceil(grid.height / factor), math.ceil(grid.width / factor))
    majority = np.full(shape, NODATA, np.uint8)
    dithered = np.full(shape, NODATA, np.uint8) if factor > 1 else majority
    pixels, kept = np.zeros(256, np.int64), np.zeros(256, np.int64)
    valid_count = 0
    priority = _code_priority(scheme)
    for row, height in _strips(grid, factor):
        values, valid = grid.read(row, height)
        valid_count += int(valid.sum())
        if not valid.any():
            continue
        codes = scheme.classify(values, valid, display)
        del values, valid
        if factor == 1:
            majority[row : row + height] = codes
            continue
        first = row // factor
        block, dither, counts, block_counts = _blocks(codes, factor, priority, first)
        majority[first : first + block.shape[0]] = block
        dithered[first : first + block.shape[0]] = dither
        pixels += counts
        kept += block_counts
    if factor == 1:
        return majority, valid_count
    classed = pixels[:NO_CLASS] > 0
    change = np.abs(kept[:NO_CLASS] - pixels[:NO_CLASS])[classed] / pixels[:NO_CLASS][classed]
    if len(change) and change.max() > MAX_AREA_CHANGE:
        log.notes.append(
            f"blocks classed by ordered dithering of their class fractions: a majority per "
            f"block would change a class's area by {change.max():.0%} (scattered pixels)"
        )
        return dithered, valid_count
    return majority, valid_count


def _code_priority(scheme: Scheme) -> np.ndarray:
    """Codes in the order that wins ties: most severe class first, then no class, nodata."""
    if scheme.learn:
        return np.array([*range(NO_CLASS), NO_CLASS, NODATA], dtype=np.uint8)
    order = np.argsort(-np.asarray(scheme.ranks), kind="stable")
    return np.array([*order, NO_CLASS, NODATA], dtype=np.uint8)


def _bayer(order: int = 3) -> np.ndarray:
    """Return the ordered-dithering thresholds of a 2^order square Bayer matrix, in (0, 1)."""
    matrix = np.zeros((1, 1))
    for _ in range(order):
        matrix = np.block([[4 * matrix, 4 * matrix + 2], [4 * matrix + 3, 4 * matrix + 1]])
    return (matrix + 0.5) / matrix.size


BAYER = _bayer()


def _blocks(
    codes: np.ndarray, factor: int, priority: np.ndarray, first_row: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reduce codes to f × f blocks two ways: majority (ties by priority) and dithered.

    Counts per block are block sums (``np.add.reduceat``) of one mask per code
    present; nodata is what the other codes leave. The dithered class of a block is
    the first code (in priority order) whose cumulated fraction passes the block's
    Bayer threshold, so over any 8 × 8 blocks each class keeps its share. Also
    returns the pixels of each code, and the pixels of the blocks the majority gives it.
    """
    height, width = codes.shape
    row_starts, col_starts = np.arange(0, height, factor), np.arange(0, width, factor)
    sizes = np.outer(np.diff(np.r_[row_starts, height]), np.diff(np.r_[col_starts, width]))
    counts = np.bincount(codes.ravel(), minlength=256)
    best = np.full(sizes.shape, NODATA, dtype=np.uint8)
    best_count = np.zeros(sizes.shape, dtype=np.int32)
    counted = np.zeros(sizes.shape, dtype=np.int32)
    rows = (np.arange(len(row_starts)) + first_row) % BAYER.shape[0]
    threshold = BAYER[rows[:, None], (np.arange(len(col_starts)) % BAYER.shape[1])[None, :]]
    dither = np.full(sizes.shape, NODATA, dtype=np.uint8)
    for code in priority[(counts[priority] > 0) & (priority != NODATA)]:
        mask = (codes == code).view(np.uint8)
        count = np.add.reduceat(
            np.add.reduceat(mask, row_starts, axis=0, dtype=np.int32), col_starts, axis=1
        )
        wins = count > best_count
        best[wins], best_count[wins] = code, count[wins]
        before = counted / sizes
        counted += count
        dither[(before <= threshold) & (counted / sizes > threshold)] = code
    best[sizes - counted > best_count] = NODATA
    block_counts = np.bincount(best.ravel(), weights=sizes.ravel(), minlength=256)
    return best, dither, counts, block_counts.astype(np.int64)


# --------------------------------------------------------------------------- polygons


def _codes_to_parts(codes: np.ndarray, transform: Any, display: str) -> dict[int, list]:
    """Polygonise class codes (4-connected regions) into polygons per code, in the grid's CRS."""
    mask = codes < NO_CLASS
    parts: dict[int, list] = {}
    if not mask.any():
        return parts
    for geometry, value in rasterio.features.shapes(
        codes, mask=mask, connectivity=4, transform=transform
    ):
        parts.setdefault(int(value), []).append(shapely.geometry.shape(geometry))
    return parts


def _parts_to_wgs84(parts: np.ndarray, crs: CRS, transform: Any) -> Any:
    """One class's polygons as a valid (multi)polygon in EPSG:4326.

    Regions of one code touch at most at corners (4-connected polygonisation), so
    their multipolygon is valid once each part is; invalid parts (rings touching
    themselves) are repaired one by one, not the whole class at once.
    """
    if not crs.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        step = 8 * max(math.hypot(transform.a, transform.d), math.hypot(transform.b, transform.e))
        parts = shapely.segmentize(parts, step)
        to_wgs84 = Transformer.from_crs(crs, WGS84, always_xy=True)
        parts = shapely.transform(parts, lambda xy: np.column_stack(to_wgs84.transform(*xy.T)))
    invalid = ~shapely.is_valid(parts)
    if invalid.any():
        parts = parts.copy()
        parts[invalid] = shapely.make_valid(parts[invalid])
    polygonal = geometries_to_polygonal(parts)
    polygons = shapely.get_parts(polygonal[~shapely.is_missing(polygonal)])
    polygons = polygons[shapely.get_type_id(polygons) == shapely.GeometryType.POLYGON]
    if not len(polygons):
        return None
    geom = shapely.multipolygons(polygons) if len(polygons) > 1 else polygons[0]
    if not geom.is_valid:
        geom = geometries_to_polygonal(np.array([shapely.union_all(polygons)], dtype=object))[0]
    return geom
