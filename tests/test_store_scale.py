"""The store at scale: memory that does not grow with a file, one call the same as several."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from geo import pipeline
from geo.io import store
from tests.factories import registration_row

_PEAK_AFTER_INGEST = textwrap.dedent(
    """
    import resource, sys
    import numpy as np, polars as pl
    rows = int(sys.argv[1])
    rng = np.random.default_rng(1)
    pl.DataFrame({
        "record_id": pl.int_range(0, rows, eager=True).cast(pl.String),
        "nationality": rng.choice(["ITA", "ROU", "UKR", "ALB", "MAR"], rows),
        "latitude": rng.uniform(41.0, 44.0, rows),
        "longitude": rng.uniform(11.0, 14.0, rows),
        "family_members": rng.integers(0, 4, rows),
        "consent": np.full(rows, "aggregate"),
    }).write_parquet(sys.argv[2] + "/registry.parquet")
    from geo.pipeline import ingest_files
    ingest_files(sys.argv[2] + "/store.duckdb", [sys.argv[2] + "/registry.parquet"])
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    """
)


def _ingest_peak_mib(rows: int, folder, env) -> int:
    folder.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_AFTER_INGEST, str(rows), str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    return int(done.stdout.split()[-1])


@pytest.mark.slow
def test_ingest_memory_does_not_grow_with_the_file(tmp_path, monkeypatch):
    """A 4M-row file peaks within 150 MiB of a 1M-row one (one open transaction: +350)."""
    import os

    env = {**os.environ, "CRISIS_EXPOSURE_DUCKDB_MEMORY": "128MB"}
    small = _ingest_peak_mib(1_000_000, tmp_path / "small", env)
    large = _ingest_peak_mib(4_000_000, tmp_path / "large", env)
    assert large - small < 150, (small, large)


def _current(path):
    con = store.connect(path, read_only=True)
    try:
        return con.execute(
            "SELECT record_key, nationality, family_members, valid_from, valid_to"
            " FROM registrations ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()


def test_files_in_one_call_give_the_store_that_one_call_each_gives(tmp_path, write_csv):
    first = write_csv(
        [registration_row(f"r{i}", updated_at="2025-01-01") for i in range(6)], "first.csv"
    )
    # r0 restated, r1 updated (newer), r2 older than stored, r9 new.
    second = write_csv(
        [
            registration_row("r0", updated_at="2025-01-01"),
            registration_row("r1", nationality="ALB", updated_at="2025-03-01"),
            registration_row("r2", nationality="MAR", updated_at="2024-01-01"),
            registration_row("r9", updated_at="2025-03-01"),
        ],
        "second.csv",
    )
    together, apart = tmp_path / "together.duckdb", tmp_path / "apart.duckdb"
    reports = pipeline.ingest_files(together, [first, second])
    for path in (first, second):
        pipeline.ingest_files(apart, [path])
    assert _current(together) == _current(apart)
    report = reports[1]
    assert (report.unchanged, report.updated, report.kept_newer, report.inserted) == (1, 1, 1, 1)
    assert [row[1:] for row in _current(together) if row[4] is not None] == [("ROU", 1, 1, 2)]


def test_the_same_file_twice_in_one_call_is_stored_once(tmp_path, write_csv):
    path = write_csv([registration_row("a"), registration_row("b")])
    twice = pipeline.ingest_files(tmp_path / "s.duckdb", [path, path])
    assert [r.already_ingested for r in twice] == [False, True]
    assert len(_current(tmp_path / "s.duckdb")) == 2
    con = store.connect(tmp_path / "s.duckdb", read_only=True)
    assert store.store_version(con) == 1
    con.close()


def test_reading_a_parquet_registry_holds_a_batch_not_the_file(tmp_path):
    """Arrow memory stays a batch's worth over 3M rows in 30 row groups.

    pyarrow's default pre-buffering kept every row group's column chunks read so far
    (64 MiB here, +1 GiB over 30M rows of the 100M benchmark file).
    """
    import numpy as np
    import polars as pl
    import pyarrow as pa

    from geo.io.registrations import iter_validated_batches, open_registration_file

    rows = 3_000_000
    rng = np.random.default_rng(1)
    path = tmp_path / "registry.parquet"
    pl.DataFrame(
        {
            "record_id": pl.int_range(0, rows, eager=True).cast(pl.String),
            "nationality": rng.choice(["ITA", "ROU", "UKR"], rows),
            "latitude": rng.uniform(41.0, 44.0, rows),
            "longitude": rng.uniform(11.0, 14.0, rows),
        }
    ).write_parquet(path, row_group_size=100_000)
    peak = read = 0
    for batch in iter_validated_batches(open_registration_file(path)):
        read += batch.rows_read
        peak = max(peak, pa.total_allocated_bytes())
    assert read == rows
    assert peak < 32 * 2**20, peak
