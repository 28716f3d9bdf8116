"""Identity fields → keyed Bloom-filter encodings (CLKs) and keyed block keys, in memory.

Names, birth dates and document numbers are read at ingest for one purpose: to count a
person registered by several sources (or on several days) once. They never reach the
store: each record's name and birth date become a 1024-bit Bloom filter (a CLK, as in
clkhash/anonlink: every name bigram and date part sets bits chosen by HMAC-SHA256 with
a key derived from the steward's key), the document number and a few name/date
combinations become keyed 64-bit block keys (SipHash-2-4, :func:`keyed64`), and the raw
columns are dropped here.

Normalisation before encoding: any script to Latin (``anyascii``: Cyrillic, Arabic,
Greek...), diacritics and case folded, punctuation and digits removed, a few common
transliteration variants folded (kh/h, ph/f, w/v, y/j/i, ou/u, ...), and doubled letters
ignored (their bigram is skipped). Name order does not matter: each name token is padded
and split into bigrams on its own, and the filter is a set of bigrams.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib
import threading

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
# Common transliteration variants, folded in one pass (longest first, final forms).
_FOLDS = {
    "dzh": "i",
    "tch": "ch",
    "sch": "sh",
    "zh": "i",
    "kh": "h",
    "ph": "f",
    "th": "t",
    "ck": "k",
    "ou": "u",
    "oo": "u",
    "ee": "i",
    "q": "k",
    "w": "v",
    "y": "i",
    "j": "i",
}


def load_kernels() -> threading.Thread:
    """Start loading the compiled linking kernels on a thread; return it (to join).

    Their first load in a process costs ~1.2 s (numba's import, then each kernel's
    machine code from the on-disk cache, :mod:`geo.linkage_kernels`). Begun as soon as
    the files are known to hold identity columns, it overlaps opening the store and
    reading and validating the first batches instead of stalling their encoding.
    """
    thread = threading.Thread(
        target=importlib.import_module, args=("geo.linkage_kernels",), daemon=True
    )
    thread.start()
    return thread


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
    """Return text in Latin letters (``anyascii``), each distinct non-ASCII character once.

    anyascii transliterates character by character, so one multi-pattern replacement of
    the few hundred distinct characters gives its result for every value at once.
    """
    from anyascii import anyascii

    odd = values.str.extract_all(r"[^\x00-\x7f]").explode().drop_nulls().unique().sort().to_list()
    if not odd:
        return values
    return values.str.replace_many(odd, [anyascii(c) for c in odd])


def normalised_names(frame: pl.DataFrame) -> pl.Series:
    """Return each record's name folded to ``' token token '`` (a-z, one space around each).

    The padding spaces make the bigrams of the whole string those of each token padded
    on its own: the bag of bigrams does not depend on the name order.
    """
    raw = frame.select(
        pl.concat_str(
            [_column(frame, n) for n in ("full_name", "given_name", "family_name")],
            separator=" ",
            ignore_nulls=True,
        )
    ).to_series()
    text = (
        _latin(raw)
        .str.to_lowercase()
        .str.replace_all(r"[^a-z]+", " ")
        .str.replace_many(list(_FOLDS), list(_FOLDS.values()))
        .str.replace_many(["ca", "co", "cu"], ["ka", "ko", "ku"])
        .str.strip_chars()
    )
    return (" " + text + " ").fill_null("  ")


def birth_parts(frame: pl.DataFrame) -> pl.DataFrame:
    """Return birth ``year``, ``month`` and ``day`` (Int32, null when unknown).

    From ``birth_date`` (ISO ``YYYY-MM-DD``, ``YYYY-MM``, or ``DD/MM/YYYY``, ``DD.MM.YYYY``)
    and, for the year, the validated ``birth_year`` when the date is missing. The dates
    are parsed once per distinct text (a registry holds a few tens of thousands).
    """
    dates = frame.select(_column(frame, "birth_date").alias("text"))
    distinct = dates.unique()
    iso = pl.col("text").str.extract_groups(r"^(\d{4})-(\d{1,2})(?:-(\d{1,2}))?")
    dmy = pl.col("text").str.extract_groups(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")

    def part(expr: pl.Expr) -> pl.Expr:
        return expr.cast(pl.Int32, strict=False)

    parsed = distinct.select(
        "text",
        pl.coalesce(part(iso.struct.field("1")), part(dmy.struct.field("3"))).alias("year"),
        pl.coalesce(part(iso.struct.field("2")), part(dmy.struct.field("2"))).alias("month"),
        pl.coalesce(part(iso.struct.field("3")), part(dmy.struct.field("1"))).alias("day"),
    )
    parts = dates.join(parsed, on="text", how="left", maintain_order="left", nulls_equal=True)
    year_column = IDENTITY_PREFIX + "birth_year"
    if year_column in frame.columns:
        birth_year = frame[year_column].cast(pl.Int32, strict=False)
        parts = parts.with_columns(pl.col("year").fill_null(birth_year))
    return parts.select("year", "month", "day")


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


_LETTERS = " abcdefghijklmnopqrstuvwxyz"


@functools.lru_cache(maxsize=4)
def _tables(secret: bytes) -> dict[str, np.ndarray]:
    """Return the masks of every name bigram and every year, month and day value."""
    bigrams = _token_masks([f"n{a}{b}" for a in _LETTERS for b in _LETTERS], secret)
    return {
        "n": bigrams,
        "y": _token_masks([f"y{v}" for v in range(_YEARS[0], _YEARS[1] + 1)], secret),
        "m": _token_masks([f"m{v}" for v in range(0, 100)], secret),
        "d": _token_masks([f"d{v}" for v in range(0, 100)], secret),
    }


_YEARS = (1800, 2200)


def _letter_codes(names: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return the names' characters as codes (a space 0, a–z 1–26) and each name's end.

    The codes of all names are concatenated; ``ends[i]`` is where name ``i`` ends in them.
    """
    code = np.zeros(256, dtype=np.int16)
    code[np.frombuffer(_LETTERS.encode(), dtype=np.uint8)] = np.arange(len(_LETTERS))
    data, offsets = _utf8_buffers(names)
    return code[data], offsets[1:]


def _initials(names: pl.Series) -> pl.Series:
    """Return each name's token initials, sorted and joined (``' bo al '`` → ``'ab'``)."""
    import pyarrow as pa

    data, ends = _letter_codes(names)
    starts = np.flatnonzero((data[:-1] == 0) & (data[1:] != 0)) + 1
    offsets = np.r_[0, np.searchsorted(starts, ends)].astype(np.int64)
    rows = np.repeat(np.arange(names.len(), dtype=np.int64), np.diff(offsets))
    keys = np.sort(rows * 32 + data[starts])
    letters = np.frombuffer(_LETTERS.encode(), dtype=np.uint8)[keys % 32]
    array = pa.LargeStringArray.from_buffers(
        names.len(), pa.py_buffer(offsets), pa.py_buffer(letters.tobytes())
    )
    return pl.from_arrow(array).cast(pl.String)


def clk_matrix(names: pl.Series, parts: pl.DataFrame, secret: bytes) -> np.ndarray:
    """Return the records' CLKs as an (n, CLK_WORDS) uint64 array.

    Names are bigrams of ``' token token '`` (as :func:`normalised_names` returns them; a
    bigram of one letter twice is skipped, so Mohammed and Mohamed agree); each of the
    27² bigrams and each year, month and day value is hashed once, then a record's
    filter is the OR of its tokens' masks: the bigrams are read straight from the names'
    bytes and OR-ed per record (:func:`geo.linkage_kernels.or_bigram_masks`).
    """
    from geo.linkage_kernels import or_bigram_masks, or_rows

    tables = _tables(secret)
    data, ends = _letter_codes(names)
    clks = or_bigram_masks(data, ends, tables["n"])
    for kind, column, low, high in (
        ("y", "year", *_YEARS),
        ("m", "month", 0, 99),
        ("d", "day", 0, 99),
    ):
        series = parts[column]
        index = (
            pl.select(pl.when(series.is_between(low, high)).then(series - low).fill_null(-1))
            .to_series()
            .to_numpy()
            .astype(np.int64)
        )
        or_rows(clks, tables[kind], index)
    return clks


def keyed64(texts: pl.Series, secret: bytes) -> pl.Series:
    """Return a keyed 64-bit hash (SipHash-2-4) of each text; null where the text is null.

    The key is derived from ``secret`` for this use alone. Runs on the column's UTF-8
    bytes (:func:`geo.linkage_kernels.siphash24`).
    """
    from geo.linkage_kernels import siphash24

    key = hmac.new(secret, b"keyed 64-bit hashes", hashlib.sha256).digest()
    data, offsets = _utf8_buffers(texts)
    hashes = siphash24(
        data,
        offsets,
        np.uint64(int.from_bytes(key[:8], "little")),
        np.uint64(int.from_bytes(key[8:16], "little")),
    )
    return pl.select(
        pl.when(texts.is_not_null()).then(pl.Series(hashes)).alias(texts.name)
    ).to_series()


def _utf8_buffers(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return a String column's UTF-8 bytes and its offsets (``n + 1``, from 0), unpadded."""
    import pyarrow as pa

    array = texts.cast(pl.String).to_arrow().cast(pa.large_string())
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[
        array.offset : array.offset + len(array) + 1
    ]
    data = np.frombuffer(array.buffers()[2] or b"", dtype=np.uint8)
    return data[offsets[0] : offsets[-1]], offsets - offsets[0]


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
        ``linkable`` (a name and a birth year or a document number), ``clk`` (the CLK, an
        Array of CLK_WORDS UInt64), ``block_0`` … ``block_5`` (UInt64 keyed block keys, the
        kind in the low 2 bits, null where a record has none: three name prefixes, the document
        number, the birth date, the birth date with the initials) and ``household_key``
        (UInt64, null without a household id); the
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
        extra["household_key"] = keyed64(
            frame.select(
                pl.when(_column(frame, "household_id") != "")
                .then(pl.lit("household\x1f") + household)
                .alias("household_key")
            ).to_series(),
            secret,
        )
    if not has_name or not frame.height:
        return frame.drop(identity).with_columns(**extra)
    names = normalised_names(frame)
    parts = birth_parts(frame)
    document = frame.select(
        _column(frame, "document_number").str.to_uppercase().str.replace_all(r"[^0-9A-Z]", "")
    ).to_series()
    clks = clk_matrix(names, parts, secret)
    tokens = names.str.strip_chars().str.split(" ").list.filter(pl.element() != "")
    work = pl.DataFrame(
        {
            "nat": frame["nationality"],
            "doc": document.replace("", None),
            "year": parts["year"].cast(pl.String),
            "date": parts.select(
                pl.when(pl.col("day").is_not_null() & pl.col("month").is_not_null()).then(
                    pl.format("{}-{}-{}", "year", "month", "day")
                )
            ).to_series(),
            "initials": _initials(names),
            **{f"p{k}": tokens.list.get(k, null_on_oob=True).str.slice(0, 3) for k in range(3)},
        }
    )
    # The first three names' prefixes, a repeated one once.
    prefixes = [
        pl.when(~pl.any_horizontal([pl.col(f"p{k}") == pl.col(f"p{j}") for j in range(k)]))
        .then(pl.col(f"p{k}"))
        .otherwise(None)
        if k
        else pl.col("p0")
        for k in range(3)
    ]
    texts = work.select(
        *(
            pl.concat_str(pl.lit("name"), "nat", "year", p, separator="\x1f").alias(f"name{k}")
            for k, p in enumerate(prefixes)
        ),
        (pl.lit("doc\x1f") + pl.col("doc")).alias("doc"),
        pl.concat_str(pl.lit("date"), "nat", "date", separator="\x1f").alias("date"),
        pl.concat_str(pl.lit("init"), "date", "initials", separator="\x1f").alias("init"),
    )
    kinds = [BLOCK_NAME] * 3 + [BLOCK_DOCUMENT, BLOCK_DATE, BLOCK_INITIALS]
    blocks = {
        f"block_{i}": _block_keys(texts[column], kind, secret)
        for i, (column, kind) in enumerate(zip(texts.columns, kinds, strict=True))
    }
    linkable = (tokens.list.len() > 0) & (parts["year"].is_not_null() | work["doc"].is_not_null())
    return (
        frame.drop(identity)
        .with_columns(**extra)
        .with_columns(linkable.alias("linkable"), pl.Series("clk", clks), **blocks)
    )


BLOCK_COLUMNS = tuple(f"block_{i}" for i in range(6))


def _block_keys(texts: pl.Series, kind: int, secret: bytes) -> pl.Series:
    """Return the keyed 64-bit block keys of ``texts`` with the kind in the low 2 bits.

    Every value is hashed, repeated ones too: that is cheaper than finding the distinct
    ones.
    """
    return keyed64(texts, secret) & ~np.uint64(3) | np.uint64(kind)
