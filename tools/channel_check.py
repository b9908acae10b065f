#!/usr/bin/env python3
"""Emotion UA of a recipe's fold models on their held-out speakers: each speaker's clips
normalised together (as the folds are scored), one clip at a time by the training speakers'
statistics (as ``speecheq infer`` without ``--utt2spk``) or by the clip's own, on the corpus's
own channel or on a telephone-like one (300-3400 Hz, through 8 kHz and back, 12 dB quieter).

    tools/venv/bin/python tools/channel_check.py egs/casia exp/train/seed0

Each fold's model (``EXP/<fold>/model.pt``) recognises its fold's test clips
(``data/folds/<fold>/test``) through the Recognizer, as ``speecheq infer`` does with and
without ``--utt2spk``; printed: each fold's UA and the mean over folds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as audio_functional

from speecheq import Recognizer
from speecheq.audio import read_audio
from speecheq.data.folds import fold_names
from speecheq.features.cmvn import utterance_stats
from speecheq.fileio import read_table
from speecheq.metrics import unweighted_accuracy

CHANNELS = ("own", "telephone")
MODES = ("together", "lone", "own stats")


def telephone(samples: np.ndarray, rate: int) -> np.ndarray:
    """The samples band-limited to 300-3400 Hz, taken through 8 kHz and back, 12 dB quieter."""
    signal = torch.from_numpy(samples).float()[None]
    signal = audio_functional.highpass_biquad(signal, rate, 300.0)
    signal = audio_functional.lowpass_biquad(signal, rate, 3400.0)
    signal = audio_functional.resample(audio_functional.resample(signal, rate, 8000), 8000, rate)
    return (signal[0] * 10 ** (-12 / 20)).numpy()


def fold_scores(model: Path, test: Path) -> dict[tuple[str, str], float]:
    """UA (%) of ``model`` on the data directory ``test`` for every channel and mode."""
    recognizer = Recognizer.load(model)
    wavs, refs = read_table(test / "wav.scp"), read_table(test / "utt2emo")
    speakers = read_table(test / "utt2spk")
    scores = {}
    for channel in CHANNELS:
        items = []
        for utt, path in wavs.items():
            samples, rate = read_audio(path, utt)
            if channel == "telephone":
                samples = telephone(samples, rate)
            items.append((utt, recognizer.features(samples, rate, utt)))
        found = {
            "together": dict(recognizer.predict_speakers(items, speakers)),
            "lone": dict(recognizer.predict_many(items)),
            "own stats": {
                utt: next(recognizer.predict_many([(utt, feats)], utterance_stats(feats)))[1]
                for utt, feats in items
            },
        }
        for mode in MODES:
            hyps = [found[mode][utt].emotion for utt in wavs]
            scores[channel, mode] = 100 * unweighted_accuracy([refs[u] for u in wavs], hyps)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", type=Path, help="The recipe folder (egs/<corpus>).")
    parser.add_argument("exp", help="The fold models' folder in it, e.g. exp/train/seed0.")
    args = parser.parse_args()
    folds_dir = args.recipe / "data" / "folds"
    folds = fold_names(folds_dir)
    table = {
        fold: fold_scores(args.recipe / args.exp / fold / "model.pt", folds_dir / fold / "test")
        for fold in folds
    }
    print(f"emotion UA (%) of {args.exp}, folds: {' '.join(folds)}")
    for channel in CHANNELS:
        for mode in MODES:
            values = [table[fold][channel, mode] for fold in folds]
            per_fold = " ".join(f"{value:.1f}" for value in values)
            print(f"{channel:>9} channel, {mode:>9}: {np.mean(values):5.1f}  ({per_fold})")


if __name__ == "__main__":
    main()
