"""Colour bins and legends: round logarithmic edges, bin colours, escaped HTML."""

from __future__ import annotations

import pandas as pd

from geo.viz.legends import (
    PERSONS_PALETTE,
    LegendEntry,
    bin_colours,
    count_bins,
    count_legend,
    legend_html,
)


def test_count_bins_cover_small_and_large_counts():
    assert count_bins([10, 12, 3000]) == [10, 30, 100, 300, 1000, 3000, 10000]
    assert count_bins([10, 45]) == [10, 20, 50]
    wide = count_bins([1, 10**9])
    assert len(wide) - 1 <= len(PERSONS_PALETTE)
    assert wide[0] <= 1 and wide[-1] > 10**9
    assert count_bins([]) == [1, 2]
    colours = bin_colours(pd.Series([10, 29, 30, 9999]), [10, 30, 100, 10000])
    palette = PERSONS_PALETTE
    assert colours == [palette[0], palette[0], palette[1], palette[2]]
    labels = [e.label for e in count_legend([10, 30, 100])]
    assert labels == ["10–29", "30–99"]


def test_legend_html_escapes_labels():
    html = legend_html("Classes <b>", [LegendEntry((1, 2, 3), "<script>")])
    assert "<script>" not in html and "&lt;script&gt;" in html
