"""The SYNTHETIC registry of the central-Italy demo: three raw source files and the truth.

Everything produced here is SYNTHETIC: the number of persons per province and
citizenship area follows ISTAT's foreign residents on 1 January 2023 (times ``scale``),
the nationalities inside an area follow ISTAT's Italy-wide table by country, and cases
are placed around GeoNames settlements or scattered over the province
(:mod:`demo.cases`); names are made of syllables, and every phone number, passport
number and note is obviously fake. This module renders the true cases the way three
sources write them (record ids, direct identifiers, nationality forms, age or birth
year), injects a few bad rows of known kinds, registers some consular cases' persons
again in the recruitment agency's file (with identity noise: the store links them), and
writes one raw file per source plus the truth file, so that ingest, rejects, linking and
the exposure estimate can be checked against what is known to be true.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pycountry

from demo.cases import FIRST_DAY, SOURCES, draw_true_cases
from demo.linkage import latin_noise, synthetic_names

RECORD_ID_PREFIX = {
    "consular_registration": "CR",
    "host_state_arrivals": "HA",
    "recruitment_agency": "RA",
}
RAW_COLUMNS = (
    "source",
    "record_id",
    "full_name",
    "date_of_birth",
    "passport_no",
    "phone",
    "email",
    "preferred_language",
    "address",
    "nationality",
    "sex",
    "age",
    "birth_year",
    "family_members",
    "latitude",
    "longitude",
    "vulnerabilities",
    "consent",
    "updated_at",
    "notes",
)
IDENTIFIER_COLUMNS = (
    "full_name",
    "date_of_birth",
    "passport_no",
    "phone",
    "email",
    "address",
    "notes",
)
TRUTH_COLUMNS = (
    "nationality_iso3",
    "province_code",
    "placement",
    "true_latitude",
    "true_longitude",
    "true_family_members",
    "expected_problem",
    "same_person_as",
)
# Share of the consular registrations whose person the recruitment agency registered too
# (with its own record id and the identity noise of demo.linkage.latin_noise).
SHARED_WITH_AGENCY = 0.1
# Column names as each source writes them (canonical name -> alias); others unchanged.
COLUMN_ALIASES = {
    "consular_registration": {},
    "host_state_arrivals": {
        "nationality": "citizenship",
        "sex": "gender",
        "family_members": "dependants",
        "latitude": "lat",
        "longitude": "lon",
    },
    "recruitment_agency": {"sex": "gender", "latitude": "lat", "longitude": "lng"},
}
FILE_NAMES = {
    "consular_registration": "SYNTHETIC_consular_registration.csv",
    "host_state_arrivals": "SYNTHETIC_host_state_arrivals.xlsx",
    "recruitment_agency": "SYNTHETIC_recruitment_agency.csv",
}
TRUTH_FILE_NAME = "SYNTHETIC_truth.parquet"
# Share of cases carrying each problem (about 0.5 % in all); at least one row per tag.
BAD_ROW_RATES = {
    "unknown_nationality": 0.0009,
    "swapped_latlon": 0.0007,
    "latitude_out_of_range": 0.0005,
    "null_island": 0.0005,
    "non_numeric_family_members": 0.0005,
    "implausible_family_members": 0.0005,
    "missing_record_id": 0.0007,
    "superseded_duplicate": 0.0007,
}

_NATIONALITY_STYLES = ("alpha3", "alpha2_lower", "alpha2_upper", "name", "name_upper", "name_lower")
_SOURCE_STYLE_WEIGHTS = {
    "consular_registration": (0.85, 0.0, 0.0, 0.10, 0.05, 0.0),
    "host_state_arrivals": (0.15, 0.0, 0.0, 0.55, 0.20, 0.10),
    "recruitment_agency": (0.0, 0.35, 0.20, 0.35, 0.10, 0.0),
}
_NOTE_PHRASES = (
    "",
    "",
    "called back, no answer",
    "family joined later; follow-up needed",
    'prefers SMS, said "ok" to calls',
    "first line of a note\nsecond line of a note",
    "seasonal harvest work near the coast",
    "permit renewed; documents seen",
    "speaks Français and some Italiano",
    "moved within the province",
    "asked about flights to São Paulo",
    "met at the office in Città di Castello",
)
# Preferred language of contact (ISO 639-1) by nationality, for the outreach contact list;
# a deterministic lookup, so the generator's random draws stay as they were.
_LANGUAGES = {
    "ROU": "ro", "ALB": "sq", "CHN": "zh", "UKR": "uk", "MAR": "ar", "BGD": "bn",
    "IND": "hi", "PAK": "ur", "PHL": "tl", "LKA": "si", "NGA": "en", "PER": "es",
    "EGY": "ar", "SEN": "fr", "MDA": "ro", "POL": "pl", "BGR": "bg", "ECU": "es",
    "DEU": "de", "TUN": "ar", "BRA": "pt", "XKX": "sq", "MKD": "mk", "FRA": "fr",
    "ESP": "es", "RUS": "ru", "GHA": "en", "DOM": "es", "CUB": "es", "SRB": "sr",
}  # fmt: skip
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight")
# Codes outside ISO 3166-1 (user-assigned) and English names preferred to pycountry's.
_EXTRA_CODES = {"XKX": ("XK", "Kosovo"), "XXA": ("XXA", "XXA")}
_NAME_OVERRIDES = {"STP": "São Tomé and Príncipe"}


# ------------------------------------------------------------------------------ generator


def generate_demo_registry(seed: int = 2016, scale: float = 0.05) -> pd.DataFrame:
    """Generate the SYNTHETIC registry of the central-Italy demo.

    One row per registration (case): a registrant plus ``family_members`` accompanying
    family. Per province and citizenship area, persons = round(ISTAT residents × scale)
    exactly (before the bad rows are added); about two thirds of the cases are placed
    around GeoNames settlements, one third uniformly over the province.

    Parameters
    ----------
    seed
        Seed of the random generator: the same seed gives the same frame.
    scale
        Registered persons per foreign resident (0.05: about 47,000 persons).

    Returns
    -------
    pandas.DataFrame
        The raw columns :data:`RAW_COLUMNS` in canonical names (``family_members`` is of
        object dtype: an int, or a string in a bad row; ``age`` and ``birth_year`` are
        Int64, one of them or both missing), then the truth columns
        :data:`TRUTH_COLUMNS`, which :func:`write_demo_registry` writes only to the truth
        file: ``nationality_iso3``, ``province_code``, ``placement`` ("settlement" or
        "scattered"), ``true_latitude``, ``true_longitude``, ``true_family_members``
        (values before any corruption) and ``expected_problem`` (missing for good rows,
        else a tag of :data:`BAD_ROW_RATES`). Rows are grouped by source.

    Raises
    ------
    ValueError
        If ``scale`` is not positive.
    RuntimeError
        If some case could not be placed inside its province after many redraws (a
        settlement far outside its province polygon; does not happen with the shipped
        inputs).
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    rng = np.random.default_rng(seed)
    cases = draw_true_cases(rng, scale)
    _assign_record_ids(rng, cases)
    _add_identifiers(rng, cases)
    cases["nationality"] = _render_nationalities(rng, cases)
    _split_age_birth_year(rng, cases)
    cases = _inject_bad_rows(rng, cases)
    cases = _shared_with_agency(rng, cases)
    return _finalise(rng, cases)


def _assign_record_ids(rng: np.random.Generator, cases: pd.DataFrame) -> None:
    """``record_id`` unique per source ("CR-000123"), numbered in a random order."""
    order = rng.permutation(len(cases))
    number = np.empty(len(cases), dtype=np.int64)
    for source in SOURCES:
        rows = order[cases["source"].to_numpy()[order] == source]
        number[rows] = np.arange(1, rows.size + 1)
    prefix = cases["source"].map(RECORD_ID_PREFIX)
    cases["record_id"] = prefix + "-" + pd.Series(number, index=cases.index).map("{:06d}".format)


def _add_identifiers(rng: np.random.Generator, cases: pd.DataFrame) -> None:
    """Obviously fake direct identifiers and notes, all prefixed or marked SYNTHETIC."""
    n = len(cases)
    serial = np.arange(1, n + 1)
    # Syllable-made names (demo.linkage): varied enough that two persons rarely share
    # one, as in a real registry, so that linking is shown on realistic identities.
    first = synthetic_names(rng, 400, (2, 3))[rng.integers(0, 400, n)]
    last = synthetic_names(rng, 4000, (2, 4))[rng.integers(0, 4000, n)]
    cases["full_name"] = [f"{f} {s}" for f, s in zip(first, last, strict=True)]
    cases["passport_no"] = [f"SYN{v:07d}" for v in rng.integers(0, 10**7, n)]
    cases["phone"] = [f"+39 000 {v:07d}" for v in rng.integers(0, 10**7, n)]
    cases["email"] = [f"synthetic.{i:05d}@example.org" for i in serial]
    cases["preferred_language"] = cases["nationality_iso3"].map(_LANGUAGES).fillna("it")
    cases["address"] = [
        f"Via Esempio {v}, {place} (SYNTHETIC)"
        for v, place in zip(rng.integers(1, 200, n), cases["place_name"], strict=True)
    ]
    phrases = np.array(_NOTE_PHRASES, dtype=object)[rng.integers(0, len(_NOTE_PHRASES), n)]
    cases["notes"] = [
        f"SYNTHETIC demo record: {p}" if p else "SYNTHETIC demo record" for p in phrases
    ]


def _render_nationalities(rng: np.random.Generator, cases: pd.DataFrame) -> np.ndarray:
    """Nationality as each source writes it: alpha-3, alpha-2 or English name, mixed case."""
    codes = {iso3: _country_codes(iso3) for iso3 in cases["nationality_iso3"].unique()}
    alpha2 = cases["nationality_iso3"].map(lambda iso3: codes[iso3][0])
    name = cases["nationality_iso3"].map(lambda iso3: codes[iso3][1])
    variants = {
        "alpha3": cases["nationality_iso3"],
        "alpha2_lower": alpha2.str.lower(),
        "alpha2_upper": alpha2,
        "name": name,
        "name_upper": name.str.upper(),
        "name_lower": name.str.lower(),
    }
    weights = np.array([_SOURCE_STYLE_WEIGHTS[source] for source in cases["source"]])
    style = (rng.random(len(cases))[:, None] > np.cumsum(weights, axis=1)).sum(axis=1)
    style = np.minimum(style, len(_NATIONALITY_STYLES) - 1)
    table = np.column_stack([variants[s].to_numpy(dtype=object) for s in _NATIONALITY_STYLES])
    rendered = table[np.arange(len(cases)), style]
    rendered[cases["nationality_iso3"].to_numpy() == "XXA"] = "XXA"
    return rendered


def _country_codes(iso3: str) -> tuple[str, str]:
    """(alpha-2, English name) of an ISO alpha-3 code or of XKX / XXA."""
    if iso3 in _EXTRA_CODES:
        return _EXTRA_CODES[iso3]
    country = pycountry.countries.get(alpha_3=iso3)
    name = _NAME_OVERRIDES.get(iso3, getattr(country, "common_name", country.name))
    return country.alpha_2, name


def _split_age_birth_year(rng: np.random.Generator, cases: pd.DataFrame) -> None:
    """Keep ``age`` for ~85 % of rows, give ``birth_year`` instead for ~12 %, none for 3 %."""
    draw = rng.random(len(cases))
    year = cases["updated_at"].to_numpy().astype("datetime64[Y]").astype(int) + 1970
    birth_year = year - cases["age"].to_numpy() - rng.integers(0, 2, len(cases))
    month, day = rng.integers(1, 13, len(cases)), rng.integers(1, 29, len(cases))
    cases["date_of_birth"] = [
        f"{y:04d}-{m:02d}-{d:02d}" for y, m, d in zip(birth_year, month, day, strict=True)
    ]
    cases["birth_year"] = pd.array(np.where(draw >= 0.85, birth_year, 0), dtype="Int64")
    cases.loc[(draw < 0.85) | (draw >= 0.97), "birth_year"] = pd.NA
    cases["age"] = pd.array(cases["age"], dtype="Int64")
    cases.loc[draw >= 0.85, "age"] = pd.NA


def _inject_bad_rows(rng: np.random.Generator, cases: pd.DataFrame) -> pd.DataFrame:
    """Corrupt a few cases per tag of :data:`BAD_ROW_RATES`; add superseded duplicates.

    Truth columns keep the values before corruption. A superseded duplicate is an extra,
    older version (earlier ``updated_at``, one family member fewer or more) of a case,
    with the same source and record_id; the newer row stays a good row.
    """
    cases = cases.assign(
        true_latitude=cases["latitude"],
        true_longitude=cases["longitude"],
        true_family_members=cases["family_members"],
        family_members=cases["family_members"].astype(object),
        expected_problem=None,
    )
    counts = {tag: max(1, round(rate * len(cases))) for tag, rate in BAD_ROW_RATES.items()}
    order = rng.permutation(len(cases))
    days = _day_index(cases["updated_at"])
    newer = order[days[order] >= 30][: counts["superseded_duplicate"]]
    rest = order[~np.isin(order, newer)]
    start = 0
    for tag, count in counts.items():
        if tag == "superseded_duplicate":
            continue
        rows = cases.index[rest[start : start + count]]
        start += count
        _corrupt(rng, cases, rows, tag)
        cases.loc[rows, "expected_problem"] = tag
    return pd.concat([cases, _stale_copies(rng, cases.iloc[newer])], ignore_index=True)


def _corrupt(rng: np.random.Generator, cases: pd.DataFrame, rows: pd.Index, tag: str) -> None:
    """Apply the corruption named ``tag`` to ``rows`` of ``cases`` in place."""
    if tag == "unknown_nationality":
        cases.loc[rows, "nationality"] = rng.choice(["Atlantis", "ZZZ"], size=len(rows))
    elif tag == "swapped_latlon":
        cases.loc[rows, ["latitude", "longitude"]] = cases.loc[
            rows, ["longitude", "latitude"]
        ].to_numpy()
    elif tag == "latitude_out_of_range":
        cases.loc[rows, "latitude"] = (cases.loc[rows, "latitude"] + 90.0).round(6)
    elif tag == "null_island":
        cases.loc[rows, ["latitude", "longitude"]] = 0.0
    elif tag == "non_numeric_family_members":
        cases.loc[rows, "family_members"] = [
            _NUMBER_WORDS[min(v, len(_NUMBER_WORDS) - 1)]
            for v in cases.loc[rows, "true_family_members"]
        ]
    elif tag == "implausible_family_members":
        cases.loc[rows, "family_members"] = rng.choice([150, 250, 999], size=len(rows))
    elif tag == "missing_record_id":
        cases.loc[rows, "record_id"] = None
    else:
        raise ValueError(f"unknown bad-row tag {tag!r}")


def _stale_copies(rng: np.random.Generator, newer: pd.DataFrame) -> pd.DataFrame:
    """Older versions of ``newer`` rows: earlier date, family size changed by one."""
    stale = newer.copy()
    days = _day_index(stale["updated_at"])
    stale["updated_at"] = stale["updated_at"].to_numpy() - rng.integers(
        1, np.minimum(days, 400) + 1
    ).astype("timedelta64[D]")
    members = stale["true_family_members"].to_numpy()
    members = np.where(members == 0, 1, members + rng.choice([-1, 1], size=len(stale)))
    stale["family_members"] = members.astype(object)
    stale["true_family_members"] = members
    stale["expected_problem"] = "superseded_duplicate"
    return stale


def _shared_with_agency(rng: np.random.Generator, cases: pd.DataFrame) -> pd.DataFrame:
    """Add the recruitment agency's registrations of persons the consulate registered.

    :data:`SHARED_WITH_AGENCY` of the good consular rows get a second registration in
    the agency file: a new record id, the name and birth date written with identity
    noise (typo, variant spelling, swapped order, missing day), the passport number half
    the time, the nationality in the agency's style and an earlier update; the same
    place and family (so the truth stays exact). ``same_person_as`` names the consular
    record id; the store links the two and counts the person once.
    """
    good = cases.index[
        (cases["source"] == "consular_registration")
        & cases["expected_problem"].isna()
        & cases["record_id"].notna()
    ]
    picked = rng.choice(good, size=round(SHARED_WITH_AGENCY * len(good)), replace=False)
    copies = cases.loc[np.sort(picked)].copy()
    copies["same_person_as"] = copies["record_id"]
    copies["source"] = "recruitment_agency"
    taken = (cases["source"] == "recruitment_agency").sum()
    copies["record_id"] = [f"RA-{taken + i:06d}" for i in range(1, len(copies) + 1)]
    noisy = [
        latin_noise(rng, *name.split(" ", 1), birth)
        for name, birth in zip(copies["full_name"], copies["date_of_birth"], strict=True)
    ]
    copies["full_name"] = [name for name, _ in noisy]
    copies["date_of_birth"] = [birth for _, birth in noisy]
    copies["passport_no"] = copies["passport_no"].where(rng.random(len(copies)) < 0.5, None)
    copies["nationality"] = _render_nationalities(rng, copies)
    earlier = rng.integers(0, 300, len(copies)).astype("timedelta64[D]")
    copies["updated_at"] = np.maximum(
        copies["updated_at"].to_numpy().astype("datetime64[D]") - earlier, FIRST_DAY
    ).astype("datetime64[ns]")
    return pd.concat([cases.assign(same_person_as=None), copies], ignore_index=True)


def _day_index(dates: pd.Series) -> np.ndarray:
    """Days since 2023-01-01 of datetime values."""
    return (dates.to_numpy().astype("datetime64[D]") - FIRST_DAY).astype(np.int64)


def _finalise(rng: np.random.Generator, cases: pd.DataFrame) -> pd.DataFrame:
    """Shuffle, group rows by source, order columns, set dtypes."""
    cases = cases.iloc[rng.permutation(len(cases))]
    cases = cases.iloc[np.argsort(cases["source"].map(SOURCES.index).to_numpy(), kind="stable")]
    frame = cases[[*RAW_COLUMNS, *TRUTH_COLUMNS]].reset_index(drop=True)
    frame["updated_at"] = frame["updated_at"].to_numpy().astype("datetime64[D]").astype(str)
    frame["true_family_members"] = frame["true_family_members"].astype("int64")
    return frame


# --------------------------------------------------------------------------------- writer


def write_demo_registry(df: pd.DataFrame, out_dir: Path | str) -> list[Path]:
    """Write the registry as one raw file per source plus the truth file.

    consular_registration: CSV, UTF-8 with BOM, ``;``-delimited; host_state_arrivals:
    XLSX (one sheet, ``updated_at`` as Excel dates); recruitment_agency: CSV, Latin-1,
    ``,``-delimited. Each source uses its column names of :data:`COLUMN_ALIASES`; the
    truth columns are not written to these files. ``SYNTHETIC_truth.parquet`` holds
    ``record_id``, ``source``, ``province_code``, ``latitude``, ``longitude``,
    ``nationality_iso3``, ``family_members``, ``placement``, ``expected_problem``, with
    the values before corruption.

    Parameters
    ----------
    df
        A frame from :func:`generate_demo_registry`.
    out_dir
        Directory to write into (created if missing); existing files are overwritten.

    Returns
    -------
    list of pathlib.Path
        The three source files (in :data:`SOURCES` order) and the truth file.

    Raises
    ------
    UnicodeEncodeError
        If a value of the recruitment_agency file cannot be encoded in Latin-1.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / FILE_NAMES[source] for source in SOURCES]
    frames = {source: source_frame(df, source) for source in SOURCES}
    frames["consular_registration"].to_csv(paths[0], sep=";", encoding="utf-8-sig", index=False)
    _write_xlsx(frames["host_state_arrivals"], paths[1])
    frames["recruitment_agency"].to_csv(paths[2], sep=",", encoding="latin-1", index=False)
    truth = df[
        [
            "record_id",
            "source",
            "province_code",
            "true_latitude",
            "true_longitude",
            "nationality_iso3",
            "true_family_members",
            "placement",
            "expected_problem",
            "same_person_as",
        ]
    ]
    truth = truth.rename(columns=lambda c: c.removeprefix("true_"))
    truth_path = out_dir / TRUTH_FILE_NAME
    truth.to_parquet(truth_path, index=False)
    return [*paths, truth_path]


def source_frame(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Return one source's rows as written to its file (raw columns, source's names).

    Parameters
    ----------
    df
        A frame from :func:`generate_demo_registry`.
    source
        One of :data:`SOURCES`.

    Returns
    -------
    pandas.DataFrame
        The source's rows (index reset) with :data:`RAW_COLUMNS` renamed by
        :data:`COLUMN_ALIASES`.

    Raises
    ------
    KeyError
        If ``source`` is not one of :data:`SOURCES`.
    """
    rows = df[df["source"] == source]
    return rows[list(RAW_COLUMNS)].rename(columns=COLUMN_ALIASES[source]).reset_index(drop=True)


def _write_xlsx(frame: pd.DataFrame, path: Path) -> None:
    """Write one sheet with real date cells and workbook properties saying SYNTHETIC."""
    frame = frame.assign(updated_at=pd.to_datetime(frame["updated_at"]))
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        frame.to_excel(writer, sheet_name="SYNTHETIC registrations", index=False)
        properties = writer.book.properties
        properties.title = "SYNTHETIC demo registry - host_state_arrivals"
        properties.description = (
            "SYNTHETIC data generated by demo.registry for the "
            "crisis-exposure demo; no real person."
        )
