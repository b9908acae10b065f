"""Shared helpers of the training tests: synthetic feature sets, a tiny config, one thread.

The synthetic data directories look as stages 1-3 write them. Each utterance's features are
noise plus a pattern for its emotion, its speaker's gender and its intensity, so small models
separate them in a few epochs; ``tokens`` are random phones.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kaldiio
import numpy as np
import pytest
import soundfile
import torch

from speecheq.config import TrainConfig, config_from_dict
from speecheq.data.datadir import DataDir
from speecheq.fileio import read_table, write_table

PHONES = ("a", "i", "u", "e", "o", "k", "s", "t")

TINY: dict[str, Any] = {
    "model": {
        "encoder": "conformer",
        "d_model": 32,
        "num_layers": 1,
        "num_heads": 2,
        "ffn_dim": 64,
        "subsampling_channels": 8,
        "attention_dim": 16,
        "embedding_dim": 32,
        "dropout": 0.0,
    },
    "features": {"cmvn": "global", "specaugment": {"freq_masks": 0, "time_masks": 0, "warp": 0.0}},
    "optim": {"epochs": 3, "warmup_steps": 2, "lr": 3e-3},
    "batching": {"max_frames": 800},
}
"""A model and schedule small enough to train in a second on a few dozen utterances (a
one-layer Conformer: it learns them in fewer epochs than a one-block ECAPA-TDNN)."""


def tiny(**changes: Any) -> TrainConfig:
    """The :data:`TINY` config with its top-level sections updated by ``changes``."""
    data = {key: dict(value) if isinstance(value, dict) else value for key, value in TINY.items()}
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return config_from_dict(data, "test config")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: the tests' small ops gain nothing from more, and lose much when
    other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_lang(root: Path) -> Path:
    """A lang directory whose tokens.txt holds ``<blank>``, ``<unk>`` and :data:`PHONES`."""
    symbols = ["<blank>", "<unk>", *PHONES]
    write_table(root / "tokens.txt", [(s, str(i)) for i, s in enumerate(symbols)])
    return root


def write_feature_set(
    root: Path,
    *,
    speakers: dict[str, str] | None = None,
    emotions: tuple[str, ...] = ("neutral", "happy", "angry", "sad"),
    per_class: int = 3,
    dim: int = 20,
    frames: tuple[int, int] = (40, 90),
    seed: int = 0,
) -> Path:
    """A data directory at ``root`` with feats.scp/ark, utt2num_frames, cmvn.scp and labels.

    ``speakers`` maps speaker id -> gender (default two speakers, f and m). Intensity is 0 for
    neutral and 1 + (take % 3) otherwise.
    """
    speakers = speakers or {"spk1": "f", "spk2": "m"}
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    tables: dict[str, dict[str, str]] = {
        name: {}
        for name in ("wav.scp", "utt2spk", "utt2emo", "utt2intensity", "tokens", "spk2gender")
    }
    matrices: dict[str, np.ndarray] = {}
    for spk, gender in sorted(speakers.items()):
        tables["spk2gender"][spk] = gender
        for emo_index, emotion in enumerate(emotions):
            for take in range(per_class):
                utt = f"{spk}-{emotion}-{take:02d}"
                intensity = 0 if emotion == "neutral" else 1 + take % 3
                feats = rng.normal(0.0, 1.0, (int(rng.integers(*frames)), dim))
                feats[:, emo_index % dim] += 3.0
                feats[:, (emo_index + len(emotions)) % dim] += 1.5 * intensity
                feats[:, dim - 4 : dim - 1] += 3.0 if gender == "f" else -3.0
                matrices[utt] = (feats + 5.0).astype(np.float32)
                phones = rng.choice(PHONES, size=int(rng.integers(2, 6)))
                tables["wav.scp"][utt] = f"{root}/{utt}.wav"
                tables["utt2spk"][utt] = spk
                tables["utt2emo"][utt] = emotion
                tables["utt2intensity"][utt] = str(intensity)
                tables["tokens"][utt] = " ".join(phones)
    with kaldiio.WriteHelper(f"ark,scp:{root}/feats.ark,{root}/feats.scp") as writer:
        for utt in sorted(matrices):
            writer(utt, matrices[utt])
    with kaldiio.WriteHelper(f"ark,scp:{root}/cmvn.ark,{root}/cmvn.scp") as writer:
        for spk in sorted(speakers):
            feats = np.concatenate([m for u, m in matrices.items() if u.startswith(spk)])
            stats = np.zeros((2, dim + 1))
            stats[0, :dim], stats[1, :dim], stats[0, dim] = (
                feats.sum(0),
                (feats**2).sum(0),
                len(feats),
            )
            writer(spk, stats)
    tables["feats.scp"] = read_table(root / "feats.scp")
    tables["cmvn.scp"] = read_table(root / "cmvn.scp")
    tables["utt2num_frames"] = {utt: str(len(m)) for utt, m in matrices.items()}
    DataDir(tables, {"feats.conf": f"--num-mel-bins={dim}\n"}).save(root)
    return root


RATE = 16000
AUDIO_SPEAKERS = {"spk1": "f", "spk2": "m"}
AUDIO_EMOTIONS = {"neutral": "0", "happy": "2", "angry": "3", "sad": "1"}
"""The emotions of :func:`write_audio_data`, with each one's intensity level."""


def speech(seconds: float, seed: int) -> np.ndarray:
    """``seconds`` of synthesised speech (eSpeak NG, as the mini recipe's corpus), the same on
    every machine: utterance ``seed`` of the mini corpus's plan, then the following ones until
    it is long enough, with their leading silence trimmed."""
    parts, total, index = [], 0, seed
    while total < int(seconds * RATE):
        parts.append(_synthesised(index))
        total += len(parts[-1])
        index += 1
    return np.concatenate(parts)[: int(seconds * RATE)]


@functools.cache
def _synthesised(index: int) -> np.ndarray:
    """Utterance ``index`` of the mini corpus's plan as float samples, from its first sound."""
    from speecheq.synth.corpus import plan_corpus, render_audio
    from speecheq.synth.espeak import EspeakProcess

    with EspeakProcess() as engine:
        samples = render_audio(engine, plan_corpus(index + 1, seed=0)[index]) / 32768.0
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    return samples[loud[0] :].astype(np.float32)


def write_audio_data(root: Path) -> Path:
    """A data directory at ``root/data`` of 8 utterances (2 speakers x 4 emotions, with
    intensities and genders) whose audio is under ``root/wav``."""
    tables: dict[str, dict[str, str]] = {
        name: {} for name in ("wav.scp", "utt2spk", "utt2emo", "utt2intensity")
    }
    for index, (spk, emotion) in enumerate((s, e) for s in AUDIO_SPEAKERS for e in AUDIO_EMOTIONS):
        utt = f"{spk}-{emotion}"
        wav = root / "wav" / f"{utt}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(wav, speech(1.0, index), RATE, subtype="PCM_16")
        tables["wav.scp"][utt] = str(wav)
        tables["utt2spk"][utt], tables["utt2emo"][utt] = spk, emotion
        tables["utt2intensity"][utt] = AUDIO_EMOTIONS[emotion]
    tables["spk2gender"] = dict(AUDIO_SPEAKERS)
    DataDir(tables).save(root / "data")
    return root / "data"
