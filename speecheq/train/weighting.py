"""How the tasks' losses add up to the one the shared step minimises (``optim.task_weighting``).

``fixed``: each task's ``weight`` times its loss. ``annealed``: the same, but the auxiliary
tasks' weights (every task outside the emotion label space, :data:`KEPT`) fall from theirs to 0
over the epochs on a half cosine, so the shared encoder learns from them first and from the
emotion tasks alone at the end.
``uncertainty`` (Kendall, Gal and Cipolla, 2018): each task ``i`` has a learned log-variance
``s_i`` and contributes ``exp(-s_i) * loss_i + s_i``, so a task's weight falls as its loss
stays high (a noisy task) and rises as it is learned; ``s_i`` starts at ``-log(weight_i)``, so
the run starts from the fixed weights. The log-variances are trained with the model (without
weight decay) and kept in the checkpoint; ``metrics.csv`` records each task's weight per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

KEPT = ("emotion", "intensity", "dimensional")
"""The tasks of the emotion label space: annealing keeps their weights."""
SMALLEST_WEIGHT = 1e-3
"""The starting weight of a task given weight 0 under uncertainty weighting."""


class TaskWeighting(nn.Module):
    """The weighted sum of the tasks' losses, with fixed or learned weights."""

    def __init__(self, names: Sequence[str], weights: Sequence[float], mode: str) -> None:
        """The tasks' ``names`` and ``weights``, in order; ``mode`` as ``optim.task_weighting``."""
        super().__init__()
        self.register_buffer("fixed", torch.tensor(list(weights), dtype=torch.float32))
        annealed = [mode == "annealed" and name not in KEPT for name in names]
        self.register_buffer("annealed", torch.tensor(annealed), persistent=False)
        self.register_buffer("scale", torch.ones(()), persistent=False)
        self.log_vars = (
            nn.Parameter(torch.tensor([-math.log(max(w, SMALLEST_WEIGHT)) for w in weights]))
            if mode == "uncertainty"
            else None
        )

    def set_epoch(self, epoch: int, epochs: int) -> None:
        """Scale the annealed weights for ``epoch`` of ``epochs``: 1 at the first, 0 after the
        last."""
        self.scale.fill_(0.5 * (1 + math.cos(math.pi * epoch / epochs)))

    def forward(self, losses: torch.Tensor) -> torch.Tensor:
        if self.log_vars is None:
            return (losses * self._fixed_now()).sum()
        return (torch.exp(-self.log_vars) * losses + self.log_vars).sum()

    def _fixed_now(self) -> torch.Tensor:
        return torch.where(self.annealed, self.fixed * self.scale, self.fixed)

    @property
    def weights(self) -> list[float]:
        """The weight of each task's loss now."""
        if self.log_vars is None:
            return self._fixed_now().tolist()
        return torch.exp(-self.log_vars.detach()).tolist()
