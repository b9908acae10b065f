#!/usr/bin/env bash
# RAVDESS speech (audio-only): 24 actors, 8 emotions at 2 intensities, English.
# Protocol: EmoBox's 6 actor-disjoint folds of 4 actors (conf/folds.txt).
# Usage: ./run.sh --corpus-dir DIR [options of ../TEMPLATE/ser.sh, e.g. --stage 4 --tasks emotion]
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$recipe/../TEMPLATE/ser.sh" --recipe-dir "$recipe" --corpus ravdess --split-by table "$@"
