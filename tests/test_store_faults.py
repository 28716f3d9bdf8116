"""The store on disk: no raw value anywhere, faults that end in one line, encryption at rest.

Faults are made for real in subprocesses: SIGKILL during an ingest, a file-size limit
(RLIMIT_FSIZE, as a full disk), a folder without write permission, a store held by
another process, a damaged store file. Each ends with exit 2, one line, and the store
file unchanged byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from geo import pipeline
from geo.errors import InputError
from geo.hashing import record_keys
from geo.io import store
from tests.factories import registration_row

ROOT = Path(__file__).resolve().parent.parent
RAW_MARKERS = (b"RAWID", b"RAWNAME")


def raw_registry(path: Path, n: int, seed: int = 1) -> tuple[Path, list[float]]:
    """Write ``n`` registrations with marked ids and names; return the path and latitudes."""
    rng = np.random.default_rng(seed)
    latitudes = (42.5 + rng.random(n) * 0.5).round(6)
    pl.DataFrame(
        {
            "record_id": [f"RAWID{i:07d}X" for i in range(n)],
            "full_name": [f"RAWNAME{i}" for i in range(n)],
            "nationality": rng.choice(["ROU", "UKR", "ALB"], n),
            "latitude": latitudes,
            "longitude": (12.8 + rng.random(n) * 0.5).round(6),
            "sex": rng.choice(["F", "M"], n),
            "age": rng.integers(0, 90, n),
            "family_members": rng.integers(0, 4, n),
            "consent": "aggregate",
            "source": "hiddensource",
            "updated_at": "2025-01-01",
        }
    ).write_csv(path)
    return path, latitudes[:50].tolist()


def cli(*argv, limits: dict | None = None, env: dict | None = None, prefix=()):
    """Run the CLI in a subprocess (with resource limits); return (code, stdout, stderr)."""

    def limit():
        for name, value in (limits or {}).items():
            resource.setrlimit(name, (value, value))

    done = subprocess.run(
        [*prefix, sys.executable, "-m", "geo.cli", *map(str, argv)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        preexec_fn=limit,
        timeout=300,
    )
    return done.returncode, done.stdout, done.stderr


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()  # progress lines may come first
    errors = [line for line in lines if line.startswith("crisis-exposure ")]
    assert len(errors) == 1 and lines[-1] == errors[0], lines
    return errors[0]


def every_file(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob("*") if p.is_file()]


def leaks(paths: list[Path], latitudes: list[float]) -> list[str]:
    """Return the files that hold a raw id, a name or a coordinate (as text or float64)."""
    needles = [*RAW_MARKERS]
    needles += [f"{lat:.6f}".encode() for lat in latitudes[:20]]
    needles += [struct.pack("<d", lat) for lat in latitudes[:20]]
    found = []
    for path in paths:
        try:
            blob = path.read_bytes()
        except OSError:
            continue
        found += [f"{path.name}: {n[:12]!r}" for n in needles if n in blob]
    return found


def spill_folders(store_path: Path) -> list[Path]:
    beside = list(store_path.parent.glob(f".{store_path.name}.tmp-*"))
    return beside + list(Path(tempfile.gettempdir()).glob("crisis-exposure-store-*"))


def test_record_keys_are_a_standard_hmac_computed_before_the_database():
    frame = pl.DataFrame({"source": ["consular", "agency"], "record_id": ["A-1", "ü 2"]})
    secret = bytes(range(32))
    keyed = record_keys(frame, secret)
    assert "record_id" not in keyed.columns
    for row, (source, record_id) in enumerate(frame.iter_rows()):
        digest = hmac.new(
            secret.hex().encode(), f"{source}\x1f{record_id}".encode(), hashlib.sha256
        ).digest()
        assert keyed["key_hi"][row] == int.from_bytes(digest[:8], "big")
        assert keyed["key_lo"][row] == int.from_bytes(digest[8:16], "big")


def test_duplicates_are_named_in_the_rejects_without_entering_the_store(tmp_path, write_csv):
    rows = [registration_row("dup", updated_at="2024-01-01"), registration_row("dup")]
    report = pipeline.ingest_files(tmp_path / "s.duckdb", [write_csv(rows)])[0]
    assert report.rejects_path.read_text().splitlines()[1].startswith("2,dup,duplicate record_id")


KILL_AFTER = ["first batch read", "all rows read", "merging"]


@pytest.mark.parametrize("moment", KILL_AFTER)
def test_sigkill_during_an_ingest_leaves_no_raw_value_on_disk(tmp_path, moment):
    inputs, folder = tmp_path / "in", tmp_path / "store"
    inputs.mkdir()
    folder.mkdir()
    s = folder / "s.duckdb"
    first, _ = raw_registry(inputs / "first.csv", 20, seed=2)
    pipeline.ingest_files(s, [first], rejects_dir=inputs)
    before = s.read_bytes()
    # DuckDB's old default spill folder, as an earlier version left it after a kill
    (folder / "s.duckdb.tmp").mkdir()
    (folder / "s.duckdb.tmp" / "duckdb_temp_storage-0.tmp").write_bytes(b"RAWID0000001X")
    big, latitudes = raw_registry(inputs / "big.csv", 400_000)
    script = (
        "import sys\n"
        "from geo import pipeline\n"
        "say = lambda m: print(m, flush=True)\n"
        f"pipeline.ingest_files({str(s)!r}, [{str(big)!r}], rejects_dir={str(inputs)!r},"
        " progress=say)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "CRISIS_EXPOSURE_DUCKDB_MEMORY": "24MB"},
    )
    for line in child.stdout:
        if moment == "first batch read" or "400000 rows read" in line:
            break
    if moment == "merging":  # duplicates, merge and commit run right after the last batch
        time.sleep(0.3)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    # nothing raw in any file of the store's folder or any spill folder, right after
    leaked = leaks(every_file(folder, *spill_folders(s)), latitudes)
    assert [x for x in leaked if "duckdb_temp_storage-0" not in x] == []
    # the next ingest removes what the killed one (and DuckDB's default folder) left
    again, _ = raw_registry(inputs / "again.csv", 5, seed=3)
    pipeline.ingest_files(s, [again], rejects_dir=inputs)
    assert not (folder / "s.duckdb.tmp").exists()
    assert [p for p in spill_folders(s) if f"-{child.pid}-" in p.name] == []
    assert leaks(every_file(folder), latitudes) == []
    con = store.connect(s, read_only=True)
    rows = con.execute("SELECT count(*) FROM registrations").fetchall()[0][0]
    con.close()
    assert rows in (20 + 5, 20 + 400_000 + 5)  # the killed ingest is all or nothing
    assert len(before) > 0


@pytest.fixture
def small_store(tmp_path, write_csv):
    s = tmp_path / "s.duckdb"
    pipeline.ingest_files(s, [write_csv([registration_row(f"r{i}") for i in range(5)])])
    return s


@pytest.mark.parametrize("room_kib", [0, 512, 2048])
def test_disk_full_during_an_ingest_ends_in_one_line(tmp_path, small_store, room_kib):
    big, _ = raw_registry(tmp_path / "big.csv", 300_000)
    before = small_store.read_bytes()
    limit = len(before) + room_kib * 1024
    code, _, err = cli("ingest", big, "--store", small_store, limits={resource.RLIMIT_FSIZE: limit})
    line = one_line_error(code, err)
    assert "the disk is full" in line and str(small_store) in line
    assert small_store.read_bytes() == before
    assert spill_folders(small_store) == []


def test_permission_denied_ends_in_one_line(tmp_path, small_store, write_csv):
    prefix = ()
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("root without setpriv: permissions cannot be denied")
        prefix = ("setpriv", "--bounding-set=-all", "--inh-caps=-all", "--")
    records = write_csv([registration_row("new")], "new.csv")
    before = small_store.read_bytes()
    small_store.chmod(0o444)
    small_store.parent.chmod(0o555)
    try:
        code, _, err = cli("ingest", records, "--store", small_store, prefix=prefix)
    finally:
        small_store.parent.chmod(0o755)
        small_store.chmod(0o644)
    line = one_line_error(code, err)
    assert "permission denied" in line
    assert small_store.read_bytes() == before


def test_a_store_in_use_by_another_process(tmp_path, small_store, write_csv):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys, time\ncon = duckdb.connect({str(small_store)!r})\n"
            "print('held', flush=True)\nsys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        before = small_store.read_bytes()
        code, _, err = cli("ingest", write_csv([registration_row("x")]), "--store", small_store)
        line = one_line_error(code, err)
        assert "in use by another crisis-exposure process" in line
        assert str(holder.pid) not in line and "python" not in line.lower()
        assert small_store.read_bytes() == before
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


@pytest.mark.parametrize("damage", ["random bytes", "truncated"])
@pytest.mark.parametrize("command", ["ingest", "releases"])
def test_a_damaged_store_file(tmp_path, small_store, write_csv, damage, command):
    data = small_store.read_bytes()
    damaged = os.urandom(len(data)) if damage == "random bytes" else data[: len(data) // 3]
    small_store.write_bytes(damaged)
    argv = ["releases", "--store", small_store]
    if command == "ingest":
        argv = ["ingest", write_csv([registration_row("x")]), "--store", small_store]
    code, _, err = cli(*argv)
    line = one_line_error(code, err)
    assert "damaged" in line or "not a DuckDB database" in line
    assert small_store.read_bytes() == damaged


ENCRYPTED = {"CRISIS_EXPOSURE_STORE_KEY": "c0" * 32, "CRISIS_EXPOSURE_STORE_WEAK_CRYPTO": "1"}


def test_an_encrypted_store_works_end_to_end_and_holds_nothing_in_clear(tmp_path, write_csv):
    rows = [
        registration_row(f"e{i}", nationality="UKR", source="embassysource", latitude=f"42.7{i}")
        for i in range(30)
    ]
    s, release = tmp_path / "s.duckdb", tmp_path / "r.release.parquet"
    code, out, err = cli("ingest", write_csv(rows), "--store", s, env=ENCRYPTED)
    assert code == 0, err
    code, _, err = cli("release", "--store", s, "--out", release, "--k", "5", env=ENCRYPTED)
    assert code == 0, err
    code, out, err = cli("releases", "--store", s, env=ENCRYPTED)
    assert code == 0 and out.startswith("#1"), err
    code, out, err = cli("audit", "--store", s, env=ENCRYPTED)
    assert code == 0, err
    files = [p for p in every_file(tmp_path) if "s.duckdb" in str(p.relative_to(tmp_path))]
    blob = b"".join(p.read_bytes() for p in files)
    for clear in (b"embassysource", b"registrations", b"schema_version", b"Test Person"):
        assert clear not in blob, clear
    # a 3-letter code occurs by chance in random bytes (~0.1 times in this size), not more
    assert blob.count(b"UKR") <= 2
    # without the key, or with another: one line, the key never printed, the file untouched
    before = s.read_bytes()
    wrong = {**ENCRYPTED, "CRISIS_EXPOSURE_STORE_KEY": "d1" * 32}
    missing = {"CRISIS_EXPOSURE_STORE_KEY": "", "CRISIS_EXPOSURE_STORE_KEY_FILE": ""}
    for env, words in ((missing, "the store is encrypted"), (wrong, "does not open")):
        code, _, err = cli("releases", "--store", s, env=env)
        assert words in one_line_error(code, err)
        assert "c0c0" not in err and "d1d1" not in err
    assert s.read_bytes() == before


def test_writing_an_encrypted_store_without_a_secure_cipher_is_refused(tmp_path, write_csv):
    env = {"CRISIS_EXPOSURE_STORE_KEY": "c0" * 32, "CRISIS_EXPOSURE_STORE_WEAK_CRYPTO": ""}
    records = write_csv([registration_row("a")])
    code, _, err = cli("ingest", records, "--store", tmp_path / "s.duckdb", env=env)
    if code == 0:
        pytest.skip("DuckDB's httpfs (OpenSSL) is installed here: encryption is secure")
    assert "httpfs" in one_line_error(code, err)
    assert not (tmp_path / "s.duckdb").exists()


def test_records_keyed_with_another_steward_key_are_refused(tmp_path, write_csv, monkeypatch):
    s = tmp_path / "s.duckdb"
    pipeline.ingest_files(s, [write_csv([registration_row("a")], "one.csv")])
    before = s.read_bytes()
    monkeypatch.setenv("CRISIS_EXPOSURE_STEWARD_KEY", "77" * 32)
    with pytest.raises(InputError, match="made with another steward key"):
        pipeline.ingest_files(s, [write_csv([registration_row("a", nationality="ALB")], "two.csv")])
    assert s.read_bytes() == before


def test_a_store_out_of_its_memory_budget_says_which_setting_to_raise(tmp_path):
    import duckdb

    from geo.io.store_open import DUCKDB_MEMORY_LIMIT, store_error

    fault = duckdb.OutOfMemoryException(
        "Out of Memory Error: failed to pin block of size 256.0 KiB (366.1 MiB/366.2 MiB used)"
    )
    message = str(store_error(tmp_path / "s.duckdb", fault))
    assert message == (
        f"{tmp_path / 's.duckdb'}: the store's memory budget ({DUCKDB_MEMORY_LIMIT}) is too "
        "small for this work; raise CRISIS_EXPOSURE_DUCKDB_MEMORY (e.g. 2GB) and run it again."
    )


def test_a_long_store_query_prints_no_progress_bar(tmp_path, capfd):
    """DuckDB draws a progress bar on standard output for a query over 2 s (a national
    ingest's one INSERT, a release's cube); the CLI's standard output must stay clean."""
    from geo.io.store_open import open_store

    con = open_store(tmp_path / "s.duckdb")
    try:
        con.execute("SET progress_bar_time = 0")  # as a query over its 2 s would
        con.execute("SELECT count(*) FROM range(200000000) t(i) WHERE i % 7 = 3").fetchall()
    finally:
        con.close()
    assert capfd.readouterr().out == ""
