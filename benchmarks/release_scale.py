"""Release at national scale: wall, CPU, peak memory of building and writing, before and after.

Each run is a fresh interpreter (peak memory is its VmHWM), on a store
ingested once per size from the benchmark registry. The baseline is the code of a git
ref (default: main before the release counted its audience once into a cube),
exported into a temporary folder and run on the same store, alternating with this
checkout, so both meet the same load. Prints the content hashes: they must be equal.

    python benchmarks/release_scale.py --size 1000000 --size 10000000 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import CACHE, PEAK_MIB, machine_lines, registry_files  # noqa: E402

BASELINE_REF = "35fd5f8"  # main before the one-scan cube (a DuckDB scan per grouping)

RUN = f"""
import json, os, sys, tempfile, time
wall, cpu = time.perf_counter(), time.process_time()
from geo.pipeline import build_release, write_release
from geo.release import ReleasePolicy
release = build_release(sys.argv[1], ReleasePolicy())
built_wall, built_cpu = time.perf_counter() - wall, time.process_time() - cpu
with tempfile.TemporaryDirectory() as folder:
    write_release(release, os.path.join(folder, "r.release.parquet"))
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps({{
    "wall_s": built_wall, "cpu_s": built_cpu, "written_wall_s": wall, "written_cpu_s": cpu,
    "peak_mib": {PEAK_MIB},
    "sha256": release.metadata["content_sha256"], "groups": len(release.groups),
    "rows": len(release.groups) + len(release.breakdowns),
}}))
"""


def store_of(size: int, folder: Path) -> Path:
    """Return a store of the benchmark registry of ``size`` (ingested once, then kept)."""
    path = folder / f"release_scale_{size}.duckdb"
    if not path.exists():
        from geo.pipeline import ingest_files

        parquet, _ = registry_files(size, csv=False)
        ingest_files(path, [parquet], rejects_dir=CACHE)
    return path


def export(ref: str, folder: Path) -> Path:
    """Write the tree of a git ref into ``folder`` (the baseline's code)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "geo"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def measure(code_root: Path, store: Path) -> dict:
    """Return one release's figures with the code under ``code_root``, in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    out = subprocess.run(
        [sys.executable, "-c", RUN, str(store)],
        cwd=code_root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    """Print the figures per size: median of the repeats, this checkout vs the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, action="append")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--baseline", default=BASELINE_REF, help="git ref of the baseline")
    parser.add_argument("--stores", type=Path, default=CACHE, help="folder of the stores")
    args = parser.parse_args()
    print("\n".join(machine_lines()))
    with tempfile.TemporaryDirectory() as folder:
        baseline = export(args.baseline, Path(folder))
        for size in args.size or [1_000_000]:
            store = store_of(size, args.stores)
            runs: dict[str, list[dict]] = {"before": [], "after": []}
            for _ in range(args.repeat):
                runs["before"].append(measure(baseline, store))
                runs["after"].append(measure(ROOT, store))
            print(f"\n== build_release, {size:,} registrations ({args.repeat} runs each) ==")
            figures = {}
            for name, results in runs.items():
                figures[name] = {
                    key: statistics.median(r[key] for r in results)
                    for key in ("wall_s", "cpu_s", "written_wall_s", "written_cpu_s", "peak_mib")
                }
                last = results[-1]
                print(
                    f"{name:6s} build wall {figures[name]['wall_s']:6.2f} s, CPU "
                    f"{figures[name]['cpu_s']:6.2f} s; + write wall "
                    f"{figures[name]['written_wall_s']:6.2f} s, CPU "
                    f"{figures[name]['written_cpu_s']:6.2f} s; "
                    f"peak {figures[name]['peak_mib']:5.0f} MiB;"
                    f" {last['groups']:,} groups, {last['rows']:,} rows, sha256 {last['sha256']}"
                )
            ratios = ", ".join(
                f"{key} ×{figures['before'][key] / figures['after'][key]:.2f}"
                for key in ("wall_s", "cpu_s", "written_wall_s", "written_cpu_s", "peak_mib")
            )
            same = runs["before"][-1]["sha256"] == runs["after"][-1]["sha256"]
            print(f"before / after: {ratios}; same content hash: {same}")


if __name__ == "__main__":
    main()
