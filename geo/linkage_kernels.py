"""The compiled inner loops of linking: keyed hashes, CLKs, comparing the records of each block.

They walk millions of short, irregular pieces (a string's bytes, a name's bigrams, a
block's pairs) where numpy would materialise an intermediate array per step; here, in
numba, each record's data is read once and stays in cache.

- :func:`siphash24`: the keyed 64-bit hash of block and household keys, on an Arrow
  string column's bytes (HMAC-SHA256 per value through hex text: 2 s per 1M records).
- :func:`or_bigram_masks`, :func:`or_rows`: a CLK is the OR of its name bigrams' and
  birth date parts' masks (:func:`geo.identity.clk_matrix`).
- :func:`compare_blocks`: candidate pairs (two records sharing a block key, at least
  one of them new) scored by Dice in one pass over the blocks; a block's members are a
  few dozen records, so their CLKs are copied together once while every pair is scored,
  and a pair that shares several blocks is scored only at the first of them it can be
  compared in. Members are random rows of a 128 MB CLK array (at 1M records): their
  rows are prefetched a few dozen ahead (:func:`_prefetch`), which halved the time.

numba is imported only when a file carries identity columns (a plain ingest and every
other command never pay for it); the compiled code is cached beside this module.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic


@intrinsic
def _popcount(typingctx, word):
    """Return the number of set bits of a uint64 (one ``popcnt`` instruction)."""
    signature = types.uint64(types.uint64)

    def codegen(context, builder, sig, args):
        return builder.ctpop(args[0])

    return signature, codegen


@intrinsic
def _prefetch(typingctx, array, row, column):
    """Ask the CPU to fetch ``array[row, column]``'s cache line (``llvm.prefetch``), no wait.

    The comparison reads a few rows of large arrays per record, at random: fetching
    the rows of the records a few dozen places ahead overlaps those memory reads.
    """
    signature = types.void(array, row, column)

    def codegen(context, builder, sig, args):
        kind = sig.args[0]
        view = context.make_array(kind)(context, builder, args[0])
        pointer = cgutils.get_item_pointer2(
            context,
            builder,
            data=view.data,
            shape=cgutils.unpack_tuple(builder, view.shape),
            strides=cgutils.unpack_tuple(builder, view.strides),
            layout=kind.layout,
            inds=[args[1], args[2]],
            wraparound=False,
        )
        word = ir.IntType(32)
        pointer = builder.bitcast(pointer, ir.IntType(8).as_pointer())  # one declaration
        function = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [pointer.type, word, word, word]),
            "llvm.prefetch.p0",
        )
        builder.call(function, [pointer, word(0), word(3), word(1)])  # read, keep, data
        return context.get_dummy_value()

    return signature, codegen


_AHEAD = 32  # rows fetched ahead of the one being copied


def _array(dtype: types.Type, ndim: int = 1, readonly: bool = True) -> types.Array:
    """Return the numba type of a C-contiguous array (read-only accepts writable ones too).

    The kernels below are compiled for these types when this module is imported (from
    the on-disk cache after the first time), so importing it on a thread early loads all
    of them at once (:func:`geo.identity.load_kernels`) and no call compiles again.
    """
    return types.Array(dtype, ndim, "C", readonly=readonly)


@njit(cache=True, nogil=True, inline="always")
def _fetch_row(members: np.ndarray, row: int, clks: np.ndarray, nodes: np.ndarray) -> None:
    """Prefetch the CLK (two cache lines) and the node row of ``members[row]``."""
    if row < members.size:
        n = members[row]
        _prefetch(clks, n, 0)
        _prefetch(clks, n, clks.shape[1] - 1)
        _prefetch(nodes, n, 0)
        _prefetch(nodes, n, nodes.shape[1] - 1)


@njit(cache=True, nogil=True, inline="always")
def _share_one(first: np.ndarray, first_count: int, second: np.ndarray, second_count: int) -> bool:
    """Return whether the first ``*_count`` entries of two block lists share a value."""
    for x in range(first_count):
        for y in range(second_count):
            if first[x] == second[y]:
                return True
    return False


@njit(cache=True, nogil=True)
def _share_document(nodes: np.ndarray, a: int, c: int) -> bool:
    """Return whether nodes ``a`` and ``c`` share a comparable document-number block."""
    for x in range(nodes[a, 1]):
        flagged = nodes[a, 2 + x]
        if flagged & 3 == 3:
            for y in range(nodes[c, 1]):
                if nodes[c, 2 + y] == flagged:
                    return True
    return False


@njit(cache=True, nogil=True, inline="always")
def _rotate(x: np.uint64, bits: int) -> np.uint64:
    return (x << np.uint64(bits)) | (x >> np.uint64(64 - bits))


@njit(cache=True, nogil=True, inline="always")
def _sip_round(v0: np.uint64, v1: np.uint64, v2: np.uint64, v3: np.uint64) -> tuple:
    v0 += v1
    v1 = _rotate(v1, 13) ^ v0
    v0 = _rotate(v0, 32)
    v2 += v3
    v3 = _rotate(v3, 16) ^ v2
    v0 += v3
    v3 = _rotate(v3, 21) ^ v0
    v2 += v1
    v1 = _rotate(v1, 17) ^ v2
    v2 = _rotate(v2, 32)
    return v0, v1, v2, v3


@njit(
    [
        (
            _array(types.int64),
            _array(types.int64),
            _array(types.boolean),
            _array(types.int32, 2),
            _array(types.uint64, 2),
            types.float64,
            types.int64,
            types.int64,
            types.int64,
        )
    ],
    cache=True,
    nogil=True,
)
def compare_blocks(
    starts: np.ndarray,
    members: np.ndarray,
    comparable: np.ndarray,
    nodes: np.ndarray,
    clks: np.ndarray,
    min_score: float,
    first_block: int,
    last_block: int,
    capacity: int,
) -> tuple:
    """Score every candidate pair once; keep those with a Dice of at least ``min_score``.

    The rows (record, block) are sorted by block: block ``b``'s members are
    ``members[starts[b]:starts[b + 1]]`` (dense node ids into ``clks`` and ``nodes``);
    node ``n``'s row of ``nodes`` is (new or not, how many blocks, its flagged blocks
    ascending) (:func:`node_rows`). Only blocks marked ``comparable`` are compared, from
    ``first_block`` until ``last_block`` (excluded) or until the next block's pairs could
    overflow the ``capacity`` kept pairs (at least one block's worth). A pair sharing
    several blocks is scored at the first comparable one. Returns (left, right, score,
    same_document, compared, next_block): the kept pairs (left < right), their Dice,
    whether they share a comparable document block, how many distinct pairs were
    scored, and the block to go on from (``last_block`` when done).
    """
    words = clks.shape[1]
    width = nodes.shape[1] - 2
    largest = 2
    for b in range(first_block, last_block):
        if comparable[b]:
            largest = max(largest, starts[b + 1] - starts[b])
    # One block's members, copied together so that its pairs are scored from cache: their
    # CLKs and, per member, its comparable blocks that come before this one.
    local_clk = np.empty((largest, words), dtype=np.uint64)
    local_bits = np.empty(largest, dtype=np.int64)
    local_before = np.empty((largest, max(width, 1)), dtype=np.int64)
    local_count = np.empty(largest, dtype=np.int64)
    local_new = np.empty(largest, dtype=np.bool_)
    left = np.empty(capacity, dtype=np.int64)
    right = np.empty(capacity, dtype=np.int64)
    score = np.empty(capacity, dtype=np.float64)
    document = np.empty(capacity, dtype=np.bool_)
    kept = 0
    compared = 0
    fetched = starts[first_block]  # rows prefetched so far
    b = first_block
    while b < last_block:
        first_row, size = starts[b], starts[b + 1] - starts[b]
        b += 1
        if size < 2 or not comparable[b - 1]:
            continue
        if kept + size * (size - 1) // 2 > capacity:
            b -= 1  # no room for this block's pairs: the caller goes on from it
            break
        while fetched < first_row + size + _AHEAD:
            _fetch_row(members, fetched, clks, nodes)
            fetched += 1
        any_new = False
        for k in range(size):
            any_new = any_new or nodes[members[first_row + k], 0] == 1
        if not any_new:
            continue
        for k in range(size):
            n = members[first_row + k]
            bits = 0
            for w in range(words):
                local_clk[k, w] = clks[n, w]
                bits += _popcount(clks[n, w])
            local_bits[k] = bits
            local_new[k] = nodes[n, 0] == 1
            count = 0
            for x in range(nodes[n, 1]):
                flagged = nodes[n, 2 + x]
                if flagged >> 2 >= b - 1:
                    break  # the lists ascend: the rest come at or after this block
                if flagged & 2:
                    local_before[k, count] = flagged >> 2
                    count += 1
            local_count[k] = count
        for i in range(size):
            for j in range(i + 1, size):
                a, c = members[first_row + i], members[first_row + j]
                if a == c or not (local_new[i] or local_new[j]):
                    continue
                if _share_one(local_before[i], local_count[i], local_before[j], local_count[j]):
                    continue  # scored at the first comparable block the two share
                compared += 1
                total = local_bits[i] + local_bits[j]
                if total == 0:
                    dice = 0.0
                else:
                    both = 0
                    for w in range(words):
                        both += _popcount(local_clk[i, w] & local_clk[j, w])
                    dice = 2.0 * both / total
                if dice < min_score:
                    continue
                left[kept], right[kept] = min(a, c), max(a, c)
                score[kept] = dice
                document[kept] = _share_document(nodes, a, c)
                kept += 1
    return left[:kept], right[:kept], score[:kept], document[:kept], compared, b


@njit(
    [
        (
            _array(types.int64),
            _array(types.boolean),
            _array(types.boolean),
            _array(types.boolean),
            _array(types.boolean),
            types.int64,
        )
    ],
    cache=True,
    nogil=True,
)
def node_rows(
    members: np.ndarray,
    opens: np.ndarray,
    comparable: np.ndarray,
    is_document: np.ndarray,
    is_new: np.ndarray,
    nodes: int,
) -> np.ndarray:
    """Return one int32 row per node: (1 if new else 0, its block count, its blocks ascending).

    The rows (record, block) come in block order (``opens`` marks each block's first
    row), so each node's list ascends. Each block id carries its flags in the low bits
    (comparable 2, document 1): comparing two records' lists then reads nothing else,
    and a record's data for the comparison is this one short row besides its CLK (int32
    halves the random writes here: 0.48 → 0.33 s for 3.8M rows).
    """
    count = np.zeros(nodes, dtype=np.int32)
    for n in members:
        count[n] += 1
    width = 1
    for n in range(nodes):
        width = max(width, count[n])
    rows = np.zeros((nodes, 2 + width), dtype=np.int32)
    for n in range(nodes):
        rows[n, 0] = 1 if is_new[n] else 0
    b = -1
    for row in range(members.size):
        b += opens[row]
        n = members[row]
        rows[n, 2 + rows[n, 1]] = b * 4 + comparable[b] * 2 + is_document[b]
        rows[n, 1] += 1
    return rows


@njit([(_array(types.int16), _array(types.int64), _array(types.uint64, 2))], cache=True, nogil=True)
def or_bigram_masks(codes: np.ndarray, ends: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Return each name's CLK words: the OR of the masks of its bigrams.

    ``codes`` are the concatenated names' letters (space 0, a–z 1–26), name ``i``
    ending at ``ends[i]``; a bigram of one letter twice is skipped (a doubled letter,
    or the doubled space between two names). ``masks[a * 27 + b]`` is bigram ab's mask.
    """
    letters = 27
    words = masks.shape[1]
    clks = np.zeros((ends.size, words), dtype=np.uint64)
    start = 0
    for row in range(ends.size):
        for at in range(start, ends[row] - 1):
            if codes[at] != codes[at + 1]:
                mask = codes[at] * letters + codes[at + 1]
                for w in range(words):
                    clks[row, w] |= masks[mask, w]
        start = ends[row]
    return clks


@njit(
    [(_array(types.uint64, 2, readonly=False), _array(types.uint64, 2), _array(types.int64))],
    cache=True,
    nogil=True,
)
def or_rows(clks: np.ndarray, masks: np.ndarray, index: np.ndarray) -> None:
    """OR into each row of ``clks`` the mask ``masks[index[row]]`` (none where it is -1)."""
    for row in range(index.size):
        if index[row] >= 0:
            for w in range(clks.shape[1]):
                clks[row, w] |= masks[index[row], w]


@njit(
    [(_array(types.uint8), _array(types.int64), types.uint64, types.uint64)], cache=True, nogil=True
)
def siphash24(data: np.ndarray, offsets: np.ndarray, k0: np.uint64, k1: np.uint64) -> np.ndarray:
    """Return SipHash-2-4, keyed with ``k0``, ``k1``, of each ``data[offsets[i]:offsets[i + 1]]``.

    SipHash is the keyed 64-bit pseudo-random function made for short inputs (Aumasson
    and Bernstein 2012; Python's own ``str`` hash): without the key, its outputs reveal
    nothing of the strings. Here it runs on an Arrow string column's buffers at ~0.1 s per
    million strings, where an HMAC-SHA256 per value through hex text took ~2 s.
    """
    rows = offsets.size - 1
    out = np.empty(rows, dtype=np.uint64)
    byte = np.uint64(8)
    for row in range(rows):
        start, end = offsets[row], offsets[row + 1]
        v0 = k0 ^ np.uint64(0x736F6D6570736575)
        v1 = k1 ^ np.uint64(0x646F72616E646F6D)
        v2 = k0 ^ np.uint64(0x6C7967656E657261)
        v3 = k1 ^ np.uint64(0x7465646279746573)
        whole = start + (end - start) // 8 * 8
        for at in range(start, whole, 8):
            m = np.uint64(0)
            for i in range(8):
                m |= np.uint64(data[at + i]) << (byte * np.uint64(i))
            v3 ^= m
            v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
            v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
            v0 ^= m
        last = np.uint64((end - start) & 0xFF) << np.uint64(56)
        for i in range(end - whole):
            last |= np.uint64(data[whole + i]) << (byte * np.uint64(i))
        v3 ^= last
        v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
        v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
        v0 ^= last
        v2 ^= np.uint64(0xFF)
        for _ in range(4):
            v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
        out[row] = v0 ^ v1 ^ v2 ^ v3
    return out
