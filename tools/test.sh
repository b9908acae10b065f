#!/usr/bin/env bash
# Set up tools/venv if needed, lint with ruff, and run the test suite. Extra arguments go to
# pytest; --fast leaves out the slow (end-to-end) tests and spreads the rest over the cores
# (pytest-xdist), for iterating.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/tools/setup.sh"
cd "$root"
tools/venv/bin/ruff check speecheq tests tools egs
tools/venv/bin/ruff format --check --quiet speecheq tests tools egs
if [ "${1:-}" = --fast ]; then
  shift
  set -- -m "not slow" -n auto "$@"
fi
tools/venv/bin/python -m pytest "$@"
