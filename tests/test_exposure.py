"""Exposure bounds and estimates, checked against independent computations and the truth."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from demo.accuracy import compare_with_truth, demo_truth_points, summarise_errors
from geo.errors import InputError
from geo.pipeline import compute_exposure
from geo.release import Release, ReleasePolicy, protect
from tests.factories import clustered_records

NORCIA = (13.1092, 42.8303)


def released(cells_persons: dict[str, tuple[str, int, int]]) -> Release:
    """A hand-made release: cell -> (nationality, cases, persons)."""
    rows = [
        (cell, h3.get_resolution(cell), nat, cases, persons)
        for cell, (nat, cases, persons) in cells_persons.items()
    ]
    groups = pd.DataFrame(
        rows, columns=["h3_cell", "resolution", "nationality", "cases", "persons"]
    )
    return Release(groups=groups, breakdowns=pd.DataFrame(), metadata={})


def cell_polygon(cell: str) -> shapely.Polygon:
    return shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(cell)])


def test_low_estimate_high_against_plain_geometry():
    centre = h3.latlng_to_cell(NORCIA[1], NORCIA[0], 7)
    ring = sorted(h3.grid_disk(centre, 3))
    release = released({cell: ("ROU", 10 + i, 20 + i) for i, cell in enumerate(ring)})
    zone = shapely.Point(NORCIA).buffer(0.05)
    classes = gpd.GeoDataFrame(
        {"class_label": ["zone"], "class_rank": [1]}, geometry=[zone], crs=4326
    )
    table = compute_exposure(release, classes, weighting="area").table
    inside = [c for c in ring if zone.covers(cell_polygon(c))]
    touching = [c for c in ring if zone.intersection(cell_polygon(c)).area > 0]
    shares = {c: zone.intersection(cell_polygon(c)).area / cell_polygon(c).area for c in ring}
    persons = {c: release.groups.set_index("h3_cell").loc[c, "persons"] for c in ring}
    row = table.iloc[0]
    assert 0 < len(inside) < len(touching) < len(ring)
    assert row["persons_low"] == sum(persons[c] for c in inside)
    assert row["persons_high"] == sum(persons[c] for c in touching)
    assert row["persons_estimate"] == round(sum(persons[c] * shares[c] for c in ring))
    assert list(table.columns) == [
        "hazard_class",
        "class_rank",
        "nationality",
        "persons_low",
        "persons_estimate",
        "persons_high",
        "cases_low",
        "cases_estimate",
        "cases_high",
    ]


def test_unpublished_people_never_appear():
    """A cell whose 3 registrants were not published shows 0, never 3."""
    records = clustered_records(2_000, seed=5)
    release = protect(records, ReleasePolicy())
    published = set(release.groups["h3_cell"])
    raw_cells = {h3.cell_to_parent(h3.int_to_str(c), 7) for c in records["cell"]}
    lonely = sorted(raw_cells - {c for c in raw_cells if c in published})[0]
    classes = gpd.GeoDataFrame(
        {"class_label": ["tiny"], "class_rank": [1]},
        geometry=[cell_polygon(lonely).buffer(-1e-4)],
        crs=4326,
    )
    table = compute_exposure(release, classes).table
    covering = release.groups[
        [
            h3.cell_to_parent(lonely, int(r)) == c
            for c, r in release.groups[["h3_cell", "resolution"]].itertuples(index=False)
        ]
    ]
    assert set(table["persons_high"]) <= set(covering["persons"])
    assert (table["persons_low"] == 0).all()


def norcia_classes():
    from geo.io.footprints import read_footprint
    from geo.tools.classes import to_bands

    return to_bands(
        read_footprint(
            "data/footprints/italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
        ).classes
    )


@pytest.fixture(scope="module")
def demo_points():
    return demo_truth_points(scale=0.05)


def test_truth_lies_within_bounds_on_the_demo_with_norcia(demo_points):
    classes = norcia_classes()
    for placement in ("settlement", "scattered"):
        points = demo_points[demo_points["placement"] == placement].drop(columns="placement")
        comparison = compare_with_truth(points, classes, ReleasePolicy())
        assert len(comparison) > 50
        assert (comparison["persons_true"] >= comparison["persons_low"]).all()
        assert (comparison["persons_true"] <= comparison["persons_high"]).all()
        summary = summarise_errors(comparison, min_persons=50).set_index("weighting")
        assert summary.loc["blend", "median_abs_error"] < 0.15


def test_admin_breakdown_and_headline():
    release = protect(clustered_records(20_000, seed=2), ReleasePolicy())
    classes = norcia_classes()
    admin = gpd.read_file("data/admin/italy_regions_limits_IT_regions.geojson")
    by_area = compute_exposure(release, classes, admin=admin, admin_field="reg_name")
    plain = compute_exposure(release, classes)
    assert list(by_area.table.columns[:2]) == ["reg_name", "hazard_class"]
    assert {"Umbria", "Marche"} <= set(by_area.table["reg_name"])
    assert by_area.headline().equals(plain.headline())
    # Low sums are exact partitions; high may count a cell in two areas.
    low = by_area.table.groupby(["hazard_class", "nationality"])["persons_low"].sum()
    plain_low = plain.table.set_index(["hazard_class", "nationality"])["persons_low"]
    assert (low <= plain_low.loc[low.index]).all()
    high = by_area.table.groupby(["hazard_class", "nationality"])["persons_high"].sum()
    assert (
        high
        >= plain.table.set_index(["hazard_class", "nationality"])["persons_high"].loc[high.index]
    ).all()
    with pytest.raises(InputError, match="no field 'province'.*reg_name"):
        compute_exposure(release, classes, admin=admin, admin_field="province")


def test_cumulative_classes_grow_with_lower_thresholds():
    from geo.io.footprints import read_footprint
    from geo.tools.classes import to_cumulative

    release = protect(clustered_records(20_000, seed=2), ReleasePolicy())
    classes = to_cumulative(
        read_footprint(
            "data/footprints/italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
        ).classes
    )
    table = compute_exposure(release, classes, cumulative=True).table
    totals = table.groupby("class_rank")[["persons_low", "persons_high"]].sum().sort_index()
    assert np.all(np.diff(totals["persons_low"].to_numpy()) <= 0)
    assert np.all(np.diff(totals["persons_high"].to_numpy()) <= 0)


def test_empty_classes_are_refused():
    release = released({h3.latlng_to_cell(42.8, 13.1, 7): ("ROU", 10, 10)})
    empty = gpd.GeoDataFrame({"class_label": [], "class_rank": []}, geometry=[], crs=4326)
    with pytest.raises(InputError, match="no classes"):
        compute_exposure(release, empty)
