"""The classic baseline every SER paper reports: utterance functionals, standardised per
speaker, and a linear SVM (scikit-learn), fold by fold.

Each speaker's functionals are z-normalised by that speaker's own mean and standard deviation
(the test speaker's too: its utterances, not its labels, as speaker normalisation does in the
literature). The SVM (``LinearSVC``, classes weighted by their inverse frequency, so that UA is
what it optimises) is trained on a fold's train and valid utterances; its ``C`` is chosen from
:data:`GRID` by the UA of an inner leave-one-speaker-out over the training speakers, so no
choice sees the test speaker. The folds run in parallel processes (``nj``), each as it would
alone. Predictions go to decode directories like ``speecheq predict``'s
(``hyp/utt2emo``, ``ref/utt2emo``, ``classes``), scored by the toolkit's own scorer, with
calibrated posteriors (``hyp/utt2emo.post``): a softmax of the SVM's decision values whose
temperature minimises the log-loss of the inner held-out speakers' decision values, so that the
SVM's posteriors can be averaged with a network's (``speecheq exp fuse``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from speecheq.baseline.functionals import read_functionals
from speecheq.config import load_config
from speecheq.data.datadir import DataDir
from speecheq.data.folds import SPEAKER_DEPENDENT_NOTE, fold_names, speaker_dependent_folds
from speecheq.errors import SpeechEQError
from speecheq.fileio import atomic_write, write_table
from speecheq.labels import ClassMap
from speecheq.scoring.decode_dir import read_decode_dir
from speecheq.scoring.scores import Report, aggregate

if TYPE_CHECKING:
    from sklearn.model_selection import StratifiedKFold

GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
"""The values of the SVM's ``C`` tried."""
TEMPERATURES = np.geomspace(1e-3, 1e2, 101)
"""The softmax temperatures tried when calibrating the decision values."""


def standardise_per_speaker(values: np.ndarray, speakers: Sequence[str]) -> np.ndarray:
    """Each row z-normalised by the mean and standard deviation of its speaker's rows."""
    out = np.empty_like(values, dtype=np.float64)
    labels = np.asarray(speakers)
    for speaker in sorted(set(speakers)):
        rows = labels == speaker
        mean, std = values[rows].mean(axis=0), values[rows].std(axis=0)
        out[rows] = (values[rows] - mean) / np.where(std > 1e-8, std, 1.0)
    return out


@dataclass(frozen=True)
class Labelled:
    """The utterances of a set with an emotion class, their functionals and speakers."""

    utts: list[str]
    values: np.ndarray
    classes: np.ndarray
    speakers: list[str]

    @classmethod
    def load(cls, parts: Sequence[DataDir], functionals: Path, class_map: ClassMap) -> Labelled:
        utts, classes, speakers = [], [], []
        for data in parts:
            for utt, category in sorted(data.get("utt2emo").items()):
                mapped = class_map.map(category)
                if mapped is not None:
                    utts.append(utt)
                    classes.append(mapped)
                    speakers.append(data.utt2spk[utt])
        values = read_functionals(functionals, utts)
        return cls(utts, standardise_per_speaker(values, speakers), np.asarray(classes), speakers)


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of ``scores / temperature``."""
    shifted = scores / temperature
    shifted -= shifted.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def calibrate(scores: np.ndarray, targets: np.ndarray) -> float:
    """The temperature of :data:`TEMPERATURES` whose softmax of ``scores`` ``(N, K)`` gives the
    class indices ``targets`` the lowest log-loss."""
    rows = np.arange(len(targets))
    losses = [-np.log(softmax(scores, t)[rows, targets] + 1e-12).mean() for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


@dataclass(frozen=True)
class FittedSVM:
    """The SVM of the ``C`` of best inner UA, the inner UA of each ``C`` and the temperature
    that calibrates its decision values."""

    svm: object
    c: float
    inner_ua: dict[float, float]
    temperature: float

    def posteriors(self, values: np.ndarray, classes: Sequence[str]) -> np.ndarray:
        """``(N, len(classes))`` calibrated posteriors, columns in the order of ``classes``."""
        scores = self.svm.decision_function(values)  # type: ignore[attr-defined]
        known = list(self.svm.classes_)  # type: ignore[attr-defined]
        if scores.ndim == 1:  # two classes: one decision value, for the second
            scores = np.stack([-scores, scores], axis=1)
        full = np.full((len(values), len(classes)), -1e3)
        for column, name in enumerate(known):
            full[:, list(classes).index(name)] = scores[:, column]
        return softmax(full, self.temperature)


def fit_svm(train: Labelled, seed: int = 0) -> FittedSVM:
    """The SVM trained with the ``C`` of best inner leave-one-speaker-out UA (with fewer than
    two training speakers, 3 stratified folds), calibrated on the same inner folds."""
    from sklearn.base import clone
    from sklearn.model_selection import (
        GridSearchCV,
        LeaveOneGroupOut,
        cross_val_predict,
    )
    from sklearn.svm import LinearSVC

    svm = LinearSVC(class_weight="balanced", max_iter=20000, random_state=seed)
    groups = np.asarray(train.speakers)
    inner = LeaveOneGroupOut() if len(set(train.speakers)) > 1 else _stratified(train, 3)
    search = GridSearchCV(svm, {"C": list(GRID)}, scoring="balanced_accuracy", cv=inner)
    search.fit(train.values, train.classes, groups=groups)
    inner_ua = {
        float(c): float(ua)
        for c, ua in zip(GRID, search.cv_results_["mean_test_score"], strict=True)
    }
    best = search.best_estimator_
    held_out = cross_val_predict(
        clone(best), train.values, train.classes, groups=groups, cv=inner,
        method="decision_function",
    )  # fmt: skip
    if held_out.ndim == 1:  # two classes
        held_out = np.stack([-held_out, held_out], axis=1)
    targets = np.searchsorted(best.classes_, train.classes)  # classes_ are sorted
    temperature = calibrate(held_out, targets)
    return FittedSVM(best, float(search.best_params_["C"]), inner_ua, temperature)


def _stratified(train: Labelled, splits: int) -> StratifiedKFold:
    """Up to ``splits`` stratified folds, for a single training speaker; a class of one
    utterance leaves none to hold out, which is an error naming it."""
    from sklearn.model_selection import StratifiedKFold

    names, counts = np.unique(np.asarray(train.classes), return_counts=True)
    if counts.min() < 2:
        raise SpeechEQError(
            f"one training speaker, and class '{names[counts.argmin()]}' has a single utterance: "
            "the SVM's C cannot be chosen on held-out utterances"
        )
    return StratifiedKFold(min(splits, int(counts.min())))


@dataclass(frozen=True)
class FoldSVM:
    """One fold's SVM, fitted on its training utterances, and its test utterances."""

    fitted: FittedSVM
    train_utterances: int
    test: Labelled
    test_genders: dict[str, str]
    """The test utterances' genders, where the test set has them."""


def fit_fold(fold_dir: Path, functionals: Path, class_map: ClassMap) -> FoldSVM:
    """The SVM of the fold ``fold_dir`` (its train and valid sets) and its test set."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    train_set, valid_set, test_set = (
        DataDir.load(fold_dir / part) for part in ("train", "valid", "test")
    )
    train = Labelled.load([train_set, valid_set], functionals, class_map)
    test = Labelled.load([test_set], functionals, class_map)
    if len(set(train.classes)) < 2 or not test.utts:
        raise SpeechEQError(
            f"{fold_dir}: the SVM needs two trained classes and a labelled test set"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # An inner held-out speaker may lack a class; UA is over those in its reference.
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        try:
            fitted = fit_svm(train)
        except SpeechEQError as err:
            raise SpeechEQError(f"{fold_dir}: {err}") from None
    genders = test_set.utt2gender
    return FoldSVM(
        fitted, len(train.utts), test, {u: genders[u] for u in test.utts if u in genders}
    )


def run_svm(
    folds_dir: str | Path,
    exp_dir: str | Path,
    functionals: str | Path,
    config: str | Path,
    folds: Sequence[str] | None = None,
    nj: int = 1,
) -> Report:
    """Train, decode and score the baseline on each fold of ``folds_dir`` (those in ``folds``,
    else all), ``nj`` folds at a time in their own processes, with the classes of the training
    ``config``; write ``exp_dir/<fold>/decode_test`` and ``exp_dir/<fold>/svm.json``; return
    the report over folds."""
    from joblib import Parallel, delayed

    folds_dir, exp_dir, functionals = Path(folds_dir), Path(exp_dir), Path(functionals)
    labels = load_config(config).labels
    class_map = ClassMap.build(labels.classes, labels.merge)
    chosen = list(folds) if folds else fold_names(folds_dir)
    fitted_folds = Parallel(n_jobs=min(nj, len(chosen)))(
        delayed(fit_fold)(folds_dir / fold, functionals, class_map) for fold in chosen
    )
    decoded = []
    for fold, fitted_fold in zip(chosen, fitted_folds, strict=True):
        test, fitted = fitted_fold.test, fitted_fold.fitted
        posteriors = fitted.posteriors(test.values, class_map.classes)
        hypotheses = [class_map.classes[int(row.argmax())] for row in posteriors]
        decode_dir = exp_dir / fold / "decode_test"
        write_table(decode_dir / "hyp" / "utt2emo", dict(zip(test.utts, hypotheses, strict=True)))
        write_table(
            decode_dir / "hyp" / "utt2emo.post",
            {
                u: " ".join(f"{v:.4f}" for v in row)
                for u, row in zip(test.utts, posteriors, strict=True)
            },
        )
        write_table(decode_dir / "ref" / "utt2emo", dict(zip(test.utts, test.classes, strict=True)))
        write_table(decode_dir / "utt2spk", dict(zip(test.utts, test.speakers, strict=True)))
        if fitted_fold.test_genders:
            write_table(decode_dir / "ref" / "utt2gender", fitted_fold.test_genders)
        with atomic_write(decode_dir / "classes") as out:
            out.writelines(f"{name}\n" for name in class_map.classes)
        record = {
            "C": fitted.c,
            "inner_UA": fitted.inner_ua,
            "temperature": fitted.temperature,
            "train_utterances": fitted_fold.train_utterances,
            "dims": int(test.values.shape[1]),
        }
        with atomic_write(exp_dir / fold / "svm.json") as out:
            json.dump(record, out, indent=2)
        decoded.append(read_decode_dir(decode_dir, fold))
    dependent = speaker_dependent_folds(folds_dir, chosen)
    report = aggregate(decoded, exp_dir.name + (" (speaker-dependent)" if dependent else ""))
    if dependent:
        report.notes.append(f"{SPEAKER_DEPENDENT_NOTE} ({', '.join(dependent)})")
    return report
