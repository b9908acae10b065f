"""Front ends: what turns a batch of inputs into the frames the encoder reads.

- :class:`ConvSubsampling`: filterbanks, two stride-2 convolutions (4x fewer frames).
- :class:`LayerSum`: upstream features of stage 2 (several hidden layers side by side), their
  softmax-weighted sum (the SUPERB/s3prl featurizer), then a projection; the frame rate kept.
- :class:`UpstreamFrontend`: raw audio through a pretrained upstream run inside the model
  (frozen, or fine-tuned), then the same weighted sum and projection.

:class:`InputSpec` says which one a model has; it is saved in the model file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from speecheq.features.upstream import Upstream

MIN_FRAMES = 7
"""The shortest input the convolutional front end accepts; shorter inputs are padded up to it."""


@dataclass(frozen=True)
class InputSpec:
    """What a model reads: ``filterbank`` features, stored upstream ``layers`` (``layers`` of
    ``layer_dim`` each), or raw audio through its own ``upstream``."""

    kind: Literal["filterbank", "layers", "upstream"] = "filterbank"
    layers: int = 1
    layer_dim: int = 0


class ConvSubsampling(nn.Module):
    """Two stride-2 3x3 convolutions over (time, feature), then a projection to ``out_dim``."""

    def __init__(self, in_dim: int, channels: int, out_dim: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=3, stride=2),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, stride=2),
            nn.ReLU(),
        )
        freq = ((in_dim - 1) // 2 - 1) // 2
        if freq < 1:
            raise ValueError(f"features of dimension {in_dim} are too narrow to subsample")
        self.project = nn.Linear(channels * freq, out_dim)

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, frames, in_dim)`` -> ``(batch, frames // 4 roughly, out_dim)``, new lengths."""
        if feats.shape[1] < MIN_FRAMES:
            feats = nn.functional.pad(feats, (0, 0, 0, MIN_FRAMES - feats.shape[1]))
        hidden = self.conv(feats.unsqueeze(1))  # (batch, channels, time, freq)
        batch, channels, time, freq = hidden.shape
        hidden = self.project(hidden.transpose(1, 2).reshape(batch, time, channels * freq))
        lengths = torch.clamp(((lengths - 1) // 2 - 1) // 2, min=1)
        return hidden, lengths


class LayerSum(nn.Module):
    """The softmax-weighted sum of ``layers`` hidden layers of ``dim``, projected to ``out_dim``."""

    def __init__(self, layers: int, dim: int, out_dim: int) -> None:
        super().__init__()
        self.layers, self.dim = layers, dim
        self.weights = nn.Parameter(torch.zeros(layers))
        self.project = nn.Linear(dim, out_dim)

    def mix(self, stacked: torch.Tensor) -> torch.Tensor:
        """``(..., layers, dim)`` -> ``(..., out_dim)``."""
        weights = torch.softmax(self.weights, dim=0).to(stacked.dtype)
        return self.project((stacked * weights[:, None]).sum(dim=-2))

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, frames, layers * dim)`` stored side by side -> ``(batch, frames, out_dim)``."""
        batch, frames, _ = feats.shape
        return self.mix(feats.view(batch, frames, self.layers, self.dim)), lengths


class UpstreamFrontend(nn.Module):
    """A pretrained upstream on raw audio, then the weighted sum of its chosen hidden layers.

    Frozen, it runs without gradients and in evaluation mode always; fine-tuned, its activations
    can be recomputed in the backward pass (``checkpointing``).
    """

    def __init__(
        self,
        upstream: Upstream,
        layers: tuple[int, ...],
        out_dim: int,
        *,
        freeze: bool,
        checkpointing: bool,
    ) -> None:
        super().__init__()
        self.upstream = upstream
        self.chosen = list(layers)
        self.freeze = freeze
        self.sum = LayerSum(len(layers), upstream.dim, out_dim)
        if freeze:
            upstream.requires_grad_(False)
        elif checkpointing:
            _checkpoint_layers(upstream.encoder)

    def train(self, mode: bool = True) -> UpstreamFrontend:
        super().train(mode)
        if self.freeze:
            self.upstream.eval()
        return self

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, samples, 1)`` -> ``(batch, frames, out_dim)`` and the frames of each."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            hidden, frames = self.upstream(waveforms, lengths)
        stacked = hidden[self.chosen].permute(1, 2, 0, 3)  # (batch, frames, layers, dim)
        return self.sum.mix(stacked.float()), frames


def _checkpoint_layers(model: nn.Module) -> None:
    """Recompute a transformers model's layer activations in the backward pass."""
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:  # transformers 5
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
