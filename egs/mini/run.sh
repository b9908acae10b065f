#!/usr/bin/env bash
# The mini recipe: a synthetic corpus (speecheq synth: English and Mandarin eSpeak NG voices,
# 5 emotions at 3 intensities) that needs nothing to download and runs end to end in minutes.
# Protocol: speakers dealt into 2 folds (4 speakers each), every speaker tested once.
# Options: see ../TEMPLATE/ser.sh --help (e.g. --stage 4 --tasks emotion).
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$recipe/../TEMPLATE/ser.sh" --recipe-dir "$recipe" --corpus mini \
  --corpus-dir "$recipe/data/local/corpus" --split-by speaker --num-folds 2 "$@"
