"""Population grids the user supplies, for the population weighting of exposure.

Two kinds, read offline from a path (such files are too large to upload through a page)
and windowed to the area that matters:

- a raster of persons per pixel (WorldPop GeoTIFF, GHSL POP in Mollweide, any CRS),
  read by windows with rasterio: each populated pixel becomes a point at its centre;
- an H3 table of persons per resolution-8 cell (Kontur Population style): a GeoPackage,
  Parquet or CSV file with columns ``h3`` and ``population``. Finer cells are summed
  into their resolution-8 parents; coarser cells are refused (they say nothing inside
  a released cell).

Whatever is read stays on this machine: a grid is public data, and only the shares it
gives ever reach a figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from geo import h3cells
from geo.errors import InputError

TABLE_SUFFIXES = (".gpkg", ".parquet", ".csv")
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img")
GRID_RESOLUTION = 8  # Kontur's resolution, and the store's
_STRIP_PIXELS = 4_000_000  # rows read at a time from a raster window


def read_population(path: str | Path, bounds: tuple[float, float, float, float]) -> pd.DataFrame:
    """Return the population of a grid file inside (lon, lat) ``bounds``.

    Parameters
    ----------
    path
        A raster (``.tif``, ``.tiff``, ``.vrt``, ``.img``) or an H3 table (``.gpkg``,
        ``.parquet``, ``.csv``).
    bounds
        (west, south, east, north) in degrees: the window to read.

    Returns
    -------
    pandas.DataFrame
        For a raster, ``lon``, ``lat`` (pixel centres) and ``population`` (> 0); for an
        H3 table, ``h3`` (resolution-8 cells as unsigned integers) and ``population``.

    Raises
    ------
    InputError
        For a missing or unreadable file, a raster without CRS, a table without the
        columns, coarse or invalid cells, or negative or missing populations.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: population grid not found.")
    suffix = path.suffix.lower()
    if suffix in RASTER_SUFFIXES:
        return _read_raster(path, bounds)
    if suffix in TABLE_SUFFIXES:
        return _read_table(path, bounds)
    raise InputError(
        f"{path.name}: unknown population grid format; use a GeoTIFF raster or an H3 table "
        "(.gpkg, .parquet or .csv with columns h3 and population)."
    )


def _read_raster(path: Path, bounds: tuple[float, float, float, float]) -> pd.DataFrame:
    """Return the populated pixel centres of a raster inside ``bounds``, read by strips."""
    import rasterio
    from pyproj import Transformer
    from rasterio.errors import RasterioError
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window, from_bounds

    empty = pd.DataFrame({"lon": [], "lat": [], "population": []})
    try:
        with rasterio.open(path) as source:
            if source.crs is None:
                raise InputError(f"{path.name}: population raster has no CRS.")
            west, south, east, north = transform_bounds(4326, source.crs, *bounds)
            full = Window(0, 0, source.width, source.height)
            try:
                window = from_bounds(west, south, east, north, source.transform)
                window = window.round_offsets().round_lengths().intersection(full)
            except rasterio.errors.WindowError:
                return empty
            nodata = source.nodata
            to_lonlat = Transformer.from_crs(source.crs, 4326, always_xy=True)
            rows = max(1, _STRIP_PIXELS // max(1, int(window.width)))
            frames = []
            for top in range(int(window.row_off), int(window.row_off + window.height), rows):
                height = min(rows, int(window.row_off + window.height) - top)
                strip = Window(window.col_off, top, window.width, height)
                values = source.read(1, window=strip).astype(np.float64)
                keep = np.isfinite(values) & (values > 0)
                if nodata is not None:
                    keep &= values != nodata
                row, col = np.nonzero(keep)
                x, y = rasterio.transform.xy(
                    source.transform, row + top, col + int(window.col_off), offset="center"
                )
                lon, lat = to_lonlat.transform(np.asarray(x), np.asarray(y))
                frames.append(pd.DataFrame({"lon": lon, "lat": lat, "population": values[keep]}))
    except RasterioError as error:
        raise InputError(f"{path.name}: cannot read the population raster ({error}).") from None
    return pd.concat(frames, ignore_index=True) if frames else empty


def _read_table(path: Path, bounds: tuple[float, float, float, float]) -> pd.DataFrame:
    """Return the resolution-8 cells of an H3 table whose centre lies inside ``bounds``."""
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path, dtype={"h3": str})
        elif path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            frame = pd.read_parquet(path, columns=[c for c in ("h3", "population") if c in names])
        else:
            import pyogrio

            names = set(pyogrio.read_info(path)["fields"])
            frame = pyogrio.read_dataframe(
                path,
                columns=[c for c in ("h3", "population") if c in names],
                read_geometry=False,
            )
    except (ValueError, KeyError, OSError, ImportError) as error:
        raise InputError(
            f"{path.name}: cannot read a population table with columns h3 and population "
            f"({str(error).splitlines()[0] if str(error) else type(error).__name__})."
        ) from None
    missing = {"h3", "population"} - set(frame.columns)
    if missing:
        raise InputError(f"{path.name}: population table has no column {sorted(missing)[0]!r}.")
    population = pd.to_numeric(frame["population"], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(population) | (population < 0))
    if len(bad):
        raise InputError(
            f"{path.name}: row {bad[0] + 1}: population must be a number ≥ 0 "
            f"(found {_plain(frame['population'].iloc[bad[0]])})."
        )
    cells = _cells(frame["h3"], path.name)
    resolution = h3cells.cell_resolutions(cells)
    if len(cells) and resolution.min() < GRID_RESOLUTION:
        row = int(np.argmin(resolution))
        raise InputError(
            f"{path.name}: row {row + 1}: cell at resolution {resolution[row]}; the population "
            f"weighting needs resolution {GRID_RESOLUTION} or finer."
        )
    cells = h3cells.cells_to_parents(cells, GRID_RESOLUTION)
    summed = pd.Series(population).groupby(cells).sum()
    table = pd.DataFrame({"h3": summed.index.to_numpy(np.uint64), "population": summed.values})
    return _inside(table, bounds)


def _cells(column: pd.Series, name: str) -> np.ndarray:
    """Return an ``h3`` column (strings or integers) as unsigned integers, checked."""
    import polars as pl
    import polars_h3

    if pd.api.types.is_integer_dtype(column):
        cells = pl.Series(column.to_numpy().astype(np.uint64), dtype=pl.UInt64)
    else:
        text = pl.Series(column.astype(str).str.strip().str.lower().tolist(), dtype=pl.String)
        cells = pl.select(polars_h3.str_to_int(text)).to_series()
    valid = pl.select(polars_h3.is_valid_cell(cells)).to_series().fill_null(False).to_numpy()
    if not valid.all():
        row = int(np.argmin(valid))
        raise InputError(f"{name}: row {row + 1}: {column.iloc[row]!r} is not an H3 cell.")
    return cells.to_numpy().astype(np.uint64)


def _inside(table: pd.DataFrame, bounds: tuple[float, float, float, float]) -> pd.DataFrame:
    """Return the rows whose cell centre lies inside (lon, lat) ``bounds``."""
    import polars as pl
    import polars_h3

    if table.empty:
        return table
    centres = pl.select(
        polars_h3.cell_to_latlng(pl.Series(table["h3"].to_numpy(), dtype=pl.UInt64))
    )
    lat, lon = centres.to_series().explode().to_numpy().reshape(-1, 2).T
    west, south, east, north = bounds
    keep = (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
    return table[keep].reset_index(drop=True)


def _plain(value: object) -> str:
    """Show a cell value as a person reads it: ``-5`` or ``'abc'``, never ``np.float64(-5.0)``."""
    if isinstance(value, int | float | np.integer | np.floating):
        return f"{float(value):g}"
    return repr(str(value)[:40])
