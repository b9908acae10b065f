"""Scores of decode directories: per fold, mean ± std over folds, and pooled over all folds.

Every number is a plain float in a flat ``metrics`` dict keyed ``"<task> <metric>"`` (e.g.
``"category UA"``, ``"arousal CCC"``, ``"tokens TER"``), so that reports of several training
sets and test corpora can be put side by side in a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from speecheq import metrics
from speecheq.errors import SpeechEQError
from speecheq.labels import DERIVED_SCALES
from speecheq.metrics import ClassScores
from speecheq.scoring.decode_dir import DIMENSIONS, Decoded, Pairs

DEFINITIONS: dict[str, str] = {
    "WA": "weighted accuracy, the share of utterances classified correctly",
    "UA": "unweighted accuracy, the mean per-class recall over the classes in the reference",
    "F1": "macro-F1, the mean per-class F1 over the classes in the reference or hypothesis",
    "acc": "accuracy of an auxiliary task (as WA)",
    "MAE": "mean absolute error",
    "CCC": "concordance correlation coefficient, 2 cov(x,y) / (var x + var y + (mean x - "
    "mean y)^2), population moments",
    "r": "Pearson correlation",
    "TER": "token error rate, (substitutions + deletions + insertions) / reference tokens, "
    "summed over utterances (the phone error rate, PER, when the tokens are phones)",
    "scales": "category: the model's classes; "
    + "; ".join(
        f"{scale}: the category mapped to {' / '.join(dict.fromkeys(mapping.values()))}"
        for scale, mapping in DERIVED_SCALES.items()
    )
    + "; an utterance whose reference or hypothesis has no value on a scale is left out of it",
    "mean ± std": "mean over folds ± sample standard deviation over folds (ddof=1)",
    "pooled": "the score over all test utterances of all folds together (pooled confusion matrix)",
}
"""The definitions behind every number, shown in ``--help`` and written with each report."""

PERCENT_METRICS: frozenset[str] = frozenset({"WA", "UA", "F1", "acc", "TER"})
"""Metrics that are shares (shown in percent)."""


@dataclass(frozen=True)
class ScaleScores:
    """Per-class scores and the confusion matrix at one category scale."""

    classes: list[str]
    per_class: dict[str, ClassScores]
    confusion: list[list[int]]
    """Counts ``[i][j]`` of reference ``classes[i]`` hypothesised as ``classes[j]``."""
    utterances: int
    left_out: int
    """Utterances whose reference or hypothesis has no value on this scale."""


@dataclass(frozen=True)
class FoldScores:
    """Every score of one decode directory (or of all of them pooled)."""

    name: str
    utterances: int
    """Reference utterances of the task that has the most."""
    metrics: dict[str, float]
    """``"<task> <metric>"`` -> value, tasks and metrics in report order."""
    scales: dict[str, ScaleScores]
    """Category scale (``category``, then each derived scale) -> its detailed scores."""
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
    """The metric of a ``"<task> <metric>"`` key (e.g. ``"UA"``)."""
    return key.rsplit(" ", 1)[1]


def score_fold(decoded: Decoded) -> FoldScores:
    """Score every task of one decode directory."""
    values: dict[str, float] = {}
    scales: dict[str, ScaleScores] = {}
    notes: list[str] = []
    pairs = decoded.pairs
    if "category" in pairs:
        for scale, scale_pairs, classes, uncovered in _scales(pairs["category"], decoded.classes):
            left_out = len(pairs["category"].utts) - len(scale_pairs.utts)
            if uncovered:
                notes.append(
                    f"{scale}: {', '.join(uncovered)} has no {scale} value, so {left_out} of "
                    f"{len(pairs['category'].utts)} utterances (reference or hypothesis in it) "
                    "are left out of that scale"
                )
            if not scale_pairs.utts:
                continue
            ref, hyp = scale_pairs.ref, scale_pairs.hyp
            scales[scale] = ScaleScores(
                classes,
                metrics.per_class_scores(ref, hyp, classes),
                metrics.confusion_matrix(ref, hyp, classes).tolist(),
                len(ref),
                left_out,
            )
            values[f"{scale} WA"] = metrics.weighted_accuracy(ref, hyp)
            values[f"{scale} UA"] = metrics.unweighted_accuracy(ref, hyp)
            values[f"{scale} F1"] = metrics.macro_f1(ref, hyp)
    if "intensity" in pairs:
        ref, hyp = pairs["intensity"].ref, pairs["intensity"].hyp
        values["intensity acc"] = metrics.weighted_accuracy(ref, hyp)
        values["intensity MAE"] = metrics.mean_absolute_error(ref, hyp)
    for task in ("gender", "naturalness", "corpus"):
        if task in pairs:
            ref, hyp = pairs[task].ref, pairs[task].hyp
            values[f"{task} acc"] = metrics.weighted_accuracy(ref, hyp)
            values[f"{task} UA"] = metrics.unweighted_accuracy(ref, hyp)
    if "dimensional" in pairs:
        ref_avd, hyp_avd = np.array(pairs["dimensional"].ref), np.array(pairs["dimensional"].hyp)
        for column, dimension in enumerate(DIMENSIONS):
            ref_dim, hyp_dim = ref_avd[:, column], hyp_avd[:, column]
            values[f"{dimension} CCC"] = metrics.concordance_cc(ref_dim, hyp_dim)
            values[f"{dimension} r"] = metrics.pearson(ref_dim, hyp_dim)
            values[f"{dimension} MAE"] = metrics.mean_absolute_error(ref_dim, hyp_dim)
    if "tokens" in pairs:
        values["tokens TER"] = _token_error_rate(decoded, pairs["tokens"])
    utterances = max(len(task_pairs.utts) for task_pairs in pairs.values())
    return FoldScores(decoded.name, utterances, values, scales, notes)


def _scales(
    category: Pairs, classes: Sequence[str]
) -> list[tuple[str, Pairs, list[str], list[str]]]:
    """``(scale, pairs on it, its classes, model classes without a value on it)`` per scale.

    The first scale is ``category`` itself; then each derived scale, over the utterances whose
    reference and hypothesis both have a value on it.
    """
    scales = [("category", category, list(classes), [])]
    for scale, mapping in DERIVED_SCALES.items():
        covered = category.where(
            [r in mapping and h in mapping for r, h in zip(category.ref, category.hyp, strict=True)]
        )
        mapped = Pairs(
            covered.utts,
            tuple(mapping[r] for r in covered.ref),
            tuple(mapping[h] for h in covered.hyp),
        )
        scale_classes = list(dict.fromkeys(mapping[name] for name in classes if name in mapping))
        uncovered = [name for name in classes if name not in mapping]
        scales.append((scale, mapped, scale_classes, uncovered))
    return scales


def _token_error_rate(decoded: Decoded, tokens: Pairs) -> float:
    try:
        return metrics.token_error_rate(tokens.ref, tokens.hyp)
    except ValueError:
        raise SpeechEQError(f"{decoded.path}/ref/tokens: the references have no tokens") from None


def pool(decoded: Sequence[Decoded], name: str = "pooled") -> Decoded:
    """All folds as one test set: the pairs of every task, concatenated."""
    first = decoded[0]
    for other in decoded[1:]:
        if first.classes and other.classes and other.classes != first.classes:
            raise SpeechEQError(
                f"{other.path}: its classes {list(other.classes)} differ from those of "
                f"{first.path} {list(first.classes)}, so they cannot be pooled"
            )
    pairs: dict[str, Pairs] = {}
    for fold in decoded:
        for task, task_pairs in fold.pairs.items():
            pairs[task] = pairs[task] + task_pairs if task in pairs else task_pairs
    classes = next((fold.classes for fold in decoded if fold.classes), ())
    return Decoded(name, ", ".join(fold.path for fold in decoded), classes, pairs)


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
