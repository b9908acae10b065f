"""Length-bucketed batches under a padded-frames budget, the same on every run for a seed.

Unlabeled utterances (``--unlabeled-dir``) are mixed in at a ratio (``batching.unlabeled_ratio``,
:class:`MixedBatchSampler`): every epoch takes every utterance of the training set and ``ratio``
times as many unlabeled ones, then cuts them together into length-bucketed batches, so each
batch holds both kinds in about that ratio. The unlabeled utterances are dealt in turn from a
sequence of shuffles of their pool: every one is used before any is used again, over as many
epochs as that takes. The plan of an epoch depends only on (seed, epoch), as resuming and DDP
need.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


def bucket_batches(
    order: Sequence[int], lengths: Sequence[int], max_frames: int
) -> list[list[int]]:
    """Cut ``order`` (indices, best sorted by length) into batches of at most ``max_frames``
    padded frames (utterances x the longest); an utterance longer than that goes alone."""
    batches: list[list[int]] = []
    batch: list[int] = []
    longest = 0
    for index in order:
        length = lengths[index]
        if batch and (len(batch) + 1) * max(longest, length) > max_frames:
            batches.append(batch)
            batch, longest = [], 0
        batch.append(index)
        longest = max(longest, length)
    if batch:
        batches.append(batch)
    return batches


def balanced_draw(groups: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """Indices with as many members of every group as the largest group has.

    A group of ``n`` utterances that must give ``m >= n`` contributes ``m // n`` copies of each
    utterance and ``m % n`` more drawn without replacement.
    """
    members: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    target = max(len(indices) for indices in members.values())
    drawn = []
    for group in sorted(members):
        indices = np.asarray(members[group])
        copies, extra = divmod(target, len(indices))
        drawn.extend([np.tile(indices, copies), rng.choice(indices, extra, replace=False)])
    return np.concatenate(drawn)


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of utterances of similar length, each rank taking its share.

    With ``shuffle``, each epoch sorts the utterances by their length times a random factor in
    ``1 +- length_noise`` (so batches change from epoch to epoch while padding stays low), cuts
    them into batches and shuffles the batches, all from a generator seeded by (seed, epoch):
    the plan of an epoch is a pure function of them, which makes runs and resumed runs
    repeatable. Without ``shuffle``, batches follow the true lengths. Rank ``r`` of ``w`` takes
    batches ``r, r + w, ...``, and every rank the same number of them (the last few batches of an
    epoch, fewer than ``w``, are left out, a different few each epoch).

    With ``groups`` (one label per utterance, e.g. its corpus) and ``shuffle``, each epoch first
    draws as many utterances from every group as the largest group has: each utterance of a
    smaller group once per full pass over it, the remainder drawn without replacement, all from
    the same (seed, epoch) generator.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_frames: int,
        *,
        shuffle: bool,
        seed: int = 0,
        length_noise: float = 0.0,
        rank: int = 0,
        world_size: int = 1,
        groups: Sequence[str] | None = None,
    ) -> None:
        if groups is not None and len(groups) != len(lengths):
            raise ValueError("one group per utterance is required")
        self.lengths = list(lengths)
        self.groups = None if groups is None else list(groups)
        self.max_frames = max_frames
        self.shuffle = shuffle
        self.seed = seed
        self.length_noise = length_noise
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of ``epoch``."""
        lengths = np.asarray(self.lengths, dtype=np.float64)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch])
            drawn = np.arange(len(lengths))
            if self.groups is not None:
                drawn = balanced_draw(self.groups, rng)
            noise = rng.uniform(1 - self.length_noise, 1 + self.length_noise, len(drawn))
            order = drawn[np.argsort(lengths[drawn] * noise, kind="stable")]
            plan = bucket_batches(order.tolist(), self.lengths, self.max_frames)
            plan = [plan[i] for i in rng.permutation(len(plan))]
        else:
            order = np.argsort(lengths, kind="stable")
            plan = bucket_batches(order.tolist(), self.lengths, self.max_frames)
        per_rank = len(plan) // self.world_size
        return plan[self.rank :: self.world_size][:per_rank]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches(self.epoch))

    def __len__(self) -> int:
        return len(self.batches(self.epoch))

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed, self.epoch = state["seed"], state["epoch"]


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
