"""Corpus preparers on the real corpora in ../shared/corpora (skipped where they are absent)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from speecheq.corpora import prepare
from speecheq.data.datadir import DataDir, validate
from speecheq.data.folds import split_folds
from tests.conftest import corpus_dir, write_tone

EGS = Path(__file__).resolve().parents[1] / "egs"

pytestmark = pytest.mark.corpora


def prepared(name: str, out: Path) -> DataDir:
    data = prepare(name, corpus_dir(name))
    data.save(out)
    assert [str(p) for p in validate(out)] == []
    return DataDir.load(out)


def assert_leave_one_speaker_out(data: DataDir, test_size: int | None = None) -> None:
    folds = split_folds(data)
    assert [fold.test.speakers for fold in folds] == [[spk] for spk in data.speakers]
    for fold in folds:
        assert not set(fold.test.speakers) & (set(fold.train.speakers) | set(fold.valid.speakers))
        assert test_size is None or len(fold.test.utts) == test_size
    assert sorted(utt for fold in folds for utt in fold.test.utts) == data.utts


def test_casia(tmp_path: Path) -> None:
    data = prepared("casia", tmp_path / "casia")
    assert len(data.utts) == 1200 and len(data.speakers) == 4
    assert Counter(data.get("utt2emo").values()) == {
        emotion: 200 for emotion in ("angry", "fear", "happy", "neutral", "sad", "surprise")
    }
    assert Counter(data.get("spk2gender").values()) == {"m": 2, "f": 2}
    assert len(data.get("text")) == 1200
    assert data.get("text")["liuchanhg-angry-201"] == "就是下雨也去。"
    assert_leave_one_speaker_out(data, test_size=300)
    emobox = split_folds(data, by="table", table=EGS / "casia" / "conf" / "folds.txt")
    assert [fold.test.speakers for fold in emobox] == [
        ["wangzhe"],
        ["ZhaoZuoxiang"],
        ["liuchanhg"],
        ["zhaoquanyin"],
    ]
    assert all(fold.speaker_independent and len(fold.test.utts) == 300 for fold in emobox)


def test_emodb(tmp_path: Path) -> None:
    data = prepared("emodb", tmp_path / "emodb")
    assert len(data.utts) == 535 and len(data.speakers) == 10
    assert Counter(data.get("utt2emo").values()) == {
        "angry": 127,
        "boredom": 81,
        "disgust": 46,
        "fear": 69,
        "happy": 71,
        "sad": 62,
        "neutral": 79,
    }
    assert Counter(data.get("spk2gender").values()) == {"m": 5, "f": 5}
    assert len(data.get("text")) == 535
    assert_leave_one_speaker_out(data)


def test_esd_reads_a_real_transcript(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    transcript = corpus_dir("esd-transcripts") / "0001.txt"
    corpus = tmp_path / "esd"
    (corpus / "0001").mkdir(parents=True)
    (corpus / "0001" / "0001.txt").write_bytes(transcript.read_bytes())
    tone = write_tone(tmp_path / "tone.wav", seconds=0.05).read_bytes()
    folders = ("Neutral", "Angry", "Happy", "Sad", "Surprise")
    for number in range(1, 1751, 7):
        wav = corpus / "0001" / folders[(number - 1) // 350] / f"0001_{number:06d}.wav"
        wav.parent.mkdir(exist_ok=True)
        wav.write_bytes(tone)
    data = prepare("esd", corpus)
    assert "transcript" not in capsys.readouterr().err  # every line read, none disagreeing
    assert len(data.get("text")) == len(data.utts) == 250
    assert data.get("text")["0001_000001"] == "打远一看，它们的确很是美丽，"
    assert set(data.get("utt2lang").values()) == {"zh"}


def test_short_multitask_training_on_real_casia(tmp_path: Path) -> None:
    """Stages 1-5 on a subset of real CASIA: one speaker trains, another validates and tests."""
    corpus = corpus_dir("casia")
    speecheq = str(Path(sys.executable).parent / "speecheq")

    def run(*words: object) -> None:
        done = subprocess.run([speecheq, *map(str, words)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]

    run("prepare", "casia", "--corpus-dir", corpus, tmp_path / "all")
    run("lexicon", tmp_path / "all", tmp_path / "lang")
    for part, speaker in (("train", "liuchanhg"), ("valid", "wangzhe")):
        run("data", "subset", tmp_path / "all", tmp_path / speaker, "--speakers", speaker)
        run("data", "subset", tmp_path / speaker, tmp_path / part, "--per-class", 8)
        run("feats", tmp_path / part, "--nj", 1)
    config = tmp_path / "train.yaml"
    config.write_text(
        "labels: {classes: [neutral, happy, angry, sad, fear, surprise]}\n"
        "model: {d_model: 48, num_layers: 1, num_heads: 2, ffn_dim: 96}\n"
        "optim: {epochs: 3, warmup_steps: 3}\n"
        "tasks: {emotion: {weight: 1.0}, phone: {weight: 0.1}, gender: {weight: 0.3}}\n",
        encoding="utf-8",
    )
    exp = tmp_path / "exp"
    run("train", "--config", config, "--train-dir", tmp_path / "train", "--valid-dir",
        tmp_path / "valid", "--exp-dir", exp, "--lang-dir", tmp_path / "lang")  # fmt: skip
    metrics = list(csv.DictReader((exp / "metrics.csv").open(encoding="utf-8")))
    assert len(metrics) == 3
    assert float(metrics[-1]["train_loss"]) < float(metrics[0]["train_loss"])
    run("predict", exp / "model.pt", tmp_path / "valid", exp / "decode")
    run("score", exp / "decode", "--out-dir", exp / "scores")
    scores = json.loads((exp / "scores" / "scores.json").read_text(encoding="utf-8"))
    assert scores["folds"][0]["utterances"] == 48
    assert {"emotion UA", "gender WA", "phone TER"} <= set(scores["mean"])
