"""The SpeechEQ multitask model: a shared encoder, a pooled utterance embedding, one head a task.

The model knows nothing of tasks beyond their heads: each task builds its head (an
``nn.Module`` reading the :class:`Encoded` output), and :meth:`SpeechEQModel.forward` runs every
head, so one forward pass (and one DDP-wrapped call) serves all losses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from speecheq.features.upstream import Upstream
from speecheq.models.config import ModelConfig
from speecheq.models.encoder import build_encoder, padding_mask
from speecheq.models.frontends import InputSpec
from speecheq.models.functionals import FunctionalsStream
from speecheq.models.pooling import AttentiveStatsPooling


@dataclass(frozen=True)
class Encoded:
    """What heads read: frame-level encoder output and the pooled utterance embedding."""

    frames: torch.Tensor
    """``(batch, time, d_model)`` after 4x subsampling."""
    lengths: torch.Tensor
    """``(batch,)`` valid frames of ``frames``."""
    embedding: torch.Tensor
    """``(batch, embedding_dim)``."""
    blocks: tuple[torch.Tensor, ...] = ()
    """``(batch, time, d_model)`` frames after each encoder block, first to last."""


@dataclass(frozen=True)
class ModelOutput:
    """The encoder output and every head's output, by task name."""

    encoded: Encoded
    heads: dict[str, torch.Tensor]


@dataclass(frozen=True)
class Dims:
    """The widths a head can read: ``frame_dim`` (frame level), ``embedding_dim`` (utterance)."""

    frame_dim: int
    embedding_dim: int


class UtteranceLinear(nn.Module):
    """A linear head on the utterance embedding."""

    def __init__(self, dims: Dims, outputs: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dims.embedding_dim, outputs)

    def forward(self, encoded: Encoded) -> torch.Tensor:
        return self.linear(encoded.embedding)


class FrameLinear(nn.Module):
    """A linear head on every frame of the encoder output, or of its ``block``-th block (from
    1; the config checks that the encoder has it)."""

    def __init__(self, dims: Dims, outputs: int, block: int = 0) -> None:
        super().__init__()
        self.linear = nn.Linear(dims.frame_dim, outputs)
        self.block = block

    def forward(self, encoded: Encoded) -> torch.Tensor:
        return self.linear(encoded.blocks[self.block - 1] if self.block else encoded.frames)


class SpeechEQModel(nn.Module):
    """Encoder, attentive statistics pooling (with, optionally, the functionals stream beside
    it), embedding layer and the task heads."""

    def __init__(
        self,
        feature_dim: int,
        config: ModelConfig,
        heads: Mapping[str, nn.Module],
        spec: InputSpec | None = None,
        upstream: Upstream | None = None,
    ):
        super().__init__()
        self.spec = spec or InputSpec()
        self.encoder = build_encoder(feature_dim, config, self.spec, upstream)
        self.pooling = AttentiveStatsPooling(config.d_model, config.attention_dim)
        self.functionals: FunctionalsStream | None = None
        if config.functionals_dim:
            if self.spec.kind != "filterbank":
                raise ValueError("model.functionals_dim needs filterbank features (set it to 0)")
            self.functionals = FunctionalsStream(
                feature_dim, config.functionals_dim, config.functionals_dropout
            )
        self.embedding = nn.Sequential(
            nn.Linear(2 * config.d_model + config.functionals_dim, config.embedding_dim),
            nn.ReLU(),
            nn.Dropout(config.dropout),
        )
        self.heads = nn.ModuleDict(dict(heads))

    @staticmethod
    def dims(config: ModelConfig) -> Dims:
        """The widths the heads of a model built from ``config`` read."""
        return Dims(config.d_model, config.embedding_dim)

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor) -> Encoded:
        """Encode ``(batch, frames, feature_dim)`` features of the given lengths."""
        summary = None if self.functionals is None else self.functionals(feats, lengths)
        frames, lengths, blocks = self.encoder(feats, lengths)
        pooled = self.pooling(frames, padding_mask(lengths, frames.shape[1]))
        if summary is not None:
            pooled = torch.cat([pooled, summary], dim=-1)
        return Encoded(frames, lengths, self.embedding(pooled), blocks)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> ModelOutput:
        encoded = self.encode(feats, lengths)
        return ModelOutput(encoded, {name: head(encoded) for name, head in self.heads.items()})
