"""Build the bundled demo: SYNTHETIC central-Italy registry → steward store → releases.

The registry is generated (seeded) by :mod:`demo.registry`, then goes through the
library's own ingest and release, as a steward's files would; the raw files and the
store stay in a work folder that is never shipped; only the release files are
(``data/demo``, what the dashboard opens).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from demo.registry import TRUTH_FILE_NAME, generate_demo_registry, write_demo_registry
from geo.pipeline import ingest_files, publish_release, steward_public_key
from geo.release import ReleasePolicy

DEMO_SEED = 2016
# The shipped demo is SYNTHETIC and rebuilt rarely: its releases stay valid for ten years
# so that a checkout does not show them as expired a month after the build.
DEMO_VALID_DAYS = 3650
DEMO_STEWARD_KEY = "de" * 32  # public on purpose: the data are SYNTHETIC
DEMO_SIGNING_KEY = "d5" * 32  # likewise; its public key ships as data/demo/steward.pub
DEMO_SCALE = 0.2
PUBLIC_RELEASE = "central_italy.release.parquet"
EMBASSY_NATIONALITY = "UKR"
EMBASSY_RELEASE = f"embassy_{EMBASSY_NATIONALITY}.release.parquet"


def build_demo(
    out_dir: str | Path,
    work_dir: str | Path = "demo-out",
    progress: Callable[[str], None] | None = None,
) -> Iterator[str]:
    """Generate, ingest and release the demo; yield one summary line per step.

    Writes ``out_dir/central_italy.release.parquet`` (public, consent "aggregate", all
    nationalities) and ``out_dir/embassy_UKR.release.parquet`` (Ukraine's embassy: the
    same audience and rules, one nationality, so it tells the embassy nothing the
    public release does not). An embassy release under another consent scope (e.g.
    "origin_state") counts a different audience, and the two could be differenced:
    the joint audit flags that, so it is not part of the demo. The work folder gets
    the raw SYNTHETIC files, the rejects and a fresh store; the releases go through
    its ledger, with record keys and noise from the steward's key (a rebuild gives the
    same releases, so rebuilding hands out no fresh noise).
    """
    say = progress or (lambda message: None)
    # The SYNTHETIC registry's steward key is public (a constant): rebuilding the demo
    # anywhere gives the same releases. A real steward keeps its key secret.
    os.environ.setdefault("CRISIS_EXPOSURE_STEWARD_KEY", DEMO_STEWARD_KEY)
    os.environ.setdefault("CRISIS_EXPOSURE_SIGNING_KEY", DEMO_SIGNING_KEY)
    out_dir, work_dir = Path(out_dir), Path(work_dir)
    raw_dir, store_path = work_dir / "registry", work_dir / "store.duckdb"
    if work_dir.exists():
        shutil.rmtree(work_dir)
    say(f"generating the SYNTHETIC registry (seed {DEMO_SEED}, scale {DEMO_SCALE})")
    paths = write_demo_registry(generate_demo_registry(seed=DEMO_SEED, scale=DEMO_SCALE), raw_dir)
    registrations = [p for p in paths if p.name != TRUTH_FILE_NAME]
    reports = ingest_files(
        store_path, registrations, rejects_dir=work_dir / "rejects", progress=say
    )
    for report in reports:
        yield from report.summary_lines()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "steward.pub").write_text(steward_public_key().splitlines()[0] + "\n")
    for name, policy in (
        (PUBLIC_RELEASE, ReleasePolicy()),
        (
            EMBASSY_RELEASE,
            ReleasePolicy(nationalities=(EMBASSY_NATIONALITY,)),
        ),
    ):
        release = publish_release(store_path, policy, out_dir / name, valid_days=DEMO_VALID_DAYS)
        published, dropped = release.metadata["published"], release.metadata["dropped"]
        yield (
            f"{name}: {published['groups']} groups {published['groups_by_resolution']}, "
            f"{published['persons']} persons published, {dropped['persons']} dropped"
        )
