#!/usr/bin/env bash
# Install crisis-exposure and open the dashboard on the bundled demo (SYNTHETIC registry,
# Norcia 2016 ShakeMap). The demo releases ship in data/demo; rebuild them with
# `.venv/bin/python -m demo build` if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! ls data/demo/*.release.parquet >/dev/null 2>&1; then
  .venv/bin/python -m demo build --out data/demo --work-dir demo-out
fi
# the demo releases are signed with the demo's (public, SYNTHETIC) key: trust it
export CRISIS_EXPOSURE_TRUSTED_KEYS="${CRISIS_EXPOSURE_TRUSTED_KEYS:-data/demo/steward.pub}"
# the steward's Data page, on: the demo listens on 127.0.0.1 only (also in .streamlit/config.toml),
# and the page refuses to serve on any other address without a login
export CRISIS_EXPOSURE_STEWARD="${CRISIS_EXPOSURE_STEWARD:-1}"
# app_pages.serve is `streamlit run dashboard.py` that loads the release before the first visitor
exec .venv/bin/python -m app_pages.serve --server.address 127.0.0.1 "$@"
