#!/usr/bin/env bash
# Shared stage logic of every speecheq recipe. A recipe's run.sh sets its corpus and protocol
# and calls this script with --recipe-dir; everything is written under data/ and exp/ there.
# --corpus-dir and --unlabeled-dirs are taken relative to the caller's directory; the other
# paths (conf/...) are relative to the recipe folder. How the jobs of stages 4 and 5 run is the recipe's cmd.sh.
#
#   1 data prep   local/data.sh CORPUS_DIR DATA CORPORA (if the recipe has one: prints the names
#                 of the corpora it prepared into DATA/<name>), speecheq prepare (each other
#                 corpus; several are combined into one set), speecheq data validate
#   2 features    speecheq feats data/all; the classic baseline's functionals of each --fuse set
#                 (speecheq baseline functionals data/all data/functionals_<SET>)
#   3 lexicon     speecheq lexicon data/all data/lang; with --speed-perturb, the copies
#                 (speecheq data perturb data/all data/all_sp, and their features)
#   4 training    the plan (speecheq data split + exp folds, or exp cross), speecheq exp train;
#                 the classic baseline's SVM per fold (exp/svm_<SETS>) if not yet scored
#   5 scoring     speecheq exp decode, speecheq exp score; the recipe's system: the network's
#                 late fusion with the SVM (speecheq exp fuse, each seed: exp/<tag>_fused_<SETS>)
#                 and speecheq compare of the three (exp/<tag>_fused_<SETS>/compare.md)
#   6 release     speecheq exp release: the network trained on every speaker, for use
#                 (exp/release: model.pt, model.onnx, MODEL_CARD.md; after several --seeds,
#                 one network per seed in exp/release/seed<s>, joined into one ensemble
#                 model.pt); only when asked (--stage 6, or --stop-stage 6)
# With --baseline SETS, the classic baseline instead: stage 2 computes utterance functionals
# (speecheq baseline functionals), stage 4 splits the folds and trains, decodes and scores a
# linear SVM per fold (speecheq baseline svm, into exp/svm_<SETS>); stages 3 and 5 do nothing.
# SETS is one set of functionals or several, comma-separated (egemaps,compare: each fold keeps
# the set of best inner UA, into exp/svm_egemaps-compare).
set -euo pipefail

recipe_dir=$PWD      # the recipe folder (run.sh passes its own)
stage=1              # first stage to run
stop_stage=          # last stage to run ("" = 5, or the first stage if it is 6)
nj=2                 # parallel jobs: feature extraction, and the SVM baseline's folds
corpus=              # the preparer (speecheq prepare <corpus>), or several, space-separated
corpus_dir=          # the corpus as distributed (one corpus; several take theirs from db.sh)
data=                # where the data directories go ("" = data, or data_<upstream> for ssl)
feats_type=fbank     # fbank, ssl (an upstream's layers from stage 2) or raw (upstream in the model)
upstream=            # with --feats-type ssl or raw: a checkpoint directory or a hub id (org/name[@rev])
layers=all           # with --feats-type ssl: the upstream layers stored (all, 0,6,12, 6-12)
finetune=true        # with --feats-type raw: fine-tune the upstream (false: keep it frozen)
feats_conf=../TEMPLATE/conf/fbank.conf
baseline=            # fbank, egemaps and/or compare: the functionals + linear SVM baseline instead
fuse=auto            # the folds plan's system: the network fused with the baseline SVM on these
                     # functionals (auto: egemaps,compare where openSMILE is installed, else
                     # fbank); none: the network alone
token_type=phone     # phone or bpe
nbpe=100             # BPE vocabulary size, with --token-type bpe
plan=folds           # folds (the recipe's protocol) or cross (the cross-corpus matrix)
split_by=speaker     # speaker, group (utt2group), table (--folds-table), partition (utt2split)
                     # or random (speaker-dependent: reports say so)
folds_table=conf/folds.txt  # with --split-by table: lines '<fold> <speaker> [<speaker> ...]'
speed_perturb=       # speeds of the copies every fold also trains on (e.g. "0.9 1.1"; "" = none)
num_folds=           # speaker or random folds ("" = one per speaker, 5 random; --plan cross: 2)
valid_fraction=0.1   # share of the training utterances (or speakers) held out for validation
valid_by=utterance   # utterance (drawn from every training speaker) or speaker (whole speakers)
folds=               # space-separated folds to train and score ("" = all)
seeds=               # space-separated seeds: every fold trained with each ("" = the config's)
unlabeled_dirs=      # space-separated data dirs of another corpus's speech (after its stage 2)
                     # every fold also trains on, for the tasks that learn from it (aae)
train_sets=alone,pooled,loo  # --plan cross: training sets
task_sets=           # --plan cross: space-separated task sets, each comma-separated
classes=             # --plan cross: comma-separated classes ("" = those all corpora share)
train_config=        # "" = conf/train.yaml, or conf/train_ssl.yaml with an upstream
tasks=               # comma-separated tasks to train ("" = those of the config)
tag=                 # experiment name under exp/ ("" = from the config name and the tasks)
device=auto          # auto, cpu or cuda
resume=auto          # stages 4 and 6: auto (continue each run from its checkpoint), true or false
feats_cmd="--launcher local"           # how stages 2 and 3 run the --nj feature jobs (cmd.sh)
train_cmd="--launcher local --jobs 1"   # how stage 4 runs its jobs (set in cmd.sh)
decode_cmd="--launcher local --jobs 1"  # how stage 5 runs its jobs (set in cmd.sh)

usage() {
  local run=$recipe_dir/run.sh
  echo "Usage: $run [options]"
  sed -n '2,/^set /{/^# /s/^# //p}' "$run" | grep -v '^Usage:'
  cat <<EOF
Options (default in brackets):
  --stage N --stop-stage N   stages to run [$stage..5]: 1 data, 2 features, 3 lexicon,
                             4 training, 5 scoring, 6 the release model (exp/release)
  --corpus-dir DIR           the corpus as distributed
  --nj N                     feature extraction jobs, and SVM folds fitted at a time [$nj]
  --feats-conf FILE          filterbank options [$feats_conf]
  --baseline SETS            the classic baseline instead of a network: functionals
                             (fbank: statistics of our frames; egemaps, compare: openSMILE's,
                             speecheq[opensmile], research use only) and a linear SVM, into
                             exp/svm_SETS; several, comma-separated: each fold keeps the set
                             of best inner UA (egemaps,compare -> exp/svm_egemaps-compare)
  --fuse auto|SETS|none      the recipe's system: the network's late fusion with the classic
                             baseline's SVM on these functionals, weights chosen per fold on
                             the other folds [$fuse: egemaps,compare with openSMILE, else fbank]
  --feats-type fbank|ssl|raw fbank; ssl: a pretrained upstream's layers computed in stage 2;
                             raw: the upstream run inside the model [$feats_type]
  --upstream DIR|ORG/NAME[@REV]  a checkpoint directory or a hub model id (wav2vec2, HuBERT,
                             WavLM, data2vec, Whisper), fetched once into the hub cache
  --layers LIST              with ssl: the layers stored (all, 0,6,12, 6-12) [$layers]
  --finetune true|false      with raw: fine-tune the upstream [$finetune]
  --token-type phone|bpe     CTC tokens [$token_type]; --nbpe N [$nbpe]
  --split-by speaker|group|table|partition|random   [$split_by]; random is speaker-dependent
  --folds-table FILE         with --split-by table [$folds_table]
  --speed-perturb '0.9 1.1'  train every fold on speed-perturbed copies too (Kaldi's, stage 3)
  --num-folds K; --valid-fraction F [$valid_fraction]
  --valid-by utterance|speaker   valid set: utterances of every training speaker, or whole
                             training speakers (tag gets _valid-speaker) [$valid_by]
  --folds 'fold1 fold2'      only these folds [all]
  --seeds '0 1 2'            train every fold with each seed [the config's]; stage 6
                             then releases their ensemble
  --unlabeled-dirs 'DIR ...' unlabeled speech of another corpus (data dirs after its stage 2)
                             for the aae task, in every fold and the release; tag gets _semi
  --train-config FILE        [conf/train.yaml; with an upstream conf/train_ssl.yaml]
  --tasks emotion,intensity,phone,gender     the tasks trained [the config's]
  --tag NAME                 experiment name under exp/; --device auto|cpu|cuda [$device]
  --resume auto|true|false   continue each fold's (and the release's) training from its checkpoint [$resume]
  --feats-cmd '...'          launcher of the feature jobs [cmd.sh: $feats_cmd]
  --train-cmd '...'          launcher of stage 4 [cmd.sh: $train_cmd]
  --decode-cmd '...'         launcher of stage 5 [cmd.sh: $decode_cmd]
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for arg in "$@"; do  # cmd.sh of the recipe sets the *_cmd launchers, before the options
  case $arg in --recipe-dir=*) recipe_dir=${arg#*=} ;; esac
done
if [ "${1-}" = --recipe-dir ] && [ $# -ge 2 ]; then recipe_dir=$2; fi
if [ -f "$recipe_dir/cmd.sh" ]; then . "$recipe_dir/cmd.sh"; fi
. "$here/../../tools/parse_options.sh"
if [ -n "$corpus_dir" ] && [[ $corpus_dir != /* ]]; then
  corpus_dir=$PWD/$corpus_dir
fi
unlabeled=()  # --unlabeled-dir options of the folds plan, each path absolute
for dir in $unlabeled_dirs; do
  [[ $dir = /* ]] || dir=$PWD/$dir
  unlabeled+=(--unlabeled-dir "$dir")
done
if [ -d "$upstream" ] && [[ $upstream != /* ]]; then  # a hub id stays as it is
  upstream=$PWD/$upstream
fi
cd "$recipe_dir"
. ./path.sh
if [ -f db.sh ]; then . ./db.sh; fi  # where each corpus is, for recipes that combine several

die() { echo "$0: $*" >&2; exit 1; }
[ $# -eq 0 ] || die "unexpected arguments: $* (see --help)"
[ -n "$corpus" ] || die "--corpus is required (see --help)"
if [ -z "$stop_stage" ]; then stop_stage=$((stage > 5 ? stage : 5)); fi
[[ $stop_stage =~ ^[0-9]+$ ]] || die "option --stop-stage takes a whole number, got '$stop_stage'"
[ "$stage" -ge 1 ] && [ "$stop_stage" -le 6 ] && [ "$stage" -le "$stop_stage" ] ||
  die "stages run from 1 to 6, got --stage $stage --stop-stage $stop_stage"
case $resume in auto | true | false) ;; *) die "--resume takes auto, true or false, got '$resume'" ;; esac
case $plan in folds | cross) ;; *) die "--plan takes folds or cross, got '$plan'" ;; esac
case $valid_by in utterance | speaker) ;; *) die "--valid-by takes utterance or speaker, got '$valid_by'" ;; esac
[ "$valid_by" = utterance ] || [ "$plan" = folds ] || die "--valid-by speaker applies to the folds plan"
check_sets() {  # OPTION VALUE: one set of functionals or several, comma-separated, each once
  local set seen=, wanted="$1 takes fbank, egemaps or compare, or several separated by commas"
  [[ $2 =~ ^[a-z]+(,[a-z]+)*$ ]] || die "$wanted, got '$2'"
  for set in ${2//,/ }; do
    case $set in fbank | egemaps | compare) ;; *) die "$wanted, got '$2'" ;; esac
    [[ $seen != *",$set,"* ]] || die "$1 names $set twice: '$2'"
    seen+="$set,"
  done
}
[ -z "$baseline" ] || check_sets --baseline "$baseline"
[ -z "$baseline" ] || [ "$plan" = folds ] || die "--baseline runs the folds plan only"
if [ -n "$unlabeled_dirs" ] && { [ -n "$baseline" ] || [ "$plan" != folds ]; }; then
  die "--unlabeled-dirs trains the networks of the folds plan only"
fi
[ -z "$baseline" ] || [ -z "$speed_perturb" ] || die "--baseline trains on no perturbed copies"
case $fuse in auto | none) ;; *) check_sets --fuse "$fuse" ;; esac
case $feats_type in
  fbank) ;;
  ssl | raw)
    [ -n "$upstream" ] || die "--feats-type $feats_type needs --upstream (a checkpoint directory or a hub id)"
    ;;
  *) die "--feats-type takes fbank, ssl or raw, got '$feats_type'" ;;
esac
if [ -z "$data" ]; then
  data=data
  [ "$feats_type" != ssl ] || data=data_$(basename "$upstream")
fi
if [ -z "$train_config" ]; then
  train_config=conf/train.yaml
  [ "$feats_type" = fbank ] || train_config=conf/train_ssl.yaml
fi
overrides=()  # the upstream run inside the model
if [ "$feats_type" = raw ]; then
  freeze=true
  [ "$finetune" = false ] || freeze=false
  overrides=(--set "model.upstream.path=$upstream" --set "model.upstream.freeze=$freeze")
fi

if [ -n "$baseline" ] || [ "$plan" != folds ]; then
  fuse=none  # the baseline alone, or the cross-corpus matrix: no fused system
elif [ "$fuse" = auto ]; then
  fuse=fbank
  if python -c 'import opensmile' 2>/dev/null; then fuse=egemaps,compare; fi
fi
svm_sets=$baseline  # the SVM's functionals: the baseline's, or those of the SVM fused with the network
[ "$fuse" = none ] || svm_sets=$fuse
svm_functionals=()
for set in ${svm_sets//,/ }; do svm_functionals+=(--functionals "$data/functionals_$set"); done
svm_name=svm_${svm_sets//,/-}  # the SVM's folder under exp/: the baseline, or the fused one
if [ -n "$baseline" ] && [ -z "$tag" ]; then
  tag=$svm_name
elif [ -z "$tag" ]; then
  tag=$(basename "$train_config" .yaml)
  [ "$feats_type" = fbank ] || tag="${tag}_$(basename "$upstream")"
  [ "$feats_type" != raw ] || tag="${tag}_raw"
  [ -z "$tasks" ] || tag="${tag}_${tasks//,/-}"
  [ -z "$unlabeled_dirs" ] || tag="${tag}_semi"
  [ "$valid_by" = utterance ] || tag="${tag}_valid-speaker"
fi
expdir=exp/$tag

log() { echo "$(date '+%H:%M:%S') [stage $1] ${*:2}" >&2; }

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  start=$SECONDS
  read -r -a names <<< "$corpus"
  prepared=""
  if [ -x local/data.sh ]; then
    log 1 "local/data.sh $corpus_dir $data"
    prepared=$(local/data.sh "$corpus_dir" "$data" "$corpus")  # the corpora it prepared
  fi
  if [ ${#names[@]} -eq 1 ]; then
    [ -n "$corpus_dir" ] || die "--corpus-dir is required for stage 1 (where the $corpus corpus is)"
    log 1 "prepare $corpus from $corpus_dir"
    speecheq prepare "$corpus" --corpus-dir "$corpus_dir" "$data/all"
  else
    dirs=()
    for name in "${names[@]}"; do
      if [[ " $prepared " != *" $name "* ]]; then
        variable=${name^^}
        [ -n "${!variable:-}" ] || die "$name: set $variable in db.sh (where the corpus is)"
        log 1 "prepare $name from ${!variable}"
        speecheq prepare "$name" --corpus-dir "${!variable}" "$data/$name" >/dev/null
      fi
      dirs+=("$data/$name")
    done
    log 1 "combine ${names[*]} into $data/all"
    speecheq data combine "$data/all" "${dirs[@]}" --names "$(IFS=,; echo "${names[*]}")" --prefix
  fi
  speecheq data validate "$data/all" >/dev/null
  log 1 "done in $((SECONDS - start)) s"
fi

make_feats() {  # the features of a data directory: the upstream's layers, or filterbanks
  if [ "$feats_type" = ssl ]; then
    speecheq feats "$1" --type ssl --upstream "$upstream" --layers "$layers" --nj "$nj" \
      --device "$([ "$device" = auto ] && echo cpu || echo "$device")" $feats_cmd
  else
    speecheq feats "$1" --conf "$feats_conf" --nj "$nj" $feats_cmd
  fi
}

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  start=$SECONDS
  if [ -z "$baseline" ]; then
    log 2 "features ($feats_type) for $data/all ($nj jobs)"
    make_feats "$data/all"
  fi
  for set in ${svm_sets//,/ }; do
    log 2 "$set functionals for $data/all, for the SVM ($nj jobs)"
    speecheq baseline functionals "$data/all" "$data/functionals_$set" --set "$set" \
      --nj "$nj" $feats_cmd
  done
  log 2 "done in $((SECONDS - start)) s"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ] && [ -z "$baseline" ]; then
  start=$SECONDS
  log 3 "lexicon ($token_type) for $data/all"
  speecheq lexicon "$data/all" "$data/lang" --token-type "$token_type" --nbpe "$nbpe"
  if [ -n "$speed_perturb" ]; then
    log 3 "speed perturbation ($speed_perturb) of $data/all into $data/all_sp, and its features"
    speecheq data perturb "$data/all" "$data/all_sp" --speeds "${speed_perturb// /,}" >/dev/null
    make_feats "$data/all_sp"
  fi
  log 3 "done in $((SECONDS - start)) s"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  start=$SECONDS
  if [ "$plan" = folds ]; then
    log 4 "folds: split by $split_by"
    split_options=()
    [ "$split_by" != table ] || split_options=(--table "$folds_table")
    [ -z "$speed_perturb" ] || split_options+=(--perturbed "$data/all_sp")
    speecheq data split "$data/all" "$data/folds" --by "$split_by" "${split_options[@]}" \
      ${num_folds:+--num-folds "$num_folds"} --valid-fraction "$valid_fraction" \
      --valid-by "$valid_by"
  fi
  if [ -n "$baseline" ]; then
    log 4 "linear SVM on the $baseline functionals -> $expdir"
    speecheq baseline svm "$data/folds" "$expdir" "${svm_functionals[@]}" \
      --config "$train_config" ${folds:+--folds "$folds"} --nj "$nj"
  else
    if [ "$plan" = folds ]; then
      speecheq exp folds "$data/folds" "$expdir" --config "$train_config" --lang-dir "$data/lang" \
        --name "$tag" ${tasks:+--tasks "$tasks"} ${folds:+--folds "$folds"} \
        ${seeds:+--seeds "$seeds"} "${overrides[@]}" "${unlabeled[@]}"
    else
      task_options=()
      for set in $task_sets; do task_options+=(--tasks "$set"); done
      log 4 "cross-corpus plan"
      speecheq exp cross "$data/all" "$expdir" --config "$train_config" --lang-dir "$data/lang" \
        --train-sets "$train_sets" --num-folds "${num_folds:-2}" \
        --valid-fraction "$valid_fraction" ${classes:+--classes "$classes"} "${task_options[@]}"
    fi
    log 4 "training $expdir ($train_cmd)"
    # shellcheck disable=SC2086  # the launcher options are words
    speecheq exp train "$expdir" $train_cmd --device "$device" --resume "$resume"
  fi
  if [ "$fuse" != none ] && [ -f "exp/$svm_name/scores/scores.json" ]; then
    log 4 "exp/$svm_name is scored already: kept for the fusion"
  elif [ "$fuse" != none ]; then
    log 4 "linear SVM on the $fuse functionals -> exp/$svm_name, for the fusion"
    speecheq baseline svm "$data/folds" "exp/$svm_name" "${svm_functionals[@]}" \
      --config "$train_config" ${folds:+--folds "$folds"} --nj "$nj" >/dev/null
  fi
  log 4 "done in $((SECONDS - start)) s"
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ] && [ -z "$baseline" ]; then
  start=$SECONDS
  log 5 "decoding $expdir ($decode_cmd)"
  # shellcheck disable=SC2086
  speecheq exp decode "$expdir" $decode_cmd --device "$device"
  speecheq exp score "$expdir"
  fused=""
  if [ "$fuse" != none ] && [ "$(wc -w <<< "$folds")" -eq 1 ]; then
    log 5 "one fold: no fusion (its weights are chosen on the other folds)"
  elif [ "$fuse" != none ]; then
    [ -f "exp/$svm_name/scores/scores.json" ] ||
      die "exp/$svm_name: no SVM to fuse with; stage 4 trains it (or --fuse none: the network alone)"
    fused=${expdir}_fused_${svm_name#svm_}
    log 5 "late fusion of $expdir with exp/$svm_name -> $fused"
    for run in "$expdir"/seed*; do
      [ -d "$run" ] || run=$expdir  # a plan of one seed has no seed folders
      speecheq exp fuse "$fused${run#"$expdir"}" "$run" "exp/$svm_name" >/dev/null
    done
    speecheq compare "$fused" "exp/$svm_name" "$expdir" --out-dir "$fused"
  fi
  log 5 "done in $((SECONDS - start)) s; reports under $expdir${fused:+ and $fused}"
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  start=$SECONDS
  [ -z "$baseline" ] && [ "$plan" = folds ] || die "stage 6 releases the folds plan's network"
  svms=()
  for svm in exp/svm_*; do
    if [ -f "$svm/scores/scores.json" ]; then svms+=(--baseline "$svm"); fi
  done
  log 6 "release model of $expdir on all of $data/all -> exp/release"
  speecheq exp release "$expdir" "$data/all" exp/release --corpus "${corpus// /,}" \
    --device "$device" --resume "$resume" "${svms[@]}"
  log 6 "done in $((SECONDS - start)) s; exp/release/MODEL_CARD.md"
fi
