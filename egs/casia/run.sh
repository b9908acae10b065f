#!/usr/bin/env bash
# CASIA Chinese emotional speech: 4 speakers, 6 emotions, 1,200 Mandarin utterances.
# Protocol: leave one speaker out (4 folds, 300 test utterances each), in EmoBox's fold order
# (conf/folds.txt). --split-by random --num-folds 5: the speaker-dependent splits behind many
# published CASIA figures (reports are marked speaker-dependent).
# Usage: ./run.sh --corpus-dir DIR [options of ../TEMPLATE/ser.sh, e.g. --stage 4 --tasks emotion]
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$recipe/../TEMPLATE/ser.sh" --recipe-dir "$recipe" --corpus casia --split-by table "$@"
