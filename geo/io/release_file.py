"""The release file: one Parquet file holding the published table and its metadata.

The table is hashed (:func:`geo.hashing.content_sha256`) and the hash is kept in the
metadata; a reader refuses a file whose content does not match it. The store's release
ledger (:mod:`geo.io.ledger`) keeps the same table and metadata and rebuilds a release
with :func:`release_from_table`.
"""

from __future__ import annotations

import json
import os
from bisect import bisect_left
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from geo.errors import InputError
from geo.hashing import ContentHasher, content_sha256
from geo.invariants import STRING_COLUMNS, check_columns, check_invariants
from geo.io.steward_key import signing_seed
from geo.process_memory import give_back_memory
from geo.release import GROUP_COLUMNS, METADATA_KEY, RELEASE_FORMAT, TABLE_COLUMNS, Release
from geo.release_frames import BREAKDOWN_FIGURES, sorted_categorical
from geo.revocations import assess, check_fields
from geo.signatures import sign, verify


def write_release(release: Release, path: str | Path) -> Path:
    """Write a release as one Parquet file with its metadata, signed by the steward.

    The metadata gets the table's content hash, then the steward's signature over the
    metadata (:mod:`geo.signatures`; the key from :func:`geo.io.steward_key.signing_seed`).
    Written atomically, in parts of the table in its order (:func:`table_parts`), each
    hashed and written as it comes: no whole copy of the table is made.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    hasher = ContentHasher()
    try:
        # No Arrow schema in the file: the metadata, known only once the table is hashed,
        # is added to the Parquet footer at the end, and readers take it from there.
        with pq.ParquetWriter(temporary, FILE_SCHEMA, store_schema=False) as writer:
            for part in table_parts(release):
                hasher.update(part)
                writer.write_table(part)
            release.metadata["content_sha256"] = hasher.hexdigest()
            release.metadata.pop("signature", None)
            release.metadata["signature"] = sign(release.metadata, signing_seed())
            writer.add_key_value_metadata({METADATA_KEY: json.dumps(release.metadata).encode()})
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


FILE_SCHEMA = pa.schema(
    [
        ("h3_cell", pa.string()),
        ("resolution", pa.int8()),
        ("nationality", pa.string()),
        ("dimension", pa.string()),
        ("category", pa.string()),
        ("cases", pa.int64()),
        ("persons", pa.int64()),
    ]
)
PART_ROWS = 100_000


def table_parts(release: Release, rows: int = PART_ROWS) -> Iterator[pa.Table]:
    """Yield the release's table (:meth:`Release.table`'s rows, in its order) in parts.

    The groups and the breakdowns are each in cell order (as :func:`geo.release.protect`
    makes them; sorted here if not), so cutting both at the same cells gives parts that
    hold all the rows of their cells: each part is sorted alone, stably, groups first,
    exactly as the whole table would be. Categorical columns (a release's breakdowns)
    become text part by part. At least one part, possibly empty.
    """
    groups = _in_cell_order(release.groups[GROUP_COLUMNS])
    breakdowns = _in_cell_order(release.breakdowns[TABLE_COLUMNS])
    order = _RowOrder.of(groups, breakdowns)
    longest = max((groups, breakdowns), key=len)["h3_cell"]
    cuts = sorted({longest.iloc[i] for i in range(rows, len(longest), rows)})
    starts = {  # each cut found by bisection in the sorted cells
        name: [0, *_cell_positions(f["h3_cell"], cuts), len(f)]
        for name, f in (("groups", groups), ("breakdowns", breakdowns))
    }
    for part in range(len(cuts) + 1):
        g0, g1 = starts["groups"][part], starts["groups"][part + 1]
        b0, b1 = starts["breakdowns"][part], starts["breakdowns"][part + 1]
        totals = groups.iloc[g0:g1].assign(dimension="total", category="")[TABLE_COLUMNS]
        table = pa.concat_tables([_file_table(f) for f in (totals, breakdowns.iloc[b0:b1])])
        permutation = (
            None if order is None else order.permutation(totals, slice(g0, g1), slice(b0, b1))
        )
        if permutation is None:
            yield table.sort_by([(c, "ascending") for c in TABLE_COLUMNS[:5]])
        else:
            yield table.take(permutation)


class _RowOrder:
    """The file's row order as integers, so that each part is sorted as numbers, not text.

    The file is sorted by cell, resolution, nationality, dimension and category as
    texts. An H3 cell's 15 hex digits sort as its integer, and each text column sorts as
    the rank of its value among the column's sorted values (compared as UTF-8 bytes, as
    Arrow compares text). A part's permutation is then a ``numpy.lexsort`` of two
    integer keys, the cell and the rest packed in one integer, looked up from its rows'
    category codes: the same order (both sorts are stable). A 10M release's parts
    (3.8M rows) took 1.34-1.58 s to make with Arrow's sort of the texts, 0.95-1.13 s so.
    """

    def __init__(self, groups: pd.DataFrame, breakdowns: pd.DataFrame, cells: np.ndarray) -> None:
        # Per column, the rank of each breakdown category and of each total's value
        # (the totals' dimension and category are one value each).
        self._cells = cells  # of the breakdowns' cell categories
        self._breakdowns, self._totals = breakdowns, {}
        self._ranks: dict[str, np.ndarray] = {}
        for column, fixed in (("nationality", None), ("dimension", "total"), ("category", "")):
            categories = breakdowns[column].cat.categories
            values = set(categories)
            values |= set(groups[column].unique()) if fixed is None else {fixed}
            ranked = sorted(values, key=lambda value: value.encode())
            rank = {value: position for position, value in enumerate(ranked)}
            self._ranks[column] = np.array([rank[v] for v in categories], dtype=np.int64)
            self._totals[column] = (
                pd.Categorical(groups[column], categories=ranked).codes.astype(np.int64)
                if fixed is None
                else rank[fixed]
            )

    @classmethod
    def of(cls, groups: pd.DataFrame, breakdowns: pd.DataFrame) -> _RowOrder | None:
        """Return the order, or None when the breakdowns' keys cannot be integers.

        That is when a breakdown text column is not categorical (a release built in
        code) or holds a missing value, a text column has 65,535 values or more, or one
        of the breakdowns' cells is not 15 hex digits.
        """
        text = ("h3_cell", "nationality", "dimension", "category")
        if not all(isinstance(breakdowns[c].dtype, pd.CategoricalDtype) for c in text):
            return None
        if any(bool((breakdowns[c].cat.codes < 0).any()) for c in text):
            return None
        if groups["nationality"].isna().any():
            return None
        values = {c: len(breakdowns[c].cat.categories) for c in text[1:]}
        values["nationality"] += groups["nationality"].nunique()
        if max(values.values()) >= (1 << 16) - 1:  # ranks packed in 16 bits each
            return None
        cells = _cell_integers(breakdowns["h3_cell"].cat.categories)
        return None if cells is None else cls(groups, breakdowns, cells)

    def permutation(self, totals: pd.DataFrame, groups: slice, rows: slice) -> np.ndarray | None:
        """Return the order of a part: the totals (``groups`` of the groups), then ``rows``.

        None if one of the totals' cells is not 15 hex digits.
        """
        cells = _cell_integers(totals["h3_cell"])
        if cells is None:
            return None
        breakdowns, count = self._breakdowns, len(totals)

        def ranks(column: str) -> np.ndarray:
            of_totals = self._totals[column]
            if isinstance(of_totals, int):
                of_totals = np.full(count, of_totals)
            else:
                of_totals = of_totals[groups]
            return np.concatenate(
                [of_totals, self._ranks[column][breakdowns[column].array.codes[rows]]]
            )

        resolution = np.concatenate(
            [totals["resolution"].to_numpy(), breakdowns["resolution"].to_numpy()[rows]]
        ).astype(np.int64)
        # Resolution (0-15), then the nationality, dimension and category ranks (each
        # under 2^16: see of) in one 64-bit key.
        packed = (
            (resolution << 48)
            | (ranks("nationality") << 32)
            | (ranks("dimension") << 16)
            | ranks("category")
        )
        cells = np.concatenate([cells, self._cells[breakdowns["h3_cell"].array.codes[rows]]])
        return np.lexsort((packed, cells))


def _cell_integers(cells: pd.Series | pd.Index) -> np.ndarray | None:
    """Return H3 cells' texts as integers, or None if one is not 15 hex digits."""
    text = pl.Series(pa.array(cells, type=pa.string()))
    if (text.str.len_bytes() != 15).any():
        return None
    numbers = text.str.to_integer(base=16, dtype=pl.UInt64, strict=False)
    if numbers.null_count():
        return None
    return numbers.to_numpy()


def _file_table(frame: pd.DataFrame) -> pa.Table:
    """Return release rows as an Arrow table of the file's schema (categoricals as text)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return pa.table([table[f.name].cast(f.type) for f in FILE_SCHEMA], schema=FILE_SCHEMA)


def _cell_positions(cells: pd.Series, cuts: list[str]) -> list[int]:
    """Return where each cut (an H3 cell's text) falls in sorted cells, as a bisection would."""
    if isinstance(cells.dtype, pd.CategoricalDtype):  # sorted categories: codes sort as text
        where = cells.cat.categories.searchsorted(cuts)
        return cells.cat.codes.to_numpy().searchsorted(where).tolist()
    text = pa.array(cells)  # a bisection per cut (a scan per cut took 0.31 s at 10M)
    return [bisect_left(text, cut, key=_text) for cut in cuts]


def _text(scalar: pa.Scalar) -> str:
    return scalar.as_py()


def _in_cell_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a release frame in cell order (stably sorted if it is not already).

    A categorical cell column gets sorted categories first, so its codes sort as text.
    """
    cells = frame["h3_cell"]
    if isinstance(cells.dtype, pd.CategoricalDtype):
        categories = cells.cat.categories
        if not categories.is_monotonic_increasing:
            frame = frame.assign(h3_cell=cells.cat.reorder_categories(categories.sort_values()))
        codes = frame["h3_cell"].cat.codes.to_numpy()
        ordered = bool(np.all(codes[:-1] <= codes[1:]))
    else:
        text = pa.array(cells)
        ordered = len(text) < 2 or pc.all(pc.less_equal(text[:-1], text[1:])).as_py()
    return frame if ordered else frame.sort_values("h3_cell", kind="stable")


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
        # Text columns read as dictionaries (a national release repeats a few thousand
        # cells and a handful of codes over millions of rows): ten times faster to read,
        # and the release's breakdowns stay categorical in memory.
        arrow = pq.read_table(path, read_dictionary=STRING_COLUMNS)
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
    arrow = arrow.unify_dictionaries()  # one dictionary per column: codes identify values
    table = pl.from_arrow(arrow)  # converted once, for the hash and the invariants
    # The hash (a CSV of the table through SHA-256) runs on the other core while the
    # frames are built and the invariants checked; nothing is returned before both end.
    # An altered or forged file is said so, whatever invariant it also breaks.
    broken = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="release-hash") as pool:
        hashed = pool.submit(content_sha256, table)
        try:
            release = _release_of(arrow, metadata, path.name)
            del arrow  # the release's frames hold their own copies
            check_invariants(release, path.name, table)
        except InputError as exc:
            broken = exc
        content = hashed.result()
    del table
    if content != metadata.get("content_sha256"):
        raise InputError(
            f"{path.name}: the release content does not match its hash; the file was altered."
        )
    verification = verify(metadata, trusted, path.name)  # a forged signature is said next
    if broken is not None:
        raise broken
    check_fields(metadata, path.name)
    release.verification = verification
    release.standing = assess(metadata)
    give_back_memory()  # the reading's copies: a dashboard holds the release for hours
    return release


def _release_of(arrow: pa.Table, metadata: dict, name: str) -> Release:
    """Return :func:`release_from_table`, a table pandas cannot hold said in one line."""
    try:
        return release_from_table(arrow, metadata)
    except (ValueError, pa.ArrowException) as exc:  # e.g. a dictionary of repeated values
        raise InputError(f"{name}: the release table cannot be read ({exc}).") from exc


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
    text = [c for c in STRING_COLUMNS if not pa.types.is_dictionary(arrow.schema.field(c).type)]
    for column in text:
        index = arrow.schema.get_field_index(column)
        arrow = arrow.set_column(index, column, arrow[column].dictionary_encode())
    arrow = arrow.unify_dictionaries()
    totals = pc.equal(arrow["dimension"].cast(pa.string()), "total")
    groups = arrow.filter(totals).select(GROUP_COLUMNS)
    for column in ("h3_cell", "nationality"):  # groups (a tenth of the rows) as text
        index = groups.schema.get_field_index(column)
        groups = groups.set_column(index, column, groups[column].cast(pa.string()))
    rows = arrow.filter(pc.invert(totals))
    figures = pa.from_numpy_dtype(BREAKDOWN_FIGURES)  # 32-bit in memory, int64 in the file
    for column in ("cases", "persons"):
        index = rows.schema.get_field_index(column)
        rows = rows.set_column(index, column, rows[column].cast(figures))
    breakdowns = _categorical(rows.to_pandas())
    return Release(groups=groups.to_pandas(), breakdowns=breakdowns, metadata=metadata)


def _categorical(frame: pd.DataFrame) -> pd.DataFrame:
    """Return breakdown rows with their text as categoricals of sorted, used values.

    A national release's millions of breakdown rows repeat a few thousand cells and a
    handful of codes: as categoricals they take a third of the memory of text columns
    (:func:`geo.release_frames.sorted_categorical`), as a built release's breakdowns do.
    """
    for column in STRING_COLUMNS:
        values = frame[column].cat
        frame[column] = sorted_categorical(values.codes.to_numpy(), values.categories)
    return frame
