"""The shared encoder: a front end (:mod:`.frontends`), then Conformer, BiLSTM, ECAPA-TDNN
blocks or nothing.

Every encoder returns its output frames, their lengths and the frames after each of its blocks
(:data:`EncoderOutput`), so a frame-level head may read a lower block (intermediate CTC). The
BiLSTM and the front end alone count as one block: their output.

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

EncoderOutput = tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]
"""``(frames, lengths, blocks)``: ``(batch, time, d_model)`` output frames, their ``(batch,)``
valid lengths, and the ``(batch, time, d_model)`` frames after each block, first to last."""


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

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        hidden, lengths = self.frontend(feats, lengths)
        padding = padding_mask(lengths, hidden.shape[1])
        keep = (~padding).transpose(0, 1).unsqueeze(-1).to(hidden.dtype)
        hidden = self.dropout(hidden).transpose(0, 1)
        blocks = []
        for layer in self.conformer.conformer_layers:
            hidden = conformer_layer(layer, hidden, padding, keep)
            blocks.append((hidden * keep).transpose(0, 1))
        return blocks[-1], lengths, tuple(blocks)


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

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        hidden, lengths = self.frontend(feats, lengths)
        packed = pack_padded_sequence(
            self.dropout(hidden), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        output, _ = self.lstm(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=hidden.shape[1])
        return output, lengths, (output,)


class SERes2Block(nn.Module):
    """ECAPA-TDNN's SE-Res2 block (Desplanques et al. 2020) on ``(batch, channels, time)``:
    a 1x1 convolution, a Res2 dilated convolution over ``scale`` channel groups, a 1x1
    convolution, squeeze-excitation over the valid frames, and the residual connection.

    Padded frames (``keep`` 0) are zeroed before every convolution that reads neighbours, so an
    utterance's output does not depend on how its batch is padded.
    """

    def __init__(self, channels: int, dilation: int, scale: int = 4, se_dim: int = 64) -> None:
        super().__init__()
        width = channels // scale
        self.scale = scale
        self.pre = _conv_relu_norm(channels, channels, kernel=1)
        self.res2 = nn.ModuleList(
            _conv_relu_norm(width, width, kernel=3, dilation=dilation) for _ in range(scale - 1)
        )
        self.post = _conv_relu_norm(channels, channels, kernel=1)
        self.squeeze = nn.Sequential(
            nn.Linear(channels, se_dim), nn.ReLU(), nn.Linear(se_dim, channels), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``x`` ``(batch, channels, time)``, ``keep`` ``(batch, 1, time)``, 1 on valid frames."""
        hidden = self.pre(x) * keep
        groups = hidden.chunk(self.scale, dim=1)
        outputs, previous = [groups[0]], None
        for group, conv in zip(groups[1:], self.res2, strict=True):
            previous = conv(group if previous is None else group + previous) * keep
            outputs.append(previous)
        hidden = self.post(torch.cat(outputs, dim=1)) * keep
        mean = hidden.sum(dim=2) / keep.sum(dim=2).clamp(min=1)
        return (x + hidden * self.squeeze(mean).unsqueeze(-1)) * keep


def _conv_relu_norm(inputs: int, outputs: int, kernel: int, dilation: int = 1) -> nn.Module:
    return nn.Sequential(
        nn.Conv1d(inputs, outputs, kernel, dilation=dilation, padding=dilation * (kernel // 2)),
        nn.ReLU(),
        nn.BatchNorm1d(outputs),
    )


class EcapaEncoder(nn.Module):
    """Front end, then ``num_layers`` SE-Res2 blocks (dilations 2, 3, 4, ...) whose outputs are
    joined by a 1x1 convolution (ECAPA-TDNN's multi-layer aggregation): a compact convolutional
    encoder for small corpora, beside the Conformer."""

    def __init__(self, frontend: nn.Module, config: ModelConfig) -> None:
        super().__init__()
        self.frontend = frontend
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            SERes2Block(config.d_model, dilation=2 + index) for index in range(config.num_layers)
        )
        self.aggregate = _conv_relu_norm(config.d_model * config.num_layers, config.d_model, 1)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        hidden, lengths = self.frontend(feats, lengths)
        keep = (~padding_mask(lengths, hidden.shape[1])).unsqueeze(1).to(hidden.dtype)
        hidden = self.dropout(hidden).transpose(1, 2) * keep
        outputs = []
        for block in self.blocks:
            hidden = block(hidden, keep)
            outputs.append(hidden)
        joined = (self.aggregate(torch.cat(outputs, dim=1)) * keep).transpose(1, 2)
        return joined, lengths, tuple(output.transpose(1, 2) for output in outputs)


class FrontendOnly(nn.Module):
    """The front end alone (its projection straight into the pooling): a light downstream."""

    def __init__(self, frontend: nn.Module, config: ModelConfig) -> None:
        super().__init__()
        self.frontend = frontend
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        hidden, lengths = self.frontend(feats, lengths)
        keep = (~padding_mask(lengths, hidden.shape[1])).unsqueeze(-1).to(hidden.dtype)
        output = self.dropout(hidden) * keep
        return output, lengths, (output,)


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
    encoders = {
        "conformer": ConformerEncoder,
        "blstm": BiLSTMEncoder,
        "ecapa": EcapaEncoder,
        "none": FrontendOnly,
    }
    return encoders[config.encoder](frontend, config)
