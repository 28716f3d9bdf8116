"""Keyed record hashing and ingest, before vs after, in the same run on the same machine.

Prints: the record-key HMAC's throughput at 1M rows (polars-hash, vectorised, against
Python's ``hmac`` in a loop with the key's pads precomputed); the ingest of the same
registry (Parquet) into a new store by the code in ``--before`` (default: the main
checkout) and by this checkout, with wall time, peak resident memory and the largest
size the spill folder reached (sampled every 50 ms), and how many files that could hold
raw record ids were left once it finished; then, into that store, a second export of the
same registry in which 1 % of the records changed (updated) and the rest are restated
(unchanged), as a steward's monthly full export would be.

    python benchmarks/store_ingest.py --size 1000000 [--before /work/main]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import PRINT_PEAK, ROOT, machine_lines, registry_files  # noqa: E402

INGEST = (
    """
import sys, time
from geo.pipeline import ingest_files
started = time.perf_counter()
ingest_files(sys.argv[1], [sys.argv[2]], rejects_dir=sys.argv[3])
print('seconds', time.perf_counter() - started)
"""
    + PRINT_PEAK
)


def hash_throughput(size: int) -> tuple[float, float]:
    """Return rows/s of the record keys: polars-hash (vectorised) and a hashlib loop."""
    import polars as pl

    from geo.hashing import record_keys

    frame = pl.DataFrame(
        {"source": ["benchmark"] * size, "record_id": [f"R{i:09d}" for i in range(size)]}
    )
    secret = hashlib.sha256(b"benchmark").digest()
    started = time.perf_counter()
    record_keys(frame, secret)
    vectorised = size / (time.perf_counter() - started)
    key = secret.hex().encode().ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    messages = [f"benchmark\x1f{r}".encode() for r in frame["record_id"]]
    started = time.perf_counter()
    for message in messages:
        digest = inner.copy()
        digest.update(message)
        final = outer.copy()
        final.update(digest.digest())
        final.digest()
    loop = size / (time.perf_counter() - started)
    return vectorised, loop


def folder_bytes(folder: Path, store_name: str) -> int:
    """Return the bytes in the store's spill folders (DuckDB's default and the private ones)."""
    total = 0
    for entry in folder.iterdir():
        if entry.is_dir() and entry.name.startswith((f"{store_name}.tmp", f".{store_name}.tmp")):
            for path in entry.rglob("*"):
                with contextlib.suppress(OSError):
                    total += path.stat().st_size
    return total


def update_file(registry: Path) -> Path:
    """Return the registry's next export: 1 record in 100 moved to another nationality, newer."""
    import polars as pl

    target = registry.with_name(registry.stem + ".update.parquet")
    if not target.exists():
        changed = pl.col("record_id").cast(pl.Int64) % 100 == 0
        pl.scan_parquet(registry).with_columns(
            pl.when(changed).then(pl.lit("ALB")).otherwise("nationality").alias("nationality"),
            pl.when(changed).then(pl.lit("2025-09-01")).otherwise("updated_at").alias("updated_at"),
        ).sink_parquet(target, row_group_size=100_000)
    return target


def run_ingest(code_root: Path, store: Path, registry: Path) -> dict[str, float]:
    """Ingest one file into ``store`` in a fresh process; return its seconds and peak."""
    run = subprocess.run(
        [sys.executable, "-c", INGEST, str(store), str(registry), str(store.parent)],
        cwd=code_root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(code_root)},
        check=False,
    )
    if run.returncode:
        raise RuntimeError(run.stderr[-2000:])
    figures = dict(line.split(" ", 1) for line in run.stdout.splitlines() if " " in line)
    return {"seconds": float(figures["seconds"]), "peak_mib": float(figures["peak_mib"])}


def ingest(code_root: Path, registry: Path, update: Path) -> dict[str, float]:
    """Ingest the registry into a new store, then its update, with the code in ``code_root``."""
    work = Path(tempfile.mkdtemp(prefix="store-bench-"))
    store = work / "s.duckdb"
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], folder_bytes(work, store.name))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    try:
        first = run_ingest(code_root, store, registry)
        wall = time.perf_counter() - started
    finally:
        done.set()
        sampler.join()
    left = folder_bytes(work, store.name)
    try:
        second = run_ingest(code_root, store, update)
        size_mib = store.stat().st_size / 2**20
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "wall": wall,
        **first,
        "spill_mib": peak[0] / 2**20,
        "left_mib": left / 2**20,
        "update_seconds": second["seconds"],
        "update_peak_mib": second["peak_mib"],
        "store_mib": size_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--before", type=Path, default=Path("/work/main"))
    parser.add_argument("--memory", default="384MB", help="DuckDB's memory budget")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ["CRISIS_EXPOSURE_DUCKDB_MEMORY"] = args.memory
    os.environ.setdefault("CRISIS_EXPOSURE_STEWARD_KEY", "be" * 32)
    for line in machine_lines():
        print(line)
    vectorised, loop = hash_throughput(args.size)
    print(
        f"record keys (HMAC-SHA256) at {args.size:,} rows: polars-hash {vectorised / 1e6:.2f} "
        f"M rows/s, hashlib loop {loop / 1e6:.2f} M rows/s ({vectorised / loop:.1f}x)"
    )
    parquet, _ = registry_files(args.size)
    update = update_file(parquet)
    print(f"ingest of {args.size:,} rows from Parquet, DuckDB memory {args.memory}:")
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for _ in range(args.repeats):  # alternated, so a busy machine weighs on both alike
        for name, root in (("before", args.before), ("after", ROOT)):
            runs[name].append(ingest(root, parquet, update))
    for name, root in (("before", args.before), ("after", ROOT)):
        figures = {k: statistics.median(r[k] for r in runs[name]) for k in runs[name][0]}
        print(
            f"  {name:6} ({root}), median of {args.repeats}: {figures['seconds']:.2f} s ingest "
            f"({args.size / figures['seconds'] / 1e6:.2f} M rows/s), {figures['wall']:.2f} s "
            f"with start-up, peak {figures['peak_mib']:.0f} MiB, spill folder up to "
            f"{figures['spill_mib']:.1f} MiB, {figures['left_mib']:.1f} MiB left after; "
            f"then the update (1 % changed) {figures['update_seconds']:.2f} s, peak "
            f"{figures['update_peak_mib']:.0f} MiB, store file {figures['store_mib']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
