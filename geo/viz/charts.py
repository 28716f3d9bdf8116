"""Exposure tables shaped for the dashboard's tables and bar charts (pandas, Vega-Lite).

The exposure page shows totals per hazard class and, for one class, persons per
nationality with their low / high range; shaping those frames here keeps the page thin
and the shaping testable without Streamlit.
"""

from __future__ import annotations

import pandas as pd

from geo.export_columns import PERSONS_COLUMNS, column_title
from geo.viz.cells import nationality_label


def class_totals(table: pd.DataFrame) -> pd.DataFrame:
    """Return an exposure table summed over nationalities (and admin areas), per class.

    Adds the rows as they are. A noisy release's rows are already widened for the
    noise, so their sum is wider than it need be: the Exposure page shows
    :meth:`geo.exposure_table.Exposure.class_totals`, widened once for all the groups.

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


def nationality_bars_chart(bars: pd.DataFrame, hazard_class: str) -> dict:
    """Return the Vega-Lite spec of :func:`nationality_bars`: estimate bars, low–high rules.

    A plain spec, not an Altair chart: the dashboard draws it with
    ``st.vega_lite_chart`` and so never imports Altair (about 24 MiB of the server's
    memory and a third of a second of the Exposure page's first run). The nationalities
    keep the frame's order (largest estimate first).
    """
    tooltip = [{"field": "label", "type": "nominal", "title": "Nationality"}] + [
        {"field": c, "type": "quantitative", "title": column_title(c)} for c in PERSONS_COLUMNS
    ]
    order = bars["label"].tolist()
    return {
        "encoding": {"y": {"field": "label", "type": "nominal", "sort": order, "title": None}},
        "layer": [
            {
                "mark": {"type": "bar", "color": "#8c6bb1"},
                "encoding": {
                    "x": {
                        "field": "persons_estimate",
                        "type": "quantitative",
                        # two lines: one did not fit a phone's width
                        "title": [f"Persons exposed in {hazard_class}", "(estimate, low–high)"],
                    },
                    "tooltip": tooltip,
                },
            },
            {
                "mark": {"type": "rule", "color": "#333333", "strokeWidth": 2},
                "encoding": {
                    "x": {"field": "persons_low", "type": "quantitative"},
                    "x2": {"field": "persons_high"},
                },
            },
        ],
    }
