"""The pages over releases that were revoked, superseded or expired, and the gated Data page."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit import config as streamlit_config
from streamlit.testing.v1 import AppTest

from geo import cli, pipeline
from geo.release import ReleasePolicy, protect
from tests.factories import clustered_records
from tests.map_decks import decks

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard.py")
TIMEOUT = 60
PAGES = ("app_pages/map.py", "app_pages/exposure.py", "app_pages/release.py")


def write(path: Path, seed: int = 3, **metadata) -> Path:
    release = protect(clustered_records(4000, seed=seed), ReleasePolicy(k=5))
    release.metadata.update(metadata)
    return pipeline.write_release(release, path)


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """A release folder the dashboard reads, with the steward's key trusted."""
    releases = tmp_path / "releases"
    releases.mkdir()
    key = tmp_path / "steward.pub"
    assert cli.main(["key", "--out", str(key)]) == 0
    monkeypatch.setenv("CRISIS_EXPOSURE_RELEASE_DIR", str(releases))
    monkeypatch.setenv("CRISIS_EXPOSURE_TRUSTED_KEYS", str(key))
    monkeypatch.delenv("CRISIS_EXPOSURE_BASEMAP_URL", raising=False)
    monkeypatch.delenv("CRISIS_EXPOSURE_REVOCATIONS", raising=False)
    monkeypatch.delenv("CRISIS_EXPOSURE_STEWARD", raising=False)
    return releases


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def on_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page(page).run()
    no_exception(at)
    return at


def revoke(folder: Path, monkeypatch, *argv: str) -> Path:
    listed = folder.parent / "revoked.json"
    assert cli.main(["revoke", "--list", str(listed), *argv]) == 0
    monkeypatch.setenv("CRISIS_EXPOSURE_REVOCATIONS", str(listed))
    return listed


# --------------------------------------------------------------------------- standing


def test_a_revoked_release_is_said_so_on_every_page_and_kept_from_exposure(folder, monkeypatch):
    path = write(folder / "a.release.parquet")
    revoke(folder, monkeypatch, str(path), "--reason", "wrong consent scope")
    for page in PAGES:
        at = on_page(page)
        errors = [e.value for e in at.error]
        assert any(e.startswith("REVOKED: the steward withdrew this release on") for e in errors), (
            page
        )
        assert any("(wrong consent scope)" in e for e in errors), page
    at = on_page("app_pages/exposure.py")
    assert not at.button, "no exposure can be run on a revoked release"
    at.checkbox(key="exposure_allow_revoked").check().run()
    no_exception(at)
    at.run()
    no_exception(at)
    assert at.get("download_button"), "once overridden, the exposure runs"


def test_a_current_release_says_it_is_not_withdrawn(folder, monkeypatch):
    write(folder / "a.release.parquet")
    other = write(folder.parent / "other.release.parquet", seed=9)
    revoke(folder, monkeypatch, str(other))
    at = on_page("app_pages/release.py")
    assert not at.error and not [w for w in at.warning if "xpired" in w.value]
    text = " ".join(m.value for m in at.markdown)
    assert "Not withdrawn by the steward's revocation list" in text
    assert "No revocation list is set" not in text
    assert "signature verified" in at.success[0].value.lower()


def test_an_expired_release_is_warned_about(folder):
    past = datetime.now(UTC) - timedelta(days=45)
    write(
        folder / "old.release.parquet",
        created_at=past.isoformat(timespec="seconds"),
        valid_until=(past + timedelta(days=30)).isoformat(timespec="seconds"),
    )
    for page in PAGES:
        at = on_page(page)
        assert any(w.value.startswith("Expired: valid until") for w in at.warning), page
        assert not at.error
    at = on_page("app_pages/exposure.py")
    assert at.metric, "an expired release is warned about, not refused"
    text = " ".join(m.value for m in on_page("app_pages/release.py").markdown)
    assert "No revocation list is set (CRISIS_EXPOSURE_REVOCATIONS)" in text


def test_a_release_superseded_by_a_newer_one_on_offer_is_said_so(folder):
    older = write(folder / "a_older.release.parquet")
    digest = pipeline.read_release(older).metadata["content_sha256"]
    write(folder / "b_newer.release.parquet", seed=9, supersedes=digest)
    at = on_page("app_pages/release.py")  # the first release of the folder is active
    assert at.session_state["release_path"].endswith("a_older.release.parquet")
    warnings = [w.value for w in at.warning]
    assert any(
        w.startswith("Superseded: the newer release b_newer.release.parquet") for w in warnings
    )
    at.sidebar.selectbox[0].set_value(str(folder / "b_newer.release.parquet")).run()
    assert not [w for w in at.warning if "uperseded" in w.value]
    assert f"Replaces the earlier release with content sha256 `{digest}`" in " ".join(
        m.value for m in at.markdown
    )


@pytest.mark.parametrize("damage", ["forged", "unsigned", "missing"])
def test_a_list_that_cannot_be_honoured_stops_the_pages(folder, monkeypatch, damage):
    path = write(folder / "a.release.parquet")
    listed = revoke(folder, monkeypatch, str(write(folder.parent / "o.release.parquet", seed=9)))
    document = json.loads(listed.read_text())
    document["releases"] = []
    if damage == "unsigned":
        del document["signature"]
    listed.write_text(json.dumps(document))
    if damage == "missing":
        listed.unlink()
    expected = {
        "forged": "forged: the steward's signature does not match this revocation list",
        "unsigned": "the revocation list is unsigned",
        "missing": "is missing: without it no release can be shown as current",
    }[damage]
    for page in PAGES:
        at = on_page(page)
        assert any(expected in e.value for e in at.error), page
        assert not at.metric and not decks(at), page
    assert path.exists()


# --------------------------------------------------------------------------- Data page


@pytest.fixture
def address():
    """Set ``server.address`` for the test, and put back what it was."""
    before = streamlit_config.get_option("server.address")
    yield lambda value: streamlit_config.set_option("server.address", value)
    streamlit_config.set_option("server.address", before)


def test_the_data_page_is_off_by_default(folder, address):
    address("127.0.0.1")
    write(folder / "a.release.parquet")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exception(at)
    with pytest.raises(Exception, match="(?i)page"):
        at.switch_page("app_pages/data.py").run()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_data_page_serves_on_a_local_server(folder, monkeypatch, address, host):
    monkeypatch.setenv("CRISIS_EXPOSURE_STEWARD", "1")
    address(host)
    at = on_page("app_pages/data.py")
    assert not at.error
    assert at.file_uploader(key="data_records") is not None


def test_the_data_page_refuses_a_public_server_without_login(folder, monkeypatch, address):
    monkeypatch.setenv("CRISIS_EXPOSURE_STEWARD", "1")
    for host in ("0.0.0.0", ""):
        address(host)
        at = on_page("app_pages/data.py")
        assert at.error[0].value.startswith("The Data page is off: this server listens on")
        assert not at.get("file_uploader") and not at.button


def test_the_data_page_asks_for_login_when_login_is_configured(folder, monkeypatch, address):
    monkeypatch.setenv("CRISIS_EXPOSURE_STEWARD", "1")
    address("0.0.0.0")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["auth"] = {"redirect_uri": "https://example.org/oauth2callback"}
    at.user = {"is_logged_in": False}
    at.run()
    at.switch_page("app_pages/data.py").run()
    no_exception(at)
    assert at.error[0].value == "The Data page is for the steward: log in to use it."
    assert [b.label for b in at.button] == ["Log in"]
    assert not at.get("file_uploader")
    at.user = {"is_logged_in": True, "email": "steward@example.org"}
    at.run()
    no_exception(at)
    assert not at.error
    assert at.get("file_uploader")


# --------------------------------------------------------------------------- markup from files


def test_names_from_an_upload_show_as_text_not_markup(folder):
    """A footprint named like a markdown link must show as its name, not become a link.

    (An image, ``![x](…)``, would make the browser fetch; a name starting with ``!`` is
    not read at all by the vector reader, so the link form stands for both.)"""
    write(folder / "a.release.parquet")
    ring = [[11.5, 42.0], [14.0, 42.0], [14.0, 44.0], [11.5, 44.0], [11.5, 42.0]]
    shape = {"type": "Polygon", "coordinates": [ring]}
    feature = {"type": "Feature", "properties": {}, "geometry": shape}
    data = json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()
    name = "[x](evil.example.org) <b>.geojson"
    at = on_page("app_pages/exposure.py")
    at.file_uploader(key="exposure_uploads").upload(name, data, "application/geo+json")
    at.run()
    at.run()
    no_exception(at)
    shown = [e.value for e in (*at.markdown, *at.caption, *at.subheader, *at.warning)]
    with_name = [text for text in shown if "evil.example.org" in text]
    assert with_name, "the footprint's name and class are shown"
    for text in with_name:
        assert "[x](" not in text and "<b>" not in text, text
        # markdown escapes it; the map legend (HTML) gives its characters as entities
        escaped = ("\\[x\\](evil.example.org) \\<b\\>", "&#91;x&#93;&#40;evil.example.org")
        assert any(form in text for form in escaped), text
