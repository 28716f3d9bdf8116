"""A three-day release series on the SYNTHETIC demo registry (benchmarks/series.py: 30)."""

from __future__ import annotations

import pytest

from demo.series import METHODS, simulate
from geo import pipeline


@pytest.mark.slow
def test_three_daily_releases_are_written_useful_and_give_no_flow_away(tmp_path):
    method = "keyed noise (method 2)"
    days = list(simulate(tmp_path, days=3, scale=0.02, methods={method: METHODS[method]}))
    assert [d.day for d in days] == [0, 1, 2]
    store = next(tmp_path.glob("keyed.duckdb"))
    assert len(pipeline.list_releases(store)) == 3  # every day's release was written
    report = pipeline.audit_ledger(store)  # the whole ledger, each against its own snapshot
    assert report.ok and not report.exact and not report.existence
    assert sum(d.flows for d in days) > 0  # the days really changed small groups
    assert sum(d.flows_disclosed for d in days) == 0
    assert not any(d.refused for d in days)
    for day in days:
        assert day.persons_published >= 0.95 * day.persons_fresh
        assert abs(day.norcia_estimate - day.norcia_fresh) <= 0.05 * day.norcia_fresh


@pytest.mark.slow
def test_the_same_series_with_exact_counts_gives_its_flows_away(tmp_path):
    method = "exact (method 1)"
    days = list(simulate(tmp_path, days=2, scale=0.02, methods={method: METHODS[method]}))
    assert days[1].flows > 0 and days[1].flows_disclosed == days[1].flows
    assert all(d.refused for d in days)  # exact counts are never published
