"""Identity fields → keyed Bloom-filter encodings (CLKs) and keyed block keys, in memory.

Names, birth dates and document numbers are read at ingest for one purpose: to count a
person registered by several sources (or on several days) once. They never reach the
store: each record's name and birth date become a 1024-bit Bloom filter (a CLK, as in
clkhash/anonlink: every name bigram and date part sets bits chosen by HMAC-SHA256 with
a key derived from the steward's key), the document number and a few name/date
combinations become keyed 64-bit block keys, and the raw columns are dropped here.

Normalisation before encoding: any script to Latin (``anyascii``: Cyrillic, Arabic,
Greek...), diacritics and case folded, punctuation and digits removed, a few common
transliteration variants folded (kh/h, ph/f, w/v, y/j/i, ou/u, ...), and doubled letters
ignored (their bigram is skipped). Name order does not matter: each name token is padded
and split into bigrams on its own, and the filter is a set of bigrams.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import polars as pl

IDENTITY_PREFIX = "ident__"
# Identity columns read for linking only (folded header names); never stored.
IDENTITY_ALIASES = {
    "full_name": ("name", "full_name", "names", "person_name", "applicant_name"),
    "given_name": ("given_name", "given_names", "first_name", "first_names", "forename"),
    "family_name": ("family_name", "surname", "last_name", "lastname"),
    "birth_date": ("birth_date", "date_of_birth", "dob", "birthdate", "born"),
    "document_number": (
        "passport_no",
        "passport_number",
        "passport",
        "document_number",
        "document_no",
        "doc_no",
        "travel_document",
        "id_number",
        "national_id",
    ),
    "household_id": ("household_id", "household", "family_id", "hh_id"),
    "principal_record_id": (
        "principal_record_id",
        "principal_id",
        "principal",
        "head_of_household_id",
        "companion_of",
    ),
}
CLK_BITS = 1024
CLK_WORDS = CLK_BITS // 64
# Bits set per token of each kind: name bigram (n), birth year (y), month (m), day (d).
BITS_PER_TOKEN = {"n": 20, "y": 30, "m": 30, "d": 30}
# Block kinds (the low 2 bits of a block key): nationality+year+name prefix, document
# number, nationality+birth date, birth date+name initials.
BLOCK_NAME, BLOCK_DOCUMENT, BLOCK_DATE, BLOCK_INITIALS = 0, 1, 2, 3
_FOLDS = (
    ("dzh", "j"),
    ("tch", "ch"),
    ("sch", "sh"),
    ("zh", "j"),
    ("kh", "h"),
    ("ph", "f"),
    ("th", "t"),
    ("ck", "k"),
    ("q", "k"),
    ("w", "v"),
    ("ou", "u"),
    ("oo", "u"),
    ("ee", "i"),
    ("y", "i"),
    ("j", "i"),
)


def identity_map(columns: list[str], fold) -> dict[str, str]:
    """Return identity name → the file's header, for the headers that hold identity fields.

    ``fold`` is the reader's header folding (``'Date of Birth'`` → ``date_of_birth``).
    """
    by_alias = {alias: name for name, aliases in IDENTITY_ALIASES.items() for alias in aliases}
    found: dict[str, str] = {}
    for column in columns:
        name = by_alias.get(fold(column))
        if name and name not in found:
            found[name] = column
    return found


def _column(frame: pl.DataFrame, name: str) -> pl.Expr:
    column = IDENTITY_PREFIX + name
    if column in frame.columns:
        return pl.col(column).cast(pl.String).str.strip_chars()
    return pl.repeat(None, pl.len(), dtype=pl.String)


def _latin(values: pl.Series) -> pl.Series:
    """Return text in Latin letters: non-ASCII values transliterated once per distinct value."""
    from anyascii import anyascii

    odd = values.filter(values.str.contains(r"[^\x00-\x7f]")).unique().drop_nulls()
    if not odd.len():
        return values
    return values.replace(dict(zip(odd.to_list(), map(anyascii, odd.to_list()), strict=True)))


def normalised_names(frame: pl.DataFrame) -> pl.Series:
    """Return each record's name as a list of folded tokens (empty list for none)."""
    raw = frame.select(
        pl.concat_str(
            [_column(frame, n) for n in ("full_name", "given_name", "family_name")],
            separator=" ",
            ignore_nulls=True,
        )
    ).to_series()
    text = _latin(raw).str.to_lowercase().str.replace_all(r"[^a-z]+", " ")
    for old, new in _FOLDS:
        text = text.str.replace_all(old, new, literal=True)
    text = text.str.replace_all(r"c([aou])", "k$1")
    return (
        text.str.split(" ")
        .list.eval(pl.element().filter(pl.element() != ""))
        .list.unique(maintain_order=True)
    )


def birth_parts(frame: pl.DataFrame) -> pl.DataFrame:
    """Return birth ``year``, ``month`` and ``day`` (Int32, null when unknown).

    From ``birth_date`` (ISO ``YYYY-MM-DD``, ``YYYY-MM``, or ``DD/MM/YYYY``, ``DD.MM.YYYY``)
    and, for the year, the validated ``birth_year`` when the date is missing.
    """
    date = _column(frame, "birth_date")
    iso = date.str.extract_groups(r"^(\d{4})-(\d{1,2})(?:-(\d{1,2}))?")
    dmy = date.str.extract_groups(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")
    year_column = IDENTITY_PREFIX + "birth_year"
    birth_year = (
        pl.col(year_column).cast(pl.Int32, strict=False)
        if year_column in frame.columns
        else pl.lit(None, dtype=pl.Int32)
    )

    def part(expr: pl.Expr) -> pl.Expr:
        return expr.cast(pl.Int32, strict=False)

    return frame.select(
        pl.coalesce(part(iso.struct.field("1")), part(dmy.struct.field("3")), birth_year).alias(
            "year"
        ),
        pl.coalesce(part(iso.struct.field("2")), part(dmy.struct.field("2"))).alias("month"),
        pl.coalesce(part(iso.struct.field("3")), part(dmy.struct.field("1"))).alias("day"),
    )


def _token_masks(tokens: list[str], secret: bytes) -> np.ndarray:
    """Return each token's bits as CLK_WORDS uint64 words (double hashing, HMAC-SHA256)."""
    masks = np.zeros((len(tokens), CLK_WORDS), dtype=np.uint64)
    for row, token in enumerate(tokens):
        digest = hmac.new(secret, token.encode(), hashlib.sha256).digest()
        first, step = int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:16], "big") | 1
        for i in range(BITS_PER_TOKEN[token[0]]):
            bit = (first + i * step) % CLK_BITS
            masks[row, bit // 64] |= np.uint64(1 << (bit % 64))
    return masks


def clk_matrix(names: pl.Series, parts: pl.DataFrame, secret: bytes) -> np.ndarray:
    """Return the records' CLKs as an (n, CLK_WORDS) uint64 array.

    Each distinct token is hashed once (names share few bigrams), then each record's
    filter is the OR of its tokens' masks, in chunks to bound memory.
    """
    n = names.len()
    padded = names.list.eval("_" + pl.element() + "_")
    bigrams = (
        pl.DataFrame({"idx": np.arange(n, dtype=np.int64), "token": padded})
        .explode("token")
        .drop_nulls()
        .with_columns(pl.int_ranges(0, pl.col("token").str.len_chars() - 1).alias("at"))
        .explode("at")
        .drop_nulls()
        .select("idx", pl.col("token").str.slice(pl.col("at"), 2).alias("token"))
        .filter(pl.col("token").str.slice(0, 1) != pl.col("token").str.slice(1, 1))
        .select("idx", ("n" + pl.col("token")).alias("token"))
    )
    dates = [
        parts.select(
            pl.int_range(0, n, dtype=pl.Int64).alias("idx"),
            (pl.lit(kind) + pl.col(column).cast(pl.String)).alias("token"),
        ).drop_nulls()
        for kind, column in (("y", "year"), ("m", "month"), ("d", "day"))
    ]
    pairs = pl.concat([bigrams, *dates]).unique().sort("idx")
    vocabulary = pairs["token"].unique().sort()
    masks = _token_masks(vocabulary.to_list(), secret)
    ids = (
        pairs.join(
            pl.DataFrame({"token": vocabulary, "id": np.arange(vocabulary.len())}),
            on="token",
        )
        .sort("idx")
        .select("idx", "id")
    )
    idx, token_id = ids["idx"].to_numpy(), ids["id"].to_numpy()
    clks = np.zeros((n, CLK_WORDS), dtype=np.uint64)
    chunk = 200_000
    for start in range(0, idx.size, chunk):
        stop = min(start + chunk, idx.size)
        part_idx = idx[start:stop]
        starts = np.flatnonzero(np.r_[True, part_idx[1:] != part_idx[:-1]])
        reduced = np.bitwise_or.reduceat(masks[token_id[start:stop]], starts, axis=0)
        clks[part_idx[starts]] |= reduced
    return clks


def _keyed64(expr: pl.Expr, secret: bytes) -> pl.Expr:
    """Return a keyed 64-bit hash (HMAC-SHA256, first 8 bytes) of a String expression."""
    import polars_hash  # noqa: F401  (registers the ``chash`` namespace)

    return (
        expr.chash.hmac_sha256(key=secret.hex())
        .str.slice(0, 16)
        .str.to_integer(base=16, dtype=pl.UInt64)
    )


def encode_identities(frame: pl.DataFrame, secret: bytes) -> pl.DataFrame:
    """Replace a batch's identity columns by keyed encodings (nothing raw is left).

    Parameters
    ----------
    frame
        Accepted records with ``source``, ``nationality`` and the identity columns
        (``ident__``-prefixed) the file holds.
    secret
        The identity encodings' secret (from :func:`geo.io.steward_key.derived`).

    Returns
    -------
    polars.DataFrame
        ``frame`` without identity columns; when the file has a name column, plus
        ``linkable`` (a name and a birth year or a document number), ``clk`` (Binary,
        128 bytes), ``blocks`` (list of UInt64 keyed block keys, the kind in the low 2
        bits) and ``household_key`` (UInt64, null without a household id); the
        principal's record id, when given, stays as ``principal_record_id`` for the
        record keys' HMAC (:func:`geo.hashing.record_keys`) and nothing else.
    """
    identity = [c for c in frame.columns if c.startswith(IDENTITY_PREFIX)]
    has_name = any(
        IDENTITY_PREFIX + n in frame.columns for n in ("full_name", "given_name", "family_name")
    )
    extra: dict[str, pl.Series] = {}
    if IDENTITY_PREFIX + "principal_record_id" in frame.columns:
        extra["principal_record_id"] = frame.select(
            _column(frame, "principal_record_id").replace("", None)
        ).to_series()
    if IDENTITY_PREFIX + "household_id" in frame.columns:
        household = pl.concat_str("source", pl.lit("\x1f"), _column(frame, "household_id"))
        extra["household_key"] = frame.select(
            pl.when(_column(frame, "household_id") != "")
            .then(_keyed64(pl.lit("household\x1f") + household, secret))
            .alias("household_key")
        ).to_series()
    if not has_name or not frame.height:
        return frame.drop(identity).with_columns(**extra)
    names = normalised_names(frame)
    parts = birth_parts(frame)
    document = frame.select(
        _column(frame, "document_number").str.to_uppercase().str.replace_all(r"[^0-9A-Z]", "")
    ).to_series()
    clks = clk_matrix(names, parts, secret)
    work = pl.DataFrame(
        {
            "names": names,
            "nat": frame["nationality"],
            "doc": document.replace("", None),
            "year": parts["year"],
            "date": parts.select(
                pl.when(pl.col("day").is_not_null() & pl.col("month").is_not_null()).then(
                    pl.format("{}-{}-{}", "year", "month", "day")
                )
            ).to_series(),
        }
    )
    prefixes = pl.col("names").list.head(3).list.eval(pl.element().str.slice(0, 3))
    initials = pl.col("names").list.eval(pl.element().str.slice(0, 1)).list.sort().list.join("")
    year = pl.col("year").cast(pl.String)
    kinds = {
        BLOCK_DOCUMENT: pl.lit("doc\x1f") + pl.col("doc"),
        BLOCK_DATE: pl.concat_str(pl.lit("date"), "nat", "date", separator="\x1f"),
        BLOCK_INITIALS: pl.concat_str(pl.lit("init"), "date", initials, separator="\x1f"),
    }
    name_blocks = (
        work.with_row_index("i")
        .select("i", "nat", year.alias("y"), prefixes.alias("p"))
        .explode("p")
        .select(
            "i",
            (
                _keyed64(pl.concat_str(pl.lit("name"), "nat", "y", "p", separator="\x1f"), secret)
                & ~pl.lit(3, dtype=pl.UInt64)
                | pl.lit(BLOCK_NAME, dtype=pl.UInt64)
            ).alias("b"),
        )
    )
    other_blocks = [
        work.with_row_index("i").select(
            "i",
            (
                _keyed64(expr, secret) & ~pl.lit(3, dtype=pl.UInt64) | pl.lit(kind, dtype=pl.UInt64)
            ).alias("b"),
        )
        for kind, expr in kinds.items()
    ]
    block_lists = (
        pl.concat([name_blocks, *other_blocks])
        .drop_nulls()
        .group_by("i")
        .agg(pl.col("b").unique())
        .sort("i")
    )
    linkable = (names.list.len() > 0) & (parts["year"].is_not_null() | work["doc"].is_not_null())
    return (
        frame.drop(identity)
        .with_columns(**extra)
        .with_row_index("_i")
        .join(block_lists.rename({"i": "_i", "b": "blocks"}), on="_i", how="left")
        .sort("_i")
        .drop("_i")
        .with_columns(
            linkable.alias("linkable"),
            _as_binary(clks).alias("clk"),
        )
    )


def _as_binary(clks: np.ndarray) -> pl.Series:
    """Return the (n, CLK_WORDS) array as a Binary series of 128-byte values."""
    import pyarrow as pa

    flat = np.ascontiguousarray(clks.astype("<u8")).view(np.uint8)
    array = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(CLK_BITS // 8), len(clks), [None, pa.py_buffer(flat.tobytes())]
    )
    return pl.from_arrow(array.cast(pa.binary()))
