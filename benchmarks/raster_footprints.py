"""Raster footprints: area-share error of the 50 m polygons, memory, grid.xml time.

    .venv/bin/python benchmarks/raster_footprints.py

1. Area shares per res-8 cell of a generated 10 m flood-depth raster in UTM 33N (smooth,
   then with radar-like speckle), polygonised at 50 m blocks (the reader's default),
   against the shares of the 10 m pixel centres and, when smooth, against every pixel
   polygonised (the speckled one makes 456,000 polygons: minutes of overlay).
2. Peak memory and time reading a 20000 × 20000 uint8 sparse GeoTIFF (fresh process).
3. Time to read ShakeMap-size grid.xml files and to run an exposure on the demo release.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h3
import numpy as np
from rasterio.transform import from_origin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT  # noqa: E402
from geo.io.footprints import RasterOptions, read_footprint  # noqa: E402
from geo.tools.cell_pairs import cell_zone_shares  # noqa: E402
from tests.rasters import (  # noqa: E402
    depth_field,
    write_geotiff,
    write_grid_xml,
    write_sparse_extent,
)

_MEMORY = """
import sys, time
from geo.io.footprints import read_footprint
start = time.process_time()
fp = read_footprint(sys.argv[1])
took = time.process_time() - start
status = dict(l.split(':', 1) for l in open('/proc/self/status') if l.startswith('Vm'))
print(took, status['VmHWM'].split()[0], status['VmPeak'].split()[0], len(fp.classes))
"""


def shares(fp, cells) -> object:
    pairs = cell_zone_shares(cells, fp.classes.set_index("class_label"))
    return pairs.set_index(["h3_cell", "zone"])["area_share"]


def timed(function, *args, **kwargs):
    """Return the result, wall seconds and CPU seconds of a call (the machine is shared)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def pixel_shares(depth: np.ndarray, cells: list[str]) -> object:
    """Per (cell, class) share of the 10 m pixel centres: the full-resolution truth."""
    import pandas as pd
    import polars as pl
    import polars_h3
    from pyproj import Transformer

    size = depth.shape[0]
    labels = ["0–0.15 m", "0.15–0.5 m", "0.5–1.5 m", "1.5–3 m", "≥ 3 m"]
    classes = np.where(depth > 0, np.searchsorted(EDGES, depth, side="right") - 1, -1)
    x = 345_000 + (np.arange(size) + 0.5) * 10
    y = 4_760_000 - (np.arange(size) + 0.5) * 10
    xx, yy = np.meshgrid(x, y)
    lon, lat = Transformer.from_crs(32633, 4326, always_xy=True).transform(xx.ravel(), yy.ravel())
    ints = pl.DataFrame({"lat": lat, "lon": lon}).select(polars_h3.latlng_to_cell("lat", "lon", 8))
    unique, inverse = np.unique(ints.to_series().to_numpy(), return_inverse=True)
    cell = np.array([h3.int_to_str(int(v)) for v in unique], dtype=object)[inverse]
    frame = pd.DataFrame({"h3_cell": cell, "zone": classes.ravel()})
    total = frame.groupby("h3_cell").size()
    wet = frame[frame["zone"] >= 0]
    share = wet.groupby(["h3_cell", "zone"]).size().div(total, level="h3_cell")
    share.index = pd.MultiIndex.from_arrays(
        [share.index.get_level_values(0), [labels[i] for i in share.index.get_level_values(1)]],
        names=["h3_cell", "zone"],
    )
    inside = total[total > 0.9 * total.median()].index  # cells wholly on the raster
    return share[share.index.get_level_values(0).isin(inside)], sorted(inside)


EDGES = [0.0, 0.15, 0.5, 1.5, 3.0, np.inf]


def area_share_error(folder: Path, size: int, speckle: float) -> None:
    depth = depth_field(size, size, seed=7, speckle=speckle)
    path = write_geotiff(
        folder / "flood_depth.tif",
        depth,
        transform=from_origin(345_000, 4_760_000, 10, 10),
        crs="EPSG:32633",
    )
    ours, wall_d, cpu_d = timed(read_footprint, path, raster=RasterOptions("depth"))
    how = "dithered" if any("dithering" in n for n in ours.provenance["notes"]) else "majority"
    line = (
        f"depth raster {size}×{size} px of 10 m (UTM 33N, speckle {speckle} m): read + "
        f"polygonised at 50 m ({how} blocks) in {wall_d:.2f} s wall / {cpu_d:.2f} s CPU "
        f"({ours.describe()['parts'].sum()} polygons)"
    )
    references = {"pixel centres": pixel_shares(depth, [])}
    if speckle == 0:  # every pixel polygonised: fast enough only without speckle
        import geo.io.footprints.raster as raster

        raster.TARGET_PIXEL_M = 1.0
        full, wall_f, cpu_f = timed(read_footprint, path, raster=RasterOptions("depth"))
        raster.TARGET_PIXEL_M = h3.average_hexagon_edge_length(8, "m") / 10
        line += (
            f"; every 10 m pixel in {wall_f:.2f} s / {cpu_f:.2f} s CPU "
            f"({full.describe()['parts'].sum()} polygons)"
        )
        _, cells = references["pixel centres"]
        references["10 m polygons"] = (shares(full, cells), cells)
    print(line)
    for name, (reference, cells) in references.items():
        a = shares(ours, cells)
        a, b = a.align(reference, fill_value=0.0)
        error = np.abs(a - b).to_numpy()
        print(
            f"  res 8, vs {name}: {len(cells)} cells, {len(error)} (cell, class) pairs; "
            f"|share error| mean {error.mean():.4f}, median {np.median(error):.4f}, "
            f"p99 {np.quantile(error, 0.99):.4f}, max {error.max():.4f}"
        )


def large_raster(folder: Path) -> None:
    path = write_sparse_extent(folder / "extent.tif")
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    took, hwm, peak, _ = done.stdout.split()
    base = subprocess.run(
        [
            sys.executable,
            "-c",
            "import geo.io.footprints, rasterio\n"
            "s = dict(l.split(':', 1) for l in open('/proc/self/status') if l.startswith('Vm'))\n"
            "print(s['VmHWM'].split()[0])",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    print(
        f"20000×20000 uint8 sparse GeoTIFF ({path.stat().st_size / 1e3:.0f} kB on disk, "
        f"400 MB a band): read in {float(took):.1f} s CPU, peak RSS "
        f"{int(hwm) / 1024:.0f} MB (after imports alone {int(base) / 1024:.0f} MB), "
        f"peak address space {int(peak) / 1024:.0f} MB"
    )


def grid_xml(folder: Path) -> None:
    from geo.pipeline import read_release, run_exposure

    release = read_release(ROOT / "data" / "demo" / "central_italy.release.parquet")
    sizes = {"60″ (181×151)": 0.0166667, "30″ (361×301)": 0.0083333, "15″ (721×601)": 0.0041667}
    for name, spacing in sizes.items():
        path = write_grid_xml(folder / "grid.xml", spacing=spacing)
        fp, wall, cpu = timed(read_footprint, path)
        _, wall_e, cpu_e = timed(run_exposure, release, [fp])
        print(
            f"grid.xml {name} points, {path.stat().st_size / 1e6:.1f} MB: read and "
            f"polygonised in {wall:.2f} s wall / {cpu:.2f} s CPU "
            f"({fp.describe()['parts'].sum()} polygons); exposure of the demo release "
            f"({len(release.groups)} groups) {wall_e:.2f} s / {cpu_e:.2f} s CPU"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2000, help="side of the depth raster (px)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for speckle in (0.0, 0.3):  # smooth, then radar-like scattered pixels
            area_share_error(folder, args.size, speckle)
        large_raster(folder)
        grid_xml(folder)


if __name__ == "__main__":
    main()
