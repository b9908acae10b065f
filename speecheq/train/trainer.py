"""Stage 4: train the multitask model, validate every epoch, keep the best (``speecheq train``).

One loop serves a CPU, one GPU (mixed precision) and many processes under ``torchrun`` (DDP:
each rank takes its share of the batches, BatchNorm statistics are averaged over the ranks
after every epoch, and only rank 0 validates, writes files and shows progress). Each training
step minimises the weighted sum of the enabled tasks' masked losses with AdamW (warm-up, then
cosine decay; gradient clipping), then runs the tasks' extra phases
(:class:`speecheq.tasks.Phase`), if any.

The experiment directory gets ``checkpoint.pt`` after every epoch (see :func:`train`),
``model.pt`` (the best epoch by validation score: see :func:`train`), ``metrics.csv`` and,
when ``tensorboard`` is installed, TensorBoard event files.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import ConcatDataset, DataLoader

from speecheq.config import TrainConfig
from speecheq.console import note, print_table, status_console
from speecheq.data.datadir import DataDir
from speecheq.dataio.cmvn import Cmvn
from speecheq.dataio.dataset import Collator, FeatureDataset, feature_dim, load_utterances
from speecheq.dataio.sampler import BucketBatchSampler, MixedBatchSampler
from speecheq.decode import decode, score_tasks
from speecheq.errors import SpeechEQError
from speecheq.fileio import atomic_write
from speecheq.modelfile import build_model, build_tasks, load_torch, model_payload, save_torch
from speecheq.models import SpeechEQModel
from speecheq.tasks import TASKS, Batch, Phase, Task, TaskContext
from speecheq.train.augment import SpecAugment
from speecheq.train.distributed import Runtime, runtime

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
METRICS = "metrics.csv"


@dataclass
class TrainResult:
    """What a run ends with: the per-epoch metrics, the best epoch and the final network."""

    history: list[dict[str, float]]
    best_epoch: int | None
    """1-based; None when no validation score could select one (the last epoch is saved)."""
    model: SpeechEQModel


@dataclass
class _Data:
    """The training and validation sets, ready to batch."""

    tasks: list[Task]
    train: ConcatDataset
    valid: FeatureDataset
    valid_refs: dict[str, dict[str, str]]
    cmvn: Cmvn
    feature_dim: int
    feats_conf: str | None


@dataclass
class _PhaseState:
    """An extra phase with its optimizer, schedule and gradient scaler."""

    phase: Phase
    optimizer: torch.optim.Optimizer
    scheduler: LambdaLR
    scaler: torch.amp.GradScaler


@dataclass
class _Best:
    epoch: int | None = None
    score: float | None = None


@dataclass
class _EpochTimes:
    """Seconds an epoch spent waiting for batches, in training steps, and in all."""

    data: float = 0.0
    step: float = 0.0
    total: float = 0.0
    losses: dict[str, float] = field(default_factory=dict)


def train(
    config: TrainConfig,
    train_dir: str | Path,
    valid_dir: str | Path,
    exp_dir: str | Path,
    lang_dir: str | Path | None = None,
    *,
    resume: bool = False,
    device: str = "auto",
    unlabeled_dir: str | Path | Sequence[str | Path] | None = None,
) -> TrainResult:
    """Train ``config``'s tasks on ``train_dir``, validating on ``valid_dir``, into ``exp_dir``.

    - Utterances that have no label for any enabled task are left out of the batches (they
      would add nothing), except when a task uses unlabeled data: then the utterances of
      ``unlabeled_dir`` (one data directory or several) join the batches too, with every label
      masked (any labels those directories hold are not read), ``batching.unlabeled_ratio`` of
      them per training utterance each epoch (see :mod:`speecheq.dataio.sampler`).
    - ``model.pt`` is the epoch with the best validation score: the primary metric (emotion
      UA, say) of the first task in the config that the valid set can score; with none, the
      last epoch.
    - ``checkpoint.pt`` (weights, optimizer, scheduler, scaler, sampler, extra phases,
      history, best epoch) is replaced after every epoch. With ``resume``, the run continues
      from it and ends as an uninterrupted run would (exactly, on CPU): the random generators
      are re-seeded from (seed, epoch, rank) at the start of every epoch and the batches of an
      epoch depend only on (seed, epoch), so no random state needs saving. Without
      ``resume``, a run starts afresh and replaces what ``exp_dir`` held.
    - A loss or gradient that is not finite stops the run with a :class:`SpeechEQError`; the
      checkpoint of the last completed epoch is kept.
    """
    train_dir, valid_dir, exp_dir = Path(train_dir), Path(valid_dir), Path(exp_dir)
    if unlabeled_dir is None:
        unlabeled_dirs = []
    elif isinstance(unlabeled_dir, str | Path):
        unlabeled_dirs = [Path(unlabeled_dir)]
    else:
        unlabeled_dirs = [Path(path) for path in unlabeled_dir]
    with runtime(device, config.optim.amp) as rt:
        data = _prepare_data(
            config,
            train_dir,
            valid_dir,
            Path(lang_dir) if lang_dir is not None else None,
            unlabeled_dirs,
        )
        return _Trainer(config, data, exp_dir, rt).run(resume)


def _prepare_data(
    config: TrainConfig,
    train_dir: Path,
    valid_dir: Path,
    lang_dir: Path | None,
    unlabeled_dirs: Sequence[Path],
) -> _Data:
    train_data, valid_data = DataDir.load(train_dir), DataDir.load(valid_dir)
    dim = feature_dim(train_dir, train_data)
    context = TaskContext(config.labels.class_map(), lang_dir, dim)
    inventories = {
        name: TASKS[name].take_inventory(options, train_data, context)
        for name, options in config.tasks.items()
    }
    tasks = build_tasks(config, inventories)
    utterances = load_utterances(train_dir, train_data, tasks)
    for task in tasks:
        if not task.uses_unlabeled and not any(task.name in u.targets for u in utterances):
            raise SpeechEQError(
                f"{train_dir}: no utterance has a label for the enabled task '{task.name}' "
                f"(its labels come from {task.source})"
            )
    uses_unlabeled = any(task.uses_unlabeled for task in tasks)
    if not uses_unlabeled:
        utterances = [u for u in utterances if u.targets]
    cmvn = Cmvn.from_training(config.features.cmvn, train_dir, train_data)
    parts = [FeatureDataset(utterances, cmvn, dim)]
    owners = {u.utt: (0, train_dir) for u in utterances}
    for index, unlabeled_dir in enumerate(unlabeled_dirs, start=1):
        if not uses_unlabeled:
            raise SpeechEQError(
                f"{unlabeled_dir}: unlabeled data was given, but no enabled task learns from it"
            )
        unlabeled = DataDir.load(unlabeled_dir)
        if unlabeled.conf.get("feats.conf", "") != train_data.conf.get("feats.conf", ""):
            raise SpeechEQError(
                f"{unlabeled_dir}: its features were computed with other options than those of "
                f"{train_dir} (conf/feats.conf differs)"
            )
        for utt in unlabeled.utts:
            owner, path = owners.setdefault(utt, (index, unlabeled_dir))
            if owner != index:
                raise SpeechEQError(
                    f"{unlabeled_dir}: utterance '{utt}' is also in {path}; an utterance may be "
                    "given only once"
                )
        parts.append(
            FeatureDataset(
                load_utterances(unlabeled_dir, unlabeled, tasks, with_targets=False),
                cmvn.for_data(unlabeled_dir, unlabeled),
                dim,
            )
        )
    valid = FeatureDataset(
        load_utterances(valid_dir, valid_data, tasks),
        cmvn.for_data(valid_dir, valid_data),
        dim,
    )
    return _Data(
        tasks,
        ConcatDataset(parts),
        valid,
        {task.name: task.references(valid_data) for task in tasks},
        cmvn,
        dim,
        train_data.conf.get("feats.conf"),
    )


def warmup_cosine(
    total_steps: int, warmup_steps: int, final_ratio: float
) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up to 1, then cosine decay to ``final_ratio``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _seed(*values: int) -> None:
    """Seed torch (CPU and CUDA) from a tuple of integers."""
    torch.manual_seed(int(np.random.SeedSequence(list(values)).generate_state(1)[0]))


class _Trainer:
    """The state of one training run and its loop."""

    def __init__(self, config: TrainConfig, data: _Data, exp_dir: Path, rt: Runtime) -> None:
        self.config, self.data, self.exp_dir, self.rt = config, data, exp_dir, rt
        self.tasks = data.tasks
        optim = config.optim
        _seed(config.seed)
        self.model = build_model(data.feature_dim, config, self.tasks).to(rt.device)
        self.weights = torch.tensor([t.options.weight for t in self.tasks], device=rt.device)
        self.augment = SpecAugment(config.features.specaugment)
        self.sampler = self._sampler()
        steps = [len(self.sampler.batches(epoch)) for epoch in range(optim.epochs)]
        if min(steps) == 0:
            raise SpeechEQError(
                f"the training set is too small to give each of {rt.world_size} processes a batch"
            )
        self.schedule = warmup_cosine(sum(steps), optim.warmup_steps, optim.final_lr_ratio)
        self.optimizer, self.scheduler = self._optimizer(self.model.parameters())
        self.scaler = torch.amp.GradScaler(rt.device.type, enabled=rt.grad_scaling)
        self.phases: list[_PhaseState] = []
        for task in self.tasks:
            for phase in task.phases(self.model):
                phase.modules.to(rt.device)
                optimizer, scheduler = self._optimizer(phase.parameters)
                scaler = torch.amp.GradScaler(rt.device.type, enabled=rt.grad_scaling)
                self.phases.append(_PhaseState(phase, optimizer, scheduler, scaler))
        self.loss_names = [
            "loss",
            *(task.name for task in self.tasks),
            *(state.phase.name for state in self.phases),
        ]
        """What :meth:`_step` reports: the total, each task's loss, each phase's loss."""
        self.history: list[dict[str, float]] = []
        self.best = _Best()
        self.tensorboard: Any = None

    def _sampler(self) -> BucketBatchSampler:
        """The training batches: the training set, and the unlabeled sets mixed in at
        ``batching.unlabeled_ratio`` when there are any."""
        batching, rt = self.config.batching, self.rt
        labeled, *unlabeled = self.data.train.datasets
        groups = None
        if batching.balance == "corpus":
            groups = [u.corpus or "" for part in self.data.train.datasets for u in part.utterances]
        options: dict[str, Any] = {
            "seed": self.config.seed,
            "length_noise": batching.length_noise,
            "rank": rt.rank,
            "world_size": rt.world_size,
            "groups": groups,
        }
        if not unlabeled:
            return BucketBatchSampler(labeled.lengths, batching.max_frames, shuffle=True, **options)
        return MixedBatchSampler(
            labeled.lengths,
            [length for part in unlabeled for length in part.lengths],
            batching.unlabeled_ratio,
            batching.max_frames,
            **options,
        )

    def _optimizer(self, parameters: Any) -> tuple[torch.optim.Optimizer, LambdaLR]:
        optim = self.config.optim
        optimizer = torch.optim.AdamW(parameters, lr=optim.lr, weight_decay=optim.weight_decay)
        return optimizer, LambdaLR(optimizer, self.schedule)

    def _loader(self, dataset: Any, sampler: Any) -> DataLoader:
        workers = self.config.num_workers
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=Collator(self.tasks),
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=self.rt.device.type == "cuda",
            generator=torch.Generator().manual_seed(self.config.seed),
        )

    def run(self, resume: bool) -> TrainResult:
        start = self._restore() if resume else 0
        if self.rt.is_main:
            self.exp_dir.mkdir(parents=True, exist_ok=True)
            self.tensorboard = _tensorboard(self.exp_dir)
        network: nn.Module = self.model
        if self.rt.distributed:
            device_ids = [self.rt.device] if self.rt.device.type == "cuda" else None
            network = DistributedDataParallel(
                self.model, device_ids=device_ids, broadcast_buffers=False
            )
        train_loader = self._loader(self.data.train, self.sampler)
        valid_sampler = BucketBatchSampler(
            self.data.valid.lengths, self.config.batching.max_frames, shuffle=False
        )
        valid_loader = self._loader(self.data.valid, valid_sampler)
        for epoch in range(start, self.config.optim.epochs):
            _seed(self.config.seed, epoch, self.rt.rank)
            self.sampler.set_epoch(epoch)
            times = self._train_epoch(network, train_loader, epoch)
            self.rt.average_buffers(self.model)
            if self.rt.is_main:
                self._end_epoch(epoch, times, valid_loader)
            self.rt.barrier()
        if self.rt.is_main:
            self._summary()
            if self.tensorboard is not None:
                self.tensorboard.close()
        return TrainResult(self.history, self.best.epoch, self.model)

    def _train_epoch(self, network: nn.Module, loader: DataLoader, epoch: int) -> _EpochTimes:
        network.train()
        for state in self.phases:
            state.phase.modules.train()
        times = _EpochTimes()
        sums = torch.zeros(len(self.loss_names), dtype=torch.float64)
        steps = 0
        began = time.perf_counter()
        with self._progress(epoch, len(loader)) as advance:
            batches = iter(loader)
            while True:
                waited = time.perf_counter()
                batch = next(batches, None)
                times.data += time.perf_counter() - waited
                if batch is None:
                    break
                stepped = time.perf_counter()
                losses = self._step(network, batch, epoch, steps)
                times.step += time.perf_counter() - stepped
                sums += losses
                steps += 1
                advance(self._loss_text(sums / steps, self.loss_names))
        times.total = time.perf_counter() - began
        means = (sums / max(steps, 1)).tolist()
        times.losses = {
            "train_loss" if name == "loss" else f"train_{name}_loss": value
            for name, value in zip(self.loss_names, means, strict=True)
        }
        return times

    def _step(self, network: nn.Module, batch: Batch, epoch: int, step: int) -> torch.Tensor:
        """One optimizer step, then the extra phases; returns the losses of :attr:`loss_names`
        (averaged over ranks)."""
        batch = batch.to(self.rt.device)
        batch = dataclasses.replace(batch, feats=self.augment(batch.feats))
        with self.rt.autocast():
            output = network(batch.feats, batch.lengths)
            losses = torch.stack([task.loss(output, batch) for task in self.tasks])
        total = (losses * self.weights).sum()
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.clip_norm)
        reported = self.rt.all_reduce_mean(torch.cat([total[None], losses]).detach().float())
        self._check_finite(reported, grad_norm, epoch, step, self.loss_names)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        phase_losses = [self._phase_step(state, batch, epoch, step) for state in self.phases]
        return torch.cat([reported, *phase_losses]).cpu().double()

    def _phase_step(self, state: _PhaseState, batch: Batch, epoch: int, step: int) -> torch.Tensor:
        """One step of an extra phase; returns its loss (averaged over ranks), shape ``(1,)``."""
        state.optimizer.zero_grad(set_to_none=True)
        with self.rt.autocast():
            loss = state.phase.loss(self.model, batch)
        state.scaler.scale(loss).backward()
        self.rt.average_gradients(state.phase.parameters)
        state.scaler.unscale_(state.optimizer)
        grad_norm = nn.utils.clip_grad_norm_(state.phase.parameters, self.config.optim.clip_norm)
        reported = self.rt.all_reduce_mean(loss.detach().float()[None])
        self._check_finite(reported, grad_norm, epoch, step, [state.phase.name])
        state.scaler.step(state.optimizer)
        state.scaler.update()
        state.scheduler.step()
        return reported

    def _check_finite(
        self,
        losses: torch.Tensor,
        grad_norm: torch.Tensor,
        epoch: int,
        step: int,
        names: Sequence[str],
    ) -> None:
        # With fp16 an infinite gradient is an overflow the scaler handles (it skips the step).
        finite_grad = self.rt.grad_scaling or bool(torch.isfinite(grad_norm))
        if bool(torch.isfinite(losses).all()) and finite_grad:
            return
        what = "gradient norm" if torch.isfinite(losses).all() else "loss"
        kept = (
            f"the checkpoint of epoch {epoch} is kept in {self.exp_dir / CHECKPOINT}"
            if epoch > 0
            else "no epoch had completed, so there is no checkpoint"
        )
        raise SpeechEQError(
            f"epoch {epoch + 1}, step {step + 1}: the {what} is not finite "
            f"({self._loss_text(losses.cpu().double(), names)}); training stopped and {kept} "
            "(a lower optim.lr or optim.clip_norm may help)"
        )

    @staticmethod
    def _loss_text(losses: torch.Tensor, names: Sequence[str]) -> str:
        return " ".join(
            f"{name} {value:.3f}" for name, value in zip(names, losses.tolist(), strict=True)
        )

    def _end_epoch(self, epoch: int, times: _EpochTimes, valid_loader: DataLoader) -> None:
        began = time.perf_counter()
        decoded = decode(self.model, valid_loader, self.tasks, self.rt.device, self.rt.amp_dtype)
        scores = score_tasks(self.tasks, decoded.tables, self.data.valid_refs)
        valid_seconds = time.perf_counter() - began
        row: dict[str, float] = {"epoch": epoch + 1, "lr": self.scheduler.get_last_lr()[0]}
        row |= times.losses
        row |= {f"valid_{name}_loss": value for name, value in decoded.losses.items()}
        for name, task_scores in scores.items():
            row |= {f"valid_{name}_{metric}": value for metric, value in task_scores.items()}
        row |= {
            "seconds": times.total,
            "seconds_data": times.data,
            "seconds_step": times.step,
            "seconds_valid": valid_seconds,
        }
        self.history.append(row)
        improved = self._update_best(epoch, scores)
        flat_scores = {f"{name}_{m}": v for name, s in scores.items() for m, v in s.items()}
        if improved:
            save_torch(
                model_payload(
                    self.model,
                    self.tasks,
                    self.config,
                    self.data.cmvn,
                    self.data.feature_dim,
                    self.data.feats_conf,
                    epoch + 1,
                    flat_scores,
                ),
                self.exp_dir / MODEL,
            )
        save_torch(self._checkpoint(epoch + 1), self.exp_dir / CHECKPOINT)
        _write_metrics(self.exp_dir / METRICS, self.history)
        if self.tensorboard is not None:
            for key, value in row.items():
                self.tensorboard.add_scalar(key, value, epoch + 1)
            self.tensorboard.flush()
        shown = " ".join(f"{key} {value:.3f}" for key, value in flat_scores.items())
        marker = " (best)" if improved else ""
        note(f"epoch {epoch + 1}: loss {row['train_loss']:.3f}; valid {shown or '-'}{marker}")

    def _update_best(self, epoch: int, scores: Mapping[str, Mapping[str, float]]) -> bool:
        selected = next(
            (
                (task, scores[task.name][task.primary_metric])
                for task in self.tasks
                if task.primary_metric in scores.get(task.name, {})
            ),
            None,
        )
        if selected is None:  # nothing to select by: keep the latest epoch
            self.best = _Best(epoch + 1, None)
            return True
        task, score = selected
        value = score if task.maximize else -score
        if self.best.score is None or value > self.best.score:
            self.best = _Best(epoch + 1, value)
            return True
        return False

    def _checkpoint(self, epochs_done: int) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "epoch": epochs_done,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "phases": {
                state.phase.name: {
                    "modules": state.phase.modules.state_dict(),
                    "optimizer": state.optimizer.state_dict(),
                    "scheduler": state.scheduler.state_dict(),
                    "scaler": state.scaler.state_dict(),
                }
                for state in self.phases
            },
            "history": self.history,
            "best": {"epoch": self.best.epoch, "score": self.best.score},
        }

    def _restore(self) -> int:
        """Load ``checkpoint.pt``; return the number of epochs it completed."""
        path = self.exp_dir / CHECKPOINT
        if not path.is_file():
            raise SpeechEQError(f"{path}: no checkpoint to resume from (run without --resume)")
        state = load_torch(path, "checkpoint")
        difference = _first_difference(state["config"], self.config.to_dict())
        if difference is not None:
            raise SpeechEQError(
                f"{path}: the config differs from the one this run was started with "
                f"(at '{difference}'); resume with the same config and --tasks"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        for phase_state in self.phases:
            saved = state["phases"][phase_state.phase.name]
            phase_state.phase.modules.load_state_dict(saved["modules"])
            phase_state.optimizer.load_state_dict(saved["optimizer"])
            phase_state.scheduler.load_state_dict(saved["scheduler"])
            phase_state.scaler.load_state_dict(saved["scaler"])
        self.history = list(state["history"])
        self.best = _Best(state["best"]["epoch"], state["best"]["score"])
        if self.rt.is_main:
            note(f"resuming {self.exp_dir} after epoch {state['epoch']}")
        return int(state["epoch"])

    def _progress(self, epoch: int, total: int) -> Any:
        return _EpochProgress(
            f"epoch {epoch + 1}/{self.config.optim.epochs}", total, self.rt.is_main
        )

    def _summary(self) -> None:
        keys = [key for key in self.history[-1] if key.startswith("valid_") and "loss" not in key]
        rows = [
            [
                f"{int(row['epoch'])}{' *' if row['epoch'] == self.best.epoch else ''}",
                f"{row['train_loss']:.3f}",
                *(f"{row[key]:.3f}" if key in row else "-" for key in keys),
            ]
            for row in self.history
        ]
        header = ["epoch", "train loss", *(key.removeprefix("valid_") for key in keys)]
        print_table(f"{self.exp_dir}: training (* = {MODEL})", header, rows)


class _EpochProgress:
    """A per-epoch progress bar with the running losses (shown by the main process only)."""

    def __init__(self, description: str, total: int, show: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[losses]}"),
            console=status_console,
            disable=not show,
        )
        self.task = self.progress.add_task(description, total=total, losses="")

    def __enter__(self) -> Callable[[str], None]:
        self.progress.start()
        return lambda losses: self.progress.update(self.task, advance=1, losses=losses)

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def _first_difference(old: Any, new: Any, prefix: str = "") -> str | None:
    """The first key (dotted) where two nested config dicts differ, or None."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new)):
            if key not in old or key not in new:
                return f"{prefix}{key}"
            found = _first_difference(old[key], new[key], f"{prefix}{key}.")
            if found is not None:
                return found
        return None
    return None if old == new else prefix.rstrip(".")


def _write_metrics(path: Path, history: Sequence[Mapping[str, float]]) -> None:
    columns: dict[str, None] = {}
    for row in history:
        columns.update(dict.fromkeys(row))
    with atomic_write(path) as out:
        writer = csv.DictWriter(out, fieldnames=list(columns), restval="")
        writer.writeheader()
        for row in history:
            writer.writerow({key: f"{value:.6g}" for key, value in row.items()})


def _tensorboard(exp_dir: Path) -> Any:
    """A TensorBoard writer into ``exp_dir/tensorboard``, or None when it is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(exp_dir / "tensorboard"))
