# How the jobs of stages 2 (features), 4 (training) and 5 (decoding) run, as Kaldi's cmd.sh: the
# launcher options of 'speecheq feats', 'speecheq exp train' and 'speecheq exp decode'.
# Each recipe's cmd.sh is a link to this file; replace the link by a file of its own to set a
# recipe apart. --feats-cmd, --train-cmd and --decode-cmd '...' override them for one run.

# This machine: the feature jobs (--nj) all at once; N runs (folds) at a time, the CPU cores
# divided among them (--num-threads).
feats_cmd="--launcher local"
train_cmd="--launcher local --jobs 1"
decode_cmd="--launcher local --jobs 1"

# A Slurm cluster (through submitit): one job per run, each with its GPU; with --gpus-per-job G
# (and --nodes M), a training run is one DDP world of a process per GPU on each node.
# feats_cmd="--launcher slurm --jobs 16 --partition gpu --gpus-per-job 1 --cpus-per-job 4 --time 240"
# train_cmd="--launcher slurm --jobs 8 --partition gpu --gpus-per-job 1 --cpus-per-job 8 --time 240"
# decode_cmd="--launcher slurm --jobs 8 --partition gpu --gpus-per-job 1 --cpus-per-job 4 --time 30"
