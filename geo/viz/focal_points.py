"""The focal points as a map layer: one dot per organisation, plain-text tooltip.

Takes the rows of :func:`geo.tools.focal_points.focal_points_near` (or any frame with
``lon``, ``lat``, ``organisation``, ``serves_text``, ``contact``); only the columns
shown are sent to the browser.
"""

from __future__ import annotations

import pandas as pd
import pydeck as pdk

FOCAL_COLOUR = (0, 90, 160, 230)
UNMATCHED_COLOUR = (120, 120, 120, 200)
# Plain text (the deck's tooltip is set as text, never HTML). The deck's tooltip is one
# template for every layer: the lead merges this one with the cells' (the ``tooltip``
# column holds the whole text, so ``{tooltip}`` alone is enough).
FOCAL_TOOLTIP_TEXT = "{tooltip}"


def focal_point_tooltip(row: pd.Series) -> str:
    """Return the tooltip text of one focal point."""
    lines = [str(row["organisation"]), f"serves: {row['serves_text']}"]
    if row.get("matches"):
        lines.append(f"for the exposed: {row['matches']}")
    if "distance_km" in row and row["distance_km"] == row["distance_km"]:
        where = "inside the footprint" if row.get("inside") else f"{row['distance_km']:g} km away"
        lines.append(where)
    lines.append(f"contact: {row['contact']}")
    return "\n".join(lines)


def focal_points_layer(points: pd.DataFrame, layer_id: str = "focal_points") -> pdk.Layer:
    """Return a ScatterplotLayer of focal points (matched ones blue, the others grey).

    The layer's data holds only ``lon``, ``lat``, ``colour`` and ``tooltip``.
    """
    matched = points["matches"].astype(bool) if "matches" in points else True
    data = pd.DataFrame(
        {
            "lon": points["lon"].astype(float),
            "lat": points["lat"].astype(float),
            "colour": [
                list(FOCAL_COLOUR if m else UNMATCHED_COLOUR)
                for m in (matched if not isinstance(matched, bool) else [True] * len(points))
            ],
            "tooltip": [focal_point_tooltip(row) for _, row in points.iterrows()],
        }
    )
    return pdk.Layer(
        "ScatterplotLayer",
        data=data,
        id=layer_id,
        get_position=["lon", "lat"],
        get_fill_color="colour",
        get_line_color=[255, 255, 255, 255],
        stroked=True,
        line_width_min_pixels=1,
        get_radius=400,
        radius_min_pixels=5,
        radius_max_pixels=14,
        pickable=True,
    )
