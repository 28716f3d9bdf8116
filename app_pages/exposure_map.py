"""The Exposure page's map: footprint classes, exposed cells, ShakeMap edge, offline base.

The page calls :func:`show_exposure_map` with its run; the layers come from
:mod:`geo.viz.exposure_map` and :mod:`geo.viz.basemap` (pure), over the run's figures
per cell (:func:`geo.pipeline.exposure.exposure_cells`: the table's sums, per cell).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app_pages import basemap, common
from app_pages.deck_map import deck_map
from geo.pipeline import ExposureRun
from geo.pipeline.exposure import exposure_cells
from geo.release import Release
from geo.viz.basemap import admin_layer
from geo.viz.exposure_map import exposure_deck, exposure_map
from geo.viz.focal_points import focal_points_layer
from geo.viz.layers import MAP_HEIGHT_PX
from geo.viz.legends import legend_html


@st.cache_data(show_spinner=False, max_entries=16)
def _cells(key: tuple, population: str | None, _run: ExposureRun, _release: Release) -> Any:
    """Return the run's exposure per cell (cached on the run's own cache key)."""
    return exposure_cells(_run, _release, population)


def show_exposure_map(
    run: ExposureRun,
    release: Release,
    key: tuple,
    population: str | None = None,
    admin: Any = None,
) -> None:
    """Draw the exposure map, its legends and credits.

    ``key`` identifies the run (the arguments of ``common.run_exposure``);
    ``population`` is the grid path of a population-weighted run; ``admin`` the
    boundaries the run was broken down by (drawn as outlines), or None.
    """
    with st.spinner("Drawing the exposed cells…"):
        cells = common.guarded("drawing the exposure map", _cells, key, population, run, release)
    if cells is None:
        return
    cumulative = run.exposure.cumulative
    drawn = exposure_map(
        run.classes,
        cells.by_cell,
        cells.by_nationality,
        cells.worst(cumulative),
        cumulative,
        width=common.map_width(),
    )
    layers = basemap.land_layers(drawn.bounds)
    if admin is not None:
        layers.append(admin_layer(admin))
    layers += drawn.layers + basemap.place_name_layers(drawn.bounds)
    points = st.session_state.get("profile_focal_points")  # set by the profile section
    if points is not None and len(points):
        layers.append(focal_points_layer(points))
    deck_map(
        exposure_deck(layers, drawn.view),
        height=MAP_HEIGHT_PX,
        key="exposure_cells_map",
        alt="Map of the exposed released cells, coloured by the worst hazard class they "
        "reach and shaded by persons",
        tiles=common.settings().basemap_url,
    )
    legend = st.columns([3, 2])
    legend[0].markdown(
        legend_html("Hazard class (cells: the worst class they reach)", drawn.class_legend),
        unsafe_allow_html=True,
    )
    legend[1].markdown(
        legend_html("Persons per cell inside the footprint (estimate)", drawn.shade_legend),
        unsafe_allow_html=True,
    )
    notes = [
        f"{drawn.cells:,} exposed cells. A hexagon's colour is the worst class it reaches, its "
        "shade how many persons it holds inside the footprint (estimate; lighter is fewer). "
        "Hover over a hexagon for its persons per class and nationality, with the range."
    ]
    if drawn.map_edge:
        notes.append(
            "The dashed frame is the ShakeMap's map edge: the shaking beyond the lowest "
            "contour is only known to be lower, out to that edge; it is not a hazard zone."
        )
    notes.append(basemap.attribution())
    st.caption(" ".join(notes))
