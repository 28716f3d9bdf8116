"""``crisis-exposure report``: one A4 page whose text equals what ``exposure`` prints.

Built for the demo release and the Norcia ShakeMap, converted back with poppler's
``pdftotext`` and ``pdftoppm`` (Debian ``poppler-utils``, installed by scripts/test.sh).
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from geo.cli import main
from geo.cli_args import build_parser

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "data" / "demo" / "central_italy.release.parquet"
TRUST = ROOT / "data" / "demo" / "steward.pub"
NORCIA = ROOT / "data" / "footprints" / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
NEEDS_POPPLER = pytest.mark.skipif(
    not (shutil.which("pdftotext") and shutil.which("pdftoppm")),
    reason="poppler-utils is not installed (scripts/test.sh installs it)",
)


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Run ``exposure`` and ``report`` (PDF and HTML) once on the same inputs."""
    folder = tmp_path_factory.mktemp("report")
    common = ["--release", str(RELEASE), "--hazard", str(NORCIA), "--trust", str(TRUST)]
    code, exposure, _ = run_cli("exposure", *common, "--out", str(folder / "t.csv"), "--profile")
    assert code == 0
    code, report, err = run_cli("report", *common, "--out", str(folder / "r.pdf"))
    assert code == 0, err
    code, _, err = run_cli("report", *common, "--out", str(folder / "r.html"), "--top", "3")
    assert code == 0, err
    return {"exposure": exposure, "report": report, "folder": folder}


def privacy_withheld(stdout: str) -> str:
    """The withheld sentence (it names k in cases) as the headline's last lines print it."""
    line = next(x for x in stdout.splitlines() if x.startswith("withheld for privacy: "))
    return line.removeprefix("withheld for privacy: ")


def headline_of(stdout: str) -> list[str]:
    """The headline lines a command prints (from the alert line to the confirmation line)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if ": alert " in line)
    end = next(i for i, line in enumerate(lines) if line.startswith("registry confirmed"))
    return lines[start : end + 1]


def test_report_prints_the_same_headline_as_exposure(outputs):
    assert headline_of(outputs["report"]) == headline_of(outputs["exposure"])


@pytest.mark.slow
@NEEDS_POPPLER
def test_pdf_text_holds_the_headline_the_nationalities_and_the_privacy_sentence(outputs):
    pdf = outputs["folder"] / "r.pdf"
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    exposure = outputs["exposure"]
    # every headline figure (each class and at least each class, with their ranges)
    for line in headline_of(exposure):
        for figure in re.findall(r"\d[\d,]*–\d[\d,]*|\d[\d,]*", line.split(": ", 1)[-1]):
            assert figure in text, (figure, line)
    assert "ALERT RED" in text and "at least MMI VIII" in text
    # the privacy sentence exactly as 'exposure' prints it
    privacy = next(line for line in exposure.splitlines() if line.startswith("The true number"))
    assert flat(privacy) in flat(text)
    assert "20,757 persons" in text
    # the top nationalities by name and code, and the row of the others
    for name in ("Romania (ROU)", "Albania (ALB)", "China (CHN)", "Morocco (MAR)"):
        assert name in text
    assert "Other nationalities" in text
    # the community profile: the languages 'exposure --profile' ranks, with its figures
    assert "Languages to warn in (anywhere in the footprint" in flat(text)
    spoken = re.findall(r"^  ([A-Z][a-z]+): ([\d,]+) \(", exposure, flags=re.M)[:4]
    assert [name for name, _ in spoken][:2] == ["English", "Romanian"]
    for name, persons in spoken:
        assert f"{name} {persons}" in flat(text), (name, persons)
    assert "older people 60+" in text and "persons per registration" in text
    # noisy categories that sum past the groups are said to, as on the page
    assert re.search(r"Sex: the categories add up to [\d,]+ persons against", flat(text))
    assert "read the shares as indicative" in flat(text)
    # provenance, release standing and hash; plain words only
    assert "5b53e221bd81dba6ac7eac02307a30853bbc13e7eeab73221150f29aa994c74c" in flat(text)
    assert "signature verified" in text and "content sha256" in text
    assert "event time not given" in text
    # k bounds the groups; a noisy release's categories may count fewer (all published)
    assert "k = 10 registrations behind every published group (cell and nationality)" in flat(text)
    assert "behind every published count" not in flat(text)
    for internal in ("%g", "class_rank", "persons_estimate"):
        assert internal not in text
    # "cases" only inside the shared method sentences (geo.accuracy), which must equal
    # what 'exposure' prints; none in the report's own words
    own = flat(text.split("Method and privacy")[0]).replace(privacy_withheld(exposure), "")
    assert "cases" not in own


@NEEDS_POPPLER
def test_pdf_is_one_a4_page_and_not_blank(outputs):
    pdf = outputs["folder"] / "r.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert re.search(r"Pages:\s+1\b", info)
    assert re.search(r"Page size:\s+595\.\d+ x 841\.\d+ pts \(A4\)", info)
    prefix = outputs["folder"] / "page"
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(prefix)], check=True)
    (png,) = sorted(outputs["folder"].glob("page*.png"))
    image = Image.open(png).convert("L")
    assert abs(image.width / image.height - 210 / 297) < 0.01
    dark = sum(image.histogram()[:128]) / (image.width * image.height)
    assert dark > 0.03  # text, tables and the map, not an empty page


def test_html_report_holds_the_same_sentences(outputs):
    html = (outputs["folder"] / "r.html").read_text(encoding="utf-8")
    privacy = next(
        line for line in outputs["exposure"].splitlines() if line.startswith("The true number")
    )
    assert flat(privacy) in flat(html.replace("&#x27;", "'"))
    assert "Romania (ROU)" in html and "data:image/png;base64," in html
    assert html.count("<tr>") >= 3 + 2  # --top 3: three named, other, all


def test_report_takes_every_option_of_exposure():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    options = {name: {a.dest for a in commands[name]._actions} for name in ("exposure", "report")}
    assert options["exposure"] <= options["report"]


def test_a_report_file_other_than_pdf_or_html_is_one_line_and_exit_2(tmp_path):
    code, _, err = run_cli(
        "report",
        "--release",
        str(RELEASE),
        "--hazard",
        str(NORCIA),
        "--out",
        str(tmp_path / "r.docx"),
    )
    assert code == 2
    assert (
        err.strip()
        == "crisis-exposure report: error: r.docx: a report is written as .pdf or .html."
    )


def test_tables_add_up_and_the_area_table_keeps_the_outside_row_last():
    """The 'other' and 'all' rows are widened sums of released groups, like class totals."""
    import geopandas as gpd
    from shapely.geometry import box

    from geo.pipeline import read_footprints, run_exposure
    from geo.release import ReleasePolicy, protect
    from geo.tools.report_content import OTHER_ROW, TOTAL_ROW, area_table, nationality_table
    from tests.factories import clustered_records

    release = protect(clustered_records(3000, seed=5), ReleasePolicy(k=10))
    admin = gpd.GeoDataFrame(
        {"name": ["West", "East"]},
        geometry=[box(12.0, 42.0, 13.0, 44.0), box(13.0, 42.0, 13.2, 44.0)],
        crs="EPSG:4326",
    )
    run = run_exposure(release, read_footprints([NORCIA]), admin=admin, admin_field="name")
    table = nationality_table(run.exposure, top=2)
    names = [row[0] for row in table.rows]
    assert names[-2:] == [OTHER_ROW, TOTAL_ROW] and len(names) == 4
    totals = run.exposure.class_totals()
    totals = totals[totals["persons_high"] > 0].reset_index(drop=True)
    for i, figure in enumerate(table.rows[-1][1:]):
        row = totals.iloc[i]
        assert (figure.low, figure.estimate, figure.high) == (
            row["persons_low"],
            row["persons_estimate"],
            row["persons_high"],
        )
    # named + other estimates add up to all (estimates are never widened)
    for column in range(1, len(table.columns)):
        parts = [r[column] for r in table.rows[:-1]]
        assert (
            sum(p.estimate for p in parts if not isinstance(p, str))
            == table.rows[-1][column].estimate
        )
    areas = area_table(run.exposure)
    assert [r[0] for r in areas.rows][-1] == "(outside the boundaries)"
    assert {"West", "East"} & {r[0] for r in areas.rows}
