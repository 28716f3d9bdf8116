"""pydeck layers, map views and the deck for the dashboard's maps (no Streamlit).

:func:`cells_to_layers` draws the map cells (:mod:`geo.viz.cells`) as one flat
``H3HexagonLayer`` per resolution and colour bin, coarsest first, with a thicker outline
for rolled-up cells; colours come from :mod:`geo.viz.legends`. Hazard classes are drawn
as outlines over them (:func:`classes_to_layer`). The offline base layer (:mod:`geo.viz.basemap`)
draws the shipped boundaries (``data/basemap``, derived from the ISTAT region limits by
:func:`regions_to_basemap`), so the map needs no network unless a tile URL is set
(drawn by the dashboard's map component).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import geopandas as gpd
import pandas as pd
import polars as pl
import pydeck as pdk
import shapely

from geo.footprint_classes import classes_are_ordered
from geo.h3cells import cell_boundaries, cells_to_ints
from geo.viz.cells import MAP_COLUMNS
from geo.viz.legends import PERSONS_PALETTE, LegendEntry, bin_indices, class_colours

CELL_ALPHA = 235
COARSE_ALPHA = 140
LAND_FILL = (242, 240, 233, 255)
COUNTRY_LINE = (90, 90, 90, 255)
REGION_LINE = (150, 150, 150, 255)
DISPLAY_TOLERANCE_DEG = 0.002
BASEMAP_TOLERANCE_DEG = 0.01
MAP_WIDTH_PX = 1000
MAP_HEIGHT_PX = 560
# A drawn cell's fields under one-letter names. Streamlit sends the whole deck again on
# every rerun and the browser parses it with JSON5 (0.6-0.7 s of a 2.3 s filter change
# at 10M registrations), so the full names, repeated in each of ~9,000 cells, were
# better than a fifth of its bytes. The resolution is the layer's, not each cell's.
CELL_FIELDS = {"h3_cell": "h", "persons": "p", "cases": "c", "nationalities": "n"}


def filter_scope(nationalities: Sequence[str], dimension: str | None, category: str | None) -> str:
    """Return what a filtered map's figures count, in words: "ROU, ALB, sex M" ('' if none)."""
    many = len(nationalities) > 3
    named = [f"{len(nationalities)} nationalities"] if many else list(nationalities)
    if dimension is not None:
        named.append(f"{dimension.replace('_', ' ')} {category}")
    return ", ".join(named)


def cell_tooltip(scope: str = "") -> str:
    """Return the map cells' tooltip: released persons and cases, then the nationalities.

    ``scope`` names what the figures count when the map is filtered (nationalities, a
    breakdown's category). Plain text, never HTML: the browser sets it as text
    (innerText), so no value from a release can become markup, whatever Streamlit
    version escapes or not; braces are taken out of ``scope`` (they would be fields).
    """
    named = scope.replace("{", "").replace("}", "")
    of = f" ({named})" if named else ""
    return f"Released in this hexagon{of}: persons {{p}}, cases {{c}}\n{{n}}"


def cells_to_layers(cells: pd.DataFrame, edges: Sequence[int]) -> list[pdk.Layer]:
    """Return flat ``H3HexagonLayer``s, one per resolution and colour bin, coarsest first.

    Each layer's data holds only the cells' :data:`CELL_FIELDS`, by their short names;
    its fill colour is one constant per layer. A per-cell colour array made the payload
    bigger and the browser's redraw of tens of thousands of cells about twice slower
    (software WebGL). Rolled-up (coarser) cells are more transparent with a darker,
    thicker outline, so they read as coarser.
    """
    finest = int(cells["resolution"].max()) if len(cells) else 0
    frame = pl.from_pandas(cells[MAP_COLUMNS].reset_index(drop=True)).with_columns(
        pl.Series("bin", bin_indices(cells["persons"], edges)),
        pl.col("h3_cell", "nationalities").cast(pl.String),
    )
    layers = []
    for (resolution, colour_bin), part in frame.sort("resolution", "bin").group_by(
        ["resolution", "bin"], maintain_order=True
    ):
        coarse = int(resolution) < finest
        alpha = COARSE_ALPHA if coarse else CELL_ALPHA
        layers.append(
            pdk.Layer(
                "H3HexagonLayer",
                data=part.select(
                    pl.col(name).alias(short) for name, short in CELL_FIELDS.items()
                ).to_dicts(),
                id=f"cells-res{int(resolution)}-bin{int(colour_bin)}",
                get_hexagon=CELL_FIELDS["h3_cell"],
                get_fill_color=[*PERSONS_PALETTE[int(colour_bin)], alpha],
                extruded=False,
                stroked=True,
                get_line_color=[60, 30, 80, 170] if coarse else [255, 255, 255, 140],
                line_width_units='"pixels"',
                get_line_width=1.0 if coarse else 0.5,
                pickable=True,
                auto_highlight=True,
            )
        )
    return layers


def classes_to_layer(
    classes: gpd.GeoDataFrame, layer_id: str = "footprint"
) -> tuple[pdk.Layer, list[LegendEntry]]:
    """Return a footprint's classes as a GeoJsonLayer (one colour per class) and its legend.

    Parameters
    ----------
    classes
        ``class_label``, ``class_rank`` and polygons in EPSG:4326.
    layer_id
        The layer's id.

    Returns
    -------
    tuple of pydeck.Layer and list of LegendEntry
        The layer (outlines only, so cell colours stay true; not pickable) and the legend, most
        severe class first.
    """
    ordered = classes.sort_values("class_rank").reset_index(drop=True)
    colours = class_colours(len(ordered), classes_are_ordered(ordered))
    geometries = shapely.simplify(
        ordered.geometry.values, DISPLAY_TOLERANCE_DEG, preserve_topology=True
    )
    features = []
    for label, rank, geometry, colour in zip(
        ordered["class_label"], ordered["class_rank"], geometries, colours, strict=True
    ):
        features.append(
            {
                "type": "Feature",
                "geometry": json.loads(shapely.to_geojson(shapely.set_precision(geometry, 1e-5))),
                "properties": {
                    "class_label": str(label),
                    "class_rank": int(rank),
                    "line": list(colour) + [255],
                },
            }
        )
    layer = pdk.Layer(
        "GeoJsonLayer",
        data={"type": "FeatureCollection", "features": features},
        id=layer_id,
        stroked=True,
        filled=False,
        get_line_color="properties.line",
        line_width_units='"pixels"',
        get_line_width=3,
        pickable=False,
    )
    legend = [
        LegendEntry(tuple(colour), str(label))
        for label, colour in zip(ordered["class_label"], colours, strict=True)
    ]
    return layer, legend[::-1]


def regions_to_basemap(
    regions: gpd.GeoDataFrame, name_field: str, country: str
) -> gpd.GeoDataFrame:
    """Derive the offline base layer from administrative regions (no download).

    The regions are simplified as a coverage (shared borders stay shared) and
    dissolved into the country outline.

    Parameters
    ----------
    regions
        Polygons that tile the country, in EPSG:4326.
    name_field
        The field naming each region.
    country
        The country's name.

    Returns
    -------
    geopandas.GeoDataFrame
        ``name``, ``level`` (``country`` then ``region``) and geometry, coordinates
        rounded to 1e-4°.
    """
    simplified = shapely.coverage_simplify(regions.geometry.values, BASEMAP_TOLERANCE_DEG)
    simplified = shapely.set_precision(simplified, 1e-4)
    outline = shapely.set_precision(shapely.coverage_union_all(simplified), 1e-4)
    frame = pd.DataFrame(
        {
            "name": [country] + regions[name_field].astype(str).tolist(),
            "level": ["country"] + ["region"] * len(regions),
        }
    )
    return gpd.GeoDataFrame(frame, geometry=[outline, *simplified], crs="EPSG:4326")


def cells_to_view(
    cells: Sequence[str], width: int = MAP_WIDTH_PX, height: int = MAP_HEIGHT_PX
) -> dict:
    """Return a view (latitude, longitude, zoom) that frames H3 cells.

    Returns
    -------
    dict
        See :func:`bounds_to_view`; central Italy at zoom 6 when there is no cell.
    """
    if len(cells) == 0:
        return {"latitude": 42.5, "longitude": 12.5, "zoom": 6.0, "pitch": 0, "bearing": 0}
    corners, _ = cell_boundaries(cells_to_ints(cells))
    west, south = corners.min(axis=0)
    east, north = corners.max(axis=0)
    return bounds_to_view((west, south, east, north), width, height)


def bounds_to_view(
    bounds: Sequence[float], width: int = MAP_WIDTH_PX, height: int = MAP_HEIGHT_PX
) -> dict:
    """Return a view that frames lon/lat bounds (west, south, east, north) in a map.

    Returns
    -------
    dict
        ``latitude``, ``longitude``, ``zoom`` (0.5–11: a consular registry may span
        continents), ``pitch`` 0 and ``bearing`` 0.
    """
    west, south, east, north = (float(b) for b in bounds)
    lon_span = max(east - west, 0.05) * 1.15
    y_north = math.log(math.tan(math.pi / 4 + math.radians(north) / 2))
    y_south = math.log(math.tan(math.pi / 4 + math.radians(south) / 2))
    y_span = max(y_north - y_south, 0.001) * 1.15
    zoom_x = math.log2(width * 360 / (512 * lon_span))
    zoom_y = math.log2(height * 2 * math.pi / (512 * y_span))
    latitude = math.degrees(2 * math.atan(math.exp((y_north + y_south) / 2)) - math.pi / 2)
    return {
        "latitude": round(latitude, 4),
        "longitude": round((west + east) / 2, 4),
        "zoom": round(max(0.5, min(zoom_x, zoom_y, 11.0)), 2),
        "pitch": 0,
        "bearing": 0,
    }


def build_deck(layers: Sequence[pdk.Layer | str], view: dict, scope: str = "") -> pdk.Deck:
    """Return the map: the given layers, framed by ``view``, with the cells' tooltip.

    The tooltip names ``scope`` (:func:`cell_tooltip`); see :func:`deck_of`.
    """
    return deck_of(layers, view, {"text": cell_tooltip(scope), "style": {"fontSize": "12px"}})


def deck_of(layers: Sequence[pdk.Layer | str], view: dict, tooltip: dict) -> pdk.Deck:
    """Return a deck of ``layers`` framed by ``view``, with a plain-text ``tooltip``.

    A layer may be given already written as JSON (``app_pages.deck_map.layer_json``).

    No basemap provider: the offline base layers are among ``layers``, and a tile
    basemap, when one is set, is the map component's (``app_pages.deck_map``).
    """
    return pdk.Deck(
        layers=list(layers),
        initial_view_state=pdk.ViewState(**view),
        tooltip=tooltip,
        map_provider=None,
    )
