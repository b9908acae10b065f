#!/usr/bin/env bash
# Any corpus described by a table (CSV/TSV: path, speaker, emotion, optional labels):
# the template for a corpus speecheq does not know. --corpus-dir is the table file.
# Protocol: leave one speaker out; use --split-by group / partition with group / split columns.
# Usage: ./run.sh --corpus-dir DIR [options of ../TEMPLATE/ser.sh, e.g. --stage 4 --tasks emotion]
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$recipe/../TEMPLATE/ser.sh" --recipe-dir "$recipe" --corpus csv --split-by speaker "$@"
