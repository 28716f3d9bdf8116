"""Fuzzing the readers: a generated hostile corpus and hypothesis properties, bounded.

Every input must end in a clean result or an InputError of one line (the CLI's exit 2),
never another exception. Both run in a subprocess under RLIMIT_AS and RLIMIT_CPU
(``tests.hostile.run_bounded``), so a reader that regresses into reading a bomb whole
fails the test instead of hanging the suite. The properties are the ``fuzz_*`` functions
below; each test runs one family of them in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import random
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo.errors import InputError
from tests import hostile
from tests.factories import HEADER, registration_row, write_rows
from tests.hostile_corpus import PAYLOADS, build_corpus, check_accepted, write_xlsx

# --------------------------------------------------------------------------- the corpus


@pytest.mark.slow
def test_hostile_corpus_ends_in_a_result_or_a_one_line_refusal(tmp_path):
    cases = build_corpus(tmp_path / "corpus")
    outcomes: dict[int, dict] = {}
    for reader in dict.fromkeys(case["reader"] for case in cases):
        # one fresh worker per reader: address space does not pile up across all cases
        indices = [i for i, case in enumerate(cases) if case["reader"] == reader]
        listing = tmp_path / "cases.json"
        listing.write_text(json.dumps([cases[i] for i in indices]))
        result = hostile.run_bounded(
            ["tests/hostile_corpus.py", str(listing)], memory_mb=3072, cpu_s=300
        )
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        done = {indices[line["case"]]: line for line in lines if "case" in line}
        if len(done) < len(indices):
            stuck = cases[indices[len(done)]]
            died = f"the worker died ({result.returncode}) on {stuck}"
            pytest.fail(f"{died}: {result.stderr[-1500:]}")
        outcomes.update(done)
    table: dict[str, Counter] = {}
    for index, case in enumerate(cases):
        table.setdefault(case["category"], Counter())[outcomes[index]["outcome"]] += 1
    print("\ncategory | tried | refused (one line) | read cleanly | crash | worker peak RSS MB")
    for category, counts in table.items():
        peak = max(o["VmHWM"] for i, o in outcomes.items() if cases[i]["category"] == category)
        print(
            f"{category} | {counts.total()} | {counts['refused']} | {counts['ok']} | "
            f"{counts['crash']} | {peak}"
        )
    crashes = [
        (cases[i]["path"], o["detail"]) for i, o in outcomes.items() if o["outcome"] == "crash"
    ]
    assert not crashes, crashes
    for outcome in outcomes.values():
        if outcome["outcome"] == "refused":
            assert "\n" not in outcome["detail"], outcome
    bombs = [outcomes[i] for i, c in enumerate(cases) if c["category"] == "bombs"]
    assert all(o["outcome"] == "refused" for o in bombs), bombs


# --------------------------------------------------------------------------- the properties

# A deeper, random search: FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py -k hypothesis
DEEP = os.environ.get("FUZZ_EXAMPLES")
SETTINGS = settings(
    max_examples=int(DEEP or 30),
    deadline=None,
    database=None,
    derandomize=not DEEP,
    suppress_health_check=list(HealthCheck),
)
CELL = st.one_of(
    st.text(max_size=30),
    st.sampled_from(PAYLOADS),
    st.sampled_from(["NaN", "inf", "-1e308", "1e400", "", " ", "0", "42.79", "13.09", "ROU"]),
    st.text(alphabet="\x00\x01\t\n\r\"';,=+-@<>&", max_size=10),
)


def _one_line(exc: InputError, name: str) -> None:
    message = str(exc)
    assert "\n" not in message and message.strip(), message
    assert name in message or "CRISIS_EXPOSURE" in message, message


def _read_registrations(path: Path) -> None:
    from geo.io.registrations import iter_validated_batches, open_registration_file

    try:
        batches = list(iter_validated_batches(open_registration_file(path)))
    except InputError as exc:
        _one_line(exc, path.name)
        return
    read = sum(b.rows_read for b in batches)
    assert sum(b.accepted.height + b.rejects.height for b in batches) == read
    for batch in batches:
        check_accepted(batch.accepted)


def _mutate(data: bytes, seed: int, how: str) -> bytes:
    rng = random.Random(seed)
    if how == "truncate":
        return data[: rng.randrange(1, max(len(data), 2))]
    if how == "flip":
        out = bytearray(data)
        for _ in range(rng.randrange(1, 30)):
            out[rng.randrange(len(out))] = rng.randrange(256)
        return bytes(out)
    if how == "insert":
        at = rng.randrange(len(data) + 1)
        return data[:at] + rng.randbytes(rng.randrange(1, 200)) + data[at:]
    return data


MUTATION = st.sampled_from(["none", "truncate", "flip", "insert"])


@SETTINGS
@given(
    rows=st.lists(st.fixed_dictionaries({name: CELL for name in HEADER}), min_size=1, max_size=12),
    extra=st.lists(st.text(max_size=12), max_size=4),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]),
    delimiter=st.sampled_from([",", ";", "\t"]),
    mutation=MUTATION,
    seed=st.integers(0, 2**16),
)
def fuzz_registration_csv(tmp, rows, extra, encoding, delimiter, mutation, seed):
    path = tmp / "fuzz.csv"
    rows = [{**row, **{f"x_{name}": "v" for name in extra}} for row in rows]
    try:
        write_rows(path, rows, delimiter=delimiter, encoding=encoding)
    except UnicodeEncodeError:
        write_rows(path, [registration_row("a")], delimiter=delimiter)
    path.write_bytes(_mutate(path.read_bytes(), seed, mutation))
    _read_registrations(path)


@SETTINGS
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                name: st.one_of(
                    CELL.map(lambda v: v.replace("\x00", "")),
                    st.floats(allow_nan=False),
                    st.integers(-(2**40), 2**40),
                )
                for name in HEADER
            }
        ),
        min_size=1,
        max_size=8,
    ),
    fmt=st.sampled_from(["xlsx", "parquet"]),
    mutation=MUTATION,
    seed=st.integers(0, 2**16),
)
def fuzz_registration_binary(tmp, rows, fmt, mutation, seed):
    import polars as pl

    path = tmp / f"fuzz.{fmt}"
    try:
        if fmt == "xlsx":
            write_xlsx(path, rows)
        else:
            pl.DataFrame([{k: str(v) for k, v in row.items()} for row in rows]).write_parquet(path)
    except Exception:  # noqa: BLE001 - a value the writer refuses is not a reader case
        return
    path.write_bytes(_mutate(path.read_bytes(), seed, mutation))
    _read_registrations(path)


COORDINATE = st.one_of(
    st.floats(-200, 200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 180.0, -180.0, 90.0, 0.0]),
)
RING = st.lists(st.tuples(COORDINATE, COORDINATE), min_size=0, max_size=12)
JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def _read_footprint(path: Path, name: str | None = None, class_field: str | None = None) -> None:
    from geo.io.footprints import read_footprint

    try:
        footprint = read_footprint(path, name=name, class_field=class_field)
    except InputError as exc:
        _one_line(exc, name or path.name)
        return
    geoms = footprint.classes.geometry
    assert len(geoms) and geoms.is_valid.all() and not geoms.is_empty.any()
    assert all(abs(b) <= 360 for b in footprint.classes.total_bounds)


@SETTINGS
@given(
    rings=st.lists(st.tuples(RING, st.one_of(CELL, JSON_VALUE)), min_size=1, max_size=4),
    junk=JSON_VALUE,
    fmt=st.sampled_from(["geojson", "kml", "kmz", "zip", "contours"]),
    mutation=MUTATION,
    seed=st.integers(0, 2**16),
)
def fuzz_footprint(tmp, rings, junk, fmt, mutation, seed):
    features = [
        {
            "type": "Feature",
            "properties": {"zone": label, "value": label, "units": "mmi", "junk": junk},
            "geometry": {
                "type": "LineString" if fmt == "contours" else "Polygon",
                "coordinates": [list(p) for p in ring] if fmt == "contours" else [list(ring)],
            },
        }
        for ring, label in rings
    ]
    geojson = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    placemarks = "".join(
        f"<Placemark><name>{str(label)[:40]}</name><Polygon><outerBoundaryIs><LinearRing>"
        f"<coordinates>{' '.join(f'{x},{y}' for x, y in ring)}</coordinates></LinearRing>"
        "</outerBoundaryIs></Polygon></Placemark>"
        for ring, label in rings
    )
    kml = (
        '<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2">'
        f"<Document>{placemarks}</Document></kml>"
    ).encode()
    name = {"geojson": "z.geojson", "kml": "z.kml", "kmz": "z.kmz", "zip": "z.zip"}.get(
        fmt, "cont_mmi.json"
    )
    path = tmp / name
    if fmt in ("kmz", "zip"):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(
                "doc.kml" if fmt == "kmz" else "z.geojson", kml if fmt == "kmz" else geojson
            )
    else:
        path.write_bytes(kml if fmt == "kml" else geojson)
    path.write_bytes(_mutate(path.read_bytes(), seed, mutation))
    _read_footprint(path, class_field="zone" if seed % 2 and fmt in ("geojson", "zip") else None)


@SETTINGS
@given(
    events=st.lists(st.tuples(CELL, CELL, CELL, CELL), min_size=1, max_size=10),
    mutation=MUTATION,
    seed=st.integers(0, 2**16),
)
def fuzz_acled(tmp, events, mutation, seed):
    rows = [
        {"event_date": d, "event_type": t, "latitude": la, "longitude": lo, "notes": "n"}
        for d, t, la, lo in events
    ]
    path = write_rows(tmp / "acled.csv", rows)
    path.write_bytes(_mutate(path.read_bytes(), seed, mutation))
    _read_footprint(path)


@SETTINGS
@given(
    rings=st.lists(st.tuples(RING, CELL), min_size=1, max_size=4),
    mutation=MUTATION,
    seed=st.integers(0, 2**16),
)
def fuzz_boundaries(tmp, rings, mutation, seed):
    from geo.io.boundaries import read_boundaries

    features = [
        {
            "type": "Feature",
            "properties": {"name": label},
            "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring]]},
        }
        for ring, label in rings
    ]
    path = tmp / "areas.geojson"
    path.write_bytes(json.dumps({"type": "FeatureCollection", "features": features}).encode())
    path.write_bytes(_mutate(path.read_bytes(), seed, mutation))
    try:
        areas = read_boundaries(path)
    except InputError as exc:
        _one_line(exc, path.name)
        return
    assert len(areas) and areas.geometry.notna().all()


FAMILIES = {
    "registrations": ("fuzz_registration_csv", "fuzz_registration_binary"),
    "footprints": ("fuzz_footprint", "fuzz_acled"),
    "boundaries": ("fuzz_boundaries",),
}


def run_family(family: str, folder: str) -> None:
    """Run one family of properties (in the bounded subprocess)."""
    for name in FAMILIES[family]:
        globals()[name](Path(folder))
        print(f"{name}: {SETTINGS.max_examples} examples passed", flush=True)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_hypothesis_properties_hold_under_resource_limits(tmp_path, family):
    code = f"from tests.test_fuzz import run_family; run_family({family!r}, {str(tmp_path)!r})"
    result = hostile.run_bounded(["-c", code], memory_mb=2560, cpu_s=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert result.stdout.count("examples passed") == len(FAMILIES[family])


def test_acled_rows_longer_than_the_header_are_read_not_crashed_on(tmp_path):
    # found by the deep search: pandas took the first column as the index of such a file
    path = tmp_path / "acled.csv"
    path.write_text(
        "event_date,event_type,latitude,longitude\n"
        "2020-01-01,Battles,9.0,7.5,surplus\n2020-01-02,Protests,9.1,7.6\n"
    )
    _read_footprint(path)
