"""The linear-programming core of the audit: proven intervals over scipy ``linprog``.

An attacker's knowledge is a linear system (equalities and variable bounds); what the
attacker can prove about a count is the minimum and maximum of that count over the
system, which HiGHS computes exactly. This module knows nothing of releases or H3: it
holds the system, the interval of a variable, and what an interval discloses about a
count between 1 and k−1, so that the rest of the audit and the tests share one notion
of "disclosed".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

TOLERANCE = 1e-6


@dataclass(frozen=True)
class LinearSystem:
    """What the attacker knows: ``a_eq @ x == b_eq`` and ``lower <= x <= upper``."""

    a_eq: sparse.csr_array
    b_eq: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def optimum(self, objective: np.ndarray, maximise: bool = False) -> tuple[float, np.ndarray]:
        """Return the minimum (or maximum) of ``objective @ x`` and a point attaining it.

        Returns
        -------
        tuple of float and numpy.ndarray
            The optimal value (±inf when unbounded, with an empty point) and the point.

        Raises
        ------
        ValueError
            If the constraints have no solution.
        """
        sign = -1.0 if maximise else 1.0
        has_rows = self.a_eq.shape[0] > 0
        result = linprog(
            sign * np.asarray(objective, dtype=float),
            A_eq=self.a_eq if has_rows else None,
            b_eq=self.b_eq if has_rows else None,
            bounds=np.column_stack([self.lower, self.upper]),
            method="highs",
        )
        if result.status == 3:
            return sign * -math.inf, np.empty(0)
        if result.status != 0:
            raise ValueError(f"the attacker's constraints have no solution ({result.message})")
        return sign * result.fun, result.x


def interval_bounds(
    a_eq: np.ndarray | sparse.sparray,
    b_eq: Sequence[float],
    lower: Sequence[float],
    upper: Sequence[float],
    targets: Sequence[int],
) -> list[tuple[float, float]]:
    """Return, per target variable, the interval an attacker can prove.

    Parameters
    ----------
    a_eq, b_eq
        Equality constraints ``a_eq @ x == b_eq`` (m × n, dense or sparse).
    lower, upper
        Bounds of every variable (``numpy.inf`` for none).
    targets
        Indices of the variables to bound.

    Returns
    -------
    list of tuple of float
        ``(minimum, maximum)`` of each target over the constraints, by HiGHS.

    Raises
    ------
    ValueError
        If the constraints have no solution.
    """
    system = LinearSystem(
        sparse.csr_array(np.atleast_2d(a_eq) if not sparse.issparse(a_eq) else a_eq),
        np.asarray(b_eq, dtype=float),
        np.asarray(lower, dtype=float),
        np.asarray(upper, dtype=float),
    )
    bounds = []
    for target in targets:
        objective = np.zeros(system.lower.size)
        objective[target] = 1.0
        bounds.append((system.optimum(objective)[0], system.optimum(objective, maximise=True)[0]))
    return bounds


@dataclass(frozen=True)
class Verdict:
    """What a proven interval discloses about a count that is truly between 1 and k−1."""

    lo: int
    hi: float
    exact: bool
    existence: bool
    small: bool

    @property
    def disclosed(self) -> bool:
        """Return whether the interval is a disclosure (exact, or existence proven)."""
        return self.exact or self.existence


def classify(lo: float, hi: float, k: int) -> Verdict:
    """Classify a proven interval, rounded inward to the integers the attacker knows.

    Returns
    -------
    Verdict
        ``exact`` when the interval is one value, ``existence`` when its lower bound is
        at least 1, ``small`` when its upper bound is below k (the group is proven small).
    """
    low = math.ceil(lo - TOLERANCE)
    high = math.floor(hi + TOLERANCE) if math.isfinite(hi) else math.inf
    return Verdict(low, high, low == high, low >= 1, high < k)
