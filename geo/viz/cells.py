"""The released values to draw on the map, one row per H3 cell (pure, no Streamlit).

Everything a cell carries comes from the release: per H3 cell, sums of released group
values (persons, cases) and the released values per nationality. pydeck sends every
column of a layer's frame to the browser, so the frames built here hold only
``MAP_COLUMNS``: ``h3_cell``, ``resolution``, ``persons``, ``cases`` and
``nationalities`` (released values as text).

Released cells come at several resolutions (groups under k roll up to H3 parents). When
there are more cells than a browser redraws quickly, the finer ones are summed into
their parent at a display resolution (:func:`display_resolution`): still sums of
released values, nothing estimated. Nationality labels and the breakdown filters the map offers
live here too, because the map's widgets and cells must agree on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import h3
import numpy as np
import pandas as pd
import polars as pl
import polars_h3

from geo import codes
from geo.release import Release

MAP_COLUMNS = ["h3_cell", "resolution", "persons", "cases", "nationalities"]
BREAKDOWN_FILTERS = {"sex": codes.SEX_CATEGORIES, "age_band": codes.AGE_BANDS}
TOOLTIP_NATIONALITIES = 3
NATIONALITY_SEPARATOR = "\n"  # one nationality a line: "Romania (ROU): 1,234"
# Hexagons drawn by default: beyond this a map redraw takes over a second in a browser
# without GPU, and a country-wide view shows each hexagon as a pixel or two.
MAX_MAP_CELLS = 10_000


@dataclass(frozen=True)
class MapCells:
    """Released cells ready to draw, with what a breakdown filter could not show.

    Attributes
    ----------
    cells : pandas.DataFrame
        One row per H3 cell: ``h3_cell``, ``resolution``, ``persons`` and ``cases``
        (sums of the released values shown in the cell) and ``nationalities`` (the
        released values per nationality, as text).
    groups_shown : int
        Released (cell, nationality) groups that contribute to the cells.
    groups_not_available : int
        Groups left out because the release has no breakdown for them under the
        filter (their breakdown is "not available"; nothing is estimated).
    released_cells : int
        Distinct released cells the shown groups lie in.
    display_resolution : int or None
        None when every released cell is drawn as released; else the resolution the
        finer cells were summed to (see :func:`display_resolution`).
    """

    cells: pd.DataFrame
    groups_shown: int
    groups_not_available: int
    released_cells: int = 0
    display_resolution: int | None = None


def nationality_label(code: str) -> str:
    """Return ``"Name (ISO3)"`` for a nationality code, for widgets and tables."""
    name = codes.nationality_name(code)
    return code if name == code else f"{name} ({code})"


def display_resolution(cells: pl.DataFrame, max_cells: int) -> int | None:
    """Return the finest resolution at which the cells make at most ``max_cells`` hexagons.

    ``cells`` has ``h3_cell`` and ``resolution`` (one row per released cell). Drawing a
    cell finer than the returned resolution as its parent's hexagon leaves at most
    ``max_cells`` hexagons. None when the cells are already few enough (nothing to sum),
    else a resolution between the coarsest and the finest released one.
    """
    if cells.height <= max_cells:
        return None
    finest, coarsest = int(cells["resolution"].max()), int(cells["resolution"].min())
    for resolution in range(finest - 1, coarsest, -1):
        if _to_resolution(cells, resolution)["h3_cell"].n_unique() <= max_cells:
            return resolution
    return coarsest


def _to_resolution(frame: pl.DataFrame, resolution: int) -> pl.DataFrame:
    """Replace cells finer than ``resolution`` by their parent at ``resolution``."""
    finer = pl.col("resolution") > resolution
    return frame.with_columns(
        pl.when(finer)
        .then(polars_h3.cell_to_parent("h3_cell", resolution))
        .otherwise(pl.col("h3_cell"))
        .alias("h3_cell"),
        pl.when(finer)
        .then(resolution)
        .otherwise(pl.col("resolution"))
        .cast(pl.Int8)
        .alias("resolution"),
    )


@dataclass(frozen=True, eq=False)
class BreakdownRows:
    """A release's breakdown rows as the map's filters read them: in place, not copied.

    ``group`` is each row's group number in :attr:`MapSource.groups` (−1: none);
    ``dimension`` and ``category`` the rows' codes into ``dimensions`` and
    ``categories``; ``persons`` and ``cases`` the release's own arrays. A national
    release's 3.4M rows cost the map one 32-bit group number each (a copy of the rows by
    dimension cost 51 MiB of the server's memory at 10M registrations).
    """

    group: np.ndarray
    dimension: np.ndarray
    dimensions: pd.Index
    category: np.ndarray
    categories: pd.Index
    persons: np.ndarray
    cases: np.ndarray

    def of(self, dimension: str, category: str | None = None) -> np.ndarray:
        """Return the positions of the rows of a dimension (and category) that have a group."""
        wanted = (self.dimension == self.dimensions.get_indexer([dimension])[0]) & (self.group >= 0)
        if category is not None:
            wanted &= self.category == self.categories.get_indexer([category])[0]
        return np.flatnonzero(wanted)


@dataclass(frozen=True, eq=False)
class MapBreakdown:
    """One filter dimension: which groups publish a breakdown on it, and their counts."""

    rows: BreakdownRows
    dimension: str
    published: np.ndarray  # one boolean per group

    def counts(self, category: str) -> tuple[np.ndarray, np.ndarray]:
        """Return persons and cases per group in ``category`` (0 where not published)."""
        rows = self.rows.of(self.dimension, category)
        group = self.rows.group[rows]
        persons = np.zeros(len(self.published), dtype=np.int64)
        cases = np.zeros(len(self.published), dtype=np.int64)
        persons[group] = self.rows.persons[rows]
        cases[group] = self.rows.cases[rows]
        return persons, cases


@dataclass(frozen=True)
class MapSource:
    """A release's values in the form every map filter reads (built once per release).

    Attributes
    ----------
    groups : polars.DataFrame
        One row per released group: ``group`` (its row number), ``h3_cell``,
        ``resolution``, ``nationality``, ``persons``, ``cases``.
    breakdowns : dict of str to MapBreakdown
        Per map filter dimension prepared (``sex``, ``age_band``).
    """

    groups: pl.DataFrame
    breakdowns: dict[str, MapBreakdown]


def release_to_map_source(
    release: Release, dimensions: Sequence[str] = tuple(BREAKDOWN_FILTERS)
) -> MapSource:
    """Return the release's groups and filterable breakdowns for the map (see MapSource).

    A filter change then picks integer group numbers instead of converting and joining
    millions of (cell, nationality) strings: at national scale (a 10M-registration
    release holds 3.4M breakdown rows) that was seconds of every filter change.
    ``dimensions`` limits the breakdowns prepared (none: the map without filters).
    """
    columns = ["h3_cell", "resolution", "nationality", "persons", "cases"]
    groups = pl.from_pandas(release.groups[columns].reset_index(drop=True)).with_row_index("group")
    nationalities = pl.Enum(sorted(groups["nationality"].cast(pl.String).unique()))
    # Cells as integers, nationalities as an enum in code order: sums and sorts of
    # every filter change work on numbers, not strings.
    groups = groups.with_columns(
        polars_h3.str_to_int(pl.col("h3_cell").cast(pl.String)),
        pl.col("nationality").cast(pl.String).cast(nationalities),
    )
    source = MapSource(groups, {})
    return with_breakdowns(source, release, dimensions) if dimensions else source


def with_breakdowns(
    source: MapSource, release: Release, dimensions: Sequence[str] = tuple(BREAKDOWN_FILTERS)
) -> MapSource:
    """Return a groups-only map source with the release's breakdown filters added.

    The groups frame is shared, not rebuilt: the dashboard draws its first map from the
    groups and adds the filters in the background.
    """
    groups = source.groups
    rows = _breakdown_rows(release.breakdowns, groups, groups.schema["nationality"])
    breakdowns = {}
    for dimension in dimensions:
        published = np.zeros(groups.height, dtype=bool)
        published[rows.group[rows.of(dimension)]] = True
        breakdowns[dimension] = MapBreakdown(rows, dimension, published)
    return MapSource(groups, breakdowns)


def _breakdown_rows(
    breakdowns: pd.DataFrame, groups: pl.DataFrame, nationalities: pl.Enum
) -> BreakdownRows:
    """Return a release's breakdown rows numbered by their group (see :class:`BreakdownRows`)."""
    keyed = ("h3_cell", "nationality", "dimension", "category")
    text = {column: _categorical(breakdowns[column]) for column in keyed}
    hexes = pl.Series(text["h3_cell"].categories.astype(str), dtype=pl.String)
    cells = pl.select(polars_h3.str_to_int(hexes)).to_series()
    known = pl.Series(text["nationality"].categories.astype(str), dtype=pl.String).cast(
        nationalities,
        strict=False,  # a breakdown of a nationality with no group: no group
    )
    keys = pl.DataFrame(
        {
            "h3_cell": cells.gather(text["h3_cell"].codes),
            "nationality": known.gather(text["nationality"].codes),
        }
    )
    numbered = keys.join(
        groups.select("group", "h3_cell", "nationality"),
        on=["h3_cell", "nationality"],
        how="left",
        maintain_order="left",
    )["group"]
    return BreakdownRows(
        group=numbered.fill_null(-1).cast(pl.Int32).to_numpy(),
        dimension=text["dimension"].codes,
        dimensions=text["dimension"].categories,
        category=text["category"].codes,
        categories=text["category"].categories,
        persons=breakdowns["persons"].to_numpy(),
        cases=breakdowns["cases"].to_numpy(),
    )


def _categorical(column: pd.Series) -> pd.Categorical:
    """Return a column's values as a categorical (a read release's text already is one)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.array
    return pd.Categorical(column)


def release_to_map_cells(
    release: Release | MapSource,
    nationalities: Sequence[str] | None = None,
    dimension: str | None = None,
    category: str | None = None,
    max_cells: int | None = None,
) -> MapCells:
    """Return the released values to draw, one row per cell, under optional filters.

    Parameters
    ----------
    release
        The protected release (the only data read), or its :class:`MapSource`
        (:func:`release_to_map_source`, built once for many filters).
    nationalities
        Keep only these nationalities (default: all).
    dimension, category
        A breakdown filter, e.g. ``("sex", "F")``. Only groups whose breakdown on
        ``dimension`` is published are shown, with the breakdown's released count
        for ``category`` (a published breakdown without that category counts 0).
    max_cells
        Draw at most this many hexagons: when the released cells are more, those finer
        than :func:`display_resolution` are summed into their parent's hexagon (a sum
        of released values, like every figure on the map). None draws every released
        cell. Tens of thousands of hexagons make a national map slow to redraw and, at
        the zoom that shows a country, are a pixel or two each.

    Returns
    -------
    MapCells

    Raises
    ------
    ValueError
        For a dimension other than ``sex`` or ``age_band``, or an unknown category.
    """
    source = release if isinstance(release, MapSource) else release_to_map_source(release)
    if dimension is not None and category not in BREAKDOWN_FILTERS.get(dimension, ()):
        raise ValueError(f"no map filter for {dimension}={category!r}.")
    located = source.groups
    if nationalities:
        located = located.filter(pl.col("nationality").cast(pl.String).is_in(list(nationalities)))
    not_available = 0
    values = located
    if dimension is not None:
        breakdown = source.breakdowns[dimension]
        number = located["group"].to_numpy()
        published = breakdown.published[number]
        kept = number[published]
        not_available = located.height - len(kept)
        persons, cases = breakdown.counts(category)
        values = located.filter(pl.Series(published)).with_columns(
            pl.Series("persons", persons[kept]), pl.Series("cases", cases[kept])
        )
    values = values.drop("group")
    shown = values.height
    values = values.filter(pl.col("persons") > 0)
    released = values.select("h3_cell", "resolution").unique("h3_cell")
    target = display_resolution(released, max_cells) if max_cells else None
    if target is not None:
        values = _to_resolution(values, target)
    return MapCells(_cells_from_groups(values), shown, not_available, released.height, target)


def _cells_from_groups(values: pl.DataFrame) -> pd.DataFrame:
    """Sum released group values per cell and list them per nationality.

    ``values`` has ``h3_cell``, ``resolution``, ``nationality``, ``persons``, ``cases``.
    The map payload carries this text for every cell, so it lists a cell's largest
    nationalities only, by name and code ("Romania (ROU): 36", one a line), and says
    how many more there are ("and 5 more"). Built in polars: at national
    scale (tens of thousands of cells) a pandas string aggregation took half a second
    of every filter change.
    """
    if values.is_empty():
        return pd.DataFrame(
            {
                "h3_cell": pd.Series(dtype=object),
                "resolution": pd.Series(dtype="int8"),
                "persons": pd.Series(dtype="int64"),
                "cases": pd.Series(dtype="int64"),
                "nationalities": pd.Series(dtype=object),
            }
        )
    if values.schema["h3_cell"] == pl.String:
        values = values.with_columns(polars_h3.str_to_int("h3_cell"))
    # Summed to a display resolution, one nationality's groups of several cells meet.
    # Cells as integers; only the few nationalities a tooltip lists are formatted.
    frame = values.group_by("h3_cell", "nationality").agg(
        pl.col("resolution").first(), pl.col("persons").sum(), pl.col("cases").sum()
    )
    totals = frame.group_by("h3_cell").agg(
        pl.col("resolution").first().cast(pl.Int8),
        pl.col("persons").sum(),
        pl.col("cases").sum(),
        (pl.len().cast(pl.Int64) - TOOLTIP_NATIONALITIES).alias("more"),
    )
    top = (
        frame.sort(["h3_cell", "persons", "nationality"], descending=[False, True, False])
        .group_by("h3_cell", maintain_order=True)
        .head(TOOLTIP_NATIONALITIES)
        .with_columns(pl.col("nationality").cast(pl.String))
    )
    distinct = top["persons"].unique()
    formatted = pl.DataFrame(
        {"persons": distinct, "shown": [f"{int(v):,}" for v in distinct.to_list()]}
    )
    codes = top["nationality"].unique().to_list()
    labels = pl.DataFrame(
        {"nationality": codes, "label": [nationality_label(str(c)) for c in codes]},
        schema={"nationality": pl.String, "label": pl.String},
    )
    listed = (
        top.join(formatted, on="persons", how="left")
        .join(labels, on="nationality", how="left", coalesce=True)
        .group_by("h3_cell", maintain_order=True)
        .agg((pl.col("label") + ": " + pl.col("shown")).str.join(NATIONALITY_SEPARATOR))
    )
    more = pl.col("more")
    cells = (
        totals.join(listed, on="h3_cell", how="left")
        .with_columns(
            polars_h3.int_to_str("h3_cell").alias("h3_cell"),
            nationalities=pl.col("label")
            + pl.when(more > 0)
            .then(pl.lit(NATIONALITY_SEPARATOR + "and ") + more.cast(pl.String) + pl.lit(" more"))
            .otherwise(pl.lit("")),
        )
        .sort(["resolution", "h3_cell"])
        .select("h3_cell", "resolution", "persons", "cases", "nationalities")
    )
    return cells.to_pandas()


def cell_area_km2(resolution: int) -> float:
    """Return the average area of an H3 cell at a resolution, in km²."""
    return float(h3.average_hexagon_area(resolution, unit="km^2"))
