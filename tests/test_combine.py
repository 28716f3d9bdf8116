"""Footprints combined on request: class systems kept apart, "worst" within one system only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import h3
import pandas as pd
import pytest
import shapely

from geo.footprint_classes import geometries_to_km2
from geo.io.footprints import Footprint, read_footprint
from geo.pipeline import footprint_classes, run_exposure
from geo.release import Release
from geo.tools.classes import class_system, combine_footprints

ROOT = Path(__file__).resolve().parent.parent
NORCIA_MMI = ROOT / "data" / "footprints" / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
EPICENTRE = (13.1092, 42.8303)


@pytest.fixture(scope="module")
def norcia() -> Footprint:
    return read_footprint(NORCIA_MMI)


def shifted(footprint: Footprint, dx: float, name: str) -> Footprint:
    """The same map moved east by dx degrees (a second MMI map)."""
    classes = footprint.classes.copy()
    classes["geometry"] = classes.geometry.translate(xoff=dx)
    return replace(
        footprint, classes=classes, provenance={**footprint.provenance, "file_name": name}
    )


def flood(boxes: list[tuple[float, float, float, float]], labels: list[str]) -> Footprint:
    """A flood-depth footprint: one box per class, deeper is worse."""
    classes = gpd.GeoDataFrame(
        {
            "hazard_type": "flood",
            "class_label": labels,
            "class_rank": range(1, len(labels) + 1),
        },
        geometry=[shapely.box(*b) for b in boxes],
        crs=4326,
    )
    return Footprint(classes, {"file_name": "depth.tif", "cumulative_available": True})


def labels_at(classes: gpd.GeoDataFrame, x: float, y: float) -> list[str]:
    return sorted(classes[classes.intersects(shapely.Point(x, y))]["class_label"])


def test_two_mmi_maps_are_one_system_where_the_worst_wins(norcia):
    second = shifted(norcia, 0.4, "aftershock.json")
    assert class_system(norcia) == class_system(second)
    combined = combine_footprints([norcia, second])
    assert not combined["class_label"].duplicated().any()
    for a, b in zip(combined.geometry, combined.geometry[1:], strict=False):
        assert shapely.intersection(a, b).area < 1e-9
    # Each place has one MMI class: the higher of the two maps.
    x, y = EPICENTRE[0] + 0.4, EPICENTRE[1]
    assert labels_at(combined, x, y) == ["earthquake: MMI IX"]
    assert labels_at(combined, *EPICENTRE) == ["earthquake: MMI IX"]


def test_mmi_and_flood_depth_keep_their_classes_apart(norcia):
    """Before: one severity scale across both, so a flooded place at MMI IX counted only in
    the 'worst' of the two and the other system lost its people."""
    depth = flood([(13.0, 42.7, 13.3, 42.95), (13.05, 42.75, 13.2, 42.9)], ["0.5–1 m", "over 1 m"])
    assert class_system(depth) != class_system(norcia)
    combined = footprint_classes([norcia, depth], cumulative=False)
    assert labels_at(combined, *EPICENTRE) == ["earthquake: MMI IX", "flood: over 1 m"]
    quake = combined[combined["class_label"].str.startswith("earthquake")]
    assert geometries_to_km2(quake.geometry).sum() == pytest.approx(
        geometries_to_km2(norcia.classes.geometry).sum(), rel=1e-6
    )
    # Cumulative: each system nested in itself, never one system's area in the other's.
    cumulative = footprint_classes([norcia, depth], cumulative=True)
    flooded = cumulative[cumulative["class_label"].str.startswith("flood")]
    assert sorted(flooded["class_label"]) == ["flood: 0.5–1 m or worse", "flood: over 1 m or worse"]
    assert geometries_to_km2(flooded.geometry).max() == pytest.approx(
        geometries_to_km2([shapely.box(13.0, 42.7, 13.3, 42.95)])[0], rel=1e-6
    )
    assert "earthquake: MMI ≥ IX" in set(cumulative["class_label"])


def test_a_cell_counts_once_in_each_system():
    """A released group inside both footprints is exposed in both systems' classes."""
    cell = h3.latlng_to_cell(42.83, 13.11, 7)
    groups = pd.DataFrame(
        [(cell, 7, "ROU", 12, 30)],
        columns=["h3_cell", "resolution", "nationality", "cases", "persons"],
    )
    release = Release(groups=groups, breakdowns=pd.DataFrame(), metadata={})
    around = shapely.Point(13.11, 42.83).buffer(0.2).bounds
    quake = Footprint(
        gpd.GeoDataFrame(
            {"hazard_type": "earthquake", "class_label": ["MMI VIII"], "class_rank": [8]},
            geometry=[shapely.box(*around)],
            crs=4326,
        ),
        {"file_name": "mmi.json", "cumulative_available": True},
    )
    depth = flood([around], ["over 1 m"])
    table = run_exposure(release, [quake, depth], weighting="area").exposure.table
    assert sorted(table["hazard_class"]) == ["earthquake: MMI VIII", "flood: over 1 m"]
    assert (table["persons_estimate"] == 30).all() and (table["persons_low"] == 30).all()
