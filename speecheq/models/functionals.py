"""The functionals stream: utterance statistics of the input frames, beside the encoder.

The classic baseline's strength on few training speakers is a fixed summary of each utterance
(functionals of speaker-normalised frames) that a linear model reads. This stream gives the
network the same view: the mean, standard deviation, skewness, kurtosis, minimum, maximum and
linear slope of every input feature and of its delta, over the utterance's valid frames (the
frames arrive speaker-normalised by the CMVN), compressed by ``sign(x) log(1 + |x|)``,
standardised by running statistics of the training utterances, and projected. The model joins
the projection to the pooled encoder output before its embedding layer, so every utterance head
reads both.
"""

from __future__ import annotations

import torch
from torch import nn

STATISTICS = ("mean", "std", "skew", "kurtosis", "min", "max", "slope")
FRAME_RATE = 100.0
"""Input frames per second (10 ms shift): the slope is per second."""
FAR = 1e4
"""What padded frames are set to for the minimum and maximum (finite, so ONNX exports it)."""


def frame_functionals(feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The :data:`STATISTICS` of each column of ``feats`` ``(batch, time, dim)`` and of its
    deltas over each utterance's first ``lengths`` frames: ``(batch, 2 * dim * 7)``, grouped by
    statistic."""
    time = torch.arange(feats.shape[1], device=feats.device)
    valid = (time[None, :] < lengths[:, None]).unsqueeze(-1)  # (batch, time, 1)
    deltas = torch.cat([torch.zeros_like(feats[:, :1]), feats[:, 1:] - feats[:, :-1]], dim=1)
    both = torch.cat([feats, deltas], dim=-1)
    weight = valid.to(both.dtype)
    count = lengths.clamp(min=1).to(both.dtype)[:, None]
    mean = (both * weight).sum(dim=1) / count
    centred = (both - mean[:, None]) * weight
    std = ((centred**2).sum(dim=1) / count + 1e-5).sqrt()
    scaled = centred / std[:, None]
    skew = (scaled**3).sum(dim=1) / count
    kurtosis = (scaled**4).sum(dim=1) / count - 3.0
    low = both.masked_fill(~valid, FAR).amin(dim=1)
    high = both.masked_fill(~valid, -FAR).amax(dim=1)
    seconds = time.to(both.dtype)[None, :, None] / FRAME_RATE
    mid = (count[:, :, None] - 1) / (2 * FRAME_RATE)
    seconds = (seconds - mid) * weight
    slope = (seconds * centred).sum(dim=1) / (seconds**2).sum(dim=1).clamp(min=1e-4)
    return torch.cat([mean, std, skew, kurtosis, low, high, slope], dim=-1)


class RunningStandardiser(nn.Module):
    """Standardises each column by the running mean and variance of the training inputs (a
    cumulative average over the first steps, then an exponential one); unlike batch
    normalisation, it needs no second utterance in a batch."""

    def __init__(self, width: int, momentum: float = 0.01) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("square", torch.ones(width))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                rate = max(1.0 / float(self.steps + 1), self.momentum)
                self.mean.lerp_(values.mean(dim=0), rate)
                self.square.lerp_((values**2).mean(dim=0), rate)
                self.steps += 1
        variance = (self.square - self.mean**2).clamp(min=1e-4)
        return (values - self.mean) / variance.sqrt()


class FunctionalsStream(nn.Module):
    """:func:`frame_functionals`, compressed, standardised, dropped out and projected to
    ``out_dim``."""

    def __init__(self, feature_dim: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        width = 2 * feature_dim * len(STATISTICS)
        self.norm = RunningStandardiser(width)
        self.project = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, out_dim), nn.ReLU())

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        values = frame_functionals(feats.float(), lengths)
        values = values.sign() * values.abs().log1p()
        return self.project(self.norm(values))
