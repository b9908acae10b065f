"""Adversarial heads: a classifier behind a gradient-reversal layer (Ganin et al. 2016).

The head's own weights learn to tell its classes apart (corpora, speakers), while the gradient
that reaches the shared encoder is reversed and scaled by the reversal strength, so the encoder
learns an embedding from which the class is hard to tell. The strength can ramp up from 0 over
the first ``ramp_steps`` training steps (``2 / (1 + exp(-10 p)) - 1``, ``p`` the share of the
ramp done), so that the embedding is first shaped by the other tasks.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from speecheq.models import Dims, Encoded


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient multiplied by ``-strength`` backward."""

    @staticmethod
    def forward(ctx: Any, inputs: torch.Tensor, strength: float) -> torch.Tensor:
        ctx.strength = strength
        return inputs.view_as(inputs)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.strength * grad, None


def reverse_gradient(inputs: torch.Tensor, strength: float) -> torch.Tensor:
    """``inputs`` unchanged, with its gradient reversed and scaled by ``strength``."""
    return _ReverseGradient.apply(inputs, strength)


class AdversarialHead(nn.Module):
    """Gradient reversal, then a two-layer classifier on the utterance embedding.

    The ``steps`` buffer counts the training forward passes (it is saved with the weights, so a
    resumed run continues the ramp where it was).
    """

    def __init__(
        self, dims: Dims, classes: int, reversal: float, ramp_steps: int, hidden_dim: int
    ) -> None:
        super().__init__()
        self.reversal, self.ramp_steps = reversal, ramp_steps
        self.classifier = nn.Sequential(
            nn.Linear(dims.embedding_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, classes)
        )
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def strength(self) -> float:
        """The reversal strength at the current step."""
        if self.ramp_steps == 0:
            return self.reversal
        progress = min(1.0, int(self.steps) / self.ramp_steps)
        return self.reversal * (2 / (1 + math.exp(-10 * progress)) - 1)

    def forward(self, encoded: Encoded) -> torch.Tensor:
        if not torch.is_grad_enabled():  # decoding: nothing to reverse
            return self.classifier(encoded.embedding)
        if self.training:
            self.steps += 1
        return self.classifier(reverse_gradient(encoded.embedding, self.strength()))
