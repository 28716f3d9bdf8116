"""Raster footprints: area-share error of the decimated polygons, memory, grid.xml time.

    .venv/bin/python benchmarks/raster_footprints.py

1. Area shares per released cell (res 8 and res 7) of a generated 10 m flood-depth
   raster in UTM 33N, polygonised at 50 m blocks (the reader's default: majority class,
   ≤ 1/10 of a res-8 edge) against every pixel polygonised (full resolution).
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
import shapely
from rasterio.transform import from_origin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT  # noqa: E402
from geo.io.footprints import RasterOptions, read_footprint  # noqa: E402
from geo.tools.exposure import cell_zone_shares  # noqa: E402
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


def area_share_error(folder: Path, size: int, speckle: float) -> None:
    depth = depth_field(size, size, seed=7, speckle=speckle)
    path = write_geotiff(
        folder / "flood_depth.tif",
        depth,
        transform=from_origin(345_000, 4_760_000, 10, 10),
        crs="EPSG:32633",
    )
    decimated, wall_d, cpu_d = timed(read_footprint, path, raster=RasterOptions("depth"))
    import geo.io.footprints.raster as raster

    raster.TARGET_PIXEL_M = 1.0
    full, wall_f, cpu_f = timed(read_footprint, path, raster=RasterOptions("depth"))
    raster.TARGET_PIXEL_M = h3.average_hexagon_edge_length(8, "m") / 10
    parts = (decimated.describe()["parts"].sum(), full.describe()["parts"].sum())
    print(
        f"depth raster {size}×{size} px of 10 m (UTM 33N, {size * size * 4 / 1e6:.0f} MB "
        f"float32, speckle {speckle} m): read + polygonised at 50 m in {wall_d:.2f} s wall / "
        f"{cpu_d:.2f} s CPU ({parts[0]} polygons), at 10 m in {wall_f:.2f} s / {cpu_f:.2f} s "
        f"CPU ({parts[1]} polygons)"
    )
    area_d = decimated.describe().set_index("class_label")["area_km2"]
    area_f = full.describe().set_index("class_label")["area_km2"]
    worst = ((area_d - area_f).abs() / area_f).max()
    print(f"  class areas, 50 m vs 10 m: worst relative difference {worst:.2%}")
    extent = shapely.union_all(full.classes.geometry.values).buffer(0.005)
    for resolution in (8, 7):
        cells = sorted(h3.geo_to_cells(extent, resolution))
        a, _, t_a = timed(shares, decimated, cells)
        b, _, t_b = timed(shares, full, cells)
        a, b = a.align(b, fill_value=0.0)
        error = np.abs(a - b).to_numpy()
        cut = (b > 0) & (b < 1)
        print(
            f"  res {resolution}: {len(cells)} cells, {len(error)} (cell, class) pairs, "
            f"{int(cut.sum())} cut; |share error| mean {error.mean():.4f}, "
            f"median over cut pairs {np.median(error[cut.to_numpy()]):.4f}, "
            f"p99 {np.quantile(error, 0.99):.4f}, max {error.max():.4f}; "
            f"shares in {t_a:.2f} s CPU (50 m) vs {t_b:.2f} s CPU (10 m)"
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
        for speckle in (0.0, 0.3):
            area_share_error(folder, args.size, speckle)
        large_raster(folder)
        grid_xml(folder)


if __name__ == "__main__":
    main()
