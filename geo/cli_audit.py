"""The ``audit`` subcommand of ``crisis-exposure``: argument parsing and printing only.

Kept out of :mod:`geo.audit` so that the package holds no argparse, and out of
``geo/cli.py`` until that file is rewritten (it will fold this in). Building the parser
imports neither the audit nor scipy: :mod:`geo.audit_pipeline` is imported inside the
command handler, when an audit actually runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_audit(args: argparse.Namespace) -> int:
    """Run the audit, print its report and return the exit code (1 on disclosure)."""
    from geo.audit_pipeline import run_audit

    report = run_audit(args.releases, args.store)
    print("\n".join(report.lines(args.examples)))
    return 0 if report.ok else 1


def add_audit_command(commands: argparse._SubParsersAction) -> None:
    """Register the ``audit`` subcommand on an argparse subparsers object.

    Its ``run`` default returns the exit code: 0 when nothing is disclosed, 1 otherwise.
    """
    audit = commands.add_parser(
        "audit",
        help="check releases with a linear-programming attacker (exit 1 on disclosure)",
        description="Play an attacker who knows the method and sees every number of every "
        "release given; for each count between 1 and k−1 in the store, compute the interval "
        "the attacker can prove (HiGHS) and report exact and existence disclosures, also "
        "those that only appear between releases. Exit code 1 when anything is disclosed.",
    )
    audit.add_argument(
        "releases",
        nargs="+",
        type=Path,
        metavar="RELEASE",
        help="release files made from the store",
    )
    audit.add_argument(
        "--store", required=True, type=Path, help="the steward store the releases were made from"
    )
    audit.add_argument(
        "--examples", type=int, default=10, help="findings to show of each kind (default 10)"
    )
    audit.set_defaults(run=_cmd_audit)
