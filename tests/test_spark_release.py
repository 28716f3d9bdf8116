"""``release --engine spark``: a Parquet lake counted on Spark gives the local path's release."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from geo import pipeline
from geo.cli import main
from geo.errors import InputError
from geo.hashing import file_sha256
from geo.release import ReleasePolicy
from tests.lake_files import write_lake

ROOT = Path(__file__).resolve().parents[1]
SPARK_NOISE = ("WARN", "log4j", "Setting default log level", "incubator", "Traceback", "INFO")


def run_cli(args: list[str], env: dict | None = None, code: str | None = None):
    """Run the command line in a fresh interpreter (Spark's JVM lives and dies with it)."""
    environ = {**os.environ, **(env or {})}
    program = code or "import sys; from geo.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", program, *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=1800,
    )


# The command line with the counts brought to the driver in pieces of 300 rows (as a
# national lake's are, in pieces of a million), saying how many and the largest.
COLLECTED_IN_PIECES = """
import atexit, sys
from geo.io import lake_counts, store_counts
lake_counts.COLLECT_ROWS = 300
made = store_counts.counted_table
pieces = []
def counted(con, name):
    append = made(con, name)
    def each(piece):
        pieces.append(piece.num_rows)
        append(piece)
    return each
store_counts.counted_table = counted
atexit.register(lambda: print("pieces", len(pieces), max(pieces, default=0)))
from geo.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _lake_release(folder: Path, *options: str) -> list[str]:
    """The command line releasing ``folder``'s lake on Spark in local mode, ledger beside it."""
    return [
        "release",
        "--engine",
        "spark",
        "--lake",
        str(folder / "lake" / "**" / "*.parquet"),
        "--store",
        str(folder / "lake-ledger.duckdb"),
        "--out",
        str(folder / "spark.release.parquet"),
        "--master",
        "local[2]",
        *options,
    ]


@pytest.mark.slow
def test_a_lake_counted_on_spark_publishes_the_local_paths_table(tmp_path):
    paths = write_lake(tmp_path / "lake")
    # the local path: the same files ingested into a store, in path order, then released
    reports = pipeline.ingest_files(tmp_path / "local.duckdb", sorted(paths), tmp_path / "rej")
    local = pipeline.publish_release(
        tmp_path / "local.duckdb", ReleasePolicy(), tmp_path / "local.release.parquet"
    )
    assert "pyspark" not in sys.modules  # the local path never loads Spark

    spark_store = tmp_path / "lake-ledger.duckdb"
    done = run_cli(
        _lake_release(tmp_path, "--spark-conf", "spark.driver.memory=1g"),
        code=COLLECTED_IN_PIECES,
    )
    assert done.returncode == 0, done.stderr
    pieces = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith("pieces ")]
    # The counts came to the driver in pieces, each appended to the store connection's
    # temporary table before the next: never held whole.
    assert len(pieces) == 1 and int(pieces[0][0]) > 1 and int(pieces[0][1]) <= 3 * 300
    for stream in (done.stdout, done.stderr):
        assert not [line for line in stream.splitlines() if any(n in line for n in SPARK_NOISE)]

    spark = pipeline.read_release(tmp_path / "spark.release.parquet")
    assert spark.metadata["content_sha256"] == local.metadata["content_sha256"]
    assert spark.metadata["created_at"] != "" and spark.metadata["signature"]

    # the same rows read and the same rejects, reason by reason (duplicates aside: the
    # local path rejects those of one file, Spark sets every older version aside)
    duplicate = "duplicate record_id (the entry with the latest updated_at is kept)"
    local_reasons = sum((r.rejects_by_reason for r in reports), Counter())
    within_files = local_reasons.pop(duplicate)
    read = sum(r.rows_read for r in reports)
    assert f"lake: 4 files, {read} rows read" in done.stdout
    for reason, n in local_reasons.items():
        assert f"rejected: {n} × {reason}" in done.stdout
    across_files = sum(r.updated + r.kept_newer for r in reports)
    assert across_files == 180 and within_files == 120
    assert f"{within_files + across_files} older versions of a record_id" in done.stdout

    # the ledger keeps the snapshot (paths and hashes); the release only its digest
    from geo.io import lake, store

    con = store.connect(spark_store, read_only=True)
    try:
        snapshot = lake.recorded_snapshot(con, 1)
    finally:
        con.close()
    assert [Path(f["path"]) for f in snapshot] == [p.resolve() for p in sorted(paths)]
    assert [f["sha256"] for f in snapshot] == [file_sha256(p) for p in sorted(paths)]
    assert "part-0000" not in json.dumps(spark.metadata, default=str)
    assert len(spark.metadata["lake_snapshot"]) == 64
    # the audit reads a store's records: it says it cannot audit a lake release, in one line
    assert main(["audit", "--store", str(spark_store)]) == 2


@pytest.mark.slow
def test_a_lake_held_under_another_legal_basis_counts_every_registration(tmp_path):
    # A national host-state register is often held by law, not by consent: on Spark,
    # --legal-basis other counts every registration whatever its consent, as the local
    # path does (two in five of the lake's records lack the aggregate consent).
    paths = write_lake(tmp_path / "lake")
    policy = ReleasePolicy(legal_basis="other", basis_note="Aliens Act art. 12")
    pipeline.ingest_files(tmp_path / "local.duckdb", sorted(paths), tmp_path / "rej")
    local = pipeline.publish_release(
        tmp_path / "local.duckdb", policy, tmp_path / "local.release.parquet"
    )
    done = run_cli(
        _lake_release(tmp_path, "--legal-basis", "other", "--basis-note", "Aliens Act art. 12")
    )
    assert done.returncode == 0, done.stderr
    spark = pipeline.read_release(tmp_path / "spark.release.parquet")
    assert spark.metadata["content_sha256"] == local.metadata["content_sha256"]
    assert spark.metadata["policy"]["legal_basis"] == "other"
    consent = pipeline.build_release(tmp_path / "local.duckdb", ReleasePolicy())
    assert spark.metadata["published"]["cases"] > consent.metadata["published"]["cases"]


def test_spark_is_imported_only_for_a_lake_release():
    done = run_cli(
        [],
        code="import sys, geo.cli, geo.pipeline.lake_release, geo.pipeline\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pyspark', 'py4j'))))",
    )
    assert done.stdout.strip() == "[]"


def test_without_java_a_lake_release_is_one_line_and_exit_2(tmp_path):
    write_lake(tmp_path / "lake", records=1_200)
    env = {"PATH": "/nonexistent", "JAVA_HOME": ""}
    args = ["release", "--engine", "spark", "--lake", str(tmp_path / "lake/**/*.parquet")]
    args += ["--store", str(tmp_path / "s.duckdb"), "--out", str(tmp_path / "r.parquet")]
    environ = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"} | env
    done = subprocess.run(
        [sys.executable, "-m", "geo.cli", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("crisis-exposure release: error: ")
    assert "needs a Java runtime" in done.stderr and len(done.stderr.strip().splitlines()) == 2
    assert not (tmp_path / "s.duckdb").exists() and not (tmp_path / "r.parquet").exists()


def test_without_pyspark_a_lake_release_is_one_line_and_exit_2(tmp_path):
    write_lake(tmp_path / "lake", records=1_200)
    args = ["release", "--engine", "spark", "--lake", str(tmp_path / "lake/**/*.parquet")]
    args += ["--store", str(tmp_path / "s.duckdb"), "--out", str(tmp_path / "r.parquet")]
    blocked = (
        "import sys; sys.modules['pyspark'] = None\n"
        "from geo.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    done = run_cli(args, code=blocked)
    assert done.returncode == 2
    assert "pip install 'crisis-exposure[spark]'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--engine", "spark"], "give --lake"),
        (["--lake", "lake/*.parquet"], "add --engine spark"),
        (["--engine", "spark", "--lake", "x", "--spark-conf", "memory=4g"], "spark.KEY=VALUE"),
        (["--engine", "spark", "--lake", "nothing/**/*.parquet"], "no file matches"),
        (
            ["--engine", "spark", "--lake", "x", "--confirmed-within", "365"],
            "not yet on Spark",
        ),
        (["--engine", "spark", "--lake", "x", "--as-of", "2026-01-01"], "not yet on Spark"),
    ],
)
def test_lake_options_are_checked_in_one_line(tmp_path, capsys, extra, message):
    args = ["release", "--store", str(tmp_path / "s.duckdb"), "--out", str(tmp_path / "r")]
    assert main(args + extra) == 2
    assert message in capsys.readouterr().err


def test_a_release_of_another_lake_snapshot_is_refused_beside_the_ledger(tmp_path):
    from geo.io import ledger, store
    from geo.pipeline.lake_release import _refuse_earlier_lake_snapshots
    from geo.release import protect
    from tests.factories import clustered_records

    earlier = protect(clustered_records(2_000), ReleasePolicy().checked(), secret=1)
    earlier.metadata |= {"store_version": 0, "lake_snapshot": "a" * 64}
    pipeline.write_release(earlier, tmp_path / "earlier.release.parquet")  # its hash
    con = store.connect(tmp_path / "ledger.duckdb")
    try:
        ledger.record_release(con, earlier, 0, "earlier.release.parquet")
        entries = ledger.ledger(con)
        same = protect(clustered_records(2_000), ReleasePolicy().checked(), secret=1)
        same.metadata["lake_snapshot"] = "a" * 64
        _refuse_earlier_lake_snapshots(con, entries, same)  # another audience, same snapshot
        changed = protect(clustered_records(2_100), ReleasePolicy().checked(), secret=1)
        changed.metadata["lake_snapshot"] = "b" * 64
        with pytest.raises(InputError, match="another lake snapshot"):
            _refuse_earlier_lake_snapshots(con, entries, changed)
    finally:
        con.close()


def test_a_spark_failure_is_said_by_its_root_cause_with_what_to_try():
    from geo.io.spark_session import spark_failure

    # The text of the Py4J error a 10M lake gave in local mode with 1 GiB of driver memory.
    java = (
        "An error occurred while calling o1572.getResult.\n"
        ": org.apache.spark.SparkException: Exception thrown in awaitResult:\n"
        "\tat org.apache.spark.util.SparkThreadUtils$.awaitResult(SparkThreadUtils.scala:70)\n"
        "Caused by: org.apache.spark.SparkException: Job aborted due to stage failure: Task 1"
        " in stage 35.0 failed 1 times, most recent failure: Lost task 1.0 in stage 35.0"
        " (TID 58) (192.0.2.2 executor driver): TaskResultLost (result lost from block"
        " manager)\n\tat org.apache.spark.scheduler.DAGScheduler.failJobAndIndependentStages\n"
    )
    said = spark_failure(RuntimeError(java))
    assert "\n" not in said and "awaitResult" not in said and "\tat" not in said
    assert said.startswith("org.apache.spark.SparkException: Job aborted due to stage failure")
    assert "TaskResultLost" in said
    assert said.endswith("--spark-conf spark.driver.memory=4g)")
    # Without a Java cause: its first line, and no memory advice.
    assert spark_failure(RuntimeError("Java gateway process exited\nmore")) == (
        "Java gateway process exited"
    )


# Spark's scratch space holds the shuffle blocks of the first count (partial counts by
# cell, nationality and category: small ones exact). Printed after a shuffle: the
# folders Spark wrote blocks in and the JVM's temporary folder, each with the
# permissions of every folder on the way there.
SCRATCH_PLACES = """
import glob, json, os
from pathlib import Path
from geo.io.spark_session import start_spark
spark = start_spark()
spark.range(0, 20000).selectExpr("id % 97 AS cell").groupBy("cell").count().collect()
places = glob.glob(os.environ["TMPDIR"] + "/**/blockmgr-*", recursive=True)
places.append(spark._jvm.System.getProperty("java.io.tmpdir"))
print(json.dumps({
    place: [oct(os.stat(p).st_mode & 0o777) for p in [Path(place), *Path(place).parents]]
    for place in places
}))
"""


@pytest.mark.slow
def test_sparks_scratch_space_is_readable_by_the_steward_alone(tmp_path):
    # (before: blocks in /tmp/blockmgr-*, 0o755, listed and read by every local user)
    done = run_cli([], env={"TMPDIR": str(tmp_path)}, code=SCRATCH_PLACES)
    assert done.returncode == 0, done.stderr[-2000:]
    places = json.loads(done.stdout.strip().splitlines()[-1])
    assert any("blockmgr-" in place for place in places), places
    for place, modes in places.items():
        # inside this run's private folder (in the system's temporary folder: here
        # tmp_path), which nobody else can enter
        assert Path(place).is_relative_to(tmp_path), place
        assert "0o700" in modes, (place, modes)
    assert not list(tmp_path.glob("crisis-exposure-spark-*")), "left behind after the run"
