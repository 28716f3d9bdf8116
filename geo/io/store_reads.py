"""Reading the steward store: an audience as it is now or was at any store version.

The store keeps every version of a registration (``valid_from``/``valid_to``, by ingest
id), so any past release's audience can be rebuilt exactly. Everything here reads; the
writing side (schema, connection, ingest) is :mod:`geo.io.store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from geo import codes, h3cells
from geo.errors import InputError
from geo.io.steward_key import derived
from geo.io.store import STORE_RESOLUTION, meta_value, store_version

if TYPE_CHECKING:
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
KEY_MIX_SQL = (
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
    where, parameters = audience_filter(con, consent_scope, nationalities, as_of, believed)
    query = f"""
        SELECT nationality, {cell} AS cell, sex, age_band, vulnerabilities,
               count(*)::BIGINT AS cases, sum(1 + family_members)::BIGINT AS persons,
               (sum({KEY_MIX_SQL}) % 4294967296)::BIGINT AS key_sum
        FROM registrations WHERE {where} GROUP BY ALL
    """
    return con.sql(query, params=parameters).pl()


def audience_filter(
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
            f"(coalesce(sum({KEY_MIX_SQL}) FILTER (WHERE {inside}), 0) % 4294967296)::BIGINT"
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
