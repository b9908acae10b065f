"""Training-time augmentation: feature-axis warping and SpecAugment masks."""

from __future__ import annotations

import torch

from speecheq.config import SpecAugmentConfig
from speecheq.train.augment import SpecAugment, warp_features


def test_warp_moves_a_spectral_peak_by_its_factor() -> None:
    feats = torch.zeros(3, 5, 40)
    feats[:, :, 20] = 1.0
    warped = warp_features(feats, torch.tensor([1.0, 1.25, 0.8]))
    assert torch.equal(warped[0], feats[0])
    assert warped[1, 0].argmax() == 25 and warped[2, 0].argmax() == 16
    assert torch.equal(warped[:, 0], warped[:, 4])  # the same warp on every frame


def test_specaugment_draws_per_utterance_and_can_be_off() -> None:
    torch.manual_seed(0)
    same = torch.randn(1, 50, 40).expand(8, 50, 40)
    warped = SpecAugment(SpecAugmentConfig(freq_masks=0, time_masks=0, warp=0.2))(same)
    assert len({round(float(row.sum()), 4) for row in warped}) == 8  # eight different warps
    masked = SpecAugment(SpecAugmentConfig(freq_masks=2, freq_width=8, warp=0.0))(same)
    assert (masked == 0).any() and not torch.equal(masked[0], masked[1])
    off = SpecAugment(SpecAugmentConfig(freq_masks=0, time_masks=0, warp=0.0))
    assert torch.equal(off(same), same)
