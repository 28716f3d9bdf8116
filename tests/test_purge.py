"""Purge and erase: old or requested registrations leave the store, its file and later
releases; the ledger audit runs first; the log holds no identifier."""

from __future__ import annotations

from dataclasses import replace

import duckdb
import polars as pl
import pytest

from geo import cli, pipeline
from geo.errors import InputError
from geo.hashing import file_sha256, record_keys
from geo.io import store
from geo.release import ReleasePolicy
from tests.factories import registration_row

NORCIA = {"latitude": "42.79", "longitude": "13.09"}
PERUGIA = {"latitude": "43.11", "longitude": "12.39"}
NOISY = ReleasePolicy(base_resolution=7, floor_resolution=5, k=3)
EXACT = replace(NOISY, noise_scale=0)


def fresh_rows() -> list[dict]:
    return [registration_row(f"f{i}", updated_at="2026-01-15", **NORCIA) for i in range(9)] + [
        registration_row(f"g{i}", updated_at="2025-12-01", **PERUGIA) for i in range(7)
    ]


def old_rows() -> list[dict]:
    return [registration_row(f"o{i}", updated_at="2024-03-01", **NORCIA) for i in range(4)] + [
        registration_row(f"u{i}", updated_at="", **PERUGIA) for i in range(2)
    ]


def key_bytes(source: str, record_id: str) -> bytes:
    """The record key of a registration as DuckDB stores it (16 bytes, little-endian)."""
    frame = pl.DataFrame({"source": [source], "record_id": [record_id]})
    row = record_keys(frame, store.record_key_secret()).row(0, named=True)
    return ((int(row["key_hi"]) << 64) | int(row["key_lo"])).to_bytes(16, "little")


def stored(path) -> int:
    con = store.connect(path, read_only=True)
    try:
        return con.execute("SELECT count(*) FROM registrations").fetchall()[0][0]
    finally:
        con.close()


def run(*argv):
    return cli.main([str(a) for a in argv])


def test_purge_removes_exactly_the_old_records_and_their_history(tmp_path, write_csv, capsys):
    path = tmp_path / "s.duckdb"
    pipeline.ingest_files(path, [write_csv(fresh_rows() + old_rows(), "all.csv")])
    # An update of an old record (still old): its history goes with it.
    pipeline.ingest_files(
        path, [write_csv([registration_row("o0", updated_at="2024-04-01", **PERUGIA)], "u.csv")]
    )
    pipeline.publish_release(path, NOISY, tmp_path / "r1.release.parquet")
    assert stored(path) == 23
    before = path.read_bytes()
    assert key_bytes("consular", "o1") in before  # the scan can see a stored key
    assert run("purge", "--store", path, "--older-than", 365, "--as-of", "2026-02-01") == 0
    out = capsys.readouterr().out
    assert out.startswith("purged 6 registrations not confirmed since 2025-02-01")
    assert "o1" not in out and "consular" not in out
    assert stored(path) == 16  # the fresh ones; both versions of o0 went
    data = path.read_bytes()
    for row in old_rows():
        assert key_bytes("consular", row["record_id"]) not in data
    assert key_bytes("consular", "f1") in data
    # A later release equals a release of a store that never held them (same policy).
    clean = tmp_path / "clean.duckdb"
    pipeline.ingest_files(clean, [write_csv(fresh_rows(), "fresh.csv")])
    later = pipeline.publish_release(path, NOISY, tmp_path / "r2.release.parquet")
    same = pipeline.build_release(clean, NOISY)
    assert later.groups.equals(same.groups) and later.breakdowns.equals(same.breakdowns)
    assert later.metadata["dropped"] == same.metadata["dropped"]
    assert later.metadata["confirmed_within_months"] == same.metadata["confirmed_within_months"]
    # The ledger audit still runs: #1 is not re-audited, its flows to #2 are checked.
    report = pipeline.audit_ledger(path)
    assert report.ok, report.lines()
    assert "made before registrations were purged or erased" in report.audited[0]
    assert report.checked["flow"] > 0


def test_the_purge_log_holds_no_identifier(tmp_path, write_csv):
    path = tmp_path / "s.duckdb"
    pipeline.ingest_files(path, [write_csv(fresh_rows() + old_rows())])
    pipeline.purge_store(path, 365, "2026-02-01")
    pipeline.erase_registration(path, "consular", "f3")
    con = duckdb.connect(str(path), read_only=True)
    try:
        columns = [c[0] for c in con.execute("DESCRIBE purges").fetchall()]
        rows = con.execute("SELECT * EXCLUDE (purged_at) FROM purges").fetchall()
    finally:
        con.close()
    assert columns == ["store_version", "kind", "records", "cutoff", "purged_at"]
    assert [(v, kind, n, str(c)) for v, kind, n, c in rows] == [
        (2, "purge", 6, "2025-02-01"),
        (3, "erase", 1, "None"),
    ]
    assert key_bytes("consular", "f3") not in path.read_bytes()


def test_purge_refuses_when_the_ledger_audit_finds_a_disclosure(
    tmp_path, write_csv, capsys, monkeypatch
):
    monkeypatch.setattr("geo.pipeline.releases.refuse_exact", lambda policy: None)
    monkeypatch.setattr("geo.pipeline.releases._refuse_disclosing_flows", lambda *a: None)
    path = tmp_path / "s.duckdb"
    pipeline.ingest_files(path, [write_csv(fresh_rows() + old_rows(), "v1.csv")])
    pipeline.publish_release(path, EXACT, tmp_path / "r1.release.parquet")
    arrivals = [registration_row(f"a{i}", updated_at="2026-01-20", **NORCIA) for i in range(2)]
    pipeline.ingest_files(path, [write_csv(arrivals, "v2.csv")])
    pipeline.publish_release(path, EXACT, tmp_path / "r2.release.parquet")
    assert not pipeline.audit_ledger(path).ok
    before = path.read_bytes()
    for argv in (
        ("purge", "--store", path, "--older-than", 365, "--as-of", "2026-02-01"),
        ("erase", "--store", path, "--source", "consular", "--record-id", "o1"),
    ):
        assert run(*argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1
        assert "ledger audit finds disclosures" in err and "o1" not in err
    assert path.read_bytes() == before


def test_erase_removes_one_registration_and_says_so_without_identifiers(
    tmp_path, write_csv, capsys
):
    path = tmp_path / "s.duckdb"
    pipeline.ingest_files(path, [write_csv(fresh_rows())])
    pipeline.ingest_files(
        path, [write_csv([registration_row("f2", updated_at="2026-01-20", **PERUGIA)], "u.csv")]
    )
    assert key_bytes("consular", "f2") in path.read_bytes()
    assert run("erase", "--store", path, "--source", "consular", "--record-id", "f2") == 0
    out = capsys.readouterr().out
    assert out.startswith("erased 1 registration(s) with their history") and "f2" not in out
    assert stored(path) == 15
    assert key_bytes("consular", "f2") not in path.read_bytes()
    # Not in the store (any more): exit 2, one line, no identifier.
    assert run("erase", "--store", path, "--source", "consular", "--record-id", "f2") == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "crisis-exposure erase: error: no registration with this source and record id is "
        "in the store; nothing was erased."
    )


def test_flows_from_a_release_made_before_a_purge_are_still_attacked(
    tmp_path, write_csv, monkeypatch
):
    """The earlier truth is gone, but its published structure still bounds the flow."""
    monkeypatch.setattr("geo.pipeline.releases.refuse_exact", lambda policy: None)
    monkeypatch.setattr("geo.pipeline.releases._refuse_disclosing_flows", lambda *a: None)
    path = tmp_path / "s.duckdb"
    rows = [registration_row(f"n{i}", updated_at="2026-01-15", **NORCIA) for i in range(12)]
    rows += [registration_row(f"p{i}", updated_at="2026-01-15", **PERUGIA) for i in range(12)]
    rows += [registration_row(f"o{i}", updated_at="2020-01-01", **PERUGIA) for i in range(12)]
    pipeline.ingest_files(path, [write_csv(rows, "v1.csv")])
    policy = replace(EXACT, k=10)
    pipeline.publish_release(path, policy, tmp_path / "r1.release.parquet")
    assert pipeline.audit_ledger(path).ok
    pipeline.purge_store(path, 365, "2026-02-01")
    arrivals = [registration_row(f"a{i}", updated_at="2026-01-20", **NORCIA) for i in range(3)]
    pipeline.ingest_files(path, [write_csv(arrivals, "v3.csv")])
    pipeline.publish_release(path, policy, tmp_path / "r3.release.parquet")
    report = pipeline.audit_ledger(path)
    flows = [f for f in report.exact if f.kind == "flow exact"]
    assert [(f.resolution, f.lo, f.hi) for f in flows if f.resolution == 7] == [(7, 3, 3.0)]
    assert "earlier registrations erased" in flows[0].detail


@pytest.mark.parametrize("days", ["0", "-5"])
def test_purge_needs_a_positive_number_of_days(tmp_path, write_csv, capsys, days):
    path = tmp_path / "s.duckdb"
    pipeline.ingest_files(path, [write_csv(fresh_rows())])
    assert run("purge", "--store", path, "--older-than", days) == 2
    assert "--older-than must be a number of days ≥ 1" in capsys.readouterr().err


def test_an_encrypted_store_stays_encrypted_after_an_erasure(tmp_path, write_csv, monkeypatch):
    monkeypatch.setenv("CRISIS_EXPOSURE_STORE_KEY", "c0" * 32)
    monkeypatch.setenv("CRISIS_EXPOSURE_STORE_WEAK_CRYPTO", "1")
    path = tmp_path / "s.duckdb"
    pipeline.ingest_files(path, [write_csv(fresh_rows())])
    pipeline.erase_registration(path, "consular", "f0")
    assert b"schema_version" not in path.read_bytes()  # the rewritten file is encrypted
    assert stored(path) == 15  # and opens with the store key
    monkeypatch.setenv("CRISIS_EXPOSURE_STORE_KEY", "")
    with pytest.raises(InputError, match="the store is encrypted"):
        stored(path)


def test_the_ingest_log_cannot_prove_a_raw_file_was_ingested_after_an_erasure(
    tmp_path, write_csv, capsys
):
    # An attacker holds the raw file (it names the person) and the store file: with the
    # file's plain SHA-256 in the ingest log, the store proved the file was ingested
    # (so the person registered) even after the erasure.
    path = tmp_path / "s.duckdb"
    raw = write_csv(fresh_rows())
    pipeline.ingest_files(path, [raw])
    assert run("erase", "--store", path, "--source", "consular", "--record-id", "f2") == 0
    capsys.readouterr()
    sha = file_sha256(raw)
    held = path.read_bytes()
    assert sha.encode() not in held and bytes.fromhex(sha) not in held
    # The store still knows the file: a second ingest of it is skipped, so the erased
    # registration does not come back.
    [again] = pipeline.ingest_files(path, [raw])
    assert again.already_ingested and stored(path) == 15


def test_a_store_that_logged_plain_file_hashes_has_them_keyed_when_next_opened(
    tmp_path, write_csv, monkeypatch
):
    path = tmp_path / "s.duckdb"
    raw = write_csv(fresh_rows())
    pipeline.ingest_files(path, [raw])
    # as an older store logged it: the plain SHA-256, no mark of keyed digests
    con = duckdb.connect(str(path))
    con.execute("UPDATE ingests SET sha256 = ?", [file_sha256(raw)])
    con.execute("DELETE FROM meta WHERE key = 'ingest_digests'")
    con.close()
    # opened under another steward key: refused, and the log is not keyed with that key
    with monkeypatch.context() as patch:
        patch.setenv("CRISIS_EXPOSURE_STEWARD_KEY", "77" * 32)
        with pytest.raises(InputError, match="made with another steward key"):
            pipeline.ingest_files(path, [raw])
    [again] = pipeline.ingest_files(path, [raw])
    assert again.already_ingested and stored(path) == 16
    con = store.connect(path, read_only=True)
    try:
        logged = con.execute("SELECT sha256 FROM ingests").fetchall()
    finally:
        con.close()
    assert logged == [(store.ingest_digest(file_sha256(raw)),)]
