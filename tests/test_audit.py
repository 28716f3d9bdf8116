"""The linear-programming audit: the issue's test vectors, leaky releases, properties."""

from __future__ import annotations

from collections import defaultdict

import h3
import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from geo import pipeline
from geo.audit import audit_releases, classify, interval_bounds
from geo.cli import RUN, build_parser
from geo.errors import InputError
from geo.io import store, store_reads
from geo.pipeline import build_release, run_audit, write_release
from geo.release import Release, ReleasePolicy, protect
from tests.factories import consenting_records, registration_row

AGGREGATE, ORIGIN_STATE = 1, 2
SCHEMA = {
    "nationality": pl.String,
    "cell": pl.UInt64,
    "sex": pl.String,
    "age_band": pl.String,
    "vulnerabilities": pl.UInt16,
    "persons": pl.Int64,
    "consent": pl.UInt8,
}
EXACT = ReleasePolicy(noise_scale=0)  # method 1: the rules and the LP on exact values
PARENT = h3.latlng_to_cell(42.79, 13.09, 6)
CHILDREN = sorted(h3.cell_to_children(PARENT, 7))


def records_in(
    cells_and_counts, nationality="ROU", sex="F", vulnerabilities=0, persons=1, consent=AGGREGATE
):
    """Registrations: n per res-7 cell (placed at its centre child), one row each."""
    rows = [
        (
            nationality,
            h3.str_to_int(h3.cell_to_center_child(cell, 8)),
            sex,
            "18-59",
            vulnerabilities,
            persons,
            consent,
        )
        for cell, n in cells_and_counts
        for _ in range(n)
    ]
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def release_of(records, policy=None):
    return protect(records.drop("consent"), policy or EXACT)


def totals_only(release):
    """A copy of a release without its breakdowns."""
    return Release(
        groups=release.groups, breakdowns=release.breakdowns.iloc[:0], metadata=release.metadata
    )


def with_rows(release, groups=(), breakdowns=(), dropped=None):
    """A copy of a release with extra (deliberately unsafe) rows."""
    group_rows = pd.DataFrame(
        list(groups), columns=["h3_cell", "resolution", "nationality", "cases", "persons"]
    )
    breakdown_rows = pd.DataFrame(
        list(breakdowns),
        columns=[
            "h3_cell",
            "resolution",
            "nationality",
            "dimension",
            "category",
            "cases",
            "persons",
        ],
    )
    metadata = dict(release.metadata)
    if dropped is not None:
        metadata["dropped"] = {"cases": dropped, "persons": dropped}
    frames = []
    for old, new in ((release.groups, group_rows), (release.breakdowns, breakdown_rows)):
        frame = pd.concat([old, new], ignore_index=True) if len(new) else old.copy()
        frame["resolution"] = frame["resolution"].astype("int8")
        frames.append(frame)
    return Release(groups=frames[0], breakdowns=frames[1], metadata=metadata)


# ---------------------------------------------------------------------------------------
# The LP core: test vectors 2 and 3

SDC_TABLE = np.array([[30, 47, 64, 89], [90, 124, 5, 31], [92, 100, 59, 85], [800, 991, 651, 685]])


def sdc_intervals(suppressed):
    """Bound the suppressed cells of the 4×4 table with its margins published."""
    rows, cols = "wxyz", "abcd"
    equations, values = [], []
    for i in range(4):
        equations.append(np.kron(np.eye(4)[i], np.ones(4)))
        values.append(SDC_TABLE[i].sum())
        equations.append(np.kron(np.ones(4), np.eye(4)[i]))
        values.append(SDC_TABLE[:, i].sum())
    equations.append(np.ones(16))
    values.append(SDC_TABLE.sum())
    lower = SDC_TABLE.ravel().astype(float)
    upper = lower.copy()
    index = {r + c: 4 * i + j for i, r in enumerate(rows) for j, c in enumerate(cols)}
    for name in suppressed:
        lower[index[name]], upper[index[name]] = 0, np.inf
    bounds = interval_bounds(
        np.array(equations), values, lower, upper, [index[name] for name in suppressed]
    )
    return dict(zip(suppressed, bounds, strict=True))


def test_vector_2_the_row_column_rule_is_not_enough():
    nine = ["wa", "wb", "wc", "xa", "xc", "yb", "yd", "zb", "zd"]
    assert sdc_intervals(nine)["wb"] == pytest.approx((47, 47))
    ten = sdc_intervals(nine + ["xb"])
    expected = {"wb": (0, 141), "wa": (0, 120), "xb": (30, 171), "yb": (0, 185), "zb": (906, 1091)}
    for name, interval in expected.items():
        assert ten[name] == pytest.approx(interval), name


H3_CHILDREN = [10, 12, 8, 9, 5, 0, 1]


@pytest.mark.parametrize(
    ("suppressed", "interval", "passes"),
    [
        ([6], (1, 1), False),
        ([5, 6], (0, 1), False),
        ([4, 6], (0, 6), False),
        ([0, 6], (0, 11), True),
    ],
)
def test_vector_3_h3_parent_with_seven_children(suppressed, interval, passes):
    # Only the parent total (45) and x ≥ 0: no "< k" bound on the suppressed children.
    lower = np.array(H3_CHILDREN, dtype=float)
    upper = lower.copy()
    lower[suppressed], upper[suppressed] = 0, np.inf
    bounds = interval_bounds(np.ones((1, 7)), [sum(H3_CHILDREN)], lower, upper, suppressed)
    for lo, hi in bounds:
        assert (lo, hi) == pytest.approx(interval)
        verdict = classify(lo, hi, k=10)
        assert (not (verdict.disclosed or verdict.small)) is passes


def test_classify_rounds_inward_to_integers():
    assert classify(0.4, 9.6, 10) == classify(1, 9, 10)
    assert classify(3, 3, 10).exact and classify(3, 3, 10).existence
    assert not classify(0, 11, 10).disclosed


def test_contradictory_constraints_are_an_error():
    with pytest.raises(ValueError, match="no solution"):
        interval_bounds(np.ones((1, 2)), [5], [0, 0], [1, 1], [0])


# ---------------------------------------------------------------------------------------
# Test vectors 1, 4 and 5 on releases


def test_vector_1_a_household_is_one_case():
    records = records_in([(CHILDREN[0], 1)], persons=6)
    release = release_of(records)
    assert release.groups.empty
    assert release.metadata["dropped"] == {"cases": 1, "persons": 6}
    report = audit_releases({"household": release}, records)
    assert report.ok and report.checked["group"] == 1


def test_vector_4_polygon_differencing_never_reveals_the_one():
    records = records_in([(CHILDREN[0], 20), (CHILDREN[1], 15), (CHILDREN[2], 1)])
    release = release_of(records)

    def exposure(cells):  # what any polygon can show: a sum of released values inside it
        inside = release.groups["h3_cell"].map(
            lambda c: any(h3.cell_to_parent(cell, h3.get_resolution(c)) == c for cell in cells)
        )
        return int(release.groups.loc[inside, "cases"].sum())

    assert exposure(CHILDREN[:3]) - exposure(CHILDREN[:2]) == 0
    report = audit_releases({"public": release}, records)
    assert report.ok and report.checked["group"] == 1


def test_vector_5_a_breakdown_does_not_pin_a_group_the_totals_suppressed():
    # Three res-7 cells under one parent, each under k = 5; their residual (12) is
    # published at the parent with a sex breakdown (6 F, 6 M).
    records = pl.concat(
        [
            records_in([(CHILDREN[0], 4)], sex="F"),
            records_in([(CHILDREN[1], 2)], sex="F"),
            records_in([(CHILDREN[1], 2)], sex="M"),
            records_in([(CHILDREN[2], 4)], sex="M"),
        ]
    )
    release = release_of(records, ReleasePolicy(k=5, noise_scale=0))
    assert release.groups[["h3_cell", "cases"]].values.tolist() == [[PARENT, 12]]
    assert set(release.breakdown("sex")["cases"]) == {6}
    report = audit_releases({"public": release}, records)
    assert report.ok
    assert report.checked["group"] == 3 and report.checked["category"] >= 6


# ---------------------------------------------------------------------------------------
# Leaky releases are flagged


def test_a_parent_published_beside_all_but_one_child_is_flagged():
    records = records_in(list(zip(CHILDREN, [12, 15, 11, 20, 13, 14, 3], strict=True)))
    release = release_of(records)
    assert release.metadata["dropped"]["cases"] == 3
    assert audit_releases({"safe": release}, records).ok
    leaky = with_rows(totals_only(release), groups=[(PARENT, 6, "ROU", 3, 3)], dropped=0)
    report = audit_releases({"leaky": leaky}, records)
    assert [(f.kind, f.cell, f.lo, f.hi) for f in report.exact if f.kind == "group"] == [
        ("group", CHILDREN[6], 3, 3)
    ]


def test_a_residual_that_pins_its_two_children_is_flagged():
    records = records_in(list(zip(CHILDREN, [12, 15, 11, 20, 13, 9, 9], strict=True)))
    release = release_of(records)
    assert 6 not in set(release.groups["resolution"])  # the rules roll 18 up further
    base_only = Release(
        groups=release.groups[release.groups["resolution"] == 7],
        breakdowns=release.breakdowns,
        metadata=release.metadata,
    )
    leaky = with_rows(base_only, groups=[(PARENT, 6, "ROU", 18, 18)])
    report = audit_releases({"leaky": leaky}, records)
    exact = {(f.cell, f.lo) for f in report.exact if f.kind == "group"}
    assert exact == {(CHILDREN[5], 9), (CHILDREN[6], 9)}


def test_a_breakdown_with_one_small_category_is_flagged():
    records = pl.concat(
        [records_in([(CHILDREN[0], 12)], sex="F"), records_in([(CHILDREN[0], 2)], sex="X")]
    )
    release = release_of(records)
    assert release.breakdown("sex").empty  # the rules withhold it
    cell = CHILDREN[0]
    leaky = with_rows(
        release,
        breakdowns=[(cell, 7, "ROU", "sex", "F", 12, 12), (cell, 7, "ROU", "sex", "X", 2, 2)],
    )
    report = audit_releases({"leaky": leaky}, records)
    assert {(f.kind, f.detail, f.lo, f.hi) for f in report.exact} >= {("category", "sex=X", 2, 2)}


def test_a_vulnerability_breakdown_that_pins_a_group_is_withheld():
    # Found by the audit: floor cell with groups of 25 and 6 cases and 26 "none", so the
    # group of 6 is proven to hold at least 26 − 25 = 1 case without vulnerability.
    records = pl.concat(
        [
            records_in([(CHILDREN[0], 23)]),
            records_in([(CHILDREN[0], 2)], vulnerabilities=1),
            records_in([(CHILDREN[1], 3)]),
            records_in([(CHILDREN[1], 3)], vulnerabilities=1),
        ]
    )
    policy = ReleasePolicy(k=5, floor_resolution=6, noise_scale=0)
    release = release_of(records, policy)
    assert release.breakdown("vulnerability").empty
    assert audit_releases({"public": release}, records).ok
    floor = PARENT
    leaky = with_rows(
        release,
        breakdowns=[
            (floor, 6, "ROU", "vulnerability", "none", 26, 26),
            (floor, 6, "ROU", "vulnerability", "disability", 5, 5),
        ],
    )
    report = audit_releases({"leaky": leaky}, records)
    assert ("category", CHILDREN[1], "vulnerability=none") in {
        (f.kind, f.cell, f.detail) for f in report.existence
    }


# ---------------------------------------------------------------------------------------
# Several releases


@pytest.fixture(scope="module")
def records():
    return consenting_records(8_000, seed=5)


@pytest.fixture(scope="module")
def public(records):
    return release_of(records)


@pytest.mark.slow
def test_public_release_and_an_embassy_release_of_the_same_audience(records, public):
    embassy = release_of(records, ReleasePolicy(nationalities=("UKR",), noise_scale=0))
    alone = audit_releases({"public": public}, records)
    both = audit_releases({"public": public, "embassy": embassy}, records)
    assert alone.ok and both.ok
    assert both.checked == alone.checked  # the embassy's numbers are the public's


@pytest.mark.slow
def test_two_base_resolutions_leak_between_them(records, public):
    finer = release_of(records, ReleasePolicy(base_resolution=8, noise_scale=0))
    assert audit_releases({"finer": finer}, records).ok
    report = audit_releases({"public": public, "finer": finer}, records)
    assert not report.ok
    assert report.exact and {f.release for f in report.exact} <= {"public", "finer"}


def test_an_embassy_release_with_its_own_consent_reveals_who_did_not_consent():
    # Public (consent "aggregate") publishes 15 UKR cases in a cell; the embassy's
    # release (consent "origin_state") does not, so it holds at most 9 of them: at
    # least 6 of the 15 did not consent to their origin state seeing them.
    records = pl.concat(
        [
            records_in([(CHILDREN[0], 8)], "UKR", consent=AGGREGATE | ORIGIN_STATE),
            records_in([(CHILDREN[0], 7)], "UKR", consent=AGGREGATE),
            records_in([(CHILDREN[1], 3)], "UKR", consent=AGGREGATE | ORIGIN_STATE),
        ]
    )
    public = release_of(records)
    embassy = protect(
        records.filter((pl.col("consent") & ORIGIN_STATE) != 0).drop("consent"),
        ReleasePolicy(nationalities=("UKR",), consent_scope="origin_state", noise_scale=0),
    )
    assert audit_releases({"public": public}, records).ok
    report = audit_releases({"public": public, "embassy": embassy}, records)
    assert [(f.kind, f.cell, f.lo, f.true) for f in report.existence] == [
        ("consent subgroup", CHILDREN[0], 6, 7)
    ]
    assert report.existence[0].detail == "counted in public but not in embassy"


def test_a_rounded_release_passes(records):
    rounded = release_of(records, ReleasePolicy(round_to=5, noise_scale=0))
    assert audit_releases({"rounded": rounded}, records).ok


# ---------------------------------------------------------------------------------------
# The audit agrees with a plain cell-by-cell linear programme


def plain_rollup(records, k=10, base=7, floor=4):
    """The roll-up WITHOUT the pin check: every residual of ≥ k cases is published."""
    pending = defaultdict(int)
    for nationality, cell in records.select("nationality", "cell").iter_rows():
        pending[(h3.cell_to_parent(h3.int_to_str(cell), base), nationality)] += 1
    published = {}
    for res in range(base, floor - 1, -1):
        level = defaultdict(int)
        for (cell, nationality), n in pending.items():
            level[(h3.cell_to_parent(cell, res), nationality)] += n
        published |= {(c, res, nat): n for (c, nat), n in level.items() if n >= k}
        pending = {
            (c, nat): n
            for (c, nat), n in pending.items()
            if (h3.cell_to_parent(c, res), res, nat) not in published
        }
    return published, sum(pending.values())


def plain_flags(records, published, k=10, base=7):
    """Base groups between 1 and k−1 whose lower bound is ≥ 1, one variable per cell."""
    owner = {}
    for cell, res, nationality in sorted(published, key=lambda g: -g[1]):
        for child in h3.cell_to_children(cell, base):
            owner.setdefault((child, nationality), (cell, res, nationality))
    index = {key: i for i, key in enumerate(sorted(owner))}
    equations = np.zeros((len(published), len(index)))
    for row, group in enumerate(published):
        for key, holder in owner.items():
            equations[row, index[key]] = holder == group
    upper = [np.inf if owner[key][1] == base else k - 1 for key in index]
    truth = defaultdict(int)
    for nationality, cell in records.select("nationality", "cell").iter_rows():
        truth[(h3.cell_to_parent(h3.int_to_str(cell), base), nationality)] += 1
    flags = set()
    for key, n in truth.items():
        if 1 <= n < k and key in index:
            objective = np.eye(len(index))[index[key]]
            low = linprog(
                objective,
                A_eq=equations,
                b_eq=list(published.values()),
                bounds=list(zip([0] * len(index), upper, strict=True)),
                method="highs",
            ).fun
            if low > 1e-6:
                flags.add(key)
    return flags


def sparse_registry(seed):
    rng = np.random.default_rng(seed)
    top = h3.latlng_to_cell(42.79, 13.09, 5)
    parts = []
    for parent in sorted(h3.cell_to_children(top, 6))[: rng.integers(2, 5)]:
        for child in sorted(h3.cell_to_children(parent, 7)):
            for nationality in ("ROU", "ALB"):
                parts.append(
                    records_in([(child, int(rng.choice([0, 0, 2, 5, 9, 11, 15])))], nationality)
                )
    return pl.concat(parts)


@pytest.mark.parametrize("seed", [6, 8, 9, 21])
def test_the_audit_matches_a_plain_cell_by_cell_programme(seed):
    records = sparse_registry(seed)
    published, dropped = plain_rollup(records)
    release = totals_only(release_of(records))
    empty = Release(
        groups=release.groups.iloc[:0], breakdowns=release.breakdowns, metadata=release.metadata
    )
    groups = [(c, r, n, v, v) for (c, r, n), v in published.items()]
    leaky = with_rows(empty, groups=groups, dropped=dropped)
    report = audit_releases({"plain": leaky}, records)
    flagged = {
        (f.cell, f.nationality) for f in report.exact + report.existence if f.kind == "group"
    }
    assert flagged == plain_flags(records, published)
    assert flagged  # the plain roll-up really leaks on these registries


# ---------------------------------------------------------------------------------------
# Properties: random registries of varied density


@st.composite
def registries(draw):
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    top = h3.latlng_to_cell(42.79, 13.09, 5)
    density = draw(st.sampled_from([0.1, 0.4, 0.9]))
    sizes = draw(st.sampled_from([(0, 1, 3), (0, 4, 9, 12), (5, 15, 40)]))
    rows = []
    for child in sorted(h3.cell_to_children(top, 7)):
        if rng.random() > density:
            continue
        fine = list(h3.cell_to_children(child, 8))
        for nationality in ("ROU", "ALB", "NPL")[: draw(st.integers(1, 3))]:
            for _ in range(int(rng.choice(sizes))):
                rows.append(
                    (
                        nationality,
                        h3.str_to_int(fine[rng.integers(0, 7)]),
                        str(rng.choice(["F", "M", "X"], p=[0.5, 0.45, 0.05])),
                        str(rng.choice(["5-17", "18-59", "60+"], p=[0.1, 0.8, 0.1])),
                        int(rng.choice([0, 1, 4], p=[0.85, 0.1, 0.05])),
                        int(rng.integers(1, 4)),
                        AGGREGATE,
                    )
                )
    policy = ReleasePolicy(
        k=draw(st.sampled_from([3, 5, 10])),
        base_resolution=draw(st.sampled_from([7, 8])),
        floor_resolution=draw(st.sampled_from([5, 6])),
        noise_scale=0,
    )
    return pl.DataFrame(rows, schema=SCHEMA, orient="row"), policy


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(registries())
def test_random_registries_are_released_without_disclosure(drawn):
    records, policy = drawn
    release = release_of(records, policy)
    report = audit_releases({"r": release}, records)
    assert report.ok, report.lines()
    assert_parents_equal_their_records(records, release, policy)
    assert_totals_are_sums_of_released_values(release, records.height)


def assert_parents_equal_their_records(records, release, policy):
    """Each group equals the cases of its base cells not published at a finer level."""
    published = {(c, n) for c, n in release.groups[["h3_cell", "nationality"]].values}
    counts = records.group_by("nationality").len()
    rare = set(counts.filter(pl.col("len") < policy.k)["nationality"])
    holder = defaultdict(int)
    for nationality, cell in records.select("nationality", "cell").iter_rows():
        label = "OTH" if nationality in rare else nationality
        for res in range(policy.base_resolution, policy.floor_resolution - 1, -1):
            parent = h3.cell_to_parent(h3.int_to_str(cell), res)
            if (parent, label) in published:
                holder[(parent, label)] += 1
                break
    shown = dict(
        zip(
            zip(release.groups["h3_cell"], release.groups["nationality"], strict=True),
            release.groups["cases"],
            strict=True,
        )
    )
    assert holder == shown


def assert_totals_are_sums_of_released_values(release, audience_cases):
    meta = release.metadata
    assert meta["published"]["cases"] == release.groups["cases"].sum()
    assert meta["published"]["cases"] + meta["dropped"]["cases"] == audience_cases
    totals = release.groups.set_index(["h3_cell", "nationality"])["cases"]
    for dimension in ("sex", "age_band"):
        sums = release.breakdown(dimension).groupby(["h3_cell", "nationality"])["cases"].sum()
        assert (sums == totals.loc[sums.index]).all()
    floors = (
        release.groups.assign(
            floor=[
                h3.cell_to_parent(c, release.policy.floor_resolution)
                for c in release.groups["h3_cell"]
            ]
        )
        .groupby(["floor", "nationality"])["cases"]
        .sum()
    )
    vulnerable = release.breakdown("vulnerability").groupby(["h3_cell", "nationality"])["cases"]
    sums = vulnerable.sum()
    assert (sums.values == floors.loc[sums.index].values).all()


# ---------------------------------------------------------------------------------------
# Files, store and command line


@pytest.fixture
def store_and_release(tmp_path, write_csv):
    rows = [registration_row(f"a{i}", latitude="42.79", longitude="13.09") for i in range(14)]
    rows += [registration_row(f"b{i}", latitude="42.80", longitude="13.12") for i in range(3)]
    path = tmp_path / "s.duckdb"
    pipeline.ingest_files(path, [write_csv(rows)])
    release = build_release(path, EXACT)
    return path, write_release(release, tmp_path / "r.release.parquet"), release


def run_cli(argv):
    args = build_parser().parse_args(argv)
    return RUN[args.command](args)


def test_run_audit_and_the_command_line(store_and_release, tmp_path, capsys):
    path, release_path, release = store_and_release
    report = run_audit([release_path], path)
    assert report.ok and report.checked["group"] >= 1
    assert run_cli(["audit", str(release_path), "--store", str(path)]) == 0
    assert "verdict: nothing disclosed" in capsys.readouterr().out
    dropped = release.metadata["dropped"]["cases"]
    cell = h3.latlng_to_cell(42.80, 13.12, 7)
    leaky = with_rows(totals_only(release), groups=[(cell, 7, "ROU", dropped, dropped)], dropped=0)
    leaky_path = write_release(leaky, tmp_path / "leaky.release.parquet")
    # a file publishing a group under k breaks its method's invariants: refused on reading,
    # before any attacker is needed (the LP flags the same release in memory above)
    with pytest.raises(InputError, match="under its floor of 10"):
        run_cli(["audit", str(leaky_path), "--store", str(path), "--examples", "1"])
    con = store.connect(path, read_only=True)
    try:
        records = store_reads.registration_records(con)
    finally:
        con.close()
    report = audit_releases({"leaky": leaky}, records)
    assert not report.ok and any(f.kind == "group" for f in report.exact)


def test_a_release_from_another_store_is_refused(store_and_release, tmp_path, write_csv):
    _, release_path, _ = store_and_release
    other = tmp_path / "other.duckdb"
    pipeline.ingest_files(other, [write_csv([registration_row("z1")], name="other.csv")])
    with pytest.raises(InputError, match="audit a release against the store it was made from"):
        run_audit([release_path], other)
