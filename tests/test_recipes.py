"""Every recipe under egs/: its files, its training config, its corpus and its option parsing."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from speecheq.config import TrainConfig, load_config
from speecheq.corpora import corpus_names
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.experiments.curve import curve_plan
from speecheq.fileio import read_lines
from speecheq.labels import ClassMap
from speecheq.tasks import TASKS
from tests.synthetic import write_feature_set

EGS = Path(__file__).resolve().parents[1] / "egs"
RECIPES = sorted(
    path.name for path in EGS.iterdir() if (path / "run.sh").is_file() and path.name != "multi"
)


def test_every_corpus_has_a_recipe_listed_in_the_readme() -> None:
    readme = (EGS.parent / "README.md").read_text(encoding="utf-8")
    assert set(corpus_names()) <= set(RECIPES)
    for recipe in [*RECIPES, "multi"]:
        assert f"| `{recipe}` |" in readme


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_files_and_config(recipe: str) -> None:
    folder = EGS / recipe
    run = (folder / "run.sh").read_text(encoding="utf-8")
    assert os.access(folder / "run.sh", os.X_OK)
    preparer = re.search(r"--corpus (\w+)", run)
    assert preparer and preparer[1] in corpus_names(), "run.sh must name a preparer"
    protocol = re.search(r"--split-by (speaker|group|table|partition)\b", run)
    assert protocol, "run.sh sets its protocol"
    if protocol[1] == "table":  # a partition of the corpus's speakers into at least 2 folds
        folds = {line.key: line.value.split() for line in read_lines(folder / "conf" / "folds.txt")}
        speakers = [spk for group in folds.values() for spk in group]
        assert len(folds) >= 2 and len(speakers) == len(set(speakers))
    assert (folder / "path.sh").resolve() == (EGS / "TEMPLATE" / "path.sh").resolve()
    fbank = folder / "conf" / "fbank.conf"  # a recipe's own, or the shared one
    assert "--num-mel-bins" in (
        fbank if fbank.is_file() else EGS / "TEMPLATE" / "conf" / "fbank.conf"
    ).read_text(encoding="utf-8")
    config = load_config(folder / "conf" / "train.yaml")
    ClassMap.build(config.labels.classes, config.labels.merge)  # known categories, sane merges
    assert "emotion" in config.tasks


@pytest.mark.parametrize("recipe", [*RECIPES, "multi"])
def test_recipe_configs_keep_the_defaults(recipe: str) -> None:
    """The best measured settings live in one place, the defaults: a recipe's config states
    its classes and tasks, the mini recipe its shorter budget, and multi what pooling corpora
    needs (per-corpus CMVN, corpus-balanced batches, the options of its auxiliary tasks)."""
    config = load_config(EGS / recipe / "conf" / "train.yaml")
    defaults = TrainConfig()
    if recipe == "multi":
        defaults = dataclasses.replace(
            defaults,
            features=dataclasses.replace(defaults.features, cmvn="corpus"),
            batching=dataclasses.replace(defaults.batching, balance="corpus"),
        )
    for section in ("features", "model", "optim", "batching", "seed"):
        if (recipe, section) != ("mini", "optim"):
            assert getattr(config, section) == getattr(defaults, section), f"{recipe}: {section}"
    for name, options in config.tasks.items():
        if recipe != "multi":
            assert options == TASKS[name].options_type(), f"{recipe}: tasks.{name}"
    if recipe != "mini":  # its corpus has every label; the others list what theirs allow
        assert {"emotion", "phone", "gender"} <= set(config.tasks)


def run_recipe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EGS / "casia" / "run.sh"), *args], capture_output=True, text=True, check=False
    )


def test_recipe_options() -> None:
    shown = run_recipe("--help")
    assert shown.returncode == 0
    assert shown.stdout.startswith(f"Usage: {EGS / 'casia' / 'run.sh'} [options]")
    assert "CASIA Chinese emotional speech" in shown.stdout  # the recipe's own description
    assert "--corpus-dir DIR" in shown.stdout and "--corpus NAME" not in shown.stdout
    for args, message in [
        (("--no-such-option", "1"), "unknown option --no-such-option"),
        (("--no-such-flag",), "unknown option --no-such-flag"),
        (("--stage", "abc"), "option --stage takes a whole number, got 'abc'"),
        (("--stage", "9"), "stages run from 1 to 6"),
        (("--stop-stage", "x"), "option --stop-stage takes a whole number, got 'x'"),
        (("--stage", "6", "--baseline", "fbank"), "stage 6 releases the folds plan's network"),
        (("--unlabeled-dirs", "x", "--plan", "cross"), "--unlabeled-dirs trains the networks of"),
        (("--resume", "yes"), "--resume takes auto, true or false, got 'yes'"),
        (("--valid-by", "utt"), "--valid-by takes utterance or speaker, got 'utt'"),
        (("--valid-by", "speaker", "--plan", "cross"), "--valid-by speaker applies to the folds"),
        (("--fuse", "svm"), "--fuse takes fbank, egemaps or compare, or several separated by"),
        (("--fuse", "egemaps,,compare"), "got 'egemaps,,compare'"),
        (("--fuse", "compare,egemaps,compare"), "--fuse names compare twice"),
        (("--stop-stage", "1"), "--corpus-dir is required"),
    ]:
        done = run_recipe(*args)
        assert done.returncode != 0, args
        assert message in done.stderr, (args, done.stderr)
        assert "line " not in done.stderr  # no shell error, one sentence


def test_learning_curve_plan(tmp_path: Path) -> None:
    four = {"a1": "f", "a2": "m", "a3": "f", "a4": "m"}
    source = write_feature_set(tmp_path / "source", speakers=four, per_class=2)
    target = write_feature_set(tmp_path / "target", speakers={"b1": "f", "b2": "m"}, seed=1)
    config = EGS / "TEMPLATE" / "conf" / "latif.yaml"
    plan = curve_plan(source, tmp_path / "out", config, target=target, num_folds=2,
                      fractions=(0.5, 1.0))  # fmt: skip
    semi = plan.run("semi/f0.5/fold1")
    assert semi.unlabeled == (
        str(tmp_path / "out/data/fold1/f0.5/withheld"),
        str(tmp_path / "out/data/target/fold1/train"),
        str(tmp_path / "out/data/target/fold1/valid"),
    )
    assert "optim.epochs=24" in semi.overrides  # 12 epochs at 100% of the labels
    assert "optim.epochs=12" in plan.run("supervised/f1/fold2").overrides
    assert set(semi.tests) == {"within", "cross"}
    assert len(plan.reports) == 2 * 2 * 2  # modes x fractions x tests
    for fold in ("fold1", "fold2"):
        assert not set(DataDir.load(tmp_path / f"out/data/source/{fold}/test").speakers) & set(
            DataDir.load(tmp_path / f"out/data/source/{fold}/train").speakers
        )
        labeled = DataDir.load(tmp_path / f"out/data/{fold}/f0.5/train")
        assert len(labeled.get("utt2emo")) < len(
            DataDir.load(tmp_path / f"out/data/source/{fold}/train").get("utt2emo")
        )
    overlapping = write_feature_set(tmp_path / "overlap", speakers={"a2": "m", "a3": "f"})
    with pytest.raises(SpeechEQError, match="tests speakers that source fold"):
        curve_plan(source, tmp_path / "leak", config, target=overlapping, num_folds=2)


TINY_CONFIG = """
labels: {classes: [neutral, happy, angry, sad, fear]}
model: {d_model: 32, num_layers: 1, subsampling_channels: 8, attention_dim: 16, embedding_dim: 32}
optim: {epochs: 2, warmup_steps: 2}
"""


@pytest.mark.slow
def test_mini_recipe_end_to_end(tmp_path: Path) -> None:
    """Stages 1-5 of the mini recipe on a small synthetic corpus, from a copy of the recipe:
    the network, the classic baseline's SVM and their fusion, the recipe's system."""
    root = tmp_path / "speecheq"
    outputs = shutil.ignore_patterns("data", "exp")  # what earlier runs of the recipe wrote
    for recipe in ("mini", "TEMPLATE"):
        shutil.copytree(EGS / recipe, root / "egs" / recipe, symlinks=True, ignore=outputs)
    (root / "tools").symlink_to(EGS.parent / "tools")  # the installed environment
    (root / "pyproject.toml").symlink_to(EGS.parent / "pyproject.toml")
    corpus = tmp_path / "corpus"
    synth = [str(Path(sys.executable).parent / "speecheq"), "synth", str(corpus)]
    subprocess.run([*synth, "--num-utts", "48", "--nj", "1"], check=True, capture_output=True)
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_CONFIG, encoding="utf-8")
    run = [str(root / "egs" / "mini" / "run.sh"), "--corpus-dir", str(corpus), "--nj", "2"]
    done = subprocess.run(
        [*run, "--train-config", str(config)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mean ± std" in done.stdout and "pooled" in done.stdout  # the report is printed
    report = json.loads((root / "egs/mini/exp/tiny/scores/scores.json").read_text())
    assert len(report["folds"]) == 2
    for task in ("emotion UA", "intensity WA", "gender WA"):
        assert 0.0 <= report["pooled"]["metrics"][task] <= 1.0
    assert report["pooled"]["metrics"]["phone TER"] >= 0.0  # insertions can take it over 1
    fused = root / "egs/mini/exp/tiny_fused_egemaps-compare"
    assert [f["name"] for f in json.loads((fused / "scores/scores.json").read_text())["folds"]] == [
        "fold1",
        "fold2",
    ]
    assert len((fused / "weights").read_text().splitlines()) == 2
    assert "Paired with" in (fused / "compare.md").read_text()
    model = root / "egs/mini/exp/tiny/fold1/model.pt"
    trained = model.stat().st_mtime_ns
    again = subprocess.run(
        [*run, "--train-config", str(config), "--stage", "4"], capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert model.stat().st_mtime_ns == trained  # finished folds are resumed, not retrained
    assert "exp/svm_egemaps-compare is scored already" in again.stderr
    assert json.loads((root / "egs/mini/exp/tiny/scores/scores.json").read_text()) == report
    # Stage 2 through the Slurm launcher (submitit's local executor), a killed job's record gone:
    # that job alone is redone, as a Slurm job, into the same bytes.
    features = root / "egs/mini/data/all/data"
    written = {path.name: path.read_bytes() for path in features.glob("*.ark")}
    (features / "feats.2.json").unlink()
    slurm = ["--stage", "2", "--stop-stage", "2", "--feats-cmd", "--launcher slurm-local"]
    again = subprocess.run([*run, *slurm], capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "features 2/2: submitted as job" in again.stderr
    assert "features 1/2" not in again.stderr
    assert {path.name: path.read_bytes() for path in features.glob("*.ark")} == written
