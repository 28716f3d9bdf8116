"""The Exposure page's "Who is exposed" part (AppTest): profile, focal points, stocks."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from geo import pipeline
from geo.pipeline import profile as who
from tests.map_decks import decks

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard.py")
DEMO = ROOT / "data" / "demo"
NORCIA = ROOT / "data" / "footprints" / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
SDMX = (
    ROOT
    / "data"
    / "istat"
    / "istat_2023_foreign_residents_by_citizenship_area_all_provinces_sdmx.csv"
)


def frame_with(at: AppTest, column: str):
    """Return the first table on the page with ``column`` (AppTest keeps no table keys)."""
    return next(f.value for f in at.dataframe if column in f.value.columns)


@pytest.fixture
def app(monkeypatch) -> AppTest:
    monkeypatch.setenv("CRISIS_EXPOSURE_RELEASE_DIR", str(DEMO))
    monkeypatch.setenv("CRISIS_EXPOSURE_STEWARD", "0")
    monkeypatch.delenv("CRISIS_EXPOSURE_BASEMAP_URL", raising=False)
    return AppTest.from_file(APP, default_timeout=300)


def test_profile_focal_points_and_stocks_on_the_page(app):
    at = app.run()
    at.switch_page("app_pages/exposure.py").run()  # computes at once, no Run button
    assert not at.exception, at.exception
    release = pipeline.read_release(DEMO / "central_italy.release.parquet")
    run = pipeline.run_exposure(release, pipeline.read_footprints([NORCIA]))
    profile = who.community_profile(run, release)
    languages = frame_with(at, "language")
    assert languages["language"].iloc[1] == "Romanian"
    expected = profile.languages.set_index("language_name")["persons_estimate"]
    assert languages.set_index("language")["persons (estimate)"].head(10).to_dict() == (
        expected.head(10).to_dict()
    )
    at.checkbox(key="profile_focal_sample").check().run()
    focal = frame_with(at, "serves of the exposed")
    assert focal["organisation"].str.startswith("SAMPLE").all()
    assert not focal["organisation"].str.contains("Milan").any()
    # the listed focal points are drawn on the exposure map too, as a layer of their own
    (deck,) = decks(at)
    layers = {layer["id"]: layer for layer in deck["layers"]}
    assert len(layers["focal_points"]["data"]) == len(focal)
    assert (
        "Romania"
        in focal.set_index("organisation")
        .filter(like="Romanian", axis=0)
        .iloc[0]["serves of the exposed"]
    )
    at.selectbox(key="profile_stocks_areas").select("italy_regions_limits_IT_regions.geojson").run()
    at.file_uploader(key="profile_stocks_upload").upload(
        SDMX.name, SDMX.read_bytes(), "text/csv"
    ).run()
    assert not at.exception, at.exception
    stocks = frame_with(at, "official")
    umbria = stocks[(stocks["area"] == "Umbria") & (stocks["key"] == "EU28")].iloc[0]
    assert umbria["official"] == 28737
