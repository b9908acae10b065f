#!/usr/bin/env python3
"""Upstream feature extraction: ``speecheq feats --type ssl`` against a plain loop that calls
the ``transformers`` model on one utterance at a time, on the same files, side by side.

    tools/venv/bin/python tools/bench_ssl.py [--utterances 96] [--nj 1,2] [--device cpu]
        [--dtype float16] [--upstream DIR]

Without --upstream, a checkpoint with WavLM-large's real-size config (24 layers, 1024 wide,
random weights: speed does not depend on them) is written to a temporary folder. The audio is
real CASIA speech from ../shared/corpora when it is there, else a synthetic voiced signal.
Each contender runs in its own process, timed from start to end (imports, loading the model,
reading the audio, and for speecheq writing the features); the peak resident memory is that of
the process and its workers together, sampled from /proc (Linux). The plain loop keeps every
layer's hidden states, as the features do, but writes nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]
CASIA = ROOT.parent / "shared" / "corpora" / "casia"


def wavlm_large(path: Path) -> Path:
    """A random checkpoint with WavLM-large's config (layer-normalised feature encoder)."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.WavLMConfig(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        conv_bias=False,
    )
    transformers.AutoModel.from_config(config).save_pretrained(path)
    (path / "preprocessor_config.json").write_text(
        json.dumps({"sampling_rate": 16000, "do_normalize": True, "return_attention_mask": True})
    )
    return path


def write_data(root: Path, count: int) -> tuple[Path, float]:
    """A data directory of ``count`` utterances; its seconds of audio."""
    files = sorted(CASIA.glob("*/*/2*.wav"))[:: max(1, 1200 // count)][:count]
    wav, utt2spk, seconds = {}, {}, 0.0
    for index in range(count):
        if files:
            samples, rate = soundfile.read(files[index], dtype="float32")
        else:
            rate = 16000
            t = np.arange(int((1.5 + index % 4) * rate)) / rate
            samples = (0.2 * np.sin(2 * np.pi * (100 + 5 * index) * t)).astype(np.float32)
        path = root / "wav" / f"u{index:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, samples, rate)
        utt = f"spk{index % 2}-u{index:03d}"
        wav[utt], utt2spk[utt] = str(path), f"spk{index % 2}"
        seconds += len(samples) / rate
    data = root / "data"
    data.mkdir()
    (data / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in sorted(wav.items())))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    return data, seconds


def plain_loop(upstream: str, data: str, device: str) -> None:
    """Run in a subprocess: the transformers model on each utterance alone."""
    import torch
    import transformers

    model = transformers.AutoModel.from_pretrained(upstream, local_files_only=True).to(device)
    model.eval()
    extractor = transformers.AutoFeatureExtractor.from_pretrained(upstream, local_files_only=True)
    for line in Path(data, "wav.scp").read_text().splitlines():
        samples, rate = soundfile.read(line.split()[1], dtype="float32")
        inputs = extractor(samples, sampling_rate=rate, return_tensors="pt")
        with torch.no_grad():
            hidden = model(inputs.input_values.to(device), output_hidden_states=True).hidden_states
        np.stack([h[0].cpu().numpy() for h in hidden]).astype(np.float16)


def speecheq_feats(upstream: str, data: str, device: str, nj: int, dtype: str) -> None:
    """Run in a subprocess: stage 2 with the upstream."""
    from speecheq.features import SSLConfig, make_feats

    make_feats(data, SSLConfig.create(Path(upstream), dtype=dtype), nj=nj, device=device)


def tree_rss(root: int) -> int:
    """Resident bytes of process ``root`` and all its descendants."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, grew = {root}, True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= found
        grew = bool(found)
    total = 0
    for pid in tree:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        rss = [line for line in status.splitlines() if line.startswith("VmRSS")]
        total += int(rss[0].split()[1]) if rss else 0
    return total * 1024


def measure(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MiB (with descendants) of a command."""
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss(process.pid))
        time.sleep(0.1)
    seconds = time.perf_counter() - began
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr.read().decode()}")
    return seconds, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=96, help="[96]")
    parser.add_argument("--nj", default="1,2", help="speecheq feats jobs, one run each [1,2]")
    parser.add_argument("--device", default="cpu", help="cpu or cuda [cpu]")
    parser.add_argument("--dtype", default="float16", help="speecheq's storage [float16]")
    parser.add_argument("--upstream", help="a checkpoint [a random WavLM-large]")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        which, upstream, data = args.child
        if which == "plain":
            plain_loop(upstream, data, args.device)
        else:
            speecheq_feats(upstream, data, args.device, int(args.nj), args.dtype)
        return
    from speecheq.console import print_table

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        upstream = Path(args.upstream) if args.upstream else wavlm_large(root / "wavlm-large")
        data, audio = write_data(root, args.utterances)
        contenders = [("plain", "1", "plain loop, one utterance at a time")]
        for nj in args.nj.split(","):
            contenders.append(("speecheq", nj, f"speecheq feats --type ssl --nj {nj}"))
        rows = []
        for which, nj, label in contenders:
            copy = shutil.copytree(data, root / f"data-{which}-{nj}")  # no jobs to resume
            command = [sys.executable, __file__, "--device", args.device, "--nj", nj]
            command += ["--dtype", args.dtype, "--child", which, str(upstream), str(copy)]
            seconds, peak = measure(command)
            speed = audio / seconds
            rows.append([label, f"{seconds:.1f}", f"{speed:.2f}", f"{peak:.0f}"])
    print_table(
        f"{upstream.name}: {args.utterances} utterances, {audio:.0f} s of audio, {args.device}",
        ["extraction", "seconds", "x real time", "peak RSS (MiB)"],
        rows,
    )
    for row in rows[1:]:
        print(f"{row[0]} / plain loop: {float(rows[0][1]) / float(row[1]):.2f}x faster")


if __name__ == "__main__":
    main()
