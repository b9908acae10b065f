"""SpecAugment-style masking of a batch of features (torchaudio's frequency and time masks)."""

from __future__ import annotations

import torch
from torch import nn
from torchaudio.transforms import FrequencyMasking, TimeMasking

from speecheq.train.config import SpecAugmentConfig


class SpecAugment(nn.Module):
    """``freq_masks`` frequency bands and ``time_masks`` time spans set to zero, drawn per
    utterance. Applied after CMVN, so a masked value is the mean."""

    def __init__(self, config: SpecAugmentConfig) -> None:
        super().__init__()
        self.masks: list[nn.Module] = []
        if config.freq_width:
            self.masks += [FrequencyMasking(config.freq_width, iid_masks=True)] * config.freq_masks
        if config.time_width:
            self.masks += [TimeMasking(config.time_width, iid_masks=True)] * config.time_masks

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, dim)`` -> the same, masked."""
        if not self.masks:
            return feats
        spec = feats.transpose(1, 2).unsqueeze(1)  # (batch, channel, freq, time)
        for mask in self.masks:
            spec = mask(spec)
        return spec.squeeze(1).transpose(1, 2)
