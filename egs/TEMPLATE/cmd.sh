# How the jobs of stages 4 (training) and 5 (decoding) run, as Kaldi's cmd.sh: the launcher
# options of 'speecheq exp train' and 'speecheq exp decode' (see 'speecheq exp train --help').
# Each recipe's cmd.sh is a link to this file; replace the link by a file of its own to set a
# recipe apart. --train-cmd '...' and --decode-cmd '...' override them for one run.

# This machine: N runs (folds) at a time, the CPU cores divided among them (--num-threads).
train_cmd="--launcher local --jobs 1"
decode_cmd="--launcher local --jobs 1"

# A Slurm cluster (through submitit): one job per run, each with its GPU; scale a run past
# one GPU with torchrun (see the README).
# train_cmd="--launcher slurm --jobs 8 --partition gpu --gpus-per-job 1 --cpus-per-job 8 --time 240"
# decode_cmd="--launcher slurm --jobs 8 --partition gpu --gpus-per-job 1 --cpus-per-job 4 --time 30"
