"""A SYNTHETIC two-source registry with planted duplicates, for measuring the linker.

Persons get syllable-made names (obviously not real ones), a birth date, a passport
number and a nationality; a share of them is registered by both sources. The second
source writes a shared person with realistic identity noise, each independently: a typo
in the surname, the name order swapped, the birth day missing, the name transliterated
(written in Cyrillic, or a common Latin variant: i/y, u/ou, f/ph, v/w, k/q), the passport
number missing; and with a place, family size or update date of its own (the conflicts
the store resolves by the latest update). Vectorised where it matters: a million records
in seconds.
"""

from __future__ import annotations

import numpy as np
import polars as pl

_SYLLABLES = tuple(c + v for c in "bdfgklmnprstvz" for v in "aeiou") + ("an", "el", "or")
_CYRILLIC = dict(
    zip(
        "abvgdezijklmnoprstufhc",
        "абвгдезийклмнопрстуфхц",
        strict=True,
    )
)
_VARIANTS = (("i", "y"), ("u", "ou"), ("f", "ph"), ("v", "w"), ("k", "q"))
NATIONALITIES = {"ROU": 0.3, "UKR": 0.2, "ALB": 0.15, "MAR": 0.15, "PHL": 0.1, "IND": 0.1}
# Probability of each kind of noise on the second source's record of a shared person.
NOISE = {
    "typo": 0.35,
    "swapped_order": 0.3,
    "missing_day": 0.25,
    "cyrillic": 0.1,
    "variant": 0.15,
    "no_passport": 0.5,
}


def synthetic_names(rng: np.random.Generator, count: int, syllables: tuple[int, int]) -> np.ndarray:
    """Return ``count`` capitalised names of syllables (lengths in ``syllables``)."""
    parts = np.array(_SYLLABLES, dtype=object)
    lengths = rng.integers(syllables[0], syllables[1] + 1, count)
    picks = parts[rng.integers(0, len(parts), (count, syllables[1]))]
    return np.array(
        ["".join(row[:n]).capitalize() for row, n in zip(picks, lengths, strict=True)],
        dtype=object,
    )


def _typo(rng: np.random.Generator, word: str) -> str:
    """Return ``word`` with one letter substituted, deleted or inserted (not the first)."""
    at = int(rng.integers(1, max(len(word), 2)))
    letter = chr(int(rng.integers(97, 123)))
    kind = rng.integers(0, 3)
    if kind == 0:
        return word[:at] + letter + word[at + 1 :]
    if kind == 1 and len(word) > 3:
        return word[:at] + word[at + 1 :]
    return word[:at] + letter + word[at:]


def latin_noise(rng: np.random.Generator, given: str, family: str, birth: str) -> tuple[str, str]:
    """Return (full name, birth date) as another source writes them: Latin noise only.

    A typo in the surname, a Latin transliteration variant, the name order swapped and
    the birth day left out, each with its probability of :data:`NOISE`.
    """
    draw = {kind: rng.random() < p for kind, p in NOISE.items()}
    if draw["typo"]:
        family = _typo(rng, family)
    if draw["variant"]:
        old, new = _VARIANTS[int(rng.integers(0, len(_VARIANTS)))]
        given, family = given.replace(old, new), family.replace(old, new)
    name = f"{family} {given}" if draw["swapped_order"] else f"{given} {family}"
    return name, birth[:7] if draw["missing_day"] else birth


def _cyrillic(text: str) -> str:
    return "".join(_CYRILLIC.get(c, _CYRILLIC.get(c.lower(), c)) for c in text.lower()).title()


def persons(n: int, seed: int = 0) -> pl.DataFrame:
    """Return ``n`` SYNTHETIC persons: given and family name, birth date, passport, nationality."""
    rng = np.random.default_rng(seed)
    given = synthetic_names(rng, max(n // 50, 500), (2, 3))
    family = synthetic_names(rng, max(n // 5, 2000), (2, 4))
    birth = np.datetime64("1950-01-01") + rng.integers(0, 55 * 365, n).astype("timedelta64[D]")
    codes = list(NATIONALITIES)
    return pl.DataFrame(
        {
            "person": np.arange(n),
            "given": given[rng.integers(0, len(given), n)],
            "family": family[rng.integers(0, len(family), n)],
            "birth": birth,
            # A bijection of the person number (99,999,989 is prime): unique passports.
            "passport": [f"P{(v * 48_271 + 12_345) % 99_999_989:08d}" for v in range(n)],
            "nationality": rng.choice(codes, n, p=list(NATIONALITIES.values())),
            "latitude": 42.79 + rng.normal(0, 0.05, n),
            "longitude": 13.09 + rng.normal(0, 0.05, n),
            "family_members": rng.choice([0, 1, 2, 3], n, p=[0.5, 0.2, 0.2, 0.1]),
        }
    )


def two_sources(
    n_persons: int, shared: float = 0.3, seed: int = 0
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return the consular and the agency file of a registry with planted duplicates.

    Each person is in the consular file, the agency file or both (``shared`` of them);
    both files have the raw columns a source writes (``record_id``, ``full_name``,
    ``birth_date``, ``passport_no``, ``nationality``, coordinates, ``family_members``,
    ``consent``, ``updated_at``) and the truth column ``person`` (drop it before writing
    a file to ingest).
    """
    rng = np.random.default_rng(seed + 1)
    people = persons(n_persons, seed)
    where = rng.choice(3, n_persons, p=[(1 - shared) / 2, (1 - shared) / 2, shared])
    consular = _render(people.filter(pl.Series(where != 1)), "consular", rng, noisy=False)
    agency = _render(people.filter(pl.Series(where != 0)), "agency", rng, noisy=True)
    return consular, agency


def _render(people: pl.DataFrame, source: str, rng: np.random.Generator, noisy: bool):
    """Return one source's rows for ``people``; the agency's with identity noise."""
    n = people.height
    given, family = people["given"].to_numpy().copy(), people["family"].to_numpy().copy()
    birth = people["birth"].dt.strftime("%Y-%m-%d").to_numpy().astype(object)
    passport = people["passport"].to_numpy().astype(object)
    order_swapped = np.zeros(n, dtype=bool)
    lat, lon = people["latitude"].to_numpy(), people["longitude"].to_numpy()
    members = people["family_members"].to_numpy()
    day = np.datetime64("2025-01-01") + rng.integers(0, 300, n).astype("timedelta64[D]")
    if noisy:
        draw = {kind: rng.random(n) < p for kind, p in NOISE.items()}
        for i in np.flatnonzero(draw["typo"]):
            family[i] = _typo(rng, family[i])
        for i in np.flatnonzero(draw["variant"]):
            old, new = _VARIANTS[int(rng.integers(0, len(_VARIANTS)))]
            given[i], family[i] = given[i].replace(old, new), family[i].replace(old, new)
        for i in np.flatnonzero(draw["cyrillic"]):
            given[i], family[i] = _cyrillic(given[i]), _cyrillic(family[i])
        order_swapped = draw["swapped_order"]
        birth = np.where(draw["missing_day"], [b[:7] for b in birth], birth)
        passport = np.where(draw["no_passport"], None, passport)
        moved = rng.random(n) < 0.3
        lat, lon = lat + moved * rng.normal(0, 0.05, n), lon + moved * rng.normal(0, 0.05, n)
        members = np.where(rng.random(n) < 0.15, members + 1, members)
    names = np.where(
        order_swapped,
        np.char.add(np.char.add(family.astype(str), " "), given.astype(str)),
        np.char.add(np.char.add(given.astype(str), " "), family.astype(str)),
    )
    prefix = {"consular": "CR", "agency": "RA"}[source]
    return pl.DataFrame(
        {
            "record_id": [f"{prefix}-{i:07d}" for i in range(n)],
            "source": source,
            "full_name": names.tolist(),
            "birth_date": list(birth),
            "passport_no": list(passport),
            "nationality": people["nationality"],
            "latitude": lat.round(6),
            "longitude": lon.round(6),
            "family_members": members,
            "consent": "aggregate",
            "updated_at": day.astype(str),
            "person": people["person"],
        },
        schema_overrides={
            "full_name": pl.String,
            "birth_date": pl.String,
            "passport_no": pl.String,
        },
    )
