"""Speaker gender (``m``/``f`` from ``spk2gender``), an auxiliary utterance classification."""

from __future__ import annotations

from typing import Any

from speecheq.data.datadir import DataDir
from speecheq.labels import GENDERS
from speecheq.tasks.base import TaskContext, TaskOptions
from speecheq.tasks.classification import ClassificationTask


class GenderTask(ClassificationTask):
    """Gender of the utterance's speaker, from ``spk2gender`` through ``utt2spk``."""

    name = "gender"
    source = "spk2gender"
    table = "utt2gender"

    @classmethod
    def take_inventory(
        cls, options: TaskOptions, train: DataDir, context: TaskContext
    ) -> dict[str, Any]:
        return {"classes": list(GENDERS)}

    def references(self, data: DataDir) -> dict[str, str]:
        spk2gender = data.get("spk2gender")
        return {utt: spk2gender[spk] for utt, spk in data.utt2spk.items() if spk in spk2gender}
