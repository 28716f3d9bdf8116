"""Benchmarks for ingest + release, exposure and the dashboard, each against a baseline.

    python benchmarks/run.py --size 1000000 [--repeats 3] [--stages ingest,exposure,dashboard]

Every figure is the median of ``--repeats`` runs (the minutes-long overlay of the
synthetic flood runs once); each run of a stage is a fresh process (so peak memory is
that stage's own). Ratios compare with a baseline run in the same invocation, so a noisy
machine still gives a fair comparison. The dashboard stage (``benchmarks/dashboard.py``)
needs Debian's chromium and is skipped without it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    CACHE,
    PART_ROWS,
    in_subprocess,
    machine_lines,
    median_figures,
    registry_files,
)
from benchmarks.dashboard import stage_dashboard  # noqa: E402

INGEST = """
import time, pathlib
from geo.pipeline import ingest_files
work = pathlib.Path({work!r})
started, cpu = time.perf_counter(), time.process_time()
ingest_files(work / "store.duckdb", [{path!r}], rejects_dir=work)
print("ingest_s", time.perf_counter() - started)
print("ingest_cpu_s", time.process_time() - cpu)
"""

RELEASE = """
import time, pathlib
from geo.pipeline import build_release, write_release
from geo.release import ReleasePolicy
work = pathlib.Path({work!r})
started, cpu = time.perf_counter(), time.process_time()
release = build_release(work / "store.duckdb", ReleasePolicy())
write_release(release, {out!r})
print("release_s", time.perf_counter() - started)
print("release_cpu_s", time.process_time() - cpu)
print("cells", release.groups["h3_cell"].nunique())
"""

# The naive baseline reads only the four columns it uses (a fairer, faster baseline than
# reading every column, and one that fits in memory at 100M).
NAIVE_INGEST = """
import time
import h3, pandas as pd
started = time.perf_counter()
frame = pd.read_{kind}({path!r}, {columns}=["nationality", "latitude", "longitude",
                                             "family_members"])
frame["cell"] = [h3.latlng_to_cell(lat, lon, 7) for lat, lon in
                 zip(frame["latitude"].to_numpy(), frame["longitude"].to_numpy())]
frame["persons"] = 1 + frame["family_members"]
groups = frame.groupby(["cell", "nationality"]).agg(cases=("persons", "size"),
                                                    persons=("persons", "sum"))
print("total_s", time.perf_counter() - started)
"""

BINNING = """
import time
import h3, numpy as np, polars as pl, polars_h3
frame = pl.scan_parquet({path!r}).select("latitude", "longitude").head(1_000_000).collect()
started = time.perf_counter()
frame.select(polars_h3.latlng_to_cell("latitude", "longitude", 8))
print("vectorised_s", time.perf_counter() - started)
lat, lon = frame["latitude"].to_numpy(), frame["longitude"].to_numpy()
started = time.perf_counter()
for a, b in zip(lat.tolist(), lon.tolist()):
    h3.latlng_to_cell(a, b, 8)
print("loop_s", time.perf_counter() - started)
print("rows", frame.height)
"""

EXPOSURE = """
import gc, time
import geopandas as gpd, numpy as np, pandas as pd, shapely
from geo.pipeline import compute_exposure
from geo.h3cells import cells_to_polygons
from geo.io.footprints import read_footprint
from geo.tools.classes import to_bands
from geo.pipeline import read_release
from benchmarks.footprints import footprint_classes
release = read_release({release!r})
classes = footprint_classes({name!r})
# Both methods build hexagons with polars-h3: load its plugin before timing either. Each
# timed run starts from a collected heap, so neither pays for a full garbage collection
# of the other's (or the imports') objects.
cells_to_polygons(release.groups["h3_cell"].iloc[:1].tolist())
gc.collect()
started = time.perf_counter()
ours = compute_exposure(release, classes, weighting="area").table
print("ours_s", time.perf_counter() - started)
gc.collect()
started = time.perf_counter()
cells = release.groups["h3_cell"].unique()
hexagons = gpd.GeoDataFrame({{"h3_cell": cells}}, geometry=cells_to_polygons(list(cells)),
                            crs=4326)
hexagons["cell_area"] = hexagons.area
pieces = gpd.overlay(hexagons, classes[["class_label", "class_rank", "geometry"]],
                     how="intersection", keep_geom_type=True)
pieces["share"] = (pieces.area / pieces["cell_area"]).clip(upper=1.0)
pieces = pieces.groupby(["h3_cell", "class_label", "class_rank"], as_index=False)["share"].sum()
pieces = pieces[pieces["share"] > 1e-9]
joined = release.groups.merge(pieces, on="h3_cell")
joined["inside"] = joined["share"] > 1 - 1e-9
for what in ("persons", "cases"):
    joined[what + "_low"] = joined[what].where(joined["inside"], 0)
    joined[what + "_estimate"] = joined[what] * joined["share"]
    joined[what + "_high"] = joined[what]
sums = [w + "_" + b for w in ("persons", "cases") for b in ("low", "estimate", "high")]
naive = joined.groupby(["class_label", "nationality"])[sums].sum().round().astype("int64")
print("naive_s", time.perf_counter() - started)
ours = ours.set_index(["hazard_class", "nationality"])[sums].sort_index()
naive = naive.sort_index()
same = ours.index.equals(naive.index)
exact = ["persons_low", "persons_high", "cases_low", "cases_high"]
print("identical_bounds", float(same and (ours[exact] == naive[exact]).all().all()))
difference = (ours["persons_estimate"] - naive["persons_estimate"]).abs().max() if same else -1
print("max_estimate_difference", float(difference))
print("cells", len(cells))
print("touching_cells", float(ours["persons_high"].gt(0).sum()))
"""


TARGET_RATE = 2e6  # registrations per second, ingest + release end to end
TARGET_RATIO = 1.5  # times the naive baseline
TARGET_MIB = 1024  # peak resident memory of ingest and of release


def ingest_and_release(path: Path, out: str, repeats: int) -> dict[str, float]:
    """Ingest then release in two fresh processes (each its own peak); median figures."""
    import shutil
    import statistics
    import tempfile

    runs = []
    for _ in range(repeats):
        work = tempfile.mkdtemp(dir=CACHE)
        try:
            ingest = in_subprocess(INGEST.format(work=work, path=str(path)))
            release = in_subprocess(RELEASE.format(work=work, out=out))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        runs.append(
            {
                **{k: v for k, v in ingest.items() if k != "peak_mib"},
                **{k: v for k, v in release.items() if k != "peak_mib"},
                "ingest_peak_mib": ingest["peak_mib"],
                "release_peak_mib": release["peak_mib"],
                "total_s": ingest["ingest_s"] + release["release_s"],
            }
        )
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def stage_ingest(size: int, repeats: int) -> None:
    parquet, csv = registry_files(size, csv=size <= PART_ROWS)
    out = str(CACHE / f"release_{size}.release.parquet")
    print(f"\n== ingest + release, {size:,} registrations ==")
    print(
        f"targets: ≥ {TARGET_RATE / 1e6:.1f} M registrations/s end to end (Parquet), ≥ "
        f"{TARGET_RATIO}× the naive baseline, peak memory of ingest and of release "
        f"< {TARGET_MIB} MiB each"
    )
    kinds = [("parquet", parquet, "columns")] + ([("csv", csv, "usecols")] if csv else [])
    for kind, path, columns in kinds:
        ours = ingest_and_release(path, out, repeats)
        naive = median_figures(
            NAIVE_INGEST.format(kind=kind, path=str(path), columns=columns), repeats
        )
        rate = size / ours["total_s"]
        print(
            f"{kind:8s} ours {ours['total_s']:7.2f} s (ingest {ours['ingest_s']:.2f} s, "
            f"{ours['ingest_cpu_s']:.2f} s CPU + release {ours['release_s']:.2f} s, "
            f"{ours['release_cpu_s']:.2f} s CPU) = {rate / 1e6:.2f} M registrations/s "
            f"({rate / TARGET_RATE:.2f}× the target)"
        )
        print(
            f"{'':8s} peak memory: ingest {ours['ingest_peak_mib']:.0f} MiB, release "
            f"{ours['release_peak_mib']:.0f} MiB (target < {TARGET_MIB}) | naive "
            f"{naive['total_s']:7.2f} s, peak {naive['peak_mib']:.0f} MiB | ratio to naive "
            f"{naive['total_s'] / ours['total_s']:.2f}× (target ≥ {TARGET_RATIO}×)"
        )
    if not csv:
        print(
            f"csv: not run at {size:,} (a {size // 10**6:,}M-row CSV is ~{size * 76 / 1e9:.0f} GB)"
        )
    print(f"release: {int(ours['cells']):,} released cells")
    binning = median_figures(BINNING.format(path=str(parquet)), repeats)
    vectorised = binning["rows"] / binning["vectorised_s"]
    loop = binning["rows"] / binning["loop_s"]
    print(
        f"binning alone: polars-h3 {vectorised / 1e6:.1f} M points/s vs h3 tight loop "
        f"{loop / 1e6:.2f} M points/s ({vectorised / loop:.1f}×)"
    )


def stage_exposure(size: int, repeats: int) -> None:
    release = CACHE / f"release_{size}.release.parquet"
    if not release.exists():
        stage_ingest(size, 1)
    print(f"\n== exposure, release from {size:,} registrations ==")
    for name in ("norcia", "jakarta", "synthetic_flood"):
        # The overlay of the synthetic flood takes minutes (2.5 at 1M, 13 at 10M): once.
        runs = 1 if name == "synthetic_flood" else repeats
        figures = median_figures(EXPOSURE.format(release=str(release), name=name), runs)
        print(
            f"{name:16s} ours {figures['ours_s']:7.3f} s | naive overlay "
            f"{figures['naive_s']:7.3f} s | ratio {figures['naive_s'] / figures['ours_s']:5.1f}× "
            f"| {int(figures['cells']):,} released cells, {int(figures['touching_cells'])} "
            f"class×nationality rows | identical bounds: "
            f"{'yes' if figures['identical_bounds'] else 'NO'}, largest estimate "
            f"difference {figures['max_estimate_difference']:.0f} persons"
        )


def help_seconds(runs: int = 5) -> float:
    """Return the median wall time of ``crisis-exposure --help`` in a fresh interpreter."""
    import statistics
    import subprocess

    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "geo.cli", "--help"],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            check=True,
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stages", default="ingest,exposure,dashboard")
    args = parser.parse_args()
    started = time.perf_counter()
    print("\n".join(machine_lines()))
    print(f"crisis-exposure --help: {help_seconds():.2f} s (median of 5; target < 0.5 s)")
    stages = {"ingest": stage_ingest, "exposure": stage_exposure, "dashboard": stage_dashboard}
    for stage in args.stages.split(","):
        stages[stage](args.size, args.repeats)
    print(f"\nbenchmark took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
