"""Outreach: the registration owner's contact list of its registrants inside a footprint.

Checked against a point-in-polygon reference computed here with shapely, point by
point (boundaries and holes included); the file's mode, the log's contents, consent and
class filters, the latest version of a record, bad input, and that the store is never
opened.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import shapely

from geo.cli import main
from tests import hostile
from tests.factories import registration_row, write_rows

ROOT = Path(__file__).resolve().parent.parent
NORCIA = ROOT / "data/footprints/italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
ORDER = ("Red", "Orange", "Yellow")  # worst first
RINGS = {
    # a square with a hole, inside a larger square, and a third class overlapping the
    # larger one and reaching beyond it: edges on round coordinates, so points can sit
    # exactly on them
    "Red": [
        [(13.0, 42.7), (13.2, 42.7), (13.2, 42.9), (13.0, 42.9)],
        [(13.05, 42.75), (13.1, 42.75), (13.1, 42.8), (13.05, 42.8)],
    ],
    "Orange": [[(12.9, 42.6), (13.3, 42.6), (13.3, 43.0), (12.9, 43.0)]],
    "Yellow": [[(13.25, 42.5), (13.5, 42.5), (13.4, 42.75), (13.25, 42.7)]],
}


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def zones(path: Path, names: dict[str, str] | None = None) -> Path:
    """Write the three classes as GeoJSON polygons with a ``zone`` attribute (renamed)."""
    features = [
        {
            "type": "Feature",
            "properties": {"zone": (names or {}).get(name, name)},
            "geometry": {"type": "Polygon", "coordinates": [[*r, r[0]] for r in rings]},
        }
        for name, rings in RINGS.items()
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


ZONE_OPTIONS = ("--class-field", "zone", "--class-order", ",".join(ORDER))


def reference_class(lat: float, lon: float) -> str | None:
    """The worst class whose polygon contains the point or has it on its boundary."""
    point = shapely.Point(lon, lat)
    for name in ORDER:
        polygon = shapely.Polygon(RINGS[name][0], RINGS[name][1:])
        if polygon.contains(point) or polygon.touches(point):
            return name
    return None


def grid_points() -> list[tuple[str, str]]:
    """Points on a 0.025° grid (many exactly on edges, vertices and in the hole) + random."""
    lats = [f"{v:.3f}" for v in np.arange(42.45, 43.051, 0.025)]
    lons = [f"{v:.3f}" for v in np.arange(12.85, 13.551, 0.025)]
    rng = np.random.default_rng(3)
    extra = [(f"{a:.6f}", f"{b:.6f}") for a, b in rng.uniform((42.4, 12.8), (43.1, 13.6), (800, 2))]
    return [(a, b) for a in lats for b in lons] + extra


def read_contacts(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_lists_exactly_the_records_inside_with_their_worst_class(tmp_path, capsys):
    points = grid_points()
    rows = [
        registration_row(f"P{i:05d}", latitude=lat, longitude=lon, email=f"p{i}@example.org")
        for i, (lat, lon) in enumerate(points)
    ]
    raw = write_rows(tmp_path / "raw.csv", rows)
    out = tmp_path / "contacts.csv"
    code, stdout, _ = run(
        capsys, "outreach", "--records", raw, "--hazard", zones(tmp_path / "z.geojson"),
        "--out", out, *ZONE_OPTIONS,
    )  # fmt: skip
    assert code == 0
    expected = {
        f"P{i:05d}": c
        for i, (lat, lon) in enumerate(points)
        if (c := reference_class(float(lat), float(lon)))
    }
    got = read_contacts(out)
    assert dict(zip(got["record_id"], got["class"], strict=True)) == expected
    assert list(got.columns) == ["record_id", "source", "class", "phone", "email"]
    # the grid does hit what matters: edges and vertices of every class, and the hole
    on_edge = [
        (lat, lon)
        for lat, lon in points
        if any(
            shapely.Polygon(RINGS[n][0], RINGS[n][1:]).touches(shapely.Point(float(lon), lat))
            for n in ORDER
        )
    ]
    assert len(on_edge) > 40
    assert expected[_id_of(points, "42.775", "13.075")] == "Orange"  # in the hole of Red
    assert expected[_id_of(points, "42.700", "13.100")] == "Red"  # Red's edge, inside Orange
    assert expected[_id_of(points, "43.000", "13.300")] == "Orange"  # Orange's corner
    assert _id_of(points, "43.025", "13.000") not in expected  # just outside
    # worst class first in the file; the count per class is printed
    severity = got["class"].map({n: i for i, n in enumerate(ORDER)})
    assert severity.is_monotonic_increasing
    counts = got["class"].value_counts()
    assert f"({', '.join(f'{c}: {counts[c]}' for c in ORDER)})" in stdout


def _id_of(points: list[tuple[str, str]], lat: str, lon: str) -> str:
    return f"P{points.index((lat, lon)):05d}"


def test_norcia_shakemap_matches_a_point_in_polygon_reference(tmp_path):
    """The real ShakeMap (contours closed into MMI bands by the reader) against shapely."""
    from geo.io.footprints import read_footprint
    from geo.pipeline import run_outreach

    rng = np.random.default_rng(16)
    lat, lon = rng.uniform(42.2, 43.5, 4000), rng.uniform(12.4, 13.9, 4000)
    frame = pl.DataFrame(
        {
            "record_id": [f"N{i}" for i in range(lat.size)],
            "nationality": "UKR",
            "latitude": lat,
            "longitude": lon,
            "mobile": [f"+39 000 {i:07d}" for i in range(lat.size)],
        }
    )
    raw = tmp_path / "raw.parquet"
    frame.write_parquet(raw)
    run = run_outreach([raw], NORCIA, tmp_path / "c.csv")
    classes = read_footprint(NORCIA).classes.sort_values("class_rank", ascending=False)
    prepared = list(zip(classes["class_label"], classes.geometry, strict=True))
    shapely.prepare([geom for _, geom in prepared])
    expected = {}
    for i, (a, b) in enumerate(zip(lat, lon, strict=True)):
        point = shapely.Point(b, a)
        found = next((label for label, geom in prepared if geom.covers(point)), None)
        if found:
            expected[f"N{i}"] = found
    got = read_contacts(tmp_path / "c.csv")
    assert dict(zip(got["record_id"], got["class"], strict=True)) == expected
    assert len(expected) > 1000 and len(set(expected.values())) >= 4
    assert run.written == len(expected) and sum(run.by_class.values()) == len(expected)
    assert got["phone"].str.startswith("+39 000 ").all()  # "mobile" recognised as phone


def test_class_filter_keeps_only_the_classes_named(tmp_path, capsys):
    rows = [
        registration_row("IN-RED", latitude="42.85", longitude="13.15"),
        registration_row("IN-ORANGE", latitude="42.65", longitude="12.95"),
        registration_row("IN-YELLOW", latitude="42.55", longitude="13.45"),
    ]
    raw, out = write_rows(tmp_path / "raw.csv", rows), tmp_path / "c.csv"
    footprint = zones(tmp_path / "z.geojson")
    code, _, _ = run(
        capsys, "outreach", "--records", raw, "--hazard", footprint, "--out", out,
        *ZONE_OPTIONS, "--class", "red", "Yellow",
    )  # fmt: skip
    assert code == 0
    assert read_contacts(out)[["record_id", "class"]].values.tolist() == [
        ["IN-RED", "Red"],
        ["IN-YELLOW", "Yellow"],
    ]
    code, _, err = run(
        capsys, "outreach", "--records", raw, "--hazard", footprint, "--out", out,
        *ZONE_OPTIONS, "--class", "Purple",
    )  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "no class named 'Purple'; its classes are: Yellow, Orange, Red" in err


def test_consent_filter_keeps_records_whose_consent_covers_the_scope(tmp_path, capsys):
    rows = [
        registration_row("BOTH", latitude="42.85", longitude="13.15"),  # aggregate;origin_state
        registration_row("AGGREGATE", latitude="42.85", longitude="13.15", consent="aggregate"),
        registration_row("NONE", latitude="42.85", longitude="13.15", consent=""),
        registration_row("HOST", latitude="42.85", longitude="13.15", consent="host_state"),
    ]
    raw, out = write_rows(tmp_path / "raw.csv", rows), tmp_path / "c.csv"
    footprint = zones(tmp_path / "z.geojson")
    base = ("outreach", "--records", raw, "--hazard", footprint, "--out", out, *ZONE_OPTIONS)
    assert run(capsys, *base)[0] == 0
    assert set(read_contacts(out)["record_id"]) == {"BOTH", "AGGREGATE", "NONE", "HOST"}
    assert run(capsys, *base, "--consent", "origin_state")[0] == 0
    assert read_contacts(out)["record_id"].tolist() == ["BOTH"]
    assert run(capsys, *base, "--consent", "host_state")[0] == 0
    assert read_contacts(out)["record_id"].tolist() == ["HOST"]
    code, _, err = run(capsys, *base, "--consent", "everything")
    assert code == 2 and "is not a consent scope; use one of aggregate, origin_state" in err


def test_the_latest_version_of_a_record_decides(tmp_path, capsys):
    """A registrant who moved out is not contacted from an older row; one who moved in is."""
    inside, outside = (
        {"latitude": "42.85", "longitude": "13.15"},
        {
            "latitude": "43.5",
            "longitude": "12.0",
        },
    )
    old = write_rows(
        tmp_path / "old.csv",
        [
            registration_row("MOVED-OUT", updated_at="2025-01-01", **inside),
            registration_row("MOVED-IN", updated_at="2025-01-01", **outside),
            registration_row("STAYED", updated_at="2025-01-01", phone="+39 000 1", **inside),
        ],
    )
    new = write_rows(
        tmp_path / "new.csv",
        [
            registration_row("MOVED-OUT", updated_at="2025-03-01", **outside),
            registration_row("MOVED-IN", updated_at="2025-03-01", **inside),
            registration_row("STAYED", updated_at="2025-03-01", phone="+39 000 2", **inside),
            registration_row("MOVED-IN", source="other_agency", **outside),  # another source
        ],
    )
    out = tmp_path / "c.csv"
    code, stdout, _ = run(
        capsys, "outreach", "--records", new, old, "--hazard", zones(tmp_path / "z.geojson"),
        "--out", out, *ZONE_OPTIONS,
    )  # fmt: skip
    assert code == 0
    got = read_contacts(out)
    assert got[["record_id", "phone"]].values.tolist() == [
        ["MOVED-IN", "+39 000 000 0000"],
        ["STAYED", "+39 000 2"],
    ]
    assert "3 older version(s) of a registration ignored" in stdout


def test_the_list_is_created_readable_by_its_owner_only(tmp_path, capsys, monkeypatch):
    """Mode 0600 from creation: under umask 0, over an older 0644 file, with chmod forbidden."""
    out = tmp_path / "c.csv"
    out.write_text("an older list\n")
    out.chmod(0o644)

    def forbidden(*_args, **_kwargs):
        raise AssertionError("the list must be created private, not chmod'ed afterwards")

    monkeypatch.setattr(os, "chmod", forbidden)
    monkeypatch.setattr(os, "fchmod", forbidden)
    monkeypatch.setattr(Path, "chmod", forbidden)
    previous = os.umask(0)
    try:
        raw = write_rows(tmp_path / "raw.csv", [registration_row("A", latitude="42.85")])
        code, stdout, _ = run(
            capsys, "outreach", "--records", raw, "--hazard", zones(tmp_path / "z.geojson"),
            "--out", out, *ZONE_OPTIONS,
        )  # fmt: skip
    finally:
        os.umask(previous)
    assert code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "c.csv.log.jsonl").stat().st_mode) == 0o600
    assert read_contacts(out)["record_id"].tolist() == ["A"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".c.csv")]  # no temp left
    warning = [line for line in stdout.splitlines() if "personal data" in line]
    assert len(warning) == 1 and "readable by you only" in warning[0]


def test_the_log_records_the_run_without_identifiers(tmp_path, capsys):
    rows = [
        registration_row(
            f"SECRET-ID-{i}",
            phone=f"+39 000 77{i:05d}",
            email=f"hidden.person.{i}@example.org",
            latitude=f"42.8{i % 10}1234",
            longitude="13.151234",
        )
        for i in range(30)
    ]
    raw = write_rows(tmp_path / "raw.csv", rows)
    footprint = zones(tmp_path / "z.geojson")
    out = tmp_path / "c.csv"
    for _ in range(2):
        assert run(
            capsys, "outreach", "--records", raw, "--hazard", footprint, "--out", out,
            *ZONE_OPTIONS,
        )[0] == 0  # fmt: skip
    text = (tmp_path / "c.csv.log.jsonl").read_text()
    contacts = read_contacts(out)
    assert len(contacts) == 30
    for row in rows:
        for value in (row["record_id"], row["phone"], row["email"], row["latitude"]):
            assert value not in text
    assert "SECRET" not in text and "hidden" not in text and "+39" not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert len(entries) == 2  # one line per run, appended
    entry = entries[-1]
    assert entry["footprint_sha256"] == hashlib.sha256(footprint.read_bytes()).hexdigest()
    assert entry["written"] == 30 and entry["by_class"] == {"Red": 30}
    assert entry["footprint_classes"] == ["Yellow", "Orange", "Red"]
    assert entry["time"].endswith("+00:00")


def test_rejected_rows_are_counted_never_shown(tmp_path, capsys):
    rows = [
        registration_row("GOOD", latitude="42.85", longitude="13.15"),
        registration_row("LEAK-ONE", latitude="not-a-number"),
        registration_row("LEAK-TWO", nationality="Atlantis", latitude="42.85", longitude="13.15"),
        registration_row("LEAK-THREE", nationality="Atlantis", latitude="43.6", longitude="12.0"),
    ]
    raw = write_rows(tmp_path / "raw.csv", rows)
    out = tmp_path / "c.csv"
    code, stdout, err = run(
        capsys, "outreach", "--records", raw, "--hazard", zones(tmp_path / "z.geojson"),
        "--out", out, *ZONE_OPTIONS,
    )  # fmt: skip
    assert code == 0
    assert "read 4 rows from 1 file(s): 1 accepted, 3 rejected (2 unknown nationality" in stdout
    assert "1 rejected row(s) have coordinates inside the footprint" in stdout
    log = (tmp_path / "c.csv.log.jsonl").read_text()
    for shown in (stdout, err, log, out.read_text()):
        assert "LEAK" not in shown and "Atlantis" not in shown and "not-a-number" not in shown


def test_contact_columns_are_recognised_in_workbooks_and_parquet(tmp_path, capsys):
    frame = pd.DataFrame(
        {
            "Registration ID": ["W1", "W2"],
            "Citizenship": ["Ukraine", "RO"],
            "Lat": [42.85, 42.86],
            "Lon": [13.15, 13.15],
            "Full Name": ["Someone Synthetic", "Other Synthetic"],
            "Mobile": ["+39 000 1111111", '=HYPERLINK("http://x")'],
            "WhatsApp": ["+39 000 2222222", None],
            "E-Mail Address": ["w1@example.org", "-w2@example.org"],
            "Preferred Language": ["uk", "ro"],
        }
    )
    workbook, parquet = tmp_path / "raw.xlsx", tmp_path / "raw.parquet"
    frame.to_excel(workbook, index=False)
    frame.assign(**{"Registration ID": ["Q1", "Q2"]}).drop(columns="WhatsApp").to_parquet(parquet)
    out = tmp_path / "c.csv"
    code, stdout, _ = run(
        capsys, "outreach", "--records", workbook, parquet, "--hazard",
        zones(tmp_path / "z.geojson"), "--out", out, *ZONE_OPTIONS,
    )  # fmt: skip
    assert code == 0
    got = read_contacts(out)
    assert list(got.columns) == [
        "record_id", "source", "class", "phone", "phone_2", "email", "preferred_language",
    ]  # fmt: skip
    w1 = got.set_index("record_id").loc["W1"]
    assert (w1["phone"], w1["phone_2"], w1["email"], w1["preferred_language"]) == (
        "+39 000 1111111", "+39 000 2222222", "w1@example.org", "uk",
    )  # fmt: skip
    w2 = got.set_index("record_id").loc["Q2"]  # (a workbook stores "=…" as a formula)
    assert w2["phone"] == '\'=HYPERLINK("http://x")' and w2["email"] == "'-w2@example.org"
    assert got.set_index("record_id").loc["Q1", "phone_2"] == ""
    assert "Someone" not in out.read_text()  # names are not contact columns
    assert "contact columns found: phone, phone_2, email, preferred_language" in stdout


NO_DUCKDB = """
import sys
sys.modules['duckdb'] = None  # any import of duckdb (the store) now fails
from geo.cli import main
code = main(sys.argv[1:])
assert 'geo.io.store' not in sys.modules and 'geo.io.store_open' not in sys.modules
assert not any(m.startswith('geo.io.ledger') or m == 'geo.io.release_file' for m in sys.modules)
print('exit', code)
"""


def test_outreach_never_opens_the_store_nor_a_release(tmp_path):
    raw = write_rows(tmp_path / "raw.csv", [registration_row("A", latitude="42.85")])
    argv = ["outreach", "--records", raw, "--hazard", zones(tmp_path / "z.geojson")]
    argv += ["--out", tmp_path / "c.csv", *ZONE_OPTIONS]
    done = subprocess.run(
        [sys.executable, "-c", NO_DUCKDB, *map(str, argv)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("exit 0")
    assert read_contacts(tmp_path / "c.csv")["record_id"].tolist() == ["A"]
    with pytest.raises(SystemExit) as exit_:
        main([*map(str, argv), "--store", str(tmp_path / "store.duckdb")])
    assert exit_.value.code == 2  # there is no --store option


def _bad_cases(tmp_path: Path) -> dict[str, tuple[list, str]]:
    good = write_rows(tmp_path / "raw.csv", [registration_row("A", latitude="42.85")])
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    no_coordinates = write_rows(
        tmp_path / "nocoord.csv", [{"record_id": "A", "nationality": "UKR"}]
    )
    text = tmp_path / "notes.geojson"
    text.write_text("not a footprint")
    footprint = zones(tmp_path / "z.geojson")
    out = tmp_path / "c.csv"
    return {
        "missing file": ([tmp_path / "absent.csv", footprint, out], "absent.csv: no such file"),
        "a folder": ([tmp_path, footprint, out], "is a folder; give the registration files"),
        "binary file": ([binary, footprint, out], "binary.csv: the file is binary"),
        "no coordinates": ([no_coordinates, footprint, out], "missing required column(s)"),
        "bad footprint": ([good, text, out], "notes.geojson"),
        "missing folder": ([good, footprint, tmp_path / "no" / "c.csv"], "does not exist"),
        "out is the input": ([good, footprint, good], "is one of the input files"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing file", "a folder", "binary file", "no coordinates", "bad footprint", "missing folder",
     "out is the input"],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    (records, footprint, out), message = _bad_cases(tmp_path)[case]
    before = records.read_bytes() if records.is_file() else None
    code, stdout, err = run(
        capsys, "outreach", "--records", records, "--hazard", footprint, "--out", out,
        *ZONE_OPTIONS,
    )  # fmt: skip
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("crisis-exposure outreach: error:") and message in err
    assert "Traceback" not in err and not stdout
    assert not out.exists() or out == records
    if before is not None:
        assert records.read_bytes() == before  # the owner's file is never overwritten


@pytest.mark.slow
def test_a_large_raw_file_is_read_in_bounded_memory(tmp_path):
    """100,000 rows with 10 KB of notes each (1 GB) under a 2.3 GB address-space limit.

    The command maps about 1.9 GB at its peak (the interpreter with polars, pyarrow,
    geopandas and shapely maps 1.5 GB by itself): reading the file whole, notes and
    all (pandas or polars ``read_csv``), does not fit in what is left; outreach reads
    only the columns it needs, a 16 MB block at a time.
    """
    size = 100_000
    rng = np.random.default_rng(1)
    lat = rng.uniform(42.55, 43.05, size).round(5)
    lon = rng.uniform(12.85, 13.55, size).round(5)
    note = "SYNTHETIC " + "x" * 10_000
    raw = tmp_path / "big.csv"
    with open(raw, "w", encoding="utf-8") as handle:
        handle.write("record_id,nationality,latitude,longitude,phone,notes\n")
        handle.writelines(
            f"R{i},UKR,{lat[i]},{lon[i]},+39 000 {i:07d},{note}\n" for i in range(size)
        )
    assert raw.stat().st_size > 1_000_000_000
    argv = ["-m", "geo.cli", "outreach", "--records", str(raw), "--hazard"]
    argv += [str(zones(tmp_path / "z.geojson")), "--out", str(tmp_path / "c.csv"), *ZONE_OPTIONS]
    done = hostile.run_bounded(argv, memory_mb=2300, cpu_s=120)
    assert done.returncode == 0, done.stderr[-2000:]
    written = pl.read_csv(tmp_path / "c.csv", columns=["record_id"]).height
    points = shapely.points(lon, lat)
    inside = np.zeros(size, dtype=bool)
    for name in ORDER:
        polygon = shapely.Polygon(RINGS[name][0], RINGS[name][1:])
        inside |= shapely.contains(polygon, points) | shapely.touches(polygon, points)
    assert written == int(inside.sum()) > 40_000


def test_the_data_page_builds_the_contact_list_and_warns(tmp_path, monkeypatch):
    """Steward mode on a local server: upload raw files + footprint, get the list."""
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.testing.v1 import AppTest

    from geo.pipeline import write_release
    from geo.release import ReleasePolicy, protect
    from tests.factories import clustered_records

    managers: list[MediaFileManager] = []

    class Recording(MediaFileManager):
        def __init__(self, storage) -> None:
            super().__init__(storage)
            managers.append(self)

    monkeypatch.setattr("streamlit.testing.v1.app_test.MediaFileManager", Recording)
    releases = tmp_path / "releases"
    releases.mkdir()
    write_release(
        protect(clustered_records(3000, seed=5), ReleasePolicy()), releases / "a.release.parquet"
    )
    monkeypatch.setenv("CRISIS_EXPOSURE_RELEASE_DIR", str(releases))
    monkeypatch.setenv("CRISIS_EXPOSURE_STEWARD", "1")
    rows = [
        registration_row("IN-1", latitude="42.85", longitude="13.15", email="in1@example.org"),
        registration_row("OUT-1", latitude="43.6", longitude="12.0"),
        registration_row("BAD-1", latitude="north"),
    ]
    raw = write_rows(tmp_path / "consular.csv", rows).read_bytes()
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60).run()
    at.switch_page("app_pages/data.py").run()
    at.file_uploader(key="outreach_records").upload("consular.csv", raw, "text/csv")
    footprint = zones(tmp_path / "z.geojson")
    at.file_uploader(key="outreach_hazard").upload("z.geojson", footprint.read_bytes(), "")
    at.text_input(key="outreach_class_field").set_value("zone")
    at.text_input(key="outreach_class_order").set_value(",".join(ORDER))
    at.run()
    at.button(key="outreach_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "holds personal data" in at.warning[0].value
    summary = at.code[-1].value
    assert "1 registrations inside z.geojson (Red: 1) written to the download below" in summary
    # The warning is said once, above; the server's folders are never shown.
    assert "holds personal data" not in summary and str(tmp_path) not in summary
    assert "BAD-1" not in summary and "north" not in summary
    session = Path(at.session_state["_session_dir"].name)
    assert not list((session / "outreach_uploads").iterdir())  # raw uploads not kept
    assert stat.S_IMODE((session / "outreach" / "contacts.csv").stat().st_mode) == 0o600
    buttons = {b.proto.id.rsplit("-", 1)[-1]: b for b in at.get("download_button")}
    url = buttons["outreach_download"].proto.url
    content = managers[-1]._storage.get_file(url.rsplit("/", 1)[-1].split(".", 1)[0]).content
    listed = pd.read_csv(io.BytesIO(content), dtype=str)
    assert listed[["record_id", "class", "email"]].values.tolist() == [
        ["IN-1", "Red", "in1@example.org"]
    ]


@pytest.mark.slow
def test_the_demo_registry_outreach_matches_its_truth(tmp_path, capsys):
    """The three SYNTHETIC demo files (CSV ;/BOM, XLSX, Latin-1 CSV) against the truth file."""
    from demo import registry as dr
    from geo.io.footprints import read_footprint

    frame = dr.generate_demo_registry(scale=0.01)
    *files, truth_path = dr.write_demo_registry(frame, tmp_path / "registry")
    out = tmp_path / "c.csv"
    code, stdout, _ = run(capsys, "outreach", "--records", *files, "--hazard", NORCIA, "--out", out)
    assert code == 0
    truth = pd.read_parquet(truth_path)
    good = truth[truth["expected_problem"].isna()]
    classes = read_footprint(NORCIA).classes.sort_values("class_rank", ascending=False)
    points = shapely.points(good["longitude"], good["latitude"])
    worst = np.full(len(good), None, dtype=object)
    for label, geometry in zip(classes["class_label"], classes.geometry, strict=True):
        hit = shapely.covers(geometry, points) & (worst == None)  # noqa: E711 (numpy)
        worst[hit] = label
    expected = {
        (s, r): c for s, r, c in zip(good["source"], good["record_id"], worst, strict=True) if c
    }
    got = read_contacts(out)
    assert (
        dict(zip(zip(got["source"], got["record_id"], strict=True), got["class"], strict=True))
        == expected
    )
    assert len(expected) > 100
    assert got["phone"].str.startswith("+39 000 ").all()
    assert got["email"].str.endswith("@example.org").all()
    assert got["preferred_language"].str.fullmatch("[a-z]{2}").all()
    assert "older version(s) of a registration ignored" in stdout


def test_unordered_classes_are_never_ranked(tmp_path, capsys):
    """Zones with no known order (and none given): a point in several gets them all."""
    rows = [
        registration_row("RED-AND-ORANGE", latitude="42.85", longitude="13.15"),
        registration_row("ORANGE-ONLY", latitude="42.65", longitude="12.95"),
    ]
    raw, out = write_rows(tmp_path / "raw.csv", rows), tmp_path / "c.csv"
    names = {"Red": "Norcia", "Orange": "Valnerina", "Yellow": "Sibillini"}
    footprint = zones(tmp_path / "z.geojson", names)
    base = ("outreach", "--records", raw, "--hazard", footprint, "--out", out)
    assert run(capsys, *base, "--class-field", "zone")[0] == 0
    got = dict(read_contacts(out)[["record_id", "class"]].values.tolist())
    assert got == {"RED-AND-ORANGE": "Norcia; Valnerina", "ORANGE-ONLY": "Valnerina"}
    assert run(capsys, *base, "--class-field", "zone", "--class", "norcia")[0] == 0
    assert read_contacts(out)["record_id"].tolist() == ["RED-AND-ORANGE"]
