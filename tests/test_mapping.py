"""The map helpers: released values per cell, colour bins, layers, base map, views."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import polars as pl
import pytest
import shapely

from geo import mapping
from geo.io.footprints import read_footprint
from geo.release import ReleasePolicy, protect
from geo.tools.classes import to_bands
from tests.conftest import clustered_records

ROOT = Path(__file__).resolve().parent.parent
REGIONS = ROOT / "data" / "admin" / "italy_regions_limits_IT_regions.geojson"
BASEMAP = ROOT / "data" / "basemap" / "italy_outline.geojson"
NORCIA_MMI = ROOT / "data" / "footprints" / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"


@pytest.fixture(scope="module")
def release():
    return protect(clustered_records(8000, seed=11), ReleasePolicy(k=5))


def test_cells_are_sums_of_released_groups(release):
    shown = mapping.release_to_map_cells(release, ["ROU", "UKR"])
    groups = release.groups[release.groups["nationality"].isin(["ROU", "UKR"])]
    assert shown.groups_shown == len(groups) and shown.groups_not_available == 0
    expected = groups.groupby("h3_cell")[["persons", "cases"]].sum()
    cells = shown.cells.set_index("h3_cell")
    pd.testing.assert_frame_equal(
        cells[["persons", "cases"]].sort_index(), expected.sort_index(), check_dtype=False
    )
    released = groups.set_index(["h3_cell", "nationality"])["persons"]
    for cell, text in cells["nationalities"].items():
        for part in text.split(" · "):
            code, value = part.rsplit(" ", 1)
            assert released[(cell, code)] == int(value.replace(",", ""))
    assert (cells["resolution"] == [h3.get_resolution(c) for c in cells.index]).all()


def test_breakdown_filter_uses_released_categories_only(release):
    shown = mapping.release_to_map_cells(release, None, "age_band", "18-59")
    rows = release.breakdown("age_band")
    published = rows[["h3_cell", "nationality"]].drop_duplicates()
    assert shown.groups_shown == len(published)
    assert shown.groups_not_available == len(release.groups) - len(published)
    adults = rows[rows["category"] == "18-59"]
    assert shown.cells["persons"].sum() == adults["persons"].sum()
    with pytest.raises(ValueError, match="vulnerability"):
        mapping.release_to_map_cells(release, None, "vulnerability", "none")


def test_count_bins_cover_small_and_large_counts():
    assert mapping.count_bins([10, 12, 3000]) == [10, 30, 100, 300, 1000, 3000, 10000]
    assert mapping.count_bins([10, 45]) == [10, 20, 50]
    wide = mapping.count_bins([1, 10**9])
    assert len(wide) - 1 <= len(mapping.PERSONS_PALETTE)
    assert wide[0] <= 1 and wide[-1] > 10**9
    assert mapping.count_bins([]) == [1, 2]
    colours = mapping.bin_colours(pd.Series([10, 29, 30, 9999]), [10, 30, 100, 10000])
    palette = mapping.PERSONS_PALETTE
    assert colours == [palette[0], palette[0], palette[1], palette[2]]
    labels = [e.label for e in mapping.count_legend([10, 30, 100])]
    assert labels == ["10–29", "30–99"]


def test_one_flat_layer_per_resolution_and_bin_with_released_columns_only(release):
    cells = mapping.release_to_map_cells(release).cells
    edges = mapping.count_bins(cells["persons"])
    layers = mapping.cells_to_layers(cells, edges)
    bins = mapping.bin_indices(cells["persons"], edges)
    expected = sorted({(int(r), int(b)) for r, b in zip(cells["resolution"], bins, strict=True)})
    assert [layer.id for layer in layers] == [f"cells-res{r}-bin{b}" for r, b in expected]
    drawn = []
    for layer in layers:
        spec = json.loads(layer.to_json())
        assert spec["extruded"] is False
        assert spec["lineWidthUnits"] == "pixels"
        assert {key for row in spec["data"] for key in row} == set(mapping.MAP_COLUMNS)
        # The layer's one colour is the bin colour of every cell it draws.
        colour = tuple(spec["getFillColor"][:3])
        persons = pd.Series([row["persons"] for row in spec["data"]])
        assert set(mapping.bin_colours(persons, edges)) == {colour}
        drawn += [row["h3_cell"] for row in spec["data"]]
    assert sorted(drawn) == sorted(cells["h3_cell"])


def test_footprint_layer_and_legend():
    classes = to_bands(read_footprint(NORCIA_MMI).classes)
    layer, legend = mapping.classes_to_layer(classes)
    features = json.loads(layer.to_json())["data"]["features"]
    assert len(features) == len(classes)
    assert legend[0].label == "MMI IX" and legend[-1].label == "MMI < V"
    assert len({entry.colour for entry in legend}) == len(legend)
    assert json.loads(layer.to_json())["pickable"] is False


def test_shipped_basemap_is_derived_from_the_regions():
    regions = gpd.read_file(REGIONS)
    shipped = gpd.read_file(BASEMAP)
    assert list(shipped["level"]) == ["country"] + ["region"] * len(regions)
    assert set(shipped["name"][1:]) == set(regions["reg_name"])
    derived = mapping.regions_to_basemap(regions, "reg_name", "Italy")
    area = shapely.area(derived.geometry.values)
    assert np.allclose(shapely.area(shipped.geometry.values), area, rtol=0.01)
    country = shipped.geometry.iloc[0]
    assert abs(country.area - shapely.union_all(regions.geometry.values).area) < 0.01 * country.area
    layers = mapping.outline_layers([BASEMAP])
    assert [layer.id for layer in layers] == ["basemap-land", "basemap-admin"]


def test_view_frames_the_cells(release):
    cells = list(release.groups["h3_cell"].unique())
    view = mapping.cells_to_view(cells)
    centres = np.array([h3.cell_to_latlng(c) for c in cells])
    assert centres[:, 0].min() < view["latitude"] < centres[:, 0].max()
    assert centres[:, 1].min() < view["longitude"] < centres[:, 1].max()
    assert 6 < view["zoom"] < 10
    assert mapping.cells_to_view([])["zoom"] == 6.0
    # Rome and Jakarta, 95° of longitude apart, both inside a 1000 px wide map.
    far = mapping.bounds_to_view((12.5, -6.2, 106.8, 41.9))
    half_width_deg = 1000 / 2 * 360 / (512 * 2 ** far["zoom"])
    assert far["longitude"] - half_width_deg < 12.5 and far["longitude"] + half_width_deg > 106.8


def test_deck_without_basemap_makes_no_request_and_tiles_only_when_configured():
    offline = json.loads(mapping.build_deck([], mapping.cells_to_view([])).to_json())
    assert offline["mapStyle"] == "__MAP_STYLE__" and "http" not in json.dumps(offline)
    online = json.loads(
        mapping.build_deck(
            [], mapping.cells_to_view([]), "https://t.example/{z}/{x}/{y}.png"
        ).to_json()
    )
    style = json.loads(unquote(online["mapStyle"].removeprefix("data:application/json,")))
    assert style["sources"]["tiles"]["tiles"] == ["https://t.example/{z}/{x}/{y}.png"]


def test_legend_html_escapes_labels():
    html = mapping.legend_html("Classes <b>", [mapping.LegendEntry((1, 2, 3), "<script>")])
    assert "<script>" not in html and "&lt;script&gt;" in html


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
    totals = mapping.class_totals(table)
    assert list(totals["hazard_class"]) == ["MMI IX", "MMI VIII"]
    assert totals.loc[0, "persons_high"] == 16
    bars = mapping.nationality_bars(table, "MMI IX")
    assert list(bars["label"]) == ["Albania (ALB)", "Romania (ROU)"]
    assert mapping.nationality_label("OTH").startswith("Other nationalities")
    assert mapping.cell_area_km2(7) == pytest.approx(5.16, rel=0.01)


def test_tooltip_lists_the_largest_nationalities_and_counts_the_rest():
    cell = h3.latlng_to_cell(42.8, 13.1, 7)
    codes = ["ALB", "CHN", "IND", "MAR", "PAK", "ROU", "UKR", "PHL"]
    groups = pd.DataFrame(
        {
            "h3_cell": cell,
            "resolution": 7,
            "nationality": codes,
            "persons": [5, 1200, 7, 7, 9, 3400, 11, 6],
            "cases": [1] * 8,
        }
    )
    cells = mapping._cells_from_groups(pl.from_pandas(groups))
    assert len(cells) == 1
    row = cells.iloc[0]
    assert row["persons"] == 4645 and row["cases"] == 8 and row["resolution"] == 7
    assert row["nationalities"] == ("ROU 3,400 · CHN 1,200 · UKR 11 · +5 more")


def test_many_cells_are_drawn_as_sums_at_a_coarser_display_resolution(release):
    everything = mapping.release_to_map_cells(release)
    assert everything.display_resolution is None
    limit = len(everything.cells) // 2
    shown = mapping.release_to_map_cells(release, max_cells=limit)
    target = shown.display_resolution
    assert target is not None and shown.released_cells == len(everything.cells)
    assert len(shown.cells) <= limit
    # The finest display resolution that fits: one finer would not.
    finer = {
        h3.cell_to_parent(c, target + 1) if h3.get_resolution(c) > target + 1 else c
        for c in everything.cells["h3_cell"]
    }
    assert len(finer) > limit
    # Reference: each released group in its cell, or its cell's parent at the target.
    groups = release.groups.assign(
        key=[
            h3.cell_to_parent(c, target) if r > target else c
            for c, r in zip(release.groups["h3_cell"], release.groups["resolution"], strict=True)
        ]
    )
    expected = groups.groupby("key")[["persons", "cases"]].sum()
    cells = shown.cells.set_index("h3_cell")
    pd.testing.assert_frame_equal(
        cells[["persons", "cases"]].sort_index(),
        expected.sort_index().rename_axis("h3_cell"),
        check_dtype=False,
    )
    assert (cells["resolution"] == [h3.get_resolution(c) for c in cells.index]).all()
    per_nationality = groups.groupby(["key", "nationality"])["persons"].sum()
    for cell, text in cells["nationalities"].items():
        for part in text.split(" · "):
            if not part.startswith("+"):
                code, value = part.rsplit(" ", 1)
                assert per_nationality[(cell, code)] == int(value.replace(",", ""))
    assert mapping.release_to_map_cells(release, max_cells=len(everything.cells)).cells.equals(
        everything.cells
    )
