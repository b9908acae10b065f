"""Metrics shared by validation during training and by ``speecheq score``.

Definitions (as in the SER literature):

- **WA** (weighted accuracy): the share of utterances classified correctly (overall accuracy).
- **UA** (unweighted accuracy): the mean of the per-class recalls, over the classes present in
  the reference (balanced accuracy), so every class counts the same however rare.
- **macro-F1**: the mean of the per-class F1 scores over the classes present in the reference
  or the hypothesis.
- **CCC** (concordance correlation coefficient): ``2 cov(x, y) / (var x + var y + (mean x -
  mean y)^2)``, population (biased) moments.
- **TER** (token error rate, e.g. phone error rate): (substitutions + deletions + insertions) /
  reference tokens, summed over utterances.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall, F1 and reference count (support) of one class."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ScaleScores:
    """Per-class scores and the confusion matrix of a classification at one scale."""

    classes: list[str]
    per_class: dict[str, ClassScores]
    confusion: list[list[int]]
    """Counts ``[i][j]`` of reference ``classes[i]`` hypothesised as ``classes[j]``."""
    utterances: int
    left_out: int = 0
    """Utterances whose reference or hypothesis has no value on this scale."""


def scale_scores(
    ref: Sequence[str], hyp: Sequence[str], classes: Sequence[str], left_out: int = 0
) -> ScaleScores:
    """Per-class scores and the confusion matrix over ``classes``."""
    return ScaleScores(
        list(classes),
        per_class_scores(ref, hyp, classes),  # type: ignore[arg-type]
        confusion_matrix(ref, hyp, classes).tolist(),
        len(ref),
        left_out,
    )


def _check_pairs(ref: Sequence, hyp: Sequence) -> None:
    if len(ref) != len(hyp):
        raise ValueError(f"{len(ref)} references but {len(hyp)} hypotheses")
    if len(ref) == 0:
        raise ValueError("no utterances to score")


def weighted_accuracy(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> float:
    """WA: the share of hypotheses equal to their reference."""
    _check_pairs(ref, hyp)
    return sum(r == h for r, h in zip(ref, hyp, strict=True)) / len(ref)


def per_class_scores(
    ref: Sequence[Hashable], hyp: Sequence[Hashable], classes: Sequence[Hashable] | None = None
) -> dict[Hashable, ClassScores]:
    """Per-class precision, recall, F1 and support, for ``classes`` (default: all seen)."""
    _check_pairs(ref, hyp)
    if classes is None:
        classes = sorted(set(ref) | set(hyp), key=str)
    scores = {}
    for label in classes:
        true_pos = sum(r == label and h == label for r, h in zip(ref, hyp, strict=True))
        support = sum(r == label for r in ref)
        predicted = sum(h == label for h in hyp)
        precision = true_pos / predicted if predicted else 0.0
        recall = true_pos / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[label] = ClassScores(precision, recall, f1, support)
    return scores


def unweighted_accuracy(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> float:
    """UA: the mean recall over the classes present in the reference."""
    scores = per_class_scores(ref, hyp, sorted(set(ref), key=str))
    return float(np.mean([score.recall for score in scores.values()]))


def expected_calibration_error(
    posteriors: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    """ECE: the mean gap between confidence (the top posterior) and accuracy over ``bins``
    equal-width confidence bins, each weighted by its share of the utterances."""
    confidence = posteriors.max(axis=1)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gaps = [
        (which == b).mean() * abs(correct[which == b].mean() - confidence[which == b].mean())
        for b in range(bins)
        if (which == b).any()
    ]
    return float(np.sum(gaps))


def macro_f1(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> float:
    """Macro-F1: the mean F1 over the classes in the reference or the hypothesis."""
    scores = per_class_scores(ref, hyp)
    return float(np.mean([score.f1 for score in scores.values()]))


def confusion_matrix(
    ref: Sequence[Hashable], hyp: Sequence[Hashable], classes: Sequence[Hashable]
) -> np.ndarray:
    """Counts ``[i, j]`` of reference ``classes[i]`` hypothesised as ``classes[j]``.

    Pairs whose reference or hypothesis is not in ``classes`` are not counted.
    """
    _check_pairs(ref, hyp)
    index = {label: i for i, label in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for r, h in zip(ref, hyp, strict=True):
        if r in index and h in index:
            matrix[index[r], index[h]] += 1
    return matrix


def concordance_cc(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """CCC between two series (population moments); 0 when both are constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    _check_pairs(x, y)
    denominator = x.var() + y.var() + (x.mean() - y.mean()) ** 2
    if denominator == 0:
        return 0.0
    return float(2 * ((x - x.mean()) * (y - y.mean())).mean() / denominator)


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Pearson correlation; 0 when either series is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    _check_pairs(x, y)
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def mean_absolute_error(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Mean absolute difference."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    _check_pairs(x, y)
    return float(np.abs(x - y).mean())


def edit_distance(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> int:
    """Levenshtein distance (substitutions, deletions, insertions all cost 1)."""
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1]


def token_error_rate(
    refs: Sequence[Sequence[Hashable]], hyps: Sequence[Sequence[Hashable]]
) -> float:
    """TER: total edit distance over total reference length (e.g. phone error rate)."""
    _check_pairs(refs, hyps)
    errors = sum(edit_distance(r, h) for r, h in zip(refs, hyps, strict=True))
    length = sum(len(r) for r in refs)
    if length == 0:
        raise ValueError("the references have no tokens")
    return errors / length
