"""Benchmark stage 2 against kaldi-native-fbank on the same audio, and compare the features.

Usage: tools/venv/bin/python tools/bench_feats.py [DATA_DIR] [--limit N]

Audio: the wav.scp files of DATA_DIR if given; otherwise the real CASIA corpus in
../shared/corpora/casia (relative to the repository root) when present; otherwise generated
noise files. Both pipelines run end to end on one core (read audio, compute, write ark/scp):
speecheq's ``make_feats`` with nj=1, and a loop that reads with soundfile, computes with
``knf.OnlineFbank`` on the same options and writes with kaldiio. Prints x real time per core
for each, the max absolute difference between their features (and the share of values that
differ by more than 1e-3), and whether speecheq meets the 500x target. Both compute in float32:
in near-silent frames the lowest mel bins hold a tiny share of the frame's energy, and FFT
rounding moves their logs by up to a few 1e-2 in either implementation, while typical
differences are about 1e-4. Exits 1 when the target is missed or the features differ by more
than 0.1 anywhere (different options give differences of order 1).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import kaldi_native_fbank as knf
import kaldiio
import numpy as np
import soundfile
import torch

from speecheq.audio import is_pipe, read_audio
from speecheq.console import print_table
from speecheq.data.datadir import DataDir
from speecheq.features import FeatureConfig, compute_features, make_feats

ROOT = Path(__file__).resolve().parents[1]
CASIA = ROOT.parent / "shared" / "corpora" / "casia"
TARGET = 500.0
MAX_DIFFERENCE = 0.1


def bench_data(data_dir: Path | None, scratch: Path) -> DataDir:
    """The audio to run on: a data dir's, CASIA's, or generated noise (4 speakers)."""
    if data_dir is not None:
        data = DataDir.load(data_dir)
        pipes = [utt for utt, spec in data.get("wav.scp").items() if is_pipe(spec)]
        if pipes:
            sys.exit(f"bench_feats: '{pipes[0]}' is a pipe; the benchmark needs audio files")
        return DataDir({"wav.scp": data.get("wav.scp"), "utt2spk": data.utt2spk})
    wav, utt2spk = {}, {}
    if CASIA.is_dir():
        for path in sorted(CASIA.glob("*/*/*.wav")):
            speaker, emotion = path.parts[-3:-1]
            utt = f"{speaker}-{emotion}-{path.stem}"
            wav[utt], utt2spk[utt] = str(path), speaker
        return DataDir({"wav.scp": wav, "utt2spk": utt2spk})
    rng = np.random.default_rng(0)
    for index in range(200):
        speaker, utt = f"noise{index % 4}", f"noise{index % 4}-{index:03d}"
        path = scratch / "noise" / f"{utt}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        seconds = rng.uniform(1.0, 5.0)
        soundfile.write(path, 0.1 * rng.standard_normal(int(16000 * seconds)), 16000, "PCM_16")
        wav[utt], utt2spk[utt] = str(path), speaker
    return DataDir({"wav.scp": wav, "utt2spk": utt2spk})


def knf_options(config: FeatureConfig) -> knf.FbankOptions:
    """kaldi-native-fbank options equal to ``config`` (the options this benchmark uses)."""
    options = knf.FbankOptions()
    frame = options.frame_opts
    frame.samp_freq = config.sample_frequency
    frame.frame_length_ms = config.frame_length
    frame.frame_shift_ms = config.frame_shift
    frame.dither = config.dither
    frame.preemph_coeff = config.preemphasis_coefficient
    frame.remove_dc_offset = config.remove_dc_offset
    frame.window_type = config.window_type
    frame.round_to_power_of_two = config.round_to_power_of_two
    frame.blackman_coeff = config.blackman_coeff
    frame.snip_edges = config.snip_edges
    mel = options.mel_opts
    mel.num_bins = config.num_mel_bins
    mel.low_freq = config.low_freq
    mel.high_freq = config.high_freq
    mel.vtln_low = config.vtln_low
    mel.vtln_high = config.vtln_high
    options.use_energy = config.use_energy
    options.energy_floor = config.energy_floor
    options.raw_energy = config.raw_energy
    options.htk_compat = config.htk_compat
    options.use_log_fbank = config.use_log_fbank
    options.use_power = config.use_power
    return options


def run_knf(files: dict[str, str], config: FeatureConfig, out: Path) -> float:
    """The same job with kaldi-native-fbank; returns the wall time in seconds."""
    options = knf_options(config)
    start = time.perf_counter()
    with kaldiio.WriteHelper(f"ark,scp:{out / 'feats.ark'},{out / 'feats.scp'}") as writer:
        for utt, path in sorted(files.items()):
            samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
            extractor = knf.OnlineFbank(options)
            extractor.accept_waveform(rate, samples.mean(axis=1) * 32768)
            extractor.input_finished()
            feats = np.stack([extractor.get_frame(i) for i in range(extractor.num_frames_ready)])
            writer(utt, feats)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path, help="a data directory (wav.scp)")
    parser.add_argument("--limit", type=int, help="use only the first N utterances")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = FeatureConfig()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        data = bench_data(args.data_dir, scratch)
        data = data.subset(data.utts[: args.limit])
        files = data.get("wav.scp")
        rates = {soundfile.info(path).samplerate for path in files.values()}
        if rates != {int(config.sample_frequency)}:
            sys.exit(f"bench_feats: the audio must be at {config.sample_frequency:g} Hz")
        ours = scratch / "ours"
        data.save(ours)
        warm_up = next(iter(files.values()))
        compute_features(*read_audio(warm_up), config)
        report = make_feats(ours, config, nj=1)
        (scratch / "knf").mkdir()
        knf_seconds = run_knf(files, config, scratch / "knf")
        reference = kaldiio.load_scp(str(scratch / "knf" / "feats.scp"))
        difference, values, above = 0.0, 0, 0
        for utt, feats in kaldiio.load_scp_sequential(str(ours / "feats.scp")):
            other = reference[utt]
            if other.shape != feats.shape:
                sys.exit(
                    f"bench_feats: '{utt}' has {feats.shape} frames here, {other.shape} in knf"
                )
            gap = np.abs(feats - other)
            difference = max(difference, float(gap.max()))
            values, above = values + gap.size, above + int((gap > 1e-3).sum())
    audio = report.seconds
    print_table(
        f"{len(files)} utterances, {audio / 3600:.3f} h of audio, one core",
        ["pipeline", "wall time (s)", "x real time per core"],
        [
            (
                "speecheq (torchaudio)",
                f"{report.wall_seconds:.2f}",
                f"{report.real_time_factor:.0f}",
            ),
            ("kaldi-native-fbank", f"{knf_seconds:.2f}", f"{audio / knf_seconds:.0f}"),
        ],
    )
    fast = report.real_time_factor >= TARGET
    close = difference <= MAX_DIFFERENCE
    print(
        f"max |speecheq - knf| = {difference:.2e} ({'ok' if close else 'TOO LARGE'}); "
        f"{above / values:.4%} of values differ by more than 1e-3"
    )
    print(f"target {TARGET:.0f}x real time per core: {'met' if fast else 'NOT met'}")
    sys.exit(0 if fast and close else 1)


if __name__ == "__main__":
    main()
