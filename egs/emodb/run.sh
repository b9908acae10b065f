#!/usr/bin/env bash
# Berlin Database of Emotional Speech (EmoDB): 10 speakers, 7 emotions, 535 German utterances.
# Protocol: leave one speaker out (10 folds). EmoBox's EmoDB folds put every speaker in both
# train and test (speaker-dependent), so this recipe keeps its own.
# Usage: ./run.sh --corpus-dir DIR [options of ../TEMPLATE/ser.sh, e.g. --stage 4 --tasks emotion]
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$recipe/../TEMPLATE/ser.sh" --recipe-dir "$recipe" --corpus emodb --split-by speaker "$@"
