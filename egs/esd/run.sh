#!/usr/bin/env bash
# Emotional Speech Dataset (ESD): 10 Mandarin + 10 English speakers, 5 emotions, 35,000 utterances.
# Protocol: EmoBox's 5 speaker-disjoint folds of 4 speakers (conf/folds.txt). --split-by
# partition: the corpus's own train/evaluation/test partition, which has every speaker in all
# three (speaker-dependent: reports say so).
# Usage: ./run.sh --corpus-dir DIR [options of ../TEMPLATE/ser.sh, e.g. --stage 4 --tasks emotion]
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$recipe/../TEMPLATE/ser.sh" --recipe-dir "$recipe" --corpus esd --split-by table "$@"
