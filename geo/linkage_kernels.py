"""The compiled inner loops of linking: building CLKs, comparing the records of each block.

Both walk millions of short, irregular pieces (a name's bigrams, a block's pairs) where
numpy would materialise an intermediate array per step; here, in numba, each record's
data is read once and stays in cache.

- :func:`or_bigram_masks`: a CLK is the OR of its name bigrams' masks
  (:func:`geo.identity.clk_matrix`): 1.6 s of numpy gathers per 500,000 names before.
- :func:`compare_blocks`: candidate pairs (two records sharing a block key, at least
  one of them new) scored by Dice in one pass over the blocks; a block's members are a
  few dozen records, so their CLKs are copied together once while every pair is scored,
  and a pair that shares several blocks is scored only at the first of them it can be
  compared in. In numpy the same work formed every pair row (11M at 1M registrations),
  sorted them to drop repeats and gathered two CLKs per pair: 12 s against ~3 s here.

numba is imported only when a file carries identity columns (a plain ingest and every
other command never pay for it); the compiled code is cached beside this module.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.core import types
from numba.extending import intrinsic

_NONE = np.int64(2**62)  # no shared block


@intrinsic
def _popcount(typingctx, word):
    """Return the number of set bits of a uint64 (one ``popcnt`` instruction)."""
    signature = types.uint64(types.uint64)

    def codegen(context, builder, sig, args):
        return builder.ctpop(args[0])

    return signature, codegen


@njit(cache=True, nogil=True)
def compare_blocks(
    starts: np.ndarray,
    members: np.ndarray,
    comparable: np.ndarray,
    node_start: np.ndarray,
    node_blocks: np.ndarray,
    is_new: np.ndarray,
    clks: np.ndarray,
    min_score: float,
    first_block: int,
    capacity: int,
) -> tuple:
    """Score every candidate pair once; keep those with a Dice of at least ``min_score``.

    The rows (record, block) are sorted by block: block ``b``'s members are
    ``members[starts[b]:starts[b + 1]]`` (dense node ids into ``clks``); node ``n``'s
    flagged blocks are ``node_blocks[node_start[n]:node_start[n + 1]]``
    (:func:`blocks_by_node`). Only blocks marked ``comparable`` are compared, from
    ``first_block`` on, until the next block's pairs could overflow the ``capacity``
    kept pairs (at least one block's worth). Returns (left, right, score,
    same_document, compared, next_block): the kept pairs (left < right), their Dice,
    whether they share a comparable document block, how many distinct pairs were
    scored, and the block to go on from (the number of blocks when done).
    """
    words = clks.shape[1]
    width = 1
    for n in range(node_start.size - 1):
        width = max(width, node_start[n + 1] - node_start[n])
    largest = 2
    for b in range(starts.size - 1):
        if comparable[b]:
            largest = max(largest, starts[b + 1] - starts[b])
    # One block's members, copied together so that its pairs are scored from cache.
    local_clk = np.empty((largest, words), dtype=np.uint64)
    local_bits = np.empty(largest, dtype=np.int64)
    local_blocks = np.empty((largest, width), dtype=np.int64)
    local_new = np.empty(largest, dtype=np.bool_)
    left = np.empty(capacity, dtype=np.int64)
    right = np.empty(capacity, dtype=np.int64)
    score = np.empty(capacity, dtype=np.float64)
    document = np.empty(capacity, dtype=np.bool_)
    kept = 0
    compared = 0
    b = first_block
    while b < starts.size - 1:
        first_row, size = starts[b], starts[b + 1] - starts[b]
        b += 1
        if size < 2 or not comparable[b - 1]:
            continue
        if kept + size * (size - 1) // 2 > capacity:
            b -= 1  # no room for this block's pairs: the caller goes on from it
            break
        any_new = False
        for k in range(size):
            any_new = any_new or is_new[members[first_row + k]]
        if not any_new:
            continue
        for k in range(size):
            n = members[first_row + k]
            bits = 0
            for w in range(words):
                local_clk[k, w] = clks[n, w]
                bits += _popcount(clks[n, w])
            local_bits[k] = bits
            local_new[k] = is_new[n]
            # Padded with a value of this row alone, which no other row's entry equals.
            for x in range(width):
                local_blocks[k, x] = -1 - k
            for x in range(node_start[n + 1] - node_start[n]):
                local_blocks[k, x] = node_blocks[node_start[n] + x]
        for i in range(size):
            for j in range(i + 1, size):
                a, c = members[first_row + i], members[first_row + j]
                if a == c or not (local_new[i] or local_new[j]):
                    continue
                # The first comparable block the two share, and whether one is a document:
                # every entry against every entry, without branches (the lists are short).
                first, same_document = _NONE, False
                for x in range(width):
                    shared = local_blocks[i, x]
                    for y in range(width):
                        hit = (shared == local_blocks[j, y]) & ((shared & 2) == 2)
                        first = min(first, (shared >> 2) if hit else _NONE)
                        same_document = same_document | (hit & ((shared & 1) == 1))
                if first != b - 1:
                    continue  # scored at the first block they share
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
                score[kept], document[kept] = dice, same_document
                kept += 1
    return left[:kept], right[:kept], score[:kept], document[:kept], compared, b


@njit(cache=True, nogil=True)
def blocks_by_node(
    members: np.ndarray,
    block_id: np.ndarray,
    comparable: np.ndarray,
    is_document: np.ndarray,
    nodes: int,
) -> tuple:
    """Return each node's blocks, ascending, as (start per node, flagged block ids).

    A counting sort of the rows (which come in block order, so each list ascends). Each
    block id carries its flags in the low bits (comparable 2, document 1): comparing two
    records' lists then reads nothing else.
    """
    node_start = np.zeros(nodes + 1, dtype=np.int64)
    for n in members:
        node_start[n + 1] += 1
    for n in range(nodes):
        node_start[n + 1] += node_start[n]
    filled = node_start[:-1].copy()
    node_blocks = np.empty(members.size, dtype=np.int64)
    for row in range(members.size):
        n, b = members[row], block_id[row]
        node_blocks[filled[n]] = b * 4 + comparable[b] * 2 + is_document[b]
        filled[n] += 1
    return node_start, node_blocks


@njit(cache=True, nogil=True)
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
