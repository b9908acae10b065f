#!/usr/bin/env bash
# Create tools/venv (if missing) and install speecheq into it, editable, with its dev extra.
# Idempotent: when pyproject.toml's content has not changed since the last install (its digest
# is the stamp), it returns at once; a fresh clone of the same project reinstalls nothing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$root/tools/venv
stamp=$venv/.installed
python=${PYTHON:-python3}

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "setup.sh: speecheq needs Python >= 3.10; set PYTHON=/path/to/python3.x" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "setup.sh: creating $venv" >&2
  "$python" -m venv "$venv"
fi

digest=$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "setup.sh: installing speecheq and its dependencies into $venv (first time: a few minutes)" >&2
  log=$venv/install.log
  if ! { "$venv/bin/python" -m pip install --upgrade pip &&
         "$venv/bin/python" -m pip install -e "$root[dev]"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "setup.sh: installation failed; the full log is $log" >&2
    exit 1
  fi
  echo "$digest" > "$stamp"
fi
