"""Rules for the releases of one store taken together: a series, and its audiences.

Every release of a store is published beside every earlier one. Releases made under
another resolution, floor, threshold, rounding or consent scope can be differenced
against each other, so a store's releases keep the first release's policy; audiences
that are subsets of its nationalities cannot be (each nationality's groups are
protected on their own, so an embassy release is exactly the public release's rows of
its nationality). A release over another freshness window (``as_of``,
``confirmed_within``) is another audience too: the ledger audit links it to the others
as it links consent patterns. Pure: the ledger's entries and the audience are handed in.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import polars as pl

from geo.errors import InputError
from geo.release import ReleasePolicy

# The settings a store's release series keeps.
SERIES_SETTINGS = (
    "base_resolution",
    "floor_resolution",
    "k",
    "round_to",
    "noise_scale",
    "consent_scope",
    "legal_basis",
)


def refuse_small_nationalities(records: pl.DataFrame, policy: ReleasePolicy) -> None:
    """Refuse an audience naming a nationality with fewer than k registrations (or none).

    Such a release would publish nothing for it but its policy, and anything it said
    (even "nothing published") would be about fewer than k people. None and 1..k−1 get
    the same words, so the refusal itself does not tell them apart.

    Raises
    ------
    InputError
        Naming the nationalities under k.
    """
    if not policy.nationalities:
        return
    counts = records.group_by("nationality").agg(pl.col("cases").sum().alias("n"))
    present = dict(zip(counts["nationality"].to_list(), counts["n"].to_list(), strict=True))
    small = [code for code in policy.nationalities if present.get(code, 0) < policy.k]
    if small:
        raise InputError(
            f"the audience's nationalities {', '.join(small)} have fewer than k={policy.k} "
            "registrations in the store under this consent scope (perhaps none); a release "
            "for them would be about fewer than k people. Leave them out of --nationality."
        )


def refuse_series_conflict(entries: Sequence[dict], policy: ReleasePolicy) -> None:
    """Refuse a policy that differs from the store's series (its first release's policy).

    ``entries`` is the store's ledger, oldest first (:func:`geo.io.ledger.ledger`).

    Raises
    ------
    InputError
        Naming the earlier release the new one would meet and the setting that differs.
    """
    if not entries:
        return
    first = entries[0]
    defaults = ReleasePolicy()  # a setting an older ledger does not name had its default
    series = {name: first["policy"].get(name, getattr(defaults, name)) for name in SERIES_SETTINGS}
    differing = [
        f"{name.replace('_', ' ')} {series[name]!r} → {getattr(policy, name)!r}"
        for name in SERIES_SETTINGS
        if series[name] != getattr(policy, name)
    ]
    if differing:
        raise InputError(
            f"this release would meet release #{first['release_id']} ({first['file_name']}) "
            f"of the same store with another {', '.join(differing)}: the two could be "
            "differenced to reveal small groups. A store's releases keep its first "
            "release's policy (audiences may differ by nationality); use a new store for "
            "a new series."
        )


def series_table(releases: Sequence[dict]) -> pd.DataFrame:
    """Return releases as a series: one row each, with the change since the previous one.

    ``releases`` are dicts with ``name``, ``created``, ``store_version``, ``audience``
    (nationalities or "all"), ``groups`` and ``persons`` (published). Changes are taken
    between releases of the same audience, ordered by store version, and are differences
    of published figures only.
    """
    columns = ["name", "created", "store_version", "audience", "groups", "persons"]
    table = pd.DataFrame(list(releases), columns=columns)
    if table.empty:
        return table
    table = table.sort_values(["audience", "store_version", "created"], kind="stable")
    by_audience = table.groupby("audience", sort=False)
    table["persons change"] = by_audience["persons"].diff().astype("Int64")
    table["groups change"] = by_audience["groups"].diff().astype("Int64")
    return table.reset_index(drop=True)


def series_display(table: pd.DataFrame) -> pd.DataFrame:
    """Return a series table with readable titles; a first release's change reads "first"."""
    shown = table.rename(columns={"store_version": "store version"}).astype(object)
    for column in ("persons change", "groups change"):
        if column in shown:
            shown[column] = shown[column].map(lambda v: "first" if pd.isna(v) else f"{v:+,}")
    return shown


def series_sentence(table: pd.DataFrame, name: str) -> str:
    """Return where the named release stands among its audience's releases, in words.

    ``table`` is :func:`series_table`; the sentence uses published figures only.
    """
    rows = table[table["name"] == name]
    if rows.empty:
        return ""
    row = rows.iloc[0]
    same = table[table["audience"] == row["audience"]].reset_index(drop=True)
    position = int(same.index[same["name"] == name][0])
    newest = "the newest" if position == len(same) - 1 else "not the newest"
    text = (
        f"This release is release {position + 1} of {len(same)} here for its audience "
        f"({row['audience']}), made at store version {row['store_version']}, {newest}."
    )
    if position:
        text += (
            f" Since the previous one: {int(row['persons change']):+,} persons and "
            f"{int(row['groups change']):+,} groups published."
        )
    return text
