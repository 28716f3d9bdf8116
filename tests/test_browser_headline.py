"""The Exposure page's headline and report button, in a real browser (Debian's Chromium).

The same server and page fixtures as ``tests/test_browser.py``: a release written in
code, ``streamlit run dashboard.py`` on a free port, every request leaving it refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from geo.pipeline import read_footprints, read_release, run_exposure
from tests.test_browser import (  # noqa: F401  (fixtures)
    NORCIA_MMI,
    browser,
    offline_page,
    release_path,
    server,
    wait_idle,
)

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("CRISIS_EXPOSURE_SCREENSHOTS", "/tmp/crisis-exposure-shots"))


@pytest.fixture
def wide_page(browser, server, tmp_path):  # noqa: F811
    yield from offline_page(browser, server, tmp_path)


def run_page(page, server) -> None:  # noqa: F811
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{server}/exposure")
    wait_idle(page)
    heading = page.get_by_role("heading", name="Headline")  # computed at once, no Run button
    try:
        heading.wait_for(timeout=300_000)
    except Exception:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "headline_failed.png"), full_page=True)
        raise
    wait_idle(page, timeout=300_000)


def test_headline_shows_at_least_rows_withheld_persons_and_the_report(
    wide_page,
    server,  # noqa: F811
    release_path,  # noqa: F811
):
    page = wide_page
    run_page(page, server)
    release = read_release(release_path)
    expected = run_exposure(release, read_footprints([NORCIA_MMI])).headline(release)
    fp = expected.footprints[0]
    body = page.locator('[data-testid="stMain"]').inner_text()
    # the alert word and each class beside "at least" that class, with the same figures
    assert (f"ALERT {fp.alert.upper()}" if fp.alert else "no alert colour") in body
    assert page.locator('[data-testid="stTable"]').first.is_visible()
    cumulative = [r for r in fp.rows if r.at_least is not None]
    assert cumulative, "no cumulative row in the expected headline"
    page_text = page.content()
    for row in cumulative[:3]:
        assert row.at_least_label in page_text
        assert row.at_least.text() in page_text
    # the persons withheld and the confirmation share, beside the figures
    assert "Withheld for privacy" in body
    assert f"{release.metadata['dropped']['persons']:,} persons" in body
    assert "Registry confirmed recently" in body and "not stated by this release" in body
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.get_by_role("heading", name="Headline").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "headline_1366.png"))
    with page.expect_download(timeout=180_000) as download:
        page.get_by_role("button", name="Download report (PDF)").click()
    assert download.value.suggested_filename.endswith("_report.pdf")
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF-")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(500)
    page.get_by_role("heading", name="Headline").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "headline_390.png"))
    assert page.outside == [], f"requests left the machine: {page.outside}"
