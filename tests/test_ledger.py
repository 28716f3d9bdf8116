"""The store's history and release ledger: past audiences and published tables rebuilt."""

from __future__ import annotations

import os

import duckdb
import polars as pl
import pytest
from pandas.testing import assert_frame_equal

from geo import cli, pipeline
from geo.errors import InputError
from geo.io import ledger, store, store_ingest, store_reads
from geo.release import ReleasePolicy
from tests.factories import registration_row

NORCIA = {"latitude": "42.79", "longitude": "13.09"}
PERUGIA = {"latitude": "43.11", "longitude": "12.39"}
POLICY = ReleasePolicy(base_resolution=7, floor_resolution=5, k=3)


@pytest.fixture
def cli_main():
    """Return ``geo.cli.main``."""
    return cli.main


def run(main, capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def audience(con, **options) -> pl.DataFrame:
    """The audience's counts; the record-key sums are left out (each store salts its keys)."""
    frame = store_reads.audience_records(con, "aggregate", **options).drop("key_sum")
    return frame.sort(frame.columns)


def versions(path):
    con = store.connect(path, read_only=True)
    try:
        return con.execute(
            "SELECT * FROM registrations ORDER BY record_key, valid_from"
        ).fetchall(), store.store_version(con)
    finally:
        con.close()


def two_places(family_members: str = "1") -> list[dict]:
    """Six registrations near Norcia and six near Perugia (two H3 cells far apart)."""
    rows = [registration_row(f"n{i}", family_members=family_members, **NORCIA) for i in range(6)]
    rows += [registration_row(f"p{i}", family_members=family_members, **PERUGIA) for i in range(6)]
    return rows


# --------------------------------------------------------------------------- history


def test_an_update_keeps_the_old_version_and_the_past_audience(tmp_path, write_csv):
    s, reference = tmp_path / "s.duckdb", tmp_path / "reference.duckdb"
    v1 = write_csv(
        [registration_row("a", updated_at="2025-01-01"), registration_row("b", **PERUGIA)],
        "v1.csv",
    )
    pipeline.ingest_files(s, [v1])
    pipeline.ingest_files(reference, [v1])
    update = registration_row("a", nationality="ALB", family_members="3", updated_at="2025-02-01")
    report = pipeline.ingest_files(s, [write_csv([update], "v2.csv")])[0]
    assert (report.inserted, report.updated, report.unchanged, report.kept_newer) == (0, 1, 0, 0)
    con = store.connect(s, read_only=True)
    old_con = store.connect(reference, read_only=True)
    try:
        assert store.store_version(con) == 2
        history = con.execute(
            "SELECT nationality, family_members, valid_from, valid_to FROM registrations"
            " ORDER BY valid_from, valid_to NULLS LAST, nationality"
        ).fetchall()
        assert sorted(history[:2], key=str) == sorted(
            [("ROU", 1, 1, 2), ("ROU", 1, 1, None)], key=str
        )
        assert history[2] == ("ALB", 3, 2, None)
        # The past, exactly as a store that never saw the update holds it.
        assert audience(con, as_of=1).equals(audience(old_con))
        now = audience(con)
        assert sorted(now["nationality"].to_list()) == ["ALB", "ROU"]
        assert now.filter(pl.col("nationality") == "ALB")["persons"].to_list() == [4]
        assert audience(con, as_of=2).equals(now)
        assert audience(con, as_of=0).is_empty()
        with pytest.raises(InputError, match="store version 3 does not exist"):
            store_reads.audience_records(con, "aggregate", as_of=3)
        summary = store_reads.store_summary(con)
        assert (summary["records"], summary["persons"], summary["superseded"]) == (2, 6, 1)
        assert summary["store_version"] == 2
    finally:
        con.close()
        old_con.close()


def test_restatements_and_older_versions_add_no_version(tmp_path, write_csv):
    s = tmp_path / "s.duckdb"
    first = [registration_row("a", updated_at=""), registration_row("b")]
    pipeline.ingest_files(s, [write_csv(first, "v1.csv")])
    before, _ = versions(s)
    again = [*first, registration_row("c")]  # a new file: restates a and b, adds c
    report = pipeline.ingest_files(s, [write_csv(again, "v2.csv")])[0]
    assert (report.inserted, report.updated, report.unchanged) == (1, 0, 2)
    older = [registration_row("b", nationality="MAR", updated_at="2020-01-01")]
    report = pipeline.ingest_files(s, [write_csv(older, "v3.csv")])[0]
    assert (report.kept_newer, report.updated, report.inserted) == (1, 0, 0)
    after, version = versions(s)
    assert version == 3
    assert len(after) == 3 and set(before) <= set(after)  # a and b kept their one version
    assert pipeline.ingest_files(s, [tmp_path / "v3.csv"])[0].already_ingested
    assert versions(s)[1] == 3  # a file already ingested is no new version


def test_every_file_of_one_ingest_is_a_version_of_its_own(tmp_path, write_csv):
    s = tmp_path / "s.duckdb"
    pipeline.ingest_files(s, [write_csv([registration_row("a")], "v1.csv")])
    files = [
        write_csv([registration_row("a", nationality=code, updated_at=day)], f"{code}.csv")
        for code, day in (("ALB", "2025-02-01"), ("MAR", "2025-03-01"))
    ]
    pipeline.ingest_files(s, files)
    con = store.connect(s, read_only=True)
    try:
        seen = [audience(con, as_of=v)["nationality"].to_list() for v in (1, 2, 3)]
        history = con.execute(
            "SELECT nationality, valid_from, valid_to FROM registrations ORDER BY valid_from"
        ).fetchall()
    finally:
        con.close()
    assert seen == [["ROU"], ["ALB"], ["MAR"]]
    assert history == [("ROU", 1, 2), ("ALB", 2, 3), ("MAR", 3, None)]


def test_a_failed_update_leaves_history_and_version_as_they_were(tmp_path, write_csv, monkeypatch):
    s = tmp_path / "s.duckdb"
    pipeline.ingest_files(s, [write_csv([registration_row("a")], "v1.csv")])
    before = versions(s)

    def failing_log(*args):
        raise OSError("disk full")

    monkeypatch.setattr(store_ingest, "_log_ingest", failing_log)
    moved = registration_row("a", updated_at="2025-03-01", **PERUGIA)
    with pytest.raises(OSError, match="disk full"):
        pipeline.ingest_files(s, [write_csv([moved], "v2.csv")])
    assert versions(s) == before


# --------------------------------------------------------------------------- ledger


def test_each_release_comes_back_from_the_ledger_and_from_history(tmp_path, write_csv):
    s = tmp_path / "s.duckdb"
    pipeline.ingest_files(s, [write_csv(two_places(), "v1.csv")])
    first = pipeline.publish_release(s, POLICY, tmp_path / "r1.release.parquet")
    # One registration moves from Norcia to Perugia and its family grows.
    moved = registration_row("n0", family_members="4", updated_at="2025-02-01", **PERUGIA)
    pipeline.ingest_files(s, [write_csv([moved], "v2.csv")])
    second = pipeline.publish_release(s, POLICY, tmp_path / "r2.release.parquet")
    # The registry moves on after the last release.
    later = [registration_row(f"q{i}", **NORCIA) for i in range(4)]
    pipeline.ingest_files(s, [write_csv(later, "v3.csv")])
    assert (first.metadata["store_version"], second.metadata["store_version"]) == (1, 2)
    assert not first.table().equals(second.table())

    con = store.connect(s, read_only=True)
    try:
        entries = ledger.ledger(con)
        rebuilt = [ledger.ledger_release(con, entry["release_id"]) for entry in entries]
    finally:
        con.close()
    assert [(e["release_id"], e["store_version"], e["file_name"]) for e in entries] == [
        (1, 1, "r1.release.parquet"),
        (2, 2, "r2.release.parquet"),
    ]
    for entry, published, from_ledger, name in zip(
        entries, (first, second), rebuilt, ("r1", "r2"), strict=True
    ):
        from_file = pipeline.read_release(tmp_path / f"{name}.release.parquet")
        assert_frame_equal(from_ledger.table(), published.table())
        assert_frame_equal(from_ledger.table(), from_file.table())
        assert_frame_equal(from_ledger.groups, from_file.groups)
        assert from_ledger.metadata == from_file.metadata
        assert entry["content_sha256"] == from_file.metadata["content_sha256"]
        assert entry["policy"] == from_file.metadata["policy"]
        assert (entry["groups"], entry["cases"], entry["persons"]) == (
            from_file.metadata["published"]["groups"],
            from_file.metadata["published"]["cases"],
            from_file.metadata["published"]["persons"],
        )
        # The audience at the release's store version, protected again, is the table.
        version = from_ledger.metadata["store_version"]
        past = pipeline.release_as_of(s, from_ledger.policy, version)
        assert_frame_equal(past.table(), from_ledger.table())
    current = pipeline.build_release(s, POLICY)
    assert current.metadata["store_version"] == 3
    assert not current.table().equals(second.table())


def test_an_unknown_or_altered_ledger_release_is_refused(tmp_path, write_csv):
    s = tmp_path / "s.duckdb"
    pipeline.ingest_files(s, [write_csv(two_places(), "v1.csv")])
    pipeline.publish_release(s, POLICY, tmp_path / "r.release.parquet")
    with pytest.raises(InputError, match="release 2 is not in the store's ledger"):
        pipeline.ledger_release(s, 2)
    con = store.connect(s)
    con.execute("UPDATE release_rows SET cases = cases + 1 WHERE dimension = 'total'")
    con.close()
    with pytest.raises(InputError, match="do not match the recorded hash"):
        pipeline.ledger_release(s, 1)


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if "release" in p.name or "publishing" in p.name)


def test_a_failed_publication_leaves_no_ledger_row_and_no_file(tmp_path, write_csv, monkeypatch):
    s = tmp_path / "s.duckdb"
    pipeline.ingest_files(s, [write_csv(two_places(), "v1.csv")])
    # An output folder that cannot be made (its name is taken by a file).
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(InputError, match="cannot write the release"):
        pipeline.publish_release(s, POLICY, tmp_path / "taken" / "r.release.parquet")
    assert pipeline.list_releases(s) == []

    out = tmp_path / "r.release.parquet"
    real_record = ledger.record_release

    def record_then_fail(con, *args):
        real_record(con, *args)
        raise RuntimeError("power cut")

    monkeypatch.setattr(ledger, "record_release", record_then_fail)
    with pytest.raises(RuntimeError, match="power cut"):
        pipeline.publish_release(s, POLICY, out)
    monkeypatch.undo()
    assert pipeline.list_releases(s) == [] and leftovers(tmp_path) == []

    real_replace = os.replace

    def refuse_final_rename(source, target):
        if str(target) == str(out):
            raise PermissionError(13, "Permission denied", str(target))
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", refuse_final_rename)
    with pytest.raises(InputError, match="Permission denied"):
        pipeline.publish_release(s, POLICY, out)
    monkeypatch.undo()
    assert pipeline.list_releases(s) == [] and leftovers(tmp_path) == []

    with pytest.raises(InputError, match="no such store"):
        pipeline.publish_release(tmp_path / "missing.duckdb", POLICY, out)
    assert not (tmp_path / "missing.duckdb").exists()
    pipeline.publish_release(s, POLICY, out)
    assert [e["release_id"] for e in pipeline.list_releases(s)] == [1]
    assert leftovers(tmp_path) == ["r.release.parquet"]


# --------------------------------------------------------------------------- command line


def test_the_releases_command_lists_the_ledger(tmp_path, write_csv, capsys, cli_main):
    s = tmp_path / "s.duckdb"
    assert run(cli_main, capsys, "ingest", write_csv(two_places(), "v1.csv"), "--store", s)[0] == 0
    code, out, _ = run(cli_main, capsys, "releases", "--store", s)
    assert code == 0 and "no release recorded yet" in out
    code, out, _ = run(
        cli_main,
        capsys,
        "release",
        "--store",
        s,
        "--out",
        tmp_path / "all.release.parquet",
        "--k",
        "3",
    )
    assert code == 0 and "recorded in the store's ledger (store version 1)" in out
    moved = registration_row("n0", updated_at="2025-02-01", **PERUGIA)
    run(cli_main, capsys, "ingest", write_csv([moved], "v2.csv"), "--store", s)
    code, _, _ = run(
        cli_main,
        capsys,
        "release",
        "--store",
        s,
        "--out",
        tmp_path / "rou.release.parquet",
        "--k",
        "3",
        "--nationality",
        "RO",
    )
    assert code == 0
    code, out, err = run(cli_main, capsys, "releases", "--store", s)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("#1  ") and lines[1].startswith("#2  ")
    for line, name, audience in ((lines[0], "all", "all"), (lines[1], "rou", "ROU")):
        published = pipeline.read_release(tmp_path / f"{name}.release.parquet").metadata
        figures = published["published"]
        expected = (
            f"k=3 res 7→4 aggregate {audience}  {figures['groups']} groups, "
            f"{figures['cases']} cases, {figures['persons']} persons"
        )
        assert expected in line
    assert "store v1  " in lines[0] and "store v2  " in lines[1]
    assert lines[0].endswith("all.release.parquet") and lines[1].endswith("rou.release.parquet")
    digest = pipeline.read_release(tmp_path / "rou.release.parquet").metadata["content_sha256"]
    assert f"sha256 {digest[:12]}…" in lines[1]


def old_store(path):
    """A store as schema version 1 left it: no history columns, no ledger."""
    con = duckdb.connect(str(path))
    con.execute(
        """
        CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
        INSERT INTO meta VALUES ('schema_version', '1'), ('resolution', '8'), ('key_salt', 'x');
        CREATE TABLE registrations (record_key UHUGEINT, source VARCHAR, nationality VARCHAR,
            cell UBIGINT, sex VARCHAR, age_band VARCHAR, family_members SMALLINT,
            vulnerabilities USMALLINT, consent UTINYINT, updated_at TIMESTAMP,
            ingest_id INTEGER);
        CREATE TABLE ingests (ingest_id INTEGER, file_name VARCHAR, sha256 VARCHAR);
        """
    )
    con.close()
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["releases", "--store", "{store}"],
        ["release", "--store", "{store}", "--out", "{out}"],
        ["ingest", "{records}", "--store", "{store}"],
    ],
)
def test_an_old_store_is_refused(tmp_path, write_csv, capsys, cli_main, command):
    paths = {
        "store": old_store(tmp_path / "old.duckdb"),
        "out": tmp_path / "r.release.parquet",
        "records": write_csv([registration_row("a")]),
    }
    code, out, err = run(cli_main, capsys, *[a.format(**paths) for a in command])
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and last.startswith(f"crisis-exposure {command[0]}: error: ")
    assert "schema version 1" in last and "ingest the registration files again" in last
    assert not paths["out"].exists()
    con = duckdb.connect(str(paths["store"]), read_only=True)
    tables = {row[0] for row in con.execute("SHOW TABLES").fetchall()}
    con.close()
    assert tables == {"meta", "registrations", "ingests"}  # left exactly as it was
