"""The ingest's prepare stage (read, validate, bin, key), baseline vs this checkout.

Runs every measurement in a fresh process, alternating the baseline's code (``--before``,
default: the main checkout) and this checkout's, on the same registry files, and prints:

- per stage, one thread (the batches read, validated, binned and keyed in turn): CPU
  seconds of each stage (``time.process_time``, polars' own threads included) and M rows/s;
- the whole stage as ingest runs it (``geo.pipeline.ingest._prepared_batches``, the
  batches consumed as DuckDB would): wall and CPU seconds, M rows/s, peak resident memory
  (the child's VmHWM), and the ratio baseline / this checkout.

    python benchmarks/prepare_stage.py --size 1000000 [--size 10000000] [--before /work/main]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import PRINT_PEAK, ROOT, machine_lines, registry_files  # noqa: E402

STAGES = """
import sys, time
sys.path.insert(0, '.')
from geo.hashing import record_keys
from geo.identity import encode_identities
from geo.io.registrations import raw_batches, open_registration_file
from geo.validate import coordinates_to_cell, reference_point_of, validate_batch

header = open_registration_file(sys.argv[1])
cpu = dict.fromkeys(('read', 'validate', 'bin', 'keys'), 0.0)
raws = raw_batches(header, 250_000)
row, reference = 2, None
while True:
    started = time.process_time()
    item = next(raws, None)
    cpu['read'] += time.process_time() - started
    if item is None:
        break
    raw = item[0]
    started = time.process_time()
    reference = reference or reference_point_of(raw, header.column_map)
    batch = validate_batch(raw, header.column_map, row, header.file_name, reference)
    row += raw.height
    cpu['validate'] += time.process_time() - started
    started = time.process_time()
    binned = coordinates_to_cell(batch.accepted, 8)
    cpu['bin'] += time.process_time() - started
    started = time.process_time()
    record_keys(encode_identities(binned, b'i' * 32), b's' * 32).to_arrow()
    cpu['keys'] += time.process_time() - started
for name, seconds in cpu.items():
    print(name, seconds)
"""

PIPELINE = (
    """
import sys, time
sys.path.insert(0, '.')
from geo.io.registrations import open_registration_file
from geo.pipeline.ingest import _prepared_batches

wall, cpu = time.perf_counter(), time.process_time()
header = open_registration_file(sys.argv[1])
rows = 0
for batch, table in _prepared_batches(header, b's' * 32, b'i' * 32):
    rows += batch.rows_read
print('wall', time.perf_counter() - wall)
print('cpu', time.process_time() - cpu)
print('rows', rows)
"""
    + PRINT_PEAK
)


def run(code: str, root: Path, path: Path) -> dict[str, float]:
    """Run ``code`` in a fresh process from ``root`` (its ``geo``); return the printed figures."""
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=root
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in done.stdout.splitlines())
    }


def medians(code: str, roots: dict[str, Path], path: Path, repeats: int) -> dict[str, dict]:
    """Alternate the checkouts ``repeats`` times; return each one's median figures."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in roots}
    for _ in range(repeats):
        for name, root in roots.items():
            runs[name].append(run(code, root, path))
    return {
        name: {key: statistics.median(r[key] for r in found) for key in found[0]}
        for name, found in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, action="append", help="registrations (repeatable)")
    parser.add_argument("--before", type=Path, default=Path("/work/main"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--formats", default="parquet,csv")
    parser.add_argument("--measure", default="stages,pipeline", help="what to run")
    args = parser.parse_args()
    roots = {"before": args.before.resolve(), "after": ROOT}
    print("\n".join(machine_lines()))
    print(f"before: {roots['before']}  after: {roots['after']}  (median of {args.repeats})")
    for size in args.size or [1_000_000]:
        files = dict(zip(("parquet", "csv"), registry_files(size), strict=True))
        for fmt in args.formats.split(","):
            path, millions = files[fmt], size / 1e6
            print(f"\n{size:,} registrations from {fmt.upper()} ({path.name})")
            if "stages" in args.measure:
                print_stages(medians(STAGES, roots, path, args.repeats), millions)
            if "pipeline" in args.measure:
                print_pipeline(medians(PIPELINE, roots, path, args.repeats), millions)


def print_stages(stages: dict[str, dict], millions: float) -> None:
    """Print each stage's CPU seconds before and after, and the ratio."""
    print(f"  {'stage, one thread, CPU s':28s} {'before':>8s} {'after':>8s} {'ratio':>6s}")
    for stage in ("read", "validate", "bin", "keys"):
        b, a = stages["before"][stage], stages["after"][stage]
        print(f"  {stage:28s} {b:8.2f} {a:8.2f} {b / a:6.2f}")
    b, a = (sum(stages[n].values()) for n in ("before", "after"))
    print(
        f"  {'total':28s} {b:8.2f} {a:8.2f} {b / a:6.2f}"
        f"   ({millions / b:.2f} → {millions / a:.2f} M rows/s per CPU)"
    )


def print_pipeline(whole: dict[str, dict], millions: float) -> None:
    """Print the prepare stage's wall, CPU and peak memory before and after."""
    print(f"  {'as ingest runs it':28s} {'before':>8s} {'after':>8s} {'ratio':>6s}")
    for key, label in (("wall", "wall s"), ("cpu", "CPU s"), ("peak_mib", "peak MiB")):
        b, a = whole["before"][key], whole["after"][key]
        print(f"  {label:28s} {b:8.2f} {a:8.2f} {b / a:6.2f}")
    b, a = (millions / whole[n]["wall"] for n in ("before", "after"))
    print(f"  {'M rows/s (wall)':28s} {b:8.2f} {a:8.2f} {a / b:6.2f}")


if __name__ == "__main__":
    main()
