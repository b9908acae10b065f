"""Utterance-level classification: the shared behaviour of emotion, gender and similar tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from speecheq.errors import SpeechEQError
from speecheq.metrics import unweighted_accuracy, weighted_accuracy
from speecheq.models import Dims, ModelOutput, UtteranceLinear
from speecheq.tasks.base import Batch, Target, Task, TaskScores, masked_mean


class ClassificationTask(Task):
    """A linear head on the utterance embedding, masked cross-entropy, argmax decoding.

    The inventory holds ``classes``, the class names in index order. Subclasses give the label
    table and may set :attr:`class_weights` and :attr:`label_smoothing`. Scored by WA and UA
    (see :mod:`speecheq.metrics`); UA selects the best epoch.
    """

    primary_metric = "UA"

    @property
    def class_weights(self) -> list[float] | None:
        """Per-class weights of the cross-entropy, or None for equal weights."""
        return None

    @property
    def label_smoothing(self) -> float:
        return 0.0

    def encode(self, value: str, where: str) -> int:
        if value not in self.classes:
            raise SpeechEQError(f"{where}: '{value}' is not one of {self.classes}")
        return self.classes.index(value)

    def collate(self, targets: Sequence[Any | None]) -> Target:
        values = torch.tensor([0 if t is None else t for t in targets], dtype=torch.long)
        return Target(values, torch.tensor([t is not None for t in targets]))

    def build_head(self, dims: Dims) -> nn.Module:
        return UtteranceLinear(dims, len(self.classes))

    def loss(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        target = batch.targets[self.name]
        logits = output.heads[self.name].float()
        losses = functional.cross_entropy(
            logits, target.values, reduction="none", label_smoothing=self.label_smoothing
        )
        weights = None
        if self.class_weights is not None:
            weights = torch.tensor(self.class_weights, device=logits.device)[target.values]
        return masked_mean(losses, target.mask, weights)

    def posteriors(self, output: ModelOutput) -> torch.Tensor:
        """``(batch, classes)`` class posteriors."""
        return torch.softmax(output.heads[self.name].float(), dim=-1)

    def hypotheses(self, output: ModelOutput) -> dict[str, list[str]]:
        best = self.posteriors(output).argmax(dim=-1).tolist()
        return {self.decode_table: [self.classes[index] for index in best]}

    @classmethod
    def score(
        cls, refs: Sequence[Any], hyps: Sequence[Any], classes: Sequence[str] = ()
    ) -> TaskScores:
        return TaskScores(
            {
                f"{cls.name} WA": weighted_accuracy(refs, hyps),
                f"{cls.name} UA": unweighted_accuracy(refs, hyps),
            }
        )
