"""Emotion category: the recipe's classes (after merges), cross-entropy, posteriors."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from speecheq.data.datadir import DataDir
from speecheq.labels import ClassMap
from speecheq.models import ModelOutput
from speecheq.tasks.base import TaskContext, TaskOptions
from speecheq.tasks.classification import ClassificationTask


@dataclass(frozen=True)
class EmotionOptions(TaskOptions):
    class_weights: Literal["none", "balanced"] = "none"
    """``balanced``: weight each class by ``N / (K * n_class)`` from the training counts."""
    label_smoothing: float = 0.0

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
    source = "utt2emo"
    table = "utt2emo"
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
        if options.class_weights == "balanced":
            counts = Counter(filter(None, map(class_map.map, train.get("utt2emo").values())))
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
        tables[f"{self.table}.post"] = [
            " ".join(f"{p:.4f}" for p in row) for row in posteriors.tolist()
        ]
        return tables
