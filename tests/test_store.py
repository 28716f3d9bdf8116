"""The steward store: minimal records, idempotent and atomic ingests, updates."""

from __future__ import annotations

import csv

import pytest

from geo import pipeline
from geo.errors import InputError
from geo.io import store, store_ingest
from tests.factories import registration_row


def snapshot(path):
    con = store.connect(path, read_only=True)
    try:
        records = con.execute(
            "SELECT * FROM registrations ORDER BY record_key, valid_from"
        ).fetchall()
        ingests = con.execute("SELECT file_name, sha256, rows_read FROM ingests").fetchall()
    finally:
        con.close()
    return records, ingests


def test_ingest_keeps_only_minimal_fields(tmp_path, write_csv):
    rows = [
        registration_row(f"r{i}", full_name=f"Secret Name {i}", phone=f"+39 555 {i:04d}")
        for i in range(5)
    ]
    rows.append(registration_row("bad", nationality="Atlantis", full_name="Secret Name X"))
    path = write_csv(rows)
    reports = pipeline.ingest_files(tmp_path / "s.duckdb", [path])
    report = reports[0]
    assert (report.rows_read, report.accepted, report.rejected, report.inserted) == (6, 5, 1, 5)
    assert set(report.identifier_columns) == {"full_name", "phone"}
    raw_store = (tmp_path / "s.duckdb").read_bytes()
    assert b"Secret Name" not in raw_store and b"+39 555" not in raw_store
    assert b"r1" not in raw_store  # record ids are stored only as keyed hashes
    with open(report.rejects_path, newline="") as handle:
        rejects = list(csv.DictReader(handle))
    assert rejects == [{"row": "7", "record_id": "bad", "reasons": rejects[0]["reasons"]}]
    assert "Secret" not in report.rejects_path.read_text()
    con = store.connect(tmp_path / "s.duckdb", read_only=True)
    columns = [c[0] for c in con.execute("DESCRIBE registrations").fetchall()]
    con.close()
    assert "latitude" not in columns and "record_id" not in columns and "cell" in columns


def test_reingesting_the_same_file_changes_nothing(tmp_path, write_csv):
    path = write_csv([registration_row(f"r{i}") for i in range(3)])
    pipeline.ingest_files(tmp_path / "s.duckdb", [path])
    before = snapshot(tmp_path / "s.duckdb")
    report = pipeline.ingest_files(tmp_path / "s.duckdb", [path])[0]
    assert report.already_ingested
    assert snapshot(tmp_path / "s.duckdb") == before


def test_duplicates_keep_the_latest_update(tmp_path, write_csv):
    rows = [
        registration_row("a", nationality="ROU", updated_at="2024-01-01"),
        registration_row("a", nationality="ALB", updated_at="2025-06-01"),
        registration_row("a", nationality="MAR", updated_at="2023-01-01"),
        registration_row("a", nationality="UKR", source="other_source"),
    ]
    report = pipeline.ingest_files(tmp_path / "s.duckdb", [write_csv(rows)])[0]
    assert (report.accepted, report.rejected, report.inserted) == (2, 2, 2)
    assert report.rejects_by_reason == {
        "duplicate record_id (the entry with the latest updated_at is kept)": 2
    }
    con = store.connect(tmp_path / "s.duckdb", read_only=True)
    stored = sorted(r[0] for r in con.execute("SELECT nationality FROM registrations").fetchall())
    con.close()
    assert stored == ["ALB", "UKR"]


def test_a_duplicate_record_with_identity_fields_keeps_one_identity(tmp_path, write_csv):
    """The losing duplicate's identity encodings go with it: one identity per record."""
    rows = [
        registration_row("a", full_name="Ana Pop", updated_at="2024-01-01"),
        registration_row("a", full_name="Ana Pop", nationality="ALB", updated_at="2025-06-01"),
        registration_row("b", full_name="Ion Rusu", updated_at="2024-01-01"),
    ]
    report = pipeline.ingest_files(tmp_path / "s.duckdb", [write_csv(rows)])[0]
    assert (report.accepted, report.rejected, report.inserted) == (2, 1, 2)
    con = store.connect(tmp_path / "s.duckdb", read_only=True)
    try:
        identities = con.execute(
            "SELECT count(*), count(DISTINCT record_key) FROM identities"
        ).fetchall()
        stored = con.execute(
            "SELECT r.nationality FROM registrations r JOIN identities USING (record_key)"
            " ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    assert identities == [(2, 2)]
    assert [n for (n,) in stored] == ["ALB", "ROU"]


def test_a_later_file_updates_and_an_older_one_does_not(tmp_path, write_csv):
    s = tmp_path / "s.duckdb"
    pipeline.ingest_files(
        s, [write_csv([registration_row("a", updated_at="2024-01-01")], "v1.csv")]
    )
    newer = write_csv(
        [registration_row("a", nationality="ALB", updated_at="2025-01-01"), registration_row("b")],
        "v2.csv",
    )
    report = pipeline.ingest_files(s, [newer])[0]
    assert (report.updated, report.inserted) == (1, 1)
    older = write_csv([registration_row("a", nationality="MAR", updated_at="2020-01-01")], "v0.csv")
    report = pipeline.ingest_files(s, [older])[0]
    assert (report.kept_newer, report.updated, report.inserted) == (1, 0, 0)
    con = store.connect(s, read_only=True)
    current = "SELECT count(*), min(nationality) FROM registrations WHERE valid_to IS NULL"
    assert con.execute(current).fetchall() == [(2, "ALB")]
    con.close()


def test_a_failure_half_way_leaves_the_store_as_it_was(tmp_path, write_csv, monkeypatch):
    s = tmp_path / "s.duckdb"
    pipeline.ingest_files(s, [write_csv([registration_row("keep")], "first.csv")])
    before = snapshot(s)
    second = write_csv([registration_row(f"n{i}") for i in range(10)], "second.csv")
    third = write_csv([registration_row("t")], "third.csv")
    calls = {"n": 0}
    real_merge = store_ingest._merge

    def failing_merge(con, ingest_id, appended):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_merge(con, ingest_id, appended)

    monkeypatch.setattr(store_ingest, "_merge", failing_merge)
    with pytest.raises(OSError, match="disk full"):
        pipeline.ingest_files(s, [second, third])
    assert snapshot(s) == before
    assert not (tmp_path / "second.csv.rejects.csv").exists()


def test_an_error_while_a_file_streams_in_is_raised_as_itself_and_stores_nothing(
    tmp_path, write_csv, monkeypatch
):
    """A file's batches stream into the store inside one INSERT; an error while reading
    them (here the second file's row limit) is raised with its own type and message, not
    as a database error, and the store is left as it was."""
    from geo.io.limits import LimitError

    s = tmp_path / "s.duckdb"
    pipeline.ingest_files(s, [write_csv([registration_row("keep")], "first.csv")])
    before = snapshot(s)
    monkeypatch.setenv("CRISIS_EXPOSURE_MAX_ROWS", "150")
    good = write_csv([registration_row(f"g{i}") for i in range(100)], "good.csv")
    big = write_csv([registration_row(f"b{i}") for i in range(300)], "big.csv")
    with pytest.raises(LimitError, match=r"big\.csv: it has 300 rows or more"):
        pipeline.ingest_files(s, [good, big])
    assert snapshot(s) == before
    assert not list(tmp_path.glob("*.rejects.csv"))


def test_a_bad_file_among_good_ones_stores_nothing(tmp_path, write_csv):
    s = tmp_path / "s.duckdb"
    good = write_csv([registration_row("a")], "good.csv")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x00binary")
    with pytest.raises(InputError, match="bad.csv: the file is binary"):
        pipeline.ingest_files(s, [good, bad])
    pipeline.ingest_files(s, [good])
    assert len(snapshot(s)[0]) == 1


def test_a_file_that_is_not_a_store(tmp_path):
    import duckdb

    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).execute("CREATE TABLE x (a INT)").close()
    with pytest.raises(InputError, match="not a crisis-exposure store"):
        store.connect(other, read_only=True)


def test_progress_is_reported_on_the_calling_thread(tmp_path, monkeypatch):
    """A file's batches stream into the store on DuckDB's threads; its progress messages
    still reach the caller on its own thread (a dashboard page can only update there)."""
    import threading

    import polars as pl

    from geo.io import registrations

    monkeypatch.setattr(registrations, "BATCH_ROWS", 500)  # 60 batches
    path = tmp_path / "records.parquet"
    pl.DataFrame([registration_row(f"r{i}") for i in range(30_000)]).write_parquet(path)
    threads = []
    pipeline.ingest_files(
        tmp_path / "s.duckdb",
        [path],
        progress=lambda message: threads.append((threading.current_thread(), message)),
    )
    assert any("30000 rows read" in message for _, message in threads)
    assert {thread for thread, _ in threads} == {threading.current_thread()}
