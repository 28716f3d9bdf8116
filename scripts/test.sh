#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian machine, then lint and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
# chromium drives the browser tests; poppler-utils (pdftotext, pdftoppm) reads the report back
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/pdftotext ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium poppler-utils >/dev/null
fi
bash scripts/setup.sh test
.venv/bin/ruff check .
.venv/bin/ruff format --check --quiet . || { echo "ruff format would change the files above: run .venv/bin/ruff format ."; exit 1; }
.venv/bin/python -m pytest "$@"
