"""The reader: canonical columns, aliases, validation rules, bad files."""

from __future__ import annotations

import openpyxl
import polars as pl
import pytest

from geo.errors import InputError
from geo.io.registrations import iter_validated_batches, open_registration_file
from tests.factories import registration_row


def read_all(path, **kwargs):
    header = open_registration_file(path, **kwargs)
    batches = list(iter_validated_batches(header))
    accepted = pl.concat([b.accepted for b in batches])
    rejects = pl.concat([b.rejects for b in batches])
    rows_read = sum(b.rows_read for b in batches)
    return header, accepted, rejects, rows_read


def reasons_by_id(rejects: pl.DataFrame) -> dict[str, str]:
    return dict(zip(rejects["record_id"], rejects["reasons"], strict=True))


def test_aliases_are_mapped_and_identifiers_dropped(write_csv):
    rows = [
        {
            "ID": "a1",
            "Full Name": "Ann Example",
            "E-mail": "ann@example.org",
            "Passport No": "X123",
            "Citizenship": "ro",
            "lat": "42.8",
            "lng": "13.1",
            "Gender": "female",
            "Dependants": "2",
            "Notes": "free text",
        }
    ]
    header, accepted, rejects, rows_read = read_all(write_csv(rows))
    assert header.column_map["latitude"] == "lat" and header.column_map["longitude"] == "lng"
    assert header.column_map["family_members"] == "Dependants"
    assert set(header.dropped_columns) == {"Full Name", "E-mail", "Passport No", "Notes"}
    assert set(header.identifier_columns) == {"Full Name", "E-mail", "Passport No", "Notes"}
    assert accepted.columns == [
        "row",
        "source",
        "record_id",
        "nationality",
        "latitude",
        "longitude",
        "sex",
        "age_band",
        "family_members",
        "vulnerabilities",
        "consent",
        "updated_at",
        "valid_until",
    ]
    record = accepted.row(0, named=True)
    assert (record["nationality"], record["sex"], record["family_members"]) == ("ROU", "F", 2)
    assert rows_read == 1 and rejects.height == 0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ROU", "ROU"),
        ("ro", "ROU"),
        ("romania", "ROU"),
        ("UKRAINE", "UKR"),
        ("Côte d'Ivoire", "CIV"),
        ("cote d'ivoire", "CIV"),
        ("XXA", "XXA"),
        ("stateless", "XXA"),
        ("XXX", "XXX"),
        ("Syria", "SYR"),
        (" gb ", "GBR"),
    ],
)
def test_nationality_spellings(write_csv, given, expected):
    _, accepted, rejects, _ = read_all(write_csv([registration_row("a", nationality=given)]))
    assert rejects.height == 0
    assert accepted["nationality"][0] == expected


def test_each_rule_rejects_with_its_reason(write_csv):
    rows = [
        registration_row("ok"),
        registration_row("nat", nationality="Atlantis"),
        registration_row("lat", latitude="95", longitude="200"),
        registration_row("swap", latitude="130.5", longitude="42.8"),
        registration_row("zero", latitude="0", longitude="0"),
        registration_row("text", latitude="north"),
        registration_row("fam", family_members="three"),
        registration_row("big", family_members="250"),
        registration_row("neg", family_members="-1"),
        registration_row("frac", family_members="1.5"),
        registration_row("sex", sex="dunno"),
        registration_row("age", age="200"),
        registration_row("vul", vulnerabilities="disability;space_alien"),
        registration_row("con", consent="everyone"),
        registration_row("date", updated_at="last tuesday"),
        registration_row("", nationality="ROU"),
    ]
    _, accepted, rejects, rows_read = read_all(write_csv(rows))
    assert accepted["record_id"].to_list() == ["ok"]
    assert rows_read == len(rows) == accepted.height + rejects.height
    reasons = reasons_by_id(rejects)
    assert "unknown nationality" in reasons["nat"]
    assert "latitude out of range" in reasons["lat"] and "longitude out of range" in reasons["lat"]
    assert "looks swapped" in reasons["swap"]
    assert "0,0" in reasons["zero"]
    assert "latitude is not a number" in reasons["text"]
    assert "family_members is not a number" in reasons["fam"]
    assert "implausible" in reasons["big"]
    assert "whole number" in reasons["neg"] and "whole number" in reasons["frac"]
    assert "unrecognised sex" in reasons["sex"]
    assert "age out of range" in reasons["age"]
    assert "unknown vulnerability" in reasons["vul"]
    assert "unknown consent scope" in reasons["con"]
    assert "not a date" in reasons["date"]
    assert "missing record_id" in reasons[None]
    # Rows as a spreadsheet numbers them: header is row 1.
    assert rejects.filter(pl.col("record_id") == "nat")["row"][0] == 3


def test_swapped_coordinates_inside_range_are_caught_against_the_file(write_csv):
    rows = [registration_row(f"r{i}") for i in range(30)]
    rows.append(registration_row("swapped", latitude="13.09", longitude="42.79"))
    _, accepted, rejects, _ = read_all(write_csv(rows))
    assert reasons_by_id(rejects) == {
        "swapped": "latitude and longitude look swapped (far from the file's other records)"
    }
    assert accepted.height == 30


def test_optional_fields_default_and_bands(write_csv):
    rows = [
        registration_row(
            "blank", sex="", age="", family_members="", vulnerabilities="", consent=""
        ),
        registration_row("child", age="3"),
        registration_row("teen", age="17"),
        registration_row("old", age="60"),
        {**registration_row("born"), "age": "", "birth_year": "1950"},
        registration_row("multi", vulnerabilities="Disability; medical", consent="humanitarian"),
    ]
    _, accepted, rejects, _ = read_all(write_csv(rows))
    assert rejects.height == 0
    by_id = {r["record_id"]: r for r in accepted.to_dicts()}
    assert (by_id["blank"]["sex"], by_id["blank"]["age_band"]) == ("unknown", "unknown")
    assert (by_id["blank"]["family_members"], by_id["blank"]["consent"]) == (0, 0)
    assert [by_id[i]["age_band"] for i in ("child", "teen", "old", "born")] == [
        "0-4",
        "5-17",
        "60+",
        "60+",
    ]
    assert by_id["multi"]["vulnerabilities"] == 0b10001  # disability | medical
    assert by_id["multi"]["consent"] == 0b1000  # humanitarian


def test_utf8_bom_semicolon_and_latin1(tmp_path):
    from tests.factories import write_rows

    rows = [registration_row("a", nationality="Côte d'Ivoire"), registration_row("b")]
    bom = write_rows(tmp_path / "bom.csv", rows, delimiter=";", encoding="utf-8-sig")
    latin = write_rows(tmp_path / "latin.csv", rows, encoding="latin-1")
    for path in (bom, latin):
        header, accepted, rejects, _ = read_all(path)
        assert rejects.height == 0, rejects
        assert accepted["nationality"].to_list() == ["CIV", "ROU"]
    assert read_all(latin)[0].encoding == "latin-1"


def test_parquet_with_typed_columns(tmp_path):
    path = tmp_path / "records.parquet"
    pl.DataFrame(
        {
            "record_id": ["a", "b"],
            "nationality": ["ALB", "ma"],
            "latitude": [42.8, 42.9],
            "longitude": [13.1, 13.0],
            "family_members": [0, 3],
        }
    ).write_parquet(path)
    _, accepted, rejects, _ = read_all(path)
    assert accepted["nationality"].to_list() == ["ALB", "MAR"]
    assert accepted["family_members"].to_list() == [0, 3]


def test_truncated_last_row_is_rejected_with_its_row(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_text(
        "record_id,nationality,latitude,longitude,notes\n"
        'a,ROU,42.8,13.1,"two\nlines"\nb,ROU,42.8,13.1,x\nc,ROU,42.8'
    )
    _, accepted, rejects, rows_read = read_all(path)
    assert accepted["record_id"].to_list() == ["a", "b"]
    assert rows_read == 3
    assert rejects.row(0, named=True)["row"] == 4
    assert "malformed row" in rejects["reasons"][0]


def test_hostile_strings_never_reach_the_report(write_csv):
    hostile = '=HYPERLINK("http://x")\x1b[31m' + "A" * 500
    rows = [registration_row("h", nationality=hostile), registration_row("ok")]
    _, accepted, rejects, _ = read_all(write_csv(rows))
    assert accepted.height == 1
    assert "HYPERLINK" not in rejects["reasons"][0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02PKbinary\x00" * 10, "binary"),
        (b"\n\n", "first line is empty"),
        (b"name,phone\nAnn,123\n", "missing required column(s) record_id, nationality, latitude"),
        (b"\xd0\xcf\x11\xe0old excel", "old binary Excel"),
    ],
)
def test_bad_files_get_a_clear_message(tmp_path, content, message):
    path = tmp_path / "records.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match="records.csv") as error:
        open_registration_file(path)
    assert message in str(error.value)


def test_missing_file():
    with pytest.raises(InputError, match="no such file"):
        open_registration_file("/nonexistent/records.csv")


def test_duplicate_meaning_columns_are_refused(write_csv):
    with pytest.raises(InputError, match="both mean 'latitude'"):
        open_registration_file(write_csv([{**registration_row("a"), "lat": "42.8"}]))


def _workbook(path, sheets: dict[str, list[list]]):
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def test_xlsx_with_metadata_lines_and_a_notes_sheet(tmp_path):
    table = [
        ["SYNTHETIC export", None],
        [None, None],
        ["record_id", "nationality", "lat", "lon", "dependants"],
        ["x1", "Albania", 42.8, 13.1, 2],
        ["x2", "al", 42.81, 13.11, None],
    ]
    path = _workbook(tmp_path / "book.xlsx", {"Notes": [["about this file"]], "Data": table})
    header, accepted, rejects, rows_read = read_all(path)
    assert header.sheet == "Data"
    assert accepted["nationality"].to_list() == ["ALB", "ALB"]
    assert accepted["row"].to_list() == [4, 5]
    assert accepted["family_members"].to_list() == [2, 0]


def test_xlsx_with_several_registration_sheets_needs_a_choice(tmp_path):
    table = [["record_id", "nationality", "latitude", "longitude"], ["a", "ROU", 42.8, 13.1]]
    path = _workbook(tmp_path / "two.xlsx", {"2024": table, "2025": table})
    with pytest.raises(InputError, match="several sheets .*'2024', '2025'.*--sheet"):
        open_registration_file(path)
    header, accepted, _, _ = read_all(path, sheet="2025")
    assert header.sheet == "2025" and accepted.height == 1
    with pytest.raises(InputError, match="no sheet named '2026'"):
        open_registration_file(path, sheet="2026")


def test_a_malformed_row_in_the_middle_keeps_later_row_numbers(tmp_path):
    path = tmp_path / "middle.csv"
    lines = ["record_id,nationality,latitude,longitude"]
    lines += [f"r{i},ROU,42.8,13.1" for i in range(5)]
    lines.append("broken,ROU,42.8")
    lines += [f"s{i},ALB,42.8,13.1" for i in range(3)]
    path.write_text("\n".join(lines) + "\n")
    _, accepted, rejects, rows_read = read_all(path)
    assert rows_read == 9 and accepted.height == 8
    assert rejects["row"].to_list() == [7]
    assert dict(zip(accepted["record_id"], accepted["row"], strict=True))["s0"] == 8


def test_a_csv_of_many_blocks_is_read_in_batches_with_exact_row_numbers(tmp_path):
    """Blocks of 2 MiB are gathered into batches; rows keep their numbers across them."""
    from geo.io.registrations import BATCH_ROWS

    path = tmp_path / "long.csv"
    lines = ["record_id,nationality,latitude,longitude,notes"]
    filler = "x" * 40  # ~70 bytes a row: 150,000 rows span five blocks
    lines += [f"r{i},ROU,42.8,13.1,{filler}" for i in range(90_000)]
    lines.append("broken,ROU,42.8")
    lines += [f"s{i},ALB,42.8,13.1,{filler}" for i in range(60_000)]
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 4 * (2 << 20)
    header = open_registration_file(path)
    batches = list(iter_validated_batches(header))
    # batches of BATCH_ROWS and one block more at most (~34k rows), not the whole file
    assert len(batches) >= 2 and max(b.rows_read for b in batches) <= BATCH_ROWS + 40_000
    accepted = pl.concat([b.accepted for b in batches])
    rejects = pl.concat([b.rejects for b in batches])
    assert sum(b.rows_read for b in batches) == 150_001 and accepted.height == 150_000
    assert rejects["row"].to_list() == [90_002]
    numbers = dict(zip(accepted["record_id"], accepted["row"], strict=True))
    assert numbers["r0"] == 2 and numbers["r89999"] == 90_001
    assert numbers["s0"] == 90_003 and numbers["s59999"] == 150_002
