"""Length-bucketed batches under a padded-frames budget, the same on every run for a seed."""

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
