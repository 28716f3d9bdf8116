"""A release counted on Spark (local mode) beside the default path, at 1M (and 10M) records.

    python benchmarks/spark_release.py --sizes 1000000[,10000000] [--repeats 1] [--master local[*]]

Both paths start from the same seeded Parquet registry (``benchmarks/common.py``) and
publish a release under the default policy into a fresh store: the default path ingests
the file and releases from the store; the Spark path counts the file on Spark
(``--engine spark``) and keeps only the ledger. Each run is a fresh process (Spark's JVM
start included: that is what a user waits for); Spark's start and its count are also
printed apart. Both releases must have the same content hash. Peak memory is the Python
process's own (the JVM's is not counted: see the note printed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import CACHE, machine_lines, median_figures, registry_files  # noqa: E402

LOCAL = """
import tempfile, time, pathlib, shutil
from geo.pipeline import ingest_files, publish_release
from geo.release import ReleasePolicy
work = pathlib.Path(tempfile.mkdtemp(dir={cache!r}))
started = time.perf_counter()
ingest_files(work / "store.duckdb", [{path!r}], rejects_dir=work)
release = publish_release(work / "store.duckdb", ReleasePolicy(), work / "local.release.parquet")
print("total_s", time.perf_counter() - started)
print("hash", int(release.metadata["content_sha256"][:12], 16))
shutil.rmtree(work)
"""

SPARK = """
import tempfile, time, pathlib, shutil
from geo.io import spark_session
from geo.pipeline.lake_release import publish_lake_release
from geo.release import ReleasePolicy
work = pathlib.Path(tempfile.mkdtemp(dir={cache!r}))
started = time.perf_counter()
spark_session.start_spark({master!r})  # the session publish_lake_release then joins
spark_started = time.perf_counter()
release, report = publish_lake_release(work / "ledger.duckdb", {path!r}, ReleasePolicy(),
                                       work / "spark.release.parquet", master={master!r})
done = time.perf_counter()
print("total_s", done - started)
print("start_s", spark_started - started)
print("count_s", done - spark_started)
print("hash", int(release.metadata["content_sha256"][:12], 16))
shutil.rmtree(work)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--master", default="local[*]")
    args = parser.parse_args()
    started = time.perf_counter()
    print("\n".join(machine_lines()))
    for size in (int(s) for s in args.sizes.split(",")):
        parquet, _ = registry_files(size)
        local = median_figures(LOCAL.format(cache=str(CACHE), path=str(parquet)), args.repeats)
        spark = median_figures(
            SPARK.format(cache=str(CACHE), path=str(parquet), master=args.master), args.repeats
        )
        same = "yes" if local["hash"] == spark["hash"] else "NO"
        print(
            f"{size:>11,} registrations | default path {local['total_s']:7.1f} s "
            f"({size / local['total_s']:,.0f}/s, peak {local['peak_mib']:.0f} MiB) | "
            f"Spark {args.master} {spark['total_s']:7.1f} s (start {spark['start_s']:.1f} + "
            f"count and release {spark['count_s']:.1f}; {size / spark['total_s']:,.0f}/s, "
            f"driver Python peak {spark['peak_mib']:.0f} MiB) | Spark / default "
            f"{spark['total_s'] / local['total_s']:.1f}× | same content hash: {same}"
        )
    print("(the JVM's memory is Spark's own: spark.driver.memory, 1 GiB by default)")
    print(f"benchmark took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
