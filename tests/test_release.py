"""The release rules, checked against an independent reference and by their invariants."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import h3
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geo import pipeline
from geo.errors import InputError
from geo.hashing import content_sha256
from geo.pipeline import build_release, read_release, write_release
from geo.release import ReleasePolicy, protect
from tests.factories import clustered_records, registration_row, residual_is_safe

# Method 1 (no noise): these tests check the roll-up and withholding rules on exact counts;
# method 2 keeps the same structure (tests/test_noise.py) and adds noise to the values.
EXACT = ReleasePolicy(noise_scale=0)


def reference_groups(records: pl.DataFrame, k: int, base: int, floor: int) -> dict:
    """The release rules written plainly with the h3 library, one group at a time."""
    counts: dict[tuple, int] = defaultdict(int)
    for nationality in records["nationality"]:
        counts[nationality] += 1
    rare = {n for n, c in counts.items() if c < k}
    pending: dict[tuple, int] = defaultdict(int)
    for nationality, cell in records.select("nationality", "cell").iter_rows():
        nationality = "OTH" if nationality in rare else nationality
        pending[(h3.cell_to_parent(h3.int_to_str(cell), base), nationality)] += 1
    published, accounted = {}, defaultdict(set)
    for res in range(base, floor - 1, -1):
        level: dict[tuple, int] = defaultdict(int)
        for (base_cell, nationality), n in pending.items():
            level[(h3.cell_to_parent(base_cell, res), nationality)] += n
        for (cell, nationality), n in level.items():
            if res == base:
                ok = n >= k
            else:
                live = sum(
                    any(b not in accounted[nationality] for b in h3.cell_to_children(child, base))
                    for child in h3.cell_to_children(cell, res + 1)
                )
                ok = residual_is_safe(n, live, k)
            if ok:
                published[(cell, res, nationality)] = n
                accounted[nationality].update(h3.cell_to_children(cell, base))
        pending = {
            (b, nat): n
            for (b, nat), n in pending.items()
            if (h3.cell_to_parent(b, res), res, nat) not in published
        }
    return published


@pytest.fixture(scope="module")
def records():
    return clustered_records(30_000, seed=3)


@pytest.fixture(scope="module")
def release(records):
    return protect(records, EXACT)


def test_groups_match_the_reference_implementation(records, release):
    expected = reference_groups(records, k=10, base=7, floor=4)
    got = {(r.h3_cell, r.resolution, r.nationality): r.cases for r in release.groups.itertuples()}
    assert got == expected
    assert set(release.groups["resolution"]) == {4, 5, 6, 7}


def test_every_published_count_covers_at_least_k_cases(release):
    assert (release.groups["cases"] >= 10).all()
    assert (release.breakdowns["cases"] >= 10).all()
    assert (release.groups["persons"] >= release.groups["cases"]).all()


def test_published_plus_dropped_equals_the_audience(records, release):
    meta = release.metadata
    assert meta["published"]["persons"] + meta["dropped"]["persons"] == records["persons"].sum()
    assert meta["published"]["cases"] + meta["dropped"]["cases"] == records.height
    assert meta["published"]["persons"] == release.groups["persons"].sum()
    assert meta["dropped"]["cases"] > 0  # the sparse tails really are dropped


def test_coarser_cells_are_true_ancestors_of_their_records(records, release):
    record_cells = {h3.int_to_str(c) for c in records["cell"].unique()}
    for cell, res in release.groups[["h3_cell", "resolution"]].itertuples(index=False):
        assert h3.get_resolution(cell) == res
        assert any(h3.cell_to_parent(c, res) == cell for c in record_cells)


def test_rare_nationalities_become_other(records, release):
    assert records.filter(pl.col("nationality") == "NPL").height < 10
    assert "NPL" not in set(release.groups["nationality"])
    cell = h3.latlng_to_cell(42.79, 13.09, 8)
    rare = pl.concat([_records_in([(cell, 4)], n) for n in ("NPL", "LKA", "BOL")])
    groups = protect(pl.concat([rare, _records_in([(cell, 10)], "ROU")]), EXACT).groups
    assert groups[["nationality", "cases"]].values.tolist() == [["OTH", 12], ["ROU", 10]]


def test_partition_breakdowns_add_up_to_their_group(release):
    groups = release.groups.set_index(["h3_cell", "nationality"])["cases"]
    for dimension in ("sex", "age_band"):
        rows = release.breakdown(dimension)
        assert len(rows) > 0, dimension
        sums = rows.groupby(["h3_cell", "nationality"])["cases"].sum()
        assert (sums == groups.loc[sums.index]).all()
    vulnerability = release.breakdown("vulnerability")
    assert set(vulnerability["resolution"]) == {4}
    by_floor = (
        release.groups.assign(floor=[h3.cell_to_parent(c, 4) for c in release.groups["h3_cell"]])
        .groupby(["floor", "nationality"])["cases"]
        .sum()
    )
    sums = vulnerability.groupby(["h3_cell", "nationality"])["cases"].sum()
    assert (sums.values == by_floor.loc[sums.index].values).all()


def test_a_household_is_one_case():
    cell = h3.str_to_int(h3.latlng_to_cell(42.79, 13.09, 8))
    records = pl.DataFrame(
        {
            "nationality": ["ROU"],
            "cell": [cell],
            "sex": ["F"],
            "age_band": ["18-59"],
            "vulnerabilities": [0],
            "persons": [6],
        },
        schema_overrides={"cell": pl.UInt64, "vulnerabilities": pl.UInt16},
    )
    release = protect(records, ReleasePolicy(k=5, noise_scale=0))
    assert release.groups.empty
    assert release.metadata["dropped"] == {"cases": 1, "persons": 6}


def _records_in(cells_and_counts, nationality="ROU"):
    rows = [
        (nationality, h3.str_to_int(c), "F", "18-59", 0, 1)
        for c, n in cells_and_counts
        for _ in range(n)
    ]
    return pl.DataFrame(
        rows,
        schema={
            "nationality": pl.String,
            "cell": pl.UInt64,
            "sex": pl.String,
            "age_band": pl.String,
            "vulnerabilities": pl.UInt16,
            "persons": pl.Int64,
        },
        orient="row",
    )


def test_a_small_residual_rolls_up_to_the_parent():
    parent = h3.latlng_to_cell(42.79, 13.09, 6)
    children = sorted(h3.cell_to_children(parent, 7))
    records = _records_in(
        [(h3.cell_to_center_child(children[0], 8), 9), (h3.cell_to_center_child(children[1], 8), 3)]
    )
    groups = protect(records, EXACT).groups
    assert groups[["h3_cell", "resolution", "cases"]].values.tolist() == [[parent, 6, 12]]


def test_a_residual_that_would_pin_its_children_is_not_published():
    parent = h3.latlng_to_cell(42.79, 13.09, 6)
    children = sorted(h3.cell_to_children(parent, 7))
    # Seven children of nine cases: 63 = 7 × 9 proves each child holds 9.
    records = _records_in([(h3.cell_to_center_child(c, 8), 9) for c in children])
    release = protect(records, EXACT)
    assert release.groups.empty
    assert release.metadata["dropped"]["cases"] == 63


@pytest.mark.parametrize(
    ("cases", "children", "safe"),
    [
        (9, 7, False),
        (10, 2, False),
        (10, 3, True),
        (18, 3, True),
        (19, 3, False),
        (54, 7, True),
        (55, 7, False),
    ],
)
def test_residual_is_safe(cases, children, safe):
    assert residual_is_safe(cases, children, 10) is safe


def test_embassy_release_holds_only_its_nationality(records, release):
    embassy = protect(records, ReleasePolicy(nationalities=("al",), noise_scale=0))
    assert set(embassy.groups["nationality"]) == {"ALB"}
    assert set(embassy.breakdowns["nationality"]) <= {"ALB"}
    public_alb = release.groups[release.groups["nationality"] == "ALB"].reset_index(drop=True)
    assert embassy.groups.reset_index(drop=True).equals(public_alb)


def test_rounding_never_goes_below_k(records):
    rounded = protect(records, ReleasePolicy(k=12, round_to=5, noise_scale=0))
    for frame in (rounded.groups, rounded.breakdowns):
        assert (frame["cases"] % 5 == 0).all() and (frame["cases"] >= 15).all()
        assert (frame["persons"] % 5 == 0).all() and (frame["persons"] >= frame["cases"]).all()


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (ReleasePolicy(base_resolution=9), "≤ 8"),
        (ReleasePolicy(floor_resolution=8), "floor"),
        (ReleasePolicy(k=1), "k must be at least 2"),
        (ReleasePolicy(round_to=0), "rounding"),
        (ReleasePolicy(round_to=5), "either rounded or noisy"),
        (ReleasePolicy(noise_scale=0.5), "noise scale must be 0"),
        (ReleasePolicy(nationalities=("Narnia",)), "unknown nationality 'Narnia'"),
        (ReleasePolicy(consent_scope="everyone"), "unknown consent scope"),
    ],
)
def test_bad_policies_are_refused(policy, message):
    with pytest.raises(InputError, match=message):
        policy.checked()


def test_file_round_trip_and_tamper_check(tmp_path, release):
    path = write_release(release, tmp_path / "r.release.parquet")
    again = read_release(path)
    assert again.groups.equals(release.groups)
    assert again.table().equals(release.table())
    assert again.metadata["content_sha256"] == release.metadata["content_sha256"]
    table = pq.read_table(path)
    frame = table.to_pandas()
    frame.loc[0, "cases"] += 1
    tampered = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(
        table.schema.metadata
    )
    pq.write_table(tampered, tmp_path / "t.release.parquet")
    with pytest.raises(InputError, match="does not match its hash"):
        read_release(tmp_path / "t.release.parquet")
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "plain.parquet")
    with pytest.raises(InputError, match="not a crisis-exposure release"):
        read_release(tmp_path / "plain.parquet")
    (tmp_path / "junk.parquet").write_text("hello")
    with pytest.raises(InputError, match="not a release file"):
        read_release(tmp_path / "junk.parquet")


@pytest.mark.parametrize("policy", [EXACT, ReleasePolicy()], ids=["exact", "noise"])
def test_a_built_release_holds_its_breakdowns_as_a_read_one_does(records, policy, tmp_path):
    # A national release has 15.8M breakdown rows at 100M registrations: as text columns
    # they took 1,153 MB, over the 1 GiB the release must stay under. Built as a read
    # release holds them (categoricals of the sorted, used values), the same frame.
    built = protect(records, policy)
    again = read_release(write_release(built, tmp_path / "r.release.parquet"))
    rows = built.breakdowns
    for column in ("h3_cell", "nationality", "dimension", "category"):
        assert isinstance(rows[column].dtype, pd.CategoricalDtype), column
        assert list(rows[column].cat.categories) == sorted(set(rows[column])), column
    pd.testing.assert_frame_equal(rows, again.breakdowns)
    for column in ("cases", "persons"):  # 32-bit in memory (int64 in the file): half of
        assert rows[column].dtype == np.int32, column  # what a dashboard holds for hours
    assert pq.read_schema(tmp_path / "r.release.parquet").field("persons").type == pa.int64()
    as_text = rows.astype(dict.fromkeys(["h3_cell", "nationality", "dimension", "category"], str))
    held, text = (f.memory_usage(deep=True).sum() for f in (rows, as_text))
    assert held < text / 2, f"breakdowns hold {held >> 10} KiB, {text >> 10} KiB as text"


def test_content_hash_is_the_sha256_of_the_pandas_csv():
    """The hash is defined by pandas' CSV bytes (docs/release-format.md); polars writes them."""
    import hashlib
    import io

    frame = pd.DataFrame(
        {
            "h3_cell": ["871e8052affffff", "a,b", 'say "hi"', "", "line\nbreak", " x "],
            "resolution": pd.Series([7, 6, 5, 4, 7, 7], dtype="int8"),
            "category": ["", "none", "F", "18-59", "é ü", None],
            "persons": [1, 22, 333, 4444, 0, 10**12],
        }
    )
    text = io.StringIO()
    frame.to_csv(text, index=False, lineterminator="\n")
    expected = hashlib.sha256(text.getvalue().encode()).hexdigest()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    assert content_sha256(table) == expected
    assert content_sha256(table, chunk_rows=4) == expected  # hashed in chunks, one header
    empty = io.StringIO()
    frame.head(0).to_csv(empty, index=False, lineterminator="\n")
    header_only = hashlib.sha256(empty.getvalue().encode()).hexdigest()
    assert content_sha256(table.slice(0, 0)) == header_only
    for shipped in sorted(Path("data/demo").glob("*.release.parquet")):
        assert read_release(shipped).metadata["content_sha256"]


def test_release_from_a_store_respects_consent(tmp_path, write_csv):
    rows = [registration_row(f"a{i}", consent="aggregate") for i in range(12)]
    rows += [registration_row(f"b{i}", consent="origin_state") for i in range(12)]
    s = tmp_path / "s.duckdb"
    pipeline.ingest_files(s, [write_csv(rows)])
    public = build_release(s, EXACT)
    assert public.groups["cases"].sum() == 12
    # the metadata publishes no store figure (24 records over all consents) nor file name
    assert "source" not in public.metadata and "records.csv" not in str(public.metadata)
    with pytest.raises(InputError, match="no stored registration matches"):
        build_release(s, ReleasePolicy(consent_scope="host_state"))


@pytest.mark.parametrize("policy", [EXACT, ReleasePolicy()], ids=["exact", "noise"])
def test_the_metadata_counts_the_units_each_breakdown_is_shown_for(records, policy):
    """``breakdown_groups`` is the number of (cell, nationality) showing each dimension."""
    release = protect(records, policy)
    rows = release.breakdowns
    expected = {
        dimension: len(
            rows[rows["dimension"] == dimension][["h3_cell", "nationality"]].drop_duplicates()
        )
        for dimension in ("sex", "age_band", "vulnerability")
    }
    assert release.metadata["published"]["breakdown_groups"] == expected
    assert expected["sex"] > 0 and expected["vulnerability"] > 0
