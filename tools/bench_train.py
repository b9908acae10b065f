#!/usr/bin/env python3
"""Benchmark stage-4 training on synthetic features of a chosen size; print figures.

By default: a CASIA-sized set (1,200 utterances of 2.3 s on average, 80-dim features, 4
speakers, 6 emotions) plus a 120-utterance valid set, trained with the default config (or
``--config``) for ``--epochs`` epochs on the CPU. Prints the throughput (utterances and seconds
of audio per second of training), where the wall time went (training steps, waiting for data,
validation, the rest: set-up, logging, checkpoints) and the peak resident memory.

    tools/venv/bin/python tools/bench_train.py     # 6 epochs: the set-up is paid once
    tools/venv/bin/python tools/bench_train.py --utterances 600 --epochs 8 --threads 2
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speecheq.config import TrainConfig, load_config
from speecheq.train.trainer import train
from tests.synthetic import write_feature_set, write_lang

EMOTIONS = ("neutral", "happy", "angry", "sad", "fear", "surprise")
SPEAKERS = {"spk1": "f", "spk2": "m", "spk3": "f", "spk4": "m"}


def write_sets(root: Path, per_class: int, dim: int, frames: tuple[int, int]) -> None:
    """The training set, a valid set of other speakers (a fifth of the size) and a lang dir."""
    common = {"emotions": EMOTIONS, "dim": dim, "frames": frames}
    write_feature_set(root / "train", speakers=SPEAKERS, per_class=per_class, **common)
    valid_speakers = {"spk5": "f", "spk6": "m"}
    write_feature_set(
        root / "valid", speakers=valid_speakers, per_class=max(1, per_class // 5), seed=1, **common
    )
    write_lang(root / "lang")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=1200, help="training utterances")
    parser.add_argument("--seconds", type=float, default=2.3, help="mean utterance length")
    parser.add_argument("--dim", type=int, default=80, help="feature dimension")
    parser.add_argument(
        "--epochs", type=int, default=6, help="epochs (fewer weigh the one-off set-up more)"
    )
    parser.add_argument("--config", type=Path, help="a training config (default: defaults)")
    parser.add_argument("--workers", type=int, help="DataLoader workers (default: the config's)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config) if args.config else TrainConfig()
    labels = dataclasses.replace(config.labels, classes=EMOTIONS)
    optim = dataclasses.replace(config.optim, epochs=args.epochs)
    config = dataclasses.replace(config, labels=labels, optim=optim)
    if args.workers is not None:
        config = dataclasses.replace(config, num_workers=args.workers)

    mean_frames = round(args.seconds * 100)
    frames = (round(0.4 * mean_frames), round(1.6 * mean_frames))
    per_class = max(1, round(args.utterances / (len(SPEAKERS) * len(EMOTIONS))))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # Written by a child process, so that the peak memory below is the training's alone.
        writer = multiprocessing.get_context("fork").Process(
            target=write_sets, args=(root, per_class, args.dim, frames)
        )
        writer.start()
        writer.join()
        began = time.perf_counter()
        result = train(
            config, root / "train", root / "valid", root / "exp", root / "lang", device="cpu"
        )
        wall = time.perf_counter() - began

    history = result.history
    utterances = per_class * len(SPEAKERS) * len(EMOTIONS)
    step = sum(row["seconds_step"] for row in history)
    data = sum(row["seconds_data"] for row in history)
    valid = sum(row["seconds_valid"] for row in history)
    other = wall - step - data - valid
    epoch_seconds = sum(row["seconds"] for row in history) / len(history)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"set: {utterances} utterances, {args.seconds} s mean, {args.dim}-dim features")
    print(f"threads: {torch.get_num_threads()}, DataLoader workers: {config.num_workers}")
    print(f"model parameters: {sum(p.numel() for p in result.model.parameters()):,}")
    print(f"epochs: {len(history)}, {epoch_seconds:.1f} s per training epoch")
    print(
        f"throughput: {utterances / epoch_seconds:.1f} utterances/s, "
        f"{utterances * args.seconds / epoch_seconds:.1f} s of audio/s"
    )
    print(f"wall time: {wall:.1f} s")
    for name, seconds in (
        ("training steps (forward/backward/optimizer)", step),
        ("waiting for data", data),
        ("validation", valid),
        ("set-up, logging, checkpoints", other),
    ):
        print(f"  {name:<45} {seconds:7.1f} s  {100 * seconds / wall:5.1f} %")
    overhead = (wall - step - valid) / wall
    print(f"overhead outside forward/backward (validation aside): {100 * overhead:.1f} %")
    print(f"peak RSS of the training process: {peak:.0f} MiB")
    last = history[-1]
    scores = {k: v for k, v in last.items() if k.startswith("valid_") and "loss" not in k}
    print("last epoch: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))


if __name__ == "__main__":
    main()
