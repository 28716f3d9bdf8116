"""Releases over time: expiry, supersession, the signed revocation list, key rotation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from geo import cli, pipeline
from geo.errors import InputError
from geo.release import ReleasePolicy, protect
from geo.revocations import assess
from tests.factories import clustered_records, registration_row

ROOT_HAZARD = "data/footprints/italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
NORCIA = {"latitude": "42.79", "longitude": "13.09"}
OTHER_KEY = "b8" * 32


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def make_release(path, seed=4, **metadata):
    """Write a signed release (the conftest's key) with metadata fields overridden."""
    release = protect(clustered_records(3_000, seed=seed), ReleasePolicy())
    release.metadata.update(metadata)
    return pipeline.write_release(release, path)


@pytest.fixture
def keyfile(tmp_path):
    path = tmp_path / "steward.pub"
    assert cli.main(["key", "--out", str(path)]) == 0
    return path


@pytest.fixture
def release(tmp_path):
    return make_release(tmp_path / "r.release.parquet")


def content_hash(path):
    return pipeline.read_release(path).metadata["content_sha256"]


# --------------------------------------------------------------------------- publishing


def test_a_published_release_states_until_when_and_what_it_supersedes(tmp_path, write_csv):
    store = tmp_path / "s.duckdb"
    rows = [registration_row(f"n{i}", nationality="UKR", **NORCIA) for i in range(12)]
    rows += [registration_row(f"m{i}", nationality="MAR", **NORCIA) for i in range(12)]
    pipeline.ingest_files(store, [write_csv(rows)])
    policy = ReleasePolicy(k=3)
    first = pipeline.publish_release(store, policy, tmp_path / "a.release.parquet")
    created = datetime.fromisoformat(first.metadata["created_at"])
    until = datetime.fromisoformat(first.metadata["valid_until"])
    assert until - created == timedelta(days=30)
    assert first.metadata["supersedes"] is None
    embassy = ReleasePolicy(k=3, nationalities=("UKR",))
    other = pipeline.publish_release(store, embassy, tmp_path / "u.release.parquet", valid_days=7)
    assert other.metadata["supersedes"] is None  # another audience replaces nothing
    more = [registration_row(f"q{i}", nationality="UKR", **NORCIA) for i in range(5)]
    pipeline.ingest_files(store, [write_csv(more, "more.csv")])
    second = pipeline.publish_release(store, policy, tmp_path / "b.release.parquet")
    assert second.metadata["supersedes"] == first.metadata["content_sha256"]
    read = pipeline.read_release(tmp_path / "b.release.parquet")
    assert read.metadata["valid_until"] == second.metadata["valid_until"]  # signed, kept
    assert datetime.fromisoformat(other.metadata["valid_until"]) - datetime.fromisoformat(
        other.metadata["created_at"]
    ) == timedelta(days=7)
    # the newer release supersedes the older one for a reader holding both
    standing = assess(first.metadata, newer=[("b.release.parquet", read.metadata)])
    assert standing.status == "superseded"
    assert "b.release.parquet" in standing.superseded


def test_valid_days_below_one_is_refused(tmp_path, write_csv, capsys):
    store = tmp_path / "s.duckdb"
    pipeline.ingest_files(
        store, [write_csv([registration_row(f"n{i}", **NORCIA) for i in range(12)])]
    )
    out = tmp_path / "r.release.parquet"
    code, _, err = run(
        capsys, "release", "--store", store, "--out", out, "--k", 3, "--valid-days", 0
    )
    assert code == 2 and "--valid-days must be at least 1" in err
    assert not out.exists()


# --------------------------------------------------------------------------- expiry


def test_an_expired_release_is_shown_expired_and_still_used(tmp_path, keyfile, capsys):
    past = datetime.now(UTC) - timedelta(days=40)
    path = make_release(
        tmp_path / "old.release.parquet",
        created_at=past.isoformat(timespec="seconds"),
        valid_until=(past + timedelta(days=30)).isoformat(timespec="seconds"),
    )
    code, out, _ = run(capsys, "inspect", path, "--trust", keyfile)
    assert code == 0 and "expired: valid until" in out
    code, out, _ = run(
        capsys, "exposure", "--release", path, "--hazard", ROOT_HAZARD, "--trust", keyfile,
        "--out", tmp_path / "x.csv",
    )  # fmt: skip
    assert code == 0 and "expired: valid until" in out


def test_a_current_release_says_until_when_it_is_valid(tmp_path, keyfile, capsys):
    until = (datetime.now(UTC) + timedelta(days=3)).isoformat(timespec="seconds")
    path = make_release(tmp_path / "r.release.parquet", valid_until=until)
    code, out, _ = run(capsys, "inspect", path, "--trust", keyfile)
    assert code == 0 and f"standing: valid until {until}" in out
    assert "expired" not in out and "REVOKED" not in out


def test_a_malformed_validity_is_refused_even_when_signed(tmp_path, capsys):
    path = make_release(tmp_path / "r.release.parquet", valid_until="next spring")
    code, _, err = run(capsys, "inspect", path)
    assert code == 2 and "valid_until: not an ISO date" in err
    path = make_release(tmp_path / "s.release.parquet", supersedes="<script>")
    code, _, err = run(capsys, "inspect", path)
    assert code == 2 and "supersedes is not a release's content hash" in err


# --------------------------------------------------------------------------- revocation


def test_a_revoked_release_is_shown_and_refused_for_exposure(tmp_path, release, keyfile, capsys):
    revocations = tmp_path / "revoked.json"
    code, out, _ = run(capsys, "revoke", "--list", revocations, release, "--reason", "bad scope")
    assert code == 0 and "1 withdrawn releases" in out
    listed = json.loads(revocations.read_text())
    assert listed["releases"][0]["target"] == content_hash(release)
    code, out, _ = run(capsys, "inspect", release, "--trust", keyfile, "--revocations", revocations)
    assert code == 0
    assert "REVOKED: the steward withdrew this release on" in out and "(bad scope)" in out
    exposure = ["exposure", "--release", release, "--hazard", ROOT_HAZARD, "--trust", keyfile]
    exposure += ["--revocations", revocations, "--out", tmp_path / "x.csv"]
    code, out, err = run(capsys, *exposure)
    assert code == 2 and "Refused" in err and "--allow-revoked" in err
    assert not (tmp_path / "x.csv").exists()
    code, out, _ = run(capsys, *exposure, "--allow-revoked")
    assert code == 0 and "REVOKED" in out and (tmp_path / "x.csv").exists()


def test_a_release_not_on_the_list_is_said_not_withdrawn(tmp_path, release, keyfile, capsys):
    other = make_release(tmp_path / "other.release.parquet", seed=9)
    revocations = tmp_path / "revoked.json"
    assert cli.main(["revoke", "--list", str(revocations), str(other)]) == 0
    code, out, _ = run(capsys, "inspect", release, "--trust", keyfile, "--revocations", revocations)
    assert code == 0 and "standing: not withdrawn by the steward's revocation list" in out


def test_a_release_superseded_on_the_list_is_warned_not_refused(tmp_path, release, keyfile, capsys):
    newer = make_release(tmp_path / "newer.release.parquet", seed=9)
    revocations = tmp_path / "revoked.json"
    argv = ["revoke", "--list", revocations, release, "--superseded-by", newer]
    assert run(capsys, *argv)[0] == 0
    code, out, _ = run(capsys, "inspect", release, "--trust", keyfile, "--revocations", revocations)
    assert code == 0 and f"release {content_hash(newer)[:12]}… replaces it" in out
    code, out, _ = run(
        capsys, "exposure", "--release", release, "--hazard", ROOT_HAZARD, "--trust", keyfile,
        "--revocations", revocations, "--out", tmp_path / "x.csv",
    )  # fmt: skip
    assert code == 0 and "superseded:" in out


def test_a_withdrawn_key_revokes_what_it_signed(tmp_path, release, keyfile, capsys):
    fingerprint = pipeline.read_release(release).verification.fingerprint
    revocations = tmp_path / "revoked.json"
    assert run(capsys, "revoke", "--list", revocations, "--key", fingerprint.lower())[0] == 0
    code, out, _ = run(capsys, "inspect", release, "--trust", keyfile, "--revocations", revocations)
    assert code == 0 and f"the key that signed it ({fingerprint}) was withdrawn" in out


def test_a_forged_unsigned_or_foreign_list_is_refused(
    tmp_path, release, keyfile, capsys, monkeypatch
):
    revocations = tmp_path / "revoked.json"
    other = make_release(tmp_path / "other.release.parquet", seed=9)
    assert run(capsys, "revoke", "--list", revocations, other)[0] == 0
    document = json.loads(revocations.read_text())
    inspect = ["inspect", release, "--trust", keyfile, "--revocations", revocations]

    document["releases"] = []  # someone un-withdraws a release
    revocations.write_text(json.dumps(document))
    code, out, err = run(capsys, *inspect)
    assert (
        code == 2 and "forged: the steward's signature does not match this revocation list" in err
    )
    assert out == ""

    del document["signature"]
    revocations.write_text(json.dumps(document))
    code, _, err = run(capsys, *inspect)
    assert code == 2 and "the revocation list is unsigned" in err

    revocations.unlink()
    monkeypatch.setenv("CRISIS_EXPOSURE_SIGNING_KEY", OTHER_KEY)  # anyone's key
    assert cli.main(["revoke", "--list", str(revocations), str(release)]) == 0
    code, _, err = run(capsys, *inspect)
    assert code == 2 and "neither signed this release nor is a trusted key" in err
    code, _, err = run(capsys, "exposure", "--release", release, "--hazard", ROOT_HAZARD,
                       "--revocations", revocations, "--out", tmp_path / "x.csv")  # fmt: skip
    assert code == 2 and "not the steward's list" in err


def test_revoke_refuses_a_target_that_is_no_release(tmp_path, capsys):
    code, _, err = run(capsys, "revoke", "--list", tmp_path / "l.json", "not-a-hash")
    assert code == 2 and "is not a content hash" in err
    code, _, err = run(capsys, "revoke", "--list", tmp_path / "l.json")
    assert code == 2 and "name a release" in err
    assert not (tmp_path / "l.json").exists()


# --------------------------------------------------------------------------- rotation


def test_a_rotated_key_keeps_earlier_releases_verifiable(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CRISIS_EXPOSURE_SIGNING_KEY")
    monkeypatch.setenv("CRISIS_EXPOSURE_SIGNING_KEY_FILE", str(tmp_path / "keys" / "signing.key"))
    before = make_release(tmp_path / "before.release.parquet")
    old_secret = (tmp_path / "keys" / "signing.key").read_text()
    keys = tmp_path / "steward.pub"
    code, out, _ = run(capsys, "key", "--rotate", "--out", keys)
    assert code == 0 and "signing key rotated" in out
    assert (tmp_path / "keys" / "signing.key").read_text() != old_secret
    assert (tmp_path / "keys" / "signing.key").stat().st_mode & 0o777 == 0o600
    after = make_release(tmp_path / "after.release.parquet", seed=9)
    old, new = (pipeline.read_release(p, [keys]).verification for p in (before, after))
    assert (old.status, new.status) == ("verified", "verified")
    assert old.fingerprint != new.fingerprint
    text = keys.read_text()
    assert f"# current signing key, fingerprint {new.fingerprint}" in text
    assert f"fingerprint {old.fingerprint}" in text and "# retired" in text
    # a list signed by the new key withdraws a release signed by the old one
    revocations = tmp_path / "revoked.json"
    assert cli.main(["revoke", "--list", str(revocations), str(before)]) == 0
    standing = pipeline.read_release(before, [keys], revocations).standing
    assert standing.status == "revoked"


def test_a_key_from_the_environment_cannot_be_rotated_here(capsys):
    code, _, err = run(capsys, "key", "--rotate")
    assert code == 2 and "put a new key there" in err


def test_the_revocation_list_is_honoured_when_reading(tmp_path, release, keyfile):
    revocations = tmp_path / "revoked.json"
    pipeline.withdraw(revocations, [release])
    assert pipeline.read_release(release, [keyfile], revocations).standing.status == "revoked"
    with pytest.raises(InputError, match="--allow-revoked"):
        pipeline.refuse_revoked(pipeline.read_release(release, [keyfile], revocations))
