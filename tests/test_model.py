"""The model and the tasks: encoders, pooling, loss masking, CTC decoding, CORAL, the registry."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from speecheq.baseline.functionals import frame_statistics
from speecheq.batching.dataset import Collator, Example
from speecheq.data.datadir import DataDir
from speecheq.data.tables import TABLES
from speecheq.errors import SpeechEQError
from speecheq.features.cmvn import Cmvn
from speecheq.labels import AVD_DIMENSIONS, ClassMap
from speecheq.modelfile import build_model, load_model, model_payload
from speecheq.models import Encoded, ModelOutput, SpeechEQModel
from speecheq.models.frontends import InputSpec
from speecheq.models.functionals import STATISTICS, frame_functionals
from speecheq.tasks import TASKS, Batch, Task, TaskContext, TaskOptions, masked_mean
from speecheq.tasks.emotion import EmotionOptions, EmotionTask
from speecheq.tasks.intensity import IntensityOptions, IntensityTask
from speecheq.tasks.phone import PhoneOptions, PhoneTask, greedy_ctc, read_token_list
from tests.synthetic import PHONES, one_thread, tiny, write_feature_set, write_lang  # noqa: F401

TINY = tiny().model


def make_tasks(names: tuple[str, ...], tmp_path: Path) -> list[Task]:
    context = TaskContext(
        ClassMap.build(["neutral", "happy", "angry", "sad"]), write_lang(tmp_path), 12
    )
    train = DataDir.load(write_feature_set(tmp_path / "train", dim=12, per_class=1))
    train.tables["utt2corpus"] = {utt: "a" if "spk1" in utt else "b" for utt in train.utts}
    plain = {"emotion": EmotionOptions(class_weights="none", label_smoothing=0.0)}
    options = {name: plain.get(name) or TASKS[name].options_type() for name in names}
    return [
        TASKS[name](options[name], TASKS[name].take_inventory(options[name], train, context))
        for name in names
    ]


def tiny_model(tasks: list[Task], encoder: str = "conformer") -> SpeechEQModel:
    torch.manual_seed(0)
    return build_model(12, tiny(model={"encoder": encoder}), tasks).eval()


@pytest.mark.parametrize("encoder", ["conformer", "blstm", "ecapa"])
def test_encoder_shapes_and_subsampled_lengths(encoder: str, tmp_path: Path) -> None:
    model = tiny_model(make_tasks(("emotion", "phone"), tmp_path), encoder)
    feats = torch.randn(3, 50, 12)
    output = model(feats, torch.tensor([50, 31, 4]))
    assert output.encoded.frames.shape == (3, 11, 32)
    assert output.encoded.lengths.tolist() == [11, 7, 1]  # 4x subsampling, at least 1 frame
    assert output.heads["emotion"].shape == (3, 4)
    assert output.heads["phone"].shape == (3, 11, 2 + len(PHONES))
    short = model(torch.randn(1, 3, 12), torch.tensor([3]))  # shorter than the front end needs
    assert short.encoded.lengths.tolist() == [1]


@pytest.mark.parametrize("encoder", ["conformer", "blstm", "ecapa"])
def test_utterances_do_not_influence_each_other(encoder: str, tmp_path: Path) -> None:
    """In evaluation no statistic is shared across a batch: an utterance's output is the same
    in any batch of utterances of its length (BatchNorm uses its running statistics)."""
    model = tiny_model(make_tasks(("emotion",), tmp_path), encoder)
    torch.manual_seed(1)
    feats = torch.randn(3, 40, 12)
    lengths = torch.tensor([40, 40, 40])
    with torch.no_grad():
        together = model(feats, lengths).heads["emotion"]
        alone = model(feats[1:2], lengths[1:2]).heads["emotion"]
    torch.testing.assert_close(together[1:2], alone)


def test_a_missing_label_adds_nothing_to_the_loss_or_its_gradient(tmp_path: Path) -> None:
    tasks = make_tasks(("emotion", "gender"), tmp_path)
    emotion = tasks[0]
    model = tiny_model(tasks)
    torch.manual_seed(2)
    feats = [torch.randn(30, 12).numpy() for _ in range(3)]
    labels = [{"emotion": 2, "gender": 0}, {"gender": 1}, {"emotion": 0, "gender": 1}]
    batch = Collator(tasks)(
        [Example(f"u{i}", f, t) for i, (f, t) in enumerate(zip(feats, labels, strict=True))]
    )
    assert batch.targets["emotion"].mask.tolist() == [True, False, True]

    # In training mode (BatchNorm on batch statistics): no gradient reaches its logits.
    output = model.train()(batch.feats, batch.lengths)
    output.heads["emotion"].retain_grad()
    loss = emotion.loss(output, batch)
    loss.backward()
    assert torch.count_nonzero(output.heads["emotion"].grad[1]) == 0
    logits = output.heads["emotion"].detach()
    expected = torch.nn.functional.cross_entropy(logits[[0, 2]], torch.tensor([2, 0]))
    torch.testing.assert_close(loss.detach(), expected)

    # In evaluation mode utterances are independent: none reaches its features either.
    inputs = batch.feats.clone().requires_grad_(True)
    output = model.eval()(inputs, batch.lengths)
    loss = emotion.loss(output, batch)
    loss.backward()
    assert torch.count_nonzero(inputs.grad[1]) == 0
    assert torch.count_nonzero(inputs.grad[0]) > 0

    # Whatever value stands in for the missing label, nothing changes.
    other = dataclasses.replace(batch.targets["emotion"], values=torch.tensor([2, 3, 0]))
    changed = dataclasses.replace(batch, targets={**batch.targets, "emotion": other})
    torch.testing.assert_close(emotion.loss(output, changed).detach(), loss.detach())


def test_masked_mean_ignores_non_finite_masked_values_and_stays_in_the_graph() -> None:
    values = torch.tensor([1.0, float("nan"), 3.0], requires_grad=True)
    mean = masked_mean(values, torch.tensor([True, False, True]))
    mean.backward()
    assert mean.item() == 2.0
    assert values.grad.tolist() == [0.5, 0.0, 0.5]
    nothing = masked_mean(values * 2, torch.tensor([False, False, False]))
    assert nothing.item() == 0.0 and nothing.requires_grad


def test_greedy_ctc_merges_repeats_drops_blanks_and_respects_lengths() -> None:
    # frame-wise best tokens: 1 1 0 1 2 2 0 | 3 (the last frame is padding for utterance 0)
    best = torch.tensor([[1, 1, 0, 1, 2, 2, 0, 3], [0, 0, 2, 0, 0, 0, 0, 0]])
    log_probs = torch.nn.functional.one_hot(best, 4).float().log()
    assert greedy_ctc(log_probs, torch.tensor([7, 8])) == [[1, 1, 2], [2]]


def test_phone_task_reads_tokens_and_rejects_unknown_ones(tmp_path: Path) -> None:
    (phone,) = make_tasks(("phone",), tmp_path)
    assert phone.tokens[:2] == ["<blank>", "<unk>"]
    assert phone.encode("a k a", "here") == [2, 7, 2]
    with pytest.raises(SpeechEQError, match="here: token 'zh' is not in tokens.txt"):
        phone.encode("a zh", "here")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "tokens.txt").write_text("<unk> 0\na 1\n")
    with pytest.raises(SpeechEQError, match="token 0 must be '<blank>'"):
        read_token_list(tmp_path / "bad" / "tokens.txt")


def test_phone_loss_decreases_towards_the_references(tmp_path: Path) -> None:
    (phone,) = make_tasks(("phone",), tmp_path)
    frames = torch.zeros(1, 8, 4)
    encoded = Encoded(frames, torch.tensor([8]), torch.zeros(1, 32))
    batch_like = Batch(("u",), frames, torch.tensor([8]), {"phone": phone.collate([[2, 3]])})
    good = torch.full((1, 8, len(phone.tokens)), -10.0)
    good[0, :4, 2], good[0, 4:, 3] = 0.0, 0.0  # a a a a i i i i
    uniform = torch.zeros(1, 8, len(phone.tokens))
    loss_good = phone.loss(ModelOutput(encoded, {"phone": good}), batch_like)
    loss_uniform = phone.loss(ModelOutput(encoded, {"phone": uniform}), batch_like)
    assert loss_good < 0.1 < loss_uniform
    assert phone.hypotheses(ModelOutput(encoded, {"phone": good}))["tokens"] == ["a i"]


@pytest.mark.parametrize("encoder", ["conformer", "ecapa"])
def test_a_phone_head_on_a_lower_block_reads_it_and_leaves_the_blocks_above_alone(
    encoder: str, tmp_path: Path
) -> None:
    (default,) = make_tasks(("phone",), tmp_path)
    phone = PhoneTask(PhoneOptions(layer=1), default.inventory)
    config = tiny(model={"encoder": encoder, "num_layers": 2}, tasks={"phone": {"layer": 1}})
    torch.manual_seed(0)
    model = build_model(12, config, [phone])
    feats, lengths = torch.randn(2, 40, 12), torch.tensor([40, 30])
    output = model(feats, lengths)
    first, second = output.encoded.blocks
    assert first.shape == second.shape == output.encoded.frames.shape
    torch.testing.assert_close(output.heads["phone"], model.heads["phone"].linear(first))
    batch = Batch(("u", "v"), feats, lengths, {"phone": phone.collate([[2, 3], [4]])})
    phone.loss(output, batch).backward()
    blocks = (
        model.encoder.blocks if encoder == "ecapa" else model.encoder.conformer.conformer_layers
    )
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in blocks[0].parameters())
    assert all(p.grad is None or not p.grad.any() for p in blocks[1].parameters())


def test_the_phone_layer_must_be_a_block_of_the_encoder() -> None:
    assert tiny(model={"encoder": "blstm"}, tasks={"phone": {"layer": 1}}).model.blocks == 1
    with pytest.raises(SpeechEQError, match=r"layer is 3, but the ecapa encoder .* has 2 block"):
        tiny(model={"encoder": "ecapa", "num_layers": 2}, tasks={"phone": {"layer": 3}})
    with pytest.raises(SpeechEQError, match="tasks.phone.layer must not be negative"):
        tiny(tasks={"phone": {"layer": -1}})


def test_a_model_file_from_before_the_phone_layer_reads_the_output(tmp_path: Path) -> None:
    (phone,) = make_tasks(("phone",), tmp_path)
    config = tiny(tasks={"phone": {"layer": 0}})
    model = build_model(12, config, [phone])
    payload = model_payload(
        model,
        [phone],
        config,
        cmvn=Cmvn("none"),
        feature_dim=12,
        feats_conf=None,
        epoch=1,
        scores={},
        trained_on={},
    )
    del payload["config"]["tasks"]["phone"]["layer"]
    torch.save(payload, tmp_path / "model.pt")
    loaded = load_model(tmp_path / "model.pt")
    assert loaded.config.tasks["phone"] == PhoneOptions(layer=0)
    assert loaded.model.heads["phone"].block == 0


def test_coral_decodes_by_boundaries_passed_and_costs_more_further_away(tmp_path: Path) -> None:
    task = IntensityTask(IntensityOptions(), {"classes": ["0", "1", "2", "3"]})
    encoded = Encoded(torch.zeros(2, 1, 32), torch.tensor([1, 1]), torch.zeros(2, 32))
    logits = torch.tensor([[5.0, 5.0, -5.0], [-5.0, -5.0, -5.0]])
    output = ModelOutput(encoded, {"intensity": logits})
    assert task.hypotheses(output) == {"utt2intensity": ["2", "0"]}
    costs = []
    for level in range(4):
        target = task.collate([level, None])
        batch_like = Batch(
            ("u", "v"), torch.zeros(2, 1, 4), torch.tensor([1, 1]), {"intensity": target}
        )
        costs.append(float(task.loss(output, batch_like)))
    assert costs[2] < costs[1] < costs[0] and costs[2] < costs[3]
    ce = IntensityTask(IntensityOptions(loss="ce"), {"classes": ["0", "1", "2", "3"]})
    assert ce.build_head(SpeechEQModel.dims(TINY))(encoded).shape == (2, 4)


def test_emotion_maps_merges_drops_and_balances(tmp_path: Path) -> None:
    data = DataDir(
        {
            "wav.scp": {u: "x.wav" for u in ("s-1", "s-2", "s-3", "s-4", "s-5")},
            "utt2spk": {u: "s" for u in ("s-1", "s-2", "s-3", "s-4", "s-5")},
            "utt2emo": {
                "s-1": "happy",
                "s-2": "excited",
                "s-3": "sad",
                "s-4": "frustrated",
                "s-5": "happy",
            },
        }
    )
    context = TaskContext(ClassMap.build(["happy", "sad"], {"excited": "happy"}), None, 8)
    options = EmotionOptions(class_weights="balanced")
    task = EmotionTask(options, EmotionTask.take_inventory(options, data, context))
    assert task.references(data) == {"s-1": "happy", "s-2": "happy", "s-3": "sad", "s-5": "happy"}
    assert task.class_weights == pytest.approx([4 / (2 * 3), 4 / (2 * 1)])


def test_every_registered_task_keeps_the_contract(tmp_path: Path) -> None:
    for name, task_type in TASKS.items():
        assert task_type.name == name
        assert issubclass(task_type.options_type, TaskOptions)
        assert dataclasses.is_dataclass(task_type.options_type)
        assert task_type.label_table in TABLES
        assert task_type.decode_table and task_type.primary_metric
    tasks = make_tasks(tuple(TASKS), tmp_path)
    model = tiny_model(tasks)
    unlabeled = [Example(u, torch.randn(n, 12).numpy(), {}) for u, n in (("a", 30), ("b", 20))]
    batch = Collator(tasks)(unlabeled)
    output = model(batch.feats, batch.lengths)
    for task in tasks:
        task.phases(model)
        hypotheses = task.hypotheses(output)[task.decode_table]
        assert len(hypotheses) == 2
        # the decode format reads back, and a task scores its own hypotheses
        parsed = [task.parse(value, "hyp") for value in hypotheses]
        metrics = task.score(parsed, parsed, task.classes).metrics
        assert all(key.split()[0] in (task.name, "sentiment", *AVD_DIMENSIONS) for key in metrics)
        loss = task.loss(output, batch).item()
        if task.uses_unlabeled:  # learns from speech without labels
            assert math.isfinite(loss) and loss > 0.0
        else:  # no labels: nothing to learn
            assert loss == 0.0


@pytest.mark.parametrize("encoder", ["conformer", "blstm", "ecapa"])
def test_an_utterance_gives_the_same_output_alone_or_in_a_padded_batch(
    encoder: str, tmp_path: Path
) -> None:
    tasks = make_tasks(("emotion", "phone"), tmp_path)
    model = tiny_model(tasks, encoder=encoder).eval()
    torch.manual_seed(1)
    short, long = torch.randn(1, 41, 12), torch.randn(1, 97, 12)
    batch = torch.zeros(2, 112, 12)  # padded past the longest, as batches are
    batch[0, :41], batch[1, :97] = short[0], long[0]
    with torch.inference_mode():
        alone = model(short, torch.tensor([41]))
        together = model(batch, torch.tensor([41, 97]))
    frames = int(alone.encoded.lengths[0])
    assert torch.allclose(together.heads["emotion"][0], alone.heads["emotion"][0], atol=1e-5)
    assert torch.allclose(together.encoded.frames[0, :frames], alone.encoded.frames[0], atol=1e-5)


def test_frame_functionals_are_the_baselines_statistics_and_ignore_padding() -> None:
    torch.manual_seed(2)
    frames = torch.randn(57, 6) * 3 + 1
    expected = frame_statistics(frames.numpy()).reshape(12, -1)  # grouped by statistic
    baseline_rows = [0, 1, 2, 3, 4, 5, 11]  # mean std skew kurtosis min max ... slope
    padded = torch.full((2, 80, 6), 7.0)
    padded[1, :57] = frames
    values = frame_functionals(padded, torch.tensor([80, 57]))[1].reshape(len(STATISTICS), -1)
    torch.testing.assert_close(
        values, torch.from_numpy(expected[baseline_rows]), atol=2e-3, rtol=1e-3
    )


def test_the_functionals_stream_joins_the_embedding_and_learns_from_one_utterance_batches(
    tmp_path: Path,
) -> None:
    tasks = make_tasks(("emotion",), tmp_path)
    torch.manual_seed(0)
    config = tiny(model={"functionals_dim": 8})
    model = build_model(12, config, tasks)
    assert model.functionals is not None
    model.train()
    model(torch.randn(1, 30, 12), torch.tensor([30]))  # a long utterance alone in its batch
    model.eval()
    torch.manual_seed(1)
    short, long = torch.randn(1, 41, 12), torch.randn(1, 97, 12)
    batch = torch.zeros(2, 112, 12)
    batch[0, :41], batch[1, :97] = short[0], long[0]
    with torch.inference_mode():
        alone = model(short, torch.tensor([41])).heads["emotion"][0]
        together = model(batch, torch.tensor([41, 97])).heads["emotion"][0]
        louder = model(short * 3, torch.tensor([41])).heads["emotion"][0]
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(louder, alone, atol=1e-3)  # the stream reads the frames
    with pytest.raises(ValueError, match="functionals_dim"):
        SpeechEQModel(12, config.model, {}, InputSpec("layers", 2, 6))


def test_an_ensembles_head_outputs_decode_as_its_members_mean() -> None:
    """Classification: the log of the mean posteriors; CORAL: the logits of the mean boundary
    probabilities; a regression: the mean."""
    torch.manual_seed(0)
    emotion = EmotionTask(EmotionOptions(), {"classes": ["neutral", "happy", "angry"]})
    outputs = [torch.randn(4, 3) * 3 for _ in range(3)]
    expected = torch.stack([torch.softmax(o, dim=-1) for o in outputs]).mean(dim=0)
    assert torch.allclose(torch.softmax(emotion.average(outputs), dim=-1), expected, atol=1e-6)
    coral = IntensityTask(IntensityOptions(loss="coral"), {"classes": ["0", "1", "2", "3"]})
    passed = torch.stack([torch.sigmoid(o) for o in outputs]).mean(dim=0)
    assert torch.allclose(torch.sigmoid(coral.average(outputs)), passed, atol=1e-6)
    dimensional = TASKS["dimensional"](TASKS["dimensional"].options_type(), {})
    assert torch.allclose(dimensional.average(outputs), torch.stack(outputs).mean(dim=0))
