"""The shared encoder: a front end (:mod:`.frontends`), then Conformer, BiLSTM or nothing.

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

from speecheq.features.ssl import parse_layers
from speecheq.features.upstream import Upstream
from speecheq.models.config import ModelConfig
from speecheq.models.frontends import ConvSubsampling, InputSpec, LayerSum, UpstreamFrontend


def padding_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """``(batch, max_length)`` boolean mask, True on the frames past each length."""
    steps = torch.arange(max_length, device=lengths.device)
    return steps[None, :] >= lengths[:, None]


class ConformerEncoder(nn.Module):
    """Front end, then a ``torchaudio.models.Conformer`` stack."""

    def __init__(self, frontend: nn.Module, config: ModelConfig) -> None:
        super().__init__()
        self.frontend = frontend
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
        hidden, lengths = self.frontend(feats, lengths)
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

    def __init__(self, frontend: nn.Module, config: ModelConfig) -> None:
        super().__init__()
        self.frontend = frontend
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
        hidden, lengths = self.frontend(feats, lengths)
        packed = pack_padded_sequence(
            self.dropout(hidden), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        output, _ = self.lstm(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=hidden.shape[1])
        return output, lengths


class FrontendOnly(nn.Module):
    """The front end alone (its projection straight into the pooling): a light downstream."""

    def __init__(self, frontend: nn.Module, config: ModelConfig) -> None:
        super().__init__()
        self.frontend = frontend
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, lengths = self.frontend(feats, lengths)
        keep = (~padding_mask(lengths, hidden.shape[1])).unsqueeze(-1).to(hidden.dtype)
        return self.dropout(hidden) * keep, lengths


def build_encoder(
    feature_dim: int, config: ModelConfig, spec: InputSpec, upstream: Upstream | None = None
) -> nn.Module:
    """The encoder named by ``config.encoder`` over the front end ``spec`` says; its output has
    ``config.d_model`` channels."""
    frontend: nn.Module
    if spec.kind == "filterbank":
        frontend = ConvSubsampling(feature_dim, config.subsampling_channels, config.d_model)
    elif spec.kind == "layers":
        frontend = LayerSum(spec.layers, spec.layer_dim, config.d_model)
    else:
        if upstream is None:
            raise ValueError("a model on raw audio needs its upstream")
        frontend = UpstreamFrontend(
            upstream,
            parse_layers(config.upstream.layers, upstream.num_layers),
            config.d_model,
            freeze=config.upstream.freeze,
            checkpointing=config.upstream.checkpointing,
        )
    encoders = {"conformer": ConformerEncoder, "blstm": BiLSTMEncoder, "none": FrontendOnly}
    return encoders[config.encoder](frontend, config)
