"""Create and run a cross-corpus plan: one training per task set and experiment, then decoding.

``create`` writes, under the output folder, ``plan.json``, ``train.yaml`` (the training config
with the plan's classes: the exact config of every model) and the experiments' data
directories (``data/<train set>/<fold>/{train,valid,test_<corpus>}``). ``run`` trains each
experiment of each task set into ``<task set>/<train set>/<fold>/`` and decodes its test sets
into ``decode_<corpus>/`` there. Running again only does what is missing or out of date: a
finished model newer than its data and trained with the same config is kept, an unfinished
one is resumed, and a decode directory older than its model or test data is redone.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from speecheq.config import LabelsConfig, TrainConfig, load_config
from speecheq.console import note, warn
from speecheq.crosscorpus.plan import (
    TRAIN_SET_KINDS,
    WHOLE,
    Experiment,
    ExperimentData,
    Plan,
    check_speaker_independence,
    make_plan,
    write_experiment_data,
)
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.fileio import atomic_write
from speecheq.modelfile import load_torch
from speecheq.predict import predict
from speecheq.tasks.naturalness import single_class_problem
from speecheq.train.trainer import CHECKPOINT, MODEL, train

CONFIG = "train.yaml"


def task_set_tag(tasks: Sequence[str]) -> str:
    """The folder name of a task set, e.g. ``emotion-gender``."""
    return "-".join(tasks)


def create(
    data_dir: str | Path,
    out_dir: str | Path,
    config_path: str | Path,
    *,
    lang_dir: str | Path | None = None,
    corpora: Sequence[str] | None = None,
    train_sets: Sequence[str] = TRAIN_SET_KINDS,
    num_folds: int = 2,
    valid_fraction: float = 0.1,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    task_sets: Sequence[Sequence[str]] = (),
) -> tuple[Plan, dict[str, ExperimentData]]:
    """Plan the experiments over the combined data directory ``data_dir`` and write them.

    ``task_sets`` default to the config's tasks. The classes default to those every corpus
    shares, after the config's ``labels.merge``. Warns about training sets on which the
    naturalness task has a single class.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    config = load_config(config_path)
    sets = [tuple(tasks) for tasks in task_sets] or [tuple(config.tasks)]
    for tasks in sets:
        config.with_tasks(tasks)  # raises on an unknown task name
    data = DataDir.load(data_dir)
    plan = make_plan(
        data,
        corpora=corpora,
        train_sets=train_sets,
        num_folds=num_folds,
        valid_fraction=valid_fraction,
        seed=seed,
        classes=classes,
        merge=config.labels.merge,
        task_sets=sets,
        lang_dir=str(Path(lang_dir).resolve()) if lang_dir is not None else None,
    )
    written = write_experiment_data(plan, data, out_dir)
    labels = LabelsConfig(plan.classes, dict(config.labels.merge))
    _write_config(dataclasses.replace(config, labels=labels), out_dir / CONFIG)
    plan.save(out_dir)
    if any("naturalness" in tasks for tasks in sets):
        utt2corpus = data.get("utt2corpus")
        for train_set in plan.train_sets:
            chosen = [utt for utt in data.utts if utt2corpus[utt] in train_set.corpora]
            problem = single_class_problem(data.subset(chosen))
            if problem is not None:
                warn(f"training set {train_set.name}: {problem}")
    return plan, written


def _write_config(config: TrainConfig, path: Path) -> None:
    plain = json.loads(json.dumps(config.to_dict()))
    with atomic_write(path) as out:
        out.write("# Written by 'speecheq cross plan': the config of every model of this plan.\n")
        yaml.safe_dump(plain, out, sort_keys=False)


@dataclass(frozen=True)
class RunRecord:
    """What :func:`run` did for one experiment of one task set."""

    task_set: str
    experiment: str
    training: str
    """``trained``, ``resumed`` or ``kept``."""
    decoded: int
    seconds: float


def run(
    out_dir: str | Path, *, device: str = "auto", task_sets: Sequence[str] | None = None
) -> list[RunRecord]:
    """Train and decode every experiment of the plan in ``out_dir`` for each of its task sets.

    ``task_sets`` (tags such as ``emotion-gender``) restricts the run to some of them.
    """
    out_dir = Path(out_dir)
    plan = Plan.load(out_dir)
    config = load_config(out_dir / CONFIG)
    chosen = [
        tasks for tasks in plan.task_sets if task_sets is None or task_set_tag(tasks) in task_sets
    ]
    if task_sets is not None and len(chosen) != len(set(task_sets)):
        known = ", ".join(task_set_tag(tasks) for tasks in plan.task_sets)
        raise SpeechEQError(f"--task-sets names a task set the plan does not have (known: {known})")
    records = []
    total = len(chosen) * len(plan.experiments)
    for tasks in chosen:
        task_config = config.with_tasks(tasks)
        tag = task_set_tag(tasks)
        for experiment in plan.experiments:
            began = time.perf_counter()
            note(f"[{len(records) + 1}/{total}] {tag}: {_describe(experiment)}")
            data_dir = out_dir / "data" / experiment.path
            _check_data(experiment, data_dir)
            exp_dir = out_dir / tag / experiment.path
            training = _training_state(exp_dir, task_config, data_dir)
            if training != "kept":
                train(
                    task_config,
                    data_dir / "train",
                    data_dir / "valid",
                    exp_dir,
                    plan.lang_dir,
                    resume=training == "resumed",
                    device=device,
                )
            decoded = 0
            for corpus in experiment.tests:
                test_dir, decode_dir = data_dir / f"test_{corpus}", exp_dir / f"decode_{corpus}"
                if _out_of_date(decode_dir / "hyp", [exp_dir / MODEL, test_dir]):
                    predict(exp_dir / MODEL, test_dir, decode_dir, device=device)
                    decoded += 1
            seconds = time.perf_counter() - began
            records.append(RunRecord(tag, experiment.path, training, decoded, seconds))
    return records


def _describe(experiment: Experiment) -> str:
    tests = ", ".join(experiment.tests)
    if experiment.fold == WHOLE:
        return f"train on all of {experiment.train_set}, test {tests}"
    return f"train on {experiment.train_set} without the {experiment.fold} speakers of {tests}"


def _check_data(experiment: Experiment, data_dir: Path) -> None:
    parts = ExperimentData(
        DataDir.load(data_dir / "train"),
        DataDir.load(data_dir / "valid"),
        {corpus: DataDir.load(data_dir / f"test_{corpus}") for corpus in experiment.tests},
    )
    check_speaker_independence(experiment.path, parts)


def _files(path: Path) -> list[Path]:
    """``path`` if it is a file, else the files under it."""
    return [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]


def _out_of_date(target: Path, sources: Sequence[Path]) -> bool:
    """Whether ``target`` (a file or folder) is missing or older than a file of ``sources``."""
    targets = _files(target) if target.exists() else []
    if not targets:
        return True
    newest = max((f.stat().st_mtime for source in sources for f in _files(source)), default=0.0)
    return min(f.stat().st_mtime for f in targets) < newest


def _training_state(exp_dir: Path, config: TrainConfig, data_dir: Path) -> str:
    """``kept`` (finished, current), ``resumed`` (unfinished, current) or ``trained`` (afresh)."""
    checkpoint = exp_dir / CHECKPOINT
    if _out_of_date(checkpoint, [data_dir / "train", data_dir / "valid"]):
        return "trained"
    state = load_torch(checkpoint, "checkpoint")
    if state.get("config") != config.to_dict():
        note(f"{exp_dir}: the config changed since this model was trained; training it again")
        return "trained"
    if state.get("epoch", 0) >= config.optim.epochs and (exp_dir / MODEL).is_file():
        return "kept"
    return "resumed"
