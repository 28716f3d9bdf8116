"""Read exported tables back under the exposure table's own column names, for comparisons."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from geo.export_columns import NATIONALITY_NAME, column_specs
from geo.exposure_table import TABLE_COLUMNS

TITLES = {spec.title: spec.name for spec in column_specs([*TABLE_COLUMNS, "reliability"])}


def machine_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Return an exported frame with the table's column names, the nationality's name dropped.

    ``Area (FIELD)`` becomes ``FIELD``, as in ``Exposure.table``.
    """
    names = [
        title[len("Area (") : -1] if title.startswith("Area (") else TITLES.get(title, title)
        for title in frame.columns
    ]
    return frame.set_axis(names, axis=1).drop(columns=NATIONALITY_NAME, errors="ignore")


def read_exposure_csv(source: str | Path | bytes) -> pd.DataFrame:
    """Read an exported CSV with plain ``pandas.read_csv`` (no options), under the table's names."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    return machine_columns(pd.read_csv(source))
