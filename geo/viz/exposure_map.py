"""The exposure drawn on a map: footprint classes, exposed cells, the ShakeMap's edge.

Pure (no Streamlit, no file): from an exposure run (``geo.pipeline.ExposureRun``) and
its cells (``geo.pipeline.exposure.exposure_cells``) come pydeck layers and legends:

- the footprint's classes, outlined in the class palette over a light fill;
- each exposed released cell, filled with the colour of the worst class it reaches,
  lighter for fewer persons (its estimate inside the footprint, in the bins of
  :func:`geo.viz.legends.count_bins`), with a plain-text tooltip ("Romania (ROU): 36
  persons (range 20–52)");
- the area beyond a ShakeMap's lowest contour ("MMI < V", "PGA < 2 %g", or "MMI:
  whole map" in the cumulative view) is a class of the table but not a hazard zone: it
  is not filled nor outlined, and the map's edge (its outer border) is a thin dashed
  frame.

Every figure drawn is one of the exposure's (sums of released values).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import polars as pl
import pydeck as pdk
import shapely
import shapely.geometry
import shapely.ops

from geo.footprint_classes import classes_are_ordered
from geo.h3cells import cell_boundaries, cells_to_ints
from geo.viz.cells import nationality_label
from geo.viz.layers import DISPLAY_TOLERANCE_DEG, bounds_to_view, deck_of
from geo.viz.legends import LegendEntry, bin_indices, class_colours, count_bins, count_legend

EDGE_CLASS = re.compile(r"(?:.+: )?(?:MMI|PGA|PGV|PSA\S*|VALUE)(?: < .+|: whole map)")
EDGE_COLOUR = (70, 70, 70, 255)
CLASS_FILL_ALPHA = 45
COARSE_ALPHA = 170  # rolled-up parents: see-through, so the finer cells read as finer
LIGHTEST_SHADE = 0.3  # the fewest persons: 30 % of the class colour over white
SHADE_GREY = (90, 90, 90)
TOOLTIP_NATIONALITIES = 5
# Plain text, never HTML: deck.gl sets it as the tooltip's text, so no label or name
# from a file can become markup.
EXPOSURE_TOOLTIP = {"text": "{tooltip}", "style": {"fontSize": "12px", "maxWidth": "340px"}}


@dataclass(frozen=True)
class ExposureMap:
    """A drawn exposure: the layers, the view and what the legends say.

    Attributes
    ----------
    layers
        Footprint fills, exposed cells, class outlines, the dashed map edge (in that
        order; put the base layers before and place names after).
    view
        The view that frames the exposed cells and the footprint's hazard classes.
    bounds
        The (west, south, east, north) that view frames.
    class_legend
        One entry per class, most severe first.
    shade_legend
        Persons per cell (estimate inside the footprint): light to dark.
    map_edge
        Whether a ShakeMap's map edge is drawn (dashed).
    cells
        Exposed cells drawn.
    """

    layers: list[pdk.Layer]
    view: dict
    bounds: tuple[float, float, float, float]
    class_legend: list[LegendEntry]
    shade_legend: list[LegendEntry]
    map_edge: bool
    cells: int


def is_map_edge(label: str) -> bool:
    """Whether a class is the area beyond a ShakeMap's lowest contour (out to the map edge)."""
    return bool(EDGE_CLASS.fullmatch(str(label)))


def class_palette(classes: gpd.GeoDataFrame) -> dict[str, tuple[int, ...]]:
    """Return each class label's colour (least to most severe, as the Map page's outlines)."""
    ordered = classes.sort_values("class_rank")
    colours = class_colours(len(ordered), classes_are_ordered(ordered))
    return dict(zip(ordered["class_label"].astype(str), colours, strict=True))


def shade(colour: Sequence[int], level: float) -> list[int]:
    """Return ``colour`` at ``level`` (0 white … 1 the colour itself), opaque."""
    return [round(255 - (255 - c) * level) for c in colour[:3]] + [255]


def _shade_levels(bins: int) -> np.ndarray:
    """Return one colour level per persons bin, lightest first."""
    return np.linspace(LIGHTEST_SHADE, 1.0, max(bins, 2))[-bins:] if bins > 1 else np.ones(1)


def map_edge_paths(classes: gpd.GeoDataFrame, dashes: int = 120) -> list[list[list[float]]]:
    """Return the map edge as dashes (lon/lat paths): the border of the edge classes' extent.

    The edge of a ShakeMap is the outer border of its classes together (a rectangle:
    the file's ``bbox``, or the grid's extent); it is cut into ``dashes`` dashes, each
    a little over half of its stretch, so it reads as a frame, not a zone.
    """
    if not classes["class_label"].astype(str).map(is_map_edge).any():
        return []
    outer = shapely.union_all(classes.geometry.values)
    rings = [outer.envelope.exterior] if not outer.is_empty else []
    paths = []
    for ring in rings:
        length = ring.length
        step = length / dashes
        for start in np.arange(0, length, step):
            dash = shapely.ops.substring(ring, start, min(start + step * 0.55, length))
            coords = [[round(x, 5), round(y, 5)] for x, y in dash.coords]
            if len(coords) >= 2:
                paths.append(coords)
    return paths


def edge_layer(classes: gpd.GeoDataFrame) -> pdk.Layer | None:
    """Return a ShakeMap's map edge as a thin dashed PathLayer (None for other footprints)."""
    edge = map_edge_paths(classes)
    if not edge:
        return None
    return pdk.Layer(
        "PathLayer",
        data=[{"path": p} for p in edge],
        id="map-edge",
        get_path="path",
        get_color=list(EDGE_COLOUR),
        width_units='"pixels"',
        get_width=1.2,
        pickable=False,
    )


def class_legend(
    classes: gpd.GeoDataFrame, palette: dict[str, tuple[int, ...]]
) -> list[LegendEntry]:
    """Return the legend of the classes, most severe first, in the palette's colours."""
    ordered = classes.sort_values("class_rank", ascending=False)
    return [LegendEntry(palette[str(label)], str(label)) for label in ordered["class_label"]]


def footprint_layers(
    classes: gpd.GeoDataFrame, palette: dict[str, tuple[int, ...]]
) -> tuple[pdk.Layer, pdk.Layer]:
    """Return the hazard classes as a light fill (drawn under the cells) and outlines (over).

    Classes beyond a ShakeMap's lowest contour are left out (see :func:`map_edge_paths`).
    Most severe class drawn last, so nested classes read from the outside in.
    """
    shown = classes[~classes["class_label"].astype(str).map(is_map_edge)]
    shown = shown.sort_values("class_rank")
    geometries = shapely.simplify(
        shown.geometry.values, DISPLAY_TOLERANCE_DEG, preserve_topology=True
    )
    features = []
    for label, geometry in zip(shown["class_label"].astype(str), geometries, strict=True):
        if geometry is None or geometry.is_empty:
            continue
        colour = list(palette[label][:3])
        features.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(shapely.set_precision(geometry, 1e-5)),
                "properties": {"fill": colour + [CLASS_FILL_ALPHA], "line": colour + [255]},
            }
        )
    data = {"type": "FeatureCollection", "features": features}
    common: dict[str, Any] = {"data": data, "pickable": False, "line_width_units": '"pixels"'}
    fill = pdk.Layer(
        "GeoJsonLayer",
        id="footprint-fill",
        filled=True,
        stroked=False,
        get_fill_color="properties.fill",
        **common,
    )
    outline = pdk.Layer(
        "GeoJsonLayer",
        id="footprint-outline",
        filled=False,
        stroked=True,
        get_line_color="properties.line",
        get_line_width=2,
        **common,
    )
    return fill, outline


def _with_range_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Return ``frame`` with each row's ``range`` text.

    ``"36 persons (range 20–52)"``: ``persons_estimate`` rounded half to even (as Python's
    ``round``), then ``persons_low``–``persons_high``, with thousands separators. Each
    distinct number is formatted once in Python: polars has no thousands separator.
    """
    rounded = {
        "persons_estimate": np.round(frame["persons_estimate"].to_numpy()).astype(np.int64),
        "persons_low": frame["persons_low"].to_numpy().astype(np.int64),
        "persons_high": frame["persons_high"].to_numpy().astype(np.int64),
    }
    numbers = np.unique(np.concatenate(list(rounded.values())))
    texts = pl.Series([f"{n:,}" for n in numbers.tolist()], dtype=pl.String)
    text = {name: pl.Series(v).replace_strict(numbers, texts) for name, v in rounded.items()}
    return frame.with_columns(
        pl.concat_str(
            [
                text["persons_estimate"],
                pl.lit(" persons (range "),
                text["persons_low"],
                pl.lit("–"),
                text["persons_high"],
                pl.lit(")"),
            ]
        ).alias("range")
    )


def cell_tooltips(
    by_cell: pd.DataFrame, by_nationality: pd.DataFrame, cumulative: bool
) -> pd.Series:
    """Return each cell's tooltip as plain text (indexed by ``h3_cell``).

    One line per class the cell touches, most severe first ("MMI VII: 31 persons
    (range 0–1,354)"), then the largest nationalities inside the footprint ("Romania
    (ROU): 36 persons (range 20–52)"): summed over the classes when they are bands,
    in the widest class when they are nested; equal estimates by nationality code. Names
    and labels are shown as they are: the browser sets the text as text, never as
    markup. Built in polars: pandas joined each cell's lines with a Python call (a
    second for 6,000 cells of a national release).
    """
    ranked = _with_range_text(pl.from_pandas(by_cell.reset_index(drop=True)))
    classes = (
        ranked.sort(["h3_cell", "class_rank"], descending=[False, True], maintain_order=True)
        .group_by("h3_cell", maintain_order=True)
        .agg(pl.format("{}: {}", "class_label", "range").str.join("\n").alias("classes"))
    )
    columns = [
        "h3_cell",
        "class_rank",
        "nationality",
        "persons_low",
        "persons_estimate",
        "persons_high",
    ]
    people = pl.from_pandas(by_nationality[columns].reset_index(drop=True))
    if cumulative:
        widest = pl.col("class_rank") == pl.col("class_rank").min().over("h3_cell")
        people = people.filter(widest)
    # a person is in one place: the high end is the cell's released value, once
    people = people.group_by("h3_cell", "nationality").agg(
        pl.col("persons_low", "persons_estimate").sum(), pl.col("persons_high").max()
    )
    people = _with_range_text(people)
    codes = people["nationality"].unique().to_list()
    labels = pl.Series([nationality_label(code) for code in codes], dtype=pl.String)
    listed = (
        people.with_columns(pl.col("nationality").replace_strict(codes, labels).alias("label"))
        .sort(["h3_cell", "persons_estimate", "nationality"], descending=[False, True, False])
        .group_by("h3_cell", maintain_order=True)
        .agg(
            pl.format("{}: {}", "label", "range")
            .head(TOOLTIP_NATIONALITIES)
            .str.join("\n")
            .alias("lines"),
            (pl.len().cast(pl.Int64) - TOOLTIP_NATIONALITIES).alias("more"),
        )
    )
    more = (
        pl.when(pl.col("more") > 0)
        .then(pl.format("\nand {} more nationalities", "more"))
        .otherwise(pl.lit(""))
    )
    nationalities = listed.select(
        "h3_cell",
        pl.concat_str([pl.lit("\nInside the footprint, by nationality:\n"), "lines", more]).alias(
            "people"
        ),
    )
    text = classes.join(nationalities, on="h3_cell", how="left", maintain_order="left")
    text = text.select("h3_cell", pl.concat_str(["classes", pl.col("people").fill_null("")]))
    cells, tips = text.to_series(0), text.to_series(1)
    return pd.Series(tips.to_list(), index=pd.Index(cells.to_list()), dtype=object)


def cell_layers(
    by_cell: pd.DataFrame,
    by_nationality: pd.DataFrame,
    palette: dict[str, tuple[int, ...]],
    cumulative: bool,
    worst: pd.DataFrame,
) -> tuple[list[pdk.Layer], list[int]]:
    """Return the exposed cells, one H3HexagonLayer per class and shade, and the shade bins.

    ``worst`` is :func:`geo.tools.exposed_cells.cell_class` (the worst class each cell
    reaches and its persons inside). Rolled-up (coarser) cells are drawn first, a
    little see-through with a darker outline, as on the Map page. Each record carries
    ``h3_cell``, ``tooltip``, ``persons`` (estimate inside, rounded) and ``by_class``
    ([class, low, estimate, high] per class touched): the exposure table's figures.
    """
    if worst.empty:
        return [], [1, 2]
    edges = count_bins(worst["persons_inside"].clip(lower=1))
    levels = _shade_levels(len(edges) - 1)
    tooltips = cell_tooltips(by_cell, by_nationality, cumulative)
    parts = by_cell.assign(
        class_label=by_cell["class_label"].astype(str),
        persons_low=by_cell["persons_low"].astype("int64"),
        persons_estimate=by_cell["persons_estimate"].astype(float).round(3),
        persons_high=by_cell["persons_high"].astype("int64"),
    )
    per_class: dict[str, list] = {}
    columns = ["h3_cell", "class_label", "persons_low", "persons_estimate", "persons_high"]
    for cell, label, low, estimate, high in parts[columns].itertuples(index=False, name=None):
        per_class.setdefault(cell, []).append([label, int(low), float(estimate), int(high)])
    frame = worst.assign(
        shade_bin=bin_indices(worst["persons_inside"].clip(lower=1), edges),
        resolution=[h3.get_resolution(str(cell)) for cell in worst["h3_cell"]],
    )
    finest = int(frame["resolution"].max())
    layers = []
    # Coarsest first: a rolled-up parent lies under its released children, never over them.
    keys = ["resolution", "class_rank", "shade_bin"]
    for (resolution, rank, level_bin), part in frame.sort_values(keys).groupby(keys, sort=False):
        colour = palette[str(part["class_label"].iloc[0])]
        records = [
            {
                "h3_cell": str(cell),
                "tooltip": tooltips.get(cell, ""),
                "persons": round(float(persons)),
                "by_class": per_class.get(cell, []),
            }
            for cell, persons in zip(part["h3_cell"], part["persons_inside"], strict=True)
        ]
        coarse = int(resolution) < finest
        layers.append(
            pdk.Layer(
                "H3HexagonLayer",
                data=records,
                id=f"exposed-h{int(resolution)}-r{int(rank)}-b{int(level_bin)}",
                get_hexagon="h3_cell",
                get_fill_color=shade(colour, float(levels[int(level_bin)]))[:3]
                + [COARSE_ALPHA if coarse else 255],
                extruded=False,
                stroked=True,
                get_line_color=[60, 30, 30, 200] if coarse else shade(colour, 1.0)[:3] + [200],
                line_width_units='"pixels"',
                get_line_width=1.0 if coarse else 0.6,
                pickable=True,
                auto_highlight=True,
            )
        )
    return layers, edges


def map_bounds(
    classes: gpd.GeoDataFrame, cells: Sequence[str]
) -> tuple[float, float, float, float]:
    """Return the extent to frame: the exposed cells and the whole footprint.

    A ShakeMap's map edge is framed too: its dashed frame is drawn, and a view that cut
    it (a phone's narrow map did) hid where the footprint ends.
    """
    boxes = [tuple(float(v) for v in classes.total_bounds)]
    if len(cells):
        corners, _ = cell_boundaries(cells_to_ints(list(cells)))
        boxes.append((*corners.min(axis=0), *corners.max(axis=0)))
    west, south, east, north = zip(*boxes, strict=True)
    return (min(west), min(south), max(east), max(north))


def exposure_map(
    classes: gpd.GeoDataFrame,
    by_cell: pd.DataFrame,
    by_nationality: pd.DataFrame,
    worst: pd.DataFrame,
    cumulative: bool,
    width: int = 1000,
    height: int = 560,
) -> ExposureMap:
    """Return the exposure's layers, view and legends (see the module)."""
    palette = class_palette(classes)
    fill, outline = footprint_layers(classes, palette)
    cells, edges = cell_layers(by_cell, by_nationality, palette, cumulative, worst)
    edge = edge_layer(classes)
    layers = [fill, *cells, outline] + ([edge] if edge else [])
    legend = class_legend(classes, palette)
    shades = [
        LegendEntry(tuple(shade(SHADE_GREY, float(level))[:3]), entry.label)
        for level, entry in zip(_shade_levels(len(edges) - 1), count_legend(edges), strict=True)
    ]
    bounds = map_bounds(classes, worst["h3_cell"].tolist())
    view = bounds_to_view(bounds, width, height)
    return ExposureMap(layers, view, bounds, legend, shades, edge is not None, len(worst))


def exposure_deck(layers: Sequence[pdk.Layer], view: dict) -> pdk.Deck:
    """Return the exposure's deck: its layers, framed by ``view``, plain-text tooltips."""
    return deck_of(layers, view, EXPOSURE_TOOLTIP)
