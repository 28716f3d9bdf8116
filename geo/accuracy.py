"""How far a release's figures can be from the truth, in numbers and in words.

A release's method decides how much a published value may differ from the true count
it stands for:

- **noise** (method 2): every figure carries discrete-Laplace noise of scale ``t`` for
  cases and ``2t`` for persons, so a sum of n figures is within ±:func:`noise_bound`
  of the truth with the chosen confidence (clamping a figure at k or 0 only moves it
  towards the truth, so the bound holds for published values);
- **exact** (method 1): the true counts, or rounded to a multiple of ``R`` (never below
  k), which moves each figure by at most ``max(R // 2, ⌈k/R⌉·R − k)``, for certain;
- unrounded exact counts do not move at all.

:class:`Accuracy` holds what a front end needs to widen exposure bounds and say so:
the method, the scale, the confidence and the persons the release withholds (a
protected figure, noisy under method 2). It reads only the release's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo.noise import noise_bound

CONFIDENCE = 0.99
MEASURES = ("cases", "persons")
TRUTH_SENTENCE = (
    "The true number lies between low and high: low counts only cells entirely inside "
    "the area, high every cell that touches it; the estimate weights each cut cell by "
    "the share of it inside."
)


@dataclass(frozen=True)
class Accuracy:
    """What a release's method does to its figures, and what the release withholds.

    Attributes
    ----------
    method
        ``noise`` (method 2) or ``exact`` (method 1).
    noise_scale
        The discrete-Laplace scale ``t`` of a count of cases (persons: ``2t``); 0 for
        method 1.
    round_to
        The rounding base of a rounded method-1 release, else None.
    k
        The release's threshold (cases per published count), when known.
    withheld_persons
        The persons the release withholds (groups still under k at the floor), as
        published (a protected figure); None when the release does not say.
    confidence
        The confidence of bounds that allow for noise (1 when nothing is random).
    """

    method: str = "exact"
    noise_scale: float = 0.0
    round_to: int | None = None
    k: int | None = None
    withheld_persons: int | None = None
    confidence: float = 1.0

    @classmethod
    def of(cls, metadata: dict, confidence: float = CONFIDENCE) -> Accuracy:
        """Return the accuracy of a release from its metadata.

        Parameters
        ----------
        metadata
            ``Release.metadata``; missing entries (hand-made or method-1 releases)
            read as no noise, no rounding, nothing known withheld.
        confidence
            The confidence wanted for bounds under noise (ignored without noise).

        Returns
        -------
        Accuracy
        """
        policy = metadata.get("policy") or {}
        scale = float(policy.get("noise_scale") or 0)
        withheld = (metadata.get("dropped") or {}).get("persons")
        return cls(
            method="noise" if scale > 0 else "exact",
            noise_scale=scale,
            round_to=policy.get("round_to") or None,
            k=policy.get("k"),
            withheld_persons=None if withheld is None else int(withheld),
            confidence=confidence if scale > 0 else 1.0,
        )

    def scale(self, measure: str) -> float:
        """Return the noise scale of one published figure of ``measure`` (cases, persons)."""
        if measure not in MEASURES:
            raise ValueError(f"unknown measure {measure!r}; use cases or persons.")
        return self.noise_scale * (2 if measure == "persons" else 1)

    def rounding_move(self) -> int:
        """Return the most a rounded release moves one figure (0 when not rounded)."""
        if not self.round_to:
            return 0
        base, k = int(self.round_to), int(self.k or 1)
        return max(base // 2, -(-k // base) * base - k)

    def margin(self, measure: str, figures: np.ndarray | int) -> np.ndarray:
        """Return how far a sum of ``figures`` published values can be from the truth.

        Parameters
        ----------
        measure
            ``cases`` or ``persons``.
        figures
            The number of published values summed (an array, or one count).

        Returns
        -------
        numpy.ndarray
            Integers B: under noise, P(the sum is off by more than B on one given side)
            ≤ (1 − confidence) / 2, so a low and a high widened by B hold the truth
            between them with the confidence; under rounding, the most it can move;
            0 for exact counts and for no figure.
        """
        figures = np.asarray(figures, dtype=np.int64)
        if self.noise_scale > 0:
            scale = self.scale(measure)
            sizes, position = np.unique(figures, return_inverse=True)
            bounds = [noise_bound(int(n), scale, self.confidence) for n in sizes]
            return np.asarray(bounds, dtype=np.int64)[position].reshape(figures.shape)
        return figures * self.rounding_move()

    def truth_sentence(self) -> str:
        """Return the sentence that says where the true number lies, for this method."""
        if self.method == "noise":
            sentence = (
                f"The true number lies between low and high with {self.confidence:.0%} "
                "confidence: low counts only cells entirely inside the area, high every "
                "cell that touches it, and both are widened by what the noise can move; "
                "the estimate weights each cut cell by the share of it inside. Every "
                f"released count carries random noise (scale {self.noise_scale:.3g} for "
                f"cases, {self.scale('persons'):.3g} for persons) so that no small group "
                "can be recovered."
            )
            withheld = self.withheld_sentence()
            return f"{sentence} {withheld}" if withheld else sentence
        if self.round_to:
            return (
                f"{TRUTH_SENTENCE} Every released count is rounded to a multiple of "
                f"{self.round_to}, and low and high are widened by what rounding can move."
            )
        return TRUTH_SENTENCE

    def withheld_sentence(self) -> str:
        """Return the sentence naming the persons the release withholds ('' when unknown)."""
        if self.withheld_persons is None:
            return ""
        under = f"k = {self.k} cases" if self.k else "k"
        noisy = "; a protected figure, noisy too" if self.method == "noise" else ""
        return (
            f"The release withholds {self.withheld_persons:,} persons across all its "
            f"nationalities, whatever a page or table filters (groups still under {under} at "
            f"the floor resolution{noisy})."
        )

    def figure_sentence(self) -> str:
        """Return how close one published count is to the truth, in words."""
        if self.method == "noise":
            cases, persons = (int(self.margin(m, 1)) for m in MEASURES)
            return (
                f"Each published count of cases is within ±{cases} of the truth, and each "
                f"count of persons within ±{persons}, with {self.confidence:.0%} confidence."
            )
        if self.round_to:
            return (
                f"Each published count is within ±{self.rounding_move()} of the truth "
                f"(rounded to a multiple of {self.round_to})."
            )
        return "Each published count is the true count."
