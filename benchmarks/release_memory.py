"""Where a release's memory goes: peak resident memory per phase of build + write.

A sampling thread reads the process's resident memory every 10 ms while
``build_release`` and ``write_release`` run on a store; each phase (the functions
wrapped below) is labelled, and the peak seen in it printed in phase order, with the
process's own peak (VmHWM) and the content hash. Nested phases count for the inner one.

    python benchmarks/release_memory.py STORE.duckdb
    (stores: ``release_scale.py`` ingests them into its --stores folder)
"""

from __future__ import annotations

import functools
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _resident_mib() -> float:
    """Return the process's resident memory (VmRSS) in MiB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    """Print the peak resident memory of each phase of one release of the store."""
    phase, peaks, order = ["import"], {}, []

    def sample() -> None:
        while True:
            current, name = _resident_mib(), phase[-1]
            if name not in peaks:
                order.append(name)
            peaks[name] = max(peaks.get(name, 0.0), current)
            time.sleep(0.01)

    def label(owner: object, name: str, text: str) -> None:
        function = getattr(owner, name)

        @functools.wraps(function)
        def labelled(*args, **kwargs):
            phase.append(text)
            try:
                return function(*args, **kwargs)
            finally:
                phase.pop()

        setattr(owner, name, labelled)

    threading.Thread(target=sample, daemon=True).start()
    import geo.breakdowns  # noqa: F401
    import geo.io.release_file as release_file
    import geo.io.store_counts as store_counts
    import geo.io.store_reads as store_reads
    import geo.release as release_module
    import geo.release_frames as release_frames
    from geo.pipeline import build_release, write_release

    label(store_counts.StoreCounts, "nationality_totals", "count: nationality totals")
    label(store_reads, "confirmation_counts", "count: confirmed within")
    label(store_counts.StoreCounts, "base_counts", "count: cube, base table")
    label(release_module, "_placed", "roll-up: placement")
    label(release_module, "assign_published_cells", "roll-up: walk")
    label(store_counts.StoreCounts, "unit_counts", "count: breakdowns")
    label(release_module, "all_category_rows", "breakdown rows")
    label(release_module, "_noisy", "noise")
    label(release_module, "sorted_frame", "groups sorted")
    label(release_module, "_metadata", "metadata")
    label(release_module, "text_frame", "groups to pandas")
    label(release_frames.BreakdownParts, "add", "breakdowns: a part kept")
    label(release_frames.BreakdownParts, "frame", "breakdowns: gathered")
    label(release_file, "write_release", "write")
    cpu, wall = time.process_time(), time.perf_counter()
    phase.append("build (other)")
    release = build_release(sys.argv[1], release_module.ReleasePolicy())
    phase.append("write (other)")
    with tempfile.TemporaryDirectory() as folder:
        write_release(release, os.path.join(folder, "r.release.parquet"))
    phase.append("after")
    time.sleep(0.05)
    rows = len(release.groups) + len(release.breakdowns)
    print(
        f"CPU {time.process_time() - cpu:.1f} s, wall {time.perf_counter() - wall:.1f} s, "
        f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, "
        f"{rows:,} rows, sha256 {release.metadata['content_sha256']}"
    )
    for name in order:
        print(f"  {name:28s} {peaks[name]:6.0f} MiB")


if __name__ == "__main__":
    main()
