#!/usr/bin/env python3
"""How the toolkit's bookkeeping scales: data directories of growing size through every step
that reads or writes whole tables, side by side per size, so that a step whose cost grows
faster than the corpus shows.

    tools/venv/bin/python tools/bench_scale.py [--sizes 10000,100000,1000000]

Each data directory holds tables only (50 utterances a speaker, 6 emotion classes), pointing
at 8 real audio files and 8 small feature matrices, so it builds in seconds. Each step runs in
its own process (the command line as a user runs it, or for the training input a few lines of
Python through the same modules); the figures are its wall time and its peak resident memory
(getrusage). Steps: ``data validate``, ``data fix``, ``data subset --per-class``, ``data
combine --prefix`` of two halves, ``data split`` (5 speaker folds), the training data's loading
and one epoch of the batch sampler, the writing of a decode directory's tables, and ``score``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kaldiio
import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]
PER_SPEAKER = 50
CLASSES = ("neutral", "happy", "angry", "sad", "fear", "surprise")

LOAD_AND_SAMPLE = """
import sys
from pathlib import Path
from speecheq.config import config_from_dict
from speecheq.data.datadir import DataDir
from speecheq.batching.dataset import load_utterances
from speecheq.batching.sampler import BucketBatchSampler
from speecheq.modelfile import build_tasks
from speecheq.tasks import TASKS
from speecheq.tasks.base import TaskContext
path = Path(sys.argv[1])
data = DataDir.load(path)
classes = sys.argv[2].split(",")
config = config_from_dict({"labels": {"classes": classes}, "tasks": {"emotion": {}}}, "bench")
context = TaskContext(config.labels.class_map(), None, 40)
inventories = {
    name: TASKS[name].take_inventory(options, data, context)
    for name, options in config.tasks.items()
}
tasks = build_tasks(config, inventories)
utterances = load_utterances(path, data, tasks)
sampler = BucketBatchSampler([u.num_frames for u in utterances], 3000, shuffle=True)
print(sum(len(batch) for batch in sampler))
"""

WRITE_DECODE = """
import sys
from pathlib import Path
from speecheq.data.datadir import DataDir
from speecheq.fileio import write_table
data, out = DataDir.load(sys.argv[1]), Path(sys.argv[2])
emotions = data.get("utt2emo")
classes = sorted(set(emotions.values()))
hyp = {utt: classes[(index * 7) % len(classes)] for index, utt in enumerate(sorted(emotions))}
write_table(out / "ref" / "utt2emo", emotions)
write_table(out / "hyp" / "utt2emo", hyp)
(out / "classes").write_text("".join(f"{name}\\n" for name in classes))
"""


def build(root: Path, size: int, audio: list[Path], ark: list[str]) -> Path:
    """A data directory of ``size`` utterances at ``root/data``, written table by table."""
    data = root / "data"
    data.mkdir(parents=True)
    speakers = (size + PER_SPEAKER - 1) // PER_SPEAKER
    width = len(str(speakers))
    utts = [
        (f"s{index // PER_SPEAKER:0{width}d}", f"s{index // PER_SPEAKER:0{width}d}-u{index:08d}")
        for index in range(size)
    ]
    tables = {
        "wav.scp": (f"{utt} {audio[i % len(audio)]}" for i, (_, utt) in enumerate(utts)),
        "utt2spk": (f"{utt} {spk}" for spk, utt in utts),
        "utt2emo": (f"{utt} {CLASSES[i % len(CLASSES)]}" for i, (_, utt) in enumerate(utts)),
        "feats.scp": (f"{utt} {ark[i % len(ark)]}" for i, (_, utt) in enumerate(utts)),
        "utt2num_frames": (f"{utt} {100 + (i % 8) * 20}" for i, (_, utt) in enumerate(utts)),
        "spk2gender": (f"s{s:0{width}d} {'fm'[s % 2]}" for s in range(speakers)),
    }
    for name, lines in tables.items():
        with (data / name).open("w", encoding="utf-8") as out:
            out.writelines(f"{line}\n" for line in lines)
    return data


def inputs(root: Path) -> tuple[list[Path], list[str]]:
    """8 short audio files and 8 feature matrices (40 wide, 100-240 frames) in one ark."""
    rng = np.random.default_rng(0)
    audio = []
    for index in range(8):
        path = root / "wav" / f"{index}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, 0.1 * rng.standard_normal(16000).astype(np.float32), 16000)
        audio.append(path)
    matrices = {
        f"m{i}": rng.standard_normal((100 + i * 20, 40)).astype(np.float32) for i in range(8)
    }
    kaldiio.save_ark(str(root / "feats.ark"), matrices, scp=str(root / "feats.scp"))
    ark = [line.split(maxsplit=1)[1].strip() for line in (root / "feats.scp").open()]
    return audio, ark


def run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of ``command`` run to its end in a child process."""
    probe = (
        "import resource, runpy, sys; sys.argv = sys.argv[1:]; "
        "code = 0\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__') if sys.argv[0].endswith('.py') "
        "else runpy.run_module(sys.argv[0], run_name='__main__')\n"
        "except SystemExit as done:\n"
        "    code = done.code or 0\n"
        "sys.stderr.write(f'maxrss={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n')\n"
        "sys.exit(code)"
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", probe, *command], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    rss = [line for line in done.stderr.splitlines() if line.startswith("maxrss=")]
    return seconds, int(rss[-1].split("=")[1]) / 1024


def steps(root: Path, data: Path) -> dict[str, list[str]]:
    """Each step's command (the CLI through ``-m speecheq``, or a script file)."""
    (root / "load.py").write_text(LOAD_AND_SAMPLE)
    (root / "decode.py").write_text(WRITE_DECODE)
    cli = ["speecheq"]
    speakers = sorted({line.split()[1] for line in (data / "utt2spk").open()})
    half = ",".join(speakers[: len(speakers) // 2])
    rest = ",".join(speakers[len(speakers) // 2 :])
    data_, a, b, sub, folds = (
        str(path) for path in (data, *(root / n for n in "ab"), root / "sub", root / "folds")
    )
    return {
        "data validate": [*cli, "data", "validate", data_],
        "data fix": [*cli, "data", "fix", data_, "--out", str(root / "fixed")],
        "data subset --per-class": [*cli, "data", "subset", data_, sub, "--per-class", "1000"],
        "data subset --speakers": [*cli, "data", "subset", data_, a, "--speakers", half],
        "_second half": [*cli, "data", "subset", data_, b, "--speakers", rest],
        "data combine --prefix": [*cli, "data", "combine", str(root / "ab"), a, b, "--prefix"],
        "data split (5 folds)": [*cli, "data", "split", data_, folds, "--num-folds", "5"],
        "training input + 1 epoch": [str(root / "load.py"), data_, ",".join(CLASSES)],
        "decode tables written": [str(root / "decode.py"), data_, str(root / "decode")],
        "score": [*cli, "score", str(root / "decode")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    figures: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        audio, ark = inputs(Path(tmp))
        for size in sizes:
            root = Path(tmp) / str(size)
            data = build(root, size, audio, ark)
            for name, command in steps(root, data).items():
                seconds, rss = run(command)
                if name.startswith("_"):
                    continue
                figures.setdefault(name, []).append(f"{seconds:7.1f} s {rss:6.0f} MiB")
                print(f"{size:>9,} {name}: {seconds:.1f} s, {rss:.0f} MiB", file=sys.stderr)
    header = "| step | " + " | ".join(f"{size:,} utts" for size in sizes) + " |"
    print(header)
    print("| --- |" + " ---: |" * len(sizes))
    for name, cells in figures.items():
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
