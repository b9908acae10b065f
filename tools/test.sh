#!/usr/bin/env bash
# Set up tools/venv if needed, lint with ruff, and run the test suite. Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/tools/setup.sh"
cd "$root"
tools/venv/bin/ruff check speecheq tests tools egs
tools/venv/bin/ruff format --check --quiet speecheq tests tools egs
tools/venv/bin/python -m pytest "$@"
