#!/usr/bin/env bash
# Stage 1 hook (local/data.sh CORPUS_DIR DATA CORPORA): generate the synthetic corpus into
# CORPUS_DIR unless it is already there. It prepares no data directory itself (it prints none).
set -euo pipefail
corpus_dir=$1
if [ ! -f "$corpus_dir/metadata.tsv" ]; then
  speecheq synth "$corpus_dir" --num-utts 600 --seed 0 --nj 2 >&2
fi
