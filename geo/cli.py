"""The ``crisis-exposure`` command line: argument parsing and printing only.

Every command calls :mod:`geo.pipeline` (the same functions the dashboard calls) and
imports it only when it runs, so ``crisis-exposure --help`` starts without loading
duckdb, scipy or geopandas. Bad input exits with code 2 and a one-line reason on
standard error; progress goes to standard error so that standard output stays clean.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from geo.errors import InputError

WEIGHTING_CHOICES = ("area", "settlement", "blend")  # geo.exposure_table.WEIGHTINGS (light)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- commands


def _cmd_ingest(args: argparse.Namespace) -> int:
    from geo import pipeline

    reports = pipeline.ingest_files(
        args.store, args.records, rejects_dir=args.rejects_dir, sheet=args.sheet, progress=_say
    )
    for report in reports:
        print("\n".join(report.summary_lines()))
    read = sum(r.rows_read for r in reports)
    accepted = sum(r.accepted for r in reports)
    print(f"total: {read} rows read, {accepted} accepted, {read - accepted} rejected")
    return 0


def _cmd_release(args: argparse.Namespace) -> int:
    from geo import pipeline
    from geo.release import ReleasePolicy

    if args.noise is not None and args.noise < 1:
        raise InputError(
            "--noise must be at least 1: an exact release (no noise) shows the changes "
            "between releases to the person."
        )
    policy = ReleasePolicy(
        base_resolution=args.resolution,
        floor_resolution=args.floor,
        k=args.k,
        nationalities=tuple(args.nationality) if args.nationality else None,
        consent_scope=args.consent,
        noise_scale=args.noise,
    ).checked()
    _say(
        f"building release from {args.store} (k={policy.k}, base {policy.base_resolution}, "
        f"floor {policy.floor_resolution}, consent {policy.consent_scope})"
    )
    release = pipeline.publish_release(args.store, policy, args.out)
    print("\n".join(release.summary_lines()))
    print(
        f"written to {args.out}; recorded in the store's ledger (store version "
        f"{release.metadata['store_version']})"
    )
    print(
        "before handing it out: crisis-exposure audit --store STORE (audits every release "
        "in the ledger, each against the registry as it was then, and the flows between)"
    )
    return 0


def _policy_in_short(policy: dict) -> str:
    """Return a ledger policy as one short phrase: k, resolutions, consent, audience."""
    nationalities = ",".join(policy["nationalities"]) if policy["nationalities"] else "all"
    rounding = f" round {policy['round_to']}" if policy.get("round_to") else ""
    return (
        f"k={policy['k']} res {policy['base_resolution']}→{policy['floor_resolution']} "
        f"{policy['consent_scope']} {nationalities}{rounding}"
    )


def _cmd_releases(args: argparse.Namespace) -> int:
    from geo import pipeline

    entries = pipeline.list_releases(args.store)
    if not entries:
        print(f"{args.store}: no release recorded yet.")
        return 0
    for entry in entries:
        print(
            f"#{entry['release_id']}  {entry['created_at']:%Y-%m-%d %H:%M:%S}  "
            f"store v{entry['store_version']}  {_policy_in_short(entry['policy'])}  "
            f"{entry['groups']} groups, {entry['cases']} cases, {entry['persons']} persons  "
            f"sha256 {entry['content_sha256'][:12]}…  {entry['file_name']}"
        )
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from geo import pipeline

    release = pipeline.read_release(args.release, args.trust or ())
    print("\n".join(release.summary_lines()))
    print(release.verification.sentence())
    if args.json:
        print(json.dumps(release.metadata, indent=2))
    if args.cells:
        columns = ["h3_cell", "resolution", "nationality", "cases", "persons"]
        release.groups[columns].to_csv(args.cells, index=False)
        print(f"released groups written to {args.cells}")
    return 0


def _read_footprints(args: argparse.Namespace) -> list:
    from geo import pipeline

    return pipeline.read_footprints(
        args.footprints,
        class_field=args.class_field,
        buffer_km=args.buffer_km,
        date_from=args.date_from,
        date_to=args.date_to,
        raster=pipeline.raster_options(args.raster_kind, args.thresholds, args.raster_labels),
    )


def _cmd_hazard(args: argparse.Namespace) -> int:
    for footprint in _read_footprints(args):
        provenance = footprint.provenance
        print(
            f"{provenance['file_name']}: {provenance['format']}, hazard "
            f"{provenance['hazard_type']}, {provenance['feature_count']} features, "
            f"sha256 {provenance['sha256'][:16]}…"
        )
        if provenance["class_field"]:
            print(f"  classes from field {provenance['class_field']!r}")
        table = footprint.describe()
        table["area_km2"] = table["area_km2"].round(1)
        print(table.to_string(index=False))
        for repair in provenance["repairs"]:
            print(f"  repaired: {repair}")
        for note in provenance["notes"]:
            print(f"  note: {note}")
    return 0


def _cmd_exposure(args: argparse.Namespace) -> int:
    from geo import pipeline

    if args.admin is not None and not args.admin_field:
        raise InputError("--admin needs --admin-field (the field that names each area).")
    release = pipeline.read_release(args.release, args.trust or ())
    print(release.verification.sentence())
    footprints = _read_footprints(args)
    admin = pipeline.read_boundaries(args.admin) if args.admin else None
    run = pipeline.run_exposure(
        release,
        footprints,
        cumulative=args.cumulative,
        weighting=args.weighting,
        admin=admin,
        admin_field=args.admin_field,
        nationalities=args.nationality,
    )
    pipeline.write_export(args.out, run, release)
    exposure = run.exposure
    headline = exposure.headline()
    if headline["hazard_class"] is not None:
        print(
            f"most severe class reached: {headline['hazard_class']}: persons "
            f"{headline['persons_low']} (low) – {headline['persons_estimate']} (estimate) – "
            f"{headline['persons_high']} (high)"
        )
    withheld, statement = exposure.accuracy.withheld_sentence(), exposure.statement()
    print(statement if withheld in statement else f"{statement} {withheld}")
    print(exposure.table.head(args.show).to_string(index=False))
    for note in exposure.notes:
        print(f"note: {note}")
    print(f"written to {args.out}")
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    """Run the audit, print its report and return the exit code (1 on disclosure).

    Without release files, every release in the store's ledger is audited.
    """
    from geo import pipeline

    if args.releases:
        report = pipeline.run_audit(args.releases, args.store)
    else:
        report = pipeline.audit_ledger(args.store)
        if not report.releases:
            print(f"{args.store}: no release recorded yet; nothing to audit.")
            return 0
    print("\n".join(report.lines(args.examples)))
    return 0 if report.ok else 1


def _cmd_key(args: argparse.Namespace) -> int:
    from geo import pipeline

    text = pipeline.steward_public_key()
    print(text)
    if args.out:
        args.out.write_text(text.splitlines()[0] + "\n")
        print(
            f"public key written to {args.out}: hand it out with the releases, and read "
            "the fingerprint to the receivers by another channel"
        )
    return 0


# --------------------------------------------------------------------------- parser


def _add_ingest(commands: argparse._SubParsersAction) -> None:
    ingest = commands.add_parser(
        "ingest",
        help="validate registration files and add them to the steward store",
        description="Validate CSV/XLSX/Parquet registration files, drop identifiers and add "
        "the accepted records to the store (all files in one transaction).",
    )
    ingest.add_argument("records", nargs="+", type=Path, help="registration files")
    ingest.add_argument("--store", required=True, type=Path, help="the DuckDB store")
    ingest.add_argument(
        "--rejects-dir", type=Path, help="where rejects files go (default: beside the store)"
    )
    ingest.add_argument("--sheet", help="worksheet to read in workbooks with several sheets")
    ingest.set_defaults(run=_cmd_ingest)


def _add_release(commands: argparse._SubParsersAction) -> None:
    release = commands.add_parser(
        "release",
        help="make a protected release file from the store and record it in its ledger",
        description="Publish (cell, nationality) groups with at least k cases, rolling small "
        "groups up to H3 parents down to the floor resolution. The release is recorded in "
        "the store's ledger (see 'releases') before its file is put in place.",
    )
    release.add_argument("--store", required=True, type=Path, help="the DuckDB store")
    release.add_argument(
        "--out", required=True, type=Path, help="release file to write (.release.parquet)"
    )
    release.add_argument("--resolution", type=int, default=7, help="base H3 resolution (default 7)")
    release.add_argument(
        "--floor", type=int, default=4, help="coarsest H3 resolution of the roll-up (default 4)"
    )
    release.add_argument(
        "--k", type=int, default=10, help="minimum cases per published count (default 10)"
    )
    release.add_argument(
        "--nationality",
        nargs="+",
        metavar="ISO3",
        help="the audience's nationalities (default: all)",
    )
    release.add_argument(
        "--consent",
        default="aggregate",
        help="consent scope the records must carry (default aggregate)",
    )
    release.add_argument(
        "--noise",
        type=float,
        metavar="T",
        help="scale of the keyed noise on every published count (default k/3; at least 1)",
    )
    release.set_defaults(run=_cmd_release)


def _add_releases(commands: argparse._SubParsersAction) -> None:
    releases = commands.add_parser(
        "releases",
        help="list the releases recorded in the store's ledger",
        description="List every release published from the store, oldest first: id, "
        "creation time (UTC), store version, policy, published groups/cases/persons, "
        "content hash and file name.",
    )
    releases.add_argument("--store", required=True, type=Path, help="the DuckDB store")
    releases.set_defaults(run=_cmd_releases)


def _add_inspect(commands: argparse._SubParsersAction) -> None:
    inspect = commands.add_parser(
        "inspect",
        help="show a release's policy and totals",
        description="Show a release's policy and totals; optionally write its groups as CSV.",
    )
    inspect.add_argument("release", type=Path, help="a release file")
    inspect.add_argument(
        "--cells",
        type=Path,
        metavar="OUT.csv",
        help="write the released groups (h3_cell, resolution, nationality, cases, persons)",
    )
    inspect.add_argument("--json", action="store_true", help="print the full metadata as JSON")
    _trust_option(inspect)
    inspect.set_defaults(run=_cmd_inspect)


def _trust_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust",
        action="append",
        type=Path,
        metavar="PUBKEY",
        help="a file of steward public keys to trust (repeatable); see 'crisis-exposure key'",
    )


def _add_key(commands: argparse._SubParsersAction) -> None:
    key = commands.add_parser(
        "key",
        help="show the steward's public key and its fingerprint (releases are signed with it)",
        description="Print the public key that verifies this steward's releases, and its "
        "fingerprint to read out to receivers by another channel.",
    )
    key.add_argument("--out", type=Path, help="also write the public key to this file")
    key.set_defaults(run=_cmd_key)


def _footprint_options(parser: argparse.ArgumentParser) -> None:
    """Add the options that say how to read footprints (shared by hazard and exposure)."""
    parser.add_argument("--class-field", help="attribute holding the class of generic polygons")
    parser.add_argument(
        "--buffer-km", type=float, default=10.0, help="radius around ACLED events (default 10)"
    )
    parser.add_argument("--date-from", help="ACLED: first event date (YYYY-MM-DD)")
    parser.add_argument("--date-to", help="ACLED: last event date (YYYY-MM-DD)")
    parser.add_argument(
        "--raster-kind",
        default="auto",
        help="rasters: auto (default: as the file says), mmi (PAGER bands), depth (flood depth "
        "in m), continuous (by --thresholds) or categorical (by value)",
    )
    parser.add_argument(
        "--thresholds",
        metavar="T1,T2,...",
        help="rasters: class boundaries, e.g. 0.5,1.5,3 (flood depth default 0,0.15,0.5,1.5,3 m)",
    )
    parser.add_argument(
        "--raster-labels",
        metavar="VALUE=LABEL,...",
        help="categorical rasters: value→label map in increasing severity, e.g. 1=Flooded",
    )


def _add_hazard(commands: argparse._SubParsersAction) -> None:
    hazard = commands.add_parser(
        "hazard",
        help="read footprints and show their classes, areas and repairs",
        description="Read hazard footprints (ShakeMap, EMS, GDACS, ACLED, any polygons) and "
        "show the classes found, their areas and what was repaired.",
    )
    hazard.add_argument(
        "footprints", nargs="+", type=Path, metavar="FOOTPRINT", help="footprint files"
    )
    _footprint_options(hazard)
    hazard.set_defaults(run=_cmd_hazard)


def _add_exposure(commands: argparse._SubParsersAction) -> None:
    exposure = commands.add_parser(
        "exposure",
        help="exposure table of a release for one or more footprints",
        description="Count released persons and cases by hazard class and nationality as "
        "low / estimate / high, and write CSV, HXL CSV (.hxl.csv), XLSX or GeoJSON.",
    )
    exposure.add_argument("--release", required=True, type=Path, help="a release file")
    exposure.add_argument(
        "--hazard",
        dest="footprints",
        action="append",
        required=True,
        type=Path,
        metavar="FOOTPRINT",
        help="footprint file (repeatable: several are overlaid, worst class wins)",
    )
    _footprint_options(exposure)
    exposure.add_argument(
        "--cumulative", action="store_true", help="'at least' classes instead of disjoint bands"
    )
    exposure.add_argument(
        "--admin", type=Path, help="administrative boundaries for a breakdown by area"
    )
    exposure.add_argument("--admin-field", help="field naming each administrative area")
    exposure.add_argument(
        "--weighting",
        default="blend",
        choices=WEIGHTING_CHOICES,
        help="how the estimate splits a cut cell (default blend)",
    )
    exposure.add_argument(
        "--nationality", nargs="+", metavar="ISO3", help="only these nationalities"
    )
    exposure.add_argument(
        "--out", required=True, type=Path, help="TABLE.csv, .hxl.csv, .xlsx or .geojson"
    )
    exposure.add_argument("--show", type=int, default=15, help="rows to print (default 15)")
    _trust_option(exposure)
    exposure.set_defaults(run=_cmd_exposure)


def _add_audit(commands: argparse._SubParsersAction) -> None:
    audit = commands.add_parser(
        "audit",
        help="check releases with a linear-programming attacker (exit 1 on disclosure)",
        description="Play an attacker who knows the method and sees every number of every "
        "release given; for each count between 1 and k−1 in the store, compute the interval "
        "the attacker can prove (HiGHS) and report exact and existence disclosures, also "
        "those that only appear between releases. With no release file, audit every "
        "release in the store's ledger, each against the registry as it was then, and the "
        "flows between them. Exit code 1 when anything is disclosed.",
    )
    audit.add_argument(
        "releases",
        nargs="*",
        type=Path,
        metavar="RELEASE",
        help="release files made from the store (default: the store's whole ledger)",
    )
    audit.add_argument(
        "--store", required=True, type=Path, help="the steward store the releases were made from"
    )
    audit.add_argument(
        "--examples", type=int, default=10, help="findings to show of each kind (default 10)"
    )
    audit.set_defaults(run=_cmd_audit)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every command and its help."""
    parser = argparse.ArgumentParser(
        prog="crisis-exposure",
        description="Estimate migrants exposed to a hazard footprint from a protected release.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _add_ingest,
        _add_release,
        _add_releases,
        _add_inspect,
        _add_hazard,
        _add_exposure,
        _add_audit,
        _add_key,
    ):
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (2 for bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except InputError as exc:
        message = " ".join(str(exc).split())
        print(f"crisis-exposure {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
