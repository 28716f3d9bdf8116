#!/usr/bin/env bash
# Create .venv (if missing) and install crisis-exposure with the extras named in $1
# ("" for the dashboard, "test" for the test suite). Safe to run again. Quiet when it
# works; pip's whole output is shown when it does not.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
target="."
[ -n "$extras" ] && target=".[$extras]"
if ! { .venv/bin/python -m pip install --quiet --upgrade pip \
       && .venv/bin/python -m pip install --quiet -e "$target"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup: installing crisis-exposure failed (pip's output above)" >&2
  exit 1
fi
.venv/bin/python -c "import geo" # fail here, not later, if the install did not work
