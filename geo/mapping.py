"""Build the dashboard's map layers and display frames from a release (pure, no Streamlit).

Everything a layer carries comes from the release: per H3 cell, sums of released group
values (persons, cases) and the released values per nationality. pydeck sends every
column of a layer's frame to the browser, so the frames built here hold only
``h3_cell``, ``resolution``, ``persons``, ``cases`` and ``nationalities`` (released
values as text); colours are per layer.

Released cells come at several resolutions (groups under k roll up to H3 parents):
:func:`cells_to_layers` draws one ``H3HexagonLayer`` per resolution and colour bin,
coarsest first, flat, with a thicker outline for rolled-up cells. Colours follow 1–2–5
logarithmic bins (:func:`count_bins`) so that a cell of 12 persons and one of 3,000 are
both readable. The offline base layer is drawn from shipped boundaries (``data/basemap``,
derived from the ISTAT region limits by :func:`regions_to_basemap`).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import polars as pl
import polars_h3
import pydeck as pdk
import shapely
from pydeck.bindings.json_tools import default_serialize

from geo import codes
from geo.exposure import cell_boundaries, cells_to_ints
from geo.release import Release

MAP_COLUMNS = ["h3_cell", "resolution", "persons", "cases", "nationalities"]
BREAKDOWN_FILTERS = {"sex": codes.SEX_CATEGORIES, "age_band": codes.AGE_BANDS}
# ColorBrewer BuPu (7 of 8 steps, light to dark): persons per cell.
PERSONS_PALETTE = (
    (191, 211, 230),
    (158, 188, 218),
    (140, 150, 198),
    (140, 107, 177),
    (136, 65, 157),
    (129, 15, 124),
    (77, 0, 75),
)
# ColorBrewer YlOrRd (from the third step): hazard classes, least to most severe.
CLASS_PALETTE = (
    (254, 217, 118),
    (254, 178, 76),
    (253, 141, 60),
    (252, 78, 42),
    (227, 26, 28),
    (189, 0, 38),
    (128, 0, 38),
)
CELL_ALPHA = 235
COARSE_ALPHA = 140
LAND_FILL = (242, 240, 233, 255)
COUNTRY_LINE = (90, 90, 90, 255)
REGION_LINE = (150, 150, 150, 255)
NICE_STEPS = ((1, 2, 5), (1, 3), (1,))
DISPLAY_TOLERANCE_DEG = 0.002
BASEMAP_TOLERANCE_DEG = 0.01
MAP_WIDTH_PX = 1000
MAP_HEIGHT_PX = 560
TOOLTIP_HTML = (
    "<b>{persons}</b> persons, <b>{cases}</b> cases (sum of released groups)<br/>"
    "H3 resolution {resolution}, cell {h3_cell}<br/>{nationalities}"
)


@dataclass(frozen=True)
class MapCells:
    """Released cells ready to draw, with what a breakdown filter could not show.

    Attributes
    ----------
    cells : pandas.DataFrame
        One row per H3 cell: ``h3_cell``, ``resolution``, ``persons`` and ``cases``
        (sums of the released values shown in the cell) and ``nationalities`` (the
        released values per nationality, as text).
    groups_shown : int
        Released (cell, nationality) groups that contribute to the cells.
    groups_not_available : int
        Groups left out because the release has no breakdown for them under the
        filter (their breakdown is "not available"; nothing is estimated).
    released_cells : int
        Distinct released cells the shown groups lie in.
    display_resolution : int or None
        None when every released cell is drawn as released; else the resolution the
        finer cells were summed to (see :func:`display_resolution`).
    """

    cells: pd.DataFrame
    groups_shown: int
    groups_not_available: int
    released_cells: int = 0
    display_resolution: int | None = None


@dataclass(frozen=True)
class LegendEntry:
    """One line of a legend: a colour and its label."""

    colour: tuple[int, ...]
    label: str


TOOLTIP_NATIONALITIES = 3
# Hexagons drawn by default: beyond this a map redraw takes over a second in a browser
# without GPU, and a country-wide view shows each hexagon as a pixel or two.
MAX_MAP_CELLS = 10_000


def nationality_label(code: str) -> str:
    """Return ``"Name (ISO3)"`` for a nationality code, for widgets and tables."""
    name = codes.nationality_name(code)
    return code if name == code else f"{name} ({code})"


def display_resolution(cells: pl.DataFrame, max_cells: int) -> int | None:
    """Return the finest resolution at which the cells make at most ``max_cells`` hexagons.

    ``cells`` has ``h3_cell`` and ``resolution`` (one row per released cell). Drawing a
    cell finer than the returned resolution as its parent's hexagon leaves at most
    ``max_cells`` hexagons. None when the cells are already few enough (nothing to sum),
    else a resolution between the coarsest and the finest released one.
    """
    if cells.height <= max_cells:
        return None
    finest, coarsest = int(cells["resolution"].max()), int(cells["resolution"].min())
    for resolution in range(finest - 1, coarsest, -1):
        if _to_resolution(cells, resolution)["h3_cell"].n_unique() <= max_cells:
            return resolution
    return coarsest


def _to_resolution(frame: pl.DataFrame, resolution: int) -> pl.DataFrame:
    """Replace cells finer than ``resolution`` by their parent at ``resolution``."""
    finer = pl.col("resolution") > resolution
    return frame.with_columns(
        pl.when(finer)
        .then(polars_h3.cell_to_parent("h3_cell", resolution))
        .otherwise(pl.col("h3_cell"))
        .alias("h3_cell"),
        pl.when(finer)
        .then(resolution)
        .otherwise(pl.col("resolution"))
        .cast(pl.Int8)
        .alias("resolution"),
    )


def release_to_map_cells(
    release: Release,
    nationalities: Sequence[str] | None = None,
    dimension: str | None = None,
    category: str | None = None,
    max_cells: int | None = None,
) -> MapCells:
    """Return the released values to draw, one row per cell, under optional filters.

    Parameters
    ----------
    release
        The protected release (the only data read).
    nationalities
        Keep only these nationalities (default: all).
    dimension, category
        A breakdown filter, e.g. ``("sex", "F")``. Only groups whose breakdown on
        ``dimension`` is published are shown, with the breakdown's released count
        for ``category`` (a published breakdown without that category counts 0).
    max_cells
        Draw at most this many hexagons: when the released cells are more, those finer
        than :func:`display_resolution` are summed into their parent's hexagon (a sum
        of released values, like every figure on the map). None draws every released
        cell. Tens of thousands of hexagons make a national map slow to redraw and, at
        the zoom that shows a country, are a pixel or two each.

    Returns
    -------
    MapCells

    Raises
    ------
    ValueError
        For a dimension other than ``sex`` or ``age_band``, or an unknown category.
    """
    groups = release.groups
    if nationalities:
        groups = groups[groups["nationality"].isin(list(nationalities))]
    located = pl.from_pandas(
        groups[["h3_cell", "resolution", "nationality", "persons", "cases"]].reset_index(drop=True)
    ).with_columns(pl.col("h3_cell", "nationality").cast(pl.String))
    not_available = 0
    values = located
    if dimension is not None:
        if category not in BREAKDOWN_FILTERS.get(dimension, ()):
            raise ValueError(f"no map filter for {dimension}={category!r}.")
        keys = ["h3_cell", "nationality"]
        rows = pl.from_pandas(
            release.breakdown(dimension)[[*keys, "category", "persons", "cases"]]
        ).with_columns(pl.col(*keys).cast(pl.String))
        available = located.drop("persons", "cases").join(
            rows.select(keys).unique(), on=keys, how="semi"
        )
        not_available = located.height - available.height
        chosen = rows.filter(pl.col("category") == category).select(*keys, "persons", "cases")
        values = available.join(chosen, on=keys, how="left").with_columns(
            pl.col("persons", "cases").fill_null(0).cast(pl.Int64)
        )
    shown = values.height
    values = values.filter(pl.col("persons") > 0)
    released = values.select("h3_cell", "resolution").unique("h3_cell")
    target = display_resolution(released, max_cells) if max_cells else None
    if target is not None:
        values = _to_resolution(values, target)
    return MapCells(_cells_from_groups(values), shown, not_available, released.height, target)


def _cells_from_groups(values: pl.DataFrame) -> pd.DataFrame:
    """Sum released group values per cell and list them per nationality.

    ``values`` has ``h3_cell``, ``resolution``, ``nationality``, ``persons``, ``cases``.
    The map payload carries this text for every cell, so it lists a cell's largest
    nationalities only and says how many more there are. Built in polars: at national
    scale (tens of thousands of cells) a pandas string aggregation took half a second
    of every filter change.
    """
    if values.is_empty():
        return pd.DataFrame(
            {
                "h3_cell": pd.Series(dtype=object),
                "resolution": pd.Series(dtype="int8"),
                "persons": pd.Series(dtype="int64"),
                "cases": pd.Series(dtype="int64"),
                "nationalities": pd.Series(dtype=object),
            }
        )
    # Summed to a display resolution, one nationality's groups of several cells meet.
    frame = values.group_by("h3_cell", "nationality").agg(
        pl.col("resolution").first(), pl.col("persons").sum(), pl.col("cases").sum()
    )
    distinct = frame["persons"].unique()
    formatted = pl.DataFrame(
        {"persons": distinct, "shown": [f"{int(v):,}" for v in distinct.to_list()]}
    )
    listed = pl.col("nationality") + " " + pl.col("shown")
    more = pl.len().cast(pl.Int64) - TOOLTIP_NATIONALITIES
    cells = (
        frame.join(formatted, on="persons", how="left")
        .sort(["h3_cell", "persons", "nationality"], descending=[False, True, False])
        .group_by("h3_cell", maintain_order=True)
        .agg(
            pl.col("resolution").first().cast(pl.Int8),
            pl.col("persons").sum(),
            pl.col("cases").sum(),
            nationalities=listed.head(TOOLTIP_NATIONALITIES).str.join(" · ")
            + pl.when(more > 0)
            .then(pl.lit(" · +") + more.cast(pl.String) + pl.lit(" more"))
            .otherwise(pl.lit("")),
        )
        .sort(["resolution", "h3_cell"])
    )
    return cells.to_pandas()


def count_bins(
    values: Sequence[float] | pd.Series, max_bins: int = len(PERSONS_PALETTE)
) -> list[int]:
    """Return logarithmic bin edges on round numbers (1–2–5, 1–3 or decades).

    Parameters
    ----------
    values
        Positive counts to cover.
    max_bins
        The most bins wanted (the palette's length).

    Returns
    -------
    list of int
        Increasing edges ``e0 ≤ min(values)`` … ``en > max(values)``; bin i is
        ``[e_i, e_{i+1})``. ``[1, 2]`` when there is no positive value.
    """
    positive = [v for v in values if v > 0]
    if not positive:
        return [1, 2]
    low, high = min(positive), max(positive)
    for steps in NICE_STEPS:
        edges = _nice_edges(low, high, steps)
        if len(edges) - 1 <= max_bins:
            return edges
    while len(edges) - 1 > max_bins:
        edges = edges[::2] + ([edges[-1]] if len(edges) % 2 == 0 else [])
    return edges


def _nice_edges(low: float, high: float, steps: tuple[int, ...]) -> list[int]:
    """Return the round numbers from the largest ≤ low to the smallest > high."""
    candidates = [
        step * 10**exponent
        for exponent in range(int(math.floor(math.log10(low))), int(math.log10(high)) + 2)
        for step in steps
    ]
    start = max(c for c in candidates if c <= low)
    stop = min(c for c in candidates if c > high)
    return [c for c in candidates if start <= c <= stop]


def bin_colours(
    values: pd.Series, edges: Sequence[int], palette: Sequence[tuple[int, ...]] = PERSONS_PALETTE
) -> list[tuple[int, ...]]:
    """Return the palette colour of each value's bin (values outside go to the ends)."""
    return [tuple(palette[i]) for i in bin_indices(values, edges)]


def count_legend(
    edges: Sequence[int], palette: Sequence[tuple[int, ...]] = PERSONS_PALETTE
) -> list[LegendEntry]:
    """Return legend entries ``"10–19"``, ``"20–49"`` … for count bins."""
    entries = []
    for i in range(len(edges) - 1):
        low, high = edges[i], edges[i + 1] - 1
        label = f"{low:,}" if low == high else f"{low:,}–{high:,}"
        entries.append(LegendEntry(tuple(palette[i]), label))
    return entries


def bin_indices(values: pd.Series, edges: Sequence[int]) -> np.ndarray:
    """Return each value's bin among ``edges`` (values outside go to the end bins)."""
    index = np.searchsorted(np.asarray(edges), np.asarray(values), side="right") - 1
    return np.clip(index, 0, len(edges) - 2)


def cells_to_layers(cells: pd.DataFrame, edges: Sequence[int]) -> list[pdk.Layer]:
    """Return flat ``H3HexagonLayer``s, one per resolution and colour bin, coarsest first.

    Each layer's data holds only ``MAP_COLUMNS``; its fill colour is one constant per
    layer. A per-cell colour array made the payload bigger and the browser's redraw of
    tens of thousands of cells about twice slower (software WebGL). Rolled-up (coarser)
    cells are more transparent with a darker, thicker outline, so they read as coarser.
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
                data=part.select(MAP_COLUMNS).to_dicts(),
                id=f"cells-res{int(resolution)}-bin{int(colour_bin)}",
                get_hexagon="h3_cell",
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
    colours = class_colours(len(ordered))
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


def class_colours(n: int) -> list[tuple[int, ...]]:
    """Return ``n`` colours from the class palette, spread from least to most severe."""
    if n <= 0:
        return []
    if n == 1:
        return [CLASS_PALETTE[-2]]
    positions = np.linspace(0, len(CLASS_PALETTE) - 1, n).round().astype(int)
    return [CLASS_PALETTE[i] for i in positions]


def outline_layers(paths: Sequence[str | Path], fill_land: bool = True) -> list[pdk.Layer]:
    """Return the offline base layers: land filled from country outlines, region lines.

    Parameters
    ----------
    paths
        GeoJSON files whose features have a ``level`` property: ``country``
        (filled as land, dark outline) or anything else (thin grey lines).
    fill_land
        Fill the countries (off when tiles are drawn underneath).

    Returns
    -------
    list of pydeck.Layer
        Non-pickable GeoJsonLayers, countries first.
    """
    countries, others = [], []
    for path in paths:
        collection = json.loads(Path(path).read_text(encoding="utf-8"))
        for feature in collection["features"]:
            is_country = feature["properties"].get("level") == "country"
            (countries if is_country else others).append(
                {"type": "Feature", "geometry": feature["geometry"], "properties": {}}
            )
    layers = []
    if countries:
        layers.append(
            pdk.Layer(
                "GeoJsonLayer",
                data={"type": "FeatureCollection", "features": countries},
                id="basemap-land",
                stroked=True,
                filled=fill_land,
                get_fill_color=list(LAND_FILL),
                get_line_color=list(COUNTRY_LINE),
                line_width_units='"pixels"',
                get_line_width=1.5,
                pickable=False,
            )
        )
    if others:
        layers.append(
            pdk.Layer(
                "GeoJsonLayer",
                data={"type": "FeatureCollection", "features": others},
                id="basemap-admin",
                stroked=True,
                filled=False,
                get_line_color=list(REGION_LINE),
                line_width_units='"pixels"',
                get_line_width=0.8,
                pickable=False,
            )
        )
    return layers


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


def tile_map_style(url: str) -> str:
    """Return a raster map style for a ``{z}/{x}/{y}`` tile URL, as an inline ``data:`` URL.

    The browser's map library fetches its style from a URL; inlining it means the only
    requests made are for the tiles themselves.
    """
    style = {
        "version": 8,
        "sources": {"tiles": {"type": "raster", "tiles": [url], "tileSize": 256}},
        "layers": [{"id": "tiles", "type": "raster", "source": "tiles"}],
    }
    return "data:application/json," + quote(json.dumps(style, separators=(",", ":")))


class CompactDeck(pdk.Deck):
    """A deck serialised without indentation.

    pydeck indents its JSON, which doubles the payload Streamlit sends to the browser
    for tens of thousands of cells; the content is the same.
    """

    def to_json(self) -> str:
        """Return the deck as compact JSON."""
        return json.dumps(self, sort_keys=True, default=default_serialize, separators=(",", ":"))


def build_deck(layers: Sequence[pdk.Layer], view: dict, basemap_url: str | None = None) -> pdk.Deck:
    """Return the map: the given layers over no basemap, or over tiles when a URL is set.

    Without ``basemap_url`` the deck has ``map_provider=None``: no basemap, no
    network request. With it, a raster style (:func:`tile_map_style`) reads tiles
    from the URL.
    """
    if basemap_url:
        style = {"map_provider": "carto", "map_style": tile_map_style(basemap_url)}
    else:
        style = {"map_provider": None}
    return CompactDeck(
        layers=list(layers),
        initial_view_state=pdk.ViewState(**view),
        tooltip={"html": TOOLTIP_HTML, "style": {"fontSize": "12px"}},
        **style,
    )


def legend_html(title: str, entries: Sequence[LegendEntry], shape: str = "hexagon") -> str:
    """Return a compact HTML legend: coloured swatches with their labels.

    Parameters
    ----------
    title
        Shown above the entries.
    entries
        Colours and labels, in display order.
    shape
        ``hexagon`` (filled swatch) or ``outline`` (swatch with a coloured border).
    """
    items = []
    for entry in entries:
        r, g, b = entry.colour[:3]
        if shape == "outline":
            swatch = f"background:transparent;border:3px solid rgb({r},{g},{b});"
        else:
            swatch = f"background:rgb({r},{g},{b});border:1px solid rgba(0,0,0,0.15);"
        items.append(
            '<span style="display:inline-flex;align-items:center;margin:0 10px 4px 0;'
            f'white-space:nowrap"><span style="display:inline-block;width:14px;height:14px;'
            f'border-radius:3px;margin-right:4px;{swatch}"></span>{html.escape(entry.label)}</span>'
        )
    return (
        f'<div style="font-size:0.85rem;line-height:1.4"><b>{html.escape(title)}</b><br/>'
        + "".join(items)
        + "</div>"
    )


def class_totals(table: pd.DataFrame) -> pd.DataFrame:
    """Return an exposure table summed over nationalities (and admin areas), per class.

    Returns
    -------
    pandas.DataFrame
        ``hazard_class``, ``class_rank`` and the persons / cases low, estimate and
        high sums, most severe class first.
    """
    sums = [c for c in table.columns if c.startswith(("persons_", "cases_"))]
    totals = table.groupby(["hazard_class", "class_rank"], as_index=False)[sums].sum()
    return totals.sort_values("class_rank", ascending=False).reset_index(drop=True)


def nationality_bars(table: pd.DataFrame, hazard_class: str) -> pd.DataFrame:
    """Return persons low / estimate / high by nationality in one class, largest first.

    Returns
    -------
    pandas.DataFrame
        ``nationality``, ``label`` (name and code), ``persons_low``,
        ``persons_estimate``, ``persons_high``.
    """
    part = table[table["hazard_class"] == hazard_class]
    bars = part.groupby("nationality", as_index=False)[
        ["persons_low", "persons_estimate", "persons_high"]
    ].sum()
    bars["label"] = bars["nationality"].map(nationality_label)
    bars = bars.sort_values(["persons_estimate", "nationality"], ascending=[False, True])
    return bars[
        ["nationality", "label", "persons_low", "persons_estimate", "persons_high"]
    ].reset_index(drop=True)


def cell_area_km2(resolution: int) -> float:
    """Return the average area of an H3 cell at a resolution, in km²."""
    return float(h3.average_hexagon_area(resolution, unit="km^2"))
