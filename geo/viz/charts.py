"""Exposure tables shaped for the dashboard's tables and bar charts (pure pandas).

The exposure page shows totals per hazard class and, for one class, persons per
nationality with their low / high range; shaping those frames here keeps the page thin
and the shaping testable without Streamlit.
"""

from __future__ import annotations

import pandas as pd

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
