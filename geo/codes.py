"""Controlled vocabularies: nationality codes, sex, age bands, vulnerabilities, consent.

Everything here is a pure lookup, so that the reader, the release and the pages agree
on one spelling of every category.
"""

from __future__ import annotations

import unicodedata
from functools import cache

import pycountry

STATELESS = "XXA"
UNKNOWN_NATIONALITY = "XXX"
OTHER_NATIONALITIES = "OTH"

SEX_CATEGORIES = ("F", "M", "X", "unknown")
AGE_BANDS = ("0-4", "5-17", "18-59", "60+", "unknown")
VULNERABILITIES = (
    "disability",
    "pregnant",
    "unaccompanied_minor",
    "older_person_alone",
    "medical",
    "other",
)
CONSENT_SCOPES = ("aggregate", "origin_state", "host_state", "humanitarian")

_SEX_WORDS = {
    "f": "F",
    "female": "F",
    "woman": "F",
    "w": "F",
    "femme": "F",
    "femmina": "F",
    "m": "M",
    "male": "M",
    "man": "M",
    "homme": "M",
    "maschio": "M",
    "x": "X",
    "other": "X",
    "diverse": "X",
    "non-binary": "X",
    "nonbinary": "X",
    "": "unknown",
    "u": "unknown",
    "unknown": "unknown",
    "not stated": "unknown",
}

_EXTRA_NATIONALITY_NAMES = {
    "stateless": STATELESS,
    "apatride": STATELESS,
    "apolide": STATELESS,
    "unknown": UNKNOWN_NATIONALITY,
    "kosovo": "XKX",
    "xk": "XKX",
    "xkx": "XKX",
    "palestine": "PSE",
    "russia": "RUS",
    "syria": "SYR",
    "iran": "IRN",
    "south korea": "KOR",
    "north korea": "PRK",
    "laos": "LAO",
    "vietnam": "VNM",
    "bolivia": "BOL",
    "venezuela": "VEN",
    "tanzania": "TZA",
    "moldova": "MDA",
    "ivory coast": "CIV",
    "cape verde": "CPV",
    "swaziland": "SWZ",
    "macedonia": "MKD",
    "burma": "MMR",
    "czech republic": "CZE",
    "turkey": "TUR",
    "united states": "USA",
    "usa": "USA",
    "uk": "GBR",
    "great britain": "GBR",
    "democratic republic of the congo": "COD",
    "dr congo": "COD",
    "republic of the congo": "COG",
    "congo": "COG",
}


def fold_text(value: str) -> str:
    """Return ``value`` case-folded, accent-free and with single spaces, for lookups."""
    decomposed = unicodedata.normalize("NFKD", value)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.replace("’", "'").casefold().split())


@cache
def nationality_lookup() -> dict[str, str]:
    """Return a map from every accepted spelling (folded) to ISO 3166-1 alpha-3.

    Accepts alpha-3, alpha-2, English short, common and official names from pycountry,
    plus ``XXA`` (stateless), ``XXX`` (unknown), ``XKX`` (Kosovo) and a few common
    English variants.
    """
    lookup: dict[str, str] = {}
    for country in pycountry.countries:
        code = country.alpha_3
        for attr in ("alpha_3", "alpha_2", "name", "common_name", "official_name"):
            value = getattr(country, attr, None)
            if value:
                lookup[fold_text(value)] = code
    for code in (STATELESS, UNKNOWN_NATIONALITY):
        lookup[fold_text(code)] = code
    lookup.update({fold_text(k): v for k, v in _EXTRA_NATIONALITY_NAMES.items()})
    return lookup


def nationality_to_iso3(value: str | None) -> str | None:
    """Return the ISO 3166-1 alpha-3 code for ``value``, or None when not recognised."""
    if value is None:
        return None
    return nationality_lookup().get(fold_text(str(value)))


def nationality_name(code: str) -> str:
    """Return a display name for an alpha-3 code (or the code itself when unknown)."""
    special = {
        STATELESS: "Stateless",
        UNKNOWN_NATIONALITY: "Unknown nationality",
        OTHER_NATIONALITIES: "Other nationalities (each under k)",
        "XKX": "Kosovo",
    }
    if code in special:
        return special[code]
    country = pycountry.countries.get(alpha_3=code)
    return getattr(country, "common_name", None) or (country.name if country else code)


def sex_to_category(value: str | None) -> str | None:
    """Return F, M, X or unknown for a sex or gender word; None when not recognised."""
    if value is None:
        return "unknown"
    return _SEX_WORDS.get(fold_text(str(value)))


def terms_to_mask(terms: list[str], vocabulary: tuple[str, ...]) -> int:
    """Return the bit mask of ``terms`` in ``vocabulary`` (bit i = vocabulary[i]).

    Raises
    ------
    ValueError
        If a term is not in the vocabulary.
    """
    mask = 0
    for term in terms:
        mask |= 1 << vocabulary.index(term)
    return mask
