"""Freshness: releases of what is still believed true, the confirmed-within figures, the
legal basis other than consent."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import polars as pl
import pytest

from geo import cli, pipeline
from geo.freshness import BLOCK_KEY, confirmed_block, months_before
from geo.io import store
from geo.release import ReleasePolicy
from tests.factories import registration_row

NORCIA = {"latitude": "42.79", "longitude": "13.09"}
PERUGIA = {"latitude": "43.11", "longitude": "12.39"}
EXACT = ReleasePolicy(base_resolution=7, floor_resolution=5, k=3, noise_scale=0)
AS_OF = "2026-02-01"


def dated_registry() -> list[dict]:
    """22 ROU registrations near Norcia whose freshness on 2026-02-01 is known.

    inside: 8 confirmed 2026-01-15; old: 5 confirmed 2025-06-01; gone: 4 confirmed
    2026-01-20 but valid_until 2026-01-25; undated: 3 without updated_at; later: 2
    confirmed after the day (2026-03-01).
    """
    rows = [registration_row(f"in{i}", updated_at="2026-01-15", **NORCIA) for i in range(8)]
    rows += [registration_row(f"old{i}", updated_at="2025-06-01", **NORCIA) for i in range(5)]
    rows += [
        registration_row(f"gone{i}", updated_at="2026-01-20", valid_until="2026-01-25", **NORCIA)
        for i in range(4)
    ]
    rows += [registration_row(f"undated{i}", updated_at="", **NORCIA) for i in range(3)]
    rows += [registration_row(f"later{i}", updated_at="2026-03-01", **NORCIA) for i in range(2)]
    return rows


def cases(release) -> int:
    return int(release.groups["cases"].sum() + release.metadata["dropped"]["cases"])


@pytest.fixture
def dated_store(tmp_path, write_csv):
    store = tmp_path / "s.duckdb"
    pipeline.ingest_files(store, [write_csv(dated_registry(), "dated.csv")])
    return store


def test_confirmed_within_releases_exactly_the_records_inside_the_window(
    tmp_path, write_csv, dated_store
):
    everyone = pipeline.build_release(dated_store, EXACT)
    window = replace(EXACT, as_of=AS_OF, confirmed_within=30)
    inside = pipeline.build_release(dated_store, window)
    believed = pipeline.build_release(dated_store, replace(EXACT, as_of=AS_OF))
    assert cases(everyone) == 22
    assert cases(inside) == 8  # only "in": old is outside, gone has left, undated, later
    assert cases(believed) == 16  # without a window: in, old and undated
    # The same release as a store that only ever held the 8 records inside the window.
    only = tmp_path / "only.duckdb"
    pipeline.ingest_files(only, [write_csv(dated_registry()[:8], "in.csv")])
    alone = pipeline.build_release(only, window)
    assert inside.groups.equals(alone.groups) and inside.breakdowns.equals(alone.breakdowns)
    # A year's window takes the old ones back in.
    year = pipeline.build_release(dated_store, replace(window, confirmed_within=365))
    assert cases(year) == 13


def test_the_release_states_its_audience_confirmed_within_6_12_24_months(dated_store):
    exact = pipeline.build_release(dated_store, replace(EXACT, as_of=AS_OF))
    # 6 months back from 2026-02-01 is 2025-08-01: only "in"; 12 and 24: in and old.
    assert exact.metadata[BLOCK_KEY] == {"6": 8, "12": 13, "24": 13, "audience": 16}
    noisy = pipeline.build_release(dated_store, replace(EXACT, as_of=AS_OF, noise_scale=None))
    block = noisy.metadata[BLOCK_KEY]
    assert set(block) == {"6", "12", "24", "audience"}
    assert 0 <= block["6"] <= block["12"] <= block["24"] <= block["audience"]
    again = pipeline.build_release(dated_store, replace(EXACT, as_of=AS_OF, noise_scale=None))
    assert again.metadata[BLOCK_KEY] == block  # keyed noise: the same records, the same value
    lines = "\n".join(noisy.summary_lines())
    assert "confirmed within 6 / 12 / 24 months" in lines and "protected figures" in lines


def test_the_confirmed_figures_carry_keyed_noise():
    counts = pl.DataFrame(
        {
            "bucket": ["6", "12", "24", "audience"] * 40,
            "nationality": [f"N{i // 4}" for i in range(160)],
            "cases": [5] * 160,
            "key_sum": list(range(160)),
        }
    )
    exact = confirmed_block(counts, EXACT.checked(), secret=1)
    assert exact == {"6": 200, "12": 200, "24": 200, "audience": 200}
    noisy = confirmed_block(counts, replace(EXACT, noise_scale=None).checked(), secret=1)
    assert noisy != exact  # 40 noisy figures per bucket: not all noise is zero
    assert noisy["6"] <= noisy["12"] <= noisy["24"] <= noisy["audience"]


def test_months_before_keeps_the_day_or_the_months_last():
    assert months_before(date(2026, 2, 1), 6) == date(2025, 8, 1)
    assert months_before(date(2026, 8, 31), 6) == date(2026, 2, 28)
    assert months_before(date(2026, 1, 15), 24) == date(2024, 1, 15)


def test_the_ledger_audit_attacks_the_confirmed_figures(tmp_path, write_csv, monkeypatch):
    """Exact figures show 3 cases confirmed 12 to 24 months ago: found; noisy ones: clean."""
    monkeypatch.setattr("geo.pipeline.releases.refuse_exact", lambda policy: None)
    rows = [registration_row(f"n{i}", updated_at="2026-01-15", **NORCIA) for i in range(12)]
    rows += [registration_row(f"p{i}", updated_at="2025-06-01", **PERUGIA) for i in range(12)]
    rows += [registration_row(f"x{i}", updated_at="2024-06-01", **NORCIA) for i in range(3)]
    policy = ReleasePolicy(base_resolution=7, floor_resolution=5, k=10, as_of=AS_OF)
    reports = {}
    for name, noise in (("exact", 0), ("noisy", None)):
        store = tmp_path / f"{name}.duckdb"
        pipeline.ingest_files(store, [write_csv(rows, f"{name}.csv")])
        release = pipeline.publish_release(
            store, replace(policy, noise_scale=noise), tmp_path / f"{name}.release.parquet"
        )
        reports[name] = pipeline.audit_ledger(store)
    assert release.metadata[BLOCK_KEY]["audience"] > 0
    assert {(f.detail, f.lo, f.hi, f.true) for f in reports["exact"].exact} >= {
        ("cases in '24' not in '12' (months)", 3, 3.0, 3),
        ("cases in 'audience' not in '12' (months)", 3, 3.0, 3),
    }
    # The same two targets are checked in the noisy release, and proven nothing.
    assert reports["exact"].checked["confirmed"] == reports["noisy"].checked["confirmed"] == 2
    assert reports["noisy"].ok, reports["noisy"].lines()


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def without_consent(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "consent"} for row in rows]


def test_a_register_without_consent_needs_the_explicit_legal_basis(tmp_path, write_csv, capsys):
    path = tmp_path / "s.duckdb"
    rows = without_consent([registration_row(f"h{i}", **NORCIA) for i in range(12)])
    code, out, _ = run(capsys, "ingest", write_csv(rows, "host.csv"), "--store", path)
    assert code == 0 and "no consent scope: 12 (release --legal-basis other)" in out
    release = ("release", "--store", path, "--out", tmp_path / "r.release.parquet", "--k", 3)
    code, _, err = run(capsys, *release)
    assert code == 2 and len([line for line in err.splitlines() if "error:" in line]) == 1
    assert "no stored registration matches the audience" in err
    assert "--legal-basis other --basis-note" in err
    code, _, err = run(capsys, *release, "--legal-basis", "other")
    assert code == 2 and "--legal-basis other needs --basis-note" in err
    code, _, err = run(capsys, *release, "--basis-note", "Law 1/2020")
    assert code == 2 and "--basis-note goes with --legal-basis other only" in err
    note = "Host-state registration act, art. 12"
    # a consent scope under another legal basis would be silently ignored: refused
    basis = ("--legal-basis", "other", "--basis-note", note)
    code, _, err = run(capsys, *release, *basis, "--consent", "origin_state")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--consent 'origin_state' filters by consent, but --legal-basis other" in err
    code, out, _ = run(capsys, *release, *basis)
    assert code == 0 and f"legal basis other than consent ({note})" in out
    made = pipeline.read_release(tmp_path / "r.release.parquet")
    assert made.metadata["policy"]["legal_basis"] == "other"
    assert made.metadata["policy"]["basis_note"] == note
    assert int(made.groups["cases"].sum()) >= 3
    ledger = pipeline.list_releases(path)
    assert ledger[0]["policy"]["legal_basis"] == "other"
    # The series keeps its legal basis: a consent release of the same store would meet it.
    code, _, err = run(capsys, *release, "--out", tmp_path / "c.release.parquet")
    assert code == 2 and "legal basis 'other' → 'consent'" in err


def test_release_as_of_on_the_command_line(tmp_path, write_csv, capsys, dated_store):
    out_file = tmp_path / "w.release.parquet"
    argv = ("release", "--store", dated_store, "--out", out_file, "--k", 3)
    code, out, _ = run(capsys, *argv, "--as-of", AS_OF, "--confirmed-within", 30)
    assert code == 0
    assert "believed true on 2026-02-01: confirmed within 30 days before" in out
    made = pipeline.read_release(out_file)
    assert made.metadata["policy"]["confirmed_within"] == 30
    code, out, _ = run(capsys, "inspect", out_file)
    assert code == 0 and "confirmed within 6 / 12 / 24 months:" in out
    code, _, err = run(capsys, *argv, "--as-of", "1 Feb 2026")
    assert code == 2 and "--as-of '1 Feb 2026' is not a date (use YYYY-MM-DD)" in err
    code, _, err = run(capsys, *argv, "--as-of", AS_OF, "--confirmed-within", 0)
    assert code == 2 and "--confirmed-within needs --as-of DATE and a number of days" in err


def test_a_series_that_mixes_windows_passes_the_ledger_audit(tmp_path, write_csv):
    """Other windows are other audiences: audited together at one version, flows between."""
    path = tmp_path / "s.duckdb"
    rows = [
        registration_row(f"r{i}", updated_at=day, **place)
        for i, (day, place) in enumerate(
            [("2026-01-15", NORCIA)] * 14
            + [("2025-10-01", NORCIA)] * 4
            + [("2025-03-01", PERUGIA)] * 12
            + [("2026-01-25", PERUGIA)] * 2
        )
    ]
    pipeline.ingest_files(path, [write_csv(rows, "v1.csv")])
    policy = ReleasePolicy(base_resolution=7, floor_resolution=5, k=10)
    windows = [None, 30, 180, 365]
    for days in windows:
        chosen = replace(policy, as_of=AS_OF if days else None, confirmed_within=days)
        pipeline.publish_release(path, chosen, tmp_path / f"w{days}.release.parquet")
    moves = [registration_row("r0", updated_at="2026-01-28", **PERUGIA)]
    pipeline.ingest_files(path, [write_csv(moves, "v2.csv")])
    for days in (30, 365):
        chosen = replace(policy, as_of="2026-02-02", confirmed_within=days)
        pipeline.publish_release(path, chosen, tmp_path / f"v2w{days}.release.parquet")
    report = pipeline.audit_ledger(path)
    assert report.ok, report.lines()
    assert len(report.audited) == 7  # six releases, one line for the flows
    assert "audited with" in report.audited[0]
    assert report.checked["flow"] > 0 and report.checked["confirmed"] > 0


def test_ingest_keeps_valid_until_and_reports_records_without_a_confirmation(tmp_path, write_csv):
    rows = dated_registry() + [registration_row("bad", valid_until="soon", **NORCIA)]
    departing = [registration_row("dep", departure_date="2026-05-01", **NORCIA)]
    path = tmp_path / "s.duckdb"
    report, _ = pipeline.ingest_files(
        path, [write_csv(rows, "d.csv"), write_csv(departing, "dep.csv")]
    )
    assert report.accepted == 22 and report.unconfirmed == 3
    assert report.rejects_by_reason == {"valid_until is not a date (use YYYY-MM-DD)": 1}
    assert "  no updated_at: 3 (outside --confirmed-within)" in report.summary_lines()
    con = store.connect(path, read_only=True)
    try:
        until = con.execute("SELECT valid_until FROM registrations WHERE source = 'consular'")
        days = sorted(str(row[0]) for row in until.fetchall())
    finally:
        con.close()
    assert days == ["2026-01-25"] * 4 + ["2026-05-01"] + ["None"] * 18


def test_a_window_under_k_is_refused_in_the_words_of_an_empty_one(dated_store):
    """A narrow window holding 1..k−1 registrations must not be released (attack F2).

    Its signed existence, confirmed block and withheld figure would be about fewer than k
    people, and an empty window was already refused: the two refusals say the same.
    """
    messages = []
    for as_of in ("2026-03-01", "2026-02-10"):  # the two "later" records; nobody
        with pytest.raises(Exception) as refused:
            pipeline.build_release(dated_store, replace(EXACT, as_of=as_of, confirmed_within=1))
        messages.append(str(refused.value))
    assert messages[0] == messages[1]
    assert "fewer than k=3 do" in messages[0]
