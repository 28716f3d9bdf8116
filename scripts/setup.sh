#!/usr/bin/env bash
# Create .venv (if missing) and install crisis-exposure with the extras named in $1
# ("" for the dashboard, "test" for the test suite). Safe to run again: it installs only
# when the venv is new or pyproject.toml changed since the last install of these extras
# (a stamp in .venv holds the hash), so a second start costs no pip run. Quiet when it
# works (pip's progress lines are kept in a log); pip's whole output is shown when it
# does not.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=".venv/.crisis-exposure-installed${extras:+-$extras}"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
python="$PWD/.venv/bin/python"
# Every install of extras installs the dashboard's packages too: without extras, the
# stamp of any install of this pyproject.toml will do (test.sh then demo.sh: no pip run).
stamps="$stamp"
[ -z "$extras" ] && stamps="$(ls .venv/.crisis-exposure-installed* 2>/dev/null || true)"
installed=""
for file in $stamps; do
  if [ -f "$file" ] && [ "$(cat "$file")" = "$wanted" ]; then installed=1; fi
done
# the check runs outside the checkout, so it sees the installed package, not ./geo
if [ -n "$installed" ] && (cd / && "$python" -c "import geo") 2>/dev/null; then
  exit 0
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
echo "$wanted" >"$stamp"
