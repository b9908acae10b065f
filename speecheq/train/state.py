"""The state of a training run in ``checkpoint.pt``: what resuming needs, and what it must match.

A checkpoint holds every part of :class:`TrainingState` (the weights, the optimisers with their
schedules and scalers, the sampler, the extra phases, the history and best epoch, the sum of
checkpoint averaging, the moving average of the weights, the learned task weights), each under
its name, and what identifies the run: its config and the fingerprints of its data
(:func:`speecheq.train.data.fingerprint`). A run resumes from a checkpoint only when both are
the same, so a fold's checkpoint never continues on another fold's data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from speecheq.batching.sampler import BucketBatchSampler
from speecheq.errors import SpeechEQError
from speecheq.train.averaging import MovingAverage, WeightAverage
from speecheq.train.optim import Optimiser, PhaseStates
from speecheq.train.reporter import Reporter
from speecheq.train.weighting import TaskWeighting

CHECKPOINT = "checkpoint.pt"

Resume = bool | Literal["auto"]
"""``auto``: continue from a checkpoint when there is one, else start afresh; True: continue
(a checkpoint must exist); False: start afresh, replacing what the run wrote before."""


def parse_resume(value: str) -> Resume:
    """``--resume auto|true|false`` as a :data:`Resume` value."""
    choices: dict[str, Resume] = {"auto": "auto", "true": True, "false": False}
    if value not in choices:
        raise SpeechEQError(f"--resume must be auto, true or false, got '{value}'")
    return choices[value]


@dataclass
class TrainingState:
    """The parts of a run that ``checkpoint.pt`` saves and a resumed run restores, each under its
    field's name: a new stateful part of training is a field here (and where it is built)."""

    model: nn.Module
    optimiser: Optimiser
    sampler: BucketBatchSampler
    phases: PhaseStates
    reporter: Reporter
    average: WeightAverage
    moving_average: MovingAverage
    weighting: TaskWeighting

    def state_dict(self) -> dict[str, Any]:
        parts = dataclasses.fields(self)
        return {part.name: getattr(self, part.name).state_dict() for part in parts}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for part in dataclasses.fields(self):
            getattr(self, part.name).load_state_dict(state[part.name])


def make_checkpoint(
    config: Mapping[str, Any],
    fingerprints: Mapping[str, Mapping[str, str]],
    epoch: int,
    state: TrainingState,
) -> dict[str, Any]:
    """The content of ``checkpoint.pt`` after ``epoch`` completed epochs."""
    return {
        "config": dict(config),
        "data": {role: dict(entry) for role, entry in fingerprints.items()},
        "epoch": epoch,
        **state.state_dict(),
    }


def check_checkpoint(
    path: Path,
    state: Mapping[str, Any],
    config: Mapping[str, Any],
    fingerprints: Mapping[str, Mapping[str, str]],
) -> None:
    """Raise unless ``state`` was saved by a run of the same config on the same data."""
    difference = first_difference(state.get("config"), config)
    if difference is not None:
        raise SpeechEQError(
            f"{path}: the config differs from the one this run was started with "
            f"(at '{difference}'); resume with the same config and --tasks, or start afresh "
            "with --resume false"
        )
    saved = state.get("data", {})
    for role in sorted(set(saved) | set(fingerprints)):
        old, new = saved.get(role), fingerprints.get(role)
        if old is None or new is None or old["fingerprint"] != new["fingerprint"]:
            before = "none" if old is None else f"{old['path']} ({old['fingerprint']})"
            now = "none" if new is None else f"{new['path']} ({new['fingerprint']})"
            raise SpeechEQError(
                f"{path}: was trained on other {role} data than this run's: {before} then, "
                f"{now} now; train into another --exp-dir, or start afresh with --resume false"
            )


def first_difference(old: Any, new: Any, prefix: str = "") -> str | None:
    """The first key (dotted) where two nested config dicts differ, or None."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new)):
            if key not in old or key not in new:
                return f"{prefix}{key}"
            found = first_difference(old[key], new[key], f"{prefix}{key}.")
            if found is not None:
                return found
        return None
    return None if old == new else prefix.rstrip(".")


def loss_text(losses: torch.Tensor, names: Sequence[str]) -> str:
    """``name value`` pairs of losses, for progress and errors."""
    return " ".join(
        f"{name} {value:.3f}" for name, value in zip(names, losses.tolist(), strict=True)
    )


def check_finite(
    losses: torch.Tensor,
    finite_grad: bool,
    epoch: int,
    step: int,
    names: Sequence[str],
    checkpoint: Path,
) -> None:
    """Raise, saying what is kept, when a loss (or the gradient norm) of a step is not finite."""
    if bool(torch.isfinite(losses).all()) and finite_grad:
        return
    what = "gradient norm" if torch.isfinite(losses).all() else "loss"
    kept = (
        f"the checkpoint of epoch {epoch} is kept in {checkpoint}"
        if epoch > 0
        else "no epoch had completed, so there is no checkpoint"
    )
    raise SpeechEQError(
        f"epoch {epoch + 1}, step {step + 1}: the {what} is not finite "
        f"({loss_text(losses.cpu().double(), names)}); training stopped and {kept} "
        "(a lower optim.lr or optim.clip_norm may help)"
    )
