"""Linking one person's registrations across sources and days: one case per person.

Registries are built in code: a consular file and a recruitment-agency file that share
people with identity noise (typos, swapped name order, missing birth day, Cyrillic),
and the planted registry of :mod:`demo.linkage` for precision and recall.
"""

from __future__ import annotations

import polars as pl
import pytest

from geo import pipeline
from geo.io.store import connect
from geo.io.store_reads import audience_records, registration_records
from tests.factories import registration_row

# (name in the consular file, the same person in the agency file, birth date there)
SHARED = [
    ("Oksana Shevchenko", "Шевченко Оксана", "1990-05-17"),  # Cyrillic, swapped order
    ("Mohamed Benali", "Benali Mohammed", "1984-02-03"),  # swapped, doubled letter
    ("Ioana Popescu", "Ioana Popesku", "1979-11"),  # transliteration, missing day
    ("Arjun Raghunathan", "Arjun Ragunathan", "2001-07-30"),  # typo
]
ONLY_CONSULAR = [("Elira Hoxha", "1995-01-20"), ("Marco Dimitrov", "1966-09-09")]
ONLY_AGENCY = [("Juan Pérez", "1988-12-01"), ("Fatima Zahra", "1992-04-14")]
RAW_VALUES = [
    *(n for pair in SHARED for n in pair[:2]),
    *(n for n, _ in ONLY_CONSULAR + ONLY_AGENCY),
]


def consular_rows() -> list[dict]:
    """The consular file: every person with a full birth date and a passport number."""
    rows = [
        registration_row(
            f"CR-{i}",
            full_name=name,
            birth_date=f"{dob[:7]}-15" if len(dob) == 7 else dob,
            passport_no=f"PX{i:07d}",
            source="consular",
            updated_at="2025-01-01",
        )
        for i, (name, _, dob) in enumerate(SHARED)
    ]
    rows += [
        registration_row(
            f"CR-{10 + i}",
            full_name=name,
            birth_date=dob,
            passport_no=f"PX{10 + i:07d}",
            source="consular",
        )
        for i, (name, dob) in enumerate(ONLY_CONSULAR)
    ]
    return rows


def agency_rows(updated_at: str = "2025-03-01", **changes) -> list[dict]:
    """The agency file: the shared people with noise, no passport, a later update."""
    rows = [
        registration_row(
            f"RA-{i}",
            full_name=other,
            birth_date=dob,
            passport_no="",
            source="agency",
            updated_at=updated_at,
            **changes,
        )
        for i, (_, other, dob) in enumerate(SHARED)
    ]
    rows += [
        registration_row(f"RA-{10 + i}", full_name=name, birth_date=dob, source="agency")
        for i, (name, dob) in enumerate(ONLY_AGENCY)
    ]
    return rows


def cases(store, as_of=None) -> int:
    con = connect(store, read_only=True)
    try:
        return int(audience_records(con, "aggregate", as_of=as_of)["cases"].sum())
    finally:
        con.close()


TRUE_PERSONS = len(SHARED) + len(ONLY_CONSULAR) + len(ONLY_AGENCY)


def test_duplicates_across_two_sources_count_once(tmp_path, write_csv):
    store = tmp_path / "s.duckdb"
    files = [write_csv(consular_rows(), "consular.csv"), write_csv(agency_rows(), "agency.csv")]
    reports = pipeline.ingest_files(store, files)
    assert cases(store) == TRUE_PERSONS  # 12 records, 8 persons
    line = reports[1].linking[0]
    assert line.startswith(f"{len(SHARED)} of this file's new or updated records linked")
    assert f"12 registrations of {TRUE_PERSONS} persons (Dice ≥ 0.85" in line
    assert reports[0].linking[0].startswith("0 of this file's")


def test_the_release_counts_persons(tmp_path, write_csv):
    store = tmp_path / "s.duckdb"
    files = [write_csv(consular_rows(), "consular.csv"), write_csv(agency_rows(), "agency.csv")]
    pipeline.ingest_files(store, files)
    con = connect(store, read_only=True)
    try:
        # The audit reads the same records the release was made from.
        assert registration_records(con).height == TRUE_PERSONS
    finally:
        con.close()


def test_reingesting_the_same_files_links_nothing_new(tmp_path, write_csv):
    store = tmp_path / "s.duckdb"
    files = [write_csv(consular_rows(), "consular.csv"), write_csv(agency_rows(), "agency.csv")]
    pipeline.ingest_files(store, files)
    again = pipeline.ingest_files(store, files)
    assert all(report.already_ingested for report in again)
    # The same records exported again (another file, another hash): nothing changes.
    shuffled = write_csv(list(reversed(agency_rows())), "agency_again.csv")
    report = pipeline.ingest_files(store, [shuffled])[0]
    assert report.unchanged == len(agency_rows())
    assert report.linking[0].startswith("0 of this file's")
    assert cases(store) == TRUE_PERSONS


def test_a_later_file_linking_to_an_earlier_day_updates_rather_than_adds(tmp_path, write_csv):
    store = tmp_path / "s.duckdb"
    pipeline.ingest_files(store, [write_csv(consular_rows(), "day1.csv")])
    day_one = len(consular_rows())
    assert cases(store) == day_one
    # Day 2: the agency registers the shared people again, elsewhere, more recently.
    moved = agency_rows(latitude="43.11", longitude="12.39")[: len(SHARED)]
    report = pipeline.ingest_files(store, [write_csv(moved, "day2.csv")])[0]
    assert report.inserted == len(SHARED)
    assert cases(store) == day_one  # updated, not added
    con = connect(store, read_only=True)
    try:
        now = audience_records(con, "aggregate")
        then = audience_records(con, "aggregate", as_of=1)
    finally:
        con.close()
    # The most recently confirmed registration wins: the shared people are in their new
    # place now; store version 1 still rebuilds as it was.
    assert now["cell"].n_unique() == 2 and then["cell"].n_unique() == 1
    assert then["cases"].sum() == day_one


def test_an_older_registration_does_not_win(tmp_path, write_csv):
    store = tmp_path / "s.duckdb"
    pipeline.ingest_files(store, [write_csv(consular_rows(), "day1.csv")])
    stale = agency_rows(updated_at="2024-01-01", latitude="43.11", longitude="12.39")
    pipeline.ingest_files(store, [write_csv(stale[: len(SHARED)], "day2.csv")])
    con = connect(store, read_only=True)
    try:
        assert audience_records(con, "aggregate")["cell"].n_unique() == 1
    finally:
        con.close()


def test_conflicts_are_counted_by_kind(tmp_path, write_csv):
    store = tmp_path / "s.duckdb"
    changed = agency_rows(latitude="43.11", longitude="12.39", family_members="3")
    changed[0]["nationality"] = "UKR"  # the consular file says ROU
    changed[0]["passport_no"] = "PX0000000"  # same passport: linked across nationalities
    reports = pipeline.ingest_files(
        store, [write_csv(consular_rows(), "c.csv"), write_csv(changed, "a.csv")]
    )
    conflicts = next(line for line in reports[1].linking if line.startswith("conflicts"))
    assert "4 place" in conflicts and "1 nationality" in conflicts and "4 family size" in conflicts
    con = connect(store, read_only=True)
    try:
        records = audience_records(con, "aggregate")
    finally:
        con.close()
    assert records.filter(pl.col("nationality") == "UKR")["cases"].sum() == 1
    assert records["cases"].sum() == TRUE_PERSONS
    # persons: the agency's family size won for the four shared people (1 + 3 each)
    assert records["persons"].sum() == 4 * 4 + 4 * 2


def test_no_identifier_reaches_the_store_folder(tmp_path, write_csv):
    store = tmp_path / "store" / "s.duckdb"
    store.parent.mkdir()
    rows = consular_rows() + [registration_row("CR-bad", full_name="Zed Rejected", latitude="x")]
    files = [write_csv(rows, "consular.csv"), write_csv(agency_rows(), "agency.csv")]
    pipeline.ingest_files(store, files, rejects_dir=store.parent)
    raw = [v for v in RAW_VALUES] + ["Zed Rejected", "PX0000001", "1990-05-17", "17.05.1990"]
    raw += [part for name in RAW_VALUES for part in name.split()]
    folded = {v.lower() for v in raw} | {v.upper() for v in raw} | set(raw)
    found = {}
    for path in store.parent.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits = [v for v in folded if len(v) >= 4 and v.encode() in data]
            if hits:
                found[path.name] = hits
    assert (store.parent / "consular.csv.rejects.csv").exists()
    assert not found


def test_a_companion_registered_on_their_own_is_not_counted_twice(tmp_path, write_csv):
    store = tmp_path / "s.duckdb"
    principal = registration_row("H-1", full_name="Amina Diallo", birth_date="1980-01-01")
    principal["family_members"] = "2"
    principal["principal_record_id"] = ""
    child = registration_row(
        "H-2", full_name="Awa Diallo", birth_date="2010-06-06", family_members="0"
    )
    child["principal_record_id"] = "H-1"
    other = registration_row(
        "H-3", full_name="Ali Keita", birth_date="1975-03-03", family_members="0"
    )
    other["principal_record_id"] = "H-1"  # a third companion: beyond family_members=2 ...
    extra = registration_row(
        "H-4", full_name="Sira Keita", birth_date="1977-03-03", family_members="0"
    )
    extra["principal_record_id"] = "H-1"  # ... and a fourth: counted on their own
    report = pipeline.ingest_files(store, [write_csv([principal, child, other, extra])])[0]
    con = connect(store, read_only=True)
    try:
        records = audience_records(con, "aggregate")
    finally:
        con.close()
    assert records["cases"].sum() == 2  # the principal's case and one companion beyond it
    assert records["persons"].sum() == 3 + 1
    assert any("2 registrations counted inside their principal's" in x for x in report.linking)


def test_a_household_id_links_companions(tmp_path, write_csv):
    store = tmp_path / "s.duckdb"
    head = registration_row("F-1", family_members="1", household_id="HH-9")
    member = registration_row("F-2", family_members="0", household_id="HH-9")
    alone = registration_row("F-3", family_members="0", household_id="HH-8")
    pipeline.ingest_files(store, [write_csv([head, member, alone])])
    assert cases(store) == 2


def test_a_family_count_alone_is_said_to_be_ambiguous(tmp_path, write_csv):
    report = pipeline.ingest_files(tmp_path / "s.duckdb", [write_csv(consular_rows())])[0]
    assert any("only a family_members count" in line for line in report.linking)


def test_a_file_without_names_is_not_linked_and_says_so(tmp_path, write_csv):
    rows = [
        {k: v for k, v in registration_row(f"N-{i}").items() if k != "full_name"} for i in (1, 2)
    ]
    report = pipeline.ingest_files(tmp_path / "s.duckdb", [write_csv(rows)])[0]
    assert report.linking[0].startswith("the file has no name column")
    assert cases(tmp_path / "s.duckdb") == 2


@pytest.mark.parametrize("threshold", [0.85])
def test_precision_and_recall_on_planted_duplicates(tmp_path, threshold):
    from demo.linkage import two_sources

    consular, agency = two_sources(3_000, seed=11)
    files = []
    for frame in (consular, agency):
        path = tmp_path / f"{frame['source'][0]}.parquet"
        frame.drop("person").write_parquet(path)
        files.append(path)
    store = tmp_path / "s.duckdb"
    pipeline.ingest_files(store, files)
    true_persons = pl.concat([consular, agency])["person"].n_unique()
    shared = consular.height + agency.height - true_persons
    counted = cases(store)
    # Every missed link adds a person, every false one removes one: bounded both ways.
    assert true_persons <= counted <= true_persons + 0.02 * shared


def test_erasing_one_record_erases_the_linked_person_and_its_encodings(tmp_path, write_csv):
    """Right to erasure is the person's: the agency record linked to CR-0 goes too."""
    store = tmp_path / "s.duckdb"
    files = [write_csv(consular_rows(), "consular.csv"), write_csv(agency_rows(), "agency.csv")]
    pipeline.ingest_files(store, files)
    assert pipeline.erase_registration(store, "consular", "CR-0")["records"] == 2
    assert cases(store) == TRUE_PERSONS - 1
    con = connect(store, read_only=True)
    try:
        stored = {
            table: con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            for table in ("registrations", "identities")
        }
        # The erased records' block keys went with them (they meet identities on an id).
        blocks, orphans = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE id NOT IN (SELECT id FROM identities))"
            " FROM identity_blocks"
        ).fetchall()[0]
    finally:
        con.close()
    assert stored == {"registrations": 10, "identities": 10}
    assert blocks > 0 and orphans == 0


def test_a_companion_counts_on_its_own_once_its_principal_is_purged(tmp_path, write_csv):
    """Purging the principal must not leave its fresh companion absorbed and uncounted."""
    store = tmp_path / "s.duckdb"
    principal = registration_row(
        "H-1", full_name="Amina Diallo", birth_date="1980-01-01", updated_at="2020-01-01"
    )
    principal["family_members"] = "1"
    principal["principal_record_id"] = ""
    child = registration_row(
        "H-2",
        full_name="Awa Diallo",
        birth_date="2010-06-06",
        family_members="0",
        updated_at="2026-06-01",
    )
    child["principal_record_id"] = "H-1"
    pipeline.ingest_files(store, [write_csv([principal, child])])
    assert cases(store) == 1  # the child is inside the principal's family
    pipeline.purge_store(store, 365, "2026-11-30")
    assert cases(store) == 1  # the principal is gone; the child now counts on its own
    con = connect(store, read_only=True)
    try:
        assert audience_records(con, "aggregate")["persons"].sum() == 1
    finally:
        con.close()


# Who counts, decided over every current registration (the store's rule before the
# recount was limited to the registrations linking can touch): the reference.
FULL_RECOUNT = """
WITH cur AS (
    SELECT r.record_key, r.updated_at, r.family_members,
           coalesce(i.person_key, r.record_key) AS person_key, i.household_key, i.principal_key
    FROM registrations r LEFT JOIN identities i USING (record_key)
    WHERE r.valid_to IS NULL),
ranked AS (
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
SELECT record_key FROM ranked WHERE rk > 1 OR person_key IN (SELECT companion FROM companions)
"""


def test_the_recount_of_linked_registrations_equals_a_recount_of_all(tmp_path, write_csv):
    store = tmp_path / "s.duckdb"
    # A principal in a file without names (no identity row), companions naming it from
    # a file with names; a household; people in two sources; a later day's update.
    principal = registration_row("P-1", family_members="2", source="agency")
    del principal["full_name"]
    companions = [
        registration_row(
            f"P-{i}",
            full_name=name,
            birth_date="2012-01-0" + str(i),
            family_members="0",
            source="agency",
            principal_record_id="P-1",
        )
        for i, name in ((2, "Awa Diallo"), (3, "Ali Keita"), (4, "Sira Keita"))
    ]
    household = [
        registration_row("F-1", family_members="1", household_id="HH-9", source="agency"),
        registration_row("F-2", family_members="0", household_id="HH-9", source="agency"),
    ]
    files = [
        write_csv([principal], "principal.csv"),
        write_csv(consular_rows(), "consular.csv"),
        write_csv(agency_rows() + companions + household, "agency.csv"),
        write_csv(agency_rows(updated_at="2025-06-01", family_members="3"), "later.csv"),
    ]
    pipeline.ingest_files(store, files)
    con = connect(store, read_only=True)
    try:
        reference = {row[0] for row in con.execute(FULL_RECOUNT).fetchall()}
        stored = {
            row[0]
            for row in con.execute(
                "SELECT record_key FROM absorbed WHERE valid_to IS NULL"
            ).fetchall()
        }
    finally:
        con.close()
    # Four second registrations of shared persons, two companions inside P-1's family of
    # two (the third counts on its own), one household member.
    assert len(reference) == len(SHARED) + 2 + 1
    assert stored == reference


def person_keys(store) -> list[int]:
    """Return the person key of each stored identity."""
    con = connect(store, read_only=True)
    try:
        return [row[0] for row in con.execute("SELECT person_key FROM identities").fetchall()]
    finally:
        con.close()


@pytest.mark.parametrize("one_ingest", [True, False])
def test_a_later_file_joining_two_persons_of_an_earlier_one_makes_one(
    tmp_path, write_csv, one_ingest
):
    # Two registrations of one person that do not link on their own (a longer name,
    # another passport); a later one links to both (the passport of the first, the name
    # of the second): one person, whether the files come in one ingest or two.
    first = [
        registration_row(
            "A-1",
            full_name="Anna Maria Petrova Ivanovna",
            birth_date="1990-01-02",
            passport_no="P1111111",
        ),
        registration_row(
            "A-2", full_name="Petrova Anna", birth_date="1990-01-02", passport_no="P2222222"
        ),
    ]
    later = [
        registration_row(
            "B-1",
            full_name="Anna Petrova",
            birth_date="1990-01-02",
            passport_no="P1111111",
            source="agency",
            updated_at="2025-02-01",
        )
    ]
    store = tmp_path / "s.duckdb"
    files = [write_csv(first, "first.csv"), write_csv(later, "later.csv")]
    if one_ingest:
        reports = pipeline.ingest_files(store, files)
    else:
        reports = [pipeline.ingest_files(store, [path])[0] for path in files]
    assert reports[0].linking[0].startswith("0 of this file's")
    assert "3 registrations of 1 persons" in reports[1].linking[0]
    assert cases(store) == 1
    assert len(set(person_keys(store))) == 1
