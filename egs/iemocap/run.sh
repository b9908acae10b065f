#!/usr/bin/env bash
# IEMOCAP: 5 sessions of dyadic English speech, 10 speakers.
# Protocol: 4 classes (neutral, happy + excited, angry, sad: 5,531 utterances), 5 folds
# leaving one session out, as EmoBox (conf/folds.txt).
# Usage: ./run.sh --corpus-dir DIR [options of ../TEMPLATE/ser.sh, e.g. --stage 4 --tasks emotion]
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$recipe/../TEMPLATE/ser.sh" --recipe-dir "$recipe" --corpus iemocap --split-by table "$@"
