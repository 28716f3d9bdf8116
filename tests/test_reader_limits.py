"""Issue 14's hostile files: each is refused in one line (exit 2) or read, within bounds.

The command runs in a subprocess under RLIMIT_AS and RLIMIT_CPU (``hostile.run_bounded``):
before the limits, each bomb below ran to gigabytes and over a minute of CPU, so a
regression dies on the resource limit and fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from geo.errors import InputError
from geo.io.footprints import read_footprint
from geo.io.limits import LIMITS, LimitError, limit
from geo.io.registrations import iter_validated_batches, open_registration_file
from geo.io.zip_guard import TokenCount, check_zip
from tests import hostile
from tests.factories import registration_row, write_rows


def refused(result, variable: str) -> str:
    """Assert a bounded CLI run exited 2 with one line naming the limit's variable."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert f"CRISIS_EXPOSURE_MAX_{variable}" in lines[0]
    return lines[0]


# The bombs: (generator, file name, command). All six go through the command line
# in one bounded interpreter (one start-up instead of six); each prints one JSON line.
BOMBS = {
    "kmz": (hostile.kmz_bomb, "zones.kmz", "hazard"),  # 4.2 MB, doc.kml inflates to 4 GiB
    "contours": (hostile.contour_bomb, "cont_mmi.zip", "hazard"),  # contours inflate to 2 GiB
    "geojson": (hostile.geojson_bomb, "zones.zip", "hazard"),  # 4.2 MB GeoJSON padded to 4 GiB
    "xlsx whitespace": (hostile.xlsx_whitespace_bomb, "ws.xlsx", "ingest"),  # 4 GiB of blanks
    "xlsx inline": (hostile.xlsx_inline_string_bomb, "inline.xlsx", "ingest"),  # 2 GiB string
    "xlsx shared": (hostile.xlsx_shared_strings_bomb, "shared.xlsx", "ingest"),  # 30M strings
}
RUN_EACH = """
import contextlib, io, json, sys
from geo.cli import main
for label, argv in json.loads(sys.argv[1]).items():
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    print(json.dumps({"label": label, "code": code, "stderr": err.getvalue()}), flush=True)
"""


@pytest.fixture(scope="module")
def bomb_runs(tmp_path_factory):
    """Run every bomb through the CLI in one process under RLIMIT_AS 2.5 GB and 30 s CPU."""
    folder = tmp_path_factory.mktemp("bombs")
    argvs = {}
    for label, (make, name, command) in BOMBS.items():
        path = make(folder / name)
        assert path.stat().st_size < 5_000_000
        store = ["--store", str(folder / f"{name}.duckdb")] if command == "ingest" else []
        argvs[label] = [command, str(path), *store]
    result = hostile.run_bounded(["-c", RUN_EACH, json.dumps(argvs)])
    runs = {}
    for line in result.stdout.splitlines():
        run = json.loads(line)
        runs[run["label"]] = subprocess.CompletedProcess([], run["code"], "", run["stderr"])
    return folder, runs, result


@pytest.mark.parametrize(
    ("label", "variable"),
    [
        ("kmz", "ZIP_RATIO"),
        ("contours", "ZIP_RATIO"),
        ("geojson", "ZIP_RATIO"),
        ("xlsx whitespace", "ZIP_RATIO"),
        ("xlsx inline", "ZIP_RATIO"),
        ("xlsx shared", "ZIP_RATIO"),
    ],
)
def test_bombs_are_refused_before_gdal_or_openpyxl_read_them(bomb_runs, label, variable):
    folder, runs, result = bomb_runs
    assert label in runs, (
        f"died before finishing {label}: {result.returncode} {result.stderr[-1500:]}"
    )
    name = BOMBS[label][1]
    line = refused(runs[label], variable)
    assert f"{name}: the member" in line and "inflates" in line
    assert not (folder / f"{name}.duckdb").exists()


def test_a_bomb_within_the_ratio_is_refused_on_its_inflated_size(tmp_path, monkeypatch):
    path = hostile.kmz_bomb(tmp_path / "zones.kmz", mib=40)
    monkeypatch.setenv("CRISIS_EXPOSURE_MAX_ZIP_RATIO", "100000")
    monkeypatch.setenv("CRISIS_EXPOSURE_MAX_EXPANDED_MB", "32")
    with pytest.raises(
        LimitError, match=r"zones\.kmz: its members inflate to 40 MB, over the limit of 32 MB"
    ) as err:
        read_footprint(path)
    assert str(err.value).endswith("CRISIS_EXPOSURE_MAX_EXPANDED_MB.")


def test_a_member_that_lies_about_its_size_is_caught_while_inflating(tmp_path):
    member = hostile.padded("doc.kml", hostile.KML_HEAD, b" ", 64, hostile.KML_TAIL)
    lying = hostile.Member(member.name, member.deflated, member.crc, member.size, 1_000)
    path = hostile.write_zip(tmp_path / "liar.kmz", [lying])
    with pytest.raises(InputError, match=r"liar\.kmz: damaged zip file \(Bad CRC-32"):
        read_footprint(path)


def test_unsafe_member_names_are_refused(tmp_path):
    path = tmp_path / "escape.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("../../../tmp/x.geojson", hostile.FEATURE_HEAD + b"]}")
    with pytest.raises(InputError, match=r"escape\.zip: the zip holds a member with an unsafe"):
        read_footprint(path)


def test_feature_and_vertex_limits_name_their_variable(tmp_path, monkeypatch):
    path = tmp_path / "zones.geojson"
    path.write_bytes(hostile.FEATURE_HEAD + b"]}")
    monkeypatch.setenv("CRISIS_EXPOSURE_MAX_VERTICES", "4")
    with pytest.raises(LimitError, match=r"zones\.geojson: it has 5 vertices, over the limit of 4"):
        read_footprint(path)
    monkeypatch.setenv("CRISIS_EXPOSURE_MAX_VERTICES", "100")
    assert len(read_footprint(path).classes) == 1
    monkeypatch.setenv("CRISIS_EXPOSURE_MAX_FEATURES", "0")
    with pytest.raises(InputError, match=r"CRISIS_EXPOSURE_MAX_FEATURES='0' is not a positive"):
        read_footprint(path)


def test_every_limit_has_a_positive_default_and_reads_its_variable(monkeypatch):
    for name, spec in LIMITS.items():
        assert limit(name) == spec.default > 0
        monkeypatch.setenv(f"CRISIS_EXPOSURE_MAX_{name}", "7")
        assert limit(name) == 7


# --------------------------------------------------------------------------- XLSX bombs


def test_shared_strings_are_counted_while_inflating(tmp_path, monkeypatch):
    path = hostile.xlsx_shared_strings_bomb(tmp_path / "registry.xlsx", strings=200_000)
    monkeypatch.setenv("CRISIS_EXPOSURE_MAX_ZIP_RATIO", "100000")
    monkeypatch.setenv("CRISIS_EXPOSURE_MAX_SHARED_STRINGS", "100000")
    with pytest.raises(LimitError, match=r"registry\.xlsx: it has [\d,]+ shared strings, over"):
        open_registration_file(path)
    monkeypatch.setenv("CRISIS_EXPOSURE_MAX_SHARED_STRINGS", "1000000")
    shared = TokenCount("xl/sharedStrings.xml", b"<si", "SHARED_STRINGS", "shared strings")
    assert check_zip(path, "registry.xlsx", (shared,)).counts["shared strings"] == 185_040


# --------------------------------------------------------------------------- large ACLED export


@pytest.mark.slow
def test_a_million_acled_events_read_in_bounded_memory(tmp_path):
    path = hostile.write_acled(tmp_path / "acled.csv", events=1_000_000, places=2_000)
    result = hostile.run_bounded(["-m", "geo.cli", "hazard", str(path)], memory_mb=2048, cpu_s=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Battles" in result.stdout


def test_acled_event_limit_is_checked_while_reading(tmp_path, monkeypatch):
    path = hostile.write_acled(tmp_path / "acled.csv", events=3_000, places=50)
    monkeypatch.setenv("CRISIS_EXPOSURE_MAX_EVENTS", "1000")
    with pytest.raises(LimitError, match=r"acled\.csv: it has 3,000 rows or more, over the limit"):
        read_footprint(path)


# --------------------------------------------------------------------------- registration CSVs


def test_nul_bytes_after_the_first_64_kb_refuse_the_file_naming_the_line(tmp_path):
    rows = [registration_row(f"a{i}") for i in range(2_000)]
    path = write_rows(tmp_path / "records.csv", rows)
    text = path.read_bytes()
    assert len(text) > 65_536
    cut = text.index(b"\n", 100_000) + 1  # the start of a line well after 64 KB
    line = text[:cut].count(b"\n") + 1
    path.write_bytes(text[:cut] + b"a\x00bc" + text[cut + 1 :])
    with pytest.raises(InputError, match=rf"records\.csv: line {line:,} holds a NUL byte") as err:
        open_registration_file(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("record_id", ["a\x00b", "a\x07b", "line\nbreak", "x" * 129])
def test_a_record_id_with_control_characters_or_too_long_is_rejected(tmp_path, record_id):
    path = tmp_path / "records.parquet"
    import polars as pl

    rows = [registration_row("good"), registration_row(record_id)]
    pl.DataFrame(rows).write_parquet(path)
    batches = list(iter_validated_batches(open_registration_file(path)))
    accepted = [r for b in batches for r in b.accepted["record_id"].to_list()]
    rejects = [r for b in batches for r in b.rejects.iter_rows(named=True)]
    assert accepted == ["good"]
    assert len(rejects) == 1 and "record_id" in rejects[0]["reasons"]
    assert "\x00" not in (rejects[0]["record_id"] or "")


def test_two_hundred_thousand_extra_columns_are_refused_in_one_short_line(tmp_path):
    row = registration_row("a1")
    header = ",".join([*row, *(f"extra_{i}" for i in range(200_000))])
    values = ",".join([*row.values(), *([""] * 200_000)])
    path = tmp_path / "wide.csv"
    path.write_text(header + "\n" + values + "\n")
    with pytest.raises(LimitError, match=r"wide\.csv: it has \d[\d,]* columns or more") as err:
        open_registration_file(path)
    message = str(err.value)
    assert "CRISIS_EXPOSURE_MAX_COLUMNS" in message and len(message) < 300


def test_a_header_line_longer_than_a_megabyte_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CRISIS_EXPOSURE_MAX_COLUMNS", "10000000")
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"column_{i}" for i in range(200_000)) + "\n")
    with pytest.raises(InputError, match=r"wide\.csv: the header line is longer than 1 MB"):
        open_registration_file(path)


def test_dashboard_upload_limit_is_below_the_inflation_limit():
    config = (Path(__file__).parent.parent / ".streamlit" / "config.toml").read_text()
    upload_mb = int(config.split("maxUploadSize = ")[1].split()[0])
    assert upload_mb <= LIMITS["VECTOR_MB"].default <= LIMITS["EXPANDED_MB"].default


@pytest.mark.parametrize("member", ["grid.xml", "mmi.tif"])
def test_a_zipped_raster_or_grid_passes_the_zip_guard_too(tmp_path, member):
    """The raster and grid.xml readers look inside zips: the guard runs before them."""
    head = b'<?xml version="1.0"?><shakemap_grid>' if member.endswith(".xml") else b"II*\x00"
    path = hostile.write_zip(
        tmp_path / "raster.zip", [hostile.padded(member, head, b" ", 200, b"</shakemap_grid>")]
    )
    with pytest.raises(LimitError, match=r"raster\.zip: .*CRISIS_EXPOSURE_MAX_ZIP_RATIO"):
        read_footprint(path)
