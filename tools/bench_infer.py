#!/usr/bin/env python3
"""Inference benchmarks: a long recording's timeline (throughput and peak memory, at two
lengths, to show memory does not grow with the length), and PyTorch against ONNX Runtime
latency per second of audio, side by side.

    tools/venv/bin/python tools/bench_infer.py MODEL.pt [--minutes 10,60] [--threads 1]

The long recordings are built by repetition: speech (CASIA utterances from ../shared/corpora
when present, else a synthetic voiced signal) with 0.5-2 s of silence between utterances.
Each timeline runs in its own process, whose peak resident memory is reported.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]
CASIA = ROOT.parent / "shared" / "corpora" / "casia"
RATE = 16000


def utterances(count: int = 60) -> list[np.ndarray]:
    files = sorted(CASIA.glob("*/*/2*.wav"))[:: max(1, 1200 // count)][:count]
    if files:
        return [soundfile.read(path, dtype="float32")[0] for path in files]
    rng = np.random.default_rng(0)
    t = np.arange(2 * RATE) / RATE
    return [
        (0.2 * np.sin(2 * np.pi * (100 + 5 * i) * t) * (1 + np.sin(3 * t))).astype(np.float32)
        + 0.005 * rng.standard_normal(len(t)).astype(np.float32)
        for i in range(count)
    ]


def write_recording(path: Path, minutes: float) -> float:
    """Write ``minutes`` of speech and silence to ``path`` in blocks; return its seconds."""
    rng = np.random.default_rng(1)
    speech = utterances()
    total = int(minutes * 60 * RATE)
    written = 0
    with soundfile.SoundFile(path, "w", RATE, 1, subtype="PCM_16") as out:
        while written < total:
            clip = speech[int(rng.integers(len(speech)))]
            gap = np.zeros(int(rng.uniform(0.5, 2.0) * RATE), np.float32)
            block = np.concatenate([clip, gap])[: total - written]
            out.write(block)
            written += len(block)
    return written / RATE


def timeline_child(model: str, audio: str, threads: int) -> None:
    """Run in a subprocess: one timeline; print its figures as JSON."""
    import torch

    from speecheq import Recognizer, timeline_of

    torch.set_num_threads(threads)
    recognizer = Recognizer.load(model)
    began = time.perf_counter()
    result = timeline_of(recognizer, audio)
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {"seconds": seconds, "duration": result.duration, "peak_mib": peak}
    print(json.dumps({**figures, "segments": len(result.segments)}))


def latency(model: str, threads: int) -> list[list[str]]:
    """ms of network time per second of audio, PyTorch and ONNX Runtime, for a few lengths."""
    import torch

    from speecheq import Recognizer
    from speecheq.inference.export import export_model

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as folder:
        onnx = export_model(model, Path(folder) / "model.onnx", "onnx")
        engines = {"PyTorch": Recognizer.load(model), "ONNX Runtime": Recognizer.load(onnx)}
        rows = []
        for seconds in (1, 3, 10, 30):
            signal = np.concatenate(utterances(40))[: seconds * RATE]
            feats = engines["PyTorch"].features(signal, RATE, "bench")
            row = [f"{seconds} s"]
            for engine in engines.values():
                engine.predict_features([feats])  # warm up
                runs, began = 0, time.perf_counter()
                while time.perf_counter() - began < 2.0:
                    engine.predict_features([feats])
                    runs += 1
                per_call = (time.perf_counter() - began) / runs
                row.append(f"{1000 * per_call / seconds:.2f}")
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a model file of speecheq train")
    parser.add_argument("--minutes", default="10,60", help="recording lengths [10,60]")
    parser.add_argument("--threads", type=int, default=1, help="torch threads [1]")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        timeline_child(args.model, args.child[0], args.threads)
        return
    from speecheq.console import print_table

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for minutes in (float(m) for m in args.minutes.split(",")):
            audio = Path(folder) / f"long_{minutes:g}.wav"
            write_recording(audio, minutes)
            command = [sys.executable, __file__, args.model, "--threads", str(args.threads)]
            done = subprocess.run(
                [*command, "--child", str(audio), "-"], capture_output=True, text=True, check=True
            )
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            speed = figures["duration"] / figures["seconds"]
            rows.append(
                [
                    f"{minutes:g} min",
                    str(figures["segments"]),
                    f"{figures['seconds']:.1f}",
                    f"{speed:.0f}",
                    f"{figures['peak_mib']:.0f}",
                ]
            )
    source = "CASIA utterances" if CASIA.is_dir() else "a synthetic voiced signal (no CASIA)"
    print_table(
        f"timeline of a long recording of {source} ({args.threads} thread(s))",
        ["recording", "segments", "seconds", "x real time", "peak RSS (MiB)"],
        rows,
    )
    print_table(
        f"network latency, ms per second of audio ({args.threads} thread(s), batch of 1)",
        ["utterance", "PyTorch", "ONNX Runtime"],
        latency(args.model, args.threads),
    )


if __name__ == "__main__":
    main()
