"""A store's releases taken together: one policy per series, no audience under k, and
metadata that publishes no store figure (rows of the privacy issue's table)."""

from __future__ import annotations

import pandas as pd
import pytest

from geo import cli, pipeline
from tests.factories import registration_row

AUS_CASES = 8  # under k = 10


@pytest.fixture
def store(tmp_path, write_csv):
    rows = [registration_row(f"r{i}", nationality="ROU") for i in range(40)]
    rows += [
        registration_row(f"a{i}", nationality="AUS", family_members="1") for i in range(AUS_CASES)
    ]
    path = tmp_path / "s.duckdb"
    pipeline.ingest_files(path, [write_csv(rows)])
    assert (
        cli.main(["release", "--store", str(path), "--out", str(tmp_path / "r1.release.parquet")])
        == 0
    )
    return path


@pytest.mark.parametrize(
    ("options", "differs"),
    [
        (["--resolution", "6"], "base resolution 7 → 6"),  # res 7 + res 6: residuals exact
        (["--k", "11"], "k 10 → 11"),  # k 10 + k 11: residuals exact
        (["--floor", "3"], "floor resolution 4 → 3"),
        (["--noise", "5"], "noise scale 3.3333333333333335 → 5.0"),
        (["--consent", "humanitarian"], "consent scope 'aggregate' → 'humanitarian'"),
    ],
)
def test_another_policy_on_the_same_store_exits_2_naming_the_release_it_would_meet(
    store, tmp_path, capsys, options, differs
):
    out = tmp_path / "r2.release.parquet"
    code = cli.main(["release", "--store", str(store), "--out", str(out), *options])
    errors = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert code == 2 and len(errors) == 1
    assert "would meet release #1 (r1.release.parquet)" in errors[0] and differs in errors[0]
    assert not out.exists()
    assert [entry["release_id"] for entry in pipeline.list_releases(store)] == [1]


def test_an_embassy_release_of_the_series_policy_is_written(store, tmp_path):
    out = tmp_path / "rou.release.parquet"
    argv = ["release", "--store", str(store), "--out", str(out), "--nationality", "ROU"]
    assert cli.main(argv) == 0
    public = pipeline.read_release(tmp_path / "r1.release.parquet").groups
    embassy = pipeline.read_release(out).groups
    rou = public[public["nationality"] == "ROU"].reset_index(drop=True)
    assert embassy.reset_index(drop=True).equals(rou)  # exactly the public rows: no new figure


def test_an_audience_under_k_is_refused_and_says_nothing_more(store, tmp_path, capsys):
    out = tmp_path / "aus.release.parquet"
    code = cli.main(["release", "--store", str(store), "--out", str(out), "--nationality", "AUS"])
    error = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert code == 2 and len(error) == 1 and "AUS have fewer than k=10 registrations" in error[0]
    assert str(AUS_CASES) not in error[0].replace("k=10", "")  # the count itself is not said
    assert not out.exists()


def test_metadata_holds_no_store_figure_nor_file_name(store, tmp_path):
    metadata = pipeline.read_release(tmp_path / "r1.release.parquet").metadata
    assert "source" not in metadata
    text = str(metadata)
    assert "records.csv" not in text and "store_records" not in text
    assert metadata["store_version"] == 1


def test_the_series_table_shows_changes_per_audience_in_published_figures():
    from geo.series import series_table

    rows = [
        {
            "name": "b",
            "created": "2",
            "store_version": 2,
            "audience": "all",
            "groups": 5,
            "persons": 130,
        },
        {
            "name": "a",
            "created": "1",
            "store_version": 1,
            "audience": "all",
            "groups": 4,
            "persons": 100,
        },
        {
            "name": "r",
            "created": "1",
            "store_version": 1,
            "audience": "ROU",
            "groups": 2,
            "persons": 40,
        },
    ]
    table = series_table(rows)
    assert list(table["name"]) == ["r", "a", "b"] or list(table["name"]) == ["a", "b", "r"]
    by_name = table.set_index("name")
    assert by_name.loc["b", "persons change"] == 30 and by_name.loc["b", "groups change"] == 1
    assert pd.isna(by_name.loc["a", "persons change"]) and pd.isna(
        by_name.loc["r", "persons change"]
    )


def test_a_release_says_where_it_stands_in_its_series():
    from geo.series import series_sentence, series_table

    rows = [
        {
            "name": "a",
            "created": "1",
            "store_version": 1,
            "audience": "all",
            "groups": 4,
            "persons": 100,
        },
        {
            "name": "b",
            "created": "2",
            "store_version": 2,
            "audience": "all",
            "groups": 5,
            "persons": 130,
        },
    ]
    table = series_table(rows)
    assert series_sentence(table, "b") == (
        "This release is release 2 of 2 here for its audience (all), made at store version 2, "
        "the newest. Since the previous one: +30 persons and +1 groups published."
    )
    assert "release 1 of 2" in series_sentence(table, "a") and "not the newest" in series_sentence(
        table, "a"
    )
    assert series_sentence(table, "z") == ""
