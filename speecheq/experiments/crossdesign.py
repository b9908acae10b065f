"""The design of a cross-corpus experiment (Kim et al. 2017): training sets, speaker folds and
test sets.

Rows of the result matrix are training sets (each corpus alone, all corpora pooled, all but
one), columns are test corpora. A test corpus that is in the training set is tested speaker-
independently: the speakers of every corpus are dealt into K folds (by gender, then id, so that
folds mix genders), and the fold-k training of a set leaves out the fold-k speakers of all its
corpora, so one training tests each of them; a corpus's score pools its K folds. A test corpus
that is not in the training set is tested whole, by one training on the whole set. In both
cases the validation set is drawn from the training speakers only, and
:func:`check_speaker_independence` refuses any experiment where a test speaker is in the
training or validation set.

The plan and the summary tables built on it are in :mod:`.crosscorpus`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speecheq.data.datadir import DataDir
from speecheq.data.folds import deal_speakers, draw_valid
from speecheq.data.ops import speaker_corpora
from speecheq.errors import SpeechEQError
from speecheq.labels import CATEGORIES, ClassMap

TRAIN_SET_KINDS: tuple[str, ...] = ("alone", "pooled", "loo")
"""Kinds of training sets: each corpus alone, all corpora pooled, leave one corpus out."""

WHOLE = "whole"
"""The name of the training on a whole training set (for the corpora it does not contain)."""


@dataclass(frozen=True)
class TrainingSet:
    """The corpora a model is trained on, and what kinds of set they make (for row labels)."""

    corpora: tuple[str, ...]
    kinds: tuple[str, ...]
    """e.g. ``alone``, ``pooled``, ``all but casia``."""

    @property
    def name(self) -> str:
        return "+".join(self.corpora)

    @property
    def label(self) -> str:
        return f"{self.name} ({'; '.join(self.kinds)})" if self.kinds else self.name


@dataclass(frozen=True)
class Experiment:
    """One training: a training set and a fold (or ``whole``), and the corpora it tests."""

    train_set: str
    fold: str
    tests: tuple[str, ...]

    @property
    def path(self) -> str:
        """The experiment's folder, relative to the plan's data or task-set folder."""
        return f"{self.train_set}/{self.fold}"


@dataclass(frozen=True)
class Design:
    """Everything that decides which models are trained on which data and tested on what."""

    corpora: tuple[str, ...]
    classes: tuple[str, ...]
    num_folds: int
    valid_fraction: float
    seed: int
    folds: dict[str, list[list[str]]]
    """Corpus -> its speakers in each fold (a fold may have none when K exceeds its speakers)."""
    train_sets: list[TrainingSet]
    experiments: list[Experiment]
    task_sets: list[tuple[str, ...]] = field(default_factory=list)
    lang_dir: str | None = None

    def train_set(self, name: str) -> TrainingSet:
        return next(s for s in self.train_sets if s.name == name)

    def cell_experiments(self, train_set: str, corpus: str) -> list[Experiment]:
        """The experiments whose decodes of ``corpus`` make the cell (train set, corpus)."""
        return [e for e in self.experiments if e.train_set == train_set and corpus in e.tests]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Design:
        """Read what :meth:`to_dict` wrote."""
        return cls(
            corpora=tuple(data["corpora"]),
            classes=tuple(data["classes"]),
            num_folds=data["num_folds"],
            valid_fraction=data["valid_fraction"],
            seed=data["seed"],
            folds=data["folds"],
            train_sets=[
                TrainingSet(tuple(s["corpora"]), tuple(s["kinds"])) for s in data["train_sets"]
            ],
            experiments=[
                Experiment(e["train_set"], e["fold"], tuple(e["tests"]))
                for e in data["experiments"]
            ],
            task_sets=[tuple(tasks) for tasks in data["task_sets"]],
            lang_dir=data["lang_dir"],
        )


@dataclass(frozen=True)
class ExperimentData:
    """The data directories of one experiment."""

    train: DataDir
    valid: DataDir
    tests: dict[str, DataDir]


def corpus_speakers(data: DataDir) -> dict[str, list[str]]:
    """Corpus -> its speakers (sorted), from ``utt2corpus``; every utterance must have one."""
    if not data.has("utt2corpus"):
        raise SpeechEQError(
            "the data directory has no utt2corpus: combine the corpora with "
            "'speecheq data combine --prefix' first"
        )
    missing = sorted(set(data.utts) - set(data.get("utt2corpus")))
    if missing:
        raise SpeechEQError(f"utt2corpus: utterance '{missing[0]}' has no corpus")
    speakers: dict[str, list[str]] = {}
    for speaker, corpus in sorted(speaker_corpora(data).items()):
        speakers.setdefault(corpus, []).append(speaker)
    return dict(sorted(speakers.items()))


def shared_classes(
    data: DataDir, corpora: Sequence[str], merge: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The emotion categories every corpus of ``corpora`` has (after ``merge``), in label order.

    A category is shared when each corpus has at least one utterance of it (``utt2emo``, mapped
    through ``merge``); the result follows the order of :data:`speecheq.labels.CATEGORIES`.
    """
    merge = dict(merge or {})
    utt2corpus, utt2emo = data.get("utt2corpus"), data.get("utt2emo")
    present: dict[str, set[str]] = {corpus: set() for corpus in corpora}
    for utt, category in utt2emo.items():
        corpus = utt2corpus.get(utt)
        if corpus in present:
            present[corpus].add(merge.get(category, category))
    shared = set.intersection(*present.values()) if present else set()
    classes = tuple(name for name in CATEGORIES if name in shared)
    if len(classes) < 2:
        found = "; ".join(f"{c}: {', '.join(sorted(v)) or 'none'}" for c, v in present.items())
        raise SpeechEQError(
            f"the corpora share fewer than 2 emotion classes ({found}); choose classes and "
            "merges explicitly"
        )
    return classes


def training_sets(corpora: Sequence[str], requested: Iterable[str]) -> list[TrainingSet]:
    """The training sets of ``requested`` kinds (see :data:`TRAIN_SET_KINDS`) or explicit sets.

    An explicit set is corpora joined by ``+`` (``casia+emodb``). Sets that come out the same
    (with two corpora, leave-one-out is each corpus alone) are one row, with all its kinds.
    """
    kinds: dict[tuple[str, ...], list[str]] = {}
    everything = tuple(sorted(corpora))

    def add(chosen: Iterable[str], kind: str | None) -> None:
        key = tuple(sorted(set(chosen)))
        labels = kinds.setdefault(key, [])
        if kind is not None and kind not in labels:
            labels.append(kind)

    for item in requested:
        if item == "alone":
            for corpus in everything:
                add([corpus], "alone")
        elif item == "pooled":
            add(everything, "pooled")
        elif item == "loo":
            if len(everything) < 2:
                raise SpeechEQError("leave-one-corpus-out training sets need at least 2 corpora")
            for corpus in everything:
                add([c for c in everything if c != corpus], f"all but {corpus}")
        else:
            chosen = [name for name in item.split("+") if name]
            unknown = sorted(set(chosen) - set(everything))
            if unknown or not chosen:
                raise SpeechEQError(
                    f"training set '{item}': unknown corpus {', '.join(unknown) or '(none)'} "
                    f"(corpora: {', '.join(everything)}; kinds: {', '.join(TRAIN_SET_KINDS)})"
                )
            add(chosen, None)
    if not kinds:
        raise SpeechEQError("no training set was requested")
    ordered = sorted(kinds, key=lambda key: (len(key), key))
    return [TrainingSet(key, tuple(kinds[key])) for key in ordered]


def make_design(
    data: DataDir,
    *,
    corpora: Sequence[str] | None = None,
    train_sets: Sequence[str] = TRAIN_SET_KINDS,
    num_folds: int = 2,
    valid_fraction: float = 0.1,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    merge: Mapping[str, str] | None = None,
    task_sets: Sequence[Sequence[str]] = (),
    lang_dir: str | None = None,
) -> Design:
    """Design the experiments over ``data`` (a combined data directory with ``utt2corpus``).

    ``corpora`` chooses the corpora (default: all of ``utt2corpus``); each is a test column.
    ``classes`` defaults to :func:`shared_classes`.
    """
    speakers = corpus_speakers(data)
    chosen = tuple(sorted(corpora)) if corpora else tuple(speakers)
    unknown = sorted(set(chosen) - set(speakers))
    if unknown:
        raise SpeechEQError(
            f"corpus {', '.join(unknown)} is not in utt2corpus (found: {', '.join(speakers)})"
        )
    if num_folds < 2:
        raise SpeechEQError(f"--num-folds must be at least 2, got {num_folds}")
    class_list = tuple(classes) if classes else shared_classes(data, chosen, merge)
    ClassMap.build(class_list, merge)  # raises on an unknown class or a bad merge
    sets = training_sets(chosen, train_sets)
    genders = data.get("spk2gender")
    folds = {c: deal_speakers(speakers[c], genders, num_folds) for c in chosen}
    experiments: list[Experiment] = []
    for train_set in sets:
        inside = [c for c in chosen if c in train_set.corpora]
        for corpus in inside:
            if len(speakers[corpus]) < 2:
                raise SpeechEQError(
                    f"corpus '{corpus}' has 1 speaker: testing it speaker-independently within "
                    f"training set '{train_set.name}' needs at least 2"
                )
        for index in range(num_folds):
            tests = tuple(c for c in inside if folds[c][index])
            if tests:
                experiments.append(Experiment(train_set.name, f"fold{index + 1}", tests))
        outside = tuple(c for c in chosen if c not in train_set.corpora)
        if outside:
            experiments.append(Experiment(train_set.name, WHOLE, outside))
    return Design(
        chosen,
        class_list,
        num_folds,
        valid_fraction,
        seed,
        folds,
        sets,
        experiments,
        [tuple(tasks) for tasks in task_sets],
        lang_dir,
    )


def experiment_data(design: Design, data: DataDir, experiment: Experiment) -> ExperimentData:
    """The train, valid and test directories of ``experiment``, checked speaker-independent."""
    train_set = design.train_set(experiment.train_set)
    utt2corpus = data.get("utt2corpus")
    held_out: set[str] = set()
    if experiment.fold != WHOLE:
        index = int(experiment.fold.removeprefix("fold")) - 1
        for corpus in experiment.tests:
            held_out.update(design.folds[corpus][index])
    rest = [
        utt
        for utt in data.utts
        if utt2corpus[utt] in train_set.corpora and data.utt2spk[utt] not in held_out
    ]
    valid = draw_valid(data, rest, design.valid_fraction, design.seed)
    train = sorted(set(rest) - valid)
    if not train:
        raise SpeechEQError(f"experiment {experiment.path} has no training utterance")
    tests = {
        corpus: data.subset(
            utt
            for utt in data.utts
            if utt2corpus[utt] == corpus
            and (experiment.fold == WHOLE or data.utt2spk[utt] in held_out)
        )
        for corpus in experiment.tests
    }
    result = ExperimentData(data.subset(train), data.subset(valid), tests)
    check_speaker_independence(experiment.path, result)
    return result


def check_speaker_independence(name: str, data: ExperimentData) -> None:
    """Raise if a speaker of a test set is in the training or validation set of ``name``."""
    seen = set(data.train.speakers) | set(data.valid.speakers)
    for corpus, test in data.tests.items():
        leaked = sorted(seen & set(test.speakers))
        if leaked:
            raise SpeechEQError(
                f"experiment {name}: test speaker(s) {', '.join(leaked)} of {corpus} are also in "
                "the training or validation set"
            )


def write_experiment_data(
    design: Design, data: DataDir, out_dir: Path
) -> dict[str, ExperimentData]:
    """Write every experiment's directories under ``out_dir/data/<train set>/<fold>/``.

    A directory whose content is unchanged is not rewritten, so the models trained on it stay
    current. Returns the data of each experiment, by path.
    """
    written = {}
    for experiment in design.experiments:
        parts = experiment_data(design, data, experiment)
        root = out_dir / "data" / experiment.path
        _save_if_changed(parts.train, root / "train")
        _save_if_changed(parts.valid, root / "valid")
        for corpus, test in parts.tests.items():
            _save_if_changed(test, root / f"test_{corpus}")
        written[experiment.path] = parts
    return written


def _save_if_changed(data: DataDir, path: Path) -> None:
    if path.is_dir():
        try:
            if DataDir.load(path).tables == data.tables:
                return
        except SpeechEQError:
            pass  # an unreadable directory is rewritten
        shutil.rmtree(path)
    data.save(path)
