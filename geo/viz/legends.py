"""Colour scales and legends for the map (pure: no Streamlit, no pydeck).

Persons per cell are coloured by 1–2–5 logarithmic bins on round numbers
(:func:`count_bins`), so that a cell of 12 persons and one of 3,000 are both readable;
hazard classes get colours spread over a severity palette (:func:`class_colours`). The
layers (:mod:`geo.viz.layers`) and the HTML legends shown beside the map
(:func:`legend_html`) read the same palettes and bins, so the two always agree.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

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
# ColorBrewer Dark2: classes without a severity order (no colour says "worse").
CATEGORY_PALETTE = (
    (27, 158, 119),
    (117, 112, 179),
    (102, 166, 30),
    (230, 171, 2),
    (166, 118, 29),
    (102, 102, 102),
    (231, 41, 138),
    (217, 95, 2),
)
NICE_STEPS = ((1, 2, 5), (1, 3), (1,))


@dataclass(frozen=True)
class LegendEntry:
    """One line of a legend: a colour and its label."""

    colour: tuple[int, ...]
    label: str


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


def class_colours(n: int, ordered: bool = True) -> list[tuple[int, ...]]:
    """Return ``n`` colours from the class palette, spread from least to most severe.

    ``ordered`` False: classes without a severity order get categorical colours
    (cycled), so that no class looks like an alert.
    """
    if n <= 0:
        return []
    if not ordered:
        return [CATEGORY_PALETTE[i % len(CATEGORY_PALETTE)] for i in range(n)]
    if n == 1:
        return [CLASS_PALETTE[-2]]
    positions = np.linspace(0, len(CLASS_PALETTE) - 1, n).round().astype(int)
    return [CLASS_PALETTE[i] for i in positions]


# Markdown's syntax characters, as numeric entities: a label like "[x](evil.org)" shows as
# itself, never as a link or an image (Streamlit renders the legend as markdown with HTML).
MARKDOWN_ENTITIES = str.maketrans({c: f"&#{ord(c)};" for c in "[]()`*_!\\~|"})


def as_text(label: str) -> str:
    """Return a label escaped for HTML inside markdown: no tag, link or emphasis from it."""
    return html.escape(str(label)).translate(MARKDOWN_ENTITIES)


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
            f'border-radius:3px;margin-right:4px;{swatch}"></span>{as_text(entry.label)}</span>'
        )
    return (
        f'<div style="font-size:0.85rem;line-height:1.4"><strong>{as_text(title)}</strong><br/>'
        + "".join(items)
        + "</div>"
    )
