"""What the command line and the dashboard both call: one path through the library.

Each function here reads from ``geo.io`` and hands the data to the pure functions of
``geo.release`` and ``geo.tools`` (which never open a file), so the CLI and every page
get the same answer from the same request. Heavy modules are imported where they are
used: importing this package is cheap, and a command pays only for what it runs. One
module per job: ``ingest``, ``releases`` (build, publish through the ledger, rebuild),
``exposure`` (footprints, classes, exposure, exports), ``audit``, ``purge`` (purge and
erase registrations once the ledger audit passes), ``trust`` (keys, their rotation, the
revocation list, a release's standing), and ``outreach`` (the registration owner's contact
list, from its raw files: never the store).
"""

from __future__ import annotations

from typing import Any

from geo.pipeline.audit import audit_ledger, run_audit
from geo.pipeline.exposure import (
    ExposureRun,
    boxes_apart,
    compute_exposure,
    export_bytes,
    export_sidecar,
    footprint_classes,
    footprint_file_bounds,
    raster_options,
    read_boundaries,
    read_footprints,
    run_exposure,
    write_bytes,
    write_export,
)
from geo.pipeline.ingest import ingest_files
from geo.pipeline.outreach import OutreachRun, run_outreach
from geo.pipeline.purge import erase_registration, purge_store
from geo.pipeline.releases import (
    build_release,
    ledger_release,
    list_releases,
    publish_release,
    read_release,
    release_as_of,
    steward_public_key,
    store_summary,
    trusted_keys,
    write_release,
)
from geo.pipeline.report import report_bytes, report_format, write_report
from geo.pipeline.trust import (
    read_revocations,
    refuse_revoked,
    refuse_unverified,
    release_standing,
    rotate_signing_key,
    steward_public_keys,
    withdraw,
)

__all__ = [
    "ExposureRun",
    "OutreachRun",
    "audit_ledger",
    "boxes_apart",
    "build_release",
    "compute_exposure",
    "erase_registration",
    "export_bytes",
    "export_sidecar",
    "footprint_classes",
    "footprint_file_bounds",
    "ingest_files",
    "ledger_release",
    "list_releases",
    "publish_release",
    "purge_store",
    "raster_options",
    "read_boundaries",
    "read_footprints",
    "read_release",
    "read_revocations",
    "refuse_revoked",
    "refuse_unverified",
    "report_bytes",
    "report_format",
    "release_as_of",
    "release_standing",
    "rotate_signing_key",
    "run_audit",
    "run_exposure",
    "run_outreach",
    "steward_public_key",
    "steward_public_keys",
    "store_summary",
    "trusted_keys",
    "withdraw",
    "write_bytes",
    "write_export",
    "write_report",
    "write_release",
]


def __getattr__(name: str) -> Any:
    """Hand on the footprint type lazily (``pipeline.Footprint``), for the pages' hints."""
    if name == "Footprint":
        from geo.io.footprints import Footprint

        return Footprint
    raise AttributeError(f"module 'geo.pipeline' has no attribute {name!r}")
