"""Training: config checking, batching, overfitting, resuming, DDP, errors, extension points."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from torch import multiprocessing, nn
from typer.testing import CliRunner

from speecheq.batching.dataset import read_features
from speecheq.batching.sampler import BucketBatchSampler
from speecheq.cli.main import app
from speecheq.config import TrainConfig, load_config
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.features.cmvn import Cmvn
from speecheq.fileio import read_table, write_table
from speecheq.modelfile import load_model
from speecheq.models import Dims, ModelOutput, SpeechEQModel, UtteranceLinear
from speecheq.tasks import TASKS, Batch, Phase, Target, Task, TaskScores
from speecheq.tasks.emotion import EmotionTask
from speecheq.train import trainer
from speecheq.train.averaging import MovingAverage
from speecheq.train.trainer import TrainResult, train
from speecheq.train.weighting import TaskWeighting
from tests.synthetic import one_thread, tiny, write_feature_set, write_lang  # noqa: F401


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(train, valid, lang): 2 training speakers, 2 other valid speakers, 4 emotions."""
    root = tmp_path_factory.mktemp("sets")
    train_dir = write_feature_set(root / "train", per_class=4)
    valid_dir = write_feature_set(
        root / "valid", speakers={"spk3": "f", "spk4": "m"}, per_class=2, seed=1
    )
    return train_dir, valid_dir, write_lang(root / "lang")


# --- batching -------------------------------------------------------------------------------


def test_bucket_sampler_keeps_the_budget_and_covers_every_utterance_once() -> None:
    lengths = [
        int(n) for n in torch.randint(20, 200, (300,), generator=torch.Generator().manual_seed(0))
    ]
    sampler = BucketBatchSampler(lengths, 1000, shuffle=True, seed=3, length_noise=0.1)
    for epoch in (0, 1):
        batches = sampler.batches(epoch)
        assert sorted(i for b in batches for i in b) == list(range(300))
        assert all(len(b) * max(lengths[i] for i in b) <= 1000 for b in batches)
        padding = sum(len(b) * max(lengths[i] for i in b) for b in batches) / sum(lengths)
        assert padding < 1.15
    assert sampler.batches(0) == sampler.batches(0)
    assert sampler.batches(0) != sampler.batches(1)
    ranks = [
        BucketBatchSampler(lengths, 1000, shuffle=True, seed=3, rank=r, world_size=2).batches(0)
        for r in (0, 1)
    ]
    assert len(ranks[0]) == len(ranks[1])
    assert not {i for b in ranks[0] for i in b} & {i for b in ranks[1] for i in b}


def test_cmvn_modes_normalise_over_their_scope(sets: tuple[Path, Path, Path]) -> None:
    train_dir = sets[0]
    data = DataDir.load(train_dir)
    feats = {u: read_features(data.get("feats.scp")[u], u) for u in data.utts}
    speaker = data.speakers[0]
    own = [u for u in data.utts if data.utt2spk[u] == speaker]

    def normalised(mode: str, utts: list[str]) -> np.ndarray:
        cmvn = Cmvn.from_training(mode, train_dir, data)
        return np.concatenate([cmvn(feats[u], data.utt2spk[u], u) for u in utts])

    for mode, utts in (("global", data.utts), ("speaker", own), ("utterance", own[:1])):
        result = normalised(mode, utts)
        assert np.abs(result.mean(axis=0)).max() < 1e-3, mode
        assert np.abs(result.std(axis=0) - 1).max() < 1e-3, mode
    assert np.array_equal(normalised("none", own[:1]), feats[own[0]])
    no_stats = copy_set(train_dir, train_dir.parent / "no_stats")
    (no_stats / "cmvn.scp").unlink()
    with pytest.raises(SpeechEQError, match="no_stats: cmvn.scp is missing"):
        Cmvn.from_training("global", no_stats, DataDir.load(no_stats))


# --- training -------------------------------------------------------------------------------


def test_a_small_model_overfits_twenty_utterances(tmp_path: Path) -> None:
    data = write_feature_set(tmp_path / "data", per_class=3, frames=(30, 60))
    optim = {"epochs": 20, "task_weighting": "fixed"}  # both heads learn throughout
    config = tiny(tasks={"emotion": {}, "gender": {"weight": 1.0}}, optim=optim)
    result = train(config, data, data, tmp_path / "exp", device="cpu")
    last = result.history[-1]
    assert last["valid_emotion_WA"] >= 0.95 and last["valid_gender_WA"] >= 0.95
    assert last["train_loss"] < 0.5 * result.history[0]["train_loss"]


def test_exp_dir_holds_a_self_describing_model_and_metrics(
    sets: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    train_dir, valid_dir, lang_dir = sets
    result = train(tiny(optim={"epochs": 2}), train_dir, valid_dir, tmp_path / "exp", lang_dir)
    payload = torch.load(tmp_path / "exp" / "model.pt", weights_only=True)
    assert payload["inventories"]["emotion"]["classes"] == ["neutral", "happy", "angry", "sad"]
    assert payload["inventories"]["phone"]["tokens"][:3] == ["<blank>", "<unk>", "a"]
    assert payload["cmvn"]["mode"] == "global" and payload["cmvn"]["global_stats"].shape == (2, 21)
    assert payload["feats_conf"] == "--num-mel-bins=20\n"
    assert payload["epoch"] == result.best_epoch
    rows = (tmp_path / "exp" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and "valid_emotion_UA" in rows[0] and "train_phone_loss" in rows[0]
    loaded = load_model(tmp_path / "exp" / "model.pt")
    assert [task.name for task in loaded.tasks] == ["emotion", "intensity", "phone", "gender"]


class Interrupted(Exception):
    pass


def _interrupted_then_resumed(
    monkeypatch: pytest.MonkeyPatch,
    config: TrainConfig,
    train_dir: Path,
    valid_dir: Path,
    lang_dir: Path,
    tmp_path: Path,
) -> TrainResult:
    """Train into ``tmp_path/parts``, stop after epoch 2's checkpoint, then resume to the end."""
    save = trainer.save_torch

    def save_then_stop(payload: dict, path: Path) -> None:
        save(payload, path)
        if path.name == "checkpoint.pt" and payload["epoch"] == 2:
            raise Interrupted

    monkeypatch.setattr(trainer, "save_torch", save_then_stop)
    with pytest.raises(Interrupted):
        train(config, train_dir, valid_dir, tmp_path / "parts", lang_dir)
    monkeypatch.undo()
    return train(config, train_dir, valid_dir, tmp_path / "parts", lang_dir, resume=True)


def test_init_starts_from_the_parameters_of_a_model_file_that_fit(
    sets: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The encoder and the heads of the same size come from the model file; a head of another
    size starts at random; a model file of another encoder width is refused."""
    train_dir, valid_dir, lang_dir = sets
    train(tiny(optim={"epochs": 1}), train_dir, valid_dir, tmp_path / "a", lang_dir)
    stored = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["state_dict"]
    config = tiny(
        init=str(tmp_path / "a" / "model.pt"),
        labels={"classes": ["neutral", "happy", "angry"]},
        optim={"epochs": 1, "lr": 1e-9, "warmup_steps": 0},
    )
    result = train(config, train_dir, valid_dir, tmp_path / "b", lang_dir)
    assert "initialised from" in capsys.readouterr().err
    started = dict(result.model.named_parameters())
    encoder = [key for key in started if key.startswith("encoder.")]
    assert encoder and all(
        torch.allclose(started[key], stored[key], atol=1e-5) for key in encoder
    ), "an lr of 1e-9 leaves the encoder where the model file put it"
    assert started["heads.emotion.linear.weight"].shape[0] == 3
    other = dataclasses.replace(config, model=dataclasses.replace(config.model, d_model=24))
    with pytest.raises(
        SpeechEQError, match=r"model.pt: its encoder is not the one configured here \(\d+ of"
    ):
        train(other, train_dir, valid_dir, tmp_path / "c", lang_dir)
    (tmp_path / "a" / "model.pt").unlink()  # resuming takes the weights from the checkpoint
    assert len(train(config, train_dir, valid_dir, tmp_path / "b", lang_dir).history) == 1


def test_resume_ends_exactly_as_an_uninterrupted_run(
    sets: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With dropout, SpecAugment, mixup and every task on: stop after epoch 2 of 3, resume."""
    train_dir, valid_dir, lang_dir = sets
    config = tiny(
        model={"dropout": 0.1},
        features={
            "specaugment": {"freq_masks": 1, "freq_width": 4, "time_masks": 1},
            "mixup": 0.4,
        },
    )
    whole = train(config, train_dir, valid_dir, tmp_path / "whole", lang_dir)

    resumed = _interrupted_then_resumed(
        monkeypatch, config, train_dir, valid_dir, lang_dir, tmp_path
    )

    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    losses = [{k: v for k, v in row.items() if "loss" in k} for row in whole.history]
    assert losses == [{k: v for k, v in row.items() if "loss" in k} for row in resumed.history]
    assert resumed.best_epoch == whole.best_epoch
    # Resuming a finished run does nothing more; another config cannot resume it.
    again = train(config, train_dir, valid_dir, tmp_path / "parts", lang_dir, resume=True)
    assert len(again.history) == 3
    other = dataclasses.replace(config, optim=dataclasses.replace(config.optim, lr=1e-3))
    with pytest.raises(SpeechEQError, match="config differs .*'optim.lr'"):
        train(other, train_dir, valid_dir, tmp_path / "parts", lang_dir, resume=True)
    with pytest.raises(SpeechEQError, match="no checkpoint to resume from"):
        train(config, train_dir, valid_dir, tmp_path / "none", lang_dir, resume=True)


def test_annealed_weighting_fades_the_auxiliary_tasks_only() -> None:
    names = ["emotion", "phone", "gender"]
    weighting = TaskWeighting(names, [1.0, 0.5, 0.3], "annealed")
    losses = torch.tensor([2.0, 4.0, 10.0])
    weighting.set_epoch(0, 4)
    assert weighting.weights == pytest.approx([1.0, 0.5, 0.3])
    weighting.set_epoch(2, 4)
    assert weighting.weights == pytest.approx([1.0, 0.25, 0.15])
    assert float(weighting(losses)) == pytest.approx(2.0 + 1.0 + 1.5)
    fixed = TaskWeighting(names, [1.0, 0.5, 0.3], "fixed")
    fixed.set_epoch(3, 4)
    assert fixed.weights == pytest.approx([1.0, 0.5, 0.3])


def test_training_anneals_the_auxiliary_weights_epoch_by_epoch(
    sets: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    train_dir, valid_dir, lang_dir = sets
    config = tiny(optim={"epochs": 2, "task_weighting": "annealed"})
    result = train(config, train_dir, valid_dir, tmp_path / "annealed", lang_dir)
    weights = [{k: v for k, v in row.items() if k.startswith("weight_")} for row in result.history]
    start = {f"weight_{name}": options.weight for name, options in config.tasks.items()}
    assert weights[0] == pytest.approx(start)
    kept = {"weight_emotion", "weight_intensity"}
    assert kept < set(start) and len(start) > len(kept)
    halved = {k: v if k in kept else v / 2 for k, v in start.items()}
    assert weights[1] == pytest.approx(halved)


def test_averaged_checkpoints_and_learned_task_weights_resume_exactly(
    sets: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model kept is the mean of epochs 2 and 3; the tasks' weights are learned."""
    train_dir, valid_dir, lang_dir = sets
    config = tiny(optim={"epochs": 3, "average_last": 2, "task_weighting": "uncertainty"})
    states: dict[int, dict[str, torch.Tensor]] = {}
    save = trainer.save_torch

    def keep_states(payload: dict, path: Path) -> None:
        save(payload, path)
        if path.name == "checkpoint.pt":
            states[payload["epoch"]] = {k: v.clone() for k, v in payload["model"].items()}

    monkeypatch.setattr(trainer, "save_torch", keep_states)
    whole = train(config, train_dir, valid_dir, tmp_path / "whole", lang_dir)
    monkeypatch.undo()
    start = [task.weight for task in config.tasks.values()]
    learned = [whole.history[-1][f"weight_{name}"] for name in config.tasks]
    assert learned != pytest.approx(start, rel=1e-3)
    kept = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)["state_dict"]
    for key, value in kept.items():
        if value.is_floating_point():
            mean = (states[2][key].double() + states[3][key].double()) / 2
            torch.testing.assert_close(value, mean.to(value.dtype), msg=key)
    assert any(not torch.equal(value, states[3][key]) for key, value in kept.items())

    again = _interrupted_then_resumed(monkeypatch, config, train_dir, valid_dir, lang_dir, tmp_path)
    resumed = torch.load(tmp_path / "parts" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(value, resumed[key]) for key, value in kept.items())
    untimed = [[{k: v for k, v in row.items() if "seconds" not in k} for row in run.history]
               for run in (whole, again)]  # fmt: skip
    assert untimed[0] == untimed[1]


def test_the_moving_average_moves_by_the_share_its_time_constant_gives() -> None:
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    average = MovingAverage(model, time_constant=2.0)
    average.update(model)  # the first update copies the weights
    with torch.no_grad():
        model.weight.fill_(1.0)
    average.update(model)
    share = 1 - math.exp(-1 / 2)
    assert average.model(model).weight.item() == pytest.approx(share)
    assert MovingAverage(model, time_constant=0).model(model) is model


def test_the_moving_average_is_kept_and_resumes_exactly(
    sets: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``model.pt`` is the moving average at the best epoch, not the trained weights."""
    train_dir, valid_dir, lang_dir = sets
    config = tiny(optim={"epochs": 3, "ema_epochs": 1.0})
    checkpoints: dict[int, dict[str, Any]] = {}
    save = trainer.save_torch

    def keep_checkpoints(payload: dict, path: Path) -> None:
        save(payload, path)
        if path.name == "checkpoint.pt":
            checkpoints[payload["epoch"]] = {
                part: {k: v.clone() for k, v in payload[part].items()}
                for part in ("model", "moving_average")
            }

    monkeypatch.setattr(trainer, "save_torch", keep_checkpoints)
    whole = train(config, train_dir, valid_dir, tmp_path / "whole", lang_dir)
    monkeypatch.undo()
    assert whole.best_epoch is not None
    best = checkpoints[whole.best_epoch]
    kept = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)["state_dict"]
    for key, value in kept.items():
        torch.testing.assert_close(value, best["moving_average"][f"module.{key}"], msg=key)
    assert any(
        not torch.equal(value, best["model"][key])
        for key, value in kept.items()
        if value.is_floating_point()
    )

    again = _interrupted_then_resumed(monkeypatch, config, train_dir, valid_dir, lang_dir, tmp_path)
    resumed = torch.load(tmp_path / "parts" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(value, resumed[key]) for key, value in kept.items())
    assert again.best_epoch == whole.best_epoch


def test_resume_auto_continues_only_the_same_run_on_the_same_data(
    sets: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    train_dir, valid_dir, _ = sets
    config = tiny(tasks={"emotion": {}}, optim={"epochs": 2})
    exp = tmp_path / "exp"
    first = train(config, train_dir, valid_dir, exp)  # auto without a checkpoint: afresh
    assert load_config(exp / "config.yaml") == config  # the resolved config is written
    written = (exp / "model.pt").stat().st_mtime_ns
    again = train(config, train_dir, valid_dir, exp)  # auto on a finished run: nothing to do
    assert again.history == first.history
    assert (exp / "model.pt").stat().st_mtime_ns == written
    with pytest.raises(SpeechEQError, match=r"other train data than this run's: .*train .* now"):
        train(config, valid_dir, train_dir, exp)  # another fold's data never continues it
    train(config, train_dir, valid_dir, exp, resume=False)  # afresh, replacing it
    assert (exp / "model.pt").stat().st_mtime_ns != written


def _ddp_worker(rank: int, port: int, dirs: tuple[Path, Path, Path, Path]) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2"
    )
    torch.set_num_threads(1)
    train_dir, valid_dir, lang_dir, exp_dir = dirs
    result = train(tiny(optim={"epochs": 2}), train_dir, valid_dir, exp_dir, lang_dir, device="cpu")
    torch.save(result.model.state_dict(), exp_dir.parent / f"rank{rank}.pt")


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_trains_and_ranks_agree(
    sets: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dirs = (*sets, tmp_path / "exp")
    multiprocessing.spawn(_ddp_worker, args=(port, dirs), nprocs=2)
    states = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), key
    assert (tmp_path / "exp" / "model.pt").is_file()
    assert len((tmp_path / "exp" / "metrics.csv").read_text().splitlines()) == 3


# --- errors ---------------------------------------------------------------------------------


def copy_set(source: Path, target: Path) -> Path:
    DataDir.load(source).save(target)
    return target


def test_user_errors_are_one_sentence(sets: tuple[Path, Path, Path], tmp_path: Path) -> None:
    train_dir, valid_dir, lang_dir = sets
    config = tiny(optim={"epochs": 1})

    no_feats = copy_set(train_dir, tmp_path / "no_feats")
    (no_feats / "feats.scp").unlink()
    with pytest.raises(SpeechEQError, match="no_feats: feats.scp is missing"):
        train(config, no_feats, valid_dir, tmp_path / "exp", lang_dir)

    no_intensity = copy_set(train_dir, tmp_path / "no_intensity")
    (no_intensity / "utt2intensity").unlink()
    with pytest.raises(
        SpeechEQError, match="no utterance has a label for the enabled task 'intensity'"
    ):
        train(config, no_intensity, valid_dir, tmp_path / "exp", lang_dir)

    bad_token = copy_set(train_dir, tmp_path / "bad_token")
    tokens = read_table(bad_token / "tokens")
    first = sorted(tokens)[0]
    tokens[first] = "a zh"
    write_table(bad_token / "tokens", tokens)
    with pytest.raises(SpeechEQError, match=f"utterance '{first}' .*token 'zh' is not in"):
        train(config, bad_token, valid_dir, tmp_path / "exp", lang_dir)

    with pytest.raises(SpeechEQError, match="the phone task needs a lang directory"):
        train(config, train_dir, valid_dir, tmp_path / "exp")

    if not torch.cuda.is_available():
        with pytest.raises(SpeechEQError, match="no CUDA device is available"):
            train(config, train_dir, valid_dir, tmp_path / "exp", lang_dir, device="cuda")


def test_a_non_finite_loss_stops_and_keeps_the_last_checkpoint(
    sets: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_dir, valid_dir, lang_dir = sets
    loss = EmotionTask.loss
    calls = {"n": 0}

    def diverging(self: EmotionTask, output: ModelOutput, batch: Batch) -> torch.Tensor:
        calls["n"] += 1
        value = loss(self, output, batch)
        return value * float("nan") if calls["n"] > 12 else value

    monkeypatch.setattr(EmotionTask, "loss", diverging)
    config = tiny(tasks={"emotion": {}}, optim={"epochs": 5})
    with pytest.raises(SpeechEQError, match="the loss is not finite") as error:
        train(config, train_dir, valid_dir, tmp_path / "exp", lang_dir)
    stopped, kept = re.search(
        r"^epoch (\d+),.* checkpoint of epoch (\d+) is kept", str(error.value)
    ).groups()
    assert int(kept) == int(stopped) - 1
    checkpoint = torch.load(tmp_path / "exp" / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == int(kept)


def test_train_command(sets: tuple[Path, Path, Path], tmp_path: Path) -> None:
    train_dir, valid_dir, _ = sets
    (tmp_path / "train.yaml").write_text(
        "model: {d_model: 32, num_layers: 1, num_heads: 2, ffn_dim: 64, subsampling_channels: 8}\n"
        "optim: {epochs: 1}\n"
    )
    args = ["train", "--config", str(tmp_path / "train.yaml"), "--train-dir", str(train_dir)]
    args += ["--valid-dir", str(valid_dir), "--exp-dir", str(tmp_path / "exp")]
    result = CliRunner().invoke(app, [*args, "--tasks", "emotion,gender", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "emotion_UA" in result.output
    assert [t.name for t in load_model(tmp_path / "exp" / "model.pt").tasks] == [
        "emotion",
        "gender",
    ]


# --- extension points -----------------------------------------------------------------------


class Critic(Task):
    """A label-free toy task: a critic on the embedding trained in its own phase, fed by
    unlabeled utterances too (the shape of an adversarial autoencoder's discriminator)."""

    name = "critic"
    label_table = "feats.scp"
    decode_table = "utt2critic"
    primary_metric = "none"
    uses_unlabeled = True
    seen: ClassVar[set[str]] = set()
    initial_bias: ClassVar[float] = 0.0

    def references(self, data: DataDir) -> dict[str, str]:
        return {}

    def encode(self, value: str, where: str) -> Any:
        raise AssertionError("a label-free task encodes nothing")

    def collate(self, targets: Sequence[Any | None]) -> Target:
        return Target(torch.zeros(len(targets)), torch.zeros(len(targets), dtype=torch.bool))

    def build_head(self, dims: Dims) -> nn.Module:
        return UtteranceLinear(dims, 1)

    def loss(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        Critic.seen.update(batch.utts)
        return output.heads[self.name].square().mean()

    def hypotheses(self, output: ModelOutput) -> dict[str, list[str]]:
        return {self.decode_table: ["x"] * len(output.heads[self.name])}

    @classmethod
    def score(
        cls, refs: Sequence[Any], hyps: Sequence[Any], classes: Sequence[str] = ()
    ) -> TaskScores:
        return TaskScores({})

    def phases(self, model: SpeechEQModel) -> list[Phase]:
        critic = nn.Linear(model.embedding[0].out_features, 1)
        Critic.initial_bias = critic.bias.item()

        def loss(model: SpeechEQModel, batch: Batch) -> torch.Tensor:
            embedding = model.encode(batch.feats, batch.lengths).embedding.detach()
            return (critic(embedding) - 1).square().mean()

        return [Phase("critic", loss, list(critic.parameters()), critic)]


def test_a_task_with_its_own_phase_and_unlabeled_data_fits_in(
    sets: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_dir, valid_dir, _ = sets
    monkeypatch.setitem(TASKS, "critic", Critic)
    unlabeled = write_feature_set(
        tmp_path / "unlabeled", speakers={"spk9": "f"}, per_class=1, seed=5
    )
    config = tiny(tasks={"emotion": {}, "critic": {"weight": 0.1}}, optim={"epochs": 2})
    with pytest.raises(SpeechEQError, match="no enabled task learns from it"):
        train(
            tiny(tasks={"emotion": {}}),
            train_dir,
            valid_dir,
            tmp_path / "x",
            None,
            unlabeled_dir=unlabeled,
        )
    Critic.seen = set()
    train(config, train_dir, valid_dir, tmp_path / "exp", unlabeled_dir=unlabeled)
    assert {u for u in Critic.seen if u.startswith("spk9")} == set(DataDir.load(unlabeled).utts)
    checkpoint = torch.load(tmp_path / "exp" / "checkpoint.pt", weights_only=True)
    state = checkpoint["phases"]["critic"]
    assert state["optimizer"]["state"]  # its optimizer stepped
    assert state["modules"]["bias"].item() > Critic.initial_bias  # pulled towards the target 1
