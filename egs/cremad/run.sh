#!/usr/bin/env bash
# CREMA-D: 91 actors, 6 emotions at up to 3 intensities, 7,442 English utterances.
# Protocol: 5 actor-disjoint folds (actors dealt round-robin). EmoBox's CREMA-D split is a
# random 75/25 one with every actor on both sides (speaker-dependent), so this recipe keeps its own.
# Usage: ./run.sh --corpus-dir DIR [options of ../TEMPLATE/ser.sh, e.g. --stage 4 --tasks emotion]
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$recipe/../TEMPLATE/ser.sh" --recipe-dir "$recipe" --corpus cremad --split-by speaker --num-folds 5 "$@"
