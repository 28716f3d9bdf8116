"""Keyed noise for published counts: the same records give the same noise.

Every figure a release publishes (a group's cases, its persons, one breakdown category,
a floor cell's vulnerability row, the dropped total) gets discrete-Laplace noise of
scale ``t`` (P(e) ∝ exp(−|e|/t)). The noise is not drawn at random: it is a hash of the
store's secret, the figure's identity (cell, nationality, dimension, category, measure)
and the sum of the keys of the records the figure counts (as in the ONS/ABS cell-key
method). Publishing the same records again gives the same value, so repeating a release
reveals nothing new; any change of the records behind a figure gives it fresh noise.

Because the noise has no bound, a published value proves no interval about the true
count: no linear combination of releases, however many, pins a small count or proves it
lies between 1 and k−1. What it does give is an accuracy a planner can use:
:func:`noise_bound` says how far the sum of n noisy figures can be from the truth at a
chosen confidence (a Chernoff bound, exact for the discrete Laplace distribution).
"""

from __future__ import annotations

import math
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import polars as pl

KEY_MODULUS = 1 << 32  # record keys are summed modulo 2³² per figure
MEASURES = {"cases": 1, "persons": 2}
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(values: np.ndarray) -> np.ndarray:
    """Return SplitMix64 of unsigned 64-bit integers (a fast, well-mixed hash), vectorised."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def text_code(values: np.ndarray | pl.Series) -> np.ndarray:
    """Return a stable 64-bit code for short texts (nationality codes, categories).

    Stable across library versions and engines (the UTF-8 bytes, folded), unlike a
    hash function of a data-frame library. Each distinct text is folded once (a missing
    one as ``"None"``) and the codes spread back by a hash join: no sort of the texts.
    """
    import polars as pl

    texts = values if isinstance(values, pl.Series) else pl.Series(np.asarray(values, dtype=str))
    texts = texts.cast(pl.String).fill_null("None")
    distinct = texts.unique()
    codes = np.empty(len(distinct), dtype=np.uint64)
    for index, text in enumerate(distinct.to_list()):
        code = 1469598103934665603  # FNV-1a's prime over a fixed basis, modulo 2⁶⁴
        for byte in text.encode():
            code = ((code ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
        codes[index] = code
    mapping = pl.Series(codes, dtype=pl.UInt64)
    return texts.replace_strict(distinct, mapping, return_dtype=pl.UInt64).to_numpy()


def figure_noise(
    cells: np.ndarray,
    labels: np.ndarray | pl.Series,
    measure: str,
    key_sums: np.ndarray,
    scale: float,
    secret: int,
) -> np.ndarray:
    """Return the integer noise of each figure.

    Parameters
    ----------
    cells
        The figure's H3 cell (unsigned 64-bit integers; 0 for release-level totals).
    labels
        Text naming the figure within its cell: nationality, dimension and category
        (numpy or polars), or the texts' codes already made (:func:`text_code`, unsigned
        64-bit integers).
    measure
        ``cases`` or ``persons``.
    key_sums
        Sum of the record keys of the records the figure counts, modulo 2³².
    scale
        The discrete-Laplace scale ``t``; 0 means no noise.
    secret
        The store's secret (never published): without it the noise cannot be recomputed.
    """
    if scale <= 0 or len(cells) == 0:
        return np.zeros(len(cells), dtype=np.int64)
    coded = isinstance(labels, np.ndarray) and labels.dtype == np.uint64
    identity = splitmix64(cells.astype(np.uint64)) ^ splitmix64(
        labels if coded else text_code(labels)
    )
    seed = splitmix64(np.uint64(secret) ^ np.uint64(MEASURES[measure] << 40))
    first = splitmix64(identity ^ splitmix64(key_sums.astype(np.uint64)) ^ seed)
    second = splitmix64(first ^ _GOLDEN)
    p = math.exp(-1.0 / scale)
    # A discrete Laplace value is the difference of two independent geometric counts.
    return _geometric(first, p) - _geometric(second, p)


def _geometric(bits: np.ndarray, p: float) -> np.ndarray:
    """Return geometric counts (failures before a success of probability 1−p) from bits."""
    uniform = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)
    return np.floor(np.log(uniform) / math.log(p)).astype(np.int64)


EXACT_UP_TO = 4096  # sums of up to this many figures get their exact distribution


@cache
def noise_bound(figures: int, scale: float, confidence: float = 0.99) -> int:
    """Return B with P(|sum of ``figures`` noises| > B) ≤ 1 − confidence.

    The sum's exact distribution (the difference of two negative binomials) for up to
    ``EXACT_UP_TO`` figures; a
    Chernoff bound beyond (moment generating function (1−p)² / ((1−p·e^λ)(1−p·e^−λ)),
    p = e^(−1/t)). Each side gets half the error, so low and high hold together. 0 when
    there is no noise or no figure.
    """
    if scale <= 0 or figures <= 0:
        return 0
    tail = (1 - confidence) / 2
    if figures <= EXACT_UP_TO:
        return _exact_bound(figures, scale, tail)
    return _chernoff_bound(figures, scale, tail)


def _exact_bound(figures: int, scale: float, tail: float) -> int:
    """Return the smallest B with P(sum > B) ≤ tail, from the sum's exact distribution.

    A discrete-Laplace figure is the difference of two geometric counts, so the sum of
    ``figures`` of them is X − Y with X, Y independent negative binomials (``figures``
    successes of probability 1 − p): P(X − Y > B) = Σ_y P(Y = y)·P(X > B + y), searched
    by bisection over B. The same bounds as convolving the figures' distribution by
    FFT, twenty times faster (a dashboard's first noisy exposure at 10M registrations
    waited 16 s for the FFTs of a hundred sums), in numpy alone.
    """
    p = math.exp(-1.0 / scale)
    top = _negative_binomial_top(figures, p)  # P(Y > top) < 1e-25
    k = np.arange(2 * top + 3)
    # log P(k+1) − log P(k) = log p + log((k + figures) / (k + 1)), from P(0) = (1 − p)^figures
    steps = math.log(p) + np.log((k[:-1] + figures) / (k[:-1] + 1))
    pmf = np.exp(figures * math.log(1 - p) + np.concatenate([[0.0], np.cumsum(steps)]))
    survival = np.cumsum(pmf[::-1])[::-1][1:]  # P(X > k), summed from the far tail up
    weights = pmf[: top + 1]
    goal = tail - 1e-9  # the slack the bound keeps against rounding error
    low, high = 0, top  # P(sum > top) ≤ P(X > top) < goal
    while low < high:
        middle = (low + high) // 2
        if _dot(weights, survival[middle : middle + top + 1]) <= goal:
            high = middle
        else:
            low = middle + 1
    return low


def _dot(left: np.ndarray, right: np.ndarray) -> float:
    """Return the dot product of two vectors, summed by numpy on this thread.

    Not ``np.dot``: OpenBLAS splits it across threads that spin while they wait, and in
    a busy dashboard server (the map's background work, another session) a first
    exposure's bounds took seconds instead of a third of one
    (``benchmarks/noise_bounds.py``).
    """
    return float(np.sum(left * right))


def _negative_binomial_top(figures: int, p: float, log_tail: float = 25 * math.log(10)) -> int:
    """Return a count that a sum of ``figures`` geometric counts exceeds with P < e^−log_tail.

    Chernoff: P(Y ≥ y) ≤ E[e^(λY)]·e^(−λy), E[e^(λY)] = ((1 − p) / (1 − p·e^λ))^figures,
    minimised over λ in (0, −log p) on a grid; within 11 % of the exact quantile.
    """
    lambdas = np.linspace(0.0, -math.log(p), 402)[1:-1]
    log_mgf = figures * (math.log(1 - p) - np.log(1 - p * np.exp(lambdas)))
    return int(math.ceil(((log_mgf + log_tail) / lambdas).min()))


def _chernoff_bound(figures: int, scale: float, tail: float) -> int:
    """Return a Chernoff B with P(sum > B) ≤ tail (sums of many figures)."""
    p = math.exp(-1.0 / scale)
    lambdas = np.linspace(1e-4, (1 / scale) * 0.999, 400)
    log_mgf = (
        2 * math.log(1 - p) - np.log(1 - p * np.exp(lambdas)) - np.log(1 - p * np.exp(-lambdas))
    )
    needed = (figures * log_mgf - math.log(tail)) / lambdas
    return int(math.ceil(needed.min()))
