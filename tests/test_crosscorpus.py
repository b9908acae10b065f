"""Cross-corpus experiments: shared classes, training sets, speaker folds that never leak, and
the matrix end to end on two tiny corpora."""

from __future__ import annotations

from itertools import product
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from speecheq.cli.main import app
from speecheq.data.datadir import DataDir
from speecheq.data.folds import deal_speakers
from speecheq.data.ops import combine
from speecheq.errors import SpeechEQError
from speecheq.experiments import cross
from speecheq.experiments.cross import (
    WHOLE,
    experiment_data,
    make_design,
    shared_classes,
    training_sets,
)
from speecheq.experiments.plan import Plan
from speecheq.fileio import read_table, write_table
from tests.synthetic import TINY, one_thread, write_feature_set  # noqa: F401


def corpus(name: str, speakers: dict[str, str], emotions: tuple[str, ...], per: int = 3) -> DataDir:
    """A labelled data directory (tables only) of one corpus."""
    tables: dict[str, dict[str, str]] = {"wav.scp": {}, "utt2spk": {}, "utt2emo": {}}
    for spk, emotion, take in product(speakers, emotions, range(per)):
        utt = f"{spk}-{emotion}-{take}"
        tables["wav.scp"][utt] = f"{utt}.wav"
        tables["utt2spk"][utt] = spk
        tables["utt2emo"][utt] = emotion
    tables["spk2gender"] = dict(speakers)
    return DataDir(tables)


EMOTIONS = ("neutral", "happy", "angry", "sad")


@pytest.fixture
def three() -> DataDir:
    """Corpora a (4 speakers), b (3) and c (5), combined with prefixes."""
    return combine(
        [
            corpus("a", {"s1": "f", "s2": "f", "s3": "m", "s4": "m"}, EMOTIONS),
            corpus("b", {"s1": "m", "s2": "f", "s3": "m"}, (*EMOTIONS, "boredom")),
            corpus("c", {f"t{i}": "fm"[i % 2] for i in range(5)}, (*EMOTIONS, "excited")),
        ],
        ["a", "b", "c"],
        prefix=True,
    )


def test_shared_classes_map_each_corpus_then_intersect() -> None:
    data = combine(
        [
            corpus("a", {"s1": "f"}, ("neutral", "happy", "angry", "sad", "surprise")),
            corpus("b", {"s1": "m"}, ("sad", "excited", "angry", "neutral", "boredom")),
        ],
        ["a", "b"],
        prefix=True,
    )
    assert shared_classes(data, ["a", "b"]) == ("neutral", "angry", "sad")
    assert shared_classes(data, ["a", "b"], {"excited": "happy"}) == (
        "neutral",
        "happy",
        "angry",
        "sad",
    )
    assert shared_classes(data, ["a"]) == ("neutral", "happy", "angry", "sad", "surprise")
    calm = combine([data, corpus("c", {"s9": "f"}, ("calm", "sad"))], ["ab", "c"], prefix=True)
    with pytest.raises(SpeechEQError, match="share fewer than 2 emotion classes"):
        shared_classes(calm, ["a", "b", "c"])


def test_training_sets_of_each_kind_without_duplicates() -> None:
    two = training_sets(["b", "a"], ["alone", "pooled", "loo"])
    assert [(s.name, s.kinds) for s in two] == [
        ("a", ("alone", "all but b")),
        ("b", ("alone", "all but a")),
        ("a+b", ("pooled",)),
    ]
    three = training_sets(["a", "b", "c"], ["loo", "a+c", "pooled"])
    assert [(s.name, s.kinds) for s in three] == [
        ("a+b", ("all but c",)),
        ("a+c", ("all but b",)),
        ("b+c", ("all but a",)),
        ("a+b+c", ("pooled",)),
    ]
    with pytest.raises(SpeechEQError, match=r"training set 'a\+d': unknown corpus d"):
        training_sets(["a", "b"], ["a+d"])
    with pytest.raises(SpeechEQError, match="at least 2 corpora"):
        training_sets(["a"], ["loo"])


def test_speakers_are_dealt_into_folds_that_mix_genders() -> None:
    genders = {"Zm1": "m", "Zm2": "m", "af1": "f", "af2": "f", "af3": "f"}
    folds = deal_speakers(sorted(genders), genders, 2)
    assert folds == [["Zm2", "af1", "af3"], ["Zm1", "af2"]]  # not the plain sorted [Z.., Z..]
    assert all({genders[s] for s in fold} == {"m", "f"} for fold in folds)
    assert deal_speakers(["x", "y"], {}, 3) == [["x"], ["y"], []]


def test_no_test_speaker_is_ever_in_training_or_validation(
    three: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = make_design(three, num_folds=3, valid_fraction=0.25)
    assert plan.classes == ("neutral", "happy", "angry", "sad")
    speakers = {c: {s for s in three.speakers if s.startswith(f"{c}-")} for c in "abc"}
    for train_set in plan.train_sets:
        tested: dict[str, list[str]] = {c: [] for c in plan.corpora}
        for experiment in plan.experiments:
            if experiment.train_set != train_set:
                continue
            parts = experiment_data(plan, three, experiment)
            seen = set(parts.train.speakers) | set(parts.valid.speakers)
            assert seen <= set().union(*(speakers[c] for c in train_set.corpora))
            assert parts.valid.utts and not set(parts.valid.utts) & set(parts.train.utts)
            assert not seen & set(parts.test.speakers), experiment.path
            assert set(parts.test.get("utt2corpus").values()) == set(experiment.tests)
            for name in experiment.tests:
                tested[name].extend(s for s in parts.test.speakers if s.startswith(f"{name}-"))
                if experiment.fold == WHOLE:
                    assert name not in train_set.corpora
                    assert seen == set().union(*(speakers[c] for c in train_set.corpora))
        for name in plan.corpora:  # every cell has a decode
            assert any(e.train_set == train_set and name in e.tests for e in plan.experiments)
        for name, found in tested.items():
            assert sorted(found) == sorted(speakers[name]), (train_set.name, name)  # each once
    assert len(plan.experiments) == 3 * 4 + 3 * 4 + 3  # alone, loo: 3 folds + whole; pooled
    first = plan.experiments[0]
    tested_utt = experiment_data(plan, three, first).test.utts[0]
    monkeypatch.setattr(cross, "draw_valid", lambda *args: {tested_utt})  # a leaking valid draw
    with pytest.raises(SpeechEQError, match=f"experiment {first.path}: a test speaker is also"):
        experiment_data(plan, three, first)


def test_plan_errors_and_plan_files(three: DataDir, tmp_path: Path) -> None:
    with pytest.raises(SpeechEQError, match="utt2corpus: utterance 's1-angry-0' has no corpus"):
        make_design(corpus("a", {"s1": "f", "s2": "m"}, EMOTIONS))
    with pytest.raises(SpeechEQError, match="corpus d is not in utt2corpus"):
        make_design(three, corpora=["a", "d"])
    lone = combine([three, corpus("d", {"x": "f"}, EMOTIONS)], ["abc", "d"])
    with pytest.raises(SpeechEQError, match="corpus 'd' has 1 speaker"):
        make_design(lone)
    assert make_design(lone, train_sets=["a+b"]).experiments[-1].tests == ("c", "d")
    with pytest.raises(SpeechEQError, match="unknown emotion category 'joy'"):
        make_design(three, classes=["joy", "sad"])
    (tmp_path / "plan.json").write_text("{}")
    with pytest.raises(SpeechEQError, match="plan.json: not a plan of 'speecheq exp'"):
        Plan.load(tmp_path)


def _tiny_corpus(root: Path, speakers: dict[str, str], seed: int) -> DataDir:
    path = write_feature_set(root, speakers=speakers, per_class=3, seed=seed)
    utt2emo = read_table(path / "utt2emo")
    write_table(path / "utt2nat", {u: ("acted", "natural")[i % 2] for i, u in enumerate(utt2emo)})
    return DataDir.load(path)


@pytest.mark.slow
def test_the_matrix_end_to_end_on_two_tiny_corpora(tmp_path: Path) -> None:
    first = _tiny_corpus(tmp_path / "a", {"spk1": "f", "spk2": "m"}, 0)
    second = _tiny_corpus(tmp_path / "b", {"spk3": "f", "spk4": "m"}, 1)
    combine([first, second], ["ca", "cb"], prefix=True).save(tmp_path / "all")
    config = {
        **TINY,
        "optim": {**TINY["optim"], "epochs": 1},
        "features": {**TINY["features"], "cmvn": "corpus"},
        "batching": {**TINY["batching"], "balance": "corpus"},
        "tasks": {"emotion": {}, "naturalness": {"weight": 0.3}, "corpus": {"weight": 0.1}},
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "exp"
    runner = CliRunner()
    plan_args = ["exp", "cross", str(tmp_path / "all"), str(out)]
    plan_args += ["--config", str(tmp_path / "train.yaml"), "--valid-fraction", "0.4"]
    plan_args += ["--tasks", "emotion", "--tasks", "emotion,naturalness,corpus"]
    for args in (
        plan_args,
        ["exp", "train", str(out), "--device", "cpu"],
        ["exp", "decode", str(out), "--device", "cpu"],
        ["exp", "score", str(out)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output, result.exception)
    cells = pd.read_csv(out / "results.csv")
    assert sorted(zip(cells.task_set, cells.train_set, cells.corpus, strict=True)) == sorted(
        product(["emotion", "emotion-naturalness-corpus"], ["ca", "cb", "ca+cb"], ["ca", "cb"])
    )
    within = [
        corpus in train_set.split("+")
        for train_set, corpus in zip(cells.train_set, cells.corpus, strict=True)
    ]
    assert cells.within.tolist() == within
    assert cells.folds.tolist() == [2 if inside else 1 for inside in within]
    assert (cells.utterances == 24).all() and cells["emotion UA"].between(0, 1).all()
    aux = cells[cells.task_set == "emotion-naturalness-corpus"]
    assert aux[aux.within][["naturalness WA", "corpus WA"]].notna().all().all()
    assert aux[~aux.within]["corpus WA"].isna().all()  # the model does not know that corpus
    assert cells[cells.task_set == "emotion"]["corpus WA"].isna().all()
    cross_decode = out / "emotion-naturalness-corpus" / "ca" / WHOLE / "decode_cb"
    assert (cross_decode / "hyp" / "utt2corpus").is_file()
    assert not (cross_decode / "ref" / "utt2corpus").exists()  # cb is unknown to that model
    text = (out / "results.md").read_text()
    assert "| ca+cb (pooled) |" in text and "## Task set emotion-naturalness-corpus" in text
    ablation = text.split("## Ablation: auxiliary tasks")[1].split("##")[0]
    assert "| task set | ca within | ca cross | cb within | cb cross | mean within |" in ablation
    rows = [line for line in ablation.splitlines() if line.startswith("| emotion")]
    assert len(rows) == 2 and all(" - " not in row and "*" not in row for row in rows)
    again = runner.invoke(app, ["exp", "decode", str(out), "--device", "cpu"])
    assert again.exit_code == 0 and "decoded 1 of" not in again.output  # nothing redone
