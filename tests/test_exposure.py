"""Exposure bounds and estimates, checked against independent computations and the truth."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from demo.accuracy import (
    compare_with_truth,
    demo_truth_points,
    released_points,
    summarise_errors,
    truth_by_class,
)
from geo.errors import InputError
from geo.exposure_table import TRUTH_SENTENCE
from geo.noise import noise_bound
from geo.pipeline import compute_exposure
from geo.release import Release, ReleasePolicy, protect
from geo.tools.cell_pairs import cell_zone_shares
from tests.factories import clustered_records

NORCIA = (13.1092, 42.8303)
REGIONS = "data/admin/italy_regions_limits_IT_regions.geojson"
EXACT = ReleasePolicy(noise_scale=0)  # method 1: released values are the true counts


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


def storage_polygon(cell: str) -> shapely.Geometry:
    """Where a cell's records can be: the union of its resolution-8 children."""
    return shapely.union_all([cell_polygon(c) for c in h3.cell_to_children(cell, 8)])


def test_low_estimate_high_against_plain_geometry():
    centre = h3.latlng_to_cell(NORCIA[1], NORCIA[0], 7)
    ring = sorted(h3.grid_disk(centre, 3))
    release = released({cell: ("ROU", 10 + i, 20 + i) for i, cell in enumerate(ring)})
    zone = shapely.Point(NORCIA).buffer(0.05)
    classes = gpd.GeoDataFrame(
        {"class_label": ["zone"], "class_rank": [1]}, geometry=[zone], crs=4326
    )
    table = compute_exposure(release, classes, weighting="area").table
    shapes = {c: storage_polygon(c) for c in ring}
    inside = [c for c in ring if zone.covers(shapes[c])]
    touching = [c for c in ring if zone.intersection(shapes[c]).area > 0]
    shares = {c: zone.intersection(shapes[c]).area / shapes[c].area for c in ring}
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
        "reliability",
    ]


def test_unpublished_people_never_appear():
    """A cell whose registrants were published only rolled up shows released sums only.

    Its own count is in no row: high is the sum of the released groups whose (coarser)
    cells touch it, low is 0. Geometry of low and high: an exact release.
    """
    records = clustered_records(2_000, seed=5)
    release = protect(records, EXACT)
    published = set(release.groups["h3_cell"])
    raw_cells = {h3.cell_to_parent(h3.int_to_str(c), 7) for c in records["cell"]}
    lonely = [c for c in sorted(raw_cells - published) if h3.cell_to_parent(c, 6) in published]
    classes = gpd.GeoDataFrame(
        {"class_label": ["tiny"], "class_rank": [1]},
        geometry=[cell_polygon(lonely[0]).buffer(-1e-4)],
        crs=4326,
    )
    table = compute_exposure(release, classes).table
    expected = plain_sums(release, classes, [])
    assert len(table) == len(expected) > 0
    merged = table.merge(expected, on=["hazard_class", "nationality"], suffixes=("", "_plain"))
    assert merged["persons_high"].equals(merged["persons_high_plain"])
    assert (merged["groups_high"] >= 1).all() and (merged["groups_low"] == 0).all()
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
    """A noisy release (the default policy): the widened bounds hold the truth."""
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
    """Areas partition low and may double-count high (geometry: an exact release)."""
    release = protect(clustered_records(20_000, seed=2), EXACT)
    classes = norcia_classes()
    admin = gpd.read_file(REGIONS)
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

    release = protect(clustered_records(20_000, seed=2), EXACT)  # geometry: no noise
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


# --------------------------------------------------------------------------- noise


@pytest.fixture(scope="module")
def umbria():
    """Records built in code with their exact points; the noisy release of them."""
    records = clustered_records(20_000, seed=2, keep_points=True)
    release = protect(records.drop("lat", "lon"), ReleasePolicy())
    points = pd.DataFrame(
        {
            "nationality": records["nationality"].to_numpy(),
            "latitude": records["lat"].to_numpy(),
            "longitude": records["lon"].to_numpy(),
            "persons": records["persons"].to_numpy(),
        }
    )
    return records.drop("lat", "lon"), points, release


def class_and_area_zones() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Norcia MMI bands, and the bands cut by the Italian regions (field reg_name).

    The cut bands include each band's part outside every region (the sea off the coast),
    named like the exposure's outside row.
    """
    from geo.tools.areas import area_zones

    classes = norcia_classes()[["class_label", "class_rank", "geometry"]].reset_index(drop=True)
    areas = area_zones(classes, gpd.read_file(REGIONS), "reg_name")
    return classes, areas.reset_index(drop=True)


def plain_sums(release: Release, zones: gpd.GeoDataFrame, keys: list[str]) -> pd.DataFrame:
    """Released persons and cases of the cells inside and touching each zone, by nationality.

    With how many released groups each sum adds up: an independent restatement of the
    bounds before widening, from :func:`cell_zone_shares` and plain pandas.
    """
    pairs = cell_zone_shares(sorted(release.groups["h3_cell"].unique()), zones)
    merged = release.groups.merge(pairs, on="h3_cell").merge(
        zones.drop(columns="geometry"), left_on="zone", right_index=True
    )
    merged = merged.rename(columns={"class_label": "hazard_class"})
    for what in ("persons", "cases"):
        merged[f"{what}_low"] = merged[what] * merged["inside"]
        merged[f"{what}_high"] = merged[what]
    merged["groups_low"] = merged["inside"].astype(int)
    merged["groups_high"] = 1
    columns = [f"{w}_{b}" for w in ("persons", "cases") for b in ("low", "high")]
    by = [*keys, "hazard_class", "nationality"]
    return merged.groupby(by, as_index=False)[columns + ["groups_low", "groups_high"]].sum()


def truth_in(points: pd.DataFrame, zones: gpd.GeoDataFrame, keys: list[str]) -> pd.DataFrame:
    """Exact persons and cases per zone × nationality, by point in polygon."""
    located = gpd.GeoDataFrame(
        points, geometry=gpd.points_from_xy(points["longitude"], points["latitude"]), crs=4326
    )
    joined = gpd.sjoin(located, zones, predicate="within")
    return (
        joined.groupby([*keys, "class_label", "nationality"])
        .agg(persons_true=("persons", "sum"), cases_true=("persons", "size"))
        .reset_index()
        .rename(columns={"class_label": "hazard_class"})
    )


def test_noisy_bounds_hold_the_truth_and_widen_by_the_noise_bound(umbria):
    _, points, release = umbria
    scale = release.metadata["policy"]["noise_scale"]
    assert release.metadata["method"] == "noise" and scale > 0
    covered = released_points(points, release)  # the registrations the release covers
    classes, areas = class_and_area_zones()
    exposure = compute_exposure(
        release, norcia_classes(), weighting="area", admin=gpd.read_file(REGIONS),
        admin_field="reg_name",
    )  # fmt: skip
    assert exposure.confidence == 0.99
    assert exposure.withheld_persons == release.metadata["dropped"]["persons"]
    for table, zones, keys in (
        (exposure.by_class, classes, []),
        (exposure.table, areas, ["reg_name"]),
    ):
        on = [*keys, "hazard_class", "nationality"]
        rows = table.merge(plain_sums(release, zones, keys), on=on, suffixes=("", "_plain"))
        assert len(rows) == len(table)
        for what, figure_scale in (("cases", scale), ("persons", 2 * scale)):
            low = rows["groups_low"].map(lambda n, s=figure_scale: noise_bound(n, s))
            high = rows["groups_high"].map(lambda n, s=figure_scale: noise_bound(n, s))
            assert (low > 0).any() and (high >= low).all()
            assert rows[f"{what}_low"].equals((rows[f"{what}_low_plain"] - low).clip(lower=0))
            assert rows[f"{what}_high"].equals(rows[f"{what}_high_plain"] + high)
        compared = rows.merge(truth_in(covered, zones, keys), on=on, how="outer").fillna(0)
        big = compared[compared["persons_true"] >= 100]
        assert len(big) >= 20
        for what in ("cases", "persons"):
            assert (big[f"{what}_low"] <= big[f"{what}_true"]).all()
            assert (big[f"{what}_true"] <= big[f"{what}_high"]).all()


def test_widening_keeps_the_truth_where_every_cell_is_inside(umbria):
    """Where low and high sum the same groups, only the widening holds the truth."""
    _, points, release = umbria
    classes = gpd.GeoDataFrame(
        {"class_label": ["all"], "class_rank": [1]},
        geometry=[shapely.box(10, 40, 16, 46)],
        crs=4326,
    )
    table = compute_exposure(release, classes, weighting="area").table
    plain = plain_sums(release, classes, [])
    assert plain["persons_low"].equals(plain["persons_high"])  # every cell inside
    truth = truth_by_class(released_points(points, release), classes)
    rows = table.merge(plain, on=["hazard_class", "nationality"], suffixes=("", "_plain"))
    rows = rows.merge(truth, on=["hazard_class", "nationality"], validate="one_to_one")
    assert len(rows) == len(table) == len(truth)
    for what in ("cases", "persons"):
        assert (rows[f"{what}_high_plain"] != rows[f"{what}_true"]).any()  # the noise
        assert (rows[f"{what}_low"] <= rows[f"{what}_true"]).all()
        assert (rows[f"{what}_true"] <= rows[f"{what}_high"]).all()


def test_class_totals_and_headline_are_widened_once(umbria):
    _, _, release = umbria
    scale = release.metadata["policy"]["noise_scale"]
    exposure = compute_exposure(release, norcia_classes(), weighting="area")
    plain = plain_sums(release, norcia_classes().reset_index(drop=True), [])
    worst = plain[plain["hazard_class"] == "MMI IX"].sum(numeric_only=True)
    headline = exposure.headline()
    assert headline["hazard_class"] == "MMI IX"
    assert headline["persons_low"] == max(
        0, worst["persons_low"] - noise_bound(int(worst["groups_low"]), 2 * scale)
    )
    assert headline["persons_high"] == worst["persons_high"] + noise_bound(
        int(worst["groups_high"]), 2 * scale
    )
    rows = exposure.by_class[exposure.by_class["hazard_class"] == "MMI IX"]
    assert headline["persons_estimate"] == rows["persons_estimate"].sum()
    # Widened once, the total is narrower than the sum of its widened rows.
    assert headline["persons_high"] < rows["persons_high"].sum()
    assert headline["persons_low"] > rows["persons_low"].sum()
    totals = exposure.class_totals()
    assert list(totals["class_rank"]) == sorted(totals["class_rank"], reverse=True)
    assert totals.iloc[0][["persons_low", "persons_high"]].tolist() == [
        headline["persons_low"],
        headline["persons_high"],
    ]


def test_an_exact_release_keeps_the_plain_bounds(umbria):
    records, points, _ = umbria
    release = protect(records, EXACT)
    assert release.metadata["method"] == "exact"
    exposure = compute_exposure(release, norcia_classes(), weighting="area")
    plain = plain_sums(release, norcia_classes().reset_index(drop=True), [])
    on = ["hazard_class", "nationality"]
    rows = exposure.by_class.merge(plain, on=on, suffixes=("", "_plain"))
    assert len(rows) == len(exposure.by_class) == len(plain)
    for column in ("persons_low", "persons_high", "cases_low", "cases_high"):
        assert rows[column].equals(rows[f"{column}_plain"])
    assert exposure.confidence == 1.0 and exposure.statement() == TRUTH_SENTENCE
    assert exposure.withheld_persons == release.metadata["dropped"]["persons"]
    worst = rows[rows["class_rank"] == rows["class_rank"].max()]
    assert exposure.headline()["persons_low"] == worst["persons_low"].sum()
    assert exposure.headline()["persons_high"] == worst["persons_high"].sum()
    truth = truth_by_class(released_points(points, release), norcia_classes())
    compared = rows.merge(truth, on=on, how="outer").fillna(0)
    assert (compared["persons_low"] <= compared["persons_true"]).all()
    assert (compared["persons_true"] <= compared["persons_high"]).all()


def test_a_rounded_release_is_widened_by_what_rounding_moves(umbria):
    records, points, _ = umbria
    release = protect(records, ReleasePolicy(noise_scale=0, round_to=5))
    exposure = compute_exposure(release, norcia_classes(), weighting="area")
    plain = plain_sums(release, norcia_classes().reset_index(drop=True), [])
    on = ["hazard_class", "nationality"]
    rows = exposure.by_class.merge(plain, on=on, suffixes=("", "_plain"))
    move = 2  # a multiple of 5, never below k = 10: at most 2 either way
    assert rows["persons_low"].equals(
        (rows["persons_low_plain"] - move * rows["groups_low"]).clip(lower=0)
    )
    assert rows["persons_high"].equals(rows["persons_high_plain"] + move * rows["groups_high"])
    assert "rounded to a multiple of 5" in exposure.statement()
    truth = truth_by_class(released_points(points, release), norcia_classes())
    compared = rows.merge(truth, on=on, how="outer").fillna(0)
    for what in ("cases", "persons"):
        assert (compared[f"{what}_low"] <= compared[f"{what}_true"]).all()
        assert (compared[f"{what}_true"] <= compared[f"{what}_high"]).all()
