"""The ingest's prepare stage: same rejects, keys and releases however fast it runs."""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import polars as pl
import pytest

from geo import pipeline
from geo.errors import InputError
from geo.hashing import record_keys
from geo.io import registrations
from geo.io.registrations import iter_validated_batches, open_registration_file
from geo.pipeline.ingest import _prepared_batches
from geo.release import ReleasePolicy
from geo.validate import _swapped, _swapped_expr, coordinates_to_cell, validate_batch

SECRET, IDENTITY_SECRET = bytes(range(32)), bytes(range(32, 64))

# One row per kind of reject (and blanks that must count as missing), with the exact
# reasons text each one gets; 24 plain rows around them give the swapped test its
# reference point (Norcia).
REJECTS = [
    ({"record_id": "  "}, "missing record_id"),
    ({"record_id": "a\tb"}, "record_id contains a control character (NUL, tab or line break)"),
    ({"record_id": "z" * 129}, "record_id longer than 128 characters"),
    ({"nationality": " "}, "missing nationality"),
    (
        {"nationality": "Atlantis"},
        "unknown nationality (expected ISO 3166-1 alpha-3, alpha-2 or English name)",
    ),
    ({"latitude": None}, "missing latitude or longitude"),
    ({"latitude": "north"}, "latitude is not a number"),
    ({"longitude": "east"}, "longitude is not a number"),
    (
        {"latitude": "95", "longitude": "13"},
        "latitude out of range (looks swapped with longitude)",
    ),
    ({"latitude": "95", "longitude": "100"}, "latitude out of range -90..90"),
    ({"longitude": "190"}, "longitude out of range -180..180"),
    ({"latitude": "0", "longitude": "0"}, "coordinates are 0,0 (a missing location, not a place)"),
    (
        {"latitude": "13.09", "longitude": "42.79"},
        "latitude and longitude look swapped (far from the file's other records)",
    ),
    ({"sex": "Q"}, "unrecognised sex (use F, M or X)"),
    ({"age": "old"}, "age is not a number"),
    ({"age": "121"}, "age out of range 0..120"),
    ({"birth_year": "19x"}, "birth_year is not a number"),
    ({"birth_year": "1800"}, "birth_year out of range 1900..2025"),
    ({"family_members": "many"}, "family_members is not a number"),
    ({"family_members": "1.5"}, "family_members is not a whole number ≥ 0"),
    ({"family_members": "31"}, "family_members implausible (more than 30)"),
    (
        {"vulnerabilities": "bogus"},
        "unknown vulnerability (allowed: disability, pregnant, unaccompanied_minor, "
        "older_person_alone, medical, other)",
    ),
    (
        {"consent": "nope"},
        "unknown consent scope (allowed: aggregate, origin_state, host_state, humanitarian)",
    ),
    ({"updated_at": "yesterday"}, "updated_at is not a date (use YYYY-MM-DD)"),
    ({"valid_until": "never"}, "valid_until is not a date (use YYYY-MM-DD)"),
    (
        {"record_id": "", "nationality": "", "sex": "?", "age": "-1", "consent": "x"},
        "missing record_id; missing nationality; unrecognised sex (use F, M or X); "
        "age out of range 0..120; unknown consent scope (allowed: aggregate, origin_state, "
        "host_state, humanitarian)",
    ),
]
PLAIN = {
    "record_id": "ok",
    "nationality": "ROU",
    "latitude": "42.79",
    "longitude": "13.09",
    "sex": "F",
    "age": "34",
    "birth_year": None,
    "family_members": "1",
    "vulnerabilities": None,
    "consent": "aggregate",
    "source": "consular",
    "updated_at": "2025-01-01",
    "valid_until": None,
}


def _batch_rows() -> list[dict]:
    rows = [dict(PLAIN, record_id=f"ok{i}") for i in range(24)]
    rows += [{**PLAIN, "record_id": f"bad{i}", **change} for i, (change, _) in enumerate(REJECTS)]
    # Blank coded cells are missing values, which these columns allow: accepted.
    rows.append(dict(PLAIN, record_id="blanks", sex=" ", consent="\t", vulnerabilities=" "))
    return rows


def _validated(rows: list[dict]):
    raw = pl.DataFrame(rows, schema=dict.fromkeys(PLAIN, pl.String))
    names = {name: name for name in PLAIN}
    return validate_batch(raw, names, 2, "file.csv", (42.79, 13.09), this_year=2025)


def test_every_kind_of_reject_keeps_its_row_record_id_and_reasons_text():
    batch = _validated(_batch_rows())
    assert batch.rows_read == 24 + len(REJECTS) + 1
    assert batch.rejects["row"].to_list() == list(range(26, 26 + len(REJECTS)))
    assert batch.rejects["reasons"].to_list() == [reasons for _, reasons in REJECTS]
    assert batch.rejects["record_id"].to_list()[:3] == ["", "a?b", "z" * 64]
    assert batch.accepted.height == 25
    blanks = batch.accepted.filter(pl.col("record_id") == "blanks").row(0, named=True)
    assert (blanks["sex"], blanks["consent"], blanks["vulnerabilities"]) == ("unknown", 0, 0)


def test_reasons_do_not_depend_on_which_rows_share_the_batch():
    rows = _batch_rows()
    alone = [_validated(rows[:24] + [row]).rejects["reasons"].to_list() for row in rows[24:-1]]
    assert [reasons for (reasons,) in alone] == [reasons for _, reasons in REJECTS]


@pytest.mark.parametrize("reference", [(42.79, 13.09), (10.0, 80.0), (-30.0, 20.0), (0.0, 0.0)])
def test_swapped_check_with_bounds_gives_the_exact_test_answers(reference):
    rng = np.random.default_rng(3)
    n = 200_000
    lat, lon = rng.uniform(-100, 100, n), rng.uniform(-200, 200, n)
    lat[::997], lon[::991] = np.nan, np.inf
    frame = pl.DataFrame({"lat_num": lat, "lon_num": lon}).with_columns(
        pl.when(pl.int_range(pl.len()) % 503 == 0).then(None).otherwise("lat_num").alias("lat_num")
    )
    # Points just inside and outside 500 km of the reference, swapped and not.
    ring = pl.DataFrame(
        {
            "lat_num": [reference[0] + d for d in np.linspace(4.0, 4.6, 61)] + [reference[1]],
            "lon_num": [reference[1]] * 61 + [reference[0]],
        }
    )
    frame = pl.concat([frame, ring])
    exact = frame.select(_swapped_expr(reference).fill_null(False)).to_series()
    assert exact.sum() > 0 or reference == (0.0, 0.0)
    assert _swapped(frame, reference).to_list() == exact.to_list()


def test_record_keys_are_hmac_sha256_as_python_computes_them():
    ids = ["1", "R-000042", "äöü-ß", "x" * 128, "名前", "a b"]
    sources = ["consular", "consular", "agency", "", "host", "s\u00e9"]
    keyed = record_keys(pl.DataFrame({"source": sources, "record_id": ids}), SECRET)
    for source, record_id, hi, lo in zip(
        sources, ids, keyed["key_hi"], keyed["key_lo"], strict=True
    ):
        message = (source + "\x1f" + record_id).encode()
        digest = hmac.new(SECRET.hex().encode(), message, hashlib.sha256).digest()
        assert (hi, lo) == (int.from_bytes(digest[:8]), int.from_bytes(digest[8:16]))
    assert "record_id" not in keyed.columns


def _registry(n: int, seed: int = 11) -> pl.DataFrame:
    """A small registry with rejects and a duplicate id (the later row wins)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[43.11, 12.39], [42.79, 13.09], [42.56, 12.65]])
    which = rng.integers(0, 3, n)
    ids = [f"R{i}" for i in range(n)]
    ids[5] = ids[4]
    nationalities = ["ROU", "ALB", "MAR", "UKR", "PHL", "Italy", "xx"]
    return pl.DataFrame(
        {
            "record_id": ids,
            "nationality": rng.choice(nationalities, n, p=[0.35, 0.2, 0.15, 0.15, 0.1, 0.04, 0.01]),
            "latitude": centres[which, 0] + rng.normal(0, 0.05, n),
            "longitude": centres[which, 1] + rng.normal(0, 0.05, n),
            "sex": rng.choice(["F", "M", "x", " ", "?"], n, p=[0.5, 0.45, 0.02, 0.02, 0.01]),
            "age": rng.integers(-2, 100, n),
            "family_members": rng.integers(0, 5, n),
            "consent": rng.choice(
                ["aggregate", "aggregate;origin_state", "nope"], n, p=[0.6, 0.39, 0.01]
            ),
            "source": "consular",
            "updated_at": rng.choice(["2025-01-01", "2025-03-02", "bad"], n, p=[0.5, 0.49, 0.01]),
        }
    )


def test_batches_prepared_on_two_workers_come_in_file_order_with_the_same_keys(tmp_path):
    path = tmp_path / "reg.parquet"
    _registry(6000).write_parquet(path)
    header = open_registration_file(path)
    serial = list(iter_validated_batches(header, batch_rows=700))
    prepared = list(_prepared_batches(header, SECRET, IDENTITY_SECRET, batch_rows=700))
    assert [b.rows_read for b, _ in prepared] == [b.rows_read for b in serial] == [700] * 8 + [400]
    for (batch, table), alone in zip(prepared, serial, strict=True):
        assert batch.rejects.equals(alone.rejects)
        assert batch.accepted.equals(alone.accepted)
        expected = record_keys(coordinates_to_cell(alone.accepted, 8), SECRET)
        assert pl.from_arrow(table).equals(expected)
    rows = pl.concat([pl.from_arrow(table) for _, table in prepared])["row"]
    assert rows.is_sorted() and rows.n_unique() == rows.len()


def test_an_error_in_a_worker_is_raised_where_the_batches_are_consumed(tmp_path, monkeypatch):
    path = tmp_path / "reg.parquet"
    _registry(3000).write_parquet(path)
    real = registrations.validate_batch

    def failing(raw, column_map, first_row, *args):
        if first_row > 1500:
            raise InputError("reg.parquet: broken batch")
        return real(raw, column_map, first_row, *args)

    monkeypatch.setattr(registrations, "validate_batch", failing)
    batches = _prepared_batches(open_registration_file(path), SECRET, IDENTITY_SECRET, 500)
    seen = []
    with pytest.raises(InputError, match="broken batch"):
        for batch, _ in batches:
            seen.append(batch.rows_read)
    assert seen == [500, 500, 500]


# The release made on main before the prepare stage was rewritten (same registry, store
# and default policy): its table's content hash must not change.
RELEASE_SHA256 = "22dea132ecaf252749b809ab6619aa3c35fb96dea3854fe73a277e1a0a020dc7"


def test_release_of_a_small_store_is_the_same_when_batches_are_prepared_in_parallel(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(registrations, "BATCH_ROWS", 700)  # 9 batches, two workers
    _registry(6000).write_parquet(tmp_path / "reg.parquet")
    store = tmp_path / "s.duckdb"
    report = pipeline.ingest_files(store, [tmp_path / "reg.parquet"], rejects_dir=tmp_path)[0]
    assert report.rows_read == 6000
    release = pipeline.build_release(store, ReleasePolicy())
    pipeline.write_release(release, tmp_path / "r.release.parquet")
    assert release.metadata["content_sha256"] == RELEASE_SHA256
