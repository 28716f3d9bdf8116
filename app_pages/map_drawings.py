"""The Map page's cells under each filter, drawn once and shared by every session.

A drawing is what the page shows of one filter: its totals, colour bins and the cell
layers written as the map component sends them (:mod:`app_pages.deck_map`). One
background worker prepares a release's breakdown filters while the browser draws the
first map, then draws every breakdown category of the whole release: the first filter a
user picks sends layers already written (polars works outside the GIL, so the worker
does not hold up pages).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import streamlit as st

from app_pages.deck_map import layer_json
from geo.release import Release
from geo.viz.cells import (
    BREAKDOWN_FILTERS,
    MAX_MAP_CELLS,
    MapCells,
    MapSource,
    release_to_map_cells,
    release_to_map_source,
    with_breakdowns,
)
from geo.viz.layers import cells_to_layers
from geo.viz.legends import count_bins

_PREPARER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crisis-exposure-map")


@dataclass(frozen=True)
class CellDrawing:
    """Cells to draw under one filter: their totals, colour bins and layers.

    ``layers`` are the cell layers' JSON (:func:`app_pages.deck_map.layer_json`), what
    the component sends. Neither the pydeck layers (their rows as Python dicts, five
    times the JSON's memory) nor the cells' frame are kept: a drawing holds what the
    page shows, about 1 MB at 10M registrations.
    """

    persons: int  # sum of the drawn cells' released persons
    cases: int  # and of their released cases
    cells: int  # hexagons drawn
    groups_shown: int
    groups_not_available: int
    released_cells: int
    display_resolution: int | None  # see MapCells
    edges: list[int]  # the persons' colour bins
    layers: tuple[str, ...]


def drawing_of(shown: MapCells) -> CellDrawing:
    """Return the drawing of ``shown``: its totals, colour bins and layers, written."""
    cells = shown.cells
    edges = count_bins(cells["persons"])
    return CellDrawing(
        persons=int(cells["persons"].sum()),
        cases=int(cells["cases"].sum()),
        cells=len(cells),
        groups_shown=shown.groups_shown,
        groups_not_available=shown.groups_not_available,
        released_cells=shown.released_cells,
        display_resolution=shown.display_resolution,
        edges=edges,
        layers=tuple(layer_json(layer) for layer in cells_to_layers(cells, edges)),
    )


def wait_for_map_preparation() -> None:
    """Wait until the background worker has prepared everything asked of it so far."""
    _PREPARER.submit(lambda: None).result()


@st.cache_resource(show_spinner=False, max_entries=8)
def map_groups(sha256: str, _release: Release) -> MapSource:
    """Return the release's groups as the unfiltered map reads them (once per release)."""
    return release_to_map_source(_release, dimensions=())


@st.cache_resource(show_spinner=False, max_entries=8)
def map_breakdowns(sha256: str, _release: Release) -> Future:
    """Start preparing the release's map filters in the background; return its future.

    The future's result is the :class:`MapSource` with every breakdown filter, sharing
    :func:`map_groups`' groups.
    """
    return _PREPARER.submit(with_breakdowns, map_groups(sha256, _release), _release)


@st.cache_resource(show_spinner=False, max_entries=8)
def map_categories(sha256: str, _release: Release) -> Future:
    """Start drawing every breakdown category of the whole release in the background.

    The future's result maps ``(dimension, category)`` to the drawing the Map page shows
    for it with every nationality and the default hexagon limit: the first filter a user
    picks. Each took 0.17 s at 10M registrations to count and 20 ms to write; the nine
    of them, 1.7 s of the background worker after the first map.
    """
    breakdowns = map_breakdowns(sha256, _release)

    def draw_every_category() -> dict[tuple[str, str], CellDrawing]:
        source = breakdowns.result()
        return {
            (dimension, category): drawing_of(
                release_to_map_cells(source, (), dimension, category, MAX_MAP_CELLS)
            )
            for dimension, categories in BREAKDOWN_FILTERS.items()
            for category in categories
        }

    return _PREPARER.submit(draw_every_category)


@st.cache_resource(show_spinner=False, max_entries=32)
def map_drawing(
    sha256: str,
    nationalities: tuple[str, ...],
    dimension: str | None,
    category: str | None,
    max_cells: int | None,
    _release: Release,
) -> CellDrawing:
    """Return the drawing of the release with this hash under the map's filters.

    Shared, not copied (callers only read it).
    """
    if dimension is None:
        source = map_groups(sha256, _release)
    else:
        if not nationalities and max_cells == MAX_MAP_CELLS:
            drawn = map_categories(sha256, _release)
            if drawn.done() and drawn.exception() is None:
                return drawn.result()[(dimension, category)]
        source = map_breakdowns(sha256, _release).result()
    return drawing_of(release_to_map_cells(source, nationalities, dimension, category, max_cells))
