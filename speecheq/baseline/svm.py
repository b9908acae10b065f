"""The classic baseline every SER paper reports: utterance functionals, standardised per
speaker, and a linear SVM (scikit-learn), fold by fold.

Each speaker's functionals are z-normalised by that speaker's own mean and standard deviation
(the test speaker's too: its utterances, not its labels, as speaker normalisation does in the
literature). The SVM (``LinearSVC``, classes weighted by their inverse frequency, so that UA is
what it optimises) is trained on a fold's train and valid utterances; its ``C`` is chosen from
:data:`GRID` by the UA of an inner leave-one-speaker-out over the training speakers (beyond
:data:`MAX_INNER_FOLDS` speakers, that many folds of whole speakers), so no choice sees the
test speaker. Given several sets of functionals (eGeMAPS and ComParE, say), a fold keeps the
set whose best ``C`` has the highest inner UA, chosen the same way. The folds run in parallel
processes (``nj``), each as it would alone. Predictions go to decode directories like
``speecheq predict``'s (``hyp/utt2emo``, ``ref/utt2emo``, ``classes``), scored by the
toolkit's own scorer, with calibrated posteriors (``hyp/utt2emo.post``): a softmax of the SVM's
decision values whose temperature minimises the log-loss of the inner held-out speakers'
decision values, so that the SVM's posteriors can be averaged with a network's
(``speecheq exp fuse``).
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
    from sklearn.model_selection import BaseCrossValidator
    from sklearn.svm import LinearSVC

GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
"""The values of the SVM's ``C`` tried."""
MAX_INNER_FOLDS = 10
"""The most inner folds: more training speakers than this are grouped into this many folds."""
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


def linear_svm(seed: int = 0) -> LinearSVC:
    """The baseline's unfitted SVM: linear, classes weighted by their inverse frequency."""
    from sklearn.svm import LinearSVC

    return LinearSVC(class_weight="balanced", max_iter=20000, random_state=seed)


def fit_svm(train: Labelled, seed: int = 0) -> FittedSVM:
    """The SVM trained with the ``C`` of best UA on the :func:`inner_folds`, calibrated on the
    same folds."""
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, cross_val_predict

    svm = linear_svm(seed)
    groups = np.asarray(train.speakers)
    inner = inner_folds(train)
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


def inner_folds(train: Labelled) -> BaseCrossValidator:
    """The folds that choose ``C``: leave one training speaker out, or, beyond
    :data:`MAX_INNER_FOLDS` speakers, that many folds of whole speakers; for a single training
    speaker, up to 3 stratified folds of its utterances (a class of one utterance leaves none to
    hold out, which is an error naming it)."""
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, StratifiedKFold

    speakers = len(set(train.speakers))
    if speakers > MAX_INNER_FOLDS:
        return GroupKFold(MAX_INNER_FOLDS)
    if speakers > 1:
        return LeaveOneGroupOut()
    names, counts = np.unique(np.asarray(train.classes), return_counts=True)
    if counts.min() < 2:
        raise SpeechEQError(
            f"one training speaker, and class '{names[counts.argmin()]}' has a single utterance: "
            "the SVM's C cannot be chosen on held-out utterances"
        )
    return StratifiedKFold(min(3, int(counts.min())))


@dataclass(frozen=True)
class SetSVM:
    """An SVM fitted on one set of functionals of a fold's training utterances, and the fold's
    test utterances on that set."""

    functionals: Path
    fitted: FittedSVM
    train_utterances: int
    test: Labelled

    @property
    def best_inner_ua(self) -> float:
        """The inner UA of its best ``C``: what the sets are compared by."""
        return max(self.fitted.inner_ua.values())


@dataclass(frozen=True)
class FoldSVM:
    """One fold's SVM on the set of functionals of best inner UA."""

    chosen: SetSVM
    inner_ua: dict[str, dict[float, float]]
    """The inner UA of each ``C`` on each set of functionals tried."""
    test_genders: dict[str, str]
    """The test utterances' genders, where the test set has them."""


def fit_set(parts: Sequence[DataDir], functionals: Path, class_map: ClassMap) -> SetSVM:
    """The SVM fitted on the train and valid sets of ``parts`` (train, valid, test) on
    ``functionals``, and the test set on them."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    train = Labelled.load(parts[:2], functionals, class_map)
    test = Labelled.load(parts[2:], functionals, class_map)
    if len(set(train.classes)) < 2 or not test.utts:
        raise SpeechEQError("the SVM needs two trained classes and a labelled test set")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # An inner held-out speaker may lack a class; UA is over those in its reference.
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        fitted = fit_svm(train)
    return SetSVM(functionals, fitted, len(train.utts), test)


def fit_fold(fold_dir: Path, functionals: Sequence[Path], class_map: ClassMap) -> FoldSVM:
    """The SVMs of the fold ``fold_dir`` (fitted on its train and valid sets) on each set of
    ``functionals``; the one of best inner UA (the first of equals) is chosen."""
    parts = [DataDir.load(fold_dir / part) for part in ("train", "valid", "test")]
    try:
        tried = [fit_set(parts, values, class_map) for values in functionals]
    except SpeechEQError as err:
        raise SpeechEQError(f"{fold_dir}: {err}") from None
    chosen = max(tried, key=lambda one: one.best_inner_ua)
    inner_ua = {str(one.functionals): one.fitted.inner_ua for one in tried}
    genders = parts[2].utt2gender
    return FoldSVM(chosen, inner_ua, {u: genders[u] for u in chosen.test.utts if u in genders})


def run_svm(
    folds_dir: str | Path,
    exp_dir: str | Path,
    functionals: Sequence[str | Path],
    config: str | Path,
    folds: Sequence[str] | None = None,
    nj: int = 1,
) -> Report:
    """Train, decode and score the baseline on each fold of ``folds_dir`` (those in ``folds``,
    else all) on the set of ``functionals`` of best inner UA, ``nj`` folds at a time in their
    own processes, with the classes of the training ``config``; write
    ``exp_dir/<fold>/decode_test`` and ``exp_dir/<fold>/svm.json``; return the report over
    folds."""
    from joblib import Parallel, delayed

    folds_dir, exp_dir = Path(folds_dir), Path(exp_dir)
    sets = [Path(values) for values in functionals]
    if not sets:
        raise SpeechEQError("the SVM needs a set of functionals")
    labels = load_config(config).labels
    class_map = ClassMap.build(labels.classes, labels.merge)
    chosen = list(folds) if folds else fold_names(folds_dir)
    fitted_folds = Parallel(n_jobs=min(nj, len(chosen)))(
        delayed(fit_fold)(folds_dir / fold, sets, class_map) for fold in chosen
    )
    decoded = []
    for fold, fitted_fold in zip(chosen, fitted_folds, strict=True):
        test, fitted = fitted_fold.chosen.test, fitted_fold.chosen.fitted
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
            "functionals": str(fitted_fold.chosen.functionals),
            "C": fitted.c,
            "inner_UA": fitted_fold.inner_ua,
            "temperature": fitted.temperature,
            "train_utterances": fitted_fold.chosen.train_utterances,
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
