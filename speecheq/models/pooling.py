"""Attentive statistics pooling: frame-level features to one utterance vector."""

from __future__ import annotations

import torch
from torch import nn


class AttentiveStatsPooling(nn.Module):
    """Attention-weighted mean and standard deviation over the valid frames (Okabe et al. 2018).

    A small MLP scores each frame; the softmax of the scores over the frames that are not
    padding weights the mean and the standard deviation, concatenated: ``2 * dim`` outputs.
    Computed in float32 whatever the autocast precision, for a stable variance.
    """

    def __init__(self, dim: int, attention_dim: int) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.Linear(dim, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1)
        )

    def forward(self, frames: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """``frames`` ``(batch, time, dim)``, ``padding`` ``(batch, time)`` True on padding."""
        frames = frames.float()
        scores = self.attention(frames).squeeze(-1).float()
        weights = torch.softmax(scores.masked_fill(padding, float("-inf")), dim=1).unsqueeze(-1)
        mean = (weights * frames).sum(dim=1)
        variance = (weights * frames.square()).sum(dim=1) - mean.square()
        return torch.cat([mean, variance.clamp(min=1e-6).sqrt()], dim=-1)
