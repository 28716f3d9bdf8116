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

from geo.cli_args import build_parser
from geo.errors import InputError, one_line


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
    if args.consent is not None and args.legal_basis == "other":
        raise InputError(
            f"--consent {args.consent!r} filters by consent, but --legal-basis other counts "
            "every registration whatever its consent: give one or the other."
        )
    policy = ReleasePolicy(
        base_resolution=args.resolution,
        floor_resolution=args.floor,
        k=args.k,
        nationalities=tuple(args.nationality) if args.nationality else None,
        consent_scope=args.consent or "aggregate",
        noise_scale=args.noise,
        as_of=args.as_of or (_today() if args.confirmed_within is not None else None),
        confirmed_within=args.confirmed_within,
        legal_basis=args.legal_basis,
        basis_note=args.basis_note,
    ).checked()
    source = f"the lake {args.lake!r} on Spark" if args.engine == "spark" else args.store
    _say(
        f"building release from {source} (k={policy.k}, base {policy.base_resolution}, "
        f"floor {policy.floor_resolution}, "
        + (
            "legal basis other)"
            if policy.legal_basis == "other"
            else f"consent {policy.consent_scope})"
        )
    )
    if args.engine == "spark":
        release = _lake_release(args, policy)
    else:
        if args.lake:
            raise InputError("--lake is counted by --engine spark only; add --engine spark.")
        release = pipeline.publish_release(args.store, policy, args.out, valid_days=args.valid_days)
    print("\n".join(release.summary_lines()))
    print(
        f"valid until {release.metadata['valid_until']}"
        + (
            f"; supersedes release {release.metadata['supersedes'][:12]}…"
            if release.metadata["supersedes"]
            else ""
        )
    )
    print(
        f"written to {args.out}; recorded in the store's ledger (store version "
        f"{release.metadata['store_version']})"
    )
    if args.engine != "spark":  # the audit reads a store's records, not a lake (yet)
        print(
            "before handing it out: crisis-exposure audit --store STORE (audits every release "
            "in the ledger, each against the registry as it was then, and the flows between)"
        )
    return 0


def _today() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).date().isoformat()


def _cmd_purge(args: argparse.Namespace) -> int:
    from geo import pipeline

    done = pipeline.purge_store(args.store, args.older_than, args.as_of)
    print(  # the steward's terminal only: the count is not published
        f"purged {done['records']} registrations not confirmed since {done['cutoff']} "
        f"(their history too); logged at store version {done['store_version']}"
        + ("; the store file was rewritten without them" if done["records"] else "")
    )
    return 0


def _cmd_erase(args: argparse.Namespace) -> int:
    from geo import pipeline

    done = pipeline.erase_registration(args.store, args.source, args.record_id)
    print(
        f"erased {done['records']} registration(s) with their history; logged without "
        f"identifiers at store version {done['store_version']}; the store file was rewritten"
    )
    return 0


def _lake_release(args: argparse.Namespace, policy):
    """Publish a release counted on Spark from ``--lake`` (imports pyspark only now)."""
    from geo.pipeline.lake_release import publish_lake_release

    if not args.lake:
        raise InputError("--engine spark counts a Parquet lake: give --lake 'lake/**/*.parquet'.")
    release, report = publish_lake_release(
        args.store,
        args.lake,
        policy,
        args.out,
        valid_days=args.valid_days,
        master=args.master,
        spark_conf=args.spark_conf,
        progress=_say,
    )
    print("\n".join(report.summary_lines()))
    return release


def _policy_in_short(policy: dict) -> str:
    """Return a ledger policy as one short phrase: k, resolutions, consent, audience."""
    nationalities = ",".join(policy["nationalities"]) if policy["nationalities"] else "all"
    rounding = f" round {policy['round_to']}" if policy.get("round_to") else ""
    basis = "basis other" if policy.get("legal_basis") == "other" else policy["consent_scope"]
    if policy.get("as_of"):
        within = policy.get("confirmed_within")
        rounding += f" as of {policy['as_of']}" + (f" within {within} d" if within else "")
    return (
        f"k={policy['k']} res {policy['base_resolution']}→{policy['floor_resolution']} "
        f"{basis} {nationalities}{rounding}"
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

    release = pipeline.read_release(args.release, args.trust or (), args.revocations)
    print("\n".join(release.summary_lines()))
    print(release.verification.sentence())
    _print_standing(release)
    if args.json:
        print(json.dumps(release.metadata, indent=2))
    if args.cells:
        columns = ["h3_cell", "resolution", "nationality", "cases", "persons"]
        payload = release.groups[columns].to_csv(index=False).encode()
        pipeline.write_bytes(args.cells, payload)
        print(f"released groups written to {args.cells}")
    return 0


def _print_standing(release) -> None:
    """Print whether the release is revoked, superseded or expired (or still current)."""
    standing = release.standing
    for sentence in (standing.revoked, standing.superseded, standing.expired):
        if sentence:
            print(sentence)
    for note in standing.notes:
        print(f"standing: {note}")


def _read_footprints(args: argparse.Namespace) -> list:
    from geo import pipeline

    return pipeline.read_footprints(
        args.footprints,
        class_field=args.class_field,
        buffer_km=args.buffer_km,
        date_from=args.date_from,
        date_to=args.date_to,
        class_order=args.class_order,
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
        if not provenance.get("ordered", True):
            print("  classes unordered: no known severity order (give --class-order, worst first)")
        table = footprint.describe()
        table["area_km2"] = table["area_km2"].round(1)
        print(table.to_string(index=False))
        for repair in provenance["repairs"]:
            print(f"  repaired: {repair}")
        for note in provenance["notes"]:
            print(f"  note: {note}")
    return 0


def _exposure_run(args: argparse.Namespace) -> tuple:
    """Read, check and run what 'exposure' and 'report' both take.

    Returns (release, run, admin, profile inputs: focal points and stocks, or None).
    """
    from geo import pipeline

    if args.admin is not None and not args.admin_field:
        raise InputError("--admin needs --admin-field (the field that names each area).")
    if args.admin_field and args.admin is None:
        raise InputError("--admin-field needs --admin (the boundary file whose field it is).")
    release = pipeline.read_release(args.release, args.trust or (), args.revocations)
    print(release.verification.sentence())
    _print_standing(release)
    pipeline.refuse_revoked(release, allow=args.allow_revoked)
    pipeline.refuse_unverified(release, bool(args.trust), allow=args.allow_unverified)
    footprints = _read_footprints(args)
    admin = pipeline.read_boundaries(args.admin) if args.admin else None
    inputs = _profile_inputs(args)  # bad files end here, before anything is written
    run = pipeline.run_exposure(
        release,
        footprints,
        cumulative=args.cumulative,
        weighting=args.weighting,
        admin=admin,
        admin_field=args.admin_field,
        nationalities=args.nationality,
        population=args.population,
    )
    return release, run, admin, inputs


def _cmd_exposure(args: argparse.Namespace) -> int:
    from geo import pipeline
    from geo.exposure_table import AREA_SENTENCE

    release, run, admin, inputs = _exposure_run(args)
    pipeline.write_export(args.out, run, release)
    exposure = run.exposure
    headline = exposure.headline()
    if not exposure.ordered:
        print("classes unordered: no most severe class (give --class-order, worst first)")
    elif headline["hazard_class"] is not None and headline["reliability_words"]:
        print(
            f"most severe class reached: {headline['hazard_class']}: persons between "
            f"{headline['persons_low']} (low) and {headline['persons_high']} (high); "
            f"estimate {headline['persons_estimate']}, but {headline['reliability_words']}"
        )
    elif headline["hazard_class"] is not None:
        print(
            f"most severe class reached: {headline['hazard_class']}: persons "
            f"{headline['persons_low']} (low) – {headline['persons_estimate']} (estimate) – "
            f"{headline['persons_high']} (high)"
        )
    print(f"estimate weighting: {exposure.weighting}")
    withheld, statement = exposure.accuracy.withheld_sentence(), exposure.statement()
    print(statement if withheld in statement else f"{statement} {withheld}")
    if args.show > 0:
        print(exposure.table.head(args.show).to_string(index=False))
    else:
        print(f"(table not shown: --show 0; all {len(exposure.table)} rows are in {args.out})")
    if exposure.admin_field:
        print(AREA_SENTENCE)
    for note in exposure.notes:
        print(f"note: {note}")
    print("headline (persons: estimate and range, in each class | at least each class):")
    print("\n".join(run.headline(release).lines()))
    _print_profile(args, run, release, admin, *inputs)
    sidecar = pipeline.export_sidecar(args.out)
    print(f"written to {args.out}" + (f" (its metadata: {sidecar})" if sidecar else ""))
    return 0


def _cmd_outreach(args: argparse.Namespace) -> int:
    """List the owner's registrants inside a footprint; print counts and the warning only."""
    from geo import pipeline

    run = pipeline.run_outreach(
        args.records,
        args.hazard,
        args.out,
        classes=args.classes,
        consent=args.consent,
        sheet=args.sheet,
        class_field=args.class_field,
        class_order=args.class_order,
        raster=pipeline.raster_options(args.raster_kind, args.thresholds, args.raster_labels),
        buffer_km=args.buffer_km,
        date_from=args.date_from,
        date_to=args.date_to,
        progress=_say,
    )
    print("\n".join(run.summary_lines()))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    """Write the one-page situation report (PDF or HTML) for the same request as 'exposure'."""
    from geo import pipeline

    pipeline.report_format(args.out)  # a wrong suffix fails before the work
    release, run, admin, _ = _exposure_run(args)
    pipeline.write_report(
        args.out, run, release, admin=admin, top=args.top, profile_scope=args.profile or None
    )
    print("\n".join(run.headline(release).lines()))
    print(f"report written to {args.out}")
    return 0


def _profile_inputs(args: argparse.Namespace) -> tuple:
    """Read the focal points and official stocks the options name (None where not given)."""
    from geo.pipeline import profile as who

    points = who.read_focal_points(args.focal_points) if args.focal_points else None
    stocks = None
    if args.stocks:
        stocks = who.read_stocks(args.stocks, country=args.stocks_country, year=args.stocks_year)
    return points, stocks


def _print_profile(args: argparse.Namespace, run, release, admin, points, stocks) -> None:
    """Print the community profile, focal points and stocks comparison the options ask for."""
    from geo.pipeline import profile as who

    if args.profile is None and points is None and stocks is None:
        return
    profile = who.community_profile(run, release, args.profile or None, args.population)
    for line in who.profile_lines(profile):
        print(line)
    if points is not None:
        near = who.focal_points_for(profile, run, points, args.focal_within_km)
        for line in who.focal_point_lines(near, args.focal_within_km):
            print(line)
    if stocks is not None:
        table, notes = who.stock_comparison(run, release, stocks, admin, args.admin_field)
        for line in who.stock_lines(table, notes):
            print(line)


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

    if args.rotate:
        old, new = pipeline.rotate_signing_key()
        print(
            f"signing key rotated: new key {new}; the old key {old} is retired (it signs "
            "nothing more; its public key stays in the key file, so its releases stay "
            "verifiable). If it was stolen, also: crisis-exposure revoke --list LIST --key "
            f"{old}"
        )
    print(pipeline.steward_public_key())
    if args.out:
        pipeline.write_bytes(args.out, pipeline.steward_public_keys().encode())
        print(
            f"public keys written to {args.out} (the current key and any retired ones): "
            "hand it out with the releases, and read the fingerprint to the receivers by "
            "another channel"
        )
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    from geo import pipeline

    listed = pipeline.withdraw(
        args.list,
        args.releases,
        keys=args.key or (),
        reason=args.reason or "",
        superseded_by=args.superseded_by,
    )
    print(
        f"{args.list}: {len(listed.releases)} withdrawn releases, {len(listed.keys)} withdrawn "
        f"keys; issued {listed.issued_at}, signed by {listed.fingerprint}. Hand it out with "
        "the releases; readers honour it with --revocations "
        f"{args.list.name} (the dashboard: CRISIS_EXPOSURE_REVOCATIONS)."
    )
    return 0


# --------------------------------------------------------------------------- parser


RUN = {
    "ingest": _cmd_ingest,
    "release": _cmd_release,
    "releases": _cmd_releases,
    "inspect": _cmd_inspect,
    "hazard": _cmd_hazard,
    "exposure": _cmd_exposure,
    "outreach": _cmd_outreach,
    "report": _cmd_report,
    "audit": _cmd_audit,
    "key": _cmd_key,
    "revoke": _cmd_revoke,
    "purge": _cmd_purge,
    "erase": _cmd_erase,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (2 for bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return RUN[args.command](args)
    except InputError as exc:
        print(f"crisis-exposure {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
