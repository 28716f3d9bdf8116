"""How accurate is the exposure estimate? Area share vs settlement weighting vs blend.

Runs the demo registry (SYNTHETIC, exact coordinates known) through the release and the
Norcia ShakeMap, and compares each weighting's estimate with the exact point-in-polygon
count of the released records, separately for records placed near settlements and for
the scattered ones. Prints median and worst |relative error| for class × nationality
rows with at least 100 true persons, and how many rows fall outside [low, high].

    python benchmarks/exposure_accuracy.py [--scale 0.2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo.accuracy import compare_with_truth, demo_truth_points, summarise_errors  # noqa: E402
from geo.io.footprints import read_footprint  # noqa: E402
from geo.release import ReleasePolicy  # noqa: E402
from geo.tools.classes import to_bands  # noqa: E402

NORCIA = (
    Path(__file__).resolve().parent.parent / "data/footprints/"
    "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.2)
    args = parser.parse_args()
    started = time.perf_counter()
    points = demo_truth_points(args.scale)
    classes = to_bands(read_footprint(NORCIA).classes)
    print(f"{len(points)} registrations, {points['persons'].sum()} persons (scale {args.scale})")
    for subset in ("settlement", "scattered", "all"):
        chosen = points if subset == "all" else points[points["placement"] == subset]
        comparison = compare_with_truth(chosen.drop(columns="placement"), classes, ReleasePolicy())
        print(f"\n{subset}: {len(chosen)} registrations")
        print(summarise_errors(comparison).to_string(index=False))
    print(f"\ntook {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
