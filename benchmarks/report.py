"""Wall time of ``crisis-exposure report`` against ``exposure`` on the demo (Norcia ShakeMap).

Each command runs in a fresh process (``python -m geo.cli``, from the checkout), so the
figure is what a user waits for: imports, reading, the exposure, the headline's second
view, the map and the PDF. Prints medians over ``--repeats`` runs, user CPU too (the
machine may be shared), and the PDF's size.

    .venv/bin/python benchmarks/report.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "data" / "demo" / "central_italy.release.parquet"
NORCIA = ROOT / "data" / "footprints" / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"


def timed(args: list[str]) -> tuple[float, float]:
    """Return (wall, user+system CPU of the child) in seconds for one CLI run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "geo.cli", *args], cwd=ROOT, check=True, capture_output=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    common = ["--release", str(RELEASE), "--hazard", str(NORCIA)]
    with tempfile.TemporaryDirectory() as folder:
        runs = {
            "exposure (CSV)": ["exposure", *common, "--out", f"{folder}/t.csv"],
            "report (PDF)": ["report", *common, "--out", f"{folder}/r.pdf"],
            "report (HTML)": ["report", *common, "--out", f"{folder}/r.html"],
        }
        for name, args in runs.items():
            figures = [timed(args) for _ in range(repeats)]
            wall = statistics.median(f[0] for f in figures)
            cpu = statistics.median(f[1] for f in figures)
            print(f"{name:16s} wall {wall:6.1f} s (median of {repeats}), CPU {cpu:6.1f} s")
        size = os.path.getsize(f"{folder}/r.pdf") / 1024
        print(f"PDF size {size:.0f} KiB, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
