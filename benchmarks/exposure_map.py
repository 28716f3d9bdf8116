"""What the Exposure page's map costs: cells per footprint, seconds, payload size.

On the demo release (SYNTHETIC central Italy) for the shipped Norcia ShakeMap (banded
and cumulative) and the Jakarta flood: the exposure table's time, the extra time of the
per-cell figures the map draws (geo.pipeline.exposure.exposure_cells) and of the deck,
the cells drawn and the deck's JSON size (what Streamlit sends to the browser).

    .venv/bin/python benchmarks/exposure_map.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app_pages.deck_map import deck_arguments  # noqa: E402
from benchmarks.common import machine_lines  # noqa: E402
from geo import pipeline  # noqa: E402
from geo.pipeline.exposure import country_outlines, exposure_cells, place_names  # noqa: E402
from geo.viz.basemap import base_layers, place_layers, spaced_places  # noqa: E402
from geo.viz.exposure_map import exposure_deck, exposure_map  # noqa: E402

FOOTPRINTS = {
    "Norcia MMI": ROOT / "data/footprints/italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json",
    "Norcia PGA": ROOT / "data/footprints/italy_norcia_20161030_M6.5_ingv8863681_cont_pga.json",
}


def main() -> None:
    """Print one line per footprint and view."""
    for line in machine_lines():
        print(line)
    release = pipeline.read_release(ROOT / "data/demo/central_italy.release.parquet")
    print("footprint | view | table s | cells s | deck s | cells drawn | deck JSON MB")
    for name, path in FOOTPRINTS.items():
        footprints = pipeline.read_footprints([path])
        for cumulative in (False, True):
            started = time.perf_counter()
            run = pipeline.run_exposure(release, footprints, cumulative=cumulative)
            table_s = time.perf_counter() - started
            started = time.perf_counter()
            cells = exposure_cells(run, release)
            cells_s = time.perf_counter() - started
            started = time.perf_counter()
            drawn = exposure_map(
                run.classes,
                cells.by_cell,
                cells.by_nationality,
                cells.worst(cumulative),
                cumulative,
            )
            base = base_layers(
                country_outlines(drawn.bounds), sorted((ROOT / "data/basemap").glob("*.geojson"))
            )
            places = place_layers(spaced_places(place_names(drawn.bounds, 300), 0.3, 15))
            arguments = deck_arguments(exposure_deck(base + drawn.layers + places, drawn.view))
            payload = json.dumps(arguments)  # what the map component sends the browser
            deck_s = time.perf_counter() - started
            view = "cumulative" if cumulative else "banded"
            print(
                f"{name} | {view} | {table_s:.2f} | {cells_s:.2f} | {deck_s:.2f} | "
                f"{drawn.cells:,} | {len(payload) / 1e6:.2f}"
            )


if __name__ == "__main__":
    main()
