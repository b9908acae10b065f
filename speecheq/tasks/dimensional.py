"""Dimensional emotion: arousal, valence and dominance regressed from ``utt2avd``.

The targets are on the corpus's own scale (1..5, -1..1, ...): the inventory holds the training
set's mean and standard deviation of each dimension, targets are standardised with them inside
the task and predictions mapped back, so ``hyp/utt2avd`` is on the scale of ``ref/utt2avd``.
The loss is ``1 - CCC`` per dimension over the labeled utterances of a batch (the concordance
correlation coefficient, see :mod:`speecheq.metrics`), averaged with optional per-dimension
weights: unlike a squared error it rewards following the spread of the references, not only
their mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from speecheq.data.datadir import DataDir
from speecheq.labels import AVD_DIMENSIONS, parse_avd
from speecheq.metrics import concordance_cc, mean_absolute_error, pearson
from speecheq.models import Dims, ModelOutput, UtteranceLinear
from speecheq.tasks.base import (
    Batch,
    Target,
    Task,
    TaskContext,
    TaskOptions,
    TaskScores,
    members_mean,
)


@dataclass(frozen=True)
class DimensionalOptions(TaskOptions):
    arousal_weight: float = 1.0
    """The weight of arousal's ``1 - CCC`` in the task's loss (a weighted mean)."""
    valence_weight: float = 1.0
    """The weight of valence's ``1 - CCC``."""
    dominance_weight: float = 1.0
    """The weight of dominance's ``1 - CCC``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        weights = (self.arousal_weight, self.valence_weight, self.dominance_weight)
        if min(weights) < 0 or sum(weights) == 0:
            raise ValueError(
                "tasks.dimensional: the dimension weights must not be negative nor all zero"
            )


def concordance_loss(
    predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """The weighted mean over dimensions of ``1 - CCC`` between ``(batch, dims)`` columns.

    Moments are population moments over the utterances where ``mask`` is True; masked rows add
    nothing (even where not finite). With no row selected the result is a zero that is still
    part of the graph (see :func:`speecheq.tasks.masked_mean`).
    """
    selected = mask[:, None]
    predicted = torch.where(selected, predicted, torch.zeros_like(predicted))
    target = torch.where(selected, target, torch.zeros_like(target))
    rows = selected.to(predicted.dtype)
    count = rows.sum().clamp(min=1.0)
    mean_p = predicted.sum(dim=0) / count
    mean_t = target.sum(dim=0) / count
    centred_p = (predicted - mean_p) * rows
    centred_t = (target - mean_t) * rows
    covariance = (centred_p * centred_t).sum(dim=0) / count
    variance_p = centred_p.square().sum(dim=0) / count
    variance_t = centred_t.square().sum(dim=0) / count
    ccc = 2 * covariance / (variance_p + variance_t + (mean_p - mean_t).square() + 1e-8)
    loss = ((1 - ccc) * weights).sum() / weights.sum()
    return torch.where(mask.any(), loss, predicted.sum() * 0.0)


class DimensionalTask(Task):
    """Arousal, valence and dominance from a linear head on the utterance embedding."""

    name = "dimensional"
    label_table = "utt2avd"
    decode_table = "utt2avd"
    options_type = DimensionalOptions
    primary_metric = "CCC"

    @classmethod
    def take_inventory(
        cls, options: TaskOptions, train: DataDir, context: TaskContext
    ) -> dict[str, Any]:
        values = np.array(
            [
                parse_avd(value, f"utt2avd: utterance '{utt}'")
                for utt, value in train.get("utt2avd").items()
            ]
        )
        if len(values) == 0:
            return {"mean": [0.0] * len(AVD_DIMENSIONS), "std": [1.0] * len(AVD_DIMENSIONS)}
        std = values.std(axis=0)
        return {"mean": values.mean(axis=0).tolist(), "std": np.where(std > 0, std, 1.0).tolist()}

    @property
    def mean(self) -> list[float]:
        return list(self.inventory["mean"])

    @property
    def std(self) -> list[float]:
        return list(self.inventory["std"])

    def encode(self, value: str, where: str) -> list[float]:
        """The standardised values (training-set mean and standard deviation)."""
        return [
            (x - mean) / std
            for x, mean, std in zip(parse_avd(value, where), self.mean, self.std, strict=True)
        ]

    def collate(self, targets: Sequence[Any | None]) -> Target:
        values = torch.tensor(
            [[0.0] * len(AVD_DIMENSIONS) if t is None else t for t in targets], dtype=torch.float32
        )
        return Target(values, torch.tensor([t is not None for t in targets]))

    def build_head(self, dims: Dims) -> nn.Module:
        return UtteranceLinear(dims, len(AVD_DIMENSIONS))

    def loss(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        assert isinstance(self.options, DimensionalOptions)
        target = batch.targets[self.name]
        predicted = output.heads[self.name].float()
        weights = torch.tensor(
            [
                self.options.arousal_weight,
                self.options.valence_weight,
                self.options.dominance_weight,
            ],
            device=predicted.device,
        )
        return concordance_loss(predicted, target.values, target.mask, weights)

    def average(self, outputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The members' mean."""
        return members_mean(outputs)

    def hypotheses(self, output: ModelOutput) -> dict[str, list[str]]:
        predicted = output.heads[self.name].float().cpu()
        scaled = predicted * torch.tensor(self.std) + torch.tensor(self.mean)
        return {self.decode_table: [" ".join(f"{x:.4f}" for x in row) for row in scaled.tolist()]}

    @classmethod
    def parse(cls, value: str, where: str) -> tuple[float, float, float]:
        return parse_avd(value, where)

    @classmethod
    def to_json(cls, value: Any) -> dict[str, float]:
        return dict(zip(AVD_DIMENSIONS, value, strict=True))

    @classmethod
    def score(
        cls, refs: Sequence[Any], hyps: Sequence[Any], classes: Sequence[str] = ()
    ) -> TaskScores:
        """CCC, Pearson's r and the mean absolute error of each dimension, and the mean CCC."""
        ref, hyp = np.array(refs, dtype=np.float64), np.array(hyps, dtype=np.float64)
        values: dict[str, float] = {}
        for column, dimension in enumerate(AVD_DIMENSIONS):
            values[f"{dimension} CCC"] = concordance_cc(ref[:, column], hyp[:, column])
            values[f"{dimension} r"] = pearson(ref[:, column], hyp[:, column])
            values[f"{dimension} MAE"] = mean_absolute_error(ref[:, column], hyp[:, column])
        ccc = [values[f"{dimension} CCC"] for dimension in AVD_DIMENSIONS]
        return TaskScores({f"{cls.name} CCC": float(np.mean(ccc)), **values})
