"""The whole path on the SYNTHETIC demo registry: files → store → releases."""

from __future__ import annotations

import h3
import pandas as pd
import pytest

from demo.registry import (
    IDENTIFIER_COLUMNS,
    TRUTH_FILE_NAME,
    generate_demo_registry,
    write_demo_registry,
)
from geo import pipeline
from geo.io import store
from geo.pipeline import build_release, write_release
from geo.release import ReleasePolicy


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo")
    frame = generate_demo_registry(scale=0.05)
    paths = write_demo_registry(frame, work / "registry")
    registrations = [p for p in paths if p.name != TRUTH_FILE_NAME]
    reports = pipeline.ingest_files(
        work / "store.duckdb", registrations, rejects_dir=work / "rejects"
    )
    public = build_release(work / "store.duckdb", ReleasePolicy(noise_scale=0))
    embassy = build_release(
        work / "store.duckdb", ReleasePolicy(nationalities=("UKR",), noise_scale=0)
    )
    write_release(public, work / "public.release.parquet")
    write_release(embassy, work / "embassy.release.parquet")
    return frame, work, reports, public, embassy


def test_every_row_is_accepted_or_rejected(demo):
    frame, _, reports, _, _ = demo
    assert sum(r.rows_read for r in reports) == len(frame)
    for report in reports:
        assert report.accepted + report.rejected == report.rows_read
    expected_bad = frame["expected_problem"].notna().sum()
    assert sum(r.rejected for r in reports) == expected_bad


def test_no_identifier_value_reaches_store_release_or_rejects(demo):
    frame, work, reports, _, _ = demo
    values = set()
    for column in IDENTIFIER_COLUMNS:
        values |= {
            str(v) for v in frame[column].dropna().sample(200, random_state=1) if len(str(v)) >= 6
        }
    values |= {str(v) for v in frame["record_id"].dropna().sample(200, random_state=1)}
    files = [
        work / "store.duckdb",
        work / "public.release.parquet",
        work / "embassy.release.parquet",
    ]
    for path in files:
        blob = path.read_bytes()
        leaked = [v for v in values if v.encode() in blob]
        assert not leaked, (path.name, leaked[:3])
    for report in reports:
        text = report.rejects_path.read_text()
        assert text.splitlines()[0] == "row,record_id,reasons"
        leaked = [v for v in values - set(frame["record_id"].astype(str)) if v in text]
        assert not leaked, leaked[:3]


def test_the_agency_file_links_the_consulates_persons(demo):
    frame, _, reports, _, _ = demo
    copies = frame[frame["same_person_as"].notna()]
    linked = int(reports[2].linking[0].split(" of this file")[0].replace(",", ""))
    assert 0.97 * len(copies) <= linked <= len(copies)
    good = frame[frame["expected_problem"].isna()]
    persons = int(
        reports[2].linking[0].split("registrations of ")[1].split(" persons")[0].replace(",", "")
    )
    # one case per person: the true number, give or take the few links missed
    assert (
        good["same_person_as"].isna().sum()
        <= persons
        <= good["same_person_as"].isna().sum() + 0.03 * len(copies)
    )


def test_release_invariants(demo):
    frame, work, _, public, _ = demo
    con = store.connect(work / "store.duckdb", read_only=True)
    persons = con.execute(
        "SELECT sum(1 + family_members) FROM registrations WHERE consent & 1 != 0 AND "
        "record_key NOT IN (SELECT record_key FROM absorbed WHERE valid_to IS NULL)"
    ).fetchall()[0][0]
    con.close()
    meta = public.metadata
    assert meta["published"]["persons"] + meta["dropped"]["persons"] == persons
    assert (public.groups["cases"] >= 10).all()
    assert set(public.groups["resolution"]) == {4, 5, 6, 7}
    good = frame[frame["expected_problem"].isna()]
    true_cells = pd.DataFrame(
        {
            "nationality": good["nationality_iso3"],
            "cell": [
                h3.latlng_to_cell(lat, lon, 7)
                for lat, lon in zip(good["true_latitude"], good["true_longitude"], strict=True)
            ],
        }
    )
    by_nat = true_cells.groupby("nationality")["cell"].apply(set).to_dict()
    for cell, res, nationality in public.groups[["h3_cell", "resolution", "nationality"]].values:
        if nationality == "OTH":
            continue
        assert any(h3.cell_to_parent(c, res) == cell for c in by_nat[nationality]), cell


def test_embassy_release_holds_only_its_nationality(demo):
    *_, public, embassy = demo
    assert set(embassy.groups["nationality"]) == {"UKR"}
    assert set(embassy.breakdowns["nationality"]) <= {"UKR"}
    public_ukr = public.groups[public.groups["nationality"] == "UKR"].reset_index(drop=True)
    assert embassy.groups.reset_index(drop=True).equals(public_ukr)


@pytest.mark.slow
def test_the_public_and_embassy_pair_passes_the_audit(demo):
    from geo.pipeline import run_audit

    _, work, *_ = demo
    report = run_audit(
        [work / "public.release.parquet", work / "embassy.release.parquet"], work / "store.duckdb"
    )
    assert report.ok, "\n".join(report.lines(5))


@pytest.mark.slow
def test_a_noisy_public_and_embassy_pair_passes_the_audit(demo):
    from geo.pipeline import run_audit

    _, work, *_ = demo
    paths = []
    for name, policy in (
        ("public", ReleasePolicy()),
        ("embassy", ReleasePolicy(nationalities=("UKR",))),
    ):
        release = build_release(work / "store.duckdb", policy)
        assert release.metadata["method"] == "noise"
        paths.append(write_release(release, work / f"noisy-{name}.release.parquet"))
    report = run_audit(paths, work / "store.duckdb")
    assert report.ok, "\n".join(report.lines(5))
