"""Registered is not present: released persons of exposed areas beside official stocks.

The registered persons of an area are the release's exposure over the whole area
(low / estimate / high, released values only), summed per nationality, or per ISTAT
citizenship area where the official table has no nationalities. The ratio
registered ÷ official says how far the registry falls short of the people who live
there (irregular migrants least of all register).
"""

from __future__ import annotations

import pandas as pd

from geo import codes

UNMATCHED = "(not matched)"
STOCK_COLUMNS = [
    "area",
    "key",
    "label",
    "registered_low",
    "registered_estimate",
    "registered_high",
    "official",
    "ratio",
]
STOCK_SENTENCE = (
    "Registered: persons in the release (estimate, low–high) living in the whole area; "
    "official: the stock the table gives; ratio: registered estimate ÷ official. A ratio "
    "well under 1 means the registry misses many of the people who live there."
)


def registered_by_key(
    registered: pd.DataFrame, level: str, areas_of: dict[str, str] | None = None
) -> pd.DataFrame:
    """Return registered persons per area and key (nationality, or citizenship area).

    ``registered`` has ``area``, ``nationality`` and persons low / estimate / high;
    ``areas_of`` maps nationalities to citizenship areas (level ``citizenship area``):
    a nationality with no area (``OTH``, unknown) counts under :data:`UNMATCHED`.
    """
    frame = registered.copy()
    if level == "citizenship area":
        frame["key"] = frame["nationality"].map(lambda n: (areas_of or {}).get(n, UNMATCHED))
    else:
        frame["key"] = frame["nationality"]
    measures = ["persons_low", "persons_estimate", "persons_high"]
    return frame.groupby(["area", "key"], as_index=False)[measures].sum()


def compare_stocks(
    registered: pd.DataFrame,
    stocks: pd.DataFrame,
    level: str,
    areas_of: dict[str, str] | None = None,
    key_names: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Return registered persons beside the official stock, per exposed area and key.

    Parameters
    ----------
    registered
        ``area``, ``nationality``, persons low / estimate / high over each exposed area.
    stocks
        ``area``, ``area_code``, ``key``, ``persons`` (:class:`geo.io.stocks.Stocks`);
        an area matches by name or code, case and accents aside.
    level
        ``nationality`` or ``citizenship area``.

    Returns
    -------
    pandas.DataFrame
        :data:`STOCK_COLUMNS`, one row per exposed area and key found in either table
        (official missing: the table has no figure), an ``all`` row per area over the
        keys both tables hold; areas in order, most registered first.
    """
    mine = registered_by_key(registered, level, areas_of)
    by_name = {codes.fold_text(a): a for a in stocks["area"]}
    by_name.update(
        {
            codes.fold_text(c): a
            for a, c in zip(stocks["area"], stocks["area_code"], strict=True)
            if c
        }
    )
    found = mine["area"].map(lambda a: by_name.get(codes.fold_text(str(a))))
    mine["stock_area"] = found.map(lambda a: codes.fold_text(str(a)) if a is not None else None)
    stocks = stocks.assign(area=stocks["area"].map(lambda a: codes.fold_text(str(a))))
    official = stocks.groupby(["area", "key"], as_index=False)["persons"].sum()
    official = official.rename(columns={"area": "stock_area", "persons": "official"})
    joined = mine.merge(official, on=["stock_area", "key"], how="left")
    rows = []
    for area, part in joined.groupby("area", sort=True):
        part = part.sort_values("persons_estimate", ascending=False)
        both = part[part["official"].notna()]
        total = {
            "area": area,
            "key": "all",
            "label": "all matched",
            "registered_low": int(both["persons_low"].sum()),
            "registered_estimate": int(both["persons_estimate"].sum()),
            "registered_high": int(both["persons_high"].sum()),
            "official": both["official"].sum() if len(both) else None,
        }
        rows.append(total)
        for row in part.itertuples():
            rows.append(
                {
                    "area": area,
                    "key": row.key,
                    "label": (key_names or {}).get(row.key, _label(row.key, level)),
                    "registered_low": int(row.persons_low),
                    "registered_estimate": int(row.persons_estimate),
                    "registered_high": int(row.persons_high),
                    "official": row.official,
                }
            )
    table = pd.DataFrame(rows, columns=STOCK_COLUMNS[:-1])
    official_values = pd.to_numeric(table["official"], errors="coerce")
    table["official"] = official_values.astype("Int64")
    table["ratio"] = (
        table["registered_estimate"] / official_values.where(official_values > 0)
    ).round(3)
    return table[STOCK_COLUMNS]


def _label(key: str, level: str) -> str:
    if level == "nationality" and key != UNMATCHED:
        return codes.nationality_name(key)
    return key
