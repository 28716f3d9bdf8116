"""The audit of method 2 (keyed noise): the leak tests' registries, released with noise.

A noisy value proves nothing beyond the structure (published group ≥ k, categories ≥ 0),
so the registries whose exact releases the audit flags in ``test_audit.py`` are
audited clean here; only what the structure itself says (a published group against
an unpublished one of another consent scope) is still found.
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

from geo.audit import audit_releases
from geo.release import ReleasePolicy, protect
from tests.factories import consenting_records
from tests.test_audit import (
    AGGREGATE,
    CHILDREN,
    H3_CHILDREN,
    ORIGIN_STATE,
    records_in,
    registries,
    release_of,
)

NOISY = ReleasePolicy()  # method 2, noise scale k/3


@pytest.fixture(scope="module")
def records():
    """The 8,000 clustered registrations of ``test_audit.py``, 60 % consenting to origin."""
    return consenting_records(8_000, seed=5)


def test_the_default_policy_is_method_2():
    assert NOISY.checked().method == "noise"
    assert release_of(records_in([(CHILDREN[0], 12)]), NOISY).metadata["method"] == "noise"


@pytest.mark.parametrize(
    "counts",
    [
        H3_CHILDREN,  # test vector 3: a parent with seven children
        [12, 15, 11, 20, 13, 14, 3],  # a parent beside all but one child
        [12, 15, 11, 20, 13, 9, 9],  # a residual over two children
    ],
)
def test_h3_parent_vectors_are_clean(counts):
    records = records_in(list(zip(CHILDREN, counts, strict=True)))
    release = release_of(records, NOISY)
    exact = release_of(records, ReleasePolicy(noise_scale=0))
    cells = ["h3_cell", "resolution", "nationality"]
    assert release.groups[cells].equals(exact.groups[cells])  # same structure
    report = audit_releases({"noisy": release}, records)
    assert report.ok, report.lines()
    assert sum(report.checked.values()) >= 1


def test_a_small_category_is_published_and_not_disclosed():
    # Exact: the sex breakdown (12 F, 2 X) is withheld; noisy: published, X included.
    records = pl.concat(
        [records_in([(CHILDREN[0], 12)], sex="F"), records_in([(CHILDREN[0], 2)], sex="X")]
    )
    release = release_of(records, NOISY)
    assert set(release.breakdown("sex")["category"]) >= {"F", "M", "X", "unknown"}
    report = audit_releases({"noisy": release}, records)
    assert report.ok, report.lines()
    assert report.checked["category"] >= 1


def test_vectors_5_and_the_vulnerability_floor_are_clean():
    residual = pl.concat(
        [
            records_in([(CHILDREN[0], 4)], sex="F"),
            records_in([(CHILDREN[1], 2)], sex="F"),
            records_in([(CHILDREN[1], 2)], sex="M"),
            records_in([(CHILDREN[2], 4)], sex="M"),
        ]
    )
    floor = pl.concat(
        [
            records_in([(CHILDREN[0], 23)]),
            records_in([(CHILDREN[0], 2)], vulnerabilities=1),
            records_in([(CHILDREN[1], 3)]),
            records_in([(CHILDREN[1], 3)], vulnerabilities=1),
        ]
    )
    for records, policy in (
        (residual, ReleasePolicy(k=5)),
        (floor, ReleasePolicy(k=5, floor_resolution=6)),
    ):
        release = release_of(records, policy)
        assert not release.breakdown("vulnerability").empty  # nothing is withheld
        report = audit_releases({"noisy": release}, records)
        assert report.ok, report.lines()


@pytest.mark.slow
def test_a_public_and_embassy_pair_is_clean(records):
    public = release_of(records, NOISY)
    embassy = release_of(records, ReleasePolicy(nationalities=("UKR",)))
    report = audit_releases({"public": public, "embassy": embassy}, records)
    assert report.ok, report.lines()
    assert report.checked["group"] > 100


@pytest.mark.slow
def test_two_base_resolutions_no_longer_leak(records):
    # Exact releases at resolutions 7 and 8 leak between them (test_audit.py).
    public = release_of(records, NOISY)
    finer = release_of(records, ReleasePolicy(base_resolution=8))
    report = audit_releases({"public": public, "finer": finer}, records)
    assert report.ok, report.lines()


def test_another_consent_scope_still_leaks_through_the_structure():
    # Which groups are published is decided on true counts: public publishes the 15
    # UKR cases of a cell (≥ k), the embassy's consent scope leaves 8 there (< k), so
    # at least 1 did not consent, whatever the noise. Hence one consent scope per store.
    records = pl.concat(
        [
            records_in([(CHILDREN[0], 8)], "UKR", consent=AGGREGATE | ORIGIN_STATE),
            records_in([(CHILDREN[0], 7)], "UKR", consent=AGGREGATE),
            records_in([(CHILDREN[1], 3)], "UKR", consent=AGGREGATE | ORIGIN_STATE),
        ]
    )
    public = release_of(records, NOISY)
    embassy = protect(
        records.filter((pl.col("consent") & ORIGIN_STATE) != 0).drop("consent"),
        ReleasePolicy(nationalities=("UKR",), consent_scope="origin_state"),
    )
    report = audit_releases({"public": public, "embassy": embassy}, records)
    assert [(f.kind, f.cell, f.lo, f.true) for f in report.existence] == [
        ("consent subgroup", CHILDREN[0], 1, 7)
    ]
    assert not report.exact


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(registries())
def test_random_registries_are_released_without_disclosure_by_method_2(drawn):
    records, exact_policy = drawn
    release = release_of(records, replace(exact_policy, noise_scale=None))
    exact = release_of(records, exact_policy)
    cells = ["h3_cell", "resolution", "nationality"]
    assert release.groups[cells].equals(exact.groups[cells])
    assert (release.groups["cases"] >= exact_policy.k).all()
    report = audit_releases({"r": release}, records)
    assert report.ok, report.lines()
