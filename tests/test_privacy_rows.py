"""The privacy issue's table, row by row, on a registry built in code.

Each test plants a small change between two releases of one store (same policy) and
plays the issue's attacker: it holds both releases and knows the earlier true stock of
the group exactly ("everything except the small group"). Method 1 (exact counts) gives
the change away exactly; method 2 (keyed noise) leaves a provable interval that is
neither a single value nor inside [1, k−1]. The rows about other policies, consent
scopes and audiences under k are refused before anything is written
(tests/test_series.py); withheld breakdowns and metadata are covered by
tests/test_noise.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import h3
import pytest

from geo import pipeline
from geo.errors import InputError
from geo.release import ReleasePolicy
from tests.factories import registration_row

K = 10
INF = math.inf
NORCIA, CASCIA, SPOLETO, FOLIGNO = (
    (42.793, 13.094),
    (42.718, 13.013),
    (42.734, 12.738),
    (42.956, 12.703),
)
METHODS = {"exact": ReleasePolicy(noise_scale=0), "noise": ReleasePolicy()}


def row_at(record_id: str, place: tuple[float, float], **fields) -> dict:
    """One registration at a place (latitude, longitude)."""
    return registration_row(record_id, latitude=f"{place[0]}", longitude=f"{place[1]}", **fields)


def rows_at(prefix: str, n: int, place: tuple[float, float], **fields) -> list[dict]:
    return [row_at(f"{prefix}{i}", place, **fields) for i in range(n)]


def base_registry() -> list[dict]:
    rows = rows_at("rou-n", 184, NORCIA, nationality="ROU", family_members="1")
    rows += rows_at("rou-c", 60, CASCIA, nationality="ROU", family_members="2")
    rows += rows_at("alb-n", 40, NORCIA, nationality="ALB")
    rows += rows_at("alb-s", 30, SPOLETO, nationality="ALB")
    # rare nationalities (each under k in the whole release) that together make OTH groups
    for j, code in enumerate(("AUS", "NZL", "CAN", "JPN", "KOR", "CHL")):
        count = 8 if code == "AUS" else 9
        for i in range(count):
            place = (NORCIA, FOLIGNO)[i % 2]
            rows += rows_at(f"{code}-{j}-{i}", 1, place, nationality=code)
    return rows


@dataclass
class Pair:
    """Two releases of one store, and the true stocks of the planted groups in both."""

    before: object
    after: object
    method: str


def release_pair(tmp_path, write_csv, method: str, change: list[dict]) -> Pair:
    store = tmp_path / f"{method}.duckdb"
    pipeline.ingest_files(store, [write_csv(base_registry(), f"{method}-day1.csv")])
    policy = METHODS[method]
    before = pipeline.build_release(store, policy)  # method 1 cannot be published
    pipeline.ingest_files(store, [write_csv(change, f"{method}-day2.csv")])
    # built without the ledger's guard, which would refuse the exact one (the last test)
    after = pipeline.build_release(store, policy)
    return Pair(before, after, method)


def provable(release, cell: str, nationality: str, column: str = "cases", category=None):
    """Return the interval the published values prove for one stock (no statistics)."""
    if category is None:
        rows = release.groups
        low = K  # a published group holds at least k cases
    else:
        dimension, category = category
        rows = release.breakdowns[
            (release.breakdowns["dimension"] == dimension)
            & (release.breakdowns["category"] == category)
        ]
        low = 0
    hit = rows[(rows["h3_cell"] == cell) & (rows["nationality"] == nationality)]
    assert len(hit) == 1, "the planted group is published"
    value = int(hit[column].iloc[0])
    if release.metadata["method"] == "exact":
        return value, value
    return low, INF  # keyed noise: the value proves nothing beyond the structure


def flow_interval(pair: Pair, true_before: int, **where) -> tuple[float, float]:
    """The attacker's provable interval for the flow, knowing the earlier stock exactly."""
    low, high = provable(pair.after, **where)
    return low - true_before, high - true_before


def disclosed(interval: tuple[float, float]) -> bool:
    low, high = interval
    return low == high or (low >= 1 and high <= K - 1) or (low >= -(K - 1) and high <= -1)


def cell7(place) -> str:
    """The released res-7 cell of a place: the parent of its stored res-8 cell."""
    return h3.cell_to_parent(h3.latlng_to_cell(*place, 8), 7)


@pytest.mark.parametrize("method", ["exact", "noise"])
def test_row_1_three_new_registrations_in_one_cell(tmp_path, write_csv, method):
    new = rows_at(
        "new", 3, NORCIA, nationality="ROU", family_members="2", vulnerabilities="disability"
    )
    pair = release_pair(tmp_path, write_csv, method, new)
    cell = cell7(NORCIA)
    checks = {
        "cases": flow_interval(pair, 184, cell=cell, nationality="ROU"),
        "persons": flow_interval(pair, 368, cell=cell, nationality="ROU", column="persons"),
        "sex F": flow_interval(pair, 184, cell=cell, nationality="ROU", category=("sex", "F")),
    }
    if method == "exact":
        assert checks == {"cases": (3, 3), "persons": (9, 9), "sex F": (3, 3)}
    else:
        assert not any(disclosed(interval) for interval in checks.values()), checks


@pytest.mark.parametrize("method", ["exact", "noise"])
def test_row_2_one_household_moves_between_two_cells(tmp_path, write_csv, method):
    moved = row_at("rou-n0", CASCIA, nationality="ROU", family_members="5", updated_at="2025-06-01")
    pair = release_pair(tmp_path, write_csv, method, [moved])
    out_of = flow_interval(pair, 184, cell=cell7(NORCIA), nationality="ROU")
    into = flow_interval(pair, 60, cell=cell7(CASCIA), nationality="ROU")
    persons = flow_interval(pair, 180, cell=cell7(CASCIA), nationality="ROU", column="persons")
    if method == "exact":
        assert (out_of, into, persons) == ((-1, -1), (1, 1), (6, 6))
    else:
        assert not any(map(disclosed, (out_of, into, persons)))


@pytest.mark.parametrize("method", ["exact", "noise"])
def test_row_3_one_consent_withdrawal(tmp_path, write_csv, method):
    withdrawn = row_at(  # no longer consenting to "aggregate"
        "alb-n0", NORCIA, nationality="ALB", consent="origin_state", updated_at="2025-06-01"
    )
    pair = release_pair(tmp_path, write_csv, method, [withdrawn])
    interval = flow_interval(pair, 40, cell=cell7(NORCIA), nationality="ALB")
    assert interval == (-1, -1) if method == "exact" else not disclosed(interval)


@pytest.mark.parametrize("method", ["exact", "noise"])
def test_row_4_a_nationality_leaves_other(tmp_path, write_csv, method):
    two_more = rows_at("aus-new", 2, FOLIGNO, nationality="AUS")  # AUS 8 → 10: leaves OTH
    pair = release_pair(tmp_path, write_csv, method, two_more)
    assert "AUS" not in pair.before.groups["nationality"].values
    other_before = {"norcia": 4 + 5 * 5, "foligno": 4 + 4 * 5}  # AUS + the five others
    flows = {
        name: flow_interval(pair, other_before[name], cell=cell7(place), nationality="OTH")
        for name, place in (("norcia", NORCIA), ("foligno", FOLIGNO))
        if (
            (pair.after.groups["h3_cell"] == cell7(place))
            & (pair.after.groups["nationality"] == "OTH")
        ).any()
    }
    assert flows
    if method == "exact":  # every OTH cell that held an earlier AUS registration shows it
        assert flows == {"norcia": (-4, -4), "foligno": (-4, -4)}
    else:
        assert not any(disclosed(interval) for interval in flows.values()), flows


@pytest.mark.parametrize("method", ["exact", "noise"])
def test_row_10_a_withheld_age_breakdown_says_someone_is_not_18_59(tmp_path, write_csv, method):
    """Method 1 withholds a breakdown with a small category: withholding proves one exists."""
    rows = rows_at("adult", 30, NORCIA, nationality="ROU", age="30")
    rows += rows_at("child", 2, NORCIA, nationality="ROU", age="8")  # 2 cases under 18
    rows += rows_at("others", 30, CASCIA, nationality="ROU", age="40")  # all 18-59
    store = tmp_path / "s.duckdb"
    pipeline.ingest_files(store, [write_csv(rows)])
    release = pipeline.build_release(store, METHODS[method])
    ages = release.breakdowns[release.breakdowns["dimension"] == "age_band"]
    shown = set(ages["h3_cell"])
    if method == "exact":  # the all-adult group shows its ages, the other's are withheld
        assert cell7(CASCIA) in shown and cell7(NORCIA) not in shown
    else:  # every group shows every age band, whatever its categories hold
        assert {cell7(CASCIA), cell7(NORCIA)} <= shown
        assert (ages.groupby("h3_cell").size() == 5).all()


def test_exact_counts_are_never_published(tmp_path, write_csv):
    store = tmp_path / "s.duckdb"
    pipeline.ingest_files(store, [write_csv(base_registry(), "day1.csv")])
    with pytest.raises(InputError, match="exact counts .* would show the changes"):
        pipeline.publish_release(store, METHODS["exact"], tmp_path / "1.release.parquet")
    assert not (tmp_path / "1.release.parquet").exists() and not pipeline.list_releases(store)


def test_a_release_that_would_give_a_flow_away_is_not_written(tmp_path, write_csv, monkeypatch):
    """Behind the refusal of exact counts, the ledger's flow guard: a second line of defence
    that refuses without saying what it would have disclosed.
    """
    monkeypatch.setattr("geo.pipeline.releases.refuse_exact", lambda policy: None)
    store = tmp_path / "s.duckdb"
    pipeline.ingest_files(store, [write_csv(base_registry(), "day1.csv")])
    pipeline.publish_release(store, METHODS["exact"], tmp_path / "1.release.parquet")
    new = rows_at("new", 3, NORCIA, nationality="ROU")
    pipeline.ingest_files(store, [write_csv(new, "day2.csv")])
    with pytest.raises(InputError, match="would give away changes .* beside release #1") as err:
        pipeline.publish_release(store, METHODS["exact"], tmp_path / "2.release.parquet")
    assert not any(ch.isdigit() for ch in str(err.value).replace("#1", "").split("release")[0])
    assert cell7(NORCIA) not in str(err.value)
    assert not (tmp_path / "2.release.parquet").exists()
    assert len(pipeline.list_releases(store)) == 1


def test_a_family_growing_in_place_does_not_show_its_new_members(tmp_path, write_csv):
    """Red team: same record, family 1 → 4. The record's key is mixed with its persons, so
    every figure counting it gets fresh noise: no figure moves by exactly +3 persons with
    its cases unchanged."""
    store = tmp_path / "s.duckdb"
    pipeline.ingest_files(store, [write_csv(base_registry(), "day1.csv")])
    before = pipeline.publish_release(store, METHODS["noise"], tmp_path / "1.release.parquet")
    grown = row_at("rou-n0", NORCIA, nationality="ROU", family_members="4", updated_at="2025-06-01")
    pipeline.ingest_files(store, [write_csv([grown], "day2.csv")])
    after = pipeline.publish_release(store, METHODS["noise"], tmp_path / "2.release.parquet")
    keys = ["h3_cell", "resolution", "nationality", "dimension", "category"]
    both = before.table().merge(after.table(), on=keys, suffixes=("_1", "_2"))
    unison = both[
        (both["cases_1"] == both["cases_2"]) & (both["persons_2"] - both["persons_1"] == 3)
    ]
    assert unison.empty, unison
    assert before.metadata["dropped"]["persons"] + 3 != after.metadata["dropped"]["persons"] or (
        before.metadata["dropped"]["cases"] != after.metadata["dropped"]["cases"]
    )


def test_a_refused_audience_says_the_same_for_none_and_for_a_few(tmp_path, write_csv, capsys):
    store = tmp_path / "s.duckdb"
    pipeline.ingest_files(store, [write_csv(base_registry(), "day1.csv")])
    messages = []
    for code in ("AUS", "SYR"):  # 8 registrations, and none
        with pytest.raises(InputError) as err:
            pipeline.publish_release(
                store, ReleasePolicy(nationalities=(code,)), tmp_path / f"{code}.release.parquet"
            )
        messages.append(str(err.value).replace(code, "X"))
    assert messages[0] == messages[1]


def test_another_store_of_the_same_registry_gives_the_same_release(tmp_path, write_csv):
    """Red team: a new store (a rebuild, a dashboard session) gave fresh noise to average.
    Record keys and noise come from the steward's key, so it now gives the same values."""
    path = write_csv(base_registry(), "day1.csv")
    releases = []
    for name in ("a", "b"):
        store = tmp_path / f"{name}.duckdb"
        pipeline.ingest_files(store, [path])
        out = tmp_path / f"{name}.release.parquet"
        releases.append(pipeline.publish_release(store, METHODS["noise"], out))
    assert releases[0].metadata["content_sha256"] == releases[1].metadata["content_sha256"]
    assert releases[0].metadata["dropped"] == releases[1].metadata["dropped"]


def test_audiences_add_the_same_noisy_dropped_figure_per_nationality(tmp_path, write_csv):
    """Red team: each audience's dropped total had its own noise (31 audiences averaged)."""
    store = tmp_path / "s.duckdb"
    pipeline.ingest_files(store, [write_csv(base_registry(), "day1.csv")])
    dropped = {}
    for audience in (("ROU",), ("ALB",), ("ALB", "ROU")):
        policy = ReleasePolicy(nationalities=audience)
        name = "-".join(audience)
        release = pipeline.publish_release(store, policy, tmp_path / f"{name}.release.parquet")
        dropped[name] = release.metadata["dropped"]
    for column in ("cases", "persons"):
        assert dropped["ALB-ROU"][column] == dropped["ALB"][column] + dropped["ROU"][column]
