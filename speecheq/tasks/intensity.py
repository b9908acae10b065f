"""Emotion intensity: an ordinal level (0 none .. 3 high) from ``utt2intensity``.

The default loss is CORAL (Cao et al. 2020), a cumulative-link model: one shared score per
utterance and one learned threshold per level boundary; boundary ``k`` predicts "level > k" with
a binary cross-entropy, and the decoded level is the number of boundaries passed. Unlike plain
cross-entropy over levels it uses the order: calling a high-intensity utterance "none" crosses
three boundaries and costs three times as much as calling it "medium", and its predictions are
rank-consistent. ``loss: ce`` (cross-entropy over levels) is there for comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional

from speecheq.data.datadir import DataDir
from speecheq.labels import INTENSITY_LEVELS, check_intensity
from speecheq.metrics import mean_absolute_error
from speecheq.models import Dims, Encoded, ModelOutput
from speecheq.tasks.base import Batch, TaskContext, TaskOptions, TaskScores, masked_mean
from speecheq.tasks.classification import ClassificationTask


@dataclass(frozen=True)
class IntensityOptions(TaskOptions):
    weight: float = 0.5
    """The weight of the task's loss in the sum the shared step minimises."""
    loss: Literal["coral", "ce"] = "coral"
    """``coral``: ordinal cumulative-link loss; ``ce``: cross-entropy over the levels."""


class CoralHead(nn.Module):
    """One score per utterance plus one threshold per level boundary: ``(batch, levels - 1)``."""

    def __init__(self, dims: Dims, levels: int) -> None:
        super().__init__()
        self.score = nn.Linear(dims.embedding_dim, 1, bias=False)
        self.thresholds = nn.Parameter(torch.zeros(levels - 1))

    def forward(self, encoded: Encoded) -> torch.Tensor:
        return self.score(encoded.embedding) + self.thresholds


class IntensityTask(ClassificationTask):
    """Intensity level, decoded as ``0``..``3``; scored by WA, UA and mean absolute error."""

    name = "intensity"
    label_table = "utt2intensity"
    decode_table = "utt2intensity"
    options_type = IntensityOptions

    @classmethod
    def take_inventory(
        cls, options: TaskOptions, train: DataDir, context: TaskContext
    ) -> dict[str, Any]:
        return {"classes": [str(level) for level in INTENSITY_LEVELS]}

    @property
    def coral(self) -> bool:
        assert isinstance(self.options, IntensityOptions)
        return self.options.loss == "coral"

    def build_head(self, dims: Dims) -> nn.Module:
        return CoralHead(dims, len(self.classes)) if self.coral else super().build_head(dims)

    def loss(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        if not self.coral:
            return super().loss(output, batch)
        target = batch.targets[self.name]
        logits = output.heads[self.name].float()
        boundaries = torch.arange(logits.shape[1], device=logits.device)
        passed = (target.values[:, None] > boundaries[None, :]).float()
        losses = functional.binary_cross_entropy_with_logits(logits, passed, reduction="none")
        return masked_mean(losses.sum(dim=1), target.mask)

    def average(self, outputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """CORAL: the logits of the members' mean probabilities of passing each boundary."""
        if not self.coral:
            return super().average(outputs)
        passed = torch.stack([torch.sigmoid(output.float()) for output in outputs]).mean(dim=0)
        passed = passed.clamp(1e-7, 1 - 1e-7)
        return torch.log(passed) - torch.log1p(-passed)

    def hypotheses(self, output: ModelOutput) -> dict[str, list[str]]:
        if not self.coral:
            return super().hypotheses(output)
        levels = (output.heads[self.name].float() > 0).sum(dim=1).tolist()
        return {self.decode_table: [self.classes[level] for level in levels]}

    @classmethod
    def parse(cls, value: str, where: str) -> int:
        return check_intensity(value, where)

    @classmethod
    def score(
        cls, refs: Sequence[Any], hyps: Sequence[Any], classes: Sequence[str] = ()
    ) -> TaskScores:
        scores = super().score(refs, hyps, classes)
        scores.metrics[f"{cls.name} MAE"] = mean_absolute_error(refs, hyps)
        return scores
