"""Optimisers and the learning-rate schedule of a training run.

AdamW with a linear warm-up, then a cosine decay to ``optim.final_lr_ratio * lr``, stepped once
per batch; every extra phase of a task (:class:`~speecheq.tasks.Phase`) has its own optimiser,
schedule and gradient scaler.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from speecheq.config import OptimConfig
from speecheq.tasks import Phase


def warmup_cosine(
    total_steps: int, warmup_steps: int, final_ratio: float
) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up to 1, then cosine decay to ``final_ratio``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


@dataclass
class Optimiser:
    """An AdamW optimiser, its schedule and its gradient scaler (fp16 only)."""

    optimizer: torch.optim.Optimizer
    scheduler: LambdaLR
    scaler: torch.amp.GradScaler

    @classmethod
    def build(
        cls,
        parameters: Iterable[nn.Parameter] | list[dict[str, Any]],
        optim: OptimConfig,
        schedule: Callable[[int], float],
        device: torch.device,
        grad_scaling: bool,
    ) -> Optimiser:
        """AdamW over ``parameters`` (or parameter groups, each with its own ``lr``)."""
        optimizer = torch.optim.AdamW(parameters, lr=optim.lr, weight_decay=optim.weight_decay)
        scaler = torch.amp.GradScaler(device.type, enabled=grad_scaling)
        return cls(optimizer, LambdaLR(optimizer, schedule), scaler)

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])


@dataclass
class PhaseState:
    """An extra phase of a task with its optimiser."""

    phase: Phase
    optimiser: Optimiser

    def state_dict(self) -> dict[str, Any]:
        return {"modules": self.phase.modules.state_dict(), **self.optimiser.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.phase.modules.load_state_dict(state["modules"])
        self.optimiser.load_state_dict(state)


class PhaseStates(list[PhaseState]):
    """The extra phases of a run, saved and restored by phase name."""

    def state_dict(self) -> dict[str, Any]:
        return {state.phase.name: state.state_dict() for state in self}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for phase_state in self:
            phase_state.load_state_dict(state[phase_state.phase.name])
