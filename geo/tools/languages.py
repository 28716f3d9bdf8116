"""The languages to warn people in: official and widely spoken languages per nationality.

From the Unicode CLDR territory data that ``babel`` ships (offline): a nationality's
persons count toward each language that is **official** in its country (de jure or de
facto, at national level: ``babel.languages.get_official_languages(territory,
regional=False, de_facto=True)``) or **spoken by at least** :data:`WIDELY_SPOKEN_PERCENT`
**% of its population** (CLDR's territory language populations). A person may speak
several, so the persons of the languages add up to more than the persons exposed.
Stateless, unknown and "other" nationalities have no country: their persons are counted
under "language not known".

``babel`` is imported inside the functions (its data load takes a while), never at
import time.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import pandas as pd

WIDELY_SPOKEN_PERCENT = 25.0
UNKNOWN_LANGUAGE = "language not known"
LANGUAGE_RULE = (
    "A nationality's persons count toward each language official in its country (de jure "
    f"or de facto) or spoken by at least {WIDELY_SPOKEN_PERCENT:g} % of its population "
    "(Unicode CLDR territory data, via babel); one person may speak several, so the "
    "languages add up to more than the persons exposed."
)
LANGUAGE_COLUMNS = ["nationality", "language", "language_name", "official", "population_percent"]


def _alpha2(iso3: str) -> str | None:
    """Return the ISO 3166-1 alpha-2 code of an alpha-3 code (None: stateless, other…)."""
    import pycountry

    if iso3 == "XKX":
        return "XK"
    country = pycountry.countries.get(alpha_3=iso3)
    return country.alpha_2 if country else None


@cache
def language_name(code: str) -> str:
    """Return a language's English name from CLDR (``ro`` → "Romanian"; script in brackets)."""
    from babel import Locale, UnknownLocaleError

    names = Locale("en").languages
    if code in names:
        return names[code]
    try:
        return Locale.parse(code).get_display_name("en") or code
    except (ValueError, UnknownLocaleError):
        base = code.split("_")[0]
        return names.get(base, code)


@cache
def _territory_languages(iso3: str, min_percent: float) -> tuple[tuple[str, bool, float], ...]:
    """Return (language code, official, percent spoken) for a nationality, most spoken first."""
    from babel.core import get_global
    from babel.languages import get_official_languages

    alpha2 = _alpha2(iso3)
    if alpha2 is None:
        return ()
    official = set(get_official_languages(alpha2, regional=False, de_facto=True))
    spoken = get_global("territory_languages").get(alpha2, {})
    rows = []
    for code, info in spoken.items():
        percent = float(info.get("population_percent") or 0.0)
        if code in official or percent >= min_percent:
            rows.append((code, code in official, percent))
    rows += [(code, True, 0.0) for code in official if code not in spoken]
    return tuple(sorted(rows, key=lambda row: (-row[2], row[0])))


def nationality_languages(
    nationalities: Iterable[str], min_percent: float = WIDELY_SPOKEN_PERCENT
) -> pd.DataFrame:
    """Return the languages counted for each nationality (see :data:`LANGUAGE_RULE`).

    Returns
    -------
    pandas.DataFrame
        ``nationality``, ``language`` (CLDR code), ``language_name`` (English),
        ``official`` (bool), ``population_percent`` (share of the country speaking it);
        a nationality with no country (``OTH``, ``XXA``, ``XXX``) has no row.
    """
    rows = [
        (iso3, code, language_name(code), official, percent)
        for iso3 in dict.fromkeys(str(n) for n in nationalities)
        for code, official, percent in _territory_languages(iso3, float(min_percent))
    ]
    return pd.DataFrame(rows, columns=LANGUAGE_COLUMNS)


def languages_by_persons(
    persons: pd.DataFrame, min_percent: float = WIDELY_SPOKEN_PERCENT
) -> pd.DataFrame:
    """Return the languages ranked by the exposed persons who may speak them.

    Parameters
    ----------
    persons
        One row per nationality: ``nationality``, ``persons_low``,
        ``persons_estimate``, ``persons_high`` (released values).

    Returns
    -------
    pandas.DataFrame
        ``language``, ``language_name``, persons low / estimate / high (the sums over
        the nationalities counted toward the language) and ``nationalities`` (their
        codes, most persons first); "language not known" last for persons of no
        country. Ranked by estimate, then name.
    """
    measures = ["persons_low", "persons_estimate", "persons_high"]
    ranked = persons.sort_values("persons_estimate", ascending=False, kind="stable")
    spoken = nationality_languages(ranked["nationality"], min_percent)
    joined = spoken.merge(ranked[["nationality", *measures]], on="nationality")
    table = (
        joined.groupby(["language", "language_name"], sort=False)
        .agg(
            **{m: (m, "sum") for m in measures},
            nationalities=("nationality", lambda codes: ", ".join(codes)),
        )
        .reset_index()
        .sort_values(["persons_estimate", "language_name"], ascending=[False, True])
    )
    unknown = ranked[~ranked["nationality"].isin(spoken["nationality"])]
    if len(unknown):
        row = {m: int(unknown[m].sum()) for m in measures}
        row.update(
            language="",
            language_name=UNKNOWN_LANGUAGE,
            nationalities=", ".join(unknown["nationality"]),
        )
        table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
    for measure in measures:
        table[measure] = table[measure].astype("int64")
    return table.reset_index(drop=True)
