"""The release file: one Parquet file holding the published table and its metadata.

The table is hashed (:func:`geo.hashing.content_sha256`) and the hash is kept in the
metadata; a reader refuses a file whose content does not match it. The store's release
ledger (:mod:`geo.io.ledger`) keeps the same table and metadata and rebuilds a release
with :func:`release_from_table`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from geo.errors import InputError
from geo.hashing import content_sha256
from geo.invariants import check_columns, check_invariants
from geo.io.steward_key import signing_seed
from geo.release import GROUP_COLUMNS, METADATA_KEY, RELEASE_FORMAT, TABLE_COLUMNS, Release
from geo.revocations import assess, check_fields
from geo.signatures import sign, verify


def write_release(release: Release, path: str | Path) -> Path:
    """Write a release as one Parquet file with its metadata, signed by the steward.

    The metadata gets the table's content hash, then the steward's signature over the
    metadata (:mod:`geo.signatures`; the key from :func:`geo.io.steward_key.signing_seed`).
    Written atomically.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    arrow = pa.Table.from_pandas(release.table(), preserve_index=False)
    release.metadata["content_sha256"] = content_sha256(arrow)
    release.metadata.pop("signature", None)
    release.metadata["signature"] = sign(release.metadata, signing_seed())
    arrow = arrow.replace_schema_metadata({METADATA_KEY: json.dumps(release.metadata).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    pq.write_table(arrow, temporary)
    os.replace(temporary, path)
    return path


def read_release(path: str | Path, trusted: list[bytes] | None = None) -> Release:
    """Read a release file; check its hash, its signature and its method's invariants.

    ``trusted`` are the steward public keys the reader trusts; the result's
    ``verification`` says verified, unverified (a valid signature by another key) or
    unsigned, and its ``standing`` whether it has expired (its signed ``valid_until``;
    :func:`geo.revocations.assess` adds a revocation list and newer releases).

    Returns
    -------
    Release

    Raises
    ------
    InputError
        If the file is missing, not a release, its content does not match its hash, its
        signature does not match (forged), it breaks an invariant its method declares
        (:mod:`geo.invariants`), or its validity fields are malformed.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such release file.")
    try:
        arrow = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path.name}: not a release file (not Parquet: {exc}).") from exc
    raw = (arrow.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise InputError(f"{path.name}: a Parquet file but not a crisis-exposure release.")
    try:
        metadata = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path.name}: the release metadata is not JSON ({exc}).") from exc
    if not isinstance(metadata, dict):
        raise InputError(
            f"{path.name}: the release metadata is a JSON {type(metadata).__name__}, not an object."
        )
    missing = [c for c in TABLE_COLUMNS if c not in arrow.column_names]
    if metadata.get("format") != RELEASE_FORMAT or missing:
        raise InputError(f"{path.name}: not a crisis-exposure release (columns {missing}).")
    arrow = arrow.select(TABLE_COLUMNS)
    check_columns(arrow, path.name)
    table = pl.from_arrow(arrow)  # converted once, for the hash and the invariants
    if content_sha256(table) != metadata.get("content_sha256"):
        raise InputError(
            f"{path.name}: the release content does not match its hash; the file was altered."
        )
    verification = verify(metadata, trusted, path.name)
    release = release_from_table(arrow, metadata)
    del arrow  # the release's frames hold their own copies
    check_invariants(release, path.name, table)
    del table
    check_fields(metadata, path.name)
    release.verification = verification
    release.standing = assess(metadata)
    # Arrow keeps freed buffers for reuse; a dashboard holds the release for hours.
    pa.default_memory_pool().release_unused()
    return release


def release_from_table(arrow: pa.Table, metadata: dict) -> Release:
    """Return the Release of a published table (the file's layout) and its metadata.

    Shared by the file reader and the store's release ledger, so a release read back
    from either is the same object.

    Parameters
    ----------
    arrow
        The table with ``TABLE_COLUMNS``, in the order :meth:`Release.table` sorts it.
    metadata
        The release's metadata, as written.

    Returns
    -------
    Release
    """
    arrow = arrow.select(TABLE_COLUMNS)
    # Split in Arrow, then convert each part once (pandas row filters on Arrow-backed
    # strings cost a tenth of a second at national scale).
    arrow = arrow.set_column(
        arrow.schema.get_field_index("resolution"),
        "resolution",
        arrow["resolution"].cast(pa.int8()),
    )
    totals = pc.equal(arrow["dimension"], "total")
    groups = arrow.filter(totals).select(GROUP_COLUMNS).to_pandas()
    breakdowns = arrow.filter(pc.invert(totals)).to_pandas()
    return Release(groups=groups, breakdowns=breakdowns, metadata=metadata)
