"""A store's release counted in the store: the same release, without the records in memory.

``build_release`` asks the store for nationality totals, the (base cell × nationality)
table and the breakdown marginals of the placed records (:class:`StoreCounts`), never
for the joint cube of every category. These tests pin that the published table and
metadata are exactly those of the in-memory path (:func:`geo.release.protect` on the
store's audience records) and of the code before the change, and that nothing
record-sized leaves the store.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from geo import codes, pipeline
from geo.hashing import content_sha256
from geo.io import store, store_counts, store_reads
from geo.release import ReleasePolicy, protect
from tests.factories import registration_row

# Content hashes of build_release on the store of ``_rows()`` under each of POLICIES,
# from the code before the push-down (commit c4bea83: the joint cube in memory), with
# the tests' steward key.
BEFORE_SHA256 = {
    "noise": "c732731a7d2df813edcbe11d84e46523f7c6c95967943d09a70ecbd5f66b3668",
    "exact": "71bc3c7db41863c80d23036b56f493ed5c5c3be2c1b45e6b38b2d50a1913ae12",
    "rounded": "1f1e0dea1011564911d83459203948771dfe37cc09b1522c45abfff30d6836b6",
    "embassy": "524aed63a37d82e07fecd7b166616957617dc13041c4410a211d76a147217635",
    "res 8 to 5, k 5": "9cc6d7594f8ad3ba0a6c0b12a41236989918befee26eae01294a9c00a77cc37c",
    "believed": "c130022082389cfc208a67d8fc012de5ff15b2e45222c7c22a6296509dd405e9",
}


def _rows(n: int = 3000, seed: int = 11) -> list[dict]:
    """Return registrations around Norcia and Perugia: many per cell, every category.

    One nationality has fewer than k=10 registrations (it becomes OTH), the places are
    spread so that some cells roll up and some are dropped, and a few registrations
    lack the aggregate consent.
    """
    rng = np.random.default_rng(seed)
    nationalities = rng.choice(["ROU", "ALB", "UKR", "MAR"], n, p=[0.55, 0.25, 0.15, 0.05])
    nationalities[:6] = "MDA"
    centres = np.array([[42.79, 13.09], [43.11, 12.39]])
    where = centres[rng.integers(0, 2, n)] + rng.normal(0, 0.03, (n, 2))
    rows = []
    for i in range(n):
        terms = rng.choice(codes.VULNERABILITIES, rng.integers(0, 3), replace=False)
        rows.append(
            registration_row(
                f"r{i}",
                nationality=str(nationalities[i]),
                latitude=f"{where[i, 0]:.5f}",
                longitude=f"{where[i, 1]:.5f}",
                sex=str(rng.choice(["F", "M", "X", ""])),
                age=str(rng.integers(0, 90)) if rng.random() > 0.05 else "",
                family_members=str(rng.integers(0, 6)),
                vulnerabilities=";".join(terms),
                consent="origin_state" if i % 50 == 0 else "aggregate;origin_state",
                updated_at=f"2025-0{1 + i % 9}-15",
            )
        )
    return rows


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    """A store of ``_rows()`` (the tests' fixed steward key: same keys, same noise)."""
    import os

    from tests.factories import write_rows

    folder = tmp_path_factory.mktemp("scale")
    previous = os.environ.get("CRISIS_EXPOSURE_STEWARD_KEY")
    os.environ["CRISIS_EXPOSURE_STEWARD_KEY"] = "5e" * 32
    try:
        path = folder / "s.duckdb"
        pipeline.ingest_files(path, [write_rows(folder / "r.csv", _rows())])
    finally:
        if previous is None:
            os.environ.pop("CRISIS_EXPOSURE_STEWARD_KEY")
        else:
            os.environ["CRISIS_EXPOSURE_STEWARD_KEY"] = previous
    return path


def _hash(release) -> str:
    return content_sha256(pa.Table.from_pandas(release.table(), preserve_index=False))


def _published(release) -> dict:
    return {k: v for k, v in release.metadata.items() if k not in ("created_at", "store_version")}


def _in_memory(path, policy: ReleasePolicy):
    """The release from the store's audience records, protected in memory (the joint cube)."""
    from geo.freshness import believed_sql

    policy = policy.checked()
    con = store.connect(path, read_only=True)
    try:
        records = store_reads.audience_records(
            con,
            policy.consent_scope,
            policy.nationalities,
            policy.base_resolution,
            believed=believed_sql(policy),
        )
        return protect(records, policy, secret=store_reads.noise_secret(con))
    finally:
        con.close()


POLICIES = {
    "noise": ReleasePolicy(),
    "exact": ReleasePolicy(noise_scale=0),
    "rounded": ReleasePolicy(noise_scale=0, round_to=5),
    "embassy": ReleasePolicy(nationalities=("ROU", "UKR")),
    "res 8 to 5, k 5": ReleasePolicy(base_resolution=8, floor_resolution=5, k=5),
    "believed": ReleasePolicy(as_of="2025-12-31", confirmed_within=200),
}


@pytest.mark.parametrize("name", POLICIES)
def test_the_store_release_is_the_in_memory_release(store_path, name):
    policy = POLICIES[name]
    pushed = pipeline.build_release(store_path, policy)
    memory = _in_memory(store_path, policy)
    assert pushed.table().equals(memory.table())
    assert _hash(pushed) == _hash(memory)
    published = _published(pushed)
    published.pop("confirmed_within_months")  # added by the pipeline, not by protect
    assert published == _published(memory)
    assert pushed.metadata["published"]["groups"] > 0


@pytest.mark.parametrize("name", POLICIES)
def test_the_release_is_the_one_published_before_the_push_down(store_path, name):
    assert _hash(pipeline.build_release(store_path, POLICIES[name])) == BEFORE_SHA256[name]


@pytest.mark.parametrize("units", [25, 60])
@pytest.mark.parametrize("name", ["noise", "embassy", "res 8 to 5, k 5"])
def test_a_release_made_in_parts_of_floor_cells_is_the_release_made_whole(
    store_path, monkeypatch, name, units
):
    # At 100M registrations the breakdowns are made in parts of whole floor cells (~17 of
    # 250,000 placed groups, each reading its own key range of the sorted cube) and
    # gathered without a global sort: the same release, frame for frame, as in one part,
    # in the same (resolution-major) order, from the store and from records in memory.
    import geo.release

    whole = pipeline.build_release(store_path, POLICIES[name])
    splits = []
    original = geo.release._floor_parts
    monkeypatch.setattr(
        geo.release,
        "_floor_parts",
        lambda placement, _: splits.append(original(placement, units)) or splits[-1],
    )
    parted = pipeline.build_release(store_path, POLICIES[name])
    assert len(splits[0]) >= 3, "several parts"
    pd.testing.assert_frame_equal(parted.breakdowns, whole.breakdowns)
    pd.testing.assert_frame_equal(parted.groups, whole.groups)
    assert _published(parted) == _published(whole)
    assert _hash(parted) == BEFORE_SHA256[name]
    in_memory = _in_memory(store_path, POLICIES[name])  # the records' counts, in parts too
    pd.testing.assert_frame_equal(in_memory.breakdowns, whole.breakdowns)


@pytest.mark.parametrize("name", ["noise", "exact", "rounded", "embassy", "res 8 to 5, k 5"])
def test_counts_kept_in_a_temporary_table_make_the_stores_release(store_path, name):
    # A lake's audience comes counted from Spark in pieces, appended to a temporary
    # table of the store connection (the driver never holds it whole) and counted there
    # as the registrations are: the same release as from the store.
    from geo.release import protect_counts

    policy = POLICIES[name].checked()
    con = store.connect(store_path, read_only=True)
    try:
        records = store_reads.audience_records(
            con, policy.consent_scope, policy.nationalities, policy.base_resolution
        )
        keep = store_counts.counted_table(con, "lake_audience")
        for offset in range(0, records.height, 700):  # pieces, as Spark hands them over
            keep(records.slice(offset, 700).to_arrow())
        counts = store_counts.StoreCounts.of_counted(con, "lake_audience", policy.base_resolution)
        release = protect_counts(counts, policy, secret=store_reads.noise_secret(con))
        kept = con.sql(
            "SELECT database_name, temporary FROM duckdb_tables()"
            " WHERE table_name = 'lake_audience'"
        ).fetchall()
    finally:
        con.close()
    assert records.height > 1400, "several pieces"
    assert _hash(release) == BEFORE_SHA256[name]
    assert kept == [("temp", True)], "in the connection's memory, never in the store file"


def test_no_record_sized_table_leaves_the_store(store_path, monkeypatch):
    con = store.connect(store_path, read_only=True)
    try:
        joint = store_reads.audience_records(con, "aggregate", resolution=7).height
        base = (
            store_reads.audience_records(con, "aggregate", resolution=7)
            .select("cell", "nationality")
            .n_unique()
        )
    finally:
        con.close()
    heights = []
    for name in ("nationality_totals", "base_counts"):
        method = getattr(store_counts.StoreCounts, name)

        def counted(self, *args, _method=method, **kwargs):
            out = _method(self, *args, **kwargs)
            heights.append(out.height)
            return out

        monkeypatch.setattr(store_counts.StoreCounts, name, counted)

    def counted_parts(self, *args, _method=store_counts.StoreCounts.unit_counts, **kwargs):
        for tables in _method(self, *args, **kwargs):  # one list of tables per part
            heights.extend(t.height for t in tables)
            yield tables

    monkeypatch.setattr(store_counts.StoreCounts, "unit_counts", counted_parts)

    def refused(*args, **kwargs):
        raise AssertionError("the release read the audience's records")

    monkeypatch.setattr(store_reads, "audience_records", refused)
    groups = pipeline.build_release(store_path, ReleasePolicy()).metadata["published"]["groups"]
    # What leaves the store is the roll-up's table or the release's size (a unit shows at
    # most 7 categories), never one row per record; the fixture tells them apart.
    bound = max(base, 7 * groups)
    assert joint > bound
    assert max(heights) <= bound


class _Recording:
    """A store connection that records the SQL it is given (and passes it on)."""

    def __init__(self, con):
        self._con, self.queries = con, []

    def sql(self, query, *args, **kwargs):
        self.queries.append(query)
        return self._con.sql(query, *args, **kwargs)

    def execute(self, query, *args, **kwargs):
        self.queries.append(query)
        return self._con.execute(query, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)


@pytest.mark.parametrize("name", ["noise", "exact"])
def test_the_release_reads_the_registrations_twice_whatever_its_breakdowns(store_path, name):
    """Totals, then one cube of every category: not one scan per breakdown (5 and 7 before)."""
    from geo.freshness import believed_sql
    from geo.release import protect_counts

    policy = POLICIES[name].checked()
    con = store.connect(store_path, read_only=True)
    try:
        recording = _Recording(con)
        counts = store_counts.StoreCounts(
            recording,
            policy.consent_scope,
            policy.nationalities,
            policy.base_resolution,
            believed=believed_sql(policy),
        )
        release = protect_counts(counts, policy, secret=store_reads.noise_secret(con))
        temporary = con.sql("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall()
    finally:
        con.close()
    scans = [q for q in recording.queries if "FROM registrations" in q]
    assert len(scans) == 2
    assert temporary == [(0,)]  # the cube and the placed table are dropped
    assert _hash(release) == BEFORE_SHA256[name]


@pytest.mark.parametrize("noise_scale", [None, 0])
def test_a_release_with_every_group_dropped_counts_an_empty_part(tmp_path, noise_scale):
    # Twelve registrations a country apart: no cell reaches k at any resolution, so the
    # placement is empty and its one part reads an empty range of the cube.
    from tests.factories import write_rows

    rows = [
        registration_row(
            f"r{i}", nationality="ROU", latitude=str(40 + 2 * i), longitude=str(5 + 3 * i)
        )
        for i in range(12)
    ]
    path = tmp_path / "s.duckdb"
    pipeline.ingest_files(path, [write_rows(tmp_path / "r.csv", rows)])
    release = pipeline.build_release(path, ReleasePolicy(noise_scale=noise_scale))
    assert release.groups.empty and release.breakdowns.empty
    dropped = release.metadata["dropped"]
    assert dropped["cases"] == 12 if noise_scale == 0 else dropped["cases"] > 0
