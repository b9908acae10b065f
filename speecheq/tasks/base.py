"""The task interface: a task is a head, a loss, a label table, a decode format and metrics.

A task lives in one module: the trainer, ``predict``, ``infer``, validation and ``speecheq
score`` see it only through :class:`Task`, so adding a task is one new module in this package
(:data:`speecheq.tasks.TASKS` finds it); no other task, and not the trainer, changes. What a
task is:

- **Label table**: :attr:`Task.label_table` names the data-directory table its labels come
  from (declared in :mod:`speecheq.data.tables`); :meth:`Task.references` reads the reference
  of each utterance that has one (a missing label is a missing line); :meth:`Task.encode` turns
  one into a training target; :meth:`Task.collate` stacks a batch's targets with a mask.
- **Inventory**: :meth:`Task.take_inventory` learns what it needs from the training set (its
  classes, class weights, the token list, a speaker list...) as plain data; it is saved in the
  model file and given back to the constructor, so a loaded model rebuilds the same task.
- **Head and loss**: :meth:`Task.build_head` makes a module reading the shared
  :class:`~speecheq.models.Encoded` output (frames or the pooled embedding);
  :meth:`Task.loss` computes the loss on a batch, masked where the label is absent (use
  :func:`masked_mean`), which the trainer weighs by ``options.weight``.
- **Decode format and metrics**: :meth:`Task.hypotheses` gives a batch's values of the
  decode-directory file :attr:`Task.decode_table`; :meth:`Task.parse` reads one value of that
  file back; :meth:`Task.score` scores parsed hypotheses against references. Validation and
  ``speecheq score`` both call it, so a metric has one name everywhere: ``"<task> <metric>"``.
- **Ensembles**: :meth:`Task.average` combines several networks' outputs of its head into one
  that decodes as their mean (class posteriors by default; a regression overrides it).
- **Extra optimisation phases** (:meth:`Task.phases`): steps a task takes on every training batch
  after the shared step, each over its own parameters with its own optimizer, possibly with
  training-only modules (e.g. the discriminators of an adversarial autoencoder).
- **Unlabeled data**: a task with ``uses_unlabeled = True`` lets the trainer add the utterances
  of an unlabeled data directory to the batches; every other task's loss is masked on them.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from speecheq.data.datadir import DataDir
from speecheq.data.tables import TABLES
from speecheq.errors import SpeechEQError
from speecheq.labels import ClassMap
from speecheq.metrics import ScaleScores
from speecheq.models import Dims, ModelOutput, SpeechEQModel


@dataclass(frozen=True)
class TaskOptions:
    """Options every task has. A task with options of its own subclasses this dataclass."""

    weight: float = 1.0
    """The weight of the task's loss in the sum the shared step minimises."""

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError("a task's weight must not be negative")


@dataclass(frozen=True)
class Target:
    """A task's targets for one batch: ``values`` and which utterances have a label."""

    values: torch.Tensor
    mask: torch.Tensor
    """``(batch,)`` bool: True where the utterance has a label for this task."""
    lengths: torch.Tensor | None = None
    """``(batch,)`` lengths of sequence targets (e.g. tokens), else None."""

    def to(self, device: torch.device) -> Target:
        return Target(
            *(None if tensor is None else tensor.to(device) for tensor in self._tensors())
        )

    def pin_memory(self) -> Target:
        return Target(
            *(None if tensor is None else tensor.pin_memory() for tensor in self._tensors())
        )

    def reorder(self, order: torch.Tensor) -> Target:
        """The targets of the utterances in ``order`` (indices into the batch)."""
        return Target(*(None if tensor is None else tensor[order] for tensor in self._tensors()))

    def _tensors(self) -> tuple[torch.Tensor | None, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))


@dataclass(frozen=True)
class Batch:
    """Padded features of some utterances and every task's targets for them."""

    utts: tuple[str, ...]
    feats: torch.Tensor
    """``(batch, frames, feature_dim)``, normalised, zero-padded."""
    lengths: torch.Tensor
    """``(batch,)`` frames of each utterance."""
    targets: dict[str, Target] = field(default_factory=dict)

    def to(self, device: torch.device) -> Batch:
        return replace(
            self,
            feats=self.feats.to(device),
            lengths=self.lengths.to(device),
            targets={name: target.to(device) for name, target in self.targets.items()},
        )

    def pin_memory(self) -> Batch:
        return replace(
            self,
            feats=self.feats.pin_memory(),
            lengths=self.lengths.pin_memory(),
            targets={name: target.pin_memory() for name, target in self.targets.items()},
        )


@dataclass(frozen=True)
class TaskContext:
    """What a task may use, beside the training set, to take its inventory."""

    class_map: ClassMap
    """The recipe's emotion classes and merges (the ``labels`` section of the config)."""
    lang_dir: Path | None
    """The lang directory (``tokens.txt``), if one was given."""
    feature_dim: int
    """The width of the training set's features."""


@dataclass
class Phase:
    """An extra optimisation step a task takes on every training batch, after the shared step.

    The trainer gives the phase its own AdamW optimizer (same learning-rate schedule) over
    ``parameters``, calls ``loss(model, batch)`` with the unwrapped model, back-propagates,
    averages the gradients over DDP ranks, clips and steps. ``modules`` holds the phase's
    training-only modules (a discriminator, say): the trainer moves them to the device and
    keeps them in checkpoints, but not in the model file.
    """

    name: str
    loss: Callable[[SpeechEQModel, Batch], torch.Tensor]
    parameters: Sequence[nn.Parameter]
    modules: nn.Module = field(default_factory=nn.Module)


def masked_mean(
    values: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """The (weighted) mean of per-utterance ``values`` over the utterances where ``mask`` is True.

    Masked utterances add nothing to the mean or to its gradient, even where their value is not
    finite. With no utterance selected the result is a zero that is still part of the graph, so
    every head takes part in every backward pass (as DDP requires).
    """
    weights = mask.to(values.dtype) if weights is None else weights.to(values.dtype) * mask
    values = torch.where(mask, values, torch.zeros_like(values))
    return (values * weights).sum() / weights.sum().clamp(min=1e-12)


@dataclass(frozen=True)
class TaskScores:
    """A task's scores on some utterances."""

    metrics: dict[str, float]
    """``"<task> <metric>"`` (or ``"<scale> <metric>"`` for a derived scale) -> value."""
    scales: dict[str, ScaleScores] = field(default_factory=dict)
    """Per-class scores and confusion matrices, by scale (e.g. ``emotion``, ``sentiment``)."""
    notes: list[str] = field(default_factory=list)


def members_mean(outputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """The plain mean of an ensemble's members' head outputs (a regression's average)."""
    return torch.stack([output.float() for output in outputs]).mean(dim=0)


class Task(ABC):
    """One task of the multitask model (see the module docstring for the contract)."""

    name: ClassVar[str]
    """The task's name in configs, ``--tasks``, model files and score tables."""
    label_table: ClassVar[str]
    """The data-directory table its labels come from (a key of ``TABLES``, e.g. ``utt2emo``)."""
    decode_table: ClassVar[str]
    """The decode-directory file of its hypotheses and references (e.g. ``utt2emo``)."""
    class_file: ClassVar[str | None] = None
    """A decode-directory file listing the task's classes in index order, if it has one; the
    values of its decode table must be among them."""
    options_type: ClassVar[type[TaskOptions]] = TaskOptions
    primary_metric: ClassVar[str]
    """The metric (``"<task> <metric>"`` without the task) that selects the best epoch."""
    maximize: ClassVar[bool] = True
    """Whether a higher ``primary_metric`` is better."""
    uses_unlabeled: ClassVar[bool] = False
    """Whether the task learns from utterances that have no label at all (then the training
    set need not hold any label for it)."""

    def __init__(self, options: TaskOptions, inventory: Mapping[str, Any]) -> None:
        self.options = options
        self.inventory = dict(inventory)

    @classmethod
    def take_inventory(
        cls, options: TaskOptions, train: DataDir, context: TaskContext
    ) -> dict[str, Any]:
        """What the task learns from the training set, as plain data (saved in the model file)."""
        return {}

    @property
    def classes(self) -> list[str]:
        """The class names in index order (empty for tasks that are not classifications)."""
        return list(self.inventory.get("classes", []))

    def references(self, data: DataDir) -> dict[str, str]:
        """The reference value (decode-file form) of each utterance of ``data`` with one.

        By default the label table's values, through the utterance's speaker for a table keyed
        by speaker.
        """
        table = data.get(self.label_table)
        if TABLES[self.label_table].keyed_by == "speaker":
            return {utt: table[spk] for utt, spk in data.utt2spk.items() if spk in table}
        return dict(table)

    @abstractmethod
    def encode(self, value: str, where: str) -> Any:
        """The training target of a reference value; raise naming ``where`` if it is unusable."""

    @abstractmethod
    def collate(self, targets: Sequence[Any | None]) -> Target:
        """Stack the targets of a batch's utterances (None where an utterance has no label)."""

    @abstractmethod
    def build_head(self, dims: Dims) -> nn.Module:
        """The head: a module mapping :class:`~speecheq.models.Encoded` to this task's output."""

    @abstractmethod
    def loss(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        """The task's loss on a batch (a scalar), masked where the label is absent."""

    @abstractmethod
    def hypotheses(self, output: ModelOutput) -> dict[str, list[str]]:
        """Decode-directory tables for a batch: table name -> one value per utterance.

        The table named :attr:`decode_table` is required; others (e.g. posteriors) are optional.
        """

    def average(self, outputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """An ensemble's head output from its members' (:mod:`speecheq.models.ensemble`). By
        default the log of their mean softmax over the last axis: it decodes as the members'
        averaged class (or token) posteriors; a regression returns :func:`members_mean`."""
        logs = torch.stack([torch.log_softmax(output.float(), dim=-1) for output in outputs])
        return torch.logsumexp(logs, dim=0) - math.log(len(outputs))

    @classmethod
    def parse(cls, value: str, where: str) -> Any:
        """One value of the decode table, parsed; raise naming ``where`` if it is malformed."""
        if len(value.split()) != 1:
            raise SpeechEQError(f"{where}: expected one name, got '{value}'")
        return value

    @classmethod
    def to_json(cls, value: Any) -> Any:
        """A parsed value as plain JSON data (tuples as lists)."""
        return list(value) if isinstance(value, tuple) else value

    @classmethod
    @abstractmethod
    def score(
        cls, refs: Sequence[Any], hyps: Sequence[Any], classes: Sequence[str] = ()
    ) -> TaskScores:
        """Scores of parsed hypotheses against parsed references (same order, non-empty);
        ``classes`` are the task's classes in index order, where it has a class file."""

    def phases(self, model: SpeechEQModel) -> list[Phase]:
        """The extra optimisation phases of this task (none by default)."""
        return []
