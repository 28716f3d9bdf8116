"""The offline base layer for every page's map: land, outlines, place names (cached).

Countries come from the package's Natural Earth file, finer outlines from
``data/basemap``, place names from GeoNames (the most populous in the view); see
:mod:`geo.viz.basemap`. No tile, no network.
"""

from __future__ import annotations

import pydeck as pdk
import streamlit as st

from app_pages import common
from geo.h3cells import cell_boundaries, cells_to_ints
from geo.pipeline.exposure import country_outlines, place_names
from geo.release import Release
from geo.viz.basemap import base_layers, place_layers, spaced_places

PLACES_SHOWN = 15
SPACING_SHARE = 0.08  # names at least 8 % of the view apart


def _rounded(bounds: tuple[float, ...]) -> tuple[float, float, float, float]:
    """Bounds rounded outwards to 0.01° (a stable cache key)."""
    west, south, east, north = (float(b) for b in bounds)
    return (
        round(west - 0.005, 2),
        round(south - 0.005, 2),
        round(east + 0.005, 2),
        round(north + 0.005, 2),
    )


# Shared layer objects (cache_resource, never copied): a rerun neither unpickles them nor
# writes their JSON again (app_pages.deck_map writes each layer object's JSON once).
# Callers build new lists around them and never change a layer.
@st.cache_resource(show_spinner=False, max_entries=16)
def _land(bounds: tuple[float, float, float, float], outlines: tuple, fill: bool) -> tuple:
    return tuple(base_layers(country_outlines(bounds), [path for _, path in outlines], fill))


@st.cache_resource(show_spinner=False, max_entries=32)
def _places(bounds: tuple[float, float, float, float], limit: int) -> tuple:
    west, south, east, north = bounds
    spacing = max(east - west, north - south) * SPACING_SHARE
    return tuple(place_layers(spaced_places(place_names(bounds, limit * 20), spacing, limit)))


def land_layers(bounds: tuple[float, ...]) -> list[pdk.Layer]:
    """Return land and outlines around ``bounds`` (west, south, east, north), drawn first."""
    paths = sorted(common.BASEMAP_DIR.glob("*.geojson")) if common.BASEMAP_DIR.is_dir() else []
    outlines = tuple((common.source_file(p).sha256, str(p)) for p in paths)
    west, south, east, north = _rounded(bounds)
    pad_x, pad_y = (east - west) * 0.5 + 1, (north - south) * 0.5 + 1
    around = _rounded((west - pad_x, south - pad_y, east + pad_x, north + pad_y))
    return list(_land(around, outlines, common.settings().basemap_url is None))


def place_name_layers(bounds: tuple[float, ...], limit: int = PLACES_SHOWN) -> list[pdk.Layer]:
    """Return the ``limit`` most populous places in ``bounds`` as labels, drawn last."""
    return list(_places(_rounded(bounds), limit))


def attribution() -> str:
    """Return the base layer's credit line."""
    from geo.pipeline.exposure import basemap_attribution

    return basemap_attribution()


@st.cache_resource(show_spinner=False, max_entries=32)
def release_bounds(content_sha256: str, _release: Release) -> tuple[float, float, float, float]:
    """Return the (west, south, east, north) of every released cell (once per release)."""
    cells = list(_release.groups["h3_cell"].unique())
    if not cells:
        return (12.0, 42.0, 13.0, 43.0)
    corners, _ = cell_boundaries(cells_to_ints(cells))
    west, south = corners.min(axis=0)
    east, north = corners.max(axis=0)
    return (float(west), float(south), float(east), float(north))
