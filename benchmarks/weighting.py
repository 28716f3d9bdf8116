"""Which within-cell weighting should exposure estimates use: area, settlement, blend, population?

Prints, per scenario and weighting, the median and worst |relative error| of the
estimate against the exact truth (point in polygon of the released registrations) for
class × nationality rows with at least ``--min-persons`` true persons, and how many
rows fall outside [low, high]. Every release is the default policy (res 7, k 10,
keyed noise). Scenarios (SYNTHETIC, see ``demo/weighting.py``):

- Norcia bands over the demo registry, its settlement and scattered parts; the
  population grid is GeoNames places spread over 2 km (no other grid exists for it);
- a tsunami strip 400 m deep along the Abruzzo coast over people who crowd the coast;
  grids: the one they were drawn from, a noisy one, one 4 times coarser;
- Norcia bands over people drawn from a generated clustered grid unrelated to GeoNames;
  grids: the same, a noisy one (log-normal σ 0.7 per pixel), one 4 times coarser (1 km).

    python benchmarks/weighting.py [--scale 0.2] [--cases 60000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from demo.accuracy import compare_with_truth, demo_truth_points  # noqa: E402
from demo.weighting import (  # noqa: E402
    coarser_grid,
    coastal_world,
    generated_world,
    geonames_grid,
    noisy_grid,
    sample_people,
)
from geo.io.footprints import read_footprint  # noqa: E402
from geo.release import ReleasePolicy  # noqa: E402
from geo.tools.classes import to_bands  # noqa: E402

NORCIA = (
    Path(__file__).resolve().parent.parent / "data/footprints/"
    "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
)
PLAIN = ("area", "settlement", "blend")


def errors(comparison: pd.DataFrame, min_persons: int) -> pd.DataFrame:
    """Return per weighting: rows compared, median and worst |relative error|, misses."""
    outside = (comparison["persons_true"] < comparison["persons_low"]) | (
        comparison["persons_true"] > comparison["persons_high"]
    )
    big = comparison[comparison["persons_true"] >= min_persons]
    error = big["relative_error"].abs()
    summary = error.groupby(big["weighting"]).agg(["size", "median", "max"])
    summary.columns = ["rows", "median", "worst"]
    summary["outside"] = outside.groupby(comparison["weighting"]).sum()
    return summary


def scenario(points, classes, grids: dict[str, Path], min_persons: int) -> pd.DataFrame:
    """Return the error summary of every weighting, the population one per grid."""
    policy = ReleasePolicy()
    rows = [errors(compare_with_truth(points, classes, policy, PLAIN), min_persons)]
    for name, path in grids.items():
        comparison = compare_with_truth(points, classes, policy, ("population",), path)
        comparison["weighting"] = f"population ({name})"
        rows.append(errors(comparison, min_persons))
    return pd.concat(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.2, help="demo registry scale")
    parser.add_argument("--cases", type=int, default=60_000, help="cases per generated world")
    parser.add_argument("--min-persons", type=int, default=100)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    norcia = to_bands(read_footprint(NORCIA).classes)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        demo = demo_truth_points(args.scale)
        bounds = tuple(norcia.total_bounds + np.array([-0.5, -0.5, 0.5, 0.5]))
        geonames = {"GeoNames 2 km": geonames_grid(bounds).write(folder / "geonames.tif")}
        for part in ("settlement", "scattered"):
            chosen = demo[demo["placement"] == part].drop(columns="placement")
            results[f"Norcia, demo {part}"] = scenario(chosen, norcia, geonames, args.min_persons)

        grid, strip = coastal_world(rng)
        people = sample_people(grid, args.cases // 3, rng)
        grids = {
            "exact grid": grid.write(folder / "coast.tif"),
            "noisy grid": noisy_grid(grid, rng).write(folder / "coast_noisy.tif"),
            "coarser grid": coarser_grid(grid).write(folder / "coast_coarse.tif"),
        }
        results["coastal strip 400 m"] = scenario(people, strip, grids, args.min_persons)

        grid = generated_world(rng, norcia)
        people = sample_people(grid, args.cases, rng)
        grids = {
            "exact grid": grid.write(folder / "field.tif"),
            "noisy grid": noisy_grid(grid, rng).write(folder / "field_noisy.tif"),
            "coarser grid": coarser_grid(grid).write(folder / "field_coarse.tif"),
        }
        results["Norcia, generated grid"] = scenario(people, norcia, grids, args.min_persons)

    table = pd.concat(results, names=["scenario", "weighting"]).reset_index()
    pd.set_option("display.width", 160)
    print(
        table.to_string(
            index=False,
            formatters={"median": "{:.1%}".format, "worst": "{:.1%}".format},
        )
    )
    print(f"\ntook {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
