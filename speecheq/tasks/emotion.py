"""Emotion category: the recipe's classes (after merges), cross-entropy, posteriors.

Scored at every scale of the label space: the model's classes (WA, UA, macro-F1, per-class
scores, confusion matrix), then each scale derived from the category (sentiment), over the
utterances whose reference and hypothesis both have a value on it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from speecheq import metrics
from speecheq.console import warn
from speecheq.data.datadir import DataDir
from speecheq.labels import DERIVED_SCALES, ClassMap, check_category
from speecheq.models import ModelOutput
from speecheq.tasks.base import TaskContext, TaskOptions, TaskScores
from speecheq.tasks.classification import ClassificationTask


@dataclass(frozen=True)
class EmotionOptions(TaskOptions):
    class_weights: Literal["none", "balanced"] = "balanced"
    """``balanced``: weight each class by ``N / (K * n_class)`` from the training counts (as UA
    weighs them); ``none``: each utterance alike."""
    label_smoothing: float = 0.1
    """Share of each target's probability spread evenly over the classes."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.label_smoothing < 1:
            raise ValueError("tasks.emotion.label_smoothing must be in [0, 1)")


class EmotionTask(ClassificationTask):
    """Emotion category from ``utt2emo``, mapped by the recipe's class map.

    Utterances whose category the class map drops have no emotion label: they are not dropped
    from training, but keep their other labels (phones, gender, intensity) and only the emotion
    loss is masked for them. This is a choice: the shared encoder learns from every utterance
    the other tasks can use, as SpeechEQ pools all corpora whatever their label sets.
    """

    name = "emotion"
    label_table = "utt2emo"
    decode_table = "utt2emo"
    class_file = "classes"
    options_type = EmotionOptions

    @classmethod
    def take_inventory(
        cls, options: TaskOptions, train: DataDir, context: TaskContext
    ) -> dict[str, Any]:
        assert isinstance(options, EmotionOptions)
        class_map = context.class_map
        inventory: dict[str, Any] = {
            "classes": list(class_map.classes),
            "merge": dict(class_map.merge),
            "class_weights": None,
        }
        counts = Counter(filter(None, map(class_map.map, train.get("utt2emo").values())))
        absent = [name for name in class_map.classes if not counts[name]]
        if absent and counts:
            warn(
                f"training set: no utterance of class {', '.join(absent)} (labels.classes); the "
                "model cannot learn it"
            )
        if options.class_weights == "balanced":
            total = sum(counts.values())
            inventory["class_weights"] = [
                total / (len(class_map.classes) * counts[name]) if counts[name] else 0.0
                for name in class_map.classes
            ]
        return inventory

    @property
    def class_map(self) -> ClassMap:
        return ClassMap.build(self.inventory["classes"], self.inventory["merge"])

    @property
    def class_weights(self) -> list[float] | None:
        return self.inventory["class_weights"]

    @property
    def label_smoothing(self) -> float:
        assert isinstance(self.options, EmotionOptions)
        return self.options.label_smoothing

    def references(self, data: DataDir) -> dict[str, str]:
        class_map = self.class_map
        mapped = {utt: class_map.map(category) for utt, category in data.get("utt2emo").items()}
        return {utt: target for utt, target in mapped.items() if target is not None}

    def hypotheses(self, output: ModelOutput) -> dict[str, list[str]]:
        posteriors = self.posteriors(output)
        tables = super().hypotheses(output)
        tables[f"{self.decode_table}.post"] = [
            " ".join(f"{p:.4f}" for p in row) for row in posteriors.tolist()
        ]
        return tables

    @classmethod
    def parse(cls, value: str, where: str) -> str:
        return check_category(value, where)

    @classmethod
    def score(
        cls, refs: Sequence[Any], hyps: Sequence[Any], classes: Sequence[str] = ()
    ) -> TaskScores:
        classes = list(classes) or sorted(set(refs) | set(hyps))
        values: dict[str, float] = {}
        scales = {}
        notes = []
        for scale, ref, hyp, scale_classes, uncovered in _scales(refs, hyps, classes):
            left_out = len(refs) - len(ref)
            if uncovered:
                notes.append(
                    f"{scale}: {', '.join(uncovered)} has no {scale} value, so {left_out} of "
                    f"{len(refs)} utterances (reference or hypothesis in it) are left out of "
                    "that scale"
                )
            if not ref:
                continue
            scales[scale] = metrics.scale_scores(ref, hyp, scale_classes, left_out)
            values[f"{scale} WA"] = metrics.weighted_accuracy(ref, hyp)
            values[f"{scale} UA"] = metrics.unweighted_accuracy(ref, hyp)
            values[f"{scale} F1"] = metrics.macro_f1(ref, hyp)
        return TaskScores(values, scales, notes)


Scale = tuple[str, list[str], list[str], list[str], list[str]]


def _scales(refs: Sequence[str], hyps: Sequence[str], classes: Sequence[str]) -> list[Scale]:
    """``(scale, references, hypotheses, its classes, model classes without a value on it)``:
    the emotion classes themselves, then each derived scale, over the utterances whose
    reference and hypothesis both have a value on it."""
    scales: list[Scale] = [(EmotionTask.name, list(refs), list(hyps), list(classes), [])]
    for scale, mapping in DERIVED_SCALES.items():
        pairs = [(r, h) for r, h in zip(refs, hyps, strict=True) if r in mapping and h in mapping]
        scales.append(
            (
                scale,
                [mapping[r] for r, _ in pairs],
                [mapping[h] for _, h in pairs],
                list(dict.fromkeys(mapping[name] for name in classes if name in mapping)),
                [name for name in classes if name not in mapping],
            )
        )
    return scales
