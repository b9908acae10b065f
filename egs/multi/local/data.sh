#!/usr/bin/env bash
# Stage 1 hook (local/data.sh CORPUS_DIR DATA CORPORA): when CORPORA names mini_en and mini_zh,
# generate the synthetic mini corpus (into data/local/mini unless it is there; MINI_UTTS
# utterances), prepare it, and write DATA/mini_en (the English utterances of voices spk01,
# spk02, spk05, spk06: 2 male, 2 female) and DATA/mini_zh (the Mandarin utterances of the other
# four), so that a cross-corpus test never meets a training voice. Prints the corpora it wrote.
set -euo pipefail
data=$2
corpora=$3
if [[ " $corpora " != *" mini_en "* ]] || [[ " $corpora " != *" mini_zh "* ]]; then
  exit 0
fi
corpus_dir=data/local/mini
if [ ! -f "$corpus_dir/metadata.tsv" ]; then
  speecheq synth "$corpus_dir" --num-utts "${MINI_UTTS:-1200}" --seed 0 --nj 2 >&2
fi
speecheq prepare mini --corpus-dir "$corpus_dir" "$data/mini" >/dev/null
speecheq data subset "$data/mini" "$data/mini_en" --where utt2lang=en \
  --speakers spk01,spk02,spk05,spk06 >/dev/null
speecheq data subset "$data/mini" "$data/mini_zh" --where utt2lang=zh \
  --speakers spk03,spk04,spk07,spk08 >/dev/null
echo mini_en mini_zh
