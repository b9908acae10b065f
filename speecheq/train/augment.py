"""Training-time augmentation of a batch: feature-axis warping, SpecAugment and mixup.

Applied after CMVN, so a masked value is the mean.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn
from torchaudio.transforms import FrequencyMasking, TimeMasking

from speecheq.config import SpecAugmentConfig
from speecheq.tasks import Batch


def warp_features(feats: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Stretch the feature axis of each utterance by its factor (linear interpolation).

    ``feats`` ``(batch, frames, dim)``, ``factors`` ``(batch,)``: output bin ``k`` reads input
    position ``k / factor`` (the last bin where that falls beyond the axis), so a factor above 1
    moves spectral structure (formants, harmonics) up, as a shorter vocal tract would.
    """
    batch, frames, dim = feats.shape
    positions = torch.arange(dim, device=feats.device, dtype=feats.dtype)[None, :]
    positions = (positions / factors[:, None].to(feats.dtype)).clamp(max=dim - 1)
    lower = positions.floor().long()
    upper = (lower + 1).clamp(max=dim - 1)
    fraction = (positions - lower.to(feats.dtype))[:, None, :]
    lower = lower[:, None, :].expand(batch, frames, dim)
    upper = upper[:, None, :].expand(batch, frames, dim)
    return feats.gather(2, lower) * (1 - fraction) + feats.gather(2, upper) * fraction


class SpecAugment(nn.Module):
    """Per utterance: a feature-axis warp (``warp``), then ``freq_masks`` frequency bands and
    ``time_masks`` time spans set to zero (torchaudio's masks)."""

    def __init__(self, config: SpecAugmentConfig) -> None:
        super().__init__()
        self.warp = config.warp
        self.masks: list[nn.Module] = []
        if config.freq_width:
            self.masks += [FrequencyMasking(config.freq_width, iid_masks=True)] * config.freq_masks
        if config.time_width:
            self.masks += [TimeMasking(config.time_width, iid_masks=True)] * config.time_masks

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, dim)`` -> the same, warped and masked."""
        if self.warp:
            draws = torch.rand(feats.shape[0], device=feats.device)
            feats = warp_features(feats, 1 + (2 * draws - 1) * self.warp)
        if not self.masks:
            return feats
        spec = feats.transpose(1, 2).unsqueeze(1)  # (batch, channel, freq, time)
        for mask in self.masks:
            spec = mask(spec)
        return spec.squeeze(1).transpose(1, 2)


def mixup(batch: Batch, alpha: float) -> tuple[Batch, Batch, float]:
    """Mixup (Zhang et al., 2018): the batch's inputs mixed with those of a shuffle of itself.

    Returns ``(mixed, partner, share)``: ``mixed`` holds ``share`` times each input plus ``1 -
    share`` times its partner's (``share`` drawn from Beta(``alpha``, ``alpha``), lengths the
    longer of the two) with the first utterances' targets; ``partner`` holds the same inputs
    with the partners' targets. Every task's loss is then ``share * loss(mixed) + (1 - share) *
    loss(partner)``, which mixes soft labels for a classification and the two transcripts' CTC
    losses for the phone task.
    """
    share = float(torch.distributions.Beta(alpha, alpha).sample())
    order = torch.randperm(len(batch.utts), device=batch.feats.device)
    mixed = replace(
        batch,
        feats=share * batch.feats + (1 - share) * batch.feats[order],
        lengths=torch.maximum(batch.lengths, batch.lengths[order]),
    )
    partner = replace(
        mixed,
        utts=tuple(batch.utts[index] for index in order.tolist()),
        targets={name: target.reorder(order) for name, target in batch.targets.items()},
    )
    return mixed, partner, share
