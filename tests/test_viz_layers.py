"""pydeck layers and views: flat cell layers, footprint outlines, base map, deck."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.io.footprints import read_footprint
from geo.release import ReleasePolicy, protect
from geo.tools.classes import to_bands
from geo.viz.cells import release_to_map_cells
from geo.viz.layers import (
    CELL_FIELDS,
    bounds_to_view,
    build_deck,
    cells_to_layers,
    cells_to_view,
    classes_to_layer,
    regions_to_basemap,
)
from geo.viz.legends import bin_colours, bin_indices, count_bins
from tests.factories import clustered_records

ROOT = Path(__file__).resolve().parent.parent
REGIONS = ROOT / "data" / "admin" / "italy_regions_limits_IT_regions.geojson"
BASEMAP = ROOT / "data" / "basemap" / "italy_outline.geojson"
NORCIA_MMI = ROOT / "data" / "footprints" / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"


@pytest.fixture(scope="module")
def release():
    return protect(clustered_records(8000, seed=11), ReleasePolicy(k=5))


def test_one_flat_layer_per_resolution_and_bin_with_released_columns_only(release):
    cells = release_to_map_cells(release).cells
    edges = count_bins(cells["persons"])
    layers = cells_to_layers(cells, edges)
    bins = bin_indices(cells["persons"], edges)
    expected = sorted({(int(r), int(b)) for r, b in zip(cells["resolution"], bins, strict=True)})
    assert [layer.id for layer in layers] == [f"cells-res{r}-bin{b}" for r, b in expected]
    drawn = []
    for layer in layers:
        spec = json.loads(layer.to_json())
        assert spec["extruded"] is False
        assert spec["lineWidthUnits"] == "pixels"
        assert {key for row in spec["data"] for key in row} == set(CELL_FIELDS.values())
        # The layer's one colour is the bin colour of every cell it draws.
        colour = tuple(spec["getFillColor"][:3])
        persons = pd.Series([row[CELL_FIELDS["persons"]] for row in spec["data"]])
        assert set(bin_colours(persons, edges)) == {colour}
        drawn += [row[CELL_FIELDS["h3_cell"]] for row in spec["data"]]
    assert sorted(drawn) == sorted(cells["h3_cell"])


def test_footprint_layer_and_legend():
    classes = to_bands(read_footprint(NORCIA_MMI).classes)
    layer, legend = classes_to_layer(classes)
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
    derived = regions_to_basemap(regions, "reg_name", "Italy")
    area = shapely.area(derived.geometry.values)
    assert np.allclose(shapely.area(shipped.geometry.values), area, rtol=0.01)
    country = shipped.geometry.iloc[0]
    assert abs(country.area - shapely.union_all(regions.geometry.values).area) < 0.01 * country.area


def test_view_frames_the_cells(release):
    cells = list(release.groups["h3_cell"].unique())
    view = cells_to_view(cells)
    centres = np.array([h3.cell_to_latlng(c) for c in cells])
    assert centres[:, 0].min() < view["latitude"] < centres[:, 0].max()
    assert centres[:, 1].min() < view["longitude"] < centres[:, 1].max()
    assert 6 < view["zoom"] < 10
    assert cells_to_view([])["zoom"] == 6.0
    # Rome and Jakarta, 95° of longitude apart, both inside a 1000 px wide map.
    far = bounds_to_view((12.5, -6.2, 106.8, 41.9))
    half_width_deg = 1000 / 2 * 360 / (512 * 2 ** far["zoom"])
    assert far["longitude"] - half_width_deg < 12.5 and far["longitude"] + half_width_deg > 106.8


def test_the_deck_names_no_basemap_provider_and_makes_no_request():
    offline = json.loads(build_deck([], cells_to_view([])).to_json())
    assert offline["mapStyle"] == "__MAP_STYLE__" and "http" not in json.dumps(offline)
