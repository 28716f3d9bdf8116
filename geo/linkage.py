"""Linking decisions on keyed encodings: Dice similarity of candidate pairs, persons as components.

Pure numpy/scipy on arrays the store hands over (no raw identity ever reaches here):
the CLKs of :mod:`geo.identity` as (n, 16) uint64 rows, candidate pairs from the
blocks, each record's current person.
"""

from __future__ import annotations

import numpy as np

# A pair of records is one person when the Dice coefficient of their CLKs reaches
# LINK_THRESHOLD, or LINK_THRESHOLD_SAME_DOCUMENT when they share a document number.
LINK_THRESHOLD = 0.85
LINK_THRESHOLD_SAME_DOCUMENT = 0.6


def candidate_pairs(
    node: np.ndarray, block: np.ndarray, is_new: np.ndarray, max_block: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Return the pairs of records sharing a block, at least one of them new.

    ``node`` and ``block`` list each record's blocks (one row per record and block);
    ``is_new`` says, per node, whether it is one of the file's records. Blocks of more
    than ``max_block`` records are not compared.

    Returns
    -------
    tuple
        (left, right, same_document, skipped): each pair once with left < right, whether
        the pair shares a document-number block (kind 1 in the low 2 bits), and how many
        blocks were too large.
    """
    if not block.size:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=bool), 0
    order = np.lexsort((node, block))
    node, block = node[order].astype(np.int64), block[order]
    starts = np.r_[0, np.flatnonzero(block[1:] != block[:-1]) + 1]
    sizes = np.diff(np.r_[starts, block.size])
    skipped = int(np.count_nonzero(sizes > max_block))
    sizes_per_row = np.repeat(np.where(sizes <= max_block, sizes, 0), sizes)
    offset = np.arange(block.size) - np.repeat(starts, sizes)
    # Row r pairs with the rows after it in its block: r + 1 ... (block end - 1).
    partners = np.maximum(sizes_per_row - 1 - offset, 0)
    first = np.repeat(np.arange(block.size), partners)
    second = (
        first + 1 + (np.arange(first.size) - np.repeat(np.cumsum(partners) - partners, partners))
    )
    left, right = node[first], node[second]
    wanted = (is_new[left] | is_new[right]) & (left != right)
    left, right = left[wanted], right[wanted]
    document = (block[first[wanted]] & np.uint64(3)) == 1
    width = int(node.max()) + 1
    unique, inverse = np.unique(left * width + right, return_inverse=True)
    same_document = np.zeros(unique.size, dtype=bool)
    same_document[inverse[document]] = True
    return unique // width, unique % width, same_document, skipped


def dice(clks: np.ndarray, left: np.ndarray, right: np.ndarray, chunk: int = 500_000) -> np.ndarray:
    """Return the Dice coefficient 2|A∩B| / (|A|+|B|) of each pair (left[i], right[i])."""
    counts = np.bitwise_count(clks).sum(axis=1, dtype=np.int64)
    out = np.empty(left.size, dtype=np.float64)
    for start in range(0, left.size, chunk):
        a, b = left[start : start + chunk], right[start : start + chunk]
        both = np.bitwise_count(clks[a] & clks[b]).sum(axis=1, dtype=np.int64)
        total = counts[a] + counts[b]
        out[start : start + chunk] = np.where(total > 0, 2 * both / np.maximum(total, 1), 0.0)
    return out


def matches(
    clks: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    same_document: np.ndarray,
    threshold: float = LINK_THRESHOLD,
) -> np.ndarray:
    """Return the mask of candidate pairs that are one person (see :data:`LINK_THRESHOLD`)."""
    score = dice(clks, left, right)
    document_threshold = min(threshold, LINK_THRESHOLD_SAME_DOCUMENT)
    return (score >= threshold) | (same_document & (score >= document_threshold))


def merged_persons(persons: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Return, for each of ``persons`` dense person ids, the id of the person it joins.

    Persons linked directly or through others form one component; each component
    takes its smallest id (the caller numbers persons so that the one to keep, e.g. the
    earliest stored, is smallest). The smallest id spreads along the links and by
    pointer jumping until nothing changes (numpy only: no scipy import at ingest).
    """
    labels = np.arange(persons, dtype=np.int64)
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    while True:
        before = labels.copy()
        np.minimum.at(labels, left, labels[right])
        np.minimum.at(labels, right, labels[left])
        while not np.array_equal(jumped := labels[labels], labels):
            labels = jumped
        if np.array_equal(labels, before):
            return labels
