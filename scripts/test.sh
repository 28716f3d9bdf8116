#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian machine, then lint and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages: chromium (browser tests), poppler-utils (pdftotext, pdftoppm read the
# report back) and a Java runtime (the Spark release test)
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -x /usr/bin/pdftotext ] || missing="$missing poppler-utils"
command -v java >/dev/null || missing="$missing openjdk-17-jre-headless"
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
bash scripts/setup.sh test,spark
.venv/bin/ruff check .
.venv/bin/ruff format --check --quiet . || { echo "ruff format would change the files above: run .venv/bin/ruff format ."; exit 1; }
.venv/bin/python -m pytest "$@"
