"""The community profile on the Exposure page, in a real browser (Chromium, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from geo import pipeline
from geo.pipeline import profile as who
from tests.dashboard_server import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DashboardStartError,
    start_dashboard,
    stop_dashboard,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo"
NORCIA = ROOT / "data" / "footprints" / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The dashboard over the demo releases (central Italy, Norcia footprint shipped)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (scripts/test.sh installs it)")
    log = tmp_path_factory.mktemp("profile-server") / "streamlit.log"
    try:
        process, url = start_dashboard(DEMO, log, steward=False)
    except DashboardStartError as died:
        pytest.fail(str(died))
    yield url
    stop_dashboard(process)


@pytest.fixture
def page(server, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        page.outside = []

        def route(request_route):
            if request_route.request.url.startswith(server):
                request_route.continue_()
            else:
                page.outside.append(request_route.request.url)
                request_route.abort()

        page.route("**/*", route)
        yield page
        page.screenshot(path=str(tmp_path / "profile.png"))
        browser.close()


def wait_idle(page, timeout: float = 120_000) -> None:
    page.wait_for_timeout(300)
    page.wait_for_selector(IDLE, timeout=timeout)


def test_the_profile_lists_languages_for_the_demo_footprint(page, server):
    release = pipeline.read_release(DEMO / "central_italy.release.parquet")
    run = pipeline.run_exposure(release, pipeline.read_footprints([NORCIA]))
    expected = who.community_profile(run, release).languages.set_index("language_name")

    page.goto(f"{server}/exposure")
    wait_idle(page)
    heading = page.get_by_text("Who is exposed: community profile")
    heading.wait_for(timeout=300_000)
    wait_idle(page)
    line = page.get_by_text("Languages to warn in first").locator("xpath=..").inner_text()
    for language in ("Romanian", "English", "Albanian"):
        assert f"{language} {expected.loc[language, 'persons_estimate']:,}" in line, line
    assert page.outside == [], f"requests left the machine: {page.outside}"
