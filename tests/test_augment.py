"""Training-time augmentation: feature-axis warping, SpecAugment masks and mixup."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional

from speecheq.config import SpecAugmentConfig
from speecheq.tasks import Batch, Target
from speecheq.train.augment import SpecAugment, mixup, warp_features


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


def test_mixup_mixes_inputs_and_pairs_each_with_its_partners_targets() -> None:
    torch.manual_seed(0)
    feats = torch.randn(6, 10, 4)
    lengths = torch.tensor([10, 9, 8, 7, 6, 5])
    classes = torch.tensor([0, 1, 2, 0, 1, 2])
    labelled = torch.tensor([True, True, False, True, True, True])
    batch = Batch(
        tuple(f"u{i}" for i in range(6)), feats, lengths, {"emotion": Target(classes, labelled)}
    )
    mixed, partner, share = mixup(batch, alpha=0.4)
    assert 0 < share < 1
    order = [int(utt[1:]) for utt in partner.utts]
    assert sorted(order) == list(range(6)) and order != list(range(6))
    assert torch.allclose(mixed.feats, share * feats + (1 - share) * feats[order])
    assert torch.equal(partner.feats, mixed.feats)
    assert mixed.lengths.tolist() == [max(lengths[i], lengths[j]) for i, j in enumerate(order)]
    assert torch.equal(mixed.targets["emotion"].values, classes)
    assert torch.equal(partner.targets["emotion"].values, classes[order])
    assert torch.equal(partner.targets["emotion"].mask, labelled[order])
    # The two losses mixed by the share are the cross-entropy of the mixed (soft) labels.
    logits = torch.randn(6, 3)
    mixed_loss = share * functional.cross_entropy(logits, classes) + (
        1 - share
    ) * functional.cross_entropy(logits, classes[order])
    soft = share * functional.one_hot(classes, 3) + (1 - share) * functional.one_hot(
        classes[order], 3
    )
    assert float(mixed_loss) == pytest.approx(float(functional.cross_entropy(logits, soft.float())))
