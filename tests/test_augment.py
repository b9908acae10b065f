"""Training-time augmentation: feature-axis warping and SpecAugment masks."""

from __future__ import annotations

import torch

from speecheq.train.augment import SpecAugment, warp_features
from speecheq.train.config import SpecAugmentConfig


def test_warp_moves_a_spectral_peak_by_its_factor() -> None:
    feats = torch.zeros(3, 5, 40)
    feats[:, :, 20] = 1.0
    warped = warp_features(feats, torch.tensor([1.0, 1.25, 0.8]))
    assert torch.equal(warped[0], feats[0])
    assert warped[1, 0].argmax() == 25 and warped[2, 0].argmax() == 16
    assert torch.equal(warped[:, 0], warped[:, 4])  # the same warp on every frame


def test_specaugment_warps_and_masks_per_utterance() -> None:
    torch.manual_seed(0)
    feats = torch.randn(4, 50, 40)
    config = SpecAugmentConfig(freq_masks=1, freq_width=8, time_masks=1, time_width=10, warp=0.1)
    augmented = SpecAugment(config)(feats)
    assert augmented.shape == feats.shape
    for utt in range(4):  # each utterance got its own time and frequency mask
        assert (augmented[utt] == 0).all(dim=1).any() and (augmented[utt] == 0).all(dim=0).any()
    off = SpecAugment(SpecAugmentConfig(freq_masks=0, time_masks=0, warp=0.0))
    assert torch.equal(off(feats), feats)
