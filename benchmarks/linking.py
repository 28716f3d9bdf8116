"""Cross-source linking: precision and recall on planted duplicates, and its cost at ingest.

Prints, for a SYNTHETIC two-source registry with planted duplicates (:mod:`demo.linkage`:
typos, swapped name order, missing birth day, Cyrillic and Latin transliteration
variants, missing passport numbers), the linker's pairwise precision and recall and the
persons counted against the true number, at several Dice thresholds; then the ingest of
a registry of ``--size`` records into a new store with the identity columns (linking)
and without them (no linking), wall time of each in a fresh process, and the ratio.

    python benchmarks/linking.py --persons 20000 --size 1000000  # figures: benchmarks/README.md
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import in_subprocess, machine_lines  # noqa: E402

IDENTITY = ("full_name", "birth_date", "passport_no")
INGEST = """
import resource, time
from geo.pipeline import ingest_files
started = time.perf_counter()
reports = ingest_files({store!r}, {files!r}, rejects_dir={folder!r})
print('seconds', time.perf_counter() - started)
usage = resource.getrusage(resource.RUSAGE_SELF)
print('cpu_seconds', usage.ru_utime + usage.ru_stime)
"""


def write_sources(folder: Path, persons: int, identity: bool, seed: int = 0) -> list[Path]:
    """Write the two planted sources as Parquet (with or without identity columns)."""
    from demo.linkage import two_sources

    paths = []
    for frame in two_sources(persons, seed=seed):
        name = frame["source"][0] + ("" if identity else "_no_identity") + ".parquet"
        drop = ["person"] + ([] if identity else list(IDENTITY))
        frame.drop(drop).write_parquet(folder / name)
        paths.append(folder / name)
    return paths


def accuracy(persons: int, thresholds: list[float], seed: int = 0) -> list[str]:
    """Return one line per threshold: precision, recall, persons counted vs true persons."""
    import polars as pl

    import geo.linkage
    from demo.linkage import two_sources
    from geo.hashing import record_keys
    from geo.io import store
    from geo.pipeline import ingest_files

    truth = pl.concat(two_sources(persons, seed=seed)).select("source", "record_id", "person")
    keyed = record_keys(truth, store.record_key_secret()).select(
        "person",
        (pl.col("key_hi").cast(pl.String) + ":" + pl.col("key_lo").cast(pl.String)).alias("key"),
    )
    true_persons = truth["person"].n_unique()

    def pairs(frame: pl.DataFrame, by) -> int:
        sizes = frame.group_by(by).len()
        return int(sizes.select((pl.col("len") * (pl.col("len") - 1) // 2).sum())[0, 0])

    true_pairs = pairs(truth, "person")
    lines = []
    for threshold in thresholds:
        geo.linkage.LINK_THRESHOLD = threshold
        with tempfile.TemporaryDirectory() as folder:
            paths = write_sources(Path(folder), persons, identity=True, seed=seed)
            ingest_files(Path(folder) / "s.duckdb", paths, rejects_dir=folder)
            con = store.connect(Path(folder) / "s.duckdb", read_only=True)
            links = con.sql(
                "SELECT (record_key >> 64)::UBIGINT::VARCHAR || ':' || "
                "(record_key & 18446744073709551615)::UBIGINT::VARCHAR AS key, "
                "person_key::VARCHAR AS person_key FROM identities"
            ).pl()
            counted = con.execute(
                "SELECT count(*) FROM registrations WHERE valid_to IS NULL AND record_key "
                "NOT IN (SELECT record_key FROM absorbed WHERE valid_to IS NULL)"
            ).fetchall()[0][0]
            con.close()
        joined = keyed.join(links, on="key")
        predicted = pairs(joined, "person_key")
        correct = pairs(joined, ["person_key", "person"])
        precision = correct / predicted if predicted else 1.0
        recall = correct / true_pairs if true_pairs else 1.0
        lines.append(
            f"Dice ≥ {threshold:.2f}: precision {precision:.4f}, recall {recall:.4f} "
            f"({correct:,} of {predicted:,} linked pairs right, {true_pairs:,} true pairs); "
            f"{counted:,} persons counted for {true_persons:,} true persons "
            f"({truth.height:,} records)"
        )
    return lines


def timing(size: int) -> list[str]:
    """Return the ingest time with and without linking at ``size`` records, and the ratio."""
    persons = int(size / 1.3)  # 30 % of persons are in both sources
    seconds, cpu = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for identity in (False, True):
            files = [str(p) for p in write_sources(Path(folder), persons, identity=identity)]
            target = str(Path(folder) / f"store_{identity}.duckdb")
            code = INGEST.format(store=target, files=files, folder=folder)
            figures = in_subprocess(code)
            seconds[identity], cpu[identity] = figures["seconds"], figures["cpu_seconds"]
        records = sum(
            __import__("polars").read_parquet(f).height
            for f in Path(folder).glob("*_no_identity.parquet")
        )
    lines = [f"ingest of {records:,} records (two Parquet files), new store:"]
    for label, figures in (("wall", seconds), ("CPU (all threads)", cpu)):
        linking = figures[True] - figures[False]
        lines += [
            f"  {label}: without identity columns (no linking) {figures[False]:.1f} s; "
            f"with names, birth dates, passports (linking) {figures[True]:.1f} s; "
            f"linking's own {linking:.1f} s = {linking / figures[False]:.2f}× the ingest's own"
        ]
    return lines


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--thresholds", default="0.75,0.80,0.85,0.90")
    args = parser.parse_args()
    os.environ.setdefault("CRISIS_EXPOSURE_STEWARD_KEY", "5e" * 32)
    print("\n".join(machine_lines()))
    thresholds = [float(t) for t in args.thresholds.split(",") if t]
    if thresholds:
        print("\n".join(accuracy(args.persons, thresholds)))
    if args.size:
        print("\n".join(timing(args.size)))


if __name__ == "__main__":
    main()
