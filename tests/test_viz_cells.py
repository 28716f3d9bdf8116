"""Map cells from a release: sums of released values per cell, filters, the display roll-up."""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import polars as pl
import pytest

from geo.release import ReleasePolicy, protect
from geo.viz.cells import (
    _cells_from_groups,
    release_to_map_cells,
    release_to_map_source,
    with_breakdowns,
)
from tests.factories import clustered_records


@pytest.fixture(scope="module")
def release():
    return protect(clustered_records(8000, seed=11), ReleasePolicy(k=5))


def test_cells_are_sums_of_released_groups(release):
    shown = release_to_map_cells(release, ["ROU", "UKR"])
    groups = release.groups[release.groups["nationality"].isin(["ROU", "UKR"])]
    assert shown.groups_shown == len(groups) and shown.groups_not_available == 0
    expected = groups.groupby("h3_cell")[["persons", "cases"]].sum()
    cells = shown.cells.set_index("h3_cell")
    pd.testing.assert_frame_equal(
        cells[["persons", "cases"]].sort_index(), expected.sort_index(), check_dtype=False
    )
    released = groups.set_index(["h3_cell", "nationality"])["persons"]
    for cell, text in cells["nationalities"].items():
        for part in text.split("\n"):
            label, value = part.rsplit(": ", 1)
            code = label[-4:-1]  # "Romania (ROU)"
            assert released[(cell, code)] == int(value.replace(",", ""))
    assert (cells["resolution"] == [h3.get_resolution(c) for c in cells.index]).all()


def test_breakdown_filter_uses_released_categories_only(release):
    shown = release_to_map_cells(release, None, "age_band", "18-59")
    rows = release.breakdown("age_band")
    published = rows[["h3_cell", "nationality"]].drop_duplicates()
    assert shown.groups_shown == len(published)
    assert shown.groups_not_available == len(release.groups) - len(published)
    adults = rows[rows["category"] == "18-59"]
    assert shown.cells["persons"].sum() == adults["persons"].sum()
    with pytest.raises(ValueError, match="vulnerability"):
        release_to_map_cells(release, None, "vulnerability", "none")


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
    cells = _cells_from_groups(pl.from_pandas(groups))
    assert len(cells) == 1
    row = cells.iloc[0]
    assert row["persons"] == 4645 and row["cases"] == 8 and row["resolution"] == 7
    # names and codes, never a bare "ROU 3,400" (before: the code alone)
    assert row["nationalities"] == (
        "Romania (ROU): 3,400\nChina (CHN): 1,200\nUkraine (UKR): 11\nand 5 more"
    )


def test_many_cells_are_drawn_as_sums_at_a_coarser_display_resolution(release):
    everything = release_to_map_cells(release)
    assert everything.display_resolution is None
    limit = len(everything.cells) // 2
    shown = release_to_map_cells(release, max_cells=limit)
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
        for part in text.split("\n"):
            if not part.startswith("and "):
                label, value = part.rsplit(": ", 1)
                assert per_nationality[(cell, label[-4:-1])] == int(value.replace(",", ""))
    assert release_to_map_cells(release, max_cells=len(everything.cells)).cells.equals(
        everything.cells
    )


@pytest.mark.parametrize(
    ("nationalities", "dimension", "category", "max_cells"),
    [
        (None, None, None, None),
        (["ROU", "UKR"], None, None, None),
        (None, "sex", "F", None),
        (None, "age_band", "60+", 40),
        (["UKR"], "sex", "unknown", None),
        (["ZZZ"], "sex", "M", None),  # a nationality the release does not hold
    ],
)
def test_the_prepared_map_source_draws_what_the_release_draws(
    release, nationalities, dimension, category, max_cells
):
    """The dashboard prepares a release once (integer keys) for every filter change."""
    source = release_to_map_source(release)
    assert source.groups["h3_cell"].dtype == pl.UInt64  # numbers, not strings
    reference = release_to_map_cells(release, nationalities, dimension, category, max_cells)
    shown = release_to_map_cells(source, nationalities, dimension, category, max_cells)
    pd.testing.assert_frame_equal(shown.cells, reference.cells)
    assert (shown.groups_shown, shown.groups_not_available, shown.display_resolution) == (
        reference.groups_shown,
        reference.groups_not_available,
        reference.display_resolution,
    )
    # the groups-only source (the unfiltered first map) draws the same unfiltered map
    if dimension is None:
        bare = release_to_map_source(release, dimensions=())
        assert bare.breakdowns == {}
        assert release_to_map_cells(bare, nationalities, None, None, max_cells).cells.equals(
            reference.cells
        )


def test_the_map_source_reads_the_release_breakdowns_in_place(release):
    """The server holds a release for hours: the map adds one group number per row, no copy.

    A copy of the rows by dimension cost 51 MiB of the server's memory at 10M
    registrations; numbered in place, 13 MiB.
    """
    source = release_to_map_source(release)
    rows = source.breakdowns["sex"].rows
    assert source.breakdowns["age_band"].rows is rows  # one numbering for every dimension
    assert np.shares_memory(rows.persons, release.breakdowns["persons"].to_numpy())
    assert np.shares_memory(rows.cases, release.breakdowns["cases"].to_numpy())
    assert rows.group.dtype == np.int32 and len(rows.group) == len(release.breakdowns)
    # each numbered row is its group's (cell, nationality)
    numbered = rows.group >= 0
    groups = release.groups.iloc[rows.group[numbered]]
    breakdowns = release.breakdowns[numbered]
    assert (groups["h3_cell"].to_numpy() == breakdowns["h3_cell"].astype(str).to_numpy()).all()
    assert (
        groups["nationality"].to_numpy() == breakdowns["nationality"].astype(str).to_numpy()
    ).all()


def test_filters_added_to_the_first_maps_groups_share_them(release):
    """The dashboard adds the filters in the background to the groups its first map drew."""
    bare = release_to_map_source(release, dimensions=())
    full = with_breakdowns(bare, release)
    assert full.groups is bare.groups  # not built twice
    reference = release_to_map_cells(release, None, "age_band", "60+")
    shown = release_to_map_cells(full, None, "age_band", "60+")
    pd.testing.assert_frame_equal(shown.cells, reference.cells)
    assert shown.groups_not_available == reference.groups_not_available
