"""``python -m demo``: write the SYNTHETIC registry, or build the demo releases.

    python -m demo registry --out DIR [--seed 2016] [--scale 0.05]
    python -m demo build [--out data/demo] [--work-dir demo-out]

Run from the repository root (the demo reads ``data/``). As with ``crisis-exposure``,
bad input exits with code 2 and a one-line reason on standard error, and progress
goes to standard error so that standard output stays clean.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from geo.errors import InputError

PROG = "python -m demo"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cmd_build(args: argparse.Namespace) -> int:
    from demo.build import build_demo

    for line in build_demo(args.out, work_dir=args.work_dir, progress=_say):
        print(line)
    return 0


def _cmd_registry(args: argparse.Namespace) -> int:
    from demo.registry import generate_demo_registry, write_demo_registry

    if not args.scale > 0:
        raise InputError(f"--scale must be positive, got {args.scale}.")
    _say(f"generating the SYNTHETIC central-Italy registry (seed {args.seed}, scale {args.scale})")
    frame = generate_demo_registry(seed=args.seed, scale=args.scale)
    for path in write_demo_registry(frame, args.out):
        print(f"written {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with both commands and their help."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The SYNTHETIC central-Italy demo: its registry and its releases.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser(
        "build",
        help="build the demo: SYNTHETIC registry → store → releases",
        description="Generate the SYNTHETIC central-Italy registry, ingest it and write the "
        "demo releases (public and one embassy release).",
    )
    build.add_argument(
        "--out",
        type=Path,
        default=Path("data/demo"),
        help="folder for the release files (default data/demo)",
    )
    build.add_argument(
        "--work-dir",
        type=Path,
        default=Path("demo-out"),
        help="folder for the raw synthetic files and the store (default demo-out)",
    )
    build.set_defaults(run=_cmd_build)

    registry = commands.add_parser(
        "registry",
        help="write the SYNTHETIC central-Italy demo registry files",
        description="Generate the seeded, synthetic registry used by the demo (central Italy).",
    )
    registry.add_argument("--out", type=Path, default=Path("demo-out/registry"), help="folder")
    registry.add_argument("--seed", type=int, default=2016)
    registry.add_argument(
        "--scale",
        type=float,
        default=0.05,
        help="registered persons per foreign resident (default 0.05)",
    )
    registry.set_defaults(run=_cmd_registry)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (2 for bad input)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (InputError, OSError) as exc:
        message = " ".join(str(exc).split())
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
