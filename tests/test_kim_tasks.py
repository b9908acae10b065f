"""Kim et al. 2017 pieces: naturalness and corpus-adversarial tasks, per-corpus CMVN, sampling
balanced across corpora, subsets by a table's value."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional
from typer.testing import CliRunner

from speecheq.batching.dataset import read_features
from speecheq.batching.sampler import BucketBatchSampler, balanced_draw
from speecheq.cli.main import app
from speecheq.config import config_from_dict
from speecheq.data.datadir import DataDir
from speecheq.data.ops import combine, subset
from speecheq.errors import SpeechEQError
from speecheq.features.cmvn import Cmvn
from speecheq.labels import ClassMap
from speecheq.models import Dims, Encoded, ModelOutput
from speecheq.scoring.decode_dir import read_decode_dir
from speecheq.scoring.scores import score_fold
from speecheq.tasks import TASKS, Batch, TaskContext
from speecheq.tasks.corpus import CorpusOptions, CorpusTask
from speecheq.tasks.naturalness import NaturalnessTask, single_class_problem
from tests.synthetic import one_thread, write_feature_set  # noqa: F401

DIMS = Dims(frame_dim=8, embedding_dim=6)
CONTEXT = TaskContext(ClassMap.build(["neutral", "happy"]), None, 8)


def _table_data(tables: dict[str, dict[str, str]]) -> DataDir:
    utts = sorted(set().union(*(t for name, t in tables.items() if name.startswith("utt2"))))
    base = {"wav.scp": {u: f"{u}.wav" for u in utts}, "utt2spk": {u: u[:4] for u in utts}}
    return DataDir({**base, **tables})


def _output(name: str, logits: torch.Tensor, embedding: torch.Tensor) -> ModelOutput:
    frames = torch.zeros(len(embedding), 1, DIMS.frame_dim)
    return ModelOutput(Encoded(frames, torch.ones(len(embedding)), embedding), {name: logits})


# --- naturalness ----------------------------------------------------------------------------


def test_an_utterance_without_naturalness_adds_nothing_to_the_loss_or_its_gradient() -> None:
    data = _table_data({"utt2nat": {"spk1-a": "acted", "spk1-b": "natural", "spk2-c": "acted"}})
    task = NaturalnessTask(TASKS["naturalness"].options_type(), {"classes": ["acted", "natural"]})
    refs = task.references(data)
    utts = ["spk1-a", "spk1-b", "spk2-c", "spk2-d"]  # spk2-d has no utt2nat line
    target = task.collate([task.encode(refs[u], u) if u in refs else None for u in utts])
    logits = torch.randn(4, 2, generator=torch.Generator().manual_seed(0)).requires_grad_()
    batch = Batch(tuple(utts), torch.zeros(4, 1, 1), torch.ones(4), {"naturalness": target})
    loss = task.loss(_output("naturalness", logits, torch.zeros(4, DIMS.embedding_dim)), batch)
    loss.backward()
    expected = functional.cross_entropy(logits[:3].detach(), torch.tensor([0, 1, 0]))
    assert torch.allclose(loss, expected)
    assert logits.grad is not None
    assert torch.equal(logits.grad[3], torch.zeros(2))
    assert logits.grad[:3].abs().sum() > 0


def test_naturalness_warns_when_the_training_set_has_one_class(
    capsys: pytest.CaptureFixture[str],
) -> None:
    acted = _table_data({"utt2nat": {"spk1-a": "acted", "spk2-b": "acted"}})
    assert "all 2 labelled utterances are 'acted'" in (single_class_problem(acted) or "")
    NaturalnessTask.take_inventory(TASKS["naturalness"].options_type(), acted, CONTEXT)
    assert "single class and cannot learn anything" in capsys.readouterr().err
    mixed = _table_data({"utt2nat": {"spk1-a": "acted", "spk2-b": "natural"}})
    assert single_class_problem(mixed) is None
    NaturalnessTask.take_inventory(TASKS["naturalness"].options_type(), mixed, CONTEXT)
    assert capsys.readouterr().err == ""


# --- corpus-adversarial ---------------------------------------------------------------------


def _corpus_task(**options: float) -> CorpusTask:
    data = _table_data({"utt2corpus": {"spk1-a": "emodb", "spk2-b": "casia", "spk2-c": "casia"}})
    task_options = CorpusOptions(**options)  # type: ignore[arg-type]
    return CorpusTask(task_options, CorpusTask.take_inventory(task_options, data, CONTEXT))


def test_the_corpus_head_reverses_and_scales_the_gradient_reaching_the_embedding() -> None:
    task = _corpus_task(reversal=0.5)
    assert task.classes == ["casia", "emodb"]
    head = task.build_head(DIMS).train()
    embedding = torch.randn(3, DIMS.embedding_dim, generator=torch.Generator().manual_seed(1))
    target = task.collate([0, 1, None])
    batch = Batch(("a", "b", "c"), torch.zeros(3, 1, 1), torch.ones(3), {"corpus": target})

    def gradients(reverse: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        head.zero_grad()
        leaf = embedding.clone().requires_grad_()
        encoded = Encoded(torch.zeros(3, 1, DIMS.frame_dim), torch.ones(3), leaf)
        logits = head(encoded) if reverse else head.classifier(leaf)
        task.loss(ModelOutput(encoded, {"corpus": logits}), batch).backward()
        assert leaf.grad is not None
        return leaf.grad, [p.grad.clone() for p in head.parameters() if p.grad is not None]

    reversed_grad, reversed_params = gradients(reverse=True)
    plain_grad, plain_params = gradients(reverse=False)
    assert plain_grad.abs().sum() > 0
    assert torch.allclose(reversed_grad, -0.5 * plain_grad)
    for reversed_param, plain_param in zip(reversed_params, plain_params, strict=True):
        assert torch.allclose(reversed_param, plain_param)  # the classifier itself learns as usual


def test_the_reversal_strength_ramps_up_over_training_steps_only() -> None:
    task = _corpus_task(reversal=2.0, ramp_steps=10)
    head = task.build_head(DIMS)
    encoded = Encoded(torch.zeros(1, 1, 8), torch.ones(1), torch.zeros(1, DIMS.embedding_dim))
    assert head.strength() == 0.0
    head.eval()
    head(encoded)
    assert head.strength() == 0.0  # evaluation does not advance the ramp
    head.train()
    strengths = []
    for _ in range(12):
        head(encoded)
        strengths.append(head.strength())
    assert strengths == sorted(strengths) and 0 < strengths[0] < 1
    assert strengths[-1] == pytest.approx(2.0, rel=1e-3)
    assert _corpus_task(reversal=2.0).build_head(DIMS).strength() == 2.0


def test_corpus_references_and_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = _corpus_task()
    other = _table_data({"utt2corpus": {"spk1-a": "emodb", "spk3-x": "ravdess"}})
    assert task.references(other) == {"spk1-a": "emodb"}  # an unseen corpus has no reference
    one = _table_data({"utt2corpus": {"spk1-a": "emodb"}})
    CorpusTask.take_inventory(CorpusOptions(), one, CONTEXT)
    assert "nothing to tell apart" in capsys.readouterr().err
    for side, text in (("ref", "a casia\nb emodb\n"), ("hyp", "a casia\nb casia\n")):
        (tmp_path / side).mkdir()
        (tmp_path / side / "utt2corpus").write_text(text)
    scores = score_fold(read_decode_dir(tmp_path))
    assert scores.metrics == {"corpus WA": 0.5, "corpus UA": 0.5}


def test_config_keys_of_the_new_options() -> None:
    config = config_from_dict(
        {
            "features": {"cmvn": "corpus"},
            "batching": {"balance": "corpus"},
            "tasks": {"naturalness": {"weight": 0.3}, "corpus": {"reversal": 0.5}},
        },
        "test",
    )
    assert config.features.cmvn == "corpus" and config.batching.balance == "corpus"
    corpus = config.tasks["corpus"]
    assert isinstance(corpus, CorpusOptions) and corpus.reversal == 0.5
    with pytest.raises(SpeechEQError, match="'batching.balance' must be one of none, corpus"):
        config_from_dict({"batching": {"balance": "speaker"}}, "test")
    with pytest.raises(SpeechEQError, match="reversal and ramp_steps must not be negative"):
        config_from_dict({"tasks": {"corpus": {"reversal": -1}}}, "test")


# --- per-corpus CMVN ------------------------------------------------------------------------


def test_corpus_cmvn_normalises_each_corpus_by_its_speakers_and_falls_back_to_global(
    tmp_path: Path,
) -> None:
    first = DataDir.load(write_feature_set(tmp_path / "a", seed=0))
    second = DataDir.load(write_feature_set(tmp_path / "b", speakers={"s3": "f", "s4": "m"}))
    data = combine([first, second], ["a", "b"], prefix=True)
    utt2corpus = data.tables["utt2corpus"]
    no_corpus = [u for u in data.utts if u.startswith("b-s4-")]
    for utt in no_corpus:
        del utt2corpus[utt]
    path = tmp_path / "all"
    cmvn = Cmvn.from_training("corpus", path, data)
    assert set(cmvn.corpus_stats) == {"a", "b"}

    def normalised(mode: Cmvn, utts: list[str]) -> np.ndarray:
        return np.concatenate(
            [mode(read_features(data.get("feats.scp")[u], u), data.utt2spk[u], u) for u in utts]
        )

    for corpus in ("a", "b"):
        feats = normalised(cmvn, [u for u in data.utts if utt2corpus.get(u) == corpus])
        assert np.abs(feats.mean(axis=0)).max() < 1e-3, corpus
        assert np.abs(feats.std(axis=0) - 1).max() < 1e-3, corpus
    global_cmvn = Cmvn.from_training("global", path, data)
    assert np.allclose(normalised(cmvn, no_corpus), normalised(global_cmvn, no_corpus))
    test = cmvn.for_data(path, data.subset(utt2corpus))
    assert np.array_equal(test.corpus_stats["a"], cmvn.corpus_stats["a"])
    one_speaker = data.subset([u for u in data.utts if u.startswith("a-spk1-")])
    assert not np.array_equal(
        cmvn.for_data(path, one_speaker).corpus_stats["a"], cmvn.corpus_stats["a"]
    )  # a test set is normalised by its own speakers' statistics
    mixed = DataDir(data.tables)
    mixed.tables["utt2corpus"] = {**utt2corpus, no_corpus[0]: "a", no_corpus[1]: "b"}
    with pytest.raises(SpeechEQError, match="has utterances of corpora 'a' and 'b'"):
        Cmvn.from_training("corpus", path, mixed)


# --- balanced sampling ----------------------------------------------------------------------


def test_balanced_sampling_draws_as_many_utterances_of_each_corpus_as_the_largest_has() -> None:
    groups = ["big"] * 10 + ["small"] * 3 + ["tiny"]
    lengths = [50 + 7 * i for i in range(len(groups))]
    sampler = BucketBatchSampler(
        lengths, 400, shuffle=True, seed=1, length_noise=0.1, groups=groups
    )
    plans = [sampler.batches(epoch) for epoch in range(3)]
    for batches in plans:
        drawn = Counter(i for batch in batches for i in batch)
        per_group = Counter(groups[i] for i in drawn.elements())
        assert per_group == {"big": 10, "small": 10, "tiny": 10}
        assert all(drawn[i] == 1 for i in range(10))
        assert sorted(drawn[i] for i in range(10, 13)) == [3, 3, 4]
        assert drawn[13] == 10
        assert all(len(b) * max(lengths[i] for i in b) <= 400 for b in batches)
    assert plans[0] == sampler.batches(0)  # the same plan for the same (seed, epoch)
    assert plans[0] != plans[1]
    repeated = {
        tuple(np.bincount(balanced_draw(groups, np.random.default_rng([1, e])))[10:13])
        for e in range(6)
    }
    assert len(repeated) > 1  # which small-corpus utterance is drawn once more varies
    ranks = [
        BucketBatchSampler(
            lengths,
            400,
            shuffle=True,
            seed=1,
            length_noise=0.1,
            rank=r,
            world_size=2,
            groups=groups,
        ).batches(0)
        for r in (0, 1)
    ]
    assert len(ranks[0]) == len(ranks[1])
    assert sorted(ranks[0] + ranks[1]) == sorted(plans[0][: 2 * len(ranks[0])])
    unbalanced = BucketBatchSampler(lengths, 400, shuffle=True, seed=1).batches(0)
    assert sorted(i for b in unbalanced for i in b) == list(range(len(groups)))


# --- subsets by a table's value -------------------------------------------------------------


def test_subset_where_selects_by_an_utterance_or_a_speaker_table(tmp_path: Path) -> None:
    data = _table_data(
        {
            "utt2lang": {"spk1-a": "en", "spk1-b": "zh", "spk2-c": "en", "spk2-d": "en"},
            "utt2emo": {"spk1-a": "sad"},
        }
    )
    data.tables["spk2gender"] = {"spk1": "f", "spk2": "m"}
    assert subset(data, where={"utt2lang": "en"}).utts == ["spk1-a", "spk2-c", "spk2-d"]
    both = subset(data, where={"utt2lang": "en", "spk2gender": "m"})
    assert both.utts == ["spk2-c", "spk2-d"] and both.speakers == ["spk2"]
    with pytest.raises(SpeechEQError, match="the selection keeps no utterance"):
        subset(data, where={"utt2emo": "sad"}, speakers=["spk2"])
    with pytest.raises(SpeechEQError, match="unknown table 'lang'"):
        subset(data, where={"lang": "en"})
    with pytest.raises(SpeechEQError, match="has no utt2nat to select 'utt2nat=acted' from"):
        subset(data, where={"utt2nat": "acted"})
    data.save(tmp_path / "all")
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["data", "subset", str(tmp_path / "all"), str(tmp_path / "en"), "--where", "utt2lang=en"],
    )
    assert result.exit_code == 0, result.output
    assert DataDir.load(tmp_path / "en").utts == ["spk1-a", "spk2-c", "spk2-d"]
    result = runner.invoke(
        app, ["data", "subset", str(tmp_path / "all"), str(tmp_path / "x"), "--where", "utt2lang"]
    )
    assert isinstance(result.exception, SpeechEQError)
    assert "expected TABLE=VALUE" in str(result.exception)
