"""Shared fixtures: tiny data directories with real audio, and the real corpora when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from speecheq.data.datadir import DataDir

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


def corpus_dir(name: str) -> Path:
    """The real corpus ``name`` in ../shared/corpora, or skip the test if it is absent."""
    path = CORPORA / name
    if not path.is_dir():
        pytest.skip(f"real corpus not available: {path} is absent")
    return path


def write_tone(path: Path, seconds: float = 0.5, rate: int = 16000, freq: float = 220.0) -> Path:
    """Write a short sine tone as 16-bit PCM WAV."""
    t = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * freq * t), rate, subtype="PCM_16")
    return path


def make_datadir(
    root: Path,
    speakers: dict[str, str] | None = None,
    emotions: tuple[str, ...] = ("neutral", "happy", "angry", "sad"),
    per_emotion: int = 2,
) -> DataDir:
    """A labelled data directory (in memory) over real WAV files written under ``root``.

    ``speakers`` maps speaker id -> gender (default: two of each).
    """
    speakers = speakers or {"spk1": "f", "spk2": "m", "spk3": "f", "spk4": "m"}
    tables: dict[str, dict[str, str]] = {
        name: {} for name in ("wav.scp", "utt2spk", "utt2emo", "spk2gender")
    }
    for spk_index, (spk, gender) in enumerate(sorted(speakers.items())):
        tables["spk2gender"][spk] = gender
        for emo_index, emotion in enumerate(emotions):
            for take in range(per_emotion):
                utt = f"{spk}-{emotion}-{take}"
                freq = 150.0 + 40 * emo_index + 10 * spk_index + take
                wav = write_tone(root / "wav" / f"{utt}.wav", freq=freq)
                tables["wav.scp"][utt] = str(wav)
                tables["utt2spk"][utt] = spk
                tables["utt2emo"][utt] = emotion
    return DataDir(tables)


@pytest.fixture
def datadir(tmp_path: Path) -> Path:
    """A valid data directory on disk: 4 speakers x 4 emotions x 2 utterances."""
    path = tmp_path / "data" / "all"
    make_datadir(tmp_path).save(path)
    return path


@pytest.fixture(scope="session")
def audio_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a data directory of real audio (``data``, features computed, 40 mel bins),
    its config (``train.yaml``) and a tiny model trained on it (``exp/model.pt``: emotion,
    intensity and gender)."""
    import torch
    import yaml

    from speecheq.config import config_from_dict
    from speecheq.features import FeatureConfig, make_feats
    from speecheq.train import train
    from tests.synthetic import TINY, write_audio_data

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("audio_model")
    data = write_audio_data(root)
    make_feats(data, FeatureConfig(num_mel_bins=40))
    tasks = {"emotion": {}, "intensity": {}, "gender": {}}
    features = {**TINY["features"], "cmvn": "global"}  # a file and a data directory alike
    optim = {**TINY["optim"], "epochs": 1}
    model = {**TINY["model"], "encoder": "ecapa"}  # the default encoder, exported and streamed
    config = config_from_dict(
        {**TINY, "model": model, "features": features, "optim": optim, "tasks": tasks}, "test"
    )
    (root / "train.yaml").write_text(yaml.safe_dump(config.to_dict()))
    train(config, data, data, root / "exp")
    torch.set_num_threads(threads)
    return root


CASIA_HELD_OUT = "liuchanhg"
"""The speaker the ``casia_model`` never hears (CASIA fold 3); the other three train it."""
CASIA_EPOCHS = 24
"""The ``casia_model``'s budget: the recipe's config (the defaults) but for this (41-46 s of
training on two cores with the defaults, seeds 0-2)."""


@pytest.fixture(scope="session")
def casia_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stages 1-5 on real CASIA with the recipe's config, on a short budget: three speakers
    train (sentences 201-225 of each emotion; 246-250 validate), the held-out speaker's 300
    utterances are decoded and scored. Returns the folder: ``exp/model.pt``, ``exp/scores``."""
    import subprocess
    import sys

    corpus = corpus_dir("casia")
    root = tmp_path_factory.mktemp("casia_model")
    speecheq = str(Path(sys.executable).parent / "speecheq")

    def run(*words: object) -> None:
        done = subprocess.run([speecheq, *map(str, words)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]

    run("prepare", "casia", "--corpus-dir", corpus, root / "all")
    run("feats", root / "all", "--nj", 2)
    run("lexicon", root / "all", root / "lang")
    data = DataDir.load(root / "all")
    sentence = {utt: int(utt.rsplit("-", 1)[1]) for utt in data.utts}
    speaker = data.utt2spk
    parts = {
        "train": [u for u in data.utts if speaker[u] != CASIA_HELD_OUT and sentence[u] <= 225],
        "valid": [u for u in data.utts if speaker[u] != CASIA_HELD_OUT and sentence[u] > 245],
        "test": [u for u in data.utts if speaker[u] == CASIA_HELD_OUT],
    }
    for part, utts in parts.items():
        data.subset(utts).save(root / part)
    recipe = Path(__file__).resolve().parents[1] / "egs" / "casia" / "conf" / "train.yaml"
    exp = root / "exp"
    run("train", "--config", recipe, "--set", f"optim.epochs={CASIA_EPOCHS}", "--train-dir",
        root / "train", "--valid-dir", root / "valid", "--exp-dir", exp, "--lang-dir",
        root / "lang")  # fmt: skip
    run("predict", exp / "model.pt", root / "test", exp / "decode")
    run("score", exp / "decode", "--out-dir", exp / "scores")
    return root
