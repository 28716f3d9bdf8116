"""Reading the steward store: an audience as it is now or was at any store version.

The store keeps every version of a registration (``valid_from``/``valid_to``, by ingest
id), so any past release's audience can be rebuilt exactly. Everything here reads; the
writing side (schema, connection, ingest) is :mod:`geo.io.store`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import date
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from geo import codes, h3cells
from geo.counting import PLACEMENT
from geo.errors import InputError
from geo.io.steward_key import derived
from geo.io.store import STORE_RESOLUTION, meta_value, store_version
from geo.rollup import primary_vulnerability_sql

if TYPE_CHECKING:
    import pyarrow as pa

    from geo.release import ReleasePolicy


def consent_bit(consent_scope: str) -> int:
    """Return the consent bit of a scope.

    Raises
    ------
    InputError
        For an unknown consent scope.
    """
    if consent_scope not in codes.CONSENT_SCOPES:
        raise InputError(
            f"unknown consent scope {consent_scope!r}; "
            f"use one of {', '.join(codes.CONSENT_SCOPES)}."
        )
    return 1 << codes.CONSENT_SCOPES.index(consent_scope)


def _versions(con: duckdb.DuckDBPyConnection, as_of: int | None) -> tuple[str, list[int]]:
    """Return the SQL condition (and its parameters) selecting the versions valid at ``as_of``.

    Only the registrations that count are selected: one per person.

    Raises
    ------
    InputError
        For a version the store has not reached (or a negative one).
    """
    if as_of is None:
        return "valid_to IS NULL" + _COUNTED.format("valid_to IS NULL"), []
    current = store_version(con)
    if not 0 <= as_of <= current:
        raise InputError(
            f"store version {as_of} does not exist; the store is at version {current} "
            "(one version per ingested file)."
        )
    at = "valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"
    return at + _COUNTED.format(at), [as_of, as_of, as_of, as_of]


# One case per person: a registration linked to a more recently confirmed one of the
# same person, or counted inside its principal's family, is kept out
# (:mod:`geo.io.store_links`), at the same store version.
_COUNTED = " AND record_key NOT IN (SELECT record_key FROM absorbed WHERE {})"


# A record's share of its figures' key sum: the record key's low 32 bits mixed with its
# persons, modulo 2³² (a bit mask, not a 128-bit division: 8× faster on a national store).
_KEY_MIX = (
    "((record_key & 4294967295::UHUGEINT)::UBIGINT"
    " + 2654435761 * (1 + family_members)::UBIGINT) & 4294967295"
)


def audience_records(
    con: duckdb.DuckDBPyConnection,
    consent_scope: str | None,
    nationalities: Sequence[str] | None = None,
    resolution: int | None = None,
    as_of: int | None = None,
    believed: tuple[str, list] = ("TRUE", []),
) -> pl.DataFrame:
    """Return the stored records whose consent covers ``consent_scope``, counted.

    Parameters
    ----------
    con
        A store connection.
    consent_scope
        The scope every record must carry; None for a register held under another
        legal basis (every record counts).
    nationalities
        Keep only these (ISO alpha-3); default all.
    resolution
        Count records per cell at this H3 resolution (≤ the store's); default the
        store's own resolution.
    as_of
        Read the registry as it was at this store version (see :func:`store_version`):
        the record versions stored by then and not yet replaced. Default: now.
    believed
        A SQL condition and its parameters keeping the records still believed true
        (:func:`geo.freshness.believed_sql`); default all.

    Returns
    -------
    polars.DataFrame
        Columns nationality, cell, sex, age_band, vulnerabilities, cases, persons and
        key_sum (the record keys, each mixed with the record's persons, summed modulo
        2³², for the keyed noise: a change of family size gives the figure fresh noise): one
        row per distinct combination, ``cases`` registrations and their ``persons``.

    Raises
    ------
    InputError
        For an unknown consent scope, or a store version the store has not reached.
    """
    cell = h3cells.parent_sql("cell", resolution if resolution is not None else STORE_RESOLUTION)
    where, parameters = _audience_filter(con, consent_scope, nationalities, as_of, believed)
    query = f"""
        SELECT nationality, {cell} AS cell, sex, age_band, vulnerabilities,
               count(*)::BIGINT AS cases, sum(1 + family_members)::BIGINT AS persons,
               (sum({_KEY_MIX}) % 4294967296)::BIGINT AS key_sum
        FROM registrations WHERE {where} GROUP BY ALL
    """
    return con.sql(query, params=parameters).pl()


def _audience_filter(
    con: duckdb.DuckDBPyConnection,
    consent_scope: str | None,
    nationalities: Sequence[str] | None,
    as_of: int | None,
    believed: tuple[str, list],
) -> tuple[str, list]:
    """Return the SQL condition (and its parameters) keeping an audience's registrations.

    Raises
    ------
    InputError
        For an unknown consent scope, or a store version the store has not reached.
    """
    versions, parameters = _versions(con, as_of)
    consented = (
        "TRUE" if consent_scope is None else f"(consent & {consent_bit(consent_scope)}) != 0"
    )
    where = f"{versions} AND {consented} AND {believed[0]}"
    parameters += believed[1]
    if nationalities:
        where += " AND nationality IN (SELECT unnest(?))"
        parameters.append(list(nationalities))
    return where, parameters


def _bits(values: int) -> int:
    """Return the bits that hold a code of ``values`` values (0 … values − 1)."""
    return max(values - 1, 1).bit_length()


def _code_sql(column: str, values: Sequence[str]) -> str:
    """Return SQL for the position of a text column's value in ``values`` (else an error)."""
    cases = " ".join(f"WHEN '{value}' THEN {i}" for i, value in enumerate(values))
    return f"CASE {column} {cases} ELSE error('unknown {column} in the store') END::UBIGINT"


# A record's categories packed in the low bits of its cube key: its vulnerability bits,
# then its age band and sex codes; the nationality's code above them.
_VULNERABILITY_BITS = len(codes.VULNERABILITIES)
_AGE_SHIFT = _VULNERABILITY_BITS
_SEX_SHIFT = _AGE_SHIFT + _bits(len(codes.AGE_BANDS))
_NATIONALITY_SHIFT = _SEX_SHIFT + _bits(len(codes.SEX_CATEGORIES))
_CATEGORY_SQL = {
    "sex": f"(key >> {_SEX_SHIFT}) & {(1 << _bits(len(codes.SEX_CATEGORIES))) - 1}",
    "age_band": f"(key >> {_AGE_SHIFT}) & {(1 << _bits(len(codes.AGE_BANDS))) - 1}",
    "vulnerability": primary_vulnerability_sql(f"(key & {(1 << _VULNERABILITY_BITS) - 1})"),
}


class StoreCounts:
    """An audience's counts, each a GROUP BY pushed down into the store (no records out).

    The :class:`geo.counting.AudienceCounts` of a store audience (the parameters of
    :func:`audience_records`). The audience's records are counted once, into a
    temporary cube keyed by one integer per (base cell, nationality, sex, age band,
    vulnerabilities): the base cell with the other codes in its unused digit bits (a
    parent cell's finer digits are all 7s). The base table and every breakdown are
    then grouped from that cube inside DuckDB (which spills it under its memory
    budget), so what leaves DuckDB is as large as the release, whatever the registry's
    size. (One scan instead of one per grouping, and integer keys instead of text:
    measured 5× faster at 10M registrations than a query per grouping.)
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        consent_scope: str | None,
        nationalities: Sequence[str] | None = None,
        resolution: int | None = None,
        as_of: int | None = None,
        believed: tuple[str, list] = ("TRUE", []),
    ) -> None:
        where, parameters = _audience_filter(con, consent_scope, nationalities, as_of, believed)
        self._start(con, "registrations", where, parameters, resolution, counted=False)

    @classmethod
    def of_counted(cls, con: duckdb.DuckDBPyConnection, table: str, resolution: int) -> StoreCounts:
        """Return the counts of an audience already counted into ``table`` of ``con``.

        The table has :func:`audience_records`' columns at ``resolution`` or finer (a
        lake's audience, counted on Spark: :func:`geo.io.lake_counts.count_lake`); its
        figures are summed where the registrations' are counted.
        """
        counts = cls.__new__(cls)
        counts._start(con, table, "TRUE", [], resolution, counted=True)
        return counts

    def _start(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        where: str,
        parameters: list,
        resolution: int | None,
        counted: bool,
    ) -> None:
        """Keep where the audience's rows are (a table, a condition) and how they are summed."""
        self._con = con
        self._table, self._where, self._parameters = table, where, parameters
        self._cases = "sum(cases)::BIGINT" if counted else "count(*)::BIGINT"
        self._figures = _COUNTED_FIGURES if counted else _FIGURES
        resolution = resolution if resolution is not None else STORE_RESOLUTION
        self._cell = h3cells.parent_sql("cell", resolution)
        self._unused = (1 << (3 * (15 - resolution))) - 1  # a parent's unused digit bits
        self._names: list[str] = []
        self._nationality_type: pl.DataType = pl.String()
        self._totals: pl.DataFrame | None = None

    def nationality_totals(self) -> pl.DataFrame:
        """Return nationality and cases of the audience (counted once, then kept)."""
        if self._totals is None:
            self._totals = self._con.sql(
                f"SELECT nationality, {self._cases} AS cases FROM {self._table}"
                f" WHERE {self._where} GROUP BY nationality",
                params=self._parameters,
            ).pl()
        return self._totals

    def base_counts(self, rare: Sequence[str]) -> pl.DataFrame:
        """Return the (base cell × nationality) table, counting ``rare`` as OTH.

        Counts the audience into the cube that :meth:`unit_counts` then groups.
        """
        stored = self.nationality_totals().select(
            "nationality",
            pl.when(pl.col("nationality").is_in(list(rare)))
            .then(pl.lit(codes.OTHER_NATIONALITIES))
            .otherwise(pl.col("nationality"))
            .alias("counted_as"),
        )
        self._names = sorted(set(stored["counted_as"].to_list()))
        if len(self._names) << _NATIONALITY_SHIFT > self._unused:
            raise InputError(
                f"{len(self._names)} nationalities in one audience: too many to count at "
                "this base resolution; release fewer (--nationalities)."
            )
        self._con.register(
            "nationality_codes",
            stored.select("nationality", self._coded(pl.col("counted_as")).alias("code")),
        )
        key = (
            f"({self._cell} & ~{self._unused}::UBIGINT) | (code << {_NATIONALITY_SHIFT})"
            f" | ({_code_sql('sex', codes.SEX_CATEGORIES)} << {_SEX_SHIFT})"
            f" | ({_code_sql('age_band', codes.AGE_BANDS)} << {_AGE_SHIFT})"
            f" | (vulnerabilities & {(1 << _VULNERABILITY_BITS) - 1})"
        )
        # Sorted by key (cell first), so that each part of whole floor cells is one range
        # of it (:meth:`unit_counts`); the sort cost nothing measurable at 10M and 100M.
        try:
            self._con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE audience_cube AS
                SELECT {key} AS key, {self._figures}
                FROM {self._table} JOIN nationality_codes USING (nationality)
                WHERE {self._where} GROUP BY ALL ORDER BY key
                """,
                self._parameters,
            )
        finally:
            self._con.unregister("nationality_codes")
        keyed = self._con.sql(
            f"SELECT group_key, {_unpacked('total')} FROM (SELECT"
            f" key & ~{(1 << _NATIONALITY_SHIFT) - 1}::UBIGINT AS group_key,"
            " sum(figures) AS total FROM audience_cube GROUP BY ALL)"
        ).pl()
        # The cube waits in DuckDB's temporary file while the roll-up runs (in memory it
        # sat under the roll-up's frames: ~350 MB more at 100M registrations).
        release_memory(self._con)
        return keyed.select(
            (pl.col("group_key") | self._unused).alias("base_cell"),
            ((pl.col("group_key") & self._unused) // (1 << _NATIONALITY_SHIFT))
            .replace_strict(range(len(self._names)), self._names, return_dtype=pl.String)
            .alias("nationality"),
            "cases",
            "persons",
            "key_sum",
        )

    def _coded(self, nationality: pl.Expr) -> pl.Expr:
        """Return the code of a nationality (as counted) among those of the audience."""
        return nationality.cast(pl.String).replace_strict(
            self._names, range(len(self._names)), return_dtype=pl.UInt64
        )

    def unit_counts(
        self, parts: Sequence[pl.DataFrame], groupings: Sequence[tuple[str, ...]]
    ) -> Iterator[list[pl.DataFrame]]:
        """Yield each placement part's audience counted per grouping (after :meth:`base_counts`).

        The cube is joined to each part (on its integer group key), then counted per
        grouping, all in DuckDB: only the units' figures come out. A part holds whole
        floor cells in order, so its keys are one range of the sorted cube, and the join
        reads only that range (DuckDB skips the row groups outside it: at 100M
        registrations the 17 joins took 4.6 s, against 14 s for 17 of the whole cube).
        (One GROUPING SETS query was slower than these queries together at 10M
        registrations, DuckDB 1.x/2.0.) The cube is dropped after the last part.
        """
        from geo.io.store_open import BREAKDOWN_MEMORY_LIMIT

        self._con.execute(f"SET memory_limit = '{BREAKDOWN_MEMORY_LIMIT}'")
        try:
            for placement in parts:
                yield self._placed_counts(placement, groupings)
                # The cube's blocks go to DuckDB's temporary file between parts: held
                # in memory they took ~400 MB beside the breakdowns at 100M registrations.
                release_memory(self._con, BREAKDOWN_MEMORY_LIMIT)
        finally:
            self._con.execute("DROP TABLE IF EXISTS audience_cube")
            release_memory(self._con)  # and the budget back to the store's

    def _placed_counts(
        self, placement: pl.DataFrame, groupings: Sequence[tuple[str, ...]]
    ) -> list[pl.DataFrame]:
        """Return one placement part's audience counted by each grouping."""
        group_bits = f"~{(1 << _NATIONALITY_SHIFT) - 1}::UBIGINT"
        self._nationality_type = placement.schema["nationality"]  # the units' own type
        keyed = placement.select(
            (
                (pl.col("base_cell") & ~pl.lit(self._unused, dtype=pl.UInt64))
                | self._coded(pl.col("nationality")) * (1 << _NATIONALITY_SHIFT)
            ).alias("group_key"),
            *PLACEMENT[2:],
        )
        # The part's range of cube keys: its groups' keys with any categories (none: empty).
        lowest, highest = 1, 0
        if keyed.height:
            lowest = keyed["group_key"].min()
            highest = keyed["group_key"].max() | ((1 << _NATIONALITY_SHIFT) - 1)
        self._con.register("placement", keyed.to_arrow())
        try:
            self._con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE placed AS
                SELECT published_cell, published_res, floor_cell,
                       (key & {self._unused}) >> {_NATIONALITY_SHIFT} AS nationality,
                       key & {(1 << _NATIONALITY_SHIFT) - 1} AS key, figures
                FROM audience_cube JOIN placement ON group_key = key & {group_bits}
                WHERE key BETWEEN {lowest}::UBIGINT AND {highest}::UBIGINT
                """
            )
        finally:
            self._con.unregister("placement")
        try:
            return [self._unit_table(grouping) for grouping in groupings]
        finally:
            self._con.execute("DROP TABLE placed")

    def _unit_table(self, grouping: tuple[str, ...]) -> pl.DataFrame:
        """Return the placed audience counted by one grouping's columns (names decoded)."""
        columns = [c if c in PLACEMENT else f"{_CATEGORY_SQL[c]} AS {c}" for c in grouping]
        counted = self._con.sql(
            f"SELECT * EXCLUDE (total), {_unpacked('total', 'INTEGER', 'UINTEGER')} FROM"
            f" (SELECT {', '.join(columns)}, sum(figures) AS total FROM placed GROUP BY ALL)"
        ).pl()
        named = {
            "nationality": self._names,
            "sex": codes.SEX_CATEGORIES,
            "age_band": codes.AGE_BANDS,
        }
        return counted.with_columns(
            pl.col(c).replace_strict(range(len(named[c])), named[c], return_dtype=pl.String)
            for c in grouping
            if c in named
        ).with_columns(pl.col("nationality").cast(self._nationality_type))


def counted_table(con: duckdb.DuckDBPyConnection, name: str) -> Callable[[pa.Table], None]:
    """Create the temporary table ``name`` in ``con``; return what appends a piece to it.

    A temporary table lives in the connection's memory and its private spill folder,
    never in the store file; it has :func:`audience_records`' columns and types, so
    :meth:`StoreCounts.of_counted` counts it as a store's registrations (a lake's
    audience, handed over by Spark piece by piece: :func:`geo.io.lake_counts.count_lake`).
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} (nationality VARCHAR, cell UBIGINT, sex VARCHAR,"
        " age_band VARCHAR, vulnerabilities USMALLINT, cases BIGINT, persons BIGINT,"
        " key_sum BIGINT)"
    )

    def append(piece: pa.Table) -> None:
        con.register("lake_piece", piece)
        try:
            con.execute(
                f"INSERT INTO {name} SELECT nationality, cell, sex, age_band, vulnerabilities,"
                " cases, persons, key_sum % 4294967296 FROM lake_piece"
            )
        finally:
            con.unregister("lake_piece")

    return append


def _packed(key_share: str, cases: str, persons: str) -> str:
    """Return SQL packing a row's figures into one 128-bit integer that sums as all three.

    The key sum's 32-bit shares in the low 64 bits (exact below 2³² rows), cases in the
    next 32 bits, persons in the top 31: a figure's three sums are one aggregate (the
    cube's GROUP BY at 10M registrations took 1.38 s against 1.72 s for three sums).
    """
    return f"(({key_share})::HUGEINT | (({cases})::HUGEINT << 64) | (({persons})::HUGEINT << 96))"


def _unpacked(total: str, whole: str = "BIGINT", key: str = "BIGINT") -> str:
    """Return SQL for cases, persons and key sum (mod 2³²) of a sum of :func:`_packed` figures.

    Counts as ``whole``, the key sum as ``key`` (32-bit types for a unit's figures:
    millions of rows at national scale, each small).
    """
    return (
        f"(({total} >> 64) & 4294967295)::{whole} AS cases, ({total} >> 96)::{whole} AS persons,"
        f" ({total} & 4294967295)::{key} AS key_sum"
    )


# A record's figures (one case, its persons, its share of the key sum), packed.
_FIGURES = f"sum({_packed(_KEY_MIX, '1', '1 + family_members')}) AS figures"

# The same from rows already counted (a lake's audience: cases, persons, key_sum).
_COUNTED_FIGURES = f"sum({_packed('key_sum % 4294967296', 'cases', 'persons')}) AS figures"


def release_memory(con: duckdb.DuckDBPyConnection, budget: str | None = None) -> None:
    """Hand DuckDB's cached blocks back to the system, then set its memory budget.

    After a query DuckDB keeps up to its budget of the store's blocks cached (180 MB
    after one scan of 10M registrations, more after the cube): a release holds its own
    frames long after its queries, so the cache is emptied by lowering the budget for a
    moment (what DuckDB cannot evict stays; it is not an error). The budget is then
    ``budget``, by default the store's (:data:`geo.io.store_open.DUCKDB_MEMORY_LIMIT`).
    """
    from geo.io.store_open import DUCKDB_MEMORY_LIMIT

    try:
        con.execute("SET memory_limit = '16MB'")
    except duckdb.Error:
        pass
    finally:
        con.execute(f"SET memory_limit = '{budget or DUCKDB_MEMORY_LIMIT}'")


def confirmation_counts(
    con: duckdb.DuckDBPyConnection,
    policy: ReleasePolicy,
    reference: date,
    as_of: int | None = None,
) -> pl.DataFrame:
    """Return, per nationality, the audience's cases confirmed within 6, 12, 24 months.

    The figures behind a release's ``confirmed_within_months`` block
    (:func:`geo.freshness.confirmed_block` protects them), over the same records as
    :func:`audience_records` for the policy, counted back from ``reference``.

    Returns
    -------
    polars.DataFrame
        Columns bucket (``"6"``, ``"12"``, ``"24"``, ``"audience"``), nationality,
        cases and key_sum (as :func:`audience_records`).
    """
    from geo.freshness import believed_sql, confirmed_buckets, consent_mask

    versions, parameters = _versions(con, as_of)
    believed, more = believed_sql(policy)
    bit = consent_mask(policy)
    query = f"""
        SELECT nationality, record_key, family_members, updated_at::DATE AS confirmed_on
        FROM registrations WHERE {versions} AND {believed}
          AND {"TRUE" if bit is None else f"(consent & {bit}) != 0"}
    """
    parameters += more
    if policy.nationalities:
        query += " AND nationality IN (SELECT unnest(?))"
        parameters.append(list(policy.nationalities))
    figures = []
    for bucket, (start, _) in confirmed_buckets(reference).items():
        inside = (
            "TRUE"
            if start is None
            else f"confirmed_on BETWEEN DATE '{start}' AND DATE '{reference}'"
        )
        figures.append(
            f'count(*) FILTER (WHERE {inside})::BIGINT AS "cases_{bucket}", '
            f"(coalesce(sum({_KEY_MIX}) FILTER (WHERE {inside}), 0) % 4294967296)::BIGINT"
            f' AS "keys_{bucket}"'
        )
    wide = con.sql(
        f"SELECT nationality, {', '.join(figures)} FROM ({query}) GROUP BY nationality",
        params=parameters,
    ).pl()
    return pl.concat(
        wide.select(
            pl.lit(bucket).alias("bucket"),
            "nationality",
            pl.col(f"cases_{bucket}").alias("cases"),
            pl.col(f"keys_{bucket}").alias("key_sum"),
        )
        for bucket in confirmed_buckets(reference)
    ).filter(pl.col("cases") > 0)


def registration_records(con: duckdb.DuckDBPyConnection, as_of: int | None = None) -> pl.DataFrame:
    """Return every stored registration, one row each, with its consent bit mask.

    This is the steward's truth at full detail (no consent filter, no grouping), for
    checks that must see the records a release was made from, such as the audit.

    Parameters
    ----------
    con
        A store connection.
    as_of
        The store version to read (default: the registry now).

    Returns
    -------
    polars.DataFrame
        Columns nationality, cell (H3 integer at the store's resolution), sex,
        age_band, vulnerabilities (bit mask), persons (1 + family members), consent
        (bit mask), confirmed_on (the day of ``updated_at``) and valid_until.
    """
    condition, parameters = _versions(con, as_of)
    return con.sql(
        "SELECT nationality, cell, sex, age_band, vulnerabilities,"
        " (1 + family_members)::BIGINT AS persons, consent,"
        " updated_at::DATE AS confirmed_on, valid_until FROM registrations"
        f" WHERE {condition}",
        params=parameters,
    ).pl()


def complete_from(con: duckdb.DuckDBPyConnection) -> int:
    """Return the first store version whose snapshot is whole (after the latest purge or erasure).

    Records deleted by ``purge`` or ``erase`` are gone from every version, so snapshots
    of earlier versions no longer give the releases made from them (0: nothing deleted).
    """
    return int(con.execute("SELECT coalesce(max(store_version), 0) FROM purges").fetchall()[0][0])


def noise_secret(con: duckdb.DuckDBPyConnection) -> int:
    """Return the 64-bit secret behind the releases' keyed noise (never published).

    Derived from the store's record-key salt, itself derived from the steward's key
    (:mod:`geo.io.steward_key`): stores of one steward give the same noise.
    """
    digest = derived("noise", bytes.fromhex(meta_value(con, "key_salt")))
    return int.from_bytes(digest[:8], "big")


def store_summary(con: duckdb.DuckDBPyConnection) -> dict:
    """Return what a steward checks of the registry now, and of its history.

    Returns
    -------
    dict
        ``records``, ``persons`` and ``nationalities`` of the current registrations,
        ``superseded`` (record versions kept as history), ``resolution``,
        ``store_version`` and ``ingests`` (file name and keyed digest of each, in order:
        :func:`geo.io.store.ingest_digest`).
    """
    records, persons, nationalities, superseded = con.execute(
        """
        SELECT count(*) FILTER (WHERE valid_to IS NULL),
               coalesce(sum(1 + family_members) FILTER (WHERE valid_to IS NULL), 0),
               count(DISTINCT nationality) FILTER (WHERE valid_to IS NULL),
               count(*) FILTER (WHERE valid_to IS NOT NULL)
        FROM registrations
        """
    ).fetchall()[0]
    ingests = con.execute("SELECT file_name, sha256 FROM ingests ORDER BY ingest_id").fetchall()
    return {
        "records": int(records),
        "persons": int(persons),
        "nationalities": int(nationalities),
        "superseded": int(superseded),
        "resolution": int(meta_value(con, "resolution")),
        "store_version": store_version(con),
        "ingests": [{"file_name": name, "sha256": digest} for name, digest in ingests],
    }
