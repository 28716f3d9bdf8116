"""Exposure tables shaped for the dashboard's tables and charts."""

from __future__ import annotations

import pandas as pd
import pytest

from geo.viz.cells import cell_area_km2, nationality_label
from geo.viz.charts import class_totals, nationality_bars, nationality_bars_chart


def test_exposure_display_frames():
    table = pd.DataFrame(
        {
            "hazard_class": ["MMI IX", "MMI IX", "MMI VIII"],
            "class_rank": [9, 9, 8],
            "nationality": ["ROU", "ALB", "ROU"],
            "persons_low": [5, 1, 2],
            "persons_estimate": [6, 8, 3],
            "persons_high": [7, 9, 4],
            "cases_low": [1, 1, 1],
            "cases_estimate": [2, 2, 2],
            "cases_high": [3, 3, 3],
        }
    )
    totals = class_totals(table)
    assert list(totals["hazard_class"]) == ["MMI IX", "MMI VIII"]
    assert totals.loc[0, "persons_high"] == 16
    bars = nationality_bars(table, "MMI IX")
    assert list(bars["label"]) == ["Albania (ALB)", "Romania (ROU)"]
    assert nationality_label("OTH").startswith("Other nationalities")
    assert cell_area_km2(7) == pytest.approx(5.16, rel=0.01)


def test_the_bar_chart_spec_draws_the_estimate_and_its_range_in_the_frames_order():
    bars = pd.DataFrame(
        {
            "nationality": ["ALB", "ROU"],
            "label": ["Albania (ALB)", "Romania (ROU)"],
            "persons_low": [1, 5],
            "persons_estimate": [8, 6],
            "persons_high": [9, 7],
        }
    )
    spec = nationality_bars_chart(bars, "MMI IX")
    assert spec["encoding"]["y"]["sort"] == ["Albania (ALB)", "Romania (ROU)"]
    bar, rule = spec["layer"]
    assert bar["mark"]["type"] == "bar" and bar["encoding"]["x"]["field"] == "persons_estimate"
    assert "Persons exposed in MMI IX" in bar["encoding"]["x"]["title"]
    assert (rule["encoding"]["x"]["field"], rule["encoding"]["x2"]["field"]) == (
        "persons_low",
        "persons_high",
    )
    fields = {t["field"] for t in bar["encoding"]["tooltip"]}
    assert fields == {"label", "persons_low", "persons_estimate", "persons_high"} <= set(bars)
