"""The ledger audit: every release against its own snapshot, and the flows between them."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import h3
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from geo import cli, pipeline
from geo.ledger_audit import LedgerEntry, stock_bounds, stock_intervals
from geo.release import Release, ReleasePolicy, protect
from tests.factories import registration_row
from tests.test_audit import registries

NORCIA = {"latitude": "42.79", "longitude": "13.09"}
PERUGIA = {"latitude": "43.11", "longitude": "12.39"}
CELL_NORCIA = h3.latlng_to_cell(42.79, 13.09, 7)
CELL_PERUGIA = h3.latlng_to_cell(43.11, 12.39, 7)
EXACT = ReleasePolicy(noise_scale=0)  # method 1
NOISY = ReleasePolicy()  # method 2


def first_registry() -> list[dict]:
    """Twelve ROU cases near Norcia and twelve near Perugia: two groups of at least k."""
    rows = [registration_row(f"n{i}", **NORCIA) for i in range(12)]
    return rows + [registration_row(f"p{i}", **PERUGIA) for i in range(12)]


@pytest.fixture(autouse=True)
def unguarded_publishing(monkeypatch):
    """Publish without the guard that refuses a disclosing release (as a store made before
    the guard, or by other code, would hold them): what the audit must find in a ledger.
    """
    monkeypatch.setattr("geo.pipeline.releases._refuse_disclosing_flows", lambda *a: None)
    monkeypatch.setattr("geo.pipeline.releases.refuse_exact", lambda policy: None)


def ledger_of(tmp_path, write_csv, policy, change: list[dict]) -> Path:
    """Return a store with release #1, the change ingested, then release #2."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = tmp_path / "s.duckdb"
    pipeline.ingest_files(store, [write_csv(first_registry(), "v1.csv")])
    pipeline.publish_release(store, policy, tmp_path / "r1.release.parquet")
    pipeline.ingest_files(store, [write_csv(change, "v2.csv")])
    pipeline.publish_release(store, policy, tmp_path / "r2.release.parquet")
    return store


def three_arrivals() -> list[dict]:
    """Three new ROU registrations in the Norcia cell (12 → 15 cases)."""
    return [registration_row(f"new{i}", **NORCIA) for i in range(3)]


def one_move() -> list[dict]:
    """One Norcia registration moves to Perugia (12 → 11 and 12 → 13)."""
    return [registration_row("n0", updated_at="2025-02-01", **PERUGIA)]


def flows(report):
    """Return the flow findings as (kind, cell, resolution, lo, hi, true, pair)."""
    return sorted(
        (f.kind, f.cell, f.resolution, f.lo, f.hi, f.true, f.pair)
        for f in report.exact + report.existence
        if f.kind.startswith("flow")
    )


def test_method_1_arrivals_in_a_published_group_are_a_flow_disclosed_exactly(tmp_path, write_csv):
    report = pipeline.audit_ledger(ledger_of(tmp_path, write_csv, EXACT, three_arrivals()))
    assert flows(report) == [("flow exact", CELL_NORCIA, 7, 3, 3, 3, (1, 2))]
    found = [f for f in report.exact if f.kind.startswith("flow")]
    assert found[0].release == "#1 r1.release.parquet → #2 r2.release.parquet"
    # Beside the flow, only the exact confirmed-within figures (the audience grew by 3).
    others = {(f.kind, f.true) for f in report.exact + report.existence}
    assert others - {("flow exact", 3)} == {("confirmed", 3)}
    assert report.checked["flow"] >= 1 and not report.ok
    assert [line.split(":")[0] for line in report.audited[:2]] == [
        "#1 r1.release.parquet",
        "#2 r2.release.parquet",
    ]
    assert "store v2, method exact" in report.audited[1]


def test_method_2_arrivals_are_not_disclosed(tmp_path, write_csv):
    report = pipeline.audit_ledger(ledger_of(tmp_path, write_csv, NOISY, three_arrivals()))
    assert report.ok, report.lines()
    assert report.checked["flow"] >= 1  # the flow of 3 was checked and is protected
    assert "method noise" in report.audited[0]


def test_a_move_between_two_cells_method_1_flagged_method_2_clean(tmp_path, write_csv):
    exact = pipeline.audit_ledger(ledger_of(tmp_path / "1", write_csv, EXACT, one_move()))
    assert flows(exact) == sorted(
        [
            ("flow exact", CELL_NORCIA, 7, -1, -1, -1, (1, 2)),
            ("flow exact", CELL_PERUGIA, 7, 1, 1, 1, (1, 2)),
        ]
    )
    noisy = pipeline.audit_ledger(ledger_of(tmp_path / "2", write_csv, NOISY, one_move()))
    assert noisy.ok, noisy.lines()
    assert noisy.checked["flow"] >= 2


@pytest.mark.parametrize(("policy", "code"), [(EXACT, 1), (NOISY, 0)])
def test_the_command_line_audits_the_whole_ledger(tmp_path, write_csv, capsys, policy, code):
    store = ledger_of(tmp_path, write_csv, policy, three_arrivals())
    assert cli.main(["audit", "--store", str(store)]) == code
    out = capsys.readouterr().out
    assert "#1 r1.release.parquet: store v1" in out and "#2 r2.release.parquet: store v2" in out
    assert ("exact: flow exact" in out) is (code == 1)
    assert out.strip().endswith("DISCLOSURES FOUND" if code else "nothing disclosed")


def test_an_empty_ledger_is_nothing_to_audit(tmp_path, write_csv, capsys):
    store = tmp_path / "s.duckdb"
    pipeline.ingest_files(store, [write_csv(first_registry())])
    assert cli.main(["audit", "--store", str(store)]) == 0
    assert "no release recorded yet" in capsys.readouterr().out


def test_release_files_of_two_versions_are_audited_with_their_flows(tmp_path, write_csv):
    store = ledger_of(tmp_path, write_csv, EXACT, three_arrivals())
    paths = [tmp_path / "r1.release.parquet", tmp_path / "r2.release.parquet"]
    report = pipeline.run_audit(paths, store)
    assert [(f.kind, f.cell, f.true, f.pair) for f in report.exact if f.kind != "confirmed"] == [
        ("flow exact", CELL_NORCIA, 3, (None, None))
    ]


def test_releases_of_one_version_are_audited_together(tmp_path, write_csv):
    store = tmp_path / "s.duckdb"
    pipeline.ingest_files(store, [write_csv(first_registry())])
    pipeline.publish_release(store, NOISY, tmp_path / "public.release.parquet")
    embassy = ReleasePolicy(nationalities=("ROU",))
    pipeline.publish_release(store, embassy, tmp_path / "embassy.release.parquet")
    report = pipeline.audit_ledger(store)
    assert report.ok, report.lines()
    assert "audited with #2 embassy.release.parquet" in report.audited[0]
    assert report.checked["flow"] == 0 and len(report.audited) == 2


def test_stock_bounds_follow_the_structure():
    groups = [
        (CELL_NORCIA, 7, "ROU", 12, 12),
        (h3.cell_to_parent(CELL_NORCIA, 6), 6, "ROU", 11, 11),
    ]
    metadata = {
        "policy": {"k": 10, "base_resolution": 7, "floor_resolution": 5, "noise_scale": 0},
        "method": "exact",
    }
    frame = pd.DataFrame(groups, columns=["h3_cell", "resolution", "nationality", "cases", "p"])
    exact = Release(groups=frame, breakdowns=frame.iloc[:0], metadata=metadata)
    bounds = {
        (row["res"], f"{row['cell']:x}"): row for row in stock_bounds(exact).iter_rows(named=True)
    }
    parent = h3.cell_to_parent(CELL_NORCIA, 6)
    assert (bounds[(7, CELL_NORCIA)]["s_lo"], bounds[(7, CELL_NORCIA)]["own"]) == (12, True)
    assert (bounds[(6, parent)]["s_lo"], bounds[(6, parent)]["s_hi"]) == (23, 23)
    assert bounds[(6, parent)]["own"] and bounds[(6, parent)]["covered"] == 7
    # At resolution 5 the residual's 7 base cells include the res-7 group's: 7, not 8.
    above = bounds[(5, h3.cell_to_parent(CELL_NORCIA, 5))]
    assert (above["s_lo"], above["covered"], above["own"]) == (23, 7, False)
    noisy = Release(
        groups=frame,
        breakdowns=frame.iloc[:0],
        metadata=metadata | {"method": "noise", "policy": metadata["policy"] | {"noise_scale": 3}},
    )
    row = {(r["res"], r["own"]): r for r in stock_bounds(noisy).iter_rows(named=True)}[(6, True)]
    assert row["s_lo"] == 20 and math.isinf(row["s_hi"])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(registries(), st.sampled_from([0, None]))
def test_every_true_stock_lies_in_its_structural_bounds(drawn, noise_scale):
    records, policy = drawn
    assume(records.height > 0)  # an empty registry has no stock to bound
    policy = replace(policy, noise_scale=noise_scale)
    release = protect(records.drop("consent"), policy)
    stocks = stock_intervals(LedgerEntry("r", 1, release), records)
    assert stocks.height
    outside = stocks.filter((pl.col("x") < pl.col("lo")) | (pl.col("x") > pl.col("hi")))
    assert outside.is_empty(), outside
    if noise_scale == 0:  # a base cell's published group is its exact stock
        base = stocks.filter(pl.col("res") == policy.base_resolution)
        assert (
            base.filter(pl.col("x") >= policy.k)["lo"] == base.filter(pl.col("x") >= policy.k)["x"]
        ).all()
