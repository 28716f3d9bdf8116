"""The ``crisis-exposure`` argument parser: every command, its options and their help.

Kept apart from :mod:`geo.cli` (which runs the commands and prints) and light: it
imports nothing beyond the standard library, so ``--help`` starts at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

WEIGHTING_CHOICES = ("area", "settlement", "blend", "population")  # geo.exposure_table.WEIGHTINGS


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
        metavar="SCOPE",
        help="consent scope the records must carry (default aggregate; not with "
        "--legal-basis other, which counts every registration)",
    )
    release.add_argument(
        "--valid-days",
        type=int,
        metavar="DAYS",
        help="days the release stays valid (signed into it; readers warn once it has "
        "expired; default 30: a crisis registry changes daily, so a month-old release "
        "should be replaced, not trusted silently)",
    )
    release.add_argument(
        "--noise",
        type=float,
        metavar="T",
        help="scale of the keyed noise on every published count (default k/3; at least 1)",
    )
    release.add_argument(
        "--as-of",
        metavar="DATE",
        help="release only the registrations still believed true on this day (YYYY-MM-DD): "
        "not past their valid_until (default: today when --confirmed-within is given)",
    )
    release.add_argument(
        "--confirmed-within",
        type=int,
        metavar="DAYS",
        help="and confirmed (updated_at) within this many days before --as-of",
    )
    release.add_argument(
        "--legal-basis",
        choices=("consent", "other"),
        default="consent",
        help="'other' releases every registration, consent or not, for a register held "
        "under another legal basis (needs --basis-note; recorded in the release and the "
        "ledger; default consent)",
    )
    release.add_argument(
        "--basis-note",
        metavar="TEXT",
        help="the law or decision the register is held under (published in the release)",
    )

    spark = release.add_argument_group(
        "counting a Parquet lake on Spark (pip install 'crisis-exposure[spark]', Java 17+)",
        "Spark reads the lake, applies the ingest's row rules, keeps each record's latest "
        "version and makes the first count; the roll-up, the noise, the signature and the "
        "ledger (with the lake's files and hashes) stay on this machine and --store. "
        "Cross-source linking is not done here: ingest the files into a store for it.",
    )
    spark.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="where the first count runs: local (the store's records) or spark (--lake)",
    )
    spark.add_argument(
        "--lake", metavar="GLOB", help="Parquet files to count, e.g. 'lake/**/*.parquet'"
    )
    spark.add_argument(
        "--master",
        default="local[*]",
        help="Spark master URL (default local[*]; spark://HOST:7077, yarn, k8s://…)",
    )
    spark.add_argument(
        "--spark-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a spark.* setting, repeatable (e.g. spark.executor.memory=4g)",
    )


def _add_purge(commands: argparse._SubParsersAction) -> None:
    purge = commands.add_parser(
        "purge",
        help="delete registrations not confirmed within some days, their history too",
        description="Delete every registration not confirmed (updated_at) within DAYS before "
        "--as-of, never confirmed, or past its valid_until by then, with its history. Runs "
        "the ledger audit first and refuses (exit 2) when it finds a disclosure; logs the "
        "purge in the store (time, count, cut-off; no identifiers); rewrites the store file "
        "without the deleted rows.",
    )
    purge.add_argument("--store", required=True, type=Path, help="the DuckDB store")
    purge.add_argument(
        "--older-than", required=True, type=int, metavar="DAYS", help="days (at least 1)"
    )
    purge.add_argument("--as-of", metavar="DATE", help="day counted back from (default today)")


def _add_erase(commands: argparse._SubParsersAction) -> None:
    erase = commands.add_parser(
        "erase",
        help="delete one registration on request (right to erasure), its history too",
        description="Delete one registration, found by its keyed record key (source and "
        "record id), with its history. Runs the ledger audit first (exit 2 on a "
        "disclosure); logs the erasure without identifiers; rewrites the store file.",
    )
    erase.add_argument("--store", required=True, type=Path, help="the DuckDB store")
    erase.add_argument("--source", required=True, help="the registration's source")
    erase.add_argument("--record-id", required=True, help="the registration's record id")


def _add_releases(commands: argparse._SubParsersAction) -> None:
    releases = commands.add_parser(
        "releases",
        help="list the releases recorded in the store's ledger",
        description="List every release published from the store, oldest first: id, "
        "creation time (UTC), store version, policy, published groups/cases/persons, "
        "content hash and file name.",
    )
    releases.add_argument("--store", required=True, type=Path, help="the DuckDB store")


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
    _revocations_option(inspect)


def _trust_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust",
        action="append",
        type=Path,
        metavar="PUBKEY",
        help="a file of steward public keys to trust (repeatable); see 'crisis-exposure key'",
    )


def _revocations_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--revocations",
        type=Path,
        metavar="LIST",
        help="the steward's signed revocation list: say whether the release was withdrawn "
        "or superseded (see 'crisis-exposure revoke')",
    )


def _add_key(commands: argparse._SubParsersAction) -> None:
    key = commands.add_parser(
        "key",
        help="show the steward's public key and its fingerprint (releases are signed with it)",
        description="Print the public key that verifies this steward's releases, and its "
        "fingerprint to read out to receivers by another channel.",
    )
    key.add_argument(
        "--out",
        type=Path,
        help="also write the public keys to hand out (current and retired) to this file",
    )
    key.add_argument(
        "--rotate",
        action="store_true",
        help="retire the signing key and make a new one (earlier releases stay verifiable "
        "with the retired public key, which the key file keeps)",
    )


def _add_revoke(commands: argparse._SubParsersAction) -> None:
    revoke = commands.add_parser(
        "revoke",
        help="withdraw releases (or a signing key) in the steward's signed revocation list",
        description="Add releases (files or content hashes) or key fingerprints to the "
        "revocation list (created if absent), signed with the steward's key. Readers given "
        "the list (--revocations) show a revoked release as REVOKED and refuse it for "
        "exposure; a superseded one (--superseded-by) is shown with a warning.",
    )
    revoke.add_argument(
        "releases", nargs="*", metavar="RELEASE", help="release files or content hashes"
    )
    revoke.add_argument("--list", required=True, type=Path, help="the revocation list file")
    revoke.add_argument(
        "--key", action="append", metavar="FINGERPRINT", help="withdraw a signing key"
    )
    revoke.add_argument("--reason", help="a short reason, shown to readers")
    revoke.add_argument(
        "--superseded-by",
        metavar="NEWER",
        help="mark the releases superseded by this newer release (file or content hash) "
        "instead of revoked",
    )


def _footprint_options(parser: argparse.ArgumentParser) -> None:
    """Add the options that say how to read footprints (shared by hazard and exposure)."""
    parser.add_argument("--class-field", help="attribute holding the class of generic polygons")
    parser.add_argument(
        "--class-order",
        metavar="WORST,...,LEAST",
        help="the classes' severity order, worst first, comma-separated (e.g. "
        "'Destroyed,Damaged,Possibly damaged'); without it, classes with no known order are "
        "reported unordered",
    )
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


def profile_options(parser: argparse.ArgumentParser) -> None:
    """Add the community profile, focal-point and official-stock options (exposure, report)."""
    parser.add_argument(
        "--profile",
        nargs="?",
        const="",
        metavar="CLASS",
        help="print the community profile of the exposed persons (nationalities, languages, "
        "sex, age, family size, vulnerabilities), of the whole footprint or of CLASS and worse",
    )
    parser.add_argument(
        "--focal-points",
        type=Path,
        metavar="FILE",
        help="a CSV of focal points (organisation, serves, lat, lon or place, contact): those "
        "inside or near the footprint, matched to the exposed nationalities and languages",
    )
    parser.add_argument(
        "--focal-within-km",
        type=float,
        default=10.0,
        metavar="KM",
        help="list focal points up to this distance from the footprint (default 10 km)",
    )
    parser.add_argument(
        "--stocks",
        type=Path,
        metavar="FILE",
        help="official stocks to set beside the registered persons of the exposed areas: a CSV "
        "(area, nationality, persons), an ISTAT SDMX-CSV or the UN DESA matrix",
    )
    parser.add_argument(
        "--stocks-country", metavar="NAME", help="destination country of a UN DESA matrix"
    )
    parser.add_argument("--stocks-year", type=int, metavar="YEAR", help="year of a UN DESA matrix")


def _add_exposure(commands: argparse._SubParsersAction) -> None:
    exposure = commands.add_parser(
        "exposure",
        help="exposure table of a release for one or more footprints",
        description="Count released persons and cases by hazard class and nationality as "
        "low / estimate / high, and write CSV, HXL CSV (.hxl.csv), XLSX or GeoJSON.",
    )
    _exposure_options(exposure, "TABLE.csv, .hxl.csv, .xlsx or .geojson")


def _add_report(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help="one-page situation report (PDF or HTML) of a release's exposure to footprints",
        description="Write a one-page A4 situation report: footprint provenance, a map, "
        "the headline (persons per class and at least each class, with ranges, and an "
        "alert colour), the table by class and nationality, the admin table with --admin, "
        "the method and privacy sentences, and the release's policy, hash and signature "
        "standing. Takes every option of 'exposure'.",
    )
    _exposure_options(report, "REPORT.pdf or .html")
    report.add_argument(
        "--top",
        type=_rows,
        default=8,
        help="nationalities named in the table, the rest summed as 'other' (default 8)",
    )


def _exposure_options(exposure: argparse.ArgumentParser, out_help: str) -> None:
    """Add the options of 'exposure' (shared by 'report', so that they cannot drift)."""
    exposure.add_argument("--release", required=True, type=Path, help="a release file")
    exposure.add_argument(
        "--hazard",
        dest="footprints",
        action="append",
        required=True,
        type=Path,
        metavar="FOOTPRINT",
        help="footprint file (repeatable: several are overlaid, each class system keeping "
        "its own classes; the worst class wins within one system)",
    )
    _footprint_options(exposure)
    exposure.add_argument(
        "--cumulative", action="store_true", help="'at least' classes instead of disjoint bands"
    )
    exposure.add_argument(
        "--admin",
        type=Path,
        help="administrative boundaries for a breakdown by area (GeoJSON, TopoJSON, zipped "
        "shapefile, GeoPackage); the areas add up to the classes, with an outside row",
    )
    exposure.add_argument("--admin-field", help="field naming each administrative area")
    exposure.add_argument(
        "--weighting",
        choices=WEIGHTING_CHOICES,
        help="how the estimate splits a cut cell (default: population with --population, "
        "else blend)",
    )
    exposure.add_argument(
        "--population",
        type=Path,
        metavar="PATH",
        help="a population grid for the population weighting: a raster (WorldPop, GHSL "
        "GeoTIFF) or an H3 table of resolution-8 cells (.gpkg/.parquet/.csv with columns "
        "h3 and population, Kontur style); read offline, only around the footprint",
    )
    exposure.add_argument(
        "--nationality", nargs="+", metavar="ISO3", help="only these nationalities"
    )
    exposure.add_argument("--out", required=True, type=Path, help=out_help)
    exposure.add_argument(
        "--show", type=_rows, default=15, help="rows to print (default 15; 0: none)"
    )
    _trust_option(exposure)
    _revocations_option(exposure)
    profile_options(exposure)
    exposure.add_argument(
        "--allow-revoked",
        action="store_true",
        help="use a release the revocation list withdraws (refused otherwise)",
    )
    exposure.add_argument(
        "--allow-unverified",
        action="store_true",
        help="use a release no --trust key verifies (refused otherwise when --trust is given)",
    )


def _add_outreach(commands: argparse._SubParsersAction) -> None:
    outreach = commands.add_parser(
        "outreach",
        help="the registration owner's contact list of its registrants inside a footprint",
        description="Read your own raw registration files (as 'ingest' reads them; never a "
        "store or a release), find the registrations whose real coordinates lie inside the "
        "footprint (exact point-in-polygon, boundary included; the worst class when "
        "several) and write their record_id, source, class and contact columns (phone, "
        "e-mail, preferred language) to a CSV readable by you only. The run is logged "
        "beside it (OUT.log.jsonl) without identifiers.",
    )
    outreach.add_argument(
        "--records", nargs="+", required=True, type=Path, metavar="RAW", help="your raw files"
    )
    outreach.add_argument(
        "--hazard", required=True, type=Path, metavar="FOOTPRINT", help="footprint file"
    )
    outreach.add_argument(
        "--out", required=True, type=Path, help="the contact list to write (CSV, mode 0600)"
    )
    outreach.add_argument(
        "--class",
        dest="classes",
        nargs="+",
        metavar="CLASS",
        help="only registrants whose (worst) class is one of these labels, e.g. 'MMI VIII'",
    )
    outreach.add_argument(
        "--consent",
        metavar="SCOPE",
        help="only registrants whose consent covers this scope (default: no consent filter)",
    )
    outreach.add_argument("--sheet", help="worksheet to read in workbooks with several sheets")
    _footprint_options(outreach)


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
        _add_outreach,
        _add_report,
        _add_audit,
        _add_key,
        _add_revoke,
        _add_purge,
        _add_erase,
    ):
        add(commands)
    return parser


def _rows(text: str) -> int:
    """Parse a number of rows to print: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of rows (0 or more)")
    return value
