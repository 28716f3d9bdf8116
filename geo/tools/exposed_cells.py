"""Release × footprint classes → the exposure of each released cell, for the map.

The map draws the same figures as the exposure table, one hexagon at a time: for each
released cell and class it touches, persons low (the cell lies entirely inside), the
estimate (weighted by the share inside, as the table's) and high (the cell touches),
per nationality and summed over them. The sums are made by the table's own function
(:func:`geo.tools.exposure.exposure_sums`) keyed by (cell, nationality) instead of
nationality, so summing the map's cells of a class gives back the table's row exactly
(low and high; the estimate before the table rounds it). Low and high are widened by
what the release's method can move (:func:`geo.exposure_table.widen`) at each level
they are shown at: a cell's total is widened as one sum, not as the sum of its parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd

from geo.accuracy import Accuracy
from geo.exposure_table import DEFAULT_WEIGHTING, widen
from geo.release import Release
from geo.tools.exposure import check_weighting, class_zones, exposure_sums

KEY_SEPARATOR = "\x1f"  # never in an H3 id; splits (cell, nationality) keys apart
CELL_COLUMNS = [
    "h3_cell",
    "class_label",
    "class_rank",
    "persons_low",
    "persons_estimate",
    "persons_high",
]


@dataclass(frozen=True)
class ExposedCells:
    """The exposure of each released cell that touches a class.

    Attributes
    ----------
    by_nationality : pandas.DataFrame
        ``h3_cell``, ``class_label``, ``class_rank``, ``nationality`` and persons /
        cases low, estimate (unrounded) and high, one row per cell, class and
        nationality; low and high widened per row.
    by_cell : pandas.DataFrame
        ``CELL_COLUMNS``: the same summed over nationalities (widened as one sum).
    """

    by_nationality: pd.DataFrame
    by_cell: pd.DataFrame

    def worst(self, cumulative: bool = False) -> pd.DataFrame:
        """Return :func:`cell_class` of these cells."""
        return cell_class(self.by_cell, cumulative)


def exposed_cells(
    release: Release,
    classes: gpd.GeoDataFrame,
    *,
    weighting: str = DEFAULT_WEIGHTING,
    accuracy: Accuracy | None = None,
    nationalities: list[str] | None = None,
    places: pd.DataFrame | None = None,
    population: pd.DataFrame | None = None,
) -> ExposedCells:
    """Return the exposure of every released cell that touches a class (see the module).

    Takes the options of :func:`geo.tools.exposure.compute_exposure`; ``accuracy`` is
    the release's (read from its metadata when None).

    Raises
    ------
    InputError
        For an unknown weighting.
    """
    check_weighting(weighting)
    accuracy = accuracy or Accuracy.of(release.metadata)
    groups = release.groups
    if nationalities:
        groups = groups[groups["nationality"].isin(nationalities)]
    keyed = groups.assign(
        nationality=groups["h3_cell"].astype(str)
        + KEY_SEPARATOR
        + groups["nationality"].astype(str)
    )
    sums, _ = exposure_sums(
        keyed, class_zones(classes), weighting, [], places, population, round_estimates=False
    )
    keys = sums["nationality"].astype(str).str.split(KEY_SEPARATOR, n=1, expand=True)
    if sums.empty:
        keys = pd.DataFrame({0: pd.Series(dtype=object), 1: pd.Series(dtype=object)})
    sums = sums.drop(columns=["nationality", "hazard_class"]).assign(
        h3_cell=keys[0].to_numpy(),
        nationality=keys[1].to_numpy(),
        class_label=sums["hazard_class"].to_numpy(),
    )
    sums = sums.drop(columns=["persons_area"])
    by_nationality = widen(sums, accuracy)
    summed = ["persons_low", "persons_estimate", "persons_high", "groups_low", "groups_high"]
    per_cell = sums.groupby(["h3_cell", "class_label", "class_rank"], as_index=False)[summed].sum()
    for measure in ("cases_low", "cases_estimate", "cases_high"):
        per_cell[measure] = 0  # widen() reads both measures; the map shows persons only
    by_cell = widen(per_cell, accuracy)[CELL_COLUMNS]
    order = ["h3_cell", "class_rank"]
    return ExposedCells(
        by_nationality.sort_values(
            [*order, "persons_estimate"], ascending=[True, False, False]
        ).reset_index(drop=True)[
            ["h3_cell", "class_label", "class_rank", "nationality"]
            + [c for c in by_nationality.columns if c.startswith(("persons_", "cases_"))]
        ],
        by_cell.sort_values(order, ascending=[True, False]).reset_index(drop=True),
    )


def cell_class(by_cell: pd.DataFrame, cumulative: bool = False) -> pd.DataFrame:
    """Return one row per cell: the most severe class it touches and its persons inside.

    The colour of a hexagon on the map is the worst class it reaches (as the GeoJSON
    export's ``class_label``); its shade is its estimated persons inside the footprint:
    the sum over its classes when they are disjoint bands, the largest (the widest
    class) when they are nested "at least" classes (``cumulative``).

    Returns
    -------
    pandas.DataFrame
        ``h3_cell``, ``class_label``, ``class_rank`` (worst) and ``persons_inside``.
    """
    ranked = by_cell.sort_values(["h3_cell", "class_rank"], ascending=[True, False])
    worst = ranked.drop_duplicates("h3_cell")[["h3_cell", "class_label", "class_rank"]]
    grouped = by_cell.groupby("h3_cell")["persons_estimate"]
    inside = pd.DataFrame({"sum": grouped.sum(), "max": grouped.max()})
    worst = worst.merge(inside, left_on="h3_cell", right_index=True)
    worst["persons_inside"] = worst["max"] if cumulative else worst["sum"]
    return worst.drop(columns=["sum", "max"]).reset_index(drop=True)
