"""Unlabeled utterances mixed into the training batches at a ratio (``batching.unlabeled_ratio``).

Every epoch takes every utterance of the training set and ``ratio`` times as many unlabeled ones
(``--unlabeled-dir``), then cuts them together into length-bucketed batches
(:class:`~speecheq.train.sampler.BucketBatchSampler`), so each batch holds both kinds in about
that ratio. The unlabeled utterances are dealt in turn from a sequence of shuffles of their
pool: every one is used before any is used again, over as many epochs as that takes. The plan
of an epoch depends only on (seed, epoch), as resuming and DDP need.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from speecheq.train.sampler import BucketBatchSampler

UNLABELED_STREAM = 1
"""Tells the generators of the unlabeled shuffles apart from the batch planner's (seed, epoch)."""


class MixedBatchSampler(BucketBatchSampler):
    """Batches of all labeled utterances (indices ``0..L-1``) and, each epoch, ``ratio * L``
    unlabeled ones (indices ``L..L+U-1``); the rest as :class:`BucketBatchSampler`.

    ``groups`` (one per utterance, labeled then unlabeled) balance the epoch's utterances as in
    :class:`BucketBatchSampler`, after the unlabeled ones are drawn.
    """

    def __init__(
        self,
        labeled_lengths: Sequence[int],
        unlabeled_lengths: Sequence[int],
        ratio: float,
        max_frames: int,
        *,
        seed: int = 0,
        length_noise: float = 0.0,
        rank: int = 0,
        world_size: int = 1,
        groups: Sequence[str] | None = None,
    ) -> None:
        if not labeled_lengths or not unlabeled_lengths or ratio <= 0:
            raise ValueError("labeled and unlabeled utterances and a positive ratio are required")
        super().__init__(
            [*labeled_lengths, *unlabeled_lengths],
            max_frames,
            shuffle=True,
            seed=seed,
            length_noise=length_noise,
            rank=rank,
            world_size=world_size,
            groups=groups,
        )
        self.labeled = len(labeled_lengths)
        self.unlabeled = len(unlabeled_lengths)
        self.per_epoch = max(1, round(ratio * self.labeled))
        """Unlabeled utterances an epoch takes."""

    def drawn(self, epoch: int) -> list[int]:
        """The unlabeled utterances (dataset indices) of ``epoch``."""
        start = epoch * self.per_epoch
        shuffles: dict[int, np.ndarray] = {}
        drawn = []
        for position in range(start, start + self.per_epoch):
            cycle, offset = divmod(position, self.unlabeled)
            if cycle not in shuffles:
                rng = np.random.default_rng([self.seed, cycle, UNLABELED_STREAM])
                shuffles[cycle] = rng.permutation(self.unlabeled)
            drawn.append(self.labeled + int(shuffles[cycle][offset]))
        return drawn

    def batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of ``epoch``."""
        chosen = [*range(self.labeled), *self.drawn(epoch)]
        planner = BucketBatchSampler(
            [self.lengths[index] for index in chosen],
            self.max_frames,
            shuffle=True,
            seed=self.seed,
            length_noise=self.length_noise,
            rank=self.rank,
            world_size=self.world_size,
            groups=None if self.groups is None else [self.groups[index] for index in chosen],
        )
        return [[chosen[index] for index in batch] for batch in planner.batches(epoch)]
