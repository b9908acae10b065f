"""Checkpoint averaging (as ESPnet and icefall do): the model of a run as the mean of its
weights at the end of each of its last N epochs, instead of the single epoch that scored best
on the valid set.

The running sum lives in the checkpoint, so an interrupted run resumes to the same average.
Buffers are averaged too (BatchNorm's running statistics); integer buffers (batch counters)
keep the last epoch's value.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


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
