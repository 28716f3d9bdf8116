"""The report's static map: footprint classes in greys and hatching, exposed cells as dots.

Drawn with matplotlib (imported here, lazily, only when a report is made) so that it
prints in black and white: classes from light to dark grey by severity, the two most
severe hatched; country outlines (Natural Earth) and administrative outlines, if
given, as lines; each exposed released cell a black dot sized by its released persons.
No tiles, nothing fetched.
"""

from __future__ import annotations

import io
import math
import textwrap

import geopandas as gpd
import numpy as np
import pandas as pd

from geo import h3cells
from geo.footprint_classes import ordered_mask

HATCHES = ("xxxx", "////", "\\\\\\\\", "....", "++", "oo")


def _greys(count: int) -> list[str]:
    """``count`` greys from light (least severe) to dark (most severe)."""
    if count <= 1:
        return ["0.75"]
    return [f"{0.93 - 0.5 * i / (count - 1):.2f}" for i in range(count)]


def report_map_png(
    classes: gpd.GeoDataFrame,
    countries: gpd.GeoDataFrame,
    cells: pd.DataFrame,
    *,
    admin: gpd.GeoDataFrame | None = None,
    labels: dict[str, str] | None = None,
    attribution: str = "",
    size_mm: tuple[float, float] = (120.0, 80.0),
    dpi: int = 200,
) -> bytes:
    """Return the map as a PNG.

    Parameters
    ----------
    classes
        The class frame exposed (``class_label``, ``class_rank``, geometry, EPSG:4326).
    countries
        Country outlines around the footprint (:func:`geo.io.basemap.country_outlines`).
    cells
        Exposed released cells: ``h3_cell`` and ``persons`` (summed over nationalities).
    admin
        Administrative outlines to draw, if any.
    labels
        Display words of the class labels (plain words), by label.
    attribution
        The base map's attribution, printed in the corner.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    labels = labels or {}
    fig, ax = plt.subplots(figsize=(size_mm[0] / 25.4, size_mm[1] / 25.4), dpi=dpi)
    try:
        west, south, east, north = _extent(classes, cells)
        ax.set_xlim(west, east)
        ax.set_ylim(south, north)
        ax.set_aspect(1 / max(math.cos(math.radians((south + north) / 2)), 0.2))
        ordered = classes[ordered_mask(classes)].sort_values("class_rank")
        unordered = classes[~ordered_mask(classes)]
        handles = []
        greys = _greys(len(ordered))
        for i, (_, row) in enumerate(ordered.iterrows()):
            from_top = len(ordered) - 1 - i
            hatch = HATCHES[from_top] if from_top < 2 else None
            handles.append(_draw(ax, row, greys[i], hatch, labels, Patch))
        for i, (_, row) in enumerate(unordered.iterrows()):
            handles.append(_draw(ax, row, "0.85", HATCHES[i % len(HATCHES)], labels, Patch))
        if len(countries):
            countries.boundary.plot(ax=ax, color="black", linewidth=0.8)
        if admin is not None and len(admin):
            admin.boundary.plot(ax=ax, color="0.3", linewidth=0.4, linestyle="--")
            handles.append(
                Line2D([], [], color="0.3", linewidth=0.6, linestyle="--", label="areas")
            )
        handles += _draw_cells(ax, cells, Line2D)
        ax.legend(
            handles=handles[::-1],
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=5.5,
            frameon=False,
            title="classes (most severe first)",
            title_fontsize=6,
        )
        ax.tick_params(labelsize=5)
        ax.set_xlabel("longitude (°)", fontsize=5.5)
        ax.set_ylabel("latitude (°)", fontsize=5.5)
        if attribution:
            ax.annotate(
                attribution, (0.0, -0.16), xycoords="axes fraction", fontsize=4.5, color="0.3"
            )
        fig.tight_layout(pad=0.3)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()
    finally:
        plt.close(fig)


def _draw(ax, row: pd.Series, grey: str, hatch: str | None, labels: dict, patch) -> object:
    """Fill one class; return its legend entry."""
    frame = gpd.GeoDataFrame({"geometry": [row.geometry]}, crs="EPSG:4326")
    frame.plot(ax=ax, color=grey, edgecolor="0.45", linewidth=0.2, hatch=hatch)
    label = labels.get(str(row["class_label"]), str(row["class_label"]))
    label = "\n".join(textwrap.wrap(label, 30)) or label
    return patch(facecolor=grey, edgecolor="0.45", hatch=hatch, label=label)


def _draw_cells(ax, cells: pd.DataFrame, line) -> list:
    """Dots at the exposed cells' centres, area by persons; return the legend entries."""
    if cells.empty:
        return []
    vertices, counts = h3cells.cell_boundaries(h3cells.cells_to_ints(cells["h3_cell"]))
    starts = np.cumsum(counts) - counts
    lon = np.add.reduceat(vertices[:, 0], starts) / counts
    lat = np.add.reduceat(vertices[:, 1], starts) / counts
    persons = cells["persons"].to_numpy(dtype=float)
    top = max(float(persons.max()), 1.0)
    sizes = 1.5 + 40.0 * persons / top
    ax.scatter(lon, lat, s=sizes, c="black", edgecolors="white", linewidths=0.2, zorder=5)
    marks = sorted({int(round(top)), int(round(top / 4)), int(round(top / 20))} - {0})
    return [
        line(
            [],
            [],
            marker="o",
            linestyle="",
            color="black",
            markersize=math.sqrt(1.5 + 40.0 * m / top),
            label=f"exposed cell, {m:,} persons",
        )
        for m in marks
    ]


def _extent(classes: gpd.GeoDataFrame, cells: pd.DataFrame) -> tuple[float, ...]:
    """Return the footprint's box, a little wider."""
    west, south, east, north = (float(v) for v in classes.total_bounds)
    pad_x, pad_y = (east - west) * 0.03 or 0.05, (north - south) * 0.03 or 0.05
    return west - pad_x, south - pad_y, east + pad_x, north + pad_y
