"""Averages of a run's weights: checkpoint averaging (as ESPnet and icefall do: the mean of the
weights at the end of each of the last N epochs, instead of the single epoch that scored best on
the valid set) and an exponential moving average of the weights over the steps.

Both live in the checkpoint, so an interrupted run resumes to the same average. Buffers are
averaged too (BatchNorm's running statistics); checkpoint averaging keeps the last epoch's
integer buffers (batch counters).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class WeightAverage:
    """The sum of a model's states at the end of epochs ``epochs - last + 1`` to ``epochs``."""

    def __init__(self, epochs: int, last: int) -> None:
        self.first = max(1, epochs - last + 1)
        """The first epoch (1-based) summed."""
        self.sum: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, model: nn.Module, epoch: int) -> None:
        """Add the state after ``epoch`` (1-based) when it is one of the last ones."""
        if epoch < self.first:
            return
        for key, value in model.state_dict().items():
            value = value.detach().to("cpu", copy=True)
            if value.is_floating_point():
                self.sum[key] = self.sum[key] + value if key in self.sum else value.double()
            else:
                self.sum[key] = value
        self.count += 1

    def averaged(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` holding the mean of the states added."""
        if not self.count:
            raise RuntimeError("no epoch has been added to the average")
        mean = {
            key: value / self.count if value.is_floating_point() else value
            for key, value in self.sum.items()
        }
        reference = model.state_dict()
        averaged = copy.deepcopy(model)
        averaged.load_state_dict({key: mean[key].to(reference[key].dtype) for key in reference})
        return averaged

    def state_dict(self) -> dict[str, Any]:
        return {"first": self.first, "sum": self.sum, "count": self.count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.first, self.sum, self.count = state["first"], dict(state["sum"]), state["count"]


class MovingAverage:
    """An exponential moving average of a model's weights and buffers, updated after each step
    (torch's :class:`~torch.optim.swa_utils.AveragedModel`), or the model itself when off.

    ``time_constant`` is in steps: each step's weights enter with ``1 - exp(-1 / time_constant)``.
    """

    def __init__(self, model: nn.Module, time_constant: float) -> None:
        self.averaged: AveragedModel | None = None
        if time_constant > 0:
            decay = math.exp(-1.0 / time_constant)
            self.averaged = AveragedModel(
                model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True
            )

    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s weights after a step."""
        if self.averaged is not None:
            self.averaged.update_parameters(model)

    def model(self, trained: nn.Module) -> nn.Module:
        """The weights to validate and keep: the average, or ``trained`` when there is none."""
        return self.averaged.module if self.averaged is not None else trained

    def state_dict(self) -> dict[str, Any]:
        return self.averaged.state_dict() if self.averaged is not None else {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self.averaged is not None:
            self.averaged.load_state_dict(state)
