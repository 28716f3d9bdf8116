"""The exposure table type: what every front end shows and every export writes.

A core type, apart from the computation (:mod:`geo.tools.exposure`) and the writers
(:mod:`geo.io.export`), so that both can use it without depending on each other.

Low and high are sums of released values widened by what the release's method can
move (:class:`geo.accuracy.Accuracy`): a sum of n noisy values is off by at most
``margin(n)`` at the stated confidence. A total over several rows (a class over every
nationality, the headline) is widened once for all the groups it sums, from the sums
before widening, never by adding widened rows (which would be looser than needed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from geo.accuracy import MEASURES, TRUTH_SENTENCE, Accuracy

__all__ = [
    "AREA_SENTENCE",
    "COUNT_COLUMNS",
    "OUTSIDE_AREAS",
    "DEFAULT_WEIGHTING",
    "GRID_WEIGHTINGS",
    "default_weighting",
    "PLACE_WEIGHTINGS",
    "RELIABILITY_WORDS",
    "TABLE_COLUMNS",
    "TRUTH_SENTENCE",
    "WEIGHTINGS",
    "Exposure",
    "widen",
]

WEIGHTINGS = ("area", "settlement", "blend", "population")
DEFAULT_WEIGHTING = "blend"
PLACE_WEIGHTINGS = ("settlement", "blend")  # the weightings that need settlement places
GRID_WEIGHTINGS = ("population",)  # the weightings that need a population grid
GRID_DEFAULT_WEIGHTING = "population"  # the default when a population grid is supplied
TABLE_COLUMNS = [
    "hazard_class",
    "class_rank",
    "nationality",
    "persons_low",
    "persons_estimate",
    "persons_high",
    "cases_low",
    "cases_estimate",
    "cases_high",
]
# The area of the row that holds what falls outside every administrative area.
OUTSIDE_AREAS = "(outside the boundaries)"
AREA_SENTENCE = (
    "By area, each cell's estimate is split between areas by the same weighting as between "
    "classes, so the areas' estimates (with the row '(outside the boundaries)') add up to "
    "the class's estimate; an area's low counts the cells entirely inside it, its high "
    "every cell that touches it: a cell straddling two areas counts in the high of both, "
    "so the areas' highs add up to more than the class's high."
)
# A range is widened once, by the bound of all it sums, never by the sum of its parts'
# bounds: said wherever rows are shown or exported beside a total (no final stop).
ROW_RANGES_SENTENCE = (
    "The rows' lows and highs do not add up to a class's range: each range is widened "
    "once, by the bound of all it sums (the headline gives a class's range over every "
    "nationality); the rows' estimates do add up"
)
# Released groups summed in a row's low (cells inside) and high (cells touching), and
# the persons of the touching cells weighted by the share of their area inside.
COUNT_COLUMNS = ["groups_low", "groups_high", "persons_area"]
_SUMMED = TABLE_COLUMNS[3:] + COUNT_COLUMNS

# When the estimate cannot be trusted (the ``reliability`` column, in words). A range
# wider than WIDE_RANGE_FACTOR (high > 2 × low): the bounds no longer hold the estimate
# within a factor 2 of the truth, so its error rests on the weighting alone. A
# footprint thinner than the cells: the class covers less than THIN_SHARE of the area
# of the cells it touches (weighted by their persons), so most of each cell lies
# outside and where its people live inside it decides the figure; on the coastal strip
# of benchmarks/weighting.py (about 0.2 covered) area and settlement shares were
# 44-66 % off.
WIDE_RANGE_FACTOR = 2.0
THIN_SHARE = 1 / 3
RELIABLE, WIDE_RANGE, THIN_FOOTPRINT = "ok", "wide range", "footprint thinner than cells"
RELIABILITY_WORDS = {
    RELIABLE: "",
    WIDE_RANGE: "the range is too wide for the estimate to be trusted (high more than "
    f"{WIDE_RANGE_FACTOR:g} × low): use low–high",
    THIN_FOOTPRINT: "the footprint is thinner than the released cells (it covers less than "
    f"{THIN_SHARE:.0%} of the cells it touches): the estimate cannot be trusted, use low–high",
}


def reliability(sums: pd.DataFrame, table: pd.DataFrame) -> np.ndarray:
    """Return each row's reliability: ``ok``, ``wide range`` or ``footprint thinner than cells``.

    Parameters
    ----------
    sums
        The rows before widening, with ``persons_area`` (persons of the touching cells
        weighted by area inside) and ``persons_high``.
    table
        The same rows widened (the low and high shown).
    """
    high = table["persons_high"].to_numpy()
    touched = sums["persons_high"].to_numpy().astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        covered = sums["persons_area"].to_numpy() / touched
    thin = (touched > 0) & (covered < THIN_SHARE)
    wide = (high > 0) & (high > WIDE_RANGE_FACTOR * table["persons_low"].to_numpy())
    return np.where(thin, THIN_FOOTPRINT, np.where(wide, WIDE_RANGE, RELIABLE))


def default_weighting(has_population: bool) -> str:
    """Return the default weighting: the population grid when one is given, else blend.

    Chosen by ``benchmarks/weighting.py`` (median and worst |relative error| against
    exact truth, figures in ``benchmarks/README.md``). With a grid, population was best
    on the coastal strip (8 % median against 34-61 %) and on people following a
    generated grid (2 % against 4 %), with the exact, a noisy or a 4× coarser grid, and
    within 3 points of the best on the demo registry with only a GeoNames-made grid.
    Without one, blend stays within 2 points of the best median wherever the
    footprint is not thinner than the cells, and is 47 % off where area is 61 % off.
    """
    return GRID_DEFAULT_WEIGHTING if has_population else DEFAULT_WEIGHTING


def widen(sums: pd.DataFrame, accuracy: Accuracy) -> pd.DataFrame:
    """Return an exposure table whose low and high allow for the release's method.

    Parameters
    ----------
    sums
        Rows with persons / cases low, estimate and high as sums of released values,
        and ``groups_low`` / ``groups_high``: how many released groups each bound sums.
    accuracy
        The release's accuracy.

    Returns
    -------
    pandas.DataFrame
        The rows without the group counts; low lowered by the margin of its groups
        (never below 0), high raised by the margin of its groups, the estimate as is.
    """
    table = sums.drop(columns=[c for c in COUNT_COLUMNS if c in sums.columns])
    for measure in MEASURES:
        low = sums[f"{measure}_low"].to_numpy()
        high = sums[f"{measure}_high"].to_numpy()
        margin_low = accuracy.margin(measure, sums["groups_low"].to_numpy())
        margin_high = accuracy.margin(measure, sums["groups_high"].to_numpy())
        table[f"{measure}_low"] = np.maximum(low - margin_low, 0).astype("int64")
        table[f"{measure}_high"] = (high + margin_high).astype("int64")
    if "persons_area" in sums.columns:
        table["reliability"] = reliability(sums, table)
    return table


@dataclass
class Exposure:
    """An exposure table with the facts needed to label and export it.

    Attributes
    ----------
    table
        The rows shown and exported: class × nationality, or class × area ×
        nationality with ``admin_field`` first; low and high already widened.
    by_class
        The class × nationality rows (widened), whatever ``table`` is.
    weighting, cumulative, admin_field, notes
        How the estimate was made and what the reader should know.
    accuracy
        The release's method, noise scale, confidence and withheld persons.
    sums
        ``by_class`` before widening, with the group counts of each bound: what
        totals over several rows are widened from. None: totals are plain sums.
    ordered
        False when the classes have no severity order (see
        :mod:`geo.footprint_classes`): there is then no worst class, and
        :meth:`headline` names none.
    """

    table: pd.DataFrame
    by_class: pd.DataFrame
    weighting: str
    cumulative: bool
    admin_field: str | None = None
    notes: list[str] = field(default_factory=list)
    accuracy: Accuracy = field(default_factory=Accuracy)
    sums: pd.DataFrame | None = None
    area_sums: pd.DataFrame | None = None
    ordered: bool = True

    @property
    def confidence(self) -> float:
        """Return the confidence that the truth lies in [low, high] (1: certain)."""
        return self.accuracy.confidence

    @property
    def withheld_persons(self) -> int | None:
        """Return the persons the release withholds (a protected figure), if it says."""
        return self.accuracy.withheld_persons

    def statement(self) -> str:
        """Return the sentence that says where the true number lies, for the release's method."""
        return self.accuracy.truth_sentence()

    def class_totals(self) -> pd.DataFrame:
        """Return the totals of each class over every nationality, most severe first.

        Computed on the class table, never by summing administrative areas (a cell that
        touches two areas counts in both areas' high), and widened once for all the
        groups summed.

        Returns
        -------
        pandas.DataFrame
            ``hazard_class``, ``class_rank``, persons and cases low, estimate and high,
        and ``reliability``.
        """
        keys = ["hazard_class", "class_rank"]
        rows = self.by_class if self.sums is None else self.sums
        summed = [c for c in _SUMMED if c in rows.columns]
        totals = rows.groupby(keys, as_index=False, sort=False)[summed].sum()
        if self.sums is not None:
            totals = widen(totals, self.accuracy)
        elif "reliability" in rows.columns:
            totals["reliability"] = reliability(
                totals.assign(persons_area=totals["persons_estimate"]), totals
            )
        totals = totals.sort_values("class_rank", ascending=False, kind="stable")
        return totals.reset_index(drop=True)

    def area_totals(self) -> pd.DataFrame | None:
        """Return each area's totals per class over every nationality (None: no areas).

        Widened once for all the groups each row sums, from ``area_sums``. Areas in
        alphabetical order, the row outside the boundaries last, most severe class first.
        """
        if self.area_sums is None or self.admin_field is None:
            return None
        keys = [self.admin_field, "hazard_class", "class_rank"]
        summed = [c for c in _SUMMED if c in self.area_sums.columns]
        totals = self.area_sums.groupby(keys, as_index=False, sort=False)[summed].sum()
        totals = widen(totals, self.accuracy)
        outside = totals[self.admin_field] == OUTSIDE_AREAS
        totals = totals.assign(_outside=outside).sort_values(
            ["_outside", self.admin_field, "class_rank"],
            ascending=[True, True, False],
            kind="stable",
        )
        return totals.drop(columns="_outside").reset_index(drop=True)

    def headline(self) -> pd.Series:
        """Return persons low / estimate / high in the most severe class with anyone.

        The first row of :meth:`class_totals` that any released group touches, with its
        ``reliability`` and the words that go next to the figure (empty when ``ok``);
        no class (None) when nobody is exposed or the classes have no order.
        """
        totals = self.class_totals()
        exposed = totals[totals["persons_high"] > 0]
        if exposed.empty or not self.ordered:
            return pd.Series(
                {
                    "hazard_class": None,
                    "persons_low": 0,
                    "persons_estimate": 0,
                    "persons_high": 0,
                    "reliability": RELIABLE,
                    "reliability_words": "",
                }
            )
        worst = exposed.iloc[0]
        state = worst.get("reliability", RELIABLE)
        return pd.Series(
            {
                "hazard_class": worst["hazard_class"],
                "persons_low": int(worst["persons_low"]),
                "persons_estimate": int(worst["persons_estimate"]),
                "persons_high": int(worst["persons_high"]),
                "reliability": state,
                "reliability_words": RELIABILITY_WORDS[state],
            }
        )
