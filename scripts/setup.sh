#!/usr/bin/env bash
# Create .venv (if missing) and install crisis-exposure with the extras named in $1
# ("" for the dashboard, "test" for the test suite). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
target="."
[ -n "$extras" ] && target=".[$extras]"
.venv/bin/python -m pip install --quiet -e "$target" 2>&1 | grep -v -e '^WARNING: Location' -e '^$' || true
.venv/bin/python -c "import geo" # fail here, not later, if the install did not work
