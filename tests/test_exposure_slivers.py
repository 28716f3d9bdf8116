"""Bounds hold where a coarse cell's records lie outside its hexagon (the slivers).

Records are binned at the store's resolution 8 and rolled up with ``cell_to_parent``;
a resolution-8 child sticks out of its coarser ancestor's hexagon. Registrations planted
in those slivers, released, and exposed to footprints drawn through the slivers must
still lie between low and high.
"""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from demo.accuracy import points_to_records, truth_by_class
from geo.pipeline import compute_exposure
from geo.release import ReleasePolicy, protect

NORCIA = (42.8303, 13.1092)  # (lat, lng) as h3 speaks


def hexagon(cell: str) -> shapely.Polygon:
    return shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(cell)])


def sliver_points(parent: str, count: int, rng: np.random.Generator) -> pd.DataFrame:
    """Return points inside resolution-8 children of ``parent`` but outside its hexagon."""
    outline = hexagon(parent)
    found: list[tuple[float, float]] = []
    for child in h3.cell_to_children(parent, 8):
        shape = hexagon(child)
        if outline.covers(shape):
            continue
        xmin, ymin, xmax, ymax = shape.bounds
        for lng, lat in zip(
            rng.uniform(xmin, xmax, 400), rng.uniform(ymin, ymax, 400), strict=True
        ):
            if h3.latlng_to_cell(lat, lng, 8) == child and not outline.intersects(
                shapely.Point(lng, lat)
            ):
                found.append((lng, lat))
    assert len(found) >= count
    chosen = rng.choice(len(found), count, replace=False)
    lng, lat = np.array(found)[chosen].T
    return pd.DataFrame({"nationality": "UKR", "latitude": lat, "longitude": lng, "persons": 2})


def zones(**polygons: shapely.Geometry) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"class_label": list(polygons), "class_rank": range(len(polygons))},
        geometry=list(polygons.values()),
        crs=4326,
    )


@pytest.mark.parametrize("resolution", [7, 5])
def test_truth_lies_in_the_bounds_for_records_in_the_slivers(resolution):
    rng = np.random.default_rng(resolution)
    parent = h3.latlng_to_cell(*NORCIA, resolution)
    points = sliver_points(parent, 40, rng)
    outline = hexagon(parent)
    neighbours = shapely.union_all([hexagon(c) for c in h3.grid_ring(parent, 1)])
    slivers = shapely.union_all([hexagon(c) for c in h3.cell_to_children(parent, 8)]).difference(
        outline
    )
    footprints = [
        # The slivers alone: the parent's hexagon only shares their border.
        zones(slivers=slivers),
        # The parent's hexagon: it is inside, its sliver records are not.
        zones(hexagon=outline),
        # A cut through the slivers: the hexagon and half the ring around it.
        zones(cut=outline.union(neighbours.intersection(shapely.box(-180, -90, 13.11, 90)))),
        # Everything but the hexagon, so that the records are all in, the hexagon out.
        zones(ring=neighbours.difference(outline)),
    ]
    release = protect(
        points_to_records(points),
        ReleasePolicy(noise_scale=0, base_resolution=resolution, floor_resolution=resolution),
    )
    assert list(release.groups["h3_cell"]) == [parent]
    for classes in footprints:
        truth = truth_by_class(points, classes)
        table = compute_exposure(release, classes, weighting="area").by_class
        merged = truth.merge(table, on=["hazard_class", "nationality"], how="outer").fillna(0)
        label = classes["class_label"].iloc[0]
        assert len(merged) == 1, label
        row = merged.iloc[0]
        assert row["persons_low"] <= row["persons_true"] <= row["persons_high"], label
        assert row["persons_low"] <= row["persons_estimate"] <= row["persons_high"], label
