"""The shared encoder: a convolutional front end (4x time subsampling), then Conformer or BiLSTM.

The Conformer keeps torchaudio's BatchNorm in its convolution modules. GroupNorm (per
utterance over channels and time) or a per-frame LayerNorm would keep the utterances of a batch
independent in training too, but both normalise away utterance-level level and spectral-tilt
cues that emotion depends on, and on CASIA they slowed learning several-fold. In evaluation
BatchNorm uses its running statistics, so decoding does not depend on batch composition; under
DDP each rank normalises with its own batch statistics (the usual practice).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torchaudio.models import Conformer

from speecheq.models.config import ModelConfig

MIN_FRAMES = 7
"""The shortest input the front end accepts; shorter inputs are padded up to it."""


def padding_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """``(batch, max_length)`` boolean mask, True on the frames past each length."""
    steps = torch.arange(max_length, device=lengths.device)
    return steps[None, :] >= lengths[:, None]


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


class ConformerEncoder(nn.Module):
    """Front end, then a ``torchaudio.models.Conformer`` stack."""

    def __init__(self, feature_dim: int, config: ModelConfig) -> None:
        super().__init__()
        self.subsampling = ConvSubsampling(feature_dim, config.subsampling_channels, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.conformer = Conformer(
            input_dim=config.d_model,
            num_heads=config.num_heads,
            ffn_dim=config.ffn_dim,
            num_layers=config.num_layers,
            depthwise_conv_kernel_size=config.conv_kernel,
            dropout=config.dropout,
        )

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, lengths = self.subsampling(feats, lengths)
        padding = padding_mask(lengths, hidden.shape[1])
        keep = (~padding).transpose(0, 1).unsqueeze(-1).to(hidden.dtype)
        hidden = self.dropout(hidden).transpose(0, 1)
        for layer in self.conformer.conformer_layers:
            hidden = conformer_layer(layer, hidden, padding, keep)
        return (hidden * keep).transpose(0, 1), lengths


def conformer_layer(
    layer: nn.Module, x: torch.Tensor, padding: torch.Tensor, keep: torch.Tensor
) -> torch.Tensor:
    """torchaudio's ``ConformerLayer.forward`` on ``(time, batch, dim)``, with the padded frames
    (``keep`` 0, ``(time, batch, 1)``) zeroed where a convolution reads them.

    torchaudio's layer lets a padded frame's values (from biases) into its depthwise
    convolution, so an utterance's last frames would depend on what else its batch holds; here
    they see zeros, as with no other utterance, however a batch is padded.
    """
    x = x * keep
    x = layer.ffn1(x) * 0.5 + x
    if layer.convolution_first:
        x = x + _convolution(layer.conv_module, x, keep)
    attended = layer.self_attn_layer_norm(x)
    attended, _ = layer.self_attn(
        query=attended,
        key=attended,
        value=attended,
        key_padding_mask=padding,
        need_weights=False,
    )
    x = layer.self_attn_dropout(attended) + x
    if not layer.convolution_first:
        x = x + _convolution(layer.conv_module, x, keep)
    x = layer.ffn2(x) * 0.5 + x
    return layer.final_layer_norm(x)


def _convolution(module: nn.Module, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """torchaudio's convolution module on ``(time, batch, dim)``, padded frames zeroed before
    its depthwise convolution."""
    pointwise, glu, depthwise, *rest = module.sequential
    hidden = glu(pointwise(module.layer_norm(x).permute(1, 2, 0)))
    hidden = depthwise(hidden * keep.permute(1, 2, 0))
    for step in rest:
        hidden = step(hidden)
    return hidden.permute(2, 0, 1)


class BiLSTMEncoder(nn.Module):
    """Front end, then a bidirectional LSTM (``d_model // 2`` units each way) over packed input."""

    def __init__(self, feature_dim: int, config: ModelConfig) -> None:
        super().__init__()
        self.subsampling = ConvSubsampling(feature_dim, config.subsampling_channels, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            config.d_model,
            config.d_model // 2,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
            bidirectional=True,
        )

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, lengths = self.subsampling(feats, lengths)
        packed = pack_padded_sequence(
            self.dropout(hidden), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        output, _ = self.lstm(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=hidden.shape[1])
        return output, lengths


def build_encoder(feature_dim: int, config: ModelConfig) -> nn.Module:
    """The encoder named by ``config.encoder``; its output has ``config.d_model`` channels."""
    encoders = {"conformer": ConformerEncoder, "blstm": BiLSTMEncoder}
    return encoders[config.encoder](feature_dim, config)
