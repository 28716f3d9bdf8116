"""A release is checked against its method's invariants on every read (forged files)."""

from __future__ import annotations

import json

import polars as pl
import pyarrow.parquet as pq
import pytest

from geo.errors import InputError
from geo.hashing import content_sha256
from geo.pipeline import read_release, write_release
from geo.release import METADATA_KEY, ReleasePolicy, protect
from geo.viz.layers import build_deck
from tests.factories import clustered_records


@pytest.fixture(scope="module")
def genuine(tmp_path_factory):
    path = tmp_path_factory.mktemp("r") / "genuine.release.parquet"
    write_release(protect(clustered_records(5_000, seed=2), ReleasePolicy()), path)
    return path


def forged(genuine, tmp_path, edit, metadata_edit=None):
    """Rewrite a release with an edited table and a recomputed content hash."""
    table = pq.read_table(genuine)
    metadata = json.loads(table.schema.metadata[METADATA_KEY])
    frame = edit(pl.from_arrow(table))
    arrow = frame.to_arrow()
    if metadata_edit:
        metadata_edit(metadata)
    metadata["content_sha256"] = content_sha256(arrow)
    metadata.pop("signature")  # unsigned, so that the invariants are what refuse it
    path = tmp_path / "forged.release.parquet"
    pq.write_table(arrow.replace_schema_metadata({METADATA_KEY: json.dumps(metadata)}), path)
    return path


def first_group(column, value):
    """Return an edit that sets ``column`` of the table's first group row to ``value``."""

    def edit(frame):
        index = frame.with_row_index().filter(pl.col("dimension") == "total")["index"][0]
        hit = pl.int_range(pl.len()) == index
        new = pl.when(hit).then(pl.lit(value)).otherwise(pl.col(column))
        return frame.with_columns(new.cast(frame.schema[column]).alias(column))

    return edit


def test_a_genuine_release_reads(genuine):
    assert len(read_release(genuine).groups) > 0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (first_group("cases", 1), "under its floor of 10"),
        (first_group("persons", -3), "under its floor"),
        (first_group("nationality", "<img src=x onerror=alert(1)>"), "not a three-letter code"),
        (first_group("h3_cell", "not-a-cell"), "invalid H3 cell"),
        (first_group("resolution", 9), "not at the resolution it states"),
    ],
    ids=["one case", "negative persons", "script as nationality", "bad cell", "bad resolution"],
)
def test_a_forged_release_with_a_recomputed_hash_is_refused(genuine, tmp_path, edit, message):
    with pytest.raises(InputError, match=message):
        read_release(forged(genuine, tmp_path, edit))


def test_a_policy_made_looser_in_the_metadata_is_refused(genuine, tmp_path):
    def loosen(metadata):
        metadata["policy"]["k"] = 1

    with pytest.raises(InputError, match="policy is not valid|k must be at least 2"):
        read_release(forged(genuine, tmp_path, lambda frame: frame, loosen))


def test_the_map_tooltip_is_text_not_html():
    """The browser sets a text tooltip with innerText: no released value becomes markup."""
    deck = build_deck([], {"latitude": 43.0, "longitude": 12.5, "zoom": 7})
    tooltip = deck._tooltip  # what st.pydeck_chart sends as the chart's tooltip
    assert "html" not in tooltip
    assert "{nationalities}" in tooltip["text"] and "<" not in tooltip["text"]
