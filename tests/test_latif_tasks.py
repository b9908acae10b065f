"""Latif et al.'s tasks: speaker (AAM-softmax), dimensional emotion (CCC), label fractions."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from speecheq.cli.main import app
from speecheq.config import config_from_dict
from speecheq.data.datadir import DataDir
from speecheq.data.ops import label_fraction
from speecheq.data.tables import EMOTION_TABLES
from speecheq.errors import SpeechEQError
from speecheq.fileio import read_table, write_table
from speecheq.metrics import concordance_cc
from speecheq.models import Dims, Encoded
from speecheq.predict import predict
from speecheq.tasks.dimensional import DimensionalOptions, DimensionalTask, concordance_loss
from speecheq.tasks.speaker import SpeakerOptions, SpeakerTask, aam_logits
from speecheq.train.trainer import train
from tests.synthetic import one_thread, tiny, write_feature_set  # noqa: F401

# --- dimensional emotion --------------------------------------------------------------------


def reference_ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Lin's concordance correlation coefficient, written out."""
    covariance = np.mean((x - x.mean()) * (y - y.mean()))
    return 2 * covariance / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_ccc_loss_and_metric_equal_the_reference_formula_on_random_data() -> None:
    rng = np.random.default_rng(0)
    predicted = rng.normal(0.3, 1.2, (50, 3))
    target = 0.6 * predicted + rng.normal(0.0, 0.8, (50, 3))
    reference = [reference_ccc(predicted[:, d], target[:, d]) for d in range(3)]
    assert [concordance_cc(predicted[:, d], target[:, d]) for d in range(3)] == pytest.approx(
        reference, abs=1e-12
    )
    # Masked rows change nothing, even when they are not finite.
    padded_p = np.concatenate([predicted, np.full((7, 3), np.nan)])
    padded_t = np.concatenate([target, rng.normal(size=(7, 3))])
    mask = torch.tensor([True] * 50 + [False] * 7)
    weights = torch.tensor([1.0, 2.0, 1.0])
    p = torch.tensor(padded_p, requires_grad=True)
    loss = concordance_loss(p, torch.tensor(padded_t), mask, weights)
    expected = (1 - reference[0] + 2 * (1 - reference[1]) + 1 - reference[2]) / 4
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    loss.backward()
    assert torch.isfinite(p.grad).all() and (p.grad[50:] == 0).all()
    # No labeled row: a zero that still back-propagates.
    none = concordance_loss(p, torch.tensor(padded_t), torch.zeros(57, dtype=torch.bool), weights)
    assert none.item() == 0.0 and none.requires_grad


def test_dimensional_targets_are_standardised_and_predictions_mapped_back(tmp_path: Path) -> None:
    data = DataDir(
        {
            "wav.scp": {"s-1": "a.wav", "s-2": "b.wav", "s-3": "c.wav"},
            "utt2spk": {"s-1": "s", "s-2": "s", "s-3": "s"},
            "utt2avd": {"s-1": "1 2 3", "s-2": "3 2 5", "s-3": "5 2 4"},
        }
    )
    options = DimensionalOptions()
    task = DimensionalTask(options, DimensionalTask.take_inventory(options, data, None))  # type: ignore[arg-type]
    assert task.mean == pytest.approx([3.0, 2.0, 4.0])
    assert task.std == pytest.approx([math.sqrt(8 / 3), 1.0, math.sqrt(2 / 3)])  # constant: 1
    encoded = task.encode("5 2 4", "here")
    assert encoded == pytest.approx([math.sqrt(1.5), 0.0, 0.0])
    head = torch.tensor([encoded])
    output = type("Output", (), {"heads": {"dimensional": head}})()
    assert task.hypotheses(output)["utt2avd"] == ["5.0000 2.0000 4.0000"]  # type: ignore[arg-type]
    with pytest.raises(SpeechEQError, match="here: expected three finite numbers"):
        task.encode("1 nan 2", "here")
    with pytest.raises(SpeechEQError, match="dimension weights must not be negative nor all"):
        config_from_dict(
            {
                "tasks": {
                    "dimensional": {"arousal_weight": 0, "valence_weight": 0, "dominance_weight": 0}
                }
            },
            "test",
        )


AVD = {
    "neutral": (3.0, 3.0, 3.0),
    "happy": (4.0, 4.5, 3.5),
    "angry": (4.5, 1.5, 4.5),
    "sad": (1.5, 1.5, 2.0),
}


def add_avd(data_dir: Path, seed: int) -> None:
    """utt2avd following each utterance's emotion and intensity, with a little noise."""
    rng = np.random.default_rng(seed)
    utt2emo, intensity = read_table(data_dir / "utt2emo"), read_table(data_dir / "utt2intensity")
    table = {}
    for utt, emotion in utt2emo.items():
        values = np.array(AVD[emotion]) + 0.2 * int(intensity[utt]) + rng.normal(0, 0.1, 3)
        table[utt] = " ".join(f"{v:.2f}" for v in values)
    write_table(data_dir / "utt2avd", table)


def test_dimensional_and_speaker_tasks_end_to_end(tmp_path: Path) -> None:
    """Train dimensional + speaker, decode unseen speakers, score CCC with 'speecheq score'."""
    train_dir = write_feature_set(tmp_path / "train", per_class=4, frames=(30, 60))
    valid_dir = write_feature_set(tmp_path / "valid", per_class=2, frames=(30, 60), seed=1)
    test_dir = write_feature_set(
        tmp_path / "test", speakers={"spk3": "f", "spk4": "m"}, per_class=3, seed=2
    )
    for seed, data_dir in enumerate((train_dir, valid_dir, test_dir)):
        add_avd(data_dir, seed)
    config = tiny(
        tasks={"dimensional": {}, "speaker": {"weight": 0.3}},
        optim={"epochs": 12, "task_weighting": "fixed"},  # the speaker head learns throughout
    )
    result = train(config, train_dir, valid_dir, tmp_path / "exp")
    assert result.history[-1]["valid_speaker_WA"] > 0.5  # valid speakers are training speakers
    assert result.history[-1]["valid_dimensional_CCC"] > 0.5

    summaries = {
        s.task: s for s in predict(tmp_path / "exp" / "model.pt", test_dir, tmp_path / "decode")
    }
    assert summaries["speaker"].hypotheses == 24 and summaries["speaker"].references == 0
    assert set(read_table(tmp_path / "decode" / "hyp" / "utt2spk").values()) <= {"spk1", "spk2"}
    assert not (tmp_path / "decode" / "ref" / "utt2spk").exists()
    ref = read_table(tmp_path / "decode" / "ref" / "utt2avd")
    assert ref == read_table(test_dir / "utt2avd")

    scored = CliRunner().invoke(
        app, ["score", str(tmp_path / "decode"), "--out-dir", str(tmp_path / "scores")]
    )
    assert scored.exit_code == 0, scored.output
    mean = json.loads((tmp_path / "scores" / "scores.json").read_text())["mean"]
    assert mean["arousal CCC"] > 0.5 and mean["valence CCC"] > 0.5
    assert {"arousal r", "arousal MAE", "dominance CCC"} <= set(mean)


# --- speaker --------------------------------------------------------------------------------


def test_aam_softmax_logits_follow_the_angular_margin() -> None:
    rng = torch.Generator().manual_seed(0)
    cosine = torch.rand(64, 5, generator=rng) * 2 - 1
    target = torch.randint(5, (64,), generator=rng)
    margin, scale = 0.3, 20.0
    logits = aam_logits(cosine, target, margin, scale)
    theta = torch.acos(cosine)
    rows = torch.arange(64)
    expected = torch.where(
        theta[rows, target] + margin <= math.pi,
        torch.cos(theta[rows, target] + margin),
        cosine[rows, target] - margin * math.sin(margin),
    )
    assert torch.allclose(logits[rows, target], scale * expected, atol=1e-5)
    others = torch.ones_like(cosine, dtype=torch.bool)
    others[rows, target] = False
    assert torch.allclose(logits[others], scale * cosine[others])
    assert (logits[rows, target] < scale * cosine[rows, target]).all()  # the margin costs
    assert torch.allclose(aam_logits(cosine, target, 0.0, scale), scale * cosine, atol=1e-5)


def test_speaker_inventory_references_and_aam_training(tmp_path: Path, capsys) -> None:
    data = DataDir.load(write_feature_set(tmp_path / "data", speakers={"b": "f", "a": "m"}))
    options = SpeakerOptions(loss="aam", margin=0.2, scale=30.0)
    task = SpeakerTask(options, SpeakerTask.take_inventory(options, data, None))  # type: ignore[arg-type]
    assert task.classes == ["a", "b"]
    other = data.subset(data.utts[:3])
    other.tables["utt2spk"] = {utt: "c" for utt in other.utts}
    assert task.references(other) == {}
    assert (
        "3 of 3 utterances are of speakers the model was not trained on" in capsys.readouterr().err
    )
    with pytest.raises(SpeechEQError, match="test: tasks.speaker.margin must be in"):
        config_from_dict({"tasks": {"speaker": {"margin": 2.0}}}, "test")
    # A tiny model separates the two speakers with the margin.
    config = tiny(tasks={"speaker": {"loss": "aam"}}, optim={"epochs": 4})
    result = train(config, tmp_path / "data", tmp_path / "data", tmp_path / "exp")
    assert result.history[-1]["valid_speaker_UA"] == 1.0
    assert result.history[-1]["train_speaker_loss"] < result.history[0]["train_speaker_loss"]


def test_an_adversarial_speaker_head_reverses_the_gradient_reaching_the_embedding(
    tmp_path: Path,
) -> None:
    data = DataDir.load(write_feature_set(tmp_path / "data", speakers={"b": "f", "a": "m"}))
    options = SpeakerOptions(reversal=0.5)
    task = SpeakerTask(options, SpeakerTask.take_inventory(options, data, None))  # type: ignore[arg-type]
    head = task.build_head(Dims(8, 6)).train()
    embedding = torch.randn(2, 6, requires_grad=True)
    logits = head(Encoded(torch.zeros(2, 1, 8), torch.ones(2), embedding))
    logits[:, 0].sum().backward()
    assert embedding.grad is not None
    plain = torch.autograd.grad(head.classifier(embedding)[:, 0].sum(), embedding)[0]
    torch.testing.assert_close(embedding.grad, -0.5 * plain)
    with pytest.raises(SpeechEQError, match="adversarial speaker head takes loss: softmax"):
        config_from_dict({"tasks": {"speaker": {"loss": "aam", "reversal": 1.0}}}, "test")


# --- label-fraction subsets -----------------------------------------------------------------


def labeled_set(speakers: int = 3, per_class: int = 10) -> DataDir:
    """Speakers x 4 classes x ``per_class`` utterances, with emotion, intensity and AVD labels,
    and two utterances without any emotion label."""
    tables: dict[str, dict[str, str]] = {
        name: {} for name in ("wav.scp", "utt2spk", "utt2emo", "utt2intensity", "utt2avd")
    }
    for s in range(speakers):
        spk = f"spk{s}"
        for emotion in ("neutral", "happy", "angry", "sad"):
            for take in range(per_class):
                utt = f"{spk}-{emotion}-{take:02d}"
                tables["wav.scp"][utt] = f"{utt}.wav"
                tables["utt2spk"][utt] = spk
                tables["utt2emo"][utt] = emotion
                tables["utt2intensity"][utt] = "1"
                tables["utt2avd"][utt] = "3 3 3"
        for take in range(2):
            tables["wav.scp"][f"{spk}-none-{take}"] = "x.wav"
            tables["utt2spk"][f"{spk}-none-{take}"] = spk
    tables["spk2gender"] = {f"spk{s}": "f" for s in range(speakers)}
    return DataDir(tables)


def strata(data: DataDir) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for utt, emotion in data.get("utt2emo").items():
        key = (data.utt2spk[utt], emotion)
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_label_fractions_are_stratified_nested_and_reproducible() -> None:
    data = labeled_set()
    kept = {}
    for fraction, per_stratum in ((0.05, 1), (0.1, 1), (0.25, 3), (0.5, 5), (1.0, 10)):
        labeled, withheld = label_fraction(data, fraction, seed=3)
        assert set(strata(labeled).values()) == {per_stratum}, fraction
        assert len(strata(labeled)) == 12  # every speaker and class
        assert set(labeled.utts) | set(withheld.utts) == set(data.utts)
        assert not set(labeled.utts) & set(withheld.utts)
        assert not any(withheld.has(table) for table in EMOTION_TABLES)
        assert withheld.get("spk2gender") == data.get("spk2gender")  # other labels stay
        assert labeled.get("utt2avd") == {u: "3 3 3" for u in labeled.utts}
        kept[fraction] = set(labeled.utts)
    fractions = sorted(kept)
    for smaller, larger in itertools.pairwise(fractions):
        assert kept[smaller] <= kept[larger]
    assert {u for u in data.utts if "-none-" in u} <= set(label_fraction(data, 1.0)[1].utts)
    assert set(label_fraction(data, 0.25, seed=3)[0].utts) == kept[0.25]
    assert set(label_fraction(data, 0.25, seed=4)[0].utts) != kept[0.25]
    with pytest.raises(SpeechEQError, match="label fraction must be in"):
        label_fraction(data, 0.0)


def test_subset_command_with_a_label_fraction(tmp_path: Path) -> None:
    src = write_feature_set(tmp_path / "src", per_class=4)
    args = ["data", "subset", str(src), str(tmp_path / "dst"), "--label-fraction", "0.5"]
    result = CliRunner().invoke(app, [*args, "--seed", "1", "--unlabeled-out", str(tmp_path / "u")])
    assert result.exit_code == 0, result.output
    labeled, withheld = DataDir.load(tmp_path / "dst"), DataDir.load(tmp_path / "u")
    assert len(labeled.utts) == len(withheld.utts) == 16
    assert not withheld.has("utt2emo") and withheld.has("feats.scp")
    result = CliRunner().invoke(
        app, ["data", "subset", str(src), str(tmp_path / "x"), "--unlabeled-out", "u"]
    )
    assert result.exit_code != 0
