"""Experiments as plans: the folds plan with seeds, and one runner and scorer under both
launchers (local processes with divided threads, and submitit through its local executor)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from speecheq.cli.main import app
from speecheq.cluster import SlurmCluster, SlurmOptions
from speecheq.data.datadir import DataDir
from speecheq.data.folds import save_folds, split_folds
from speecheq.errors import SpeechEQError
from speecheq.experiments.ensemble import average_decodes
from speecheq.experiments.folds import folds_plan
from speecheq.experiments.fusion import fuse_systems, weight_grid
from speecheq.experiments.launch import Job, LocalLauncher, SlurmLauncher
from speecheq.experiments.plan import Plan
from speecheq.modelfile import load_model
from speecheq.models import EnsembleModel
from tests.synthetic import TINY, one_thread, write_feature_set  # noqa: F401

SPEAKERS = {"spk1": "f", "spk2": "m", "spk3": "f", "spk4": "m"}


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny recipe's stage-3 output: two speaker folds and a one-epoch config."""
    root = tmp_path_factory.mktemp("recipe")
    data = DataDir.load(write_feature_set(root / "all", speakers=SPEAKERS, per_class=2))
    save_folds(split_folds(data, num_folds=2, valid_fraction=0.25), root / "folds")
    config = {**TINY, "optim": {**TINY["optim"], "epochs": 1}, "tasks": {"emotion": {}}}
    (root / "train.yaml").write_text(yaml.safe_dump(config))
    return root


def invoke(*args: object) -> str:
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def test_the_folds_plan_with_seeds(recipe: Path, tmp_path: Path) -> None:
    plan = folds_plan(recipe / "folds", tmp_path / "exp", recipe / "train.yaml", seeds=[0, 1])
    assert plan.names == ["seed0/fold1", "seed0/fold2", "seed1/fold1", "seed1/fold2"]
    assert plan.run("seed1/fold2").overrides == ("seed=1",)
    assert plan.run("seed1/fold2").tests == {"test": str(recipe / "folds/fold2/test")}
    assert [report.out_dir for report in plan.reports] == [
        str(tmp_path / "exp/seed0/scores"),
        str(tmp_path / "exp/seed1/scores"),
    ]
    plan.save(tmp_path)
    assert Plan.load(tmp_path) == plan
    single = folds_plan(recipe / "folds", tmp_path / "one", recipe / "train.yaml", folds=["fold2"])
    assert single.names == ["fold2"] and single.run("fold2").exp_dir == str(tmp_path / "one/fold2")
    with pytest.raises(SpeechEQError, match="no fold fold3"):
        folds_plan(recipe / "folds", tmp_path / "x", recipe / "train.yaml", folds=["fold3"])


def test_a_plan_on_speaker_dependent_folds_says_so(recipe: Path, tmp_path: Path) -> None:
    data = DataDir.load(recipe / "folds" / "fold1" / "train")
    save_folds(split_folds(data, by="random", num_folds=2), tmp_path / "random")
    plan = folds_plan(tmp_path / "random", tmp_path / "exp", recipe / "train.yaml", seeds=[0, 1])
    assert plan.summary["name"] == "exp (speaker-dependent)"
    for report in plan.reports:
        assert "(speaker-dependent)" in report.name
        assert report.notes and "not comparable" in report.notes[0]
    plan.save(tmp_path)
    assert Plan.load(tmp_path) == plan
    independent = folds_plan(recipe / "folds", tmp_path / "exp2", recipe / "train.yaml")
    assert independent.reports[0].notes == () and independent.reports[0].name == "exp2"


def test_the_folds_plan_trains_on_unlabeled_speech_of_another_corpus(
    recipe: Path, tmp_path: Path
) -> None:
    """Every run and the release train on the unlabeled speech; the folds' own corpus, whose
    test utterances it holds, is refused."""
    other = write_feature_set(tmp_path / "other", speakers={"spk9": "f"}, per_class=1, seed=3)
    config = {
        **yaml.safe_load((recipe / "train.yaml").read_text()),
        "tasks": {"emotion": {}, "aae": {}},
    }
    (tmp_path / "semi.yaml").write_text(yaml.safe_dump(config))
    exp = tmp_path / "exp"
    invoke("exp", "folds", recipe / "folds", exp, "--config", tmp_path / "semi.yaml",
           "--folds", "fold1", "--unlabeled-dir", other)  # fmt: skip
    assert Plan.load(exp).run("fold1").unlabeled == (str(other),)
    invoke("exp", "train", exp, "--device", "cpu")
    checkpoint = torch.load(exp / "fold1" / "checkpoint.pt", weights_only=True)
    assert checkpoint["data"]["unlabeled1"]["path"] == str(other)
    invoke("exp", "decode", exp, "--device", "cpu")
    invoke("exp", "score", exp)
    invoke("exp", "release", exp, recipe / "all", tmp_path / "release", "--corpus", "mini",
           "--device", "cpu")  # fmt: skip
    released = torch.load(tmp_path / "release" / "checkpoint.pt", weights_only=True)
    assert released["data"]["unlabeled1"]["path"] == str(other)
    with pytest.raises(SpeechEQError, match=r"all: holds 16 test utterance\(s\) of fold fold1"):
        folds_plan(recipe / "folds", tmp_path / "x", recipe / "train.yaml",
                   unlabeled=[recipe / "all"])  # fmt: skip


def _decode_dir(root: Path, posteriors: dict[str, str], refs: dict[str, str] | None = None) -> Path:
    """A decode directory of two classes (happy, sad); utterance uN's speaker is sN % 2."""
    refs = refs or {"u1": "sad", "u2": "happy"}
    hypotheses = {u: "happy" if float(v.split()[0]) > 0.5 else "sad" for u, v in posteriors.items()}
    for table, values in (
        ("hyp/utt2emo.post", posteriors),
        ("hyp/utt2emo", hypotheses),
        ("ref/utt2emo", refs),
        ("utt2spk", {u: f"s{int(u[1:]) % 2}" for u in refs}),
    ):
        (root / table).parent.mkdir(parents=True, exist_ok=True)
        (root / table).write_text("".join(f"{u} {v}\n" for u, v in values.items()))
    (root / "classes").write_text("happy\nsad\n")
    return root


def test_an_ensemble_averages_posteriors(tmp_path: Path) -> None:
    a = _decode_dir(tmp_path / "a", {"u1": "0.9 0.1", "u2": "0.6 0.4"})
    b = _decode_dir(tmp_path / "b", {"u1": "0.0 1.0", "u2": "0.6 0.4"})
    average_decodes([a, b], tmp_path / "mean")
    assert (tmp_path / "mean" / "hyp" / "utt2emo").read_text() == "u1 sad\nu2 happy\n"
    assert (tmp_path / "mean" / "hyp" / "utt2emo.post").read_text() == (
        "u1 0.4500 0.5500\nu2 0.6000 0.4000\n"
    )
    c = _decode_dir(tmp_path / "c", {"u1": "0.5 0.5"})
    with pytest.raises(SpeechEQError, match="other utterances than"):
        average_decodes([a, c], tmp_path / "bad")


def test_late_fusion_normalises_each_speaker_and_weighs_systems_over_shared_folds(
    tmp_path: Path,
) -> None:
    net, svm = tmp_path / "net" / "seed0", tmp_path / "svm"
    refs = {"u1": "sad", "u2": "happy", "u3": "happy", "u4": "sad"}
    # The network leans to 'happy' for speaker s1 (u1, u3) and to 'sad' for s0 (u2, u4), yet
    # ranks each speaker's utterances right: normalised per speaker, it is right on all four.
    leaning = {"u1": "0.6 0.4", "u2": "0.4 0.6", "u3": "0.8 0.2", "u4": "0.2 0.8"}
    _decode_dir(net / "fold1" / "decode_test", leaning, refs)
    _decode_dir(net / "fold2" / "decode_test", leaning, refs)
    _decode_dir(svm / "fold1" / "decode_test", {u: "0.5 0.5" for u in refs}, refs)
    out = tmp_path / "fused"
    report = fuse_systems([net, svm], out, [3.0, 1.0])
    assert [fold.name for fold in report.folds] == ["fold1"]  # fold2: the SVM has none
    assert report.mean["emotion UA"] == 1.0  # the network alone: 0.5
    decode = out / "fold1" / "decode_test"
    assert (decode / "hyp" / "utt2emo").read_text() == "u1 sad\nu2 happy\nu3 happy\nu4 sad\n"
    rows = [line.split()[1:] for line in (decode / "hyp" / "utt2emo.post").read_text().splitlines()]
    assert all(abs(sum(map(float, row)) - 1) < 1e-3 for row in rows)
    speakers = (net / "fold1" / "decode_test" / "utt2spk").read_text()
    assert (decode / "utt2spk").read_text() == speakers
    assert (out / "weights").read_text() == "fold1 0.75 0.25\n"
    with pytest.raises(SpeechEQError, match="give 2 non-negative weights"):
        fuse_systems([net, svm], out, [1.0])
    with pytest.raises(SpeechEQError, match="no fold is decoded"):
        fuse_systems([net, tmp_path / "nothing"], out, None)
    (svm / "fold1" / "decode_test" / "utt2spk").unlink()
    with pytest.raises(SpeechEQError, match="utterance 'u1' has no speaker in utt2spk"):
        fuse_systems([net, svm], out, [1.0, 1.0])


def test_fusion_weights_of_a_fold_are_chosen_on_the_other_folds(tmp_path: Path) -> None:
    right, wrong = tmp_path / "right", tmp_path / "wrong"
    refs = {"u1": "sad", "u2": "happy", "u3": "happy", "u4": "sad"}
    unsure = {"u1": "0.3 0.7", "u2": "0.7 0.3", "u3": "0.6 0.4", "u4": "0.4 0.6"}  # right
    sure = {"u1": "0.9 0.1", "u2": "0.1 0.9", "u3": "0.1 0.9", "u4": "0.9 0.1"}  # wrong
    for fold in ("fold1", "fold2", "fold3"):
        _decode_dir(right / fold / "decode_test", unsure, refs)
        _decode_dir(wrong / fold / "decode_test", sure, refs)
    assert weight_grid(2)[0].tolist() == [0.5, 0.5]  # ties go to equal weights
    assert len(weight_grid(3)) == 66 and np.allclose(weight_grid(3).sum(axis=1), 1)
    report = fuse_systems([right, wrong], tmp_path / "fused", None)
    weights = (tmp_path / "fused" / "weights").read_text().splitlines()
    assert weights == ["fold1 0.80 0.20", "fold2 0.80 0.20", "fold3 0.80 0.20"]
    assert report.mean["emotion UA"] == 1.0  # the least weight on the right system that wins
    # Fold 3's own labels, turned round, leave its weights as they were: chosen on folds 1, 2.
    (right / "fold3" / "decode_test" / "ref" / "utt2emo").write_text(
        "u1 happy\nu2 sad\nu3 sad\nu4 happy\n"
    )
    fuse_systems([right, wrong], tmp_path / "fused", None)
    weights = (tmp_path / "fused" / "weights").read_text().splitlines()
    assert weights[2] == "fold3 0.80 0.20"
    assert weights[0] == "fold1 0.50 0.50"  # folds 2 and 3 now disagree: every weighting ties
    with pytest.raises(SpeechEQError, match="need two folds or more"):
        one = [_decode_dir(tmp_path / name / "fold1" / "decode_test", unsure, refs).parents[1]
               for name in ("a", "b")]  # fmt: skip
        fuse_systems(one, tmp_path / "one", None)


@pytest.mark.slow
def test_train_decode_score_with_parallel_local_jobs_and_seeds(
    recipe: Path, tmp_path: Path
) -> None:
    exp = tmp_path / "exp"
    invoke("exp", "folds", recipe / "folds", exp, "--config", recipe / "train.yaml",
           "--seeds", "0,1")  # fmt: skip
    trained = invoke("exp", "train", exp, "--jobs", "2", "--num-threads", "1", "--device", "cpu")
    for name in ("seed0/fold1", "seed1/fold2"):
        log = exp / name / "log" / "train.log"
        assert "job done: 1 epochs, best 1" in log.read_text()
        assert (exp / name / "model.pt").is_file()
    assert "seed1/fold2" in trained
    invoke("exp", "decode", exp, "--jobs", "2", "--device", "cpu")
    invoke("exp", "score", exp)
    seeds = json.loads((exp / "scores" / "seeds.json").read_text())
    assert seeds["seeds"] == [0, 1] and "emotion UA" in seeds["means"][0]
    assert "mean ± std" in (exp / "scores" / "seeds.md").read_text()
    ensemble = json.loads((exp / "ensemble" / "scores" / "scores.json").read_text())
    assert [fold["name"] for fold in ensemble["folds"]] == ["fold1", "fold2"]
    assert "emotion UA" in ensemble["mean"]
    report = json.loads((exp / "seed1" / "scores" / "scores.json").read_text())
    assert [fold["name"] for fold in report["folds"]] == ["seed1/fold1", "seed1/fold2"]
    model = exp / "seed0" / "fold1" / "model.pt"
    written = model.stat().st_mtime_ns
    again = invoke("exp", "train", exp, "--runs", "seed0/fold1", "--device", "cpu")
    assert "1 epochs" in again and model.stat().st_mtime_ns == written  # finished: kept

    release = tmp_path / "release"  # stage 6: every speaker, the folds' epochs, a card
    invoke("exp", "release", exp, recipe / "all", release, "--corpus", "mini",
           "--baseline", exp / "seed1", "--device", "cpu")  # fmt: skip
    released_model = load_model(release / "model.pt")  # the two seeds' ensemble
    assert released_model.epoch == 1 and isinstance(released_model.model, EnsembleModel)
    assert len(released_model.model.members) == 2
    assert all((release / f"seed{seed}" / "model.pt").is_file() for seed in (0, 1))
    assert (release / "model.onnx").stat().st_size > 0
    card = (release / "MODEL_CARD.md").read_text()
    assert "32 utterances of 4 speakers (2 female, 2 male), for 1 epochs" in card
    assert "An ensemble of 2 networks, one per seed (0, 1;" in card
    seed_means = [100 * mean["emotion UA"] for mean in seeds["means"]]
    assert f"| exp | {np.mean(seed_means):.1f} |" in card  # the folds' figure, over seeds
    ensembled = 100 * ensemble["mean"]["emotion UA"]
    assert f"| exp, ensemble of the 2 seeds | {ensembled:.1f} |" in card
    assert "| seed1 |" in card and "synthesised by speecheq synth" in card
    assert "--utt2spk" not in card  # global CMVN: a lone clip is normalised as in training
    released = (release / "model.pt").stat().st_mtime_ns
    invoke("exp", "release", exp, recipe / "all", release, "--corpus", "mini",
           "--device", "cpu", "--resume", "false")  # fmt: skip
    assert (release / "model.pt").stat().st_mtime_ns != released  # trained afresh


@pytest.mark.slow
def test_one_run_spreads_over_two_processes_through_the_slurm_launcher(
    recipe: Path, tmp_path: Path
) -> None:
    exp = tmp_path / "exp"
    folds_plan(recipe / "folds", exp, recipe / "train.yaml", folds=["fold1"]).save(exp)
    options = SlurmOptions(jobs=1, cpus_per_job=1, cluster="local", tasks_per_node=2)
    launcher = SlurmLauncher(SlurmCluster(exp / "log" / "submitit", options))
    [trained] = launcher.launch([Job(str(exp), "fold1", "train", "cpu", "auto")])
    assert trained.done == "1 epochs, best 1"
    logs = sorted((exp / "log" / "submitit").glob("*_log.err"))  # a log per process
    assert len(logs) == 2 and "one DDP world of 2 processes" in logs[0].read_text()
    launcher.launch([Job(str(exp), "fold1", "decode", "cpu", "auto")])
    assert len(sorted((exp / "log" / "submitit").glob("*_log.err"))) == 3  # in one process
    alone = tmp_path / "alone"  # the same run in one process
    folds_plan(recipe / "folds", alone, recipe / "train.yaml", folds=["fold1"]).save(alone)
    jobs = [Job(str(alone), "fold1", stage, "cpu", "auto") for stage in ("train", "decode")]
    LocalLauncher(jobs=1, threads=1).launch(jobs)
    for folder in (exp, alone):
        invoke("exp", "score", folder)
    spread, single = (load_model(folder / "fold1" / "model.pt") for folder in (exp, alone))
    assert spread.config == single.config
    assert [t.name for t in spread.tasks] == [t.name for t in single.tasks]
    assert {k: v.shape for k, v in spread.model.state_dict().items()} == {
        k: v.shape for k, v in single.model.state_dict().items()
    }
    scores = [json.loads((f / "scores" / "scores.json").read_text()) for f in (exp, alone)]
    for spread_scores, single_scores in (scores, [s["mean"] for s in scores]):
        assert spread_scores.keys() == single_scores.keys()


def test_a_failed_local_job_names_its_run_and_log(recipe: Path, tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    plan = folds_plan(recipe / "folds", exp, tmp_path / "missing.yaml")
    plan.save(exp)
    jobs = [Job(str(exp), name, "train", "cpu", "auto") for name in plan.names]
    with pytest.raises(SpeechEQError, match=r"2 job\(s\) failed: fold1 \(train\): .*missing.yaml"):
        LocalLauncher(jobs=2, threads=1).launch(jobs)
    assert "config file not found" in (exp / "fold1" / "log" / "train.log").read_text()


@pytest.mark.slow
def test_the_slurm_launcher_through_submitits_local_executor(recipe: Path, tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    plan = folds_plan(recipe / "folds", exp, recipe / "train.yaml")
    plan.save(exp)
    options = SlurmOptions(jobs=2, cpus_per_job=1, cluster="local")
    launcher = SlurmLauncher(SlurmCluster(exp / "log" / "submitit", options))
    results = launcher.launch([Job(str(exp), name, "train", "cpu", "auto") for name in plan.names])
    assert [result.done for result in results] == ["1 epochs, best 1"] * 2
    assert all((exp / name / "model.pt").is_file() for name in plan.names)
    broken = folds_plan(recipe / "folds", tmp_path / "broken", tmp_path / "missing.yaml")
    broken.save(tmp_path / "broken")
    with pytest.raises(SpeechEQError, match=r"1 job\(s\) failed: fold2 \(train\): .*missing.yaml"):
        launcher.launch([Job(str(tmp_path / "broken"), "fold2", "train", "cpu", "auto")])
