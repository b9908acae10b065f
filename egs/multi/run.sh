#!/usr/bin/env bash
# Aggregated corpora, naturalness and gender auxiliary tasks, cross-corpus evaluation
# (Kim et al., Interspeech 2017). One model is trained on each corpus alone, on all corpora
# pooled and on all but one; each is tested within every corpus it was trained on (speakers
# held out by K folds) and across the others (whole corpus), once per task set, so that the
# auxiliary tasks' effect can be read off (exp/<mode>/results.md).
#   --mode mini   the synthetic mini corpus as two corpora, mini_en and mini_zh (no download)
#   --mode real   the corpora named by --corpus (default: every one whose db.sh variable is set)
# Usage: ./run.sh [--mode mini|real] [options of ../TEMPLATE/ser.sh, e.g. --stage 4]
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mode=mini
options=()
while [ $# -gt 0 ]; do
  case $1 in
    --mode) mode=${2-}; shift 2 || { echo "$0: --mode needs a value" >&2; exit 1; } ;;
    --mode=*) mode=${1#*=}; shift ;;
    *) options+=("$1"); shift ;;
  esac
done
case $mode in
  mini) corpora="mini_en mini_zh" ;;
  real)
    . "$recipe/path.sh"
    . "$recipe/db.sh"
    corpora=""
    for name in $(python3 -c 'from speecheq.corpora import corpus_names; print(*corpus_names())'); do
      variable=${name^^}
      if [ -n "${!variable:-}" ]; then corpora="$corpora $name"; fi
    done
    ;;
  *) echo "$0: --mode takes mini or real, got '$mode'" >&2; exit 1 ;;
esac
exec "$recipe/../TEMPLATE/ser.sh" --recipe-dir "$recipe" --corpus "${corpora# }" --plan cross \
  --data "data/$mode" --tag "$mode" --num-folds 2 \
  --task-sets "emotion emotion,gender emotion,naturalness emotion,gender,naturalness emotion,phone,gender" \
  "${options[@]}"
