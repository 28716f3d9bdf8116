"""Outreach on a large raw registry against the Norcia ShakeMap: time, memory, agreement.

Prints, for the seeded benchmark registry (``benchmarks.common.make_registry``, 80 %
around Italian places) written as CSV and Parquet with SYNTHETIC contact and identifier
columns: the wall and CPU time (libraries imported before the clock starts, as for
the baseline; CPU time is the steadier figure on a shared machine) and peak resident
memory of ``run_outreach`` in a fresh process, the registrations listed, and a naive
baseline in the same run (pandas reads the whole file, geopandas ``sjoin`` of every
point with the footprint's classes, worst class per point): the two must list the same
records.

    python benchmarks/outreach.py --size 1000000 [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    CACHE,
    ROOT,
    machine_lines,
    make_registry,
    median_figures,
)

FOOTPRINT = ROOT / "data/footprints/italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"

OURS = """
import time
import geopandas, polars, geo.io.footprints, geo.io.contacts, geo.tools.outreach
from geo.pipeline import run_outreach
cpu = time.process_time()
started = time.perf_counter()
run = run_outreach([{raw!r}], {footprint!r}, {out!r})
print('seconds', time.perf_counter() - started)
print('cpu', time.process_time() - cpu)
print('written', run.written)
print('rows', run.rows_read)
import hashlib, polars as pl
ids = pl.read_csv({out!r}, columns=['record_id'], schema_overrides={{'record_id': pl.String}})
ids = ids['record_id'].sort().str.join('\\n').item()
print('digest', int(hashlib.sha256(ids.encode()).hexdigest()[:12], 16))
"""

NAIVE = """
import time
import geopandas as gpd, pandas as pd, pyarrow
from geo.io.footprints import read_footprint
cpu = time.process_time()
started = time.perf_counter()
frame = pd.read_{kind}({raw!r}{options})
classes = read_footprint({footprint!r}).classes
points = gpd.GeoDataFrame(
    frame, geometry=gpd.points_from_xy(frame['longitude'], frame['latitude']), crs=4326
)
joined = gpd.sjoin(points, classes, predicate='intersects')
worst = joined.sort_values('class_rank').groupby(level=0)['class_label'].last()
print('seconds', time.perf_counter() - started)
print('cpu', time.process_time() - cpu)
print('written', len(worst))
import hashlib
ids = '\\n'.join(sorted(frame.loc[worst.index, 'record_id'].astype(str)))
print('digest', int(hashlib.sha256(ids.encode()).hexdigest()[:12], 16))
"""


def raw_files(size: int) -> tuple[Path, Path]:
    """Return (csv, parquet) of the registry with SYNTHETIC contact columns, written once."""
    import numpy as np
    import polars as pl

    CACHE.mkdir(parents=True, exist_ok=True)
    csv, parquet = CACHE / f"outreach_{size}.csv", CACHE / f"outreach_{size}.parquet"
    if not csv.exists() or not parquet.exists():
        rng = np.random.default_rng(11)
        frame = make_registry(size).with_columns(
            pl.format("SYNTHETIC Person {}", pl.col("record_id")).alias("full_name"),
            pl.Series("phone", [f"+39 000 {v:07d}" for v in rng.integers(0, 10**7, size)]),
            pl.format("synthetic.{}@example.org", pl.col("record_id")).alias("email"),
            pl.Series("preferred_language", rng.choice(["it", "ro", "uk", "ar", "sq"], size)),
            pl.lit("SYNTHETIC note, some free text a registry keeps").alias("notes"),
        )
        frame.write_csv(csv)
        frame.write_parquet(parquet)
    return csv, parquet


def main() -> None:
    """Run outreach and the naive baseline on CSV and Parquet; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("\n".join(machine_lines()))
    csv, parquet = raw_files(args.size)
    print(
        f"registry: {args.size:,} rows; CSV {csv.stat().st_size / 2**20:,.0f} MiB, "
        f"Parquet {parquet.stat().st_size / 2**20:,.0f} MiB; footprint {FOOTPRINT.name}"
    )
    for kind, raw in (("csv", csv), ("parquet", parquet)):
        out = CACHE / f"outreach_{args.size}_{kind}.contacts.csv"
        ours = median_figures(
            OURS.format(raw=str(raw), footprint=str(FOOTPRINT), out=str(out)), args.repeats
        )
        naive = median_figures(
            NAIVE.format(
                kind=kind,
                raw=str(raw),
                footprint=str(FOOTPRINT),
                options=", dtype={'record_id': str}" if kind == "csv" else "",
            ),
            args.repeats,
        )
        print(
            f"{kind}: outreach {ours['seconds']:.2f} s (CPU {ours['cpu']:.2f} s), "
            f"peak {ours['peak_mib']:,.0f} MiB, "
            f"{ours['written']:,.0f} listed of {ours['rows']:,.0f} "
            f"({ours['rows'] / ours['seconds'] / 1e6:.2f} M rows/s) | naive read-all + sjoin "
            f"{naive['seconds']:.2f} s (CPU {naive['cpu']:.2f} s), "
            f"peak {naive['peak_mib']:,.0f} MiB, "
            f"{naive['written']:,.0f} inside | same records: "
            f"{'yes' if ours['digest'] == naive['digest'] else 'NO'}"
        )


if __name__ == "__main__":
    main()
