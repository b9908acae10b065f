"""Speaker gender (``m``/``f`` from ``spk2gender``), an auxiliary utterance classification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from speecheq.data.datadir import DataDir
from speecheq.labels import GENDERS, check_gender
from speecheq.tasks.base import TaskContext, TaskOptions
from speecheq.tasks.classification import ClassificationTask


@dataclass(frozen=True)
class GenderOptions(TaskOptions):
    weight: float = 0.3
    """The weight of the task's loss in the sum the shared step minimises (below emotion's: with
    few training voices the head learns the voices, and at full weight it pulls the shared
    encoder towards them)."""


class GenderTask(ClassificationTask):
    """Gender of the utterance's speaker, from ``spk2gender`` through ``utt2spk``."""

    options_type = GenderOptions

    name = "gender"
    label_table = "spk2gender"
    decode_table = "utt2gender"

    @classmethod
    def take_inventory(
        cls, options: TaskOptions, train: DataDir, context: TaskContext
    ) -> dict[str, Any]:
        return {"classes": list(GENDERS)}

    @classmethod
    def parse(cls, value: str, where: str) -> str:
        return check_gender(value, where)
