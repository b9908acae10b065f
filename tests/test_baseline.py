"""The classic baseline: functionals, per-speaker standardisation, the linear SVM per fold."""

from __future__ import annotations

import json
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from speecheq.baseline.functionals import (
    STATISTICS,
    FunctionalSet,
    frame_statistics,
    make_functionals,
    read_functionals,
)
from speecheq.baseline.svm import (
    MAX_INNER_FOLDS,
    Labelled,
    calibrate,
    inner_folds,
    softmax,
    standardise_per_speaker,
)
from speecheq.cli.main import app
from speecheq.cluster import SlurmCluster, SlurmOptions
from speecheq.data.datadir import DataDir
from speecheq.data.folds import save_folds, split_folds
from speecheq.errors import SpeechEQError
from speecheq.fileio import read_table
from tests.conftest import make_datadir


def test_frame_statistics_of_a_ramp_and_a_constant() -> None:
    time = np.arange(101, dtype=np.float32)
    frames = np.stack([time / 100.0, np.full(101, 3.0, np.float32)], axis=1)  # 1 unit per second
    values = frame_statistics(frames).reshape(len(STATISTICS) + 1, 4)  # stat x (2 + 2 deltas)
    stat = dict(zip([*STATISTICS, "slope"], values, strict=True))
    np.testing.assert_allclose(stat["mean"][:2], [0.5, 3.0], atol=1e-6)
    np.testing.assert_allclose(stat["min"][:2], [0.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(stat["max"][:2], [1.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(stat["p50"][:2], [0.5, 3.0], atol=1e-6)
    np.testing.assert_allclose(stat["slope"][:2], [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(stat["std"][1], 0.0, atol=1e-6)
    np.testing.assert_allclose(stat["skew"][0], 0.0, atol=1e-6)  # symmetric
    assert stat["kurtosis"][0] == pytest.approx(-1.2, abs=0.01)  # a uniform spread
    assert len(FunctionalSet("fbank").names()) == values.size * 83 // 2


def test_standardisation_is_per_speaker() -> None:
    values = np.array([[1.0, 10.0], [3.0, 10.0], [100.0, 0.0], [300.0, 2.0]])
    out = standardise_per_speaker(values, ["a", "a", "b", "b"])
    np.testing.assert_allclose(out, [[-1, 0], [1, 0], [-1, -1], [1, 1]])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tones whose pitch tells the emotion, 4 speakers x 4 emotions x 4, in speaker folds."""
    root = tmp_path_factory.mktemp("baseline")
    data = make_datadir(root, per_emotion=4)
    data.save(root / "all")
    save_folds(split_folds(data, valid_fraction=0.25), root / "folds")
    (root / "train.yaml").write_text(
        yaml.safe_dump({"labels": {"classes": ["neutral", "happy", "angry", "sad"]}})
    )
    return root


def invoke(*args: object) -> str:
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def test_functionals_and_svm_from_the_command_line(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "functionals"
    invoke("baseline", "functionals", corpus / "all", out, "--set", "fbank", "--nj", "2")
    assert (out / "conf").read_text() == "--set=fbank\n"
    names = (out / "names.txt").read_text().split()
    values = read_functionals(out, ["spk1-sad-0", "spk2-happy-3"])
    assert values.shape == (2, len(names)) and np.isfinite(values).all()
    one_job = tmp_path / "one"
    assert make_functionals(corpus / "all", one_job, "fbank") == 64
    np.testing.assert_array_equal(read_functionals(one_job, ["spk1-sad-0"]), values[:1])
    assert make_functionals(corpus / "all", one_job, "fbank") == 0  # finished: reused
    exp = tmp_path / "svm"
    invoke("baseline", "svm", corpus / "folds", exp, "--functionals", out,
           "--config", corpus / "train.yaml")  # fmt: skip
    report = json.loads((exp / "scores" / "scores.json").read_text())
    assert [fold["name"] for fold in report["folds"]] == ["fold1", "fold2", "fold3", "fold4"]
    assert report["mean"]["emotion UA"] > 0.6  # pitch tells the classes apart (chance: 0.25)
    chosen = json.loads((exp / "fold1" / "svm.json").read_text())
    assert chosen["train_utterances"] == 48 and chosen["functionals"] == str(out)
    assert list(chosen["inner_UA"]) == [str(out)] and len(chosen["inner_UA"][str(out)]) == 6
    hyp = exp / "fold1" / "decode_test" / "hyp"
    posteriors = {
        u: np.array(v.split(), float) for u, v in read_table(hyp / "utt2emo.post").items()
    }
    classes = (exp / "fold1" / "decode_test" / "classes").read_text().split()
    assert all(abs(p.sum() - 1) < 1e-3 for p in posteriors.values())
    assert {u: classes[int(p.argmax())] for u, p in posteriors.items()} == read_table(
        hyp / "utt2emo"
    )
    parallel = tmp_path / "svm_nj2"
    invoke("baseline", "svm", corpus / "folds", parallel, "--functionals", out,
           "--config", corpus / "train.yaml", "--nj", "2")  # fmt: skip
    for fold in ("fold1", "fold4"):  # two processes fit the same SVMs as one
        for written in ("svm.json", "decode_test/hyp/utt2emo.post"):
            assert (parallel / fold / written).read_text() == (exp / fold / written).read_text()


def test_the_svm_keeps_the_set_of_functionals_of_best_inner_ua(
    corpus: Path, tmp_path: Path
) -> None:
    informative = tmp_path / "fbank"
    make_functionals(corpus / "all", informative, "fbank")
    noise = tmp_path / "noise"  # the same utterances, values that say nothing of the emotion
    noise.mkdir()
    rng = np.random.default_rng(0)
    utts = read_table(informative / "functionals.scp")
    with kaldiio.WriteHelper(f"ark,scp:{noise}/functionals.ark,{noise}/functionals.scp") as out:
        for utt in utts:
            out[utt] = rng.normal(size=(1, 40)).astype(np.float32)
    config = corpus / "train.yaml"
    alone, both = tmp_path / "alone", tmp_path / "both"
    invoke("baseline", "svm", corpus / "folds", alone, "--functionals", informative,
           "--config", config)  # fmt: skip
    invoke("baseline", "svm", corpus / "folds", both, "--functionals", noise,
           "--functionals", informative, "--config", config, "--nj", "2")  # fmt: skip
    for fold in ("fold1", "fold2", "fold3", "fold4"):
        record = json.loads((both / fold / "svm.json").read_text())
        assert record["functionals"] == str(informative)
        inner = {name: max(ua.values()) for name, ua in record["inner_UA"].items()}
        assert inner[str(informative)] > inner[str(noise)] + 0.2
        posteriors = "decode_test/hyp/utt2emo.post"
        assert (both / fold / posteriors).read_text() == (alone / fold / posteriors).read_text()
    assert (
        json.loads((both / "scores" / "scores.json").read_text())["mean"]
        == json.loads((alone / "scores" / "scores.json").read_text())["mean"]
    )


@pytest.mark.slow
def test_functionals_on_slurm_are_the_local_ones_and_a_failed_job_is_redone_alone(
    corpus: Path, tmp_path: Path
) -> None:
    data = DataDir.load(corpus / "all")
    last = data.utts[-1]
    broken = tmp_path / "last.wav"
    broken.write_bytes(b"not audio")
    data.tables["wav.scp"] = {**data.get("wav.scp"), last: str(broken)}
    data.save(tmp_path / "data")
    cluster = SlurmCluster(tmp_path / "submitit", SlurmOptions(jobs=2, cluster="local"))
    out = tmp_path / "on_slurm"
    with pytest.raises(SpeechEQError, match=rf"1 of 2 functionals job\(s\) failed: fbank "
                       rf"functionals 2/2: utterance '{last}'"):  # fmt: skip
        make_functionals(tmp_path / "data", out, "fbank", nj=2, cluster=cluster)
    assert len(list((out / "jobs").glob("*.npy"))) == 1 and not (out / "conf").exists()
    broken.write_bytes(Path(DataDir.load(corpus / "all").get("wav.scp")[last]).read_bytes())
    assert make_functionals(tmp_path / "data", out, "fbank", nj=2, cluster=cluster) == 64
    assert not (out / "jobs").exists()
    here = tmp_path / "here"
    make_functionals(tmp_path / "data", here, "fbank", nj=2)
    assert (out / "functionals.ark").read_bytes() == (here / "functionals.ark").read_bytes()


def test_calibration_finds_the_temperature_that_made_the_labels() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4000, 4)) * 3
    probabilities = softmax(scores, 2.0)
    targets = np.array([rng.choice(4, p=row) for row in probabilities])
    assert 1.6 < calibrate(scores, targets) < 2.5
    assert calibrate(scores, scores.argmax(axis=1)) < 0.05  # never wrong: as sharp as allowed


@pytest.mark.parametrize("speakers", [3, 12, 40])
def test_inner_folds_hold_out_whole_speakers_at_most_ten_times(speakers: int) -> None:
    names = [f"spk{index % speakers}" for index in range(4 * speakers)]
    train = Labelled(names, np.zeros((len(names), 2)), np.array(["a", "b"] * 2 * speakers), names)
    splits = list(inner_folds(train).split(train.values, train.classes, groups=names))
    assert len(splits) == min(speakers, MAX_INNER_FOLDS)
    held_out = [sorted({names[i] for i in test}) for _, test in splits]
    for (fit, _), speakers_out in zip(splits, held_out, strict=True):
        assert not {names[i] for i in fit} & set(speakers_out)  # whole speakers
    assert sorted(s for out in held_out for s in out) == sorted(set(names))  # each once


def test_missing_functionals_and_bad_sets_are_errors(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(SpeechEQError, match="unknown functionals set 'mfcc'"):
        FunctionalSet("mfcc")
    out = tmp_path / "functionals"
    make_functionals(corpus / "all", out, "fbank")
    with pytest.raises(SpeechEQError, match="no functionals for utterance 'nobody'"):
        read_functionals(out, ["spk1-sad-0", "nobody"])


def test_opensmile_sets(corpus: Path, tmp_path: Path) -> None:
    pytest.importorskip("opensmile")
    from speecheq.data.datadir import DataDir
    from speecheq.data.ops import subset

    few = subset(DataDir.load(corpus / "all"), utts=["spk1-sad-0", "spk3-happy-1"])
    few.save(tmp_path / "few")
    for name, dims in (("egemaps", 88), ("compare", 6373)):
        make_functionals(tmp_path / "few", tmp_path / name, name)
        values = read_functionals(tmp_path / name, few.utts)
        assert values.shape == (2, dims) and np.isfinite(values).all()
        assert not np.allclose(values[0], values[1])
