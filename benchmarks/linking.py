"""Cross-source linking: precision and recall on planted duplicates, and its cost at ingest.

Prints, for a SYNTHETIC two-source registry with planted duplicates (:mod:`demo.linkage`:
typos, swapped name order, missing birth day, Cyrillic and Latin transliteration
variants, missing passport numbers), the linker's pairwise precision and recall and the
persons counted against the true number, at several Dice thresholds; then the ingest of
a registry of ``--size`` records into a new store with the identity columns (linking)
and without them (no linking), wall and CPU time of each in a fresh process, and the
ratio. With ``--baseline DIR`` (another checkout, e.g. a worktree of main), the same
figures for that code in the same run, so a shared machine's load hits both alike.

    python benchmarks/linking.py --persons 20000 --size 1000000  # figures: benchmarks/README.md
    python benchmarks/linking.py --baseline ../main-worktree --persons 20000 --size 1000000
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import PRINT_PEAK, machine_lines  # noqa: E402

IDENTITY = ("full_name", "birth_date", "passport_no")
INGEST = (
    """
import time
from geo.pipeline import ingest_files
started, cpu = time.perf_counter(), time.process_time()
reports = ingest_files({store!r}, {files!r}, rejects_dir={folder!r})
print('seconds', time.perf_counter() - started)
print('cpu_seconds', time.process_time() - cpu)
"""
    + PRINT_PEAK
)
ACCURACY = """
import importlib.util
spec = importlib.util.spec_from_file_location("linking_bench", {script!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print("\\n".join(module.accuracy({persons!r}, {thresholds!r})))
"""


def in_checkout(root: Path, code: str) -> str:
    """Run Python code in a fresh process with ``geo`` imported from ``root``; return stdout."""
    prelude = f"import sys; sys.path.insert(0, {str(root)!r}); import geo\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + code],
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return "\n".join(line for line in done.stdout.splitlines() if "▕" not in line)  # no bars


def figures_of(output: str) -> dict[str, float]:
    """Return the ``NAME value`` lines of a run as numbers."""
    figures = {}
    for line in output.splitlines():
        name, _, value = line.partition(" ")
        try:
            figures[name] = float(value)
        except ValueError:
            continue
    return figures


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
            reports = ingest_files(Path(folder) / "s.duckdb", paths, rejects_dir=folder)
            compared = sum(
                int(m.group(1).replace(",", ""))
                for report in reports
                for line in report.linking
                if (m := re.search(r"([\d,]+) candidate pairs compared", line))
            )
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
            f"({truth.height:,} records); {compared:,} candidate pairs compared"
        )
    return lines


def timing(size: int, roots: dict[str, Path], repeats: int = 1) -> list[str]:
    """Return the ingest time with and without linking at ``size`` records, per checkout.

    Each checkout's two ingests run in fresh processes, one after the other and
    interleaved with the other checkout's, on the same files; ``repeats`` rounds, each
    figure the median of its rounds.
    """
    persons = int(size / 1.3)  # 30 % of persons are in both sources
    with tempfile.TemporaryDirectory() as folder:
        files = {
            identity: [str(p) for p in write_sources(Path(folder), persons, identity=identity)]
            for identity in (False, True)
        }
        records = sum(
            __import__("polars").read_parquet(f).height
            for f in Path(folder).glob("*_no_identity.parquet")
        )
        rounds: dict[tuple[str, bool], list[dict[str, float]]] = {}
        for _ in range(repeats):
            for identity in (False, True):
                for label, root in roots.items():
                    target = str(Path(folder) / f"store_{label}_{identity}.duckdb")
                    code = INGEST.format(store=target, files=files[identity], folder=folder)
                    rounds.setdefault((label, identity), []).append(
                        figures_of(in_checkout(root, code))
                    )
                    Path(target).unlink()
        runs = {
            run: {key: statistics.median(r[key] for r in done) for key in done[0]}
            for run, done in rounds.items()
        }
    lines = [
        f"ingest of {records:,} records (two Parquet files), new store"
        + (f", medians of {repeats} rounds" if repeats > 1 else "")
        + ":"
    ]
    for label in roots:
        plain, linked = runs[label, False], runs[label, True]
        lines.append(f"  {label}:")
        for name, key in (("wall", "seconds"), ("CPU (all threads)", "cpu_seconds")):
            own = linked[key] - plain[key]
            lines.append(
                f"    {name}: without identity columns (no linking) {plain[key]:.1f} s; "
                f"with names, birth dates, passports (linking) {linked[key]:.1f} s; "
                f"linking's own {own:.1f} s = {own / plain[key]:.2f}× the ingest's own"
            )
        lines.append(
            f"    peak memory: {plain['peak_mib']:,.0f} MiB without linking, "
            f"{linked['peak_mib']:,.0f} MiB with"
        )
    if len(roots) == 2:
        (this, base) = roots
        for name, key in (("wall", "seconds"), ("CPU", "cpu_seconds")):
            ours = runs[this, True][key] - runs[this, False][key]
            theirs = runs[base, True][key] - runs[base, False][key]
            lines.append(
                f"  linking's own {name}: {this} {ours:.1f} s vs {base} {theirs:.1f} s "
                f"({theirs / ours:.1f}× less)"
            )
    return lines


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--thresholds", default="0.75,0.80,0.85,0.90")
    parser.add_argument("--repeats", type=int, default=1, help="timing rounds (medians)")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout to measure in the same run (e.g. main)"
    )
    args = parser.parse_args()
    os.environ.setdefault("CRISIS_EXPOSURE_STEWARD_KEY", "5e" * 32)
    print("\n".join(machine_lines()))
    roots = {"this checkout": ROOT}
    if args.baseline:
        roots["baseline"] = args.baseline.resolve()
    thresholds = [float(t) for t in args.thresholds.split(",") if t]
    for label, root in roots.items() if thresholds else ():
        print(f"{label} ({root}):")
        code = ACCURACY.format(
            script=str(Path(__file__).resolve()), persons=args.persons, thresholds=thresholds
        )
        print(in_checkout(root, code).rstrip())
    if args.size:
        print("\n".join(timing(args.size, roots, args.repeats)))


if __name__ == "__main__":
    main()
