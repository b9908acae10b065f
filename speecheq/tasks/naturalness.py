"""Naturalness (``acted``/``natural`` from ``utt2nat``), an auxiliary utterance classification.

Kim et al. (2017) learn it beside gender when training on aggregated corpora: acted and natural
emotional speech differ, and telling them apart helps the shared embedding. Where a corpus only
says it is acted as a whole, every one of its utterances is ``acted``; IEMOCAP's improvised
dialogues are ``natural``, its scripted ones ``acted``. Utterances without a ``utt2nat`` line add
nothing to the loss.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from speecheq.console import warn
from speecheq.data.datadir import DataDir
from speecheq.labels import NATURALNESS, check_naturalness
from speecheq.tasks.base import TaskContext, TaskOptions
from speecheq.tasks.classification import ClassificationTask


def single_class_problem(data: DataDir) -> str | None:
    """Why the naturalness task cannot learn from ``data`` (one class or none), or None."""
    counts = Counter(data.get("utt2nat").values())
    if len(counts) >= 2:
        return None
    if not counts:
        return "no utterance has a utt2nat label"
    (value, count), *_ = counts.items()
    return (
        f"all {count} labelled utterances are '{value}' (utt2nat), so the naturalness task has "
        "a single class and cannot learn anything"
    )


class NaturalnessTask(ClassificationTask):
    """Acted vs natural speech, from ``utt2nat``."""

    name = "naturalness"
    label_table = "utt2nat"
    decode_table = "utt2nat"

    @classmethod
    def take_inventory(
        cls, options: TaskOptions, train: DataDir, context: TaskContext
    ) -> dict[str, Any]:
        problem = single_class_problem(train)
        if problem is not None:
            warn(f"training set: {problem}")
        return {"classes": list(NATURALNESS)}

    @classmethod
    def parse(cls, value: str, where: str) -> str:
        return check_naturalness(value, where)
