"""Prediction into decode directories, and inference on raw audio files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from speecheq.cli.main import app
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.fileio import read_table, write_table
from speecheq.predict import predict
from speecheq.scoring.decode_dir import read_decode_dir
from speecheq.train.trainer import train
from tests.synthetic import one_thread, tiny, write_feature_set, write_lang  # noqa: F401


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(model file, root): a tiny four-task model whose class map merges excited into happy."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("predict")
    train_dir = write_feature_set(root / "train", per_class=3)
    lang_dir = write_lang(root / "lang")
    config = tiny(labels={"merge": {"excited": "happy"}}, optim={"epochs": 1})
    train(config, train_dir, train_dir, root / "exp", lang_dir)
    return root / "exp" / "model.pt", root


def test_predict_writes_the_decode_directory(trained: tuple[Path, Path]) -> None:
    model, root = trained
    test_dir = write_feature_set(
        root / "test",
        speakers={"spk7": "m", "spk8": "f"},
        emotions=("neutral", "excited", "frustrated", "sad"),
        per_class=2,
        seed=7,
    )
    utt2emo = read_table(test_dir / "utt2emo")
    unlabeled = sorted(utt2emo)[0]
    del utt2emo[unlabeled]
    write_table(test_dir / "utt2emo", utt2emo)
    out = root / "decode"
    (out / "hyp").mkdir(parents=True)
    (out / "hyp" / "utt2nat").write_text("stale acted\n")

    summaries = predict(model, test_dir, out, device="cpu")

    utts = DataDir.load(test_dir).utts
    assert (out / "classes").read_text().split() == ["neutral", "happy", "angry", "sad"]
    assert sorted(p.name for p in (out / "hyp").iterdir()) == [
        "tokens",
        "utt2emo",
        "utt2emo.post",
        "utt2gender",
        "utt2intensity",
    ]
    for name in ("utt2emo", "utt2emo.post", "utt2gender", "utt2intensity"):
        assert sorted(read_table(out / "hyp" / name)) == utts
    posteriors = read_table(out / "hyp" / "utt2emo.post")
    assert all(abs(sum(map(float, p.split())) - 1) < 1e-3 for p in posteriors.values())
    assert set(read_table(out / "hyp" / "utt2emo").values()) <= {"neutral", "happy", "angry", "sad"}

    ref = read_table(out / "ref" / "utt2emo")
    assert unlabeled not in ref
    assert not any("frustrated" in utt for utt in ref)  # dropped by the class map
    assert all(ref[u] == "happy" for u in ref if "excited" in u)  # merged
    assert read_table(out / "ref" / "utt2gender") == {
        u: "m" if u.startswith("spk7") else "f" for u in utts
    }
    assert read_table(out / "ref" / "tokens") == read_table(test_dir / "tokens")
    assert read_table(out / "ref" / "utt2intensity") == read_table(test_dir / "utt2intensity")

    decoded = read_decode_dir(out)  # what 'speecheq score' reads
    assert set(decoded.pairs) == {"emotion", "intensity", "gender", "phone"}
    assert len(decoded.pairs["emotion"].utts) == len(ref)
    by_task = {s.task: s for s in summaries}
    assert by_task["emotion"].hypotheses == len(utts)
    assert by_task["emotion"].references == len(ref)
    assert set(by_task["emotion"].scores) == {
        f"{scale} {metric}" for scale in ("emotion", "sentiment") for metric in ("WA", "UA", "F1")
    }


def test_predict_command_and_its_errors(trained: tuple[Path, Path], tmp_path: Path) -> None:
    model, root = trained
    result = CliRunner().invoke(
        app, ["predict", str(model), str(root / "train"), str(tmp_path / "out"), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert "utt2emo" in result.output and "UA" in result.output
    with pytest.raises(SpeechEQError, match="not-a-model.pt: model file does not exist"):
        predict(tmp_path / "not-a-model.pt", root / "train", tmp_path / "out")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(SpeechEQError, match="junk.pt: cannot read this model file"):
        predict(tmp_path / "junk.pt", root / "train", tmp_path / "out")
