"""Linking decisions on keyed encodings: Dice similarity of candidate pairs, persons as components.

On arrays the store hands over (no raw identity ever reaches here): the CLKs of
:mod:`geo.identity` as (n, 16) uint64 rows, each record's blocks, each record's current
person. Candidate pairs are scored in :mod:`geo.linkage_kernels` (numba); the rest is
numpy.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

# A pair of records is one person when the Dice coefficient of their CLKs reaches
# LINK_THRESHOLD, or LINK_THRESHOLD_SAME_DOCUMENT when they share a document number.
LINK_THRESHOLD = 0.85
LINK_THRESHOLD_SAME_DOCUMENT = 0.6


def linked_pairs(
    node: np.ndarray,
    block: np.ndarray,
    is_new: np.ndarray,
    clks: np.ndarray,
    max_block: int,
    threshold: float = LINK_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Return the pairs of records that are one person, among those sharing a block.

    ``node`` and ``block`` list each record's blocks (one row per record and block,
    ``node`` a dense id into ``clks``, the (n, 16) uint64 CLKs); ``is_new`` says, per
    node, whether it is one of the file's records: only pairs with at least one new
    record are compared, each once, and blocks of more than ``max_block`` records are
    not compared. A pair is one person at a Dice coefficient of ``threshold``, or
    :data:`LINK_THRESHOLD_SAME_DOCUMENT` when it shares a document-number block
    (kind 1 in the low 2 bits).

    Returns
    -------
    tuple
        (left, right, compared, skipped): the linked pairs (left < right), how many
        distinct candidate pairs were compared and how many blocks were too large.
    """
    document_threshold = min(threshold, LINK_THRESHOLD_SAME_DOCUMENT)
    left, right, score, same_document, compared, skipped = scored_pairs(
        node, block, is_new, clks, max_block, document_threshold
    )
    linked = (score >= threshold) | (same_document & (score >= document_threshold))
    return left[linked], right[linked], compared, skipped


def scored_pairs(
    node: np.ndarray,
    block: np.ndarray,
    is_new: np.ndarray,
    clks: np.ndarray,
    max_block: int,
    min_score: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Return the candidate pairs scoring at least ``min_score``, with Dice and document flag.

    The arguments are those of :func:`linked_pairs`; the scoring runs in
    :func:`geo.linkage_kernels.compare_blocks`. Returns (left, right, score,
    same_document, compared, skipped).
    """
    if not np.size(block):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0), np.zeros(0, dtype=bool), 0, 0
    import polars as pl  # sorts the rows 3× faster than numpy's argsort

    from geo.linkage_kernels import compare_blocks, node_rows

    rows = pl.DataFrame(
        {"block": np.asarray(block, dtype=np.uint64), "node": np.asarray(node, dtype=np.int64)}
    ).sort("block")
    ordered, members = rows["block"].to_numpy(), rows["node"].to_numpy()
    del rows
    opens = np.r_[True, ordered[1:] != ordered[:-1]] if ordered.size else np.zeros(0, bool)
    starts = np.r_[np.flatnonzero(opens), ordered.size]
    sizes = np.diff(starts)
    comparable = sizes <= max_block
    is_document = (ordered[opens] & np.uint64(3)) == 1
    is_new = np.asarray(is_new, dtype=np.bool_)
    nodes = node_rows(members, opens, comparable, is_document, is_new, clks.shape[0])
    arguments = (
        starts,
        members,
        comparable,
        nodes,
        np.ascontiguousarray(clks, dtype=np.uint64),
        float(min_score),
    )
    # Two halves of the blocks (by pairs to visit) on two threads (the kernel holds no
    # GIL); kept pairs come back in parts of at most `capacity` (at least one block's).
    largest = int(sizes[comparable].max(initial=0))
    capacity = max(1 << 18, largest * (largest - 1) // 2)
    visits = np.cumsum(np.where(comparable, sizes * (sizes - 1) // 2, 0))
    middle = int(np.searchsorted(visits, visits[-1] // 2)) if visits.size else 0
    ranges = ((0, middle), (middle, starts.size - 1))

    def compare(first: int, last: int) -> tuple[list, int]:
        parts, compared = [], 0
        while first < last:
            *part, count, first = compare_blocks(*arguments, first, last, capacity)
            parts.append(part)
            compared += count
        return parts, compared

    with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
        done = list(pool.map(lambda bounds: compare(*bounds), ranges))
    parts = [part for found, _ in done for part in found]
    compared = sum(count for _, count in done)
    left, right, score, same_document = (
        np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, dtype)
        for i, dtype in enumerate((np.int64, np.int64, np.float64, np.bool_))
    )
    skipped = int(np.count_nonzero(~comparable))
    return left, right, score, same_document, int(compared), skipped


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
