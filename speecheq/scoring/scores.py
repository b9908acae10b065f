"""Scores of decode directories: per fold, mean ± std over folds, and pooled over all folds.

Every number is a plain float in a flat ``metrics`` dict keyed ``"<task> <metric>"`` (e.g.
``"emotion UA"``, ``"sentiment UA"``, ``"arousal CCC"``, ``"phone TER"``): the same names as in
validation during training, because both are computed by the task's own
:meth:`~speecheq.tasks.Task.score`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from speecheq.errors import SpeechEQError
from speecheq.labels import DERIVED_SCALES
from speecheq.metrics import ScaleScores, expected_calibration_error, unweighted_accuracy
from speecheq.scoring.decode_dir import Decoded, Pairs
from speecheq.tasks import TASKS

DEFINITIONS: dict[str, str] = {
    "WA": "weighted accuracy, the share of utterances classified correctly",
    "UA": "unweighted accuracy, the mean per-class recall over the classes in the reference",
    "F1": "macro-F1, the mean per-class F1 over the classes in the reference or hypothesis",
    "MAE": "mean absolute error",
    "CCC": "concordance correlation coefficient, 2 cov(x,y) / (var x + var y + (mean x - "
    "mean y)^2), population moments",
    "r": "Pearson correlation",
    "ECE": "expected calibration error of the emotion posteriors: the mean |accuracy - "
    "confidence| over 10 confidence bins, weighted by their utterances (where posteriors exist)",
    "UA[f], UA[m]": "emotion UA over the utterances of female, of male speakers (where the "
    "speakers' genders are known)",
    "TER": "token error rate, (substitutions + deletions + insertions) / reference tokens, "
    "summed over utterances (the phone error rate, PER, when the tokens are phones)",
    "scales": "emotion: the model's classes; "
    + "; ".join(
        f"{scale}: the category mapped to {' / '.join(dict.fromkeys(mapping.values()))}"
        for scale, mapping in DERIVED_SCALES.items()
    )
    + "; an utterance whose reference or hypothesis has no value on a scale is left out of it",
    "mean ± std": "mean over folds ± sample standard deviation over folds (ddof=1)",
    "pooled": "the score over all test utterances of all folds together (pooled confusion matrix)",
}
"""The definitions behind every number, shown in ``--help`` and written with each report."""

PERCENT_METRICS: frozenset[str] = frozenset({"WA", "UA", "F1", "TER", "ECE"})
"""Metrics that are shares (shown in percent)."""


@dataclass(frozen=True)
class FoldScores:
    """Every score of one decode directory (or of all of them pooled)."""

    name: str
    utterances: int
    """Reference utterances of the task that has the most."""
    metrics: dict[str, float]
    """``"<task> <metric>"`` -> value, tasks and metrics in report order."""
    scales: dict[str, ScaleScores]
    """Scale (``emotion``, then each derived scale) -> its per-class scores and confusions."""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    """The scores of one or more folds: each fold, mean and std over folds, and pooled."""

    name: str
    folds: list[FoldScores]
    mean: dict[str, float]
    std: dict[str, float]
    """Sample standard deviation over folds (ddof=1), for the metrics of two folds or more."""
    pooled: FoldScores
    notes: list[str] = field(default_factory=list)


def metric_name(key: str) -> str:
    """The metric of a ``"<task> <metric>[<group>]"`` key (e.g. ``"UA"``)."""
    return key.rsplit(" ", 1)[1].split("[")[0]


def score_fold(decoded: Decoded) -> FoldScores:
    """Score every task of one decode directory, in registry order."""
    values: dict[str, float] = {}
    scales: dict[str, ScaleScores] = {}
    notes: list[str] = []
    for name, pairs in decoded.pairs.items():
        try:
            scores = TASKS[name].score(pairs.ref, pairs.hyp, decoded.classes.get(name, ()))
        except ValueError as err:
            raise SpeechEQError(f"{decoded.path}: cannot score task '{name}' ({err})") from None
        values.update(scores.metrics)
        scales.update(scores.scales)
        notes.extend(scores.notes)
    values.update(emotion_diagnostics(decoded))
    utterances = max(len(task_pairs.utts) for task_pairs in decoded.pairs.values())
    return FoldScores(decoded.name, utterances, values, scales, notes)


def emotion_diagnostics(decoded: Decoded) -> dict[str, float]:
    """How the emotion task fails: its UA per speaker gender (``emotion UA[f]``...) and the
    expected calibration error of its posteriors (``emotion ECE``), where the decode directory
    has what they need."""
    pairs = decoded.pairs.get("emotion")
    if pairs is None:
        return {}
    values: dict[str, float] = {}
    for gender in sorted({decoded.genders[u] for u in pairs.utts if u in decoded.genders}):
        rows = [i for i, u in enumerate(pairs.utts) if decoded.genders.get(u) == gender]
        values[f"emotion UA[{gender}]"] = unweighted_accuracy(
            [pairs.ref[i] for i in rows], [pairs.hyp[i] for i in rows]
        )
    if decoded.posteriors and all(u in decoded.posteriors for u in pairs.utts):
        posteriors = np.array([decoded.posteriors[u] for u in pairs.utts])
        correct = np.array([r == h for r, h in zip(pairs.ref, pairs.hyp, strict=True)])
        values["emotion ECE"] = expected_calibration_error(posteriors, correct)
    return values


def pool(decoded: Sequence[Decoded], name: str = "pooled") -> Decoded:
    """All folds as one test set: the pairs of every task, concatenated."""
    pairs: dict[str, Pairs] = {}
    classes: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for fold in decoded:
        for task, task_classes in fold.classes.items():
            if classes.setdefault(task, task_classes) != task_classes:
                raise SpeechEQError(
                    f"{fold.path}: its {task} classes {list(task_classes)} differ from those of "
                    f"{owner[task]} {list(classes[task])}, so they cannot be pooled"
                )
            owner.setdefault(task, fold.path)
        for task, task_pairs in fold.pairs.items():
            pairs[task] = pairs[task] + task_pairs if task in pairs else task_pairs
    posteriors = {u: p for fold in decoded for u, p in fold.posteriors.items()}
    genders = {u: g for fold in decoded for u, g in fold.genders.items()}
    speakers = {u: s for fold in decoded for u, s in fold.speakers.items()}
    paths = ", ".join(fold.path for fold in decoded)
    return Decoded(name, paths, pairs, classes, posteriors, genders, speakers)


def aggregate(decoded: Sequence[Decoded], name: str) -> Report:
    """Score each fold, then the mean ± sample std over folds and the pooled scores."""
    if not decoded:
        raise SpeechEQError("no decode directory to score")
    folds = [score_fold(fold) for fold in decoded]
    pooled = score_fold(pool(decoded))
    mean: dict[str, float] = {}
    std: dict[str, float] = {}
    notes: list[str] = []
    for key in pooled.metrics:
        values = [fold.metrics[key] for fold in folds if key in fold.metrics]
        mean[key] = float(np.mean(values))
        if len(values) > 1:
            std[key] = float(np.std(values, ddof=1))
        if len(values) < len(folds):
            notes.append(f"{key}: scored in {len(values)} of {len(folds)} folds only")
    return Report(name, folds, mean, std, pooled, notes)
