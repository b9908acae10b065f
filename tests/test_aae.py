"""The semi-supervised adversarial autoencoder and unlabeled data in training."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from speecheq.batching.dataset import Collator, Example
from speecheq.batching.sampler import MixedBatchSampler
from speecheq.cli.main import app
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.fileio import read_table, write_table
from speecheq.modelfile import build_tasks
from speecheq.models import Dims, Encoded, ModelOutput
from speecheq.predict import predict
from speecheq.tasks import TASKS, Batch, TaskContext
from speecheq.tasks.aae import AAEOptions, AAETask, feature_statistics
from speecheq.tasks.emotion import EmotionOptions, EmotionTask
from speecheq.train import trainer
from speecheq.train.trainer import train
from tests.synthetic import one_thread, tiny, write_feature_set  # noqa: F401

CLASSES = ["neutral", "happy", "angry", "sad"]


def test_feature_statistics_are_over_the_valid_frames() -> None:
    rng = np.random.default_rng(0)
    utterances = [rng.normal(2.0, 3.0, (n, 5)) for n in (7, 12)]
    feats = torch.zeros(2, 16, 5)
    for row, matrix in enumerate(utterances):
        feats[row, : len(matrix)] = torch.from_numpy(matrix)
    stats = feature_statistics(feats, torch.tensor([7, 12]))
    expected = [np.concatenate([m.mean(axis=0), m.std(axis=0)]) for m in utterances]
    assert np.allclose(stats.numpy(), np.stack(expected), atol=1e-5)


class ToyModel(nn.Module):
    """The shape of :class:`~speecheq.models.SpeechEQModel` over a one-layer "encoder" of the
    utterance's feature mean and standard deviation, so a toy trains in a few seconds."""

    def __init__(self, feature_dim: int, heads: dict[str, nn.Module]) -> None:
        super().__init__()
        self.embedding = nn.Sequential(nn.Linear(2 * feature_dim, 32), nn.Tanh())
        self.heads = nn.ModuleDict(heads)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> ModelOutput:
        encoded = Encoded(feats, lengths, self.embedding(feature_statistics(feats, lengths)))
        return ModelOutput(encoded, {name: head(encoded) for name, head in self.heads.items()})


def test_adversarial_training_draws_the_latent_code_to_its_priors() -> None:
    """On four clusters, with the style code started far from N(0, I): the discriminators
    first tell codes from prior samples (their loss falls below chance), then the generator
    catches up: z's moments approach 0 and 1, y approaches one-hot, and the discriminators'
    loss climbs back towards chance."""
    torch.manual_seed(0)
    dim = 6
    emotion = EmotionTask(
        EmotionOptions(), {"classes": CLASSES, "merge": {}, "class_weights": None}
    )
    aae = AAETask(AAEOptions(weight=1.0), {"classes": CLASSES, "feature_dim": dim})
    dims = Dims(dim, 32)
    model = ToyModel(dim, {"emotion": emotion.build_head(dims), "aae": aae.build_head(dims)})
    with torch.no_grad():
        model.heads["aae"].linear.bias.fill_(3.0)
    phases = aae.phases(model)  # type: ignore[arg-type]
    generator = torch.optim.AdamW(model.parameters(), lr=2e-3)
    optimizers = [torch.optim.AdamW(phase.parameters, lr=2e-3) for phase in phases]
    centres = 2 * torch.randn(len(CLASSES), dim)
    history = []
    for _ in range(150):
        clusters = torch.randint(len(CLASSES), (32,))
        feats = centres[clusters][:, None, :] + torch.randn(32, 10, dim)
        batch = Batch(tuple(map(str, range(32))), feats, torch.full((32,), 10))
        output = model(batch.feats, batch.lengths)
        y, z = aae.codes(output)
        loss = aae.loss(output, batch)
        generator.zero_grad()
        loss.backward()
        generator.step()
        losses = []
        for phase, optimizer in zip(phases, optimizers, strict=True):
            optimizer.zero_grad()
            phase_loss = phase.loss(model, batch)  # type: ignore[arg-type]
            phase_loss.backward()
            optimizer.step()
            losses.append(phase_loss.item())
        history.append([z.mean().item(), z.std().item(), y.max(dim=-1).values.mean().item()])
        history[-1] += losses
    first, last = np.mean(history[:5], axis=0), np.mean(history[-30:], axis=0)
    chance = 4 * np.log(2)  # both discriminators at a coin's cross-entropy, on both kinds
    assert first[0] > 2.5 and first[1] < 0.6 and first[2] < 0.5
    assert abs(last[0]) < 0.6 and 0.6 < last[1] < 1.6 and last[2] > 0.9
    assert last[3] < 0.5 * first[3]  # the reconstruction improves
    lowest = min(row[4] for row in history)
    assert lowest < chance - 1.0 and last[4] > lowest + 0.5


def labeled_batch(tasks: list, utts: dict[str, bool]) -> Batch:
    """A batch where the utterances marked True have every label and the others none."""
    examples = []
    for index, (utt, labeled) in enumerate(utts.items()):
        targets = {
            "emotion": CLASSES[index % 4],
            "gender": "fm"[index % 2],
            "speaker": f"spk{1 + index % 2}",
            "dimensional": f"{index} {4 - index} 2",
            "intensity": str(index % 4),
        }
        feats = np.random.default_rng(index).normal(size=(30, 20)).astype(np.float32)
        encoded = {t.name: t.encode(targets[t.name], utt) for t in tasks} if labeled else {}
        examples.append(Example(utt, feats, encoded))
    return Collator(tasks)(examples)


def test_unlabeled_utterances_add_no_supervised_loss(tmp_path: Path) -> None:
    data = DataDir.load(write_feature_set(tmp_path / "data"))
    data.tables["utt2avd"] = {utt: "3 3 3" for utt in data.utts}
    config = tiny(
        tasks={name: {} for name in ("emotion", "gender", "speaker", "dimensional", "intensity")}
    )
    context = TaskContext(config.labels.class_map(), None, 20)
    inventories = {n: TASKS[n].take_inventory(o, data, context) for n, o in config.tasks.items()}
    tasks = build_tasks(config, inventories)
    batch = labeled_batch(tasks, {"a": True, "b": False, "c": True, "d": False})
    dims = Dims(8, 8)
    for task in tasks:
        head = task.build_head(dims)
        embedding = torch.randn(4, 8, requires_grad=True)
        encoded = Encoded(torch.zeros(4, 1, 8), torch.ones(4, dtype=torch.long), embedding)
        output = ModelOutput(encoded, {task.name: head(encoded)})
        task.loss(output, batch).backward()
        assert embedding.grad is not None
        assert (embedding.grad[[1, 3]] == 0).all(), task.name
        assert (embedding.grad[[0, 2]] != 0).any(), task.name


def test_mixed_batches_take_the_unlabeled_utterances_in_turn_at_the_ratio() -> None:
    labeled, unlabeled = [50] * 20, [60] * 25
    sampler = MixedBatchSampler(labeled, unlabeled, 0.5, 400, seed=1, length_noise=0.1)
    seen: Counter[int] = Counter()
    for epoch in range(5):
        indices = [i for batch in sampler.batches(epoch) for i in batch]
        assert sorted(i for i in indices if i < 20) == list(range(20))
        drawn = [i for i in indices if i >= 20]
        assert len(drawn) == 10
        seen.update(drawn)
        if epoch == 1:  # 20 drawn of 25: none twice yet
            assert max(seen.values()) == 1
    assert set(seen.values()) == {2} and set(seen) == set(range(20, 45))  # two whole turns
    assert sampler.batches(3) == MixedBatchSampler(labeled, unlabeled, 0.5, 400, seed=1,
                                                   length_noise=0.1).batches(3)  # fmt: skip
    ranks = [
        MixedBatchSampler(labeled, unlabeled, 0.5, 400, seed=1, rank=r, world_size=2).batches(0)
        for r in (0, 1)
    ]
    assert len(ranks[0]) == len(ranks[1])
    assert not {i for b in ranks[0] for i in b} & {i for b in ranks[1] for i in b}


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """(train, valid, unlabeled, more unlabeled): the unlabeled sets have (wrong) emotion
    labels, which training must not read."""
    root = tmp_path_factory.mktemp("aae")
    train_dir = write_feature_set(root / "train", per_class=3)
    valid_dir = write_feature_set(root / "valid", per_class=1, seed=1)
    unlabeled = []
    for name, speaker in (("unlabeled", "spk8"), ("more", "spk9")):
        path = write_feature_set(root / name, speakers={speaker: "f"}, per_class=2, seed=2)
        write_table(path / "utt2emo", {utt: "sad" for utt in read_table(path / "utt2emo")})
        unlabeled.append(path)
    return train_dir, valid_dir, unlabeled[0], unlabeled[1]


SEMI = {"emotion": {}, "gender": {}, "speaker": {}, "aae": {}}


def test_training_with_unlabeled_data_and_the_aae_phases(
    sets: tuple[Path, Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_dir, valid_dir, unlabeled, more = sets
    masks: dict[str, set[bool]] = {}
    loss = EmotionTask.loss

    def spying(self: EmotionTask, output: ModelOutput, batch: Batch) -> torch.Tensor:
        for utt, labeled in zip(batch.utts, batch.targets["emotion"].mask.tolist(), strict=True):
            masks.setdefault(utt, set()).add(labeled)
        return loss(self, output, batch)

    monkeypatch.setattr(EmotionTask, "loss", spying)
    config = tiny(tasks=SEMI, optim={"epochs": 2}, batching={"unlabeled_ratio": 0.5})
    result = train(config, train_dir, valid_dir, tmp_path / "exp", unlabeled_dir=[unlabeled, more])

    extra = set(DataDir.load(unlabeled).utts) | set(DataDir.load(more).utts)
    trained = {utt for utt in masks if utt not in extra}
    assert trained == set(DataDir.load(train_dir).utts) | set(DataDir.load(valid_dir).utts)
    used = {utt for utt in masks if utt in extra}
    assert used == extra  # 2 epochs x 0.5 x 24 training utterances = 24 >= 16 unlabeled ones
    assert all(masks[utt] == {False} for utt in used)
    assert all(masks[utt] == {True} for utt in trained)
    for key in ("train_aae_loss", "train_aae_decoder_loss", "train_aae_discriminators_loss"):
        assert np.isfinite(result.history[-1][key])

    checkpoint = torch.load(tmp_path / "exp" / "checkpoint.pt", weights_only=True)
    networks = checkpoint["phases"]["aae_decoder"]["modules"]
    assert {key.split(".")[0] for key in networks} == {"decoder", "categorical", "style"}
    assert checkpoint["phases"]["aae_discriminators"]["optimizer"]["state"]
    model = torch.load(tmp_path / "exp" / "model.pt", weights_only=True)
    assert "heads.aae.linear.weight" in model["state_dict"]
    assert not any("decoder" in key or "categorical" in key for key in model["state_dict"])

    summaries = {
        s.task: s for s in predict(tmp_path / "exp" / "model.pt", valid_dir, tmp_path / "d")
    }
    styles = read_table(tmp_path / "d" / "hyp" / "utt2style")
    assert len(styles) == 8 and all(len(v.split()) == 8 for v in styles.values())
    assert summaries["aae"].references == 0 and summaries["emotion"].references == 8


def test_aae_resumes_exactly(
    sets: tuple[Path, Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_dir, valid_dir, unlabeled, _ = sets
    config = tiny(tasks=SEMI, optim={"epochs": 2})
    whole = train(config, train_dir, valid_dir, tmp_path / "whole", unlabeled_dir=unlabeled)
    save = trainer.save_torch

    def save_then_stop(payload: dict, path: Path) -> None:
        save(payload, path)
        if path.name == "checkpoint.pt" and payload["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_torch", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(config, train_dir, valid_dir, tmp_path / "parts", unlabeled_dir=unlabeled)
    monkeypatch.undo()
    resumed = train(
        config, train_dir, valid_dir, tmp_path / "parts", resume=True, unlabeled_dir=unlabeled
    )
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert whole.history[-1]["train_aae_discriminators_loss"] == pytest.approx(
        resumed.history[-1]["train_aae_discriminators_loss"], abs=0
    )


def test_unlabeled_data_errors_and_the_train_command(
    sets: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    train_dir, valid_dir, unlabeled, more = sets
    with pytest.raises(SpeechEQError, match="the aae task needs the emotion task"):
        train(tiny(tasks={"gender": {}, "aae": {}}), train_dir, valid_dir, tmp_path / "x")
    with pytest.raises(SpeechEQError, match="utterance 'spk1-angry-00' is also in"):
        train(tiny(tasks=SEMI), train_dir, valid_dir, tmp_path / "x", unlabeled_dir=train_dir)
    other = DataDir.load(more)
    other.conf["feats.conf"] = "--num-mel-bins=40\n"
    other.save(tmp_path / "other")
    with pytest.raises(SpeechEQError, match="other: its features were computed with other opt"):
        train(
            tiny(tasks=SEMI),
            train_dir,
            valid_dir,
            tmp_path / "x",
            unlabeled_dir=[unlabeled, tmp_path / "other"],
        )
    with pytest.raises(SpeechEQError, match="batching.unlabeled_ratio must be positive"):
        tiny(batching={"unlabeled_ratio": 0})
    (tmp_path / "train.yaml").write_text(
        "model: {d_model: 32, num_layers: 1, num_heads: 2, ffn_dim: 64, subsampling_channels: 8}\n"
        "optim: {epochs: 1}\n"
    )
    args = ["train", "--config", str(tmp_path / "train.yaml"), "--train-dir", str(train_dir)]
    args += ["--valid-dir", str(valid_dir), "--exp-dir", str(tmp_path / "exp"), "--tasks"]
    args += ["emotion,aae", "--unlabeled-dir", str(unlabeled), "--unlabeled-dir", str(more)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "aae_decoder" in (tmp_path / "exp" / "metrics.csv").read_text()
