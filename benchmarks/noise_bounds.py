"""A first noisy exposure's margins on a busy machine: numpy's sum against OpenBLAS's dot.

    python benchmarks/noise_bounds.py

An exposure of a noisy release widens every low and high by the bound of its sum's noise
(``geo.noise.noise_bound``, exact up to 4,096 summed figures); a 10M release's first
exposure on the Norcia contours asks for ~850 of them. The baseline, run in the same
process, is the same search with ``np.dot``, which OpenBLAS splits across threads that
spin while they wait. Each is timed with 0, 1 and 2 other processes keeping the cores
busy, as a dashboard server's map work and another session do.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine_lines  # noqa: E402
from geo import noise  # noqa: E402

# Sums of 1 to 4,096 figures at a 10M release's two scales (cases, persons).
SIZES = list(range(1, 300)) + list(range(300, 4097, 7))
SCALES = (3.3333333333333335, 6.666666666666667)
BUSY = "while True: pass"


def bounds_seconds() -> float:
    """Return the seconds to compute every bound once (the cache emptied first)."""
    noise.noise_bound.cache_clear()
    started = time.perf_counter()
    for scale in SCALES:
        for size in SIZES:
            noise.noise_bound(size, scale, 0.99)
    return time.perf_counter() - started


def with_blas_dot() -> float:
    """Return :func:`bounds_seconds` with ``np.dot`` in the search (the baseline)."""
    ours = noise._dot
    noise._dot = lambda left, right: float(np.dot(left, right))
    try:
        return bounds_seconds()
    finally:
        noise._dot = ours


def main() -> None:
    print("\n".join(machine_lines()))
    print(f"{len(SIZES) * len(SCALES)} bounds: sums of 1 to 4,096 figures, 2 scales")
    for busy in (0, 1, 2):
        burners = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(busy)]
        try:
            time.sleep(0.3)
            ours = bounds_seconds()
            baseline = with_blas_dot()
        finally:
            for burner in burners:
                burner.kill()
        print(
            f"{busy} other busy processes: numpy sum {ours:6.2f} s | "
            f"BLAS dot {baseline:6.2f} s | ratio {ours / baseline:5.2f}×"
        )


if __name__ == "__main__":
    main()
