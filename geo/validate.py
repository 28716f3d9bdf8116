"""The row rules: turn a batch of raw registration rows into minimal records or rejects.

Pure and vectorised on polars frames (no file is opened here): each row is either
accepted, reduced to the fields a release needs, or rejected with its row number, its
record_id and the reasons, never its other values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
import polars_h3

from geo import codes
from geo.identity import IDENTITY_PREFIX

REQUIRED_COLUMNS = ("record_id", "nationality", "latitude", "longitude")
OPTIONAL_COLUMNS = (
    "sex",
    "age",
    "birth_year",
    "family_members",
    "vulnerabilities",
    "consent",
    "source",
    "updated_at",
    "valid_until",
)
CANONICAL_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS


MAX_FAMILY_MEMBERS = 30


MIN_BIRTH_YEAR = 1900
# A record_id is a short code: longer ones or ones with control characters (NUL, line
# breaks) come from a damaged or hostile file, never from a registry.
MAX_RECORD_ID_CHARS = 128
_CONTROL_CHARACTERS = r"[\x00-\x1f\x7f]"


SWAP_DISTANCE_KM = 500.0


ACCEPTED_SCHEMA = {
    "row": pl.Int64,
    "source": pl.String,
    "record_id": pl.String,
    "nationality": pl.String,
    "latitude": pl.Float64,
    "longitude": pl.Float64,
    "sex": pl.String,
    "age_band": pl.String,
    "family_members": pl.Int16,
    "vulnerabilities": pl.UInt16,
    "consent": pl.UInt8,
    "updated_at": pl.Datetime("us"),
    "valid_until": pl.Date,
}


REJECTS_SCHEMA = {"row": pl.Int64, "record_id": pl.String, "reasons": pl.String}


@dataclass
class ValidatedBatch:
    """One batch of a file: the accepted minimal records and the rejects with reasons."""

    accepted: pl.DataFrame
    rejects: pl.DataFrame
    rows_read: int
    # The accepted rows' identity fields (name, birth date, document, household,
    # principal), in memory for linking only (geo.identity); None when the file has none.
    identities: pl.DataFrame | None = None


def _as_text(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.String).str.strip_chars()


_NUMBER_COLUMNS = {
    "latitude": "lat_num",
    "longitude": "lon_num",
    "age": "age_num",
    "birth_year": "birth_num",
    "family_members": "family_num",
}
_CODED_COLUMNS = ("nationality", "sex", "vulnerabilities", "consent", "updated_at", "valid_until")
_STRIPPED = "stripped__"
_PRESENT = "present__"


def _number(name: str, stripped: bool) -> pl.Expr:
    """Return a column as Float64: typed numbers directly, stripped text with ',' or '.'."""
    if not stripped:
        return pl.col(name).cast(pl.Float64)
    column = pl.col(_STRIPPED + name)
    return column.str.replace(",", ".", literal=True).cast(pl.Float64, strict=False)


def _present(name: str) -> pl.Expr:
    return pl.col(name).is_not_null()


def _distinct(values: pl.Series) -> pl.Series:
    """Return a column's distinct non-null values as text (what codes are looked up by)."""
    return values.cast(pl.String).drop_nulls().unique()


def _present_coded(name: str, schema: pl.Schema, distinct: pl.Series) -> pl.Expr:
    """Return whether a coded cell holds a value, judging blank text on distinct values only.

    The same as :func:`_is_present` (not null, not blank), without stripping every row.
    """
    if schema[name] not in (pl.String, pl.Null):
        return pl.col(name).is_not_null()
    blanks = distinct.filter(distinct.str.strip_chars() == "")
    if not blanks.len():
        return pl.col(name).is_not_null()
    return pl.col(name).is_not_null() & ~pl.col(name).is_in(blanks.to_list())


def _as_datetime(name: str, schema: pl.Schema, parsed: dict) -> pl.Expr:
    """Return a column as Datetime: typed dates directly, text through ``parsed``."""
    if schema[name].is_temporal():
        return pl.col(name).cast(pl.Datetime("us"))
    return (
        pl.col(name)
        .cast(pl.String)
        .replace_strict(parsed, default=None, return_dtype=pl.Datetime("us"))
    )


def _lookup(distinct: pl.Series, mapper) -> dict[str, object]:
    """Map the distinct values of a text column once (cheap even for millions of rows)."""
    return {value: mapper(value) for value in distinct.to_list()}


def _terms_mask(value: str, vocabulary: tuple[str, ...]) -> int | None:
    terms = [codes.fold_text(t).replace(" ", "_") for t in re.split(r"[;|]", value) if t.strip()]
    if any(term not in vocabulary for term in terms):
        return None
    return codes.terms_to_mask(terms, vocabulary)


def _parse_datetime(value: str) -> datetime | None:
    for parse in (datetime.fromisoformat, lambda v: datetime.strptime(v, "%d/%m/%Y")):
        try:
            parsed = parse(value)
        except ValueError:
            continue
        return (
            parsed.replace(tzinfo=None)
            if parsed.tzinfo is None
            else parsed.astimezone(UTC).replace(tzinfo=None)
        )
    return None


def validate_batch(
    raw: pl.DataFrame,
    column_map: dict[str, str],
    first_row: int,
    default_source: str,
    reference_point: tuple[float, float] | None,
    this_year: int | None = None,
) -> ValidatedBatch:
    """Validate one batch of raw rows.

    Parameters
    ----------
    raw
        The file's columns (original headers) for this batch.
    column_map
        Canonical column name → the file's header for it.
    first_row
        Spreadsheet row number of the batch's first row.
    default_source
        The source of rows with no ``source`` value (the file name).
    reference_point
        (latitude, longitude) around which most of the file lies; rows far from it whose
        swapped coordinates lie near it are rejected as swapped. None to skip that check.
    this_year
        Year used to turn ``birth_year`` into an age (default: the current year).

    Returns
    -------
    ValidatedBatch
    """
    this_year = this_year or datetime.now(UTC).year
    frame = _parsed(raw, column_map, first_row, default_source)
    frame = frame.with_columns(_swapped(frame, reference_point))
    checks = _row_rules(frame, this_year)
    # Whether a row breaks any rule is cheap; the reasons text is built for those only.
    bad = frame.select(pl.any_horizontal(cond.fill_null(False) for cond, _ in checks)).to_series()
    rejected = frame.filter(bad).with_columns(
        pl.concat_list(
            [pl.when(cond.fill_null(False)).then(pl.lit(reason)) for cond, reason in checks]
        )
        .list.drop_nulls()
        .list.join("; ")
        .alias("reasons")
    )
    rejects = rejected.select(
        "row",
        pl.col("record_id").str.slice(0, 64).str.replace_all(_CONTROL_CHARACTERS, "?"),
        "reasons",
    ).cast(REJECTS_SCHEMA)
    identity = [c for c in frame.columns if c.startswith(IDENTITY_PREFIX)]
    identities = (
        frame.filter(~bad).select(
            *identity, pl.col("birth_num").cast(pl.Int32).alias(IDENTITY_PREFIX + "birth_year")
        )
        if identity
        else None
    )
    return ValidatedBatch(
        accepted=_accepted(frame.filter(~bad), this_year),
        rejects=rejects,
        rows_read=raw.height,
        identities=identities,
    )


def _parsed(
    raw: pl.DataFrame, column_map: dict[str, str], first_row: int, default_source: str
) -> pl.DataFrame:
    """Return the batch under canonical names with every value parsed into a typed column.

    Text codes (nationality, sex, vulnerabilities, consent, dates) are mapped once per
    distinct value; the raw columns stay beside the parsed ones for the rules to read.
    """
    frame = raw.rename({src: name for name, src in column_map.items()})
    for name in CANONICAL_COLUMNS:
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(name))
    frame = frame.with_columns(
        pl.int_range(first_row, first_row + frame.height, dtype=pl.Int64).alias("row")
    )
    schema = frame.schema
    # Numbers held as text are stripped once: both the number and the presence read it.
    stripped = [n for n in _NUMBER_COLUMNS if not schema[n].is_numeric()]
    frame = frame.with_columns(_as_text(name).alias(_STRIPPED + name) for name in stripped)
    distinct = {
        name: _distinct(
            frame[name] if not schema[name].is_temporal() else pl.Series([], dtype=pl.String)
        )
        for name in _CODED_COLUMNS
    }
    nationality = _lookup(distinct["nationality"], codes.nationality_to_iso3)
    sex = _lookup(distinct["sex"], codes.sex_to_category)
    vulnerabilities = _lookup(
        distinct["vulnerabilities"], lambda v: _terms_mask(v, codes.VULNERABILITIES)
    )
    consent = _lookup(distinct["consent"], lambda v: _terms_mask(v, codes.CONSENT_SCOPES))
    updated, until = (
        {} if schema[name].is_temporal() else _lookup(distinct[name], _parse_datetime)
        for name in ("updated_at", "valid_until")
    )
    frame = frame.with_columns(
        _as_text("record_id").alias("record_id"),
        _as_text("source").fill_null(default_source).alias("source"),
        *(_number(name, name in stripped).alias(alias) for name, alias in _NUMBER_COLUMNS.items()),
        pl.col("nationality")
        .cast(pl.String)
        .replace_strict(nationality, default=None, return_dtype=pl.String)
        .alias("nat_code"),
        pl.col("sex")
        .cast(pl.String)
        .replace_strict(sex, default=None, return_dtype=pl.String)
        .alias("sex_code"),
        pl.col("vulnerabilities")
        .cast(pl.String)
        .replace_strict(vulnerabilities, default=None, return_dtype=pl.Int64)
        .alias("vuln_mask"),
        pl.col("consent")
        .cast(pl.String)
        .replace_strict(consent, default=None, return_dtype=pl.Int64)
        .alias("consent_mask"),
        _as_datetime("updated_at", schema, updated).alias("updated_ts"),
        _as_datetime("valid_until", schema, until).alias("until_ts"),
        *(
            _present_coded(name, schema, distinct[name]).alias(_PRESENT + name)
            for name in _CODED_COLUMNS
        ),
        *(
            (
                pl.col(_STRIPPED + name).fill_null("") != "" if name in stripped else _present(name)
            ).alias(_PRESENT + name)
            for name in _NUMBER_COLUMNS
        ),
    )
    # record_id is stripped text now: present when not empty (stripping again changes nothing).
    return frame.with_columns(
        (pl.col("record_id").fill_null("") != "").alias(_PRESENT + "record_id")
    ).drop(_STRIPPED + name for name in stripped)


def _row_rules(frame: pl.DataFrame, this_year: int) -> list[tuple[pl.Expr, str]]:
    """Return the row rules: (condition true where a row breaks the rule, the reason).

    Presence is judged on the file's own columns (their original types: the
    ``present__`` columns of :func:`_parsed`), values on the parsed ones; the swapped
    test is the ``swapped`` column (:func:`_swapped`).
    """
    present = {
        name: pl.col(_PRESENT + name) for name in ("record_id", *_CODED_COLUMNS, *_NUMBER_COLUMNS)
    }
    lat, lon = pl.col("lat_num"), pl.col("lon_num")
    return [
        (~present["record_id"], "missing record_id"),
        (
            pl.col("record_id").str.contains(_CONTROL_CHARACTERS),
            "record_id contains a control character (NUL, tab or line break)",
        ),
        (
            pl.col("record_id").str.len_chars() > MAX_RECORD_ID_CHARS,
            f"record_id longer than {MAX_RECORD_ID_CHARS} characters",
        ),
        (~present["nationality"], "missing nationality"),
        (
            present["nationality"] & pl.col("nat_code").is_null(),
            "unknown nationality (expected ISO 3166-1 alpha-3, alpha-2 or English name)",
        ),
        (~present["latitude"] | ~present["longitude"], "missing latitude or longitude"),
        (present["latitude"] & lat.is_null(), "latitude is not a number"),
        (present["longitude"] & lon.is_null(), "longitude is not a number"),
        (
            lat.is_not_null() & lon.is_not_null() & (lat.abs() > 90) & (lon.abs() <= 90),
            "latitude out of range (looks swapped with longitude)",
        ),
        (
            lat.is_not_null() & (lat.abs() > 90) & (lon.is_null() | (lon.abs() > 90)),
            "latitude out of range -90..90",
        ),
        (lon.is_not_null() & (lon.abs() > 180), "longitude out of range -180..180"),
        ((lat == 0) & (lon == 0), "coordinates are 0,0 (a missing location, not a place)"),
        (
            pl.col("swapped"),
            "latitude and longitude look swapped (far from the file's other records)",
        ),
        (present["sex"] & pl.col("sex_code").is_null(), "unrecognised sex (use F, M or X)"),
        (present["age"] & pl.col("age_num").is_null(), "age is not a number"),
        (
            pl.col("age_num").is_not_null() & ((pl.col("age_num") < 0) | (pl.col("age_num") > 120)),
            "age out of range 0..120",
        ),
        (present["birth_year"] & pl.col("birth_num").is_null(), "birth_year is not a number"),
        (
            pl.col("birth_num").is_not_null()
            & ((pl.col("birth_num") < MIN_BIRTH_YEAR) | (pl.col("birth_num") > this_year)),
            f"birth_year out of range {MIN_BIRTH_YEAR}..{this_year}",
        ),
        (
            present["family_members"] & pl.col("family_num").is_null(),
            "family_members is not a number",
        ),
        (
            pl.col("family_num").is_not_null()
            & (
                (pl.col("family_num") != pl.col("family_num").round(0)) | (pl.col("family_num") < 0)
            ),
            "family_members is not a whole number ≥ 0",
        ),
        (
            pl.col("family_num") > MAX_FAMILY_MEMBERS,
            f"family_members implausible (more than {MAX_FAMILY_MEMBERS})",
        ),
        (
            present["vulnerabilities"] & pl.col("vuln_mask").is_null(),
            "unknown vulnerability (allowed: " + ", ".join(codes.VULNERABILITIES) + ")",
        ),
        (
            present["consent"] & pl.col("consent_mask").is_null(),
            "unknown consent scope (allowed: " + ", ".join(codes.CONSENT_SCOPES) + ")",
        ),
        (
            present["updated_at"] & pl.col("updated_ts").is_null(),
            "updated_at is not a date (use YYYY-MM-DD)",
        ),
        (
            present["valid_until"] & pl.col("until_ts").is_null(),
            "valid_until is not a date (use YYYY-MM-DD)",
        ),
    ]


def _accepted(frame: pl.DataFrame, this_year: int) -> pl.DataFrame:
    """Return accepted rows reduced to the minimal record (age as a band, defaults filled)."""
    age = pl.coalesce(pl.col("age_num"), pl.lit(this_year) - pl.col("birth_num"))
    return frame.select(
        "row",
        "source",
        "record_id",
        pl.col("nat_code").alias("nationality"),
        pl.col("lat_num").alias("latitude"),
        pl.col("lon_num").alias("longitude"),
        pl.col("sex_code").fill_null("unknown").alias("sex"),
        pl.when(age.is_null())
        .then(pl.lit("unknown"))
        .when(age < 5)
        .then(pl.lit("0-4"))
        .when(age < 18)
        .then(pl.lit("5-17"))
        .when(age < 60)
        .then(pl.lit("18-59"))
        .otherwise(pl.lit("60+"))
        .alias("age_band"),
        pl.col("family_num").fill_null(0).alias("family_members"),
        pl.col("vuln_mask").fill_null(0).alias("vulnerabilities"),
        pl.col("consent_mask").fill_null(0).alias("consent"),
        pl.col("updated_ts").alias("updated_at"),
        pl.col("until_ts").dt.date().alias("valid_until"),
    ).cast(ACCEPTED_SCHEMA)


# Bounds that rule a row out of _swapped_expr without trigonometry. Its distances are
# R·√(x² + y²) with |x| ≤ |Δlon| and y = Δlat (radians), so (in degrees, R = 111.19 km
# per degree): the distance as is ≤ 111.19·(|Δlat| + |Δlon|), which is under 500 km when
# that sum is ≤ 4; and the swapped distance ≥ 111.19·|lon − ref_lat|, which cannot be a
# quarter of the distance as is when 4·|lon − ref_lat| ≥ |Δlat| + |Δlon| (margins
# absorb rounding).
_NEAR_DEGREES = 4.0


def _swapped(frame: pl.DataFrame, reference_point: tuple[float, float] | None) -> pl.Series:
    """Return the Boolean column ``swapped``: :func:`_swapped_expr`, computed cheaper.

    Its trigonometry runs only on the rows the bounds above do not rule out (none in a
    file whose records are near each other); for the others the answer is False too.
    """
    if reference_point is None:
        return pl.repeat(False, frame.height, eager=True).alias("swapped")
    ref_lat, ref_lon = reference_point
    lat, lon = pl.col("lat_num"), pl.col("lon_num")
    spread = (lat - ref_lat).abs() + (lon - ref_lon).abs()
    ruled_out = (
        lat.is_finite()
        & lon.is_finite()
        & ((spread <= _NEAR_DEGREES) | ((lon - ref_lat).abs() * 4 > spread * 1.01 + 0.01))
    )
    # NaN and infinite coordinates are checked exactly; null ones are never swapped.
    far = frame.select(pl.arg_where((~ruled_out).fill_null(False))).to_series()
    exact = (
        frame.select("lat_num", "lon_num")[far]
        .select(_swapped_expr(reference_point).fill_null(False))
        .to_series()
        if far.len()
        else pl.Series([], dtype=pl.Boolean)
    )
    return pl.repeat(False, frame.height, eager=True).scatter(far, exact).alias("swapped")


def _swapped_expr(reference_point: tuple[float, float] | None) -> pl.Expr:
    """Return an expression true where swapping latitude and longitude brings a row home."""
    if reference_point is None:
        return pl.lit(False)
    ref_lat, ref_lon = reference_point

    def distance_km(lat: pl.Expr, lon: pl.Expr) -> pl.Expr:
        # Equirectangular distance: ample for a "far versus near" test.
        x = (lon - ref_lon).radians() * (((lat + ref_lat) / 2).radians().cos())
        y = (lat - ref_lat).radians()
        return (x * x + y * y).sqrt() * 6371.0

    as_is = distance_km(pl.col("lat_num"), pl.col("lon_num"))
    swapped = distance_km(pl.col("lon_num"), pl.col("lat_num"))
    return (as_is > SWAP_DISTANCE_KM) & (swapped < as_is / 4) & (pl.col("lon_num").abs() <= 90)


def reference_point_of(raw: pl.DataFrame, column_map: dict[str, str]) -> tuple[float, float] | None:
    """Return the median (latitude, longitude) of a batch's plausible coordinates."""
    lat = raw[column_map["latitude"]].cast(pl.String).str.strip_chars()
    lon = raw[column_map["longitude"]].cast(pl.String).str.strip_chars()
    points = (
        pl.DataFrame({"lat": lat, "lon": lon})
        .select(
            pl.col("lat").str.replace(",", ".", literal=True).cast(pl.Float64, strict=False),
            pl.col("lon").str.replace(",", ".", literal=True).cast(pl.Float64, strict=False),
        )
        .filter(
            (pl.col("lat").abs() <= 90)
            & (pl.col("lon").abs() <= 180)
            & ~((pl.col("lat") == 0) & (pl.col("lon") == 0))
        )
    )
    if points.height < 20:
        return None
    return float(points["lat"].median()), float(points["lon"].median())


def coordinates_to_cell(accepted: pl.DataFrame, resolution: int) -> pl.DataFrame:
    """Return accepted records with the H3 cell at ``resolution`` instead of coordinates.

    Coordinates never go further than this: the store keeps the cell only.
    """
    return accepted.with_columns(
        polars_h3.latlng_to_cell("latitude", "longitude", resolution).alias("cell")
    ).drop("latitude", "longitude")
