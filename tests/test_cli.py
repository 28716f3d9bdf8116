"""The command line as a user runs it: the whole path, help, and one-line errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from geo.cli import build_parser, main
from geo.noise import noise_bound
from tests.export_files import read_exposure_csv
from tests.factories import registration_row

NORCIA = "data/footprints/italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_release_inspect_exposure(tmp_path, write_csv, capsys):
    rows = [
        registration_row(f"a{i}", latitude=str(42.79 + (i % 5) * 0.001), family_members=str(i % 3))
        for i in range(40)
    ]
    rows.append(registration_row("bad", nationality="Atlantis"))
    store, release = tmp_path / "s.duckdb", tmp_path / "r.release.parquet"
    code, out, err = run(capsys, "ingest", write_csv(rows), "--store", store)
    assert code == 0
    assert "41 rows read, 40 accepted, 1 rejected" in out
    assert "of which direct identifiers: full_name, phone" in out
    code, out, _ = run(capsys, "release", "--store", store, "--out", release, "--k", "5")
    assert code == 0 and "published:" in out and "dropped (under k at the floor): " in out
    cells = tmp_path / "cells.csv"
    code, out, _ = run(capsys, "inspect", release, "--cells", cells)
    table = pd.read_csv(cells)
    assert list(table.columns) == ["h3_cell", "resolution", "nationality", "cases", "persons"]
    # every count carries keyed noise (scale k/3 for cases, twice that for persons): the
    # totals are the truth (40 cases, 80 persons) within the method's 99% bound
    scale = 5 / 3
    assert abs(table["cases"].sum() - 40) <= noise_bound(len(table), scale)
    true_persons = 40 + sum(i % 3 for i in range(40))
    assert abs(table["persons"].sum() - true_persons) <= noise_bound(len(table), 2 * scale)
    out_csv = tmp_path / "exposure.csv"
    code, out, _ = run(
        capsys, "exposure", "--release", release, "--hazard", NORCIA, "--out", out_csv
    )
    assert code == 0 and "most severe class reached: MMI IX" in out
    assert f"written to {out_csv} (its metadata: {out_csv}-metadata.json)" in out
    sidecar = (tmp_path / "exposure.csv-metadata.json").read_text(encoding="utf-8")
    assert json.loads(sidecar)["url"] == "exposure.csv"
    exposure = read_exposure_csv(out_csv)
    # high: the released persons, widened by the noise's 99 % bound (docs/release-format.md)
    released = table["persons"].sum()
    assert (
        released <= exposure["persons_high"].max() <= released + noise_bound(len(table), 2 * scale)
    )


@pytest.mark.parametrize("command", ["ingest", "release", "inspect", "hazard", "exposure"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: crisis-exposure " + command in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ingest", "{missing}", "--store", "{store}"], "no such file"),
        (["ingest", "{binary}", "--store", "{store}"], "the file is binary"),
        (["ingest", "{folder}", "--store", "{store}"], "is a folder"),
        (["release", "--store", "{missing}", "--out", "{out}"], "no such store"),
        (["release", "--store", "{store}", "--out", "{out}", "--k", "1"], "k must be at least"),
        (["inspect", "{binary}"], "not a release file"),
        (["hazard", "{binary}"], "binary.csv"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, write_csv, capsys, argv, message):
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\x00\x01\x02" * 50)
    store = tmp_path / "s.duckdb"
    run(capsys, "ingest", write_csv([registration_row("a")]), "--store", store)
    paths = {
        "missing": tmp_path / "missing.csv",
        "binary": binary,
        "folder": tmp_path,
        "store": store,
        "out": tmp_path / "o.release.parquet",
    }
    code, _, err = run(capsys, *[a.format(**paths) for a in argv])
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("crisis-exposure ") and ": error: " in last and message in last
    assert "Traceback" not in err


DEMO = "data/demo/central_italy.release.parquet"


def test_unwritable_output_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    """An output path that cannot be written is a one-line error, not a traceback."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    argvs = [
        ["exposure", "--release", DEMO, "--hazard", NORCIA, "--out", blocker / "x.csv"],
        ["inspect", DEMO, "--cells", blocker / "c.csv"],
    ]
    for argv in argvs:
        code, _, err = run(capsys, *argv)
        assert code == 2 and "Traceback" not in err
        assert f"error: {blocker}" in err and "cannot write the file" in err

    def refuse(self, data):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr("pathlib.Path.write_bytes", refuse)
    code, _, err = run(capsys, "inspect", DEMO, "--cells", tmp_path / "c.csv")
    assert code == 2 and "cannot write the file (Permission denied" in err
    assert list(tmp_path.iterdir()) == [blocker]  # no temporary left behind


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--nationality", "XYZ", "ROU"], "nationality XYZ is not in this release (it has AFG"),
        (["--admin-field", "name"], "--admin-field needs --admin"),
        (["--class-order", ",,,"], "the class order ',,,' names no class"),
        (["--show", "-3"], "'-3' is not a number of rows"),
    ],
)
def test_exposure_option_mistakes_are_one_line_exit_2(tmp_path, capsys, options, message):
    argv = ["exposure", "--release", DEMO, "--hazard", NORCIA, "--out", tmp_path / "x.csv"]
    try:
        code, _, err = run(capsys, *argv, *options)
    except SystemExit as exit_info:  # argparse refuses the option itself
        code, err = exit_info.code, capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert message in err.strip().splitlines()[-1]


def test_lower_case_nationality_and_show_0(tmp_path, capsys):
    argv = ["exposure", "--release", DEMO, "--hazard", NORCIA, "--out", tmp_path / "x.csv"]
    code, out, _ = run(capsys, *argv, "--nationality", "rou", "--show", "0")
    assert code == 0
    table = read_exposure_csv(tmp_path / "x.csv")
    assert set(table["nationality"]) == {"ROU"} and table["persons_high"].max() > 1000
    assert "Empty DataFrame" not in out and "(table not shown: --show 0" in out


def test_geojson_export_keeps_to_the_chosen_nationality(tmp_path, capsys):
    """The exposed cells of a GeoJSON export hold only the nationalities asked for."""
    import json

    out = tmp_path / "x.geojson"
    argv = ["exposure", "--release", DEMO, "--hazard", NORCIA, "--out", out]
    code, _, _ = run(capsys, *argv, "--nationality", "ROU")
    assert code == 0
    features = json.loads(out.read_text())["features"]
    found = {f["properties"].get("nationality") for f in features}
    assert found == {"ROU"}, sorted(found)[:5]
