"""Count a Parquet lake on Spark: the ingest's row rules, record keys, latest version, counts.

Spark replaces two steps of the local path and nothing else: the validation of
:mod:`geo.validate` (the same rules and reasons, written as Spark column expressions)
and the first count (records → counts per H3 cell at the store's resolution ×
nationality × sex × age band × vulnerabilities × consent mask), kept on the executors'
disks. The release's audience (its consent scope and nationalities) is counted from
them on Spark too, at the release's base resolution, and only those counts come back
to the driver, piece by piece into a temporary table of the steward's store
connection (:func:`geo.io.store_counts.counted_table`), where the release is protected
exactly as from a store's registrations (:meth:`geo.io.store_counts.StoreCounts.of_counted`).

- **Codes** (nationality, sex, vulnerabilities, consent) are mapped as the local path
  maps them: each distinct raw value once, by the same Python functions, then joined.
- **Record keys** are HMAC-SHA256 written in Spark SQL (``sha2`` twice over the key
  XOR ipad/opad: RFC 2104 with a 64-byte key), the same bytes as
  :func:`geo.hashing.record_keys`, so duplicates and the keyed noise match.
- **Latest version wins**: among a key's accepted rows the latest ``updated_at`` wins
  (a missing date loses), then the later file in path order, then the later row —
  what ingesting the files into a store one by one, in path order, keeps.
- **H3 cells** come from a pandas UDF calling ``polars_h3.latlng_to_cell``, the very
  function of the local ingest (vectorised, exact; plain-SQL bit arithmetic for
  ``latlng_to_cell`` would need the icosahedron projection by hand).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from geo import codes, validate
from geo.errors import InputError
from geo.hashing import RECORD_KEY_SEPARATOR
from geo.io.lake import LakeFile
from geo.io.spark_session import spark_failure
from geo.noise import KEY_MODULUS


@dataclass
class LakeReport:
    """What the lake held: rows read, accepted, rejected by reason, versions superseded."""

    files: int
    rows_read: int = 0
    accepted: int = 0
    superseded: int = 0
    rejects_by_reason: Counter = field(default_factory=Counter)

    def summary_lines(self) -> list[str]:
        """Return the report as short lines (counts and reasons, never a record value)."""
        lines = [
            f"lake: {self.files} files, {self.rows_read} rows read, {self.accepted} accepted, "
            f"{self.rows_read - self.accepted} rejected; {self.superseded} older versions "
            "of a record_id set aside (the latest is counted)"
        ]
        return lines + [
            f"  rejected: {n} × {reason}" for reason, n in self.rejects_by_reason.most_common()
        ]


def column_map_of(files: list[LakeFile]) -> dict[str, str]:
    """Return the lake's column map (canonical name → column), the same in every file.

    Raises
    ------
    InputError
        For a file that is not Parquet or lacks a required column, or files whose
        columns map differently.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from geo.io.registrations import map_columns

    first: dict[str, str] | None = None
    for file in files:
        name = Path(file.path).name
        try:
            columns = pq.ParquetFile(file.path).schema_arrow.names
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{name}: not a readable Parquet file ({exc}).") from None
        column_map, _, _ = map_columns(list(columns), name)
        if first is None:
            first = column_map
        elif column_map != first:
            raise InputError(
                f"{name}: its columns differ from the lake's first file; a lake release "
                "needs one column layout."
            )
    return first or {}


def _hmac_hex(message: Any, secret: bytes) -> Any:
    """Return HMAC-SHA256 (RFC 2104) of a binary column as lowercase hex, in Spark SQL."""
    from pyspark.sql import functions as F  # noqa: N812

    key = secret.hex().encode()  # keyed with the 64 ASCII hex characters, as record_keys
    assert len(key) == 64, "HMAC key of one SHA-256 block"
    ipad = bytes(b ^ 0x36 for b in key).hex()
    opad = bytes(b ^ 0x5C for b in key).hex()
    inner = F.unhex(F.sha2(F.concat(F.unhex(F.lit(ipad)), message), 256))
    return F.sha2(F.concat(F.unhex(F.lit(opad)), inner), 256)


def _number(frame: Any, name: str) -> Any:
    """Return a column as double: numbers directly, text with ',' or '.' decimals."""
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql.types import NumericType

    column = F.col(name)
    if isinstance(frame.schema[name].dataType, NumericType):
        return column.cast("double")
    text = F.regexp_replace(_text(column), ",", ".")
    return text.try_cast("double")


def _text(column: Any) -> Any:
    """Return a column as text stripped of Unicode white space (polars' ``strip_chars``)."""
    from pyspark.sql import functions as F  # noqa: N812

    return F.regexp_replace(column.cast("string"), r"(?U)^\s+|\s+$", "")


def _present(frame: Any, name: str) -> Any:
    """Return whether a cell holds a value (not null, not blank text)."""
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql.types import NullType, StringType

    kind = frame.schema[name].dataType
    if isinstance(kind, StringType | NullType):
        return F.coalesce(_text(F.col(name)), F.lit("")) != ""
    return F.col(name).isNotNull()


def _with_codes(spark: Any, frame: Any, mappers: dict[str, tuple[Any, str]]) -> Any:
    """Join text columns' codes: each distinct raw value mapped once on the driver.

    One Spark job collects the distinct raw values of every mapped column; the local
    reader's functions map them (as :func:`geo.validate._lookup` does), and each
    column's small table is broadcast back.
    """
    from pyspark.sql import functions as F  # noqa: N812

    raw = {name: F.col(name).cast("string") for name in mappers}
    pairs = F.explode(
        F.array(*[F.struct(F.lit(n).alias("n"), c.alias("v")) for n, c in raw.items()])
    )
    distinct = frame.select(pairs.alias("p")).select("p.n", "p.v").distinct().collect()
    for name, (mapper, kind) in mappers.items():
        rows = [(v, mapper(v)) for n, v in distinct if n == name and v is not None]
        table = spark.createDataFrame(rows or [("", None)], f"_join string, {name}_code {kind}")
        frame = (
            frame.withColumn("_join", raw[name])
            .join(F.broadcast(table), on="_join", how="left")
            .drop("_join")
        )
    return frame


def _datetime_udf() -> Any:
    """Return a pandas UDF parsing text dates as the local reader does (UTC, naive)."""
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    def parse(values):
        lookup = {v: validate._parse_datetime(v) for v in values.dropna().unique()}
        return pd.to_datetime(values.map(lookup), errors="coerce").astype("datetime64[us]")

    parse.__annotations__ = {"values": pd.Series, "return": pd.Series}  # real types for Spark
    return pandas_udf(parse, "timestamp_ntz")


def _cell_udf(resolution: int) -> Any:
    """Return a pandas UDF binning (latitude, longitude) to H3 cells with polars-h3."""
    import pandas as pd
    import polars_h3
    from pyspark.sql.functions import pandas_udf

    def cell(lat, lon):
        frame = pl.DataFrame({"lat": lat.to_numpy(), "lon": lon.to_numpy()})
        cells = frame.select(polars_h3.latlng_to_cell("lat", "lon", resolution).cast(pl.Int64))
        return pd.Series(cells.to_series().to_numpy(), index=lat.index)

    cell.__annotations__ = {"lat": pd.Series, "lon": pd.Series, "return": pd.Series}
    return pandas_udf(cell, "long")


def _read(spark: Any, files: list[LakeFile], column_map: dict[str, str]) -> Any:
    """Return the lake's rows under canonical names, with file position, row and source."""
    from pyspark.sql import functions as F  # noqa: N812

    raw = spark.read.parquet(*[f.path for f in files])
    columns = [F.col(f"`{src}`").alias(name) for name, src in column_map.items()]
    columns += [
        F.lit(None).cast("string").alias(name)
        for name in validate.CANONICAL_COLUMNS
        if name not in column_map
    ]
    # Spark names each row's file by URI; its decoded path is the snapshot's path.
    path = F.url_decode(F.regexp_replace(F.col("_metadata.file_path"), "^file:(//)?", ""))
    frame = raw.select(
        *columns, path.alias("_path"), (F.col("_metadata.row_index") + 2).alias("row")
    )
    table = spark.createDataFrame(
        [(f.path, i, Path(f.path).name) for i, f in enumerate(files)],
        "_path string, file_index int, file_name string",
    )
    return frame.join(F.broadcast(table), on="_path").drop("_path")


def _with_reference_points(spark: Any, frame: Any) -> Any:
    """Add each file's reference point: the median of its first batch's plausible points."""
    from pyspark.sql import functions as F  # noqa: N812

    lat, lon = F.col("lat_num"), F.col("lon_num")
    plausible = frame.filter(
        (F.col("row") < validate_batch_rows() + 2)
        & (F.abs(lat) <= 90)
        & (F.abs(lon) <= 180)
        & ~((lat == 0) & (lon == 0))
    )
    points = (
        plausible.groupBy("file_index")
        .agg(
            F.count("*").alias("n"),
            F.percentile(lat, 0.5).alias("ref_lat"),
            F.percentile(lon, 0.5).alias("ref_lon"),
        )
        .filter(F.col("n") >= 20)
        .drop("n")
    )
    return frame.join(F.broadcast(points), on="file_index", how="left")


def validate_batch_rows() -> int:
    """Return the local reader's batch size (its reference point reads the first batch)."""
    from geo.io.registrations import BATCH_ROWS

    return BATCH_ROWS


def _swapped(frame_lat: Any, frame_lon: Any) -> Any:
    """Return the local rule "far from the file's other records, near once swapped"."""
    from pyspark.sql import functions as F  # noqa: N812

    ref_lat, ref_lon = F.col("ref_lat"), F.col("ref_lon")

    def distance_km(lat: Any, lon: Any) -> Any:
        x = F.radians(lon - ref_lon) * F.cos(F.radians((lat + ref_lat) / 2))
        y = F.radians(lat - ref_lat)
        return F.sqrt(x * x + y * y) * 6371.0

    as_is = distance_km(frame_lat, frame_lon)
    swapped = distance_km(frame_lon, frame_lat)
    return (
        ref_lat.isNotNull()
        & (as_is > validate.SWAP_DISTANCE_KM)
        & (swapped < as_is / 4)
        & (F.abs(frame_lon) <= 90)
    )


def _parsed(spark: Any, frame: Any) -> Any:
    """Return the lake's rows with every value parsed (the local ``_parsed``, in Spark)."""
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql.types import DateType, TimestampNTZType, TimestampType

    frame = frame.select(
        *frame.columns,
        _number(frame, "latitude").alias("lat_num"),
        _number(frame, "longitude").alias("lon_num"),
        _number(frame, "age").alias("age_num"),
        _number(frame, "birth_year").alias("birth_num"),
        _number(frame, "family_members").alias("family_num"),
        *[_present(frame, name).alias(f"has_{name}") for name in validate.CANONICAL_COLUMNS],
    )
    kind = frame.schema["updated_at"].dataType
    if isinstance(kind, TimestampNTZType | DateType):
        updated = F.col("updated_at").cast("timestamp_ntz")
    elif isinstance(kind, TimestampType):  # instants: as UTC wall time, as the local reader
        updated = F.to_utc_timestamp(F.col("updated_at"), "UTC").cast("timestamp_ntz")
    else:
        updated = _datetime_udf()(F.col("updated_at").cast("string"))
    frame = frame.withColumn("updated_ts", updated)
    frame = _with_codes(
        spark,
        frame,
        {
            "nationality": (codes.nationality_to_iso3, "string"),
            "sex": (codes.sex_to_category, "string"),
            "vulnerabilities": (lambda v: validate._terms_mask(v, codes.VULNERABILITIES), "int"),
            "consent": (lambda v: validate._terms_mask(v, codes.CONSENT_SCOPES), "int"),
        },
    )
    return frame.withColumns(
        {
            "record_id": _text(F.col("record_id")),
            "source": F.coalesce(_text(F.col("source")), F.col("file_name")),
        }
    )


def _rules(this_year: int) -> list[tuple[Any, str]]:
    """Return (condition true where a row breaks the rule, reason): :func:`validate._row_rules`."""
    from pyspark.sql import functions as F  # noqa: N812

    c = F.col
    lat, lon = c("lat_num"), c("lon_num")
    age, birth, family = c("age_num"), c("birth_num"), c("family_num")
    max_id = validate.MAX_RECORD_ID_CHARS
    return [
        (~c("has_record_id"), "missing record_id"),
        (
            c("record_id").rlike(r"[\x00-\x1f\x7f]"),
            "record_id contains a control character (NUL, tab or line break)",
        ),
        (F.char_length("record_id") > max_id, f"record_id longer than {max_id} characters"),
        (~c("has_nationality"), "missing nationality"),
        (
            c("has_nationality") & c("nationality_code").isNull(),
            "unknown nationality (expected ISO 3166-1 alpha-3, alpha-2 or English name)",
        ),
        (~c("has_latitude") | ~c("has_longitude"), "missing latitude or longitude"),
        (c("has_latitude") & lat.isNull(), "latitude is not a number"),
        (c("has_longitude") & lon.isNull(), "longitude is not a number"),
        (
            lat.isNotNull() & lon.isNotNull() & (F.abs(lat) > 90) & (F.abs(lon) <= 90),
            "latitude out of range (looks swapped with longitude)",
        ),
        (
            lat.isNotNull() & (F.abs(lat) > 90) & (lon.isNull() | (F.abs(lon) > 90)),
            "latitude out of range -90..90",
        ),
        (lon.isNotNull() & (F.abs(lon) > 180), "longitude out of range -180..180"),
        ((lat == 0) & (lon == 0), "coordinates are 0,0 (a missing location, not a place)"),
        (
            _swapped(lat, lon),
            "latitude and longitude look swapped (far from the file's other records)",
        ),
        (c("has_sex") & c("sex_code").isNull(), "unrecognised sex (use F, M or X)"),
        (c("has_age") & age.isNull(), "age is not a number"),
        (age.isNotNull() & ((age < 0) | (age > 120)), "age out of range 0..120"),
        (c("has_birth_year") & birth.isNull(), "birth_year is not a number"),
        (
            birth.isNotNull() & ((birth < validate.MIN_BIRTH_YEAR) | (birth > this_year)),
            f"birth_year out of range {validate.MIN_BIRTH_YEAR}..{this_year}",
        ),
        (c("has_family_members") & family.isNull(), "family_members is not a number"),
        (
            family.isNotNull() & ((family != F.round(family, 0)) | (family < 0)),
            "family_members is not a whole number ≥ 0",
        ),
        (
            family > validate.MAX_FAMILY_MEMBERS,
            f"family_members implausible (more than {validate.MAX_FAMILY_MEMBERS})",
        ),
        (
            c("has_vulnerabilities") & c("vulnerabilities_code").isNull(),
            "unknown vulnerability (allowed: " + ", ".join(codes.VULNERABILITIES) + ")",
        ),
        (
            c("has_consent") & c("consent_code").isNull(),
            "unknown consent scope (allowed: " + ", ".join(codes.CONSENT_SCOPES) + ")",
        ),
        (
            c("has_updated_at") & c("updated_ts").isNull(),
            "updated_at is not a date (use YYYY-MM-DD)",
        ),
    ]


def _flagged(spark: Any, files: list[LakeFile], this_year: int) -> Any:
    """Return every lake row parsed, with ``reasons`` (an array, empty when accepted)."""
    from pyspark.sql import functions as F  # noqa: N812

    frame = _parsed(spark, _read(spark, files, column_map_of(files)))
    frame = _with_reference_points(spark, frame)
    reasons = [
        F.when(F.coalesce(cond, F.lit(False)), F.lit(why)) for cond, why in _rules(this_year)
    ]
    return frame.withColumn("reasons", F.filter(F.array(*reasons), lambda r: r.isNotNull()))


def _latest_records(frame: Any, secret: bytes, this_year: int, resolution: int) -> Any:
    """Return the accepted rows' minimal records, keyed, binned, the latest version only."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812

    accepted = frame.filter(F.size("reasons") == 0)
    age = F.coalesce(F.col("age_num"), F.lit(float(this_year)) - F.col("birth_num"))
    message = F.encode(F.concat(F.col("source"), F.lit(RECORD_KEY_SEPARATOR), "record_id"), "UTF-8")
    keyed = accepted.select(
        _hmac_hex(message, secret).alias("digest"),
        F.col("nationality_code").alias("nationality"),
        _cell_udf(resolution)(F.col("lat_num"), F.col("lon_num")).alias("cell"),
        F.coalesce("sex_code", F.lit("unknown")).alias("sex"),
        F.when(age.isNull(), "unknown")
        .when(age < 5, "0-4")
        .when(age < 18, "5-17")
        .when(age < 60, "18-59")
        .otherwise("60+")
        .alias("age_band"),
        (1 + F.coalesce("family_num", F.lit(0.0))).cast("long").alias("persons"),
        F.coalesce("vulnerabilities_code", F.lit(0)).alias("vulnerabilities"),
        F.coalesce("consent_code", F.lit(0)).alias("consent"),
        "updated_ts",
        "file_index",
        "row",
    )
    order = Window.partitionBy("digest").orderBy(
        F.col("updated_ts").desc_nulls_last(), F.col("file_index").desc(), F.col("row").desc()
    )
    latest = keyed.withColumn("_rank", F.row_number().over(order)).filter("_rank = 1")
    # record key mod 2^32 (the last 4 bytes of its first 16), mixed with the persons:
    # each record's share of the keyed noise's key_sum (geo.io.store_reads)
    low = F.conv(F.substring("digest", 25, 8), 16, 10).cast("long")
    return latest.withColumn(
        "key_term", F.pmod(low + F.lit(2654435761) * F.col("persons"), F.lit(KEY_MODULUS))
    )


def count_lake(
    spark: Any,
    files: list[LakeFile],
    secret: bytes,
    resolution: int,
    audience: LakeAudience,
    keep: Callable[[pa.Table], None],
    this_year: int | None = None,
) -> LakeReport:
    """Validate and count a lake on Spark, then count the release's audience there too.

    The records are counted at the store's resolution by cell, nationality and every
    category (nearly a row a record), kept on the executors' disks; only the audience's
    counts at the release's base resolution (a filter and a second group-by, on Spark)
    come to this machine, handed to ``keep`` piece by piece
    (:func:`geo.io.store_counts.counted_table`): the driver never holds them whole (4.2M
    rows at 10M records, base resolution 7).

    Parameters
    ----------
    spark
        A SparkSession (:func:`geo.io.spark_session.start_spark`).
    files
        The snapshot (:func:`geo.io.lake.lake_snapshot`), in path order.
    secret
        The record keys' HMAC secret (:func:`geo.io.store.record_key_secret`).
    resolution
        The store's H3 resolution.
    audience
        The release's consent bit (None: every registration, under another legal
        basis), nationalities (None: all) and base resolution.
    keep
        Called with each piece of the audience's counts: columns nationality, cell (at
        the base resolution), sex, age_band, vulnerabilities, cases, persons, key_sum
        (mod 2³²), as :func:`geo.io.store_reads.audience_records` gives a store's.
    this_year
        Year that turns ``birth_year`` into an age (default: the current year).

    Returns
    -------
    LakeReport
        What the lake held (rows read, accepted, rejected by reason, superseded).

    Raises
    ------
    InputError
        For unreadable files or columns that do not map (one line).
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F  # noqa: N812

    this_year = this_year or datetime.now(UTC).year
    report = LakeReport(files=len(files))
    categories = ("nationality", "cell", "sex", "age_band", "vulnerabilities")
    try:
        flagged = _flagged(spark, files, this_year)
        reasons = [why for _, why in _rules(this_year)]
        stats = flagged.agg(
            F.count("*"),
            F.count_if(F.size("reasons") == 0),
            *[F.count_if(F.array_contains("reasons", why)) for why in reasons],
        ).first()
        report.rows_read, report.accepted = int(stats[0]), int(stats[1])
        for why, n in zip(reasons, stats[2:], strict=True):
            if n:
                report.rejects_by_reason[why] = int(n)
        stored = (
            _latest_records(flagged, secret, this_year, resolution)
            .groupBy(*categories, "consent")
            .agg(
                F.count("*").alias("cases"),
                F.sum("persons").alias("persons"),
                F.pmod(F.sum("key_term"), F.lit(KEY_MODULUS)).alias("key_sum"),
            )
            .persist(StorageLevel.DISK_ONLY)
        )
        try:
            latest = stored.agg(F.sum("cases")).first()[0] or 0
            chosen = stored
            if audience.consent_bit is not None:
                chosen = chosen.filter(
                    F.col("consent").bitwiseAND(F.lit(audience.consent_bit)) != 0
                )
            if audience.nationalities:
                chosen = chosen.filter(F.col("nationality").isin(list(audience.nationalities)))
            _collected(
                chosen.withColumn("cell", _parent(F.col("cell"), audience.base_resolution))
                .groupBy(*categories)
                .agg(*(F.sum(c).alias(c) for c in ("cases", "persons", "key_sum"))),
                keep,
            )
        finally:
            stored.unpersist()
    except Exception as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"the lake cannot be counted on Spark: {spark_failure(exc)}") from None
    report.superseded = report.accepted - int(latest)
    return report


@dataclass(frozen=True)
class LakeAudience:
    """Whose counts a lake release publishes, and at which base resolution."""

    consent_bit: int | None  # None: another legal basis, every registration counts
    nationalities: tuple[str, ...] | None
    base_resolution: int


def _parent(cell: Any, resolution: int) -> Any:
    """Return Spark's H3 parent of an integer cell column (as :func:`geo.h3cells.parent_sql`).

    The resolution field (bits 52–55) set to ``resolution``, every finer digit to 7.
    """
    from pyspark.sql import functions as F  # noqa: N812

    unused = (1 << (3 * (15 - resolution))) - 1
    return cell.bitwiseAND(F.lit(~(15 << 52))).bitwiseOR(F.lit((resolution << 52) | unused))


# Count rows brought to the driver in one piece. The counts of 10M records (cell × every
# category: nearly one row a record) in one piece failed in a driver of Spark's default
# 1 GiB (TaskResultLost); pieces of this size pass through it one at a time.
COLLECT_ROWS = 1_000_000


def _collected(counts: Any, keep: Callable[[pa.Table], None]) -> None:
    """Hand the counts to ``keep`` as Arrow, in pieces of at most ~``COLLECT_ROWS`` rows.

    The counts are kept on the executors' disks (as the shuffle before them was) while
    each piece, a hash bucket of cells, is collected: the driver then holds one piece
    at a time, in the JVM and in Python, whatever the lake's size.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F  # noqa: N812

    kept = counts.persist(StorageLevel.DISK_ONLY)
    try:
        pieces = -(-kept.count() // COLLECT_ROWS)
        if pieces <= 1:
            keep(kept.toArrow())
            return
        bucket = F.pmod(F.xxhash64("cell"), F.lit(pieces))
        for i in range(pieces):
            keep(kept.filter(bucket == i).toArrow())
    finally:
        kept.unpersist()
