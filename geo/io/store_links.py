"""Linking one person's registrations inside the store: keyed encodings, persons, who counts.

Beside the registrations the store keeps, per record, only keyed encodings of its
identity (:mod:`geo.identity`: a CLK and keyed block keys, never a name, date or document
number) and the *person key* (link id) of the person it belongs to. After each file is
merged, its new and updated records are compared with every stored record that shares a
block, pairs at or above the Dice threshold (:mod:`geo.linkage`) join one person, and
the store decides which registrations count:

- one per person: the one most recently confirmed (latest ``updated_at``) wins, its
  place, nationality and family size stand for the person;
- a companion (a registration naming its principal's record id, or sharing a household
  id with a registration that lists family members) is counted inside its principal's
  ``family_members``, up to that number, not again as a case.

The records that do not count are kept in ``absorbed``, versioned by ingest like the
registrations (``valid_from``/``valid_to``), so every past store version's audience is
rebuilt exactly (:func:`geo.io.store_reads.audience_records` with ``as_of``).
"""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from geo import linkage
from geo.hashing import key_halves_sql, key_sql
from geo.identity import BLOCK_COLUMNS

LINK_SCHEMA = """
CREATE TABLE IF NOT EXISTS identities (
    id BIGINT NOT NULL,
    record_key UHUGEINT NOT NULL,
    person_key UHUGEINT NOT NULL,
    clk UBIGINT[16],
    household_key UBIGINT,
    principal_key UHUGEINT
);
CREATE TABLE IF NOT EXISTS identity_blocks (id BIGINT NOT NULL, block UBIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS absorbed (
    record_key UHUGEINT NOT NULL,
    valid_from INTEGER NOT NULL,
    valid_to INTEGER
);
"""
LINK_TABLES = {"identities", "identity_blocks", "absorbed"}
# Blocks holding more records than this are not compared (a too common name and year);
# the other blocks of the same records still are.
MAX_BLOCK = 2_000
_CONFLICTS = {"place": "cell", "nationality": "nationality", "family size": "family_members"}


def start_staging(con: duckdb.DuckDBPyConnection) -> None:
    """Create the temporary table a file's identity encodings are staged in."""
    blocks = ", ".join(f"{c} UBIGINT" for c in BLOCK_COLUMNS)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE staging_ids (
            row BIGINT, record_key UHUGEINT, linkable BOOLEAN, clk UBIGINT[16], {blocks},
            household_key UBIGINT, principal_key UHUGEINT)
        """
    )


_PENDING = "pending_identities"  # an ingest's identities until its end (start_linking)


def start_linking(con: duckdb.DuckDBPyConnection) -> None:
    """Open an ingest's linking: its files' identities wait in a temporary table.

    Rows inserted and then updated in one DuckDB transaction make its commit write the
    whole table to the write-ahead log (a later file of the ingest can merge persons of
    an earlier one): 160 MiB and ~1 s more per 1M records. So the ingest's identities
    are inserted once, by :func:`finish_linking`; until then ``all_identities`` reads
    the stored ones and these together.
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_PENDING} AS FROM identities LIMIT 0")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW all_identities AS FROM identities UNION ALL FROM {_PENDING}"
    )


def finish_linking(con: duckdb.DuckDBPyConnection) -> None:
    """Store the identities the ingest's files linked (:func:`start_linking`)."""
    con.execute(f"INSERT INTO identities FROM {_PENDING}")
    con.execute("DROP VIEW all_identities")
    con.execute(f"DROP TABLE {_PENDING}")


def stage_identities(con: duckdb.DuckDBPyConnection, keyed: pa.Table) -> bool:
    """Stage the identity encodings of a prepared batch (registered as ``keyed``).

    Returns whether the batch carried any (a file without identity columns has none).
    """
    names = set(keyed.schema.names)
    if not names & {"clk", "household_key", "principal_hi"}:
        return False
    columns = ", ".join(
        [
            "row",
            key_sql("key_hi", "key_lo"),
            "coalesce(linkable, false)" if "linkable" in names else "false",
            "clk" if "clk" in names else "NULL::UBIGINT[16]",
            *(c if c in names else "NULL::UBIGINT" for c in BLOCK_COLUMNS),
            "household_key" if "household_key" in names else "NULL::UBIGINT",
            key_sql("principal_hi", "principal_lo")
            if "principal_hi" in names
            else "NULL::UHUGEINT",
        ]
    )
    con.execute(f"INSERT INTO staging_ids SELECT {columns} FROM keyed")
    return True


def link_staged(con: duckdb.DuckDBPyConnection, ingest_id: int) -> dict:
    """Link the file just merged (``staging`` holds its new record versions) and recount.

    Returns
    -------
    dict
        ``pairs`` (candidate pairs compared), ``links`` (pairs at or above the
        threshold), ``linked`` (this file's new or updated records that share their
        person with another current registration), ``records`` and ``persons``
        (current registrations and the persons they count as), ``companions`` (current
        registrations counted inside a principal's family), ``conflicts`` (persons
        touched by this file whose registrations disagree, by kind) and
        ``skipped_blocks`` (blocks of this file's records too large to compare).
    """
    # Keys only (no CLK): the file's accepted versions, the person of their earlier one,
    # and a new integer id each (identities and their blocks meet on it, not on 128 bits).
    first_id = con.execute("SELECT coalesce(max(id), -1) + 1 FROM all_identities").fetchall()[0][0]
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE new_ids AS
        SELECT si.row, si.record_key, si.linkable, i.person_key AS old_person, ? + si.row AS id
        FROM staging_ids si JOIN staging s USING (record_key)
        LEFT JOIN all_identities i ON i.record_key = si.record_key
        """,
        [first_id],
    )
    if con.execute("SELECT count(old_person) FROM new_ids").fetchall()[0][0]:
        forget_identities(
            con, "SELECT record_key FROM new_ids WHERE old_person IS NOT NULL", (_PENDING,)
        )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE new_blocks AS
        SELECT id, block FROM (
            UNPIVOT (SELECT n.id, {", ".join(f"si.{c}" for c in BLOCK_COLUMNS)}
                     FROM new_ids n JOIN staging_ids si USING (row) WHERE n.linkable)
            ON {", ".join(BLOCK_COLUMNS)} INTO NAME kind VALUE block)
        """
    )
    figures, merges = _link_pairs(con, first_id)
    # The CLKs go once from staging into the store, each record with its person after
    # this file's merges; stored records change person only where two stored persons
    # merged (a new record joining a stored person takes that person's key).
    con.register("merges", merges.to_arrow())
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE merged_keys AS SELECT "
            f"{key_sql('old_hi', 'old_lo')} AS old_key, {key_sql('new_hi', 'new_lo')} AS new_key"
            " FROM merges"
        )
    finally:
        con.unregister("merges")
    con.execute(
        f"""
        INSERT INTO {_PENDING}
        SELECT n.id, n.record_key,
               coalesce(m.new_key, n.old_person, n.record_key),
               CASE WHEN n.linkable THEN si.clk END, si.household_key, si.principal_key
        FROM new_ids n JOIN staging_ids si USING (row)
        LEFT JOIN merged_keys m ON m.old_key = coalesce(n.old_person, n.record_key)
        """
    )
    if merges.height:
        for table in ("identities", _PENDING):
            con.execute(
                f"""
                UPDATE {table} SET person_key = m.new_key FROM merged_keys m
                WHERE {table}.person_key = m.old_key AND {table}.id < ?
                """,
                [first_id],
            )
    con.execute("INSERT INTO identity_blocks SELECT id, block FROM new_blocks")
    figures.update(_recount(con, ingest_id, "all_identities"))
    for name in ("new_ids", "new_blocks", "merged_keys"):
        con.execute(f"DROP TABLE {name}")
    return figures


def forget_identities(
    con: duckdb.DuckDBPyConnection, record_keys: str, also: tuple[str, ...] = ()
) -> None:
    """Delete the identity encodings and blocks of the records the query ``record_keys`` lists.

    ``also`` names further tables of identities to delete them from (an ingest's pending ones).
    """
    for table in ("identities", *also):
        con.execute(
            "DELETE FROM identity_blocks WHERE id IN "
            f"(SELECT id FROM {table} WHERE record_key IN ({record_keys}))"
        )
        con.execute(f"DELETE FROM {table} WHERE record_key IN ({record_keys})")


def _link_pairs(con: duckdb.DuckDBPyConnection, first_id: int) -> tuple[dict, pl.DataFrame]:
    """Compare the new records with every record sharing a block; return the persons merged.

    The file's records (ids from ``first_id`` on, :func:`link_staged`) are still only in
    ``new_ids`` and ``staging_ids``. Returns the figures and the person keys that change
    (``old_hi``, ``old_lo`` → ``new_hi``, ``new_lo``).
    """
    # Every record of the blocks the new records are in (one scan of the stored blocks),
    # with its person and CLK, numbered in the order the store returns them: the pairs are
    # formed and scored in numba on integers and each CLK leaves the store once. Results
    # go through polars: pyarrow's conversions to numpy would import pandas (0.9 s).
    touched = con.sql(
        "SELECT id, block FROM identity_blocks WHERE block IN (SELECT block FROM new_blocks)"
        " UNION ALL SELECT id, block FROM new_blocks"  # added to the store after this
    ).pl()
    if not touched.height:  # no new record with identity fields
        return {"pairs": 0, "links": 0, "skipped_blocks": 0}, _NO_MERGES
    # Ids are dense integers: the distinct ones and each row's node by array lookup (a
    # polars unique and join took 0.8 s per 1M records).
    touched_ids = touched["id"].to_numpy()
    low, span = int(touched_ids.min()), int(touched_ids.max() - touched_ids.min()) + 1
    present = np.zeros(span, dtype=bool)
    present[touched_ids - low] = True
    con.register("node_ids", pl.DataFrame({"id": np.flatnonzero(present) + low}).to_arrow())
    del present
    try:
        table = con.sql(
            f"""
            SELECT id, {key_halves_sql("person_key", "person_hi", "person_lo")}, clk
            FROM (SELECT id, person_key, clk FROM all_identities
                  WHERE id IN (SELECT id FROM node_ids)
                  UNION ALL
                  SELECT n.id, coalesce(n.old_person, n.record_key), si.clk
                  FROM new_ids n JOIN staging_ids si USING (row)
                  WHERE n.id IN (SELECT id FROM node_ids))
            """
        ).pl()
    finally:
        con.unregister("node_ids")
    node_of = np.empty(span, dtype=np.int64)
    node_of[table["id"].to_numpy() - low] = np.arange(table.height)
    node = node_of[touched_ids - low]
    block = touched["block"].to_numpy()
    del touched, touched_ids, node_of
    ids = table["id"].to_numpy()
    is_new = ids >= first_id
    left, right, compared, skipped = linkage.linked_pairs(
        node,
        block.astype(np.uint64, copy=False),
        is_new,
        table["clk"].to_numpy(),
        MAX_BLOCK,
        linkage.LINK_THRESHOLD,
    )
    del node, block
    if not left.size:
        return {"pairs": compared, "links": 0, "skipped_blocks": skipped}, _NO_MERGES
    # Persons numbered so that a stored one comes before one made only of new records
    # (then by person key): merged persons take the smallest number.
    person_hi, person_lo = table["person_hi"].to_numpy(), table["person_lo"].to_numpy()
    by_key = table.select(pl.arg_sort_by("person_hi", "person_lo")).to_series().to_numpy()
    del table
    # New records that are not a new version of a stored one.
    replaced = con.sql("SELECT id FROM new_ids WHERE old_person IS NOT NULL").pl()["id"]
    fresh = is_new & ~np.isin(ids, replaced.to_numpy().astype(np.int64))
    opens = (
        np.r_[True, np.diff(person_hi[by_key]) != 0] | np.r_[True, np.diff(person_lo[by_key]) != 0]
    )
    pid = np.empty(ids.size, dtype=np.int64)
    pid[by_key] = np.cumsum(opens) - 1  # persons in key order
    keys_hi, keys_lo = person_hi[by_key][opens], person_lo[by_key][opens]
    stored = np.zeros(keys_hi.size, dtype=bool)
    stored[pid[~fresh]] = True
    order = np.argsort(~stored, kind="stable")  # stored first, then by key
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    merged = linkage.merged_persons(order.size, rank[pid[left]], rank[pid[right]])
    changed = np.flatnonzero(merged != np.arange(order.size))
    old, new = order[changed], order[merged[changed]]
    merges = pl.DataFrame(
        {
            "old_hi": keys_hi[old],
            "old_lo": keys_lo[old],
            "new_hi": keys_hi[new],
            "new_lo": keys_lo[new],
        },
        schema=_NO_MERGES.schema,
    )
    return {"pairs": compared, "links": int(left.size), "skipped_blocks": skipped}, merges


_NO_MERGES = pl.DataFrame(schema={k: pl.UInt64 for k in ("old_hi", "old_lo", "new_hi", "new_lo")})


# The current registrations whose counting can depend on linking, with their person:
# those of a person with several records (person_key <> record_key on one of them),
# with a household or principal, or named as a principal. Every other registration is
# a person alone, counted as itself: leaving it out changes no decision below.
_CURRENT = """
CREATE OR REPLACE TEMP TABLE cur AS
WITH persons AS (
    SELECT person_key FROM {identities}
    WHERE person_key <> record_key OR household_key IS NOT NULL OR principal_key IS NOT NULL
    UNION
    SELECT coalesce(i.person_key, p.principal_key)
    FROM (SELECT DISTINCT principal_key FROM {identities} WHERE principal_key IS NOT NULL) p
    LEFT JOIN {identities} i ON i.record_key = p.principal_key),
keys AS (
    SELECT i.record_key, i.person_key, i.household_key, i.principal_key FROM {identities} i
    WHERE i.person_key IN (SELECT person_key FROM persons)
    UNION ALL
    SELECT p.person_key, p.person_key, NULL, NULL FROM persons p
    ANTI JOIN {identities} i ON i.record_key = p.person_key)
SELECT r.record_key, r.updated_at, r.family_members, r.nationality, r.cell,
       k.person_key, k.household_key, k.principal_key
FROM registrations r JOIN keys k USING (record_key)
WHERE r.valid_to IS NULL
"""
_COUNTED = """
WITH ranked AS (
    SELECT *, row_number() OVER (PARTITION BY person_key
                                 ORDER BY updated_at DESC NULLS LAST, record_key DESC) AS rk
    FROM cur),
reps AS (SELECT person_key, family_members FROM ranked WHERE rk = 1),
attrs AS (
    SELECT person_key, max(household_key) AS household_key, max(principal_key) AS principal_key
    FROM cur GROUP BY person_key),
households AS (
    SELECT a.household_key, a.person_key,
           row_number() OVER (PARTITION BY a.household_key
                              ORDER BY r.family_members DESC, a.person_key) AS n
    FROM attrs a JOIN reps r USING (person_key) WHERE a.household_key IS NOT NULL),
named AS (
    SELECT a.person_key AS companion, c.person_key AS principal
    FROM attrs a JOIN cur c ON c.record_key = a.principal_key
    WHERE c.person_key <> a.person_key
    UNION ALL
    SELECT m.person_key, h.person_key FROM households m
    JOIN households h ON h.household_key = m.household_key AND h.n = 1 WHERE m.n > 1),
one AS (SELECT companion, min(principal) AS principal FROM named GROUP BY companion),
numbered AS (
    SELECT *, row_number() OVER (PARTITION BY principal ORDER BY companion) AS n FROM one),
companions AS (
    SELECT o.companion FROM numbered o JOIN reps r ON r.person_key = o.principal
    WHERE o.n <= r.family_members AND o.principal NOT IN (SELECT companion FROM one))
SELECT record_key, rk > 1 AS duplicate,
       person_key IN (SELECT companion FROM companions) AS companion
FROM ranked WHERE rk > 1 OR person_key IN (SELECT companion FROM companions)
"""


def _recount(con: duckdb.DuckDBPyConnection, ingest_id: int, identities: str) -> dict:
    """Decide which current registrations count; version the change; count for the report."""
    records = con.execute("SELECT count(*) FROM registrations WHERE valid_to IS NULL").fetchall()[
        0
    ][0]
    if not _any_rows(con, identities):
        return {
            "linked": 0,
            "records": records,
            "persons": records,
            "companions": 0,
            "conflicts": dict.fromkeys(_CONFLICTS, 0),
        }
    _version_absorbed(con, ingest_id, identities)
    # This file's records in a person of several current records; the persons they are in.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE file_persons AS
        SELECT c.person_key, count(*) AS records FROM cur c
        WHERE c.person_key IN (SELECT c2.person_key FROM cur c2 JOIN staging USING (record_key))
        GROUP BY c.person_key HAVING count(*) > 1
        """
    )
    linked_of_file = con.execute(
        "SELECT count(*) FROM staging JOIN cur USING (record_key)"
        " WHERE person_key IN (SELECT person_key FROM file_persons)"
    ).fetchall()[0][0]
    duplicates, companions = con.execute(
        "SELECT count(*) FILTER (WHERE duplicate),"
        " count(*) FILTER (WHERE companion AND NOT duplicate) FROM absorbed_now"
    ).fetchall()[0]
    conflicts = _conflicts(con)
    for name in ("absorbed_now", "cur", "file_persons"):
        con.execute(f"DROP TABLE {name}")
    return {
        "linked": int(linked_of_file),
        "records": int(records),
        "persons": int(records - duplicates - companions),
        "companions": int(companions),
        "conflicts": dict(zip(_CONFLICTS, conflicts, strict=True)),
    }


def refresh_absorbed(con: duckdb.DuckDBPyConnection, version: int) -> None:
    """Decide again which registrations count, from store version ``version`` on.

    Called after a purge or an erasure: a companion whose principal was deleted, or a
    duplicate whose representative was, counts on its own again.
    """
    if _any_rows(con, "identities"):
        _version_absorbed(con, version, "identities")
        con.execute("DROP TABLE absorbed_now")
        con.execute("DROP TABLE cur")


def _any_rows(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1)").fetchall()[0][0]
    )


def _version_absorbed(con: duckdb.DuckDBPyConnection, version: int, identities: str) -> None:
    """Close the absorptions that no longer hold and open the new ones at ``version``.

    Leaves the temporary tables ``cur`` (the registrations linking can touch) and
    ``absorbed_now`` (this decision) for the caller's counts.
    """
    con.execute(_CURRENT.format(identities=identities))
    con.execute(f"CREATE OR REPLACE TEMP TABLE absorbed_now AS {_COUNTED}")
    con.execute(
        """
        UPDATE absorbed SET valid_to = ?
        WHERE valid_to IS NULL AND record_key NOT IN (SELECT record_key FROM absorbed_now)
        """,
        [version],
    )
    con.execute(
        """
        INSERT INTO absorbed
        SELECT record_key, ?, NULL FROM absorbed_now
        WHERE record_key NOT IN (SELECT record_key FROM absorbed WHERE valid_to IS NULL)
        """,
        [version],
    )


def _conflicts(con: duckdb.DuckDBPyConnection) -> tuple[int, ...]:
    """Return, per kind, the persons touched by this file whose current registrations disagree."""
    # Two or more distinct values: min and max differ (both skip nulls, as count DISTINCT
    # does, at a third of its cost).
    selects = ", ".join(f"count(*) FILTER (WHERE {column})" for column in _CONFLICTS.values())
    differ = ", ".join(f"min({c}) <> max({c}) AS {c}" for c in _CONFLICTS.values())
    return tuple(
        int(v)
        for v in con.execute(
            f"""
            SELECT {selects} FROM (
                SELECT person_key, {differ} FROM cur
                WHERE person_key IN (SELECT person_key FROM file_persons)
                GROUP BY person_key)
            """
        ).fetchall()[0]
    )


def report_lines(
    figures: dict, has_names: bool, has_companion_ids: bool, has_family_counts: bool
) -> list[str]:
    """Return the ingest report's linking lines.

    For the steward's terminal only: counts of the registry before any protection, like
    the rest of the ingest report; never written into a release or its metadata.
    """
    lines = (
        []
        if has_names
        else [
            "the file has no name column: its records are linked to no other registration "
            "(names with a birth date or document number link one person's registrations)"
        ]
    )
    document = min(linkage.LINK_THRESHOLD, linkage.LINK_THRESHOLD_SAME_DOCUMENT)
    lines += [
        f"{figures['linked']:,} of this file's new or updated records linked to another "
        f"registration; the store now holds {figures['records']:,} registrations of "
        f"{figures['persons']:,} persons (Dice ≥ {linkage.LINK_THRESHOLD:.2f}, "
        f"≥ {document:.2f} with the same document number; "
        f"{figures['pairs']:,} candidate pairs compared, {figures['links']:,} matched)"
    ]
    conflicts = figures["conflicts"]
    if any(conflicts.values()):
        lines.append(
            "conflicts among linked registrations (the most recently confirmed wins): "
            + ", ".join(f"{count:,} {kind}" for kind, count in conflicts.items() if count)
        )
    if figures["companions"]:
        lines.append(
            f"{figures['companions']:,} registrations counted inside their principal's "
            "family_members (companions), not again as cases"
        )
    if figures["skipped_blocks"]:
        lines.append(
            f"{figures['skipped_blocks']:,} blocks over {MAX_BLOCK:,} records not compared"
        )
    if has_family_counts and not has_companion_ids:
        lines.append(
            "companions: only a family_members count (no household id or principal's "
            "record id), so a family member also registered on their own cannot be "
            "recognised and counts twice"
        )
    return lines
