#!/usr/bin/env python3
"""Training input on real features: the data loader's speed with 0, 1 and 2 worker processes,
and whether training ever waits for it, side by side (0 workers, loading in the training
process, is the peer).

By default CASIA's first fold as its recipe wrote it (``egs/casia/data/folds/fold1``, features
from ark files, its ``conf/train.yaml``). For each worker count, in a fresh process:

- **loader alone**: the epochs' training batches read and collated, nothing trained:
  utterances per second in the first epoch (the workers start) and in the later ones;
- **training**: ``--epochs`` epochs of the recipe's training; the share of the loop's time spent
  waiting for the next batch (the rest is forward, backward and the optimiser step).

    tools/venv/bin/python tools/bench_loader.py [--workers 0,1,2] [--epochs 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASIA = ROOT / "egs" / "casia"


def child(args: argparse.Namespace, workers: int) -> dict[str, float]:
    """In a fresh process: the loader alone, then training, with ``workers`` workers."""
    import torch

    sys.path.insert(0, str(ROOT))
    from speecheq.config import load_config
    from speecheq.train.data import batch_loader, load_training_data, training_sampler
    from speecheq.train.trainer import train

    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    config = dataclasses.replace(
        config,
        num_workers=workers,
        optim=dataclasses.replace(config.optim, epochs=args.epochs),
    )
    data = load_training_data(config, args.train_dir, args.valid_dir, args.lang_dir, [])
    sampler = training_sampler(data, config, 0, 1)
    loader = batch_loader(data.train, sampler, data.tasks, config, torch.device("cpu"))
    seconds = []
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        began = time.perf_counter()
        utterances = sum(len(batch.utts) for batch in loader)
        seconds.append(time.perf_counter() - began)
    with tempfile.TemporaryDirectory() as exp:
        history = train(
            config, args.train_dir, args.valid_dir, exp, args.lang_dir, device="cpu"
        ).history
    waiting = sum(row["seconds_data"] for row in history)
    stepping = sum(row["seconds_step"] for row in history)
    return {
        "utterances": utterances,
        "first_epoch_per_second": utterances / seconds[0],
        "later_epochs_per_second": utterances * (len(seconds) - 1) / sum(seconds[1:]),
        "waiting_share": waiting / (waiting + stepping),
        "epoch_seconds": sum(row["seconds"] for row in history) / len(history),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-dir", type=Path, default=CASIA / "data/folds/fold1/train")
    parser.add_argument("--valid-dir", type=Path, default=CASIA / "data/folds/fold1/valid")
    parser.add_argument("--lang-dir", type=Path, default=CASIA / "data/lang")
    parser.add_argument("--config", type=Path, default=CASIA / "conf/train.yaml")
    parser.add_argument("--workers", default="0,1,2", help="worker counts, comma-separated")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per count (2 or more)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of training")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        sys.exit("--epochs: 2 or more (the first epoch starts the workers)")
    if args.child is not None:
        print(json.dumps(child(args, args.child)))
        return
    if not (args.train_dir / "feats.scp").is_file():
        sys.exit(f"{args.train_dir}: no features; run the CASIA recipe to stage 4 first")
    rows = []
    for workers in (int(count) for count in args.workers.split(",")):
        command = [sys.executable, __file__, *sys.argv[1:], "--child", str(workers)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append((workers, json.loads(done.stdout.strip().splitlines()[-1])))
    print(f"training input of {args.train_dir} ({rows[0][1]['utterances']:.0f} utterances), "
          f"{args.threads} training thread(s)")  # fmt: skip
    print("| workers | loader alone, utterances/s: first epoch | later epochs "
          "| training epoch | waiting for data |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: |")
    for workers, row in rows:
        print(
            f"| {workers} | {row['first_epoch_per_second']:.0f} "
            f"| {row['later_epochs_per_second']:.0f} | {row['epoch_seconds']:.1f} s "
            f"| {100 * row['waiting_share']:.1f} % |"
        )


if __name__ == "__main__":
    main()
