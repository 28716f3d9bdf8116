"""The vectorised pieces of linking against plain per-record references.

The CLKs and block keys are stored: a store made by an earlier version must keep
linking with files ingested now, so the encodings must equal, bit for bit, what the
definitions say (HMAC-SHA256 masks per bigram and date part, keyed block strings).
Candidate pairs and the merging of persons are checked against brute force.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools

import numpy as np
import polars as pl
import pytest

from geo import identity, linkage

SECRET = b"s" * 32
NAMES = [
    "Oksana Shevchenko",
    "Шевченко Оксана",
    "Mohamed Benali",
    "Benali Mohammed",
    "Ana Ana Maria",  # a repeated token: its name-prefix block once
    "",  # no name at all
    None,
    "Jean-Luc  O'Neill",
    "Żaneta Łukasik",
    "Q",
]
BIRTHS = [
    "1990-05-17",
    "1990-05",
    "03.02.1984",
    "1984-02-03",
    "1984-2-3",
    "17/05/1990",
    "x",
    "",
    None,
    "2001-07-30",
]
DOCUMENTS = ["PX1", "px-1", None, "", "A 12", None, "B7", None, "C8", "D9"]


def frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "source": ["consular"] * len(NAMES),
            "nationality": ["ROU", "UKR", "MAR", "MAR", "ROU", "ROU", "ALB", "IRL", "POL", "IND"],
            "ident__full_name": NAMES,
            "ident__birth_date": BIRTHS,
            "ident__document_number": DOCUMENTS,
        },
        schema_overrides={"ident__full_name": pl.String, "ident__birth_date": pl.String},
    )


def reference_clk(name: str, year, month, day) -> np.ndarray:
    """One record's CLK from its definition: the OR of its tokens' masks."""
    tokens = {f"n{a}{b}" for a, b in itertools.pairwise(name) if a != b}
    tokens |= {f"{kind}{v}" for kind, v in (("y", year), ("m", month), ("d", day)) if v is not None}
    masks = identity._token_masks(sorted(tokens), SECRET)
    return np.bitwise_or.reduce(masks, axis=0) if len(tokens) else np.zeros(16, np.uint64)


def siphash24(key: bytes, message: bytes) -> int:
    """SipHash-2-4 as its reference implementation defines it (plain Python integers)."""
    mask = (1 << 64) - 1

    def rotate(x, b):
        return ((x << b) | (x >> (64 - b))) & mask

    def rounds(v, count):
        for _ in range(count):
            v[0] = (v[0] + v[1]) & mask
            v[1] = rotate(v[1], 13) ^ v[0]
            v[0] = rotate(v[0], 32)
            v[2] = (v[2] + v[3]) & mask
            v[3] = rotate(v[3], 16) ^ v[2]
            v[0] = (v[0] + v[3]) & mask
            v[3] = rotate(v[3], 21) ^ v[0]
            v[2] = (v[2] + v[1]) & mask
            v[1] = rotate(v[1], 17) ^ v[2]
            v[2] = rotate(v[2], 32)

    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:16], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D]
    v += [k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]
    tail = len(message) % 8
    padded = message[: len(message) - tail] + message[len(message) - tail :].ljust(7, b"\0")
    padded += bytes([len(message) & 0xFF])
    for at in range(0, len(padded), 8):
        word = int.from_bytes(padded[at : at + 8], "little")
        v[3] ^= word
        rounds(v, 2)
        v[0] ^= word
    v[2] ^= 0xFF
    rounds(v, 4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def test_siphash_gives_the_reference_vectors():
    # The SipHash paper's vectors: key 00..0f, message 00..(n-1), n = 0 and 15.
    key = bytes(range(16))
    assert siphash24(key, b"") == 0x726FDB47DD0E0E31
    assert siphash24(key, bytes(range(15))) == 0xA129CA6149BE45E5
    texts = pl.Series(["", None, "name\x1fMLI\x1f1990\x1fmoh", "ж" * 9, "x" * 70])
    hashed = identity.keyed64(texts, SECRET).to_list()
    subkey = hmac.new(SECRET, b"keyed 64-bit hashes", hashlib.sha256).digest()
    assert hashed == [None if t is None else siphash24(subkey, t.encode()) for t in texts]
    # A column in several chunks, or a slice, hashes each value as on its own.
    chunked = pl.concat([texts.slice(2), texts.slice(0, 3)], rechunk=False)
    assert chunked.n_chunks() == 2
    assert identity.keyed64(chunked, SECRET).to_list() == hashed[2:] + hashed[:3]


def keyed(text: str, kind: int) -> int:
    subkey = hmac.new(SECRET, b"keyed 64-bit hashes", hashlib.sha256).digest()
    return siphash24(subkey, text.encode()) & ~3 | kind


def test_clks_equal_the_or_of_each_records_token_masks():
    data = frame()
    names = identity.normalised_names(data)
    parts = identity.birth_parts(data)
    clks = identity.clk_matrix(names, parts, SECRET)
    for i, name in enumerate(names):
        year, month, day = parts.row(i)
        assert (clks[i] == reference_clk(name, year, month, day)).all(), NAMES[i]
    # The name order and the date's format do not matter; a doubled letter is one letter.
    assert (clks[2] == clks[3]).all()


def test_block_keys_are_the_keyed_strings_of_each_kind():
    data = frame()
    encoded = identity.encode_identities(data, SECRET)
    names = identity.normalised_names(data)
    parts = identity.birth_parts(data)
    for i in range(data.height):
        tokens = names[i].split()
        year, month, day = parts.row(i)
        nat = data["nationality"][i]
        document = "".join(c for c in (DOCUMENTS[i] or "").upper() if c.isalnum())
        date = f"{year}-{month}-{day}" if month is not None and day is not None else None
        expected = {
            keyed(f"name\x1f{nat}\x1f{year}\x1f{prefix}", identity.BLOCK_NAME)
            for prefix in {t[:3] for t in tokens[:3]}
            if year is not None
        }
        if document:
            expected.add(keyed(f"doc\x1f{document}", identity.BLOCK_DOCUMENT))
        if date:
            expected.add(keyed(f"date\x1f{nat}\x1f{date}", identity.BLOCK_DATE))
            initials = "".join(sorted(t[0] for t in tokens))
            expected.add(keyed(f"init\x1f{date}\x1f{initials}", identity.BLOCK_INITIALS))
        got = [v for v in encoded.select(identity.BLOCK_COLUMNS).row(i) if v is not None]
        assert len(got) == len(set(got)), NAMES[i]  # each block once per record
        assert set(got) == expected, NAMES[i]
    assert encoded["linkable"].to_list() == [
        bool(names[i].split()) and (parts["year"][i] is not None or bool(DOCUMENTS[i]))
        for i in range(data.height)
    ]
    assert not {c for c in encoded.columns if c.startswith(identity.IDENTITY_PREFIX)}


def brute_force_pairs(node, block, is_new, clks, max_block):
    """Return {(a, c): (dice, same_document)} over every block, pair by pair."""
    members: dict[int, list[int]] = {}
    for n, b in zip(node, block, strict=True):
        members.setdefault(int(b), []).append(int(n))
    expected: dict[tuple[int, int], tuple[float, bool]] = {}
    for b, group in members.items():
        if len(group) > max_block:
            continue
        for a, c in itertools.combinations(sorted(group), 2):
            if is_new[a] or is_new[c]:
                bits = [int(x).bit_count() for x in (*clks[a], *clks[c])]
                both = sum(int(x & y).bit_count() for x, y in zip(clks[a], clks[c], strict=True))
                dice = 2 * both / sum(bits) if sum(bits) else 0.0
                document = expected.get((a, c), (0.0, False))[1] or (b & 3) == 1
                expected[a, c] = (dice, document)
    return expected, sum(len(g) > max_block for g in members.values())


@pytest.mark.parametrize("seed", range(5))
def test_candidate_pairs_equal_brute_force(seed):
    """Each pair sharing a comparable block is scored once, with its Dice and document flag."""
    rng = np.random.default_rng(seed)
    nodes = 60
    drawn = zip(rng.integers(0, nodes, 400), rng.integers(0, 40, 400), strict=True)
    rows = {(int(n), int(b)) for n, b in drawn}
    node = np.array([n for n, _ in rows])
    block = np.array([(b << 2) | (b % 4) for _, b in rows], dtype=np.uint64)
    is_new = rng.random(nodes) < 0.4
    clks = rng.integers(0, 2**63, (nodes, 16), dtype=np.uint64) & rng.integers(
        0, 2**63, (nodes, 16), dtype=np.uint64
    )
    # Half the records are noisy copies of the other half (high Dice), the rest random.
    noise = [rng.integers(0, 2**63, (30, 16), dtype=np.uint64) for _ in range(3)]
    clks[30:] = clks[:30] ^ (noise[0] & noise[1] & noise[2])
    clks[3] = 0  # an empty CLK scores 0
    max_block = 12
    expected, too_large = brute_force_pairs(node, block, is_new, clks, max_block)
    left, right, score, same_document, compared, skipped = linkage.scored_pairs(
        node, block, is_new, clks, max_block, 0.0
    )
    assert skipped == too_large
    assert compared == left.size == len(expected)
    pairs = zip(left.tolist(), right.tolist(), strict=True)
    got = dict(zip(pairs, zip(score.tolist(), same_document.tolist(), strict=True), strict=True))
    assert got.keys() == expected.keys()
    for pair, (dice, document) in expected.items():
        assert got[pair] == (pytest.approx(dice), document)
    # Linked: Dice at the threshold, or the lower one with a shared document.
    left, right, compared, _ = linkage.linked_pairs(node, block, is_new, clks, max_block, 0.85)
    linked = {
        pair
        for pair, (dice, document) in expected.items()
        if dice >= 0.85 or (document and dice >= linkage.LINK_THRESHOLD_SAME_DOCUMENT)
    }
    assert compared == len(expected)
    assert set(zip(left.tolist(), right.tolist(), strict=True)) == linked
    assert 0 < len(linked) < len(expected)


@pytest.mark.parametrize("seed", range(5))
def test_merged_persons_take_the_smallest_id_of_their_component(seed):
    rng = np.random.default_rng(seed)
    persons = 200
    left, right = rng.integers(0, persons, 150), rng.integers(0, persons, 150)
    parent = list(range(persons))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in zip(left, right, strict=True):
        ra, rb = find(int(a)), find(int(b))
        parent[max(ra, rb)] = min(ra, rb)
    assert linkage.merged_persons(persons, left, right).tolist() == [
        find(p) for p in range(persons)
    ]
