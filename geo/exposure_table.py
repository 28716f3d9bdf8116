"""The exposure table type: what every front end shows and every export writes.

A core type, apart from the computation (:mod:`geo.tools.exposure`) and the writers
(:mod:`geo.io.export`), so that both can use it without depending on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

WEIGHTINGS = ("area", "settlement", "blend")
DEFAULT_WEIGHTING = "blend"
PLACE_WEIGHTINGS = ("settlement", "blend")  # the weightings that need settlement places
TRUTH_SENTENCE = (
    "The true number lies between low and high: low counts only cells entirely inside "
    "the area, high every cell that touches it; the estimate weights each cut cell by "
    "the share of it inside."
)
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


@dataclass
class Exposure:
    """An exposure table with the facts needed to label and export it."""

    table: pd.DataFrame
    by_class: pd.DataFrame
    weighting: str
    cumulative: bool
    admin_field: str | None = None
    notes: list[str] = field(default_factory=list)

    def headline(self) -> pd.Series:
        """Return persons low / estimate / high in the most severe class with anyone.

        Computed on the class table, never by summing administrative areas (a cell
        that touches two areas counts in both areas' high).
        """
        exposed = self.by_class[self.by_class["persons_high"] > 0]
        if exposed.empty:
            return pd.Series(
                {"hazard_class": None, "persons_low": 0, "persons_estimate": 0, "persons_high": 0}
            )
        top = exposed["class_rank"].max()
        worst = exposed[exposed["class_rank"] == top]
        return pd.Series(
            {
                "hazard_class": worst["hazard_class"].iloc[0],
                "persons_low": int(worst["persons_low"].sum()),
                "persons_estimate": int(worst["persons_estimate"].sum()),
                "persons_high": int(worst["persons_high"].sum()),
            }
        )
