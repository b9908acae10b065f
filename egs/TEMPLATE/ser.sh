#!/usr/bin/env bash
# Shared stage logic of every speecheq recipe. A recipe's run.sh sets its corpus and protocol
# and calls this script with --recipe-dir; everything is written under data/ and exp/ there.
# --corpus-dir is taken relative to the caller's directory; the other paths (conf/...) are
# relative to the recipe folder.
#
#   1 data prep   local/data.sh (if the recipe has one), speecheq prepare, speecheq data validate
#   2 features    speecheq feats data/all
#   3 lexicon     speecheq lexicon data/all data/lang
#   4 training    speecheq data split data/all data/folds, then speecheq train per fold
#   5 scoring     speecheq predict per fold, then speecheq score over all folds
set -euo pipefail

recipe_dir=$PWD      # the recipe folder (run.sh passes its own)
stage=1              # first stage to run
stop_stage=5         # last stage to run
nj=2                 # parallel jobs for feature extraction
corpus=              # the preparer: speecheq prepare <corpus>
corpus_dir=          # the corpus as distributed
feats_conf=../TEMPLATE/conf/fbank.conf
token_type=phone     # phone or bpe
nbpe=100             # BPE vocabulary size, with --token-type bpe
split_by=speaker     # speaker (leave speakers out), group (utt2group) or partition (utt2split)
num_folds=           # with --split-by speaker: deal speakers into this many folds ("" = one each)
valid_fraction=0.1   # share of the training speakers' utterances held out for validation
folds=               # space-separated folds to train and score ("" = all)
train_config=conf/train.yaml
tasks=               # comma-separated tasks to train ("" = those of the config)
tag=                 # experiment name under exp/ ("" = from the config name and the tasks)
device=auto          # auto, cpu or cuda
resume=auto          # stage 4: auto (continue a fold from its checkpoint.pt), true or false (afresh)

help_message="Usage: $0 --corpus NAME --corpus-dir DIR [options]
Options (default in brackets):
  --stage N --stop-stage N   stages to run [$stage..$stop_stage]
  --nj N                     feature extraction jobs [$nj]
  --corpus-dir DIR           the corpus as distributed
  --feats-conf FILE          filterbank options [$feats_conf]
  --token-type phone|bpe     CTC tokens [$token_type]; --nbpe N [$nbpe]
  --split-by speaker|group|partition [$split_by]; --num-folds K; --valid-fraction F [$valid_fraction]
  --folds 'fold1 fold2'      only these folds [all]
  --train-config FILE        [$train_config]; --tasks emotion,intensity,phone,gender [config's]
  --tag NAME                 experiment name under exp/; --device auto|cpu|cuda [$device]
  --resume auto|true|false   continue each fold's training from its checkpoint [$resume]"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../../tools/parse_options.sh"
if [ -n "$corpus_dir" ] && [[ $corpus_dir != /* ]]; then
  corpus_dir=$PWD/$corpus_dir
fi
cd "$recipe_dir"
. ./path.sh

if [ $# -ne 0 ]; then
  echo "$0: unexpected arguments: $* (see --help)" >&2
  exit 1
fi
if [ -z "$corpus" ]; then
  echo "$0: --corpus is required (see --help)" >&2
  exit 1
fi

if [ -z "$tag" ]; then
  tag=$(basename "$train_config" .yaml)
  [ -z "$tasks" ] || tag="${tag}_${tasks//,/-}"
fi
expdir=exp/$tag

log() { echo "$(date '+%H:%M:%S') [stage $1] ${*:2}" >&2; }

list_folds() {
  if [ -n "$folds" ]; then
    echo "$folds"
  else
    find data/folds -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort
  fi
}

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  if [ -z "$corpus_dir" ]; then
    echo "$0: --corpus-dir is required for stage 1 (where the $corpus corpus is)" >&2
    exit 1
  fi
  start=$SECONDS
  if [ -x local/data.sh ]; then
    log 1 "local/data.sh $corpus_dir"
    local/data.sh "$corpus_dir"
  fi
  log 1 "prepare $corpus from $corpus_dir"
  speecheq prepare "$corpus" --corpus-dir "$corpus_dir" data/all
  speecheq data validate data/all >/dev/null
  log 1 "done in $((SECONDS - start)) s"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  start=$SECONDS
  log 2 "features for data/all ($nj jobs)"
  speecheq feats data/all --conf "$feats_conf" --nj "$nj"
  log 2 "done in $((SECONDS - start)) s"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  start=$SECONDS
  log 3 "lexicon ($token_type) for data/all"
  speecheq lexicon data/all data/lang --token-type "$token_type" --nbpe "$nbpe"
  log 3 "done in $((SECONDS - start)) s"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  start=$SECONDS
  log 4 "folds: split by $split_by"
  speecheq data split data/all data/folds --by "$split_by" ${num_folds:+--num-folds "$num_folds"} \
    --valid-fraction "$valid_fraction"
  for fold in $(list_folds); do
    log 4 "training $expdir/$fold"
    speecheq train --config "$train_config" --train-dir "data/folds/$fold/train" \
      --valid-dir "data/folds/$fold/valid" --exp-dir "$expdir/$fold" --lang-dir data/lang \
      --device "$device" ${tasks:+--tasks "$tasks"} --resume "$resume"
  done
  log 4 "done in $((SECONDS - start)) s"
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  start=$SECONDS
  decode_dirs=()
  for fold in $(list_folds); do
    log 5 "decoding data/folds/$fold/test with $expdir/$fold/model.pt"
    speecheq predict "$expdir/$fold/model.pt" "data/folds/$fold/test" "$expdir/$fold/decode_test"
    decode_dirs+=("$expdir/$fold/decode_test")
  done
  speecheq score "${decode_dirs[@]}" --out-dir "$expdir/scores" --name "$tag"
  log 5 "done in $((SECONDS - start)) s; report in $expdir/scores"
fi
