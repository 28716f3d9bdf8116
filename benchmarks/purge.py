"""Freshness at scale: a windowed release, a purge and an erasure on a synthetic registry.

Prints: the ingest time; the release of the whole registry and of a 365-day window
(seconds, cases in the audience); the purge of registrations older than 365 days
(seconds, of which the store file's rewrite, registrations deleted, file size before and
after); one erasure (seconds: mostly the rewrite); and whether the erased record's key
bytes are anywhere in the rewritten file. Confirmation dates are spread uniformly over
three years. Keys come from a fixed benchmark steward key (never a real one).

    python benchmarks/purge.py --size 200000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine_lines, make_registry  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200_000)
    args = parser.parse_args()
    os.environ.setdefault("CRISIS_EXPOSURE_STEWARD_KEY", "be" * 32)
    import polars as pl

    from geo import pipeline
    from geo.hashing import record_keys
    from geo.io import store, store_open
    from geo.release import ReleasePolicy

    print("\n".join(machine_lines()))
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        frame = make_registry(args.size).with_columns(
            (pl.date(2026, 2, 1) - pl.duration(days=pl.int_range(0, args.size) % 1095))
            .cast(pl.String)
            .alias("updated_at")
        )
        raw = folder / "registry.parquet"
        frame.write_parquet(raw)
        path = folder / "store.duckdb"
        started = time.perf_counter()
        pipeline.ingest_files(path, [raw], rejects_dir=folder)
        print(f"ingest of {args.size:,} registrations: {time.perf_counter() - started:.1f} s")
        policy = ReleasePolicy()
        for name, chosen in (
            ("whole registry", policy),
            ("365-day window", ReleasePolicy(as_of="2026-02-01", confirmed_within=365)),
        ):
            started = time.perf_counter()
            release = pipeline.build_release(path, chosen)
            seconds = time.perf_counter() - started
            block = release.metadata["confirmed_within_months"]
            print(
                f"release, {name}: {seconds:.1f} s; confirmed within 6/12/24 months "
                f"{block['6']:,} / {block['12']:,} / {block['24']:,} of {block['audience']:,}"
            )
        size_before = path.stat().st_size
        rewrite = []
        original = store_open.compact_store

        def timed(target):
            started = time.perf_counter()
            original(target)
            rewrite.append(time.perf_counter() - started)

        store_open.compact_store = timed
        started = time.perf_counter()
        done = pipeline.purge_store(path, 365, "2026-02-01")
        seconds = time.perf_counter() - started
        print(
            f"purge older than 365 days: {seconds:.1f} s (file rewrite {rewrite[-1]:.1f} s), "
            f"{done['records']:,} registrations deleted; file {size_before / 2**20:.1f} MiB "
            f"→ {path.stat().st_size / 2**20:.1f} MiB"
        )
        kept = frame.filter(pl.col("updated_at") >= "2025-02-01").row(0, named=True)
        started = time.perf_counter()
        pipeline.erase_registration(path, kept["source"], kept["record_id"])
        seconds = time.perf_counter() - started
        print(f"erase one registration: {seconds:.1f} s (file rewrite {rewrite[-1]:.1f} s)")
        keyed = record_keys(
            pl.DataFrame({"source": [kept["source"]], "record_id": [kept["record_id"]]}),
            store.record_key_secret(),
        ).row(0, named=True)
        key = ((int(keyed["key_hi"]) << 64) | int(keyed["key_lo"])).to_bytes(16, "little")
        print(f"erased key bytes found in the store file: {path.read_bytes().count(key)}")


if __name__ == "__main__":
    main()
