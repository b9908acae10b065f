#!/usr/bin/env bash
# Aggregated corpora, naturalness and gender auxiliary tasks, cross-corpus evaluation
# (Kim et al., Interspeech 2017). One model is trained on each corpus alone, on all corpora
# pooled and on all but one; each is tested within every corpus it was trained on (speakers
# held out by K folds) and across the others (whole corpus), once per task set, so that the
# auxiliary tasks' effect can be read off (RESULTS.md).
#
#   --mode mini   the synthetic mini corpus as two corpora, mini_en and mini_zh (no download)
#   --mode real   the corpora whose variable is set in db.sh (or the environment)
#
#   1 data prep   each corpus into data/<mode>/<corpus> (labels mapped to the unified space)
#   2 features    per corpus with the shared ../TEMPLATE/conf/fbank.conf, then combined (ids prefixed by
#                 corpus, utt2corpus) into data/<mode>/all
#   3 lexicon     one lexicon over the combined set: data/<mode>/lang
#   4 training    speecheq cross plan (printed), then speecheq cross run: exp/<tag>
#   5 scoring     speecheq cross score: exp/<tag>/results.md (matrices and ablation)
set -euo pipefail

stage=1
stop_stage=5
mode=mini            # mini or real
nj=2                 # parallel jobs (synthesis, features)
mini_utts=1200       # utterances of the synthetic corpus (--mode mini), 300 per corpus used
feats_conf=../TEMPLATE/conf/fbank.conf
train_config=conf/train.yaml
train_sets=alone,pooled,loo   # kinds of training sets, or corpora joined by '+'
num_folds=2          # K: speaker folds of a test corpus that is in the training set
valid_fraction=0.1
classes=             # comma-separated emotion classes ("" = those every corpus has)
task_sets="emotion emotion,gender emotion,naturalness emotion,gender,naturalness"
tag=                 # experiment folder exp/<tag> ("" = the mode)
device=auto          # auto, cpu or cuda

help_message="Usage: $0 [options]
Options (default in brackets):
  --stage N --stop-stage N   stages to run [$stage..$stop_stage]
  --mode mini|real           synthetic mini_en + mini_zh, or the corpora of db.sh [$mode]
  --nj N                     parallel jobs [$nj]; --mini-utts N [$mini_utts]
  --feats-conf FILE          filterbank options shared by all corpora [$feats_conf]
  --train-config FILE        [$train_config]
  --train-sets LIST          alone,pooled,loo or corpora joined by '+' [$train_sets]
  --num-folds K              [$num_folds]; --valid-fraction F [$valid_fraction]
  --classes LIST             emotion classes [those all corpora share]
  --task-sets 'A B ...'      space-separated task sets, each comma-separated
                             [$task_sets]
  --tag NAME                 exp/NAME [the mode]; --device auto|cpu|cuda [$device]"

recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$recipe/../../tools/parse_options.sh"
cd "$recipe"
. ./path.sh
. ./db.sh

if [ $# -ne 0 ]; then
  echo "$0: unexpected arguments: $* (see --help)" >&2
  exit 1
fi
case $mode in
  mini | real) ;;
  *) echo "$0: --mode must be mini or real, got '$mode'" >&2; exit 1 ;;
esac
data=data/$mode
expdir=exp/${tag:-$mode}

log() { echo "$(date '+%H:%M:%S') [stage $1] ${*:2}" >&2; }

corpora() { cat "$data/corpora"; }

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  start=$SECONDS
  mkdir -p "$data"
  if [ "$mode" = mini ]; then
    log 1 "mini corpus ($mini_utts utterances) as mini_en and mini_zh"
    local/mini_corpora.sh data/local/mini "$data" "$mini_utts" "$nj"
    echo "mini_en mini_zh" > "$data/corpora"
  else
    found=()
    for corpus in casia emodb ravdess cremad esd iemocap; do
      variable=${corpus^^}
      corpus_dir=${!variable}
      if [ -z "$corpus_dir" ]; then
        log 1 "$corpus: skipped ($variable is empty in db.sh)"
        continue
      fi
      log 1 "$corpus: prepare from $corpus_dir"
      speecheq prepare "$corpus" --corpus-dir "$corpus_dir" "$data/$corpus" >/dev/null
      found+=("$corpus")
    done
    if [ ${#found[@]} -lt 2 ]; then
      echo "$0: --mode real needs at least 2 corpora; set their variables in db.sh" >&2
      exit 1
    fi
    echo "${found[*]}" > "$data/corpora"
  fi
  for corpus in $(corpora); do
    speecheq data validate "$data/$corpus" >/dev/null
  done
  log 1 "corpora: $(corpora); done in $((SECONDS - start)) s"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  start=$SECONDS
  dirs=()
  for corpus in $(corpora); do
    log 2 "features for $data/$corpus ($nj jobs)"
    speecheq feats "$data/$corpus" --conf "$feats_conf" --nj "$nj" >/dev/null
    dirs+=("$data/$corpus")
  done
  names=$(corpora)
  log 2 "combine ${names// /, } into $data/all"
  speecheq data combine "$data/all" "${dirs[@]}" --names "${names// /,}" --prefix
  log 2 "done in $((SECONDS - start)) s"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  start=$SECONDS
  log 3 "lexicon for $data/all"
  speecheq lexicon "$data/all" "$data/lang" >/dev/null
  log 3 "done in $((SECONDS - start)) s"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  start=$SECONDS
  task_options=()
  for tasks in $task_sets; do
    task_options+=(--tasks "$tasks")
  done
  log 4 "plan $expdir"
  speecheq cross plan "$data/all" "$expdir" --config "$train_config" --lang-dir "$data/lang" \
    --train-sets "$train_sets" --num-folds "$num_folds" --valid-fraction "$valid_fraction" \
    ${classes:+--classes "$classes"} "${task_options[@]}"
  log 4 "train and decode"
  speecheq cross run "$expdir" --device "$device"
  log 4 "done in $((SECONDS - start)) s"
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  start=$SECONDS
  log 5 "score $expdir"
  speecheq cross score "$expdir"
  log 5 "done in $((SECONDS - start)) s; tables in $expdir/results.md"
fi
