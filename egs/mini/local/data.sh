#!/usr/bin/env bash
# Stage 1 hook: generate the synthetic corpus into $1 unless it is already there.
set -euo pipefail
corpus_dir=$1
if [ ! -f "$corpus_dir/metadata.tsv" ]; then
  speecheq synth "$corpus_dir" --num-utts 600 --seed 0 --nj 2
fi
