#!/usr/bin/env bash
# Stage 1 in --mode mini: the synthetic mini corpus as two corpora with no voice in common.
# Generates the corpus into $1 (unless it is there), prepares it into $2/mini, and writes
# $2/mini_en (the English utterances of voices spk01, spk02, spk05, spk06: 2 male, 2 female)
# and $2/mini_zh (the Mandarin utterances of the other four), so that a cross-corpus test
# never meets a training voice.
set -euo pipefail
corpus_dir=$1
data=$2
num_utts=$3
nj=$4
if [ ! -f "$corpus_dir/metadata.tsv" ]; then
  speecheq synth "$corpus_dir" --num-utts "$num_utts" --seed 0 --nj "$nj"
fi
speecheq prepare mini --corpus-dir "$corpus_dir" "$data/mini" >/dev/null
speecheq data subset "$data/mini" "$data/mini_en" --where utt2lang=en \
  --speakers spk01,spk02,spk05,spk06 >/dev/null
speecheq data subset "$data/mini" "$data/mini_zh" --where utt2lang=zh \
  --speakers spk03,spk04,spk07,spk08 >/dev/null
