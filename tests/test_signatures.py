"""Signed releases: verified, unverified, unsigned, and forged ones refused everywhere."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from geo import cli, pipeline
from geo.errors import InputError
from geo.hashing import content_sha256
from geo.release import METADATA_KEY, ReleasePolicy, protect
from tests.factories import clustered_records


@pytest.fixture
def signed(tmp_path):
    path = tmp_path / "r.release.parquet"
    pipeline.write_release(protect(clustered_records(3_000, seed=4), ReleasePolicy()), path)
    key = tmp_path / "steward.pub"
    assert cli.main(["key", "--out", str(key)]) == 0
    return path, key


def rewrite(path, tmp_path, edit_metadata=None, edit_table=None, rehash=True):
    table = pq.read_table(path)
    metadata = json.loads(table.schema.metadata[METADATA_KEY])
    if edit_table:
        table = edit_table(table)
    if edit_metadata:
        edit_metadata(metadata)
    if rehash:
        metadata["content_sha256"] = content_sha256(table.select(table.column_names))
    out = tmp_path / "edited.release.parquet"
    pq.write_table(table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata)}), out)
    return out


def test_a_release_read_with_the_stewards_key_is_verified(signed):
    path, key = signed
    release = pipeline.read_release(path, [key])
    assert release.verification.status == "verified"
    assert len(release.verification.fingerprint) == 19  # XXXX-XXXX-XXXX-XXXX


def test_without_a_trusted_key_a_valid_signature_is_unverified(signed):
    release = pipeline.read_release(signed[0])
    assert release.verification.status == "unverified"
    assert release.verification.fingerprint in release.verification.sentence()


def test_a_policy_edited_in_the_metadata_is_forged(signed, tmp_path):
    def tighten(metadata):
        metadata["policy"]["k"] = 1000  # the hash never covered the metadata

    with pytest.raises(InputError, match="forged"):
        pipeline.read_release(rewrite(signed[0], tmp_path, edit_metadata=tighten), [signed[1]])


def test_a_table_edited_with_its_hash_recomputed_is_forged(signed, tmp_path):
    def halve(table):
        frame = table.to_pandas()
        frame["persons"] = frame["persons"] // 2 + frame["cases"]  # still plausible
        return type(table).from_pandas(frame, preserve_index=False)

    with pytest.raises(InputError, match="forged"):
        pipeline.read_release(rewrite(signed[0], tmp_path, edit_table=halve))


def test_a_release_signed_by_another_key_is_not_verified(signed, tmp_path, monkeypatch):
    monkeypatch.setenv("CRISIS_EXPOSURE_SIGNING_KEY", "b8" * 32)  # someone else
    other = tmp_path / "other.release.parquet"
    pipeline.write_release(protect(clustered_records(3_000, seed=4), ReleasePolicy()), other)
    assert pipeline.read_release(other, [signed[1]]).verification.status == "unverified"


def test_the_command_line_says_it_and_refuses_a_forged_release(signed, tmp_path, capsys):
    path, key = signed
    capsys.readouterr()
    assert cli.main(["inspect", str(path), "--trust", str(key)]) == 0
    assert "signature verified: signed by the trusted steward key" in capsys.readouterr().out

    def loosen(metadata):
        metadata["policy"]["k"] = 2

    forged = rewrite(path, tmp_path, edit_metadata=loosen)
    assert cli.main(["inspect", str(forged)]) == 2
    assert "forged" in capsys.readouterr().err
    out = tmp_path / "x.csv"
    norcia = "data/footprints/italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
    assert (
        cli.main(["exposure", "--release", str(forged), "--hazard", norcia, "--out", str(out)]) == 2
    )
    assert not out.exists()


def test_a_bad_trust_file_is_one_clear_line(signed, tmp_path, capsys):
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key\n")
    assert cli.main(["inspect", str(signed[0]), "--trust", str(bad)]) == 2
    assert "bad.pub, line 1: not a crisis-exposure public key" in capsys.readouterr().err


NORCIA = "data/footprints/italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"


def exposure_argv(release, out, *extra):
    argv = ["exposure", "--release", release, "--hazard", NORCIA, "--out", out, *extra]
    return [str(a) for a in argv]


def recorded_trust(path):
    """Return (status, fingerprint) as an export of any format records them."""
    if path.suffix == ".xlsx":
        import openpyxl

        sheet = openpyxl.load_workbook(path)["metadata"]
        meta = {key: value for _, value, key in sheet.iter_rows(min_row=2, values_only=True)}
        return meta["release.signature_status"], meta["release.signer_fingerprint"]
    if path.suffix == ".geojson":
        release = json.loads(path.read_text())["metadata"]["release"]
        return release["signature_status"], release["signer_fingerprint"]
    sidecar = json.loads(path.with_name(path.name + "-metadata.json").read_text())
    meta = {p["schema:name"]: p["schema:value"] for p in sidecar["schema:additionalProperty"]}
    return meta["signature_status"], meta["signer_fingerprint"]


@pytest.mark.parametrize("name", ["t.csv", "t.hxl.csv", "t.xlsx", "t.geojson"])
def test_every_export_records_the_signature_status_and_signer(signed, tmp_path, capsys, name):
    path, key = signed
    fingerprint = pipeline.read_release(path, [key]).verification.fingerprint
    out = tmp_path / name
    assert cli.main(exposure_argv(path, out, "--trust", key)) == 0
    assert recorded_trust(out) == ("verified", fingerprint)
    assert cli.main(exposure_argv(path, out)) == 0  # no --trust: shown, recorded, not refused
    assert recorded_trust(out) == ("unverified", fingerprint)


def test_exposure_refuses_a_release_the_trusted_keys_do_not_verify(
    signed, tmp_path, capsys, monkeypatch
):
    key = signed[1]
    monkeypatch.setenv("CRISIS_EXPOSURE_SIGNING_KEY", "b8" * 32)  # someone else
    other = tmp_path / "other.release.parquet"
    pipeline.write_release(protect(clustered_records(3_000, seed=4), ReleasePolicy()), other)
    unsigned = rewrite(other, tmp_path, edit_metadata=lambda m: m.pop("signature"))
    out = tmp_path / "x.csv"
    capsys.readouterr()
    for release, status in ((other, "unverified"), (unsigned, "unsigned")):
        assert cli.main(exposure_argv(release, out, "--trust", key)) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert f"the release is {status}" in err and "--allow-unverified" in err
        assert not out.exists()
        assert cli.main(["inspect", str(release), "--trust", str(key)]) == 0  # shown, kept
        assert status in capsys.readouterr().out
    assert cli.main(exposure_argv(other, out, "--trust", key, "--allow-unverified")) == 0
    assert recorded_trust(out)[0] == "unverified"
