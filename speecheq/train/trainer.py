"""Stage 4: train the multitask model, validate every epoch, keep the best (``speecheq train``).

One loop serves a CPU, one GPU (mixed precision) and many processes under ``torchrun`` (DDP:
each rank takes its share of the batches, BatchNorm statistics are averaged over the ranks
after every epoch, and only rank 0 validates, writes files and shows progress). Each training
step minimises the weighted sum of the enabled tasks' masked losses (:mod:`.optim`), then runs
the tasks' extra phases (:class:`speecheq.tasks.Phase`), if any. What an epoch reports goes to
the :class:`~speecheq.train.reporter.Reporter`; what resuming needs, to ``checkpoint.pt``
(:mod:`.state`).

The experiment directory gets ``config.yaml`` (the resolved config), ``checkpoint.pt`` after
every epoch, ``model.pt`` (the best epoch by validation score), ``metrics.csv`` and, when
``tensorboard`` is installed, TensorBoard event files.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from speecheq.batching.sampler import BucketBatchSampler
from speecheq.config import TrainConfig, write_config
from speecheq.console import note
from speecheq.errors import SpeechEQError
from speecheq.fileio import make_folder
from speecheq.modelfile import (
    UPSTREAM_PREFIX,
    build_model,
    initialise,
    load_torch,
    model_payload,
    save_torch,
)
from speecheq.models import SpeechEQModel
from speecheq.predict import decode, score_tasks
from speecheq.tasks import Batch, TaskScores
from speecheq.train.augment import SpecAugment, mixup
from speecheq.train.averaging import MovingAverage, WeightAverage
from speecheq.train.data import TrainingData, batch_loader, load_training_data, training_sampler
from speecheq.train.distributed import Runtime, runtime
from speecheq.train.optim import Optimiser, PhaseState, PhaseStates, warmup_cosine
from speecheq.train.reporter import EpochTimes, Reporter
from speecheq.train.state import (
    CHECKPOINT,
    Resume,
    TrainingState,
    check_checkpoint,
    check_finite,
    loss_text,
    make_checkpoint,
)
from speecheq.train.weighting import TaskWeighting

MODEL = "model.pt"
CONFIG = "config.yaml"


@dataclass
class TrainResult:
    """What a run ends with: the per-epoch metrics, the best epoch and the final network."""

    history: list[dict[str, float]]
    best_epoch: int | None
    """1-based; None when no validation score could select one (the last epoch is saved)."""
    model: SpeechEQModel


def train(
    config: TrainConfig,
    train_dir: str | Path,
    valid_dir: str | Path,
    exp_dir: str | Path,
    lang_dir: str | Path | None = None,
    *,
    resume: Resume = "auto",
    device: str = "auto",
    unlabeled_dir: str | Path | Sequence[str | Path] | None = None,
) -> TrainResult:
    """Train ``config``'s tasks on ``train_dir``, validating on ``valid_dir``, into ``exp_dir``.

    - Utterances that have no label for any enabled task are left out of the batches (they
      would add nothing), except when a task uses unlabeled data: then the utterances of
      ``unlabeled_dir`` (one data directory or several) join the batches too, with every label
      masked, ``batching.unlabeled_ratio`` of them per training utterance each epoch (see
      :mod:`speecheq.batching.sampler`).
    - ``model.pt`` is the epoch with the best validation score: the primary metric (emotion
      UA, say) of the first task in the config that the valid set can score; with none, the
      last epoch. With ``optim.ema_epochs``, the weights validated and kept are the moving
      average of the trained ones; with ``optim.average_last``, ``model.pt`` is the mean of the
      last epochs' (kept) weights.
    - ``checkpoint.pt`` is replaced after every epoch. ``resume="auto"`` continues from it
      when there is one (a finished run trains nothing more) and starts afresh otherwise;
      ``True`` requires one; ``False`` starts afresh, replacing what ``exp_dir`` held. A
      checkpoint of another config or other data is an error naming both. A resumed run ends
      as an uninterrupted one would (exactly, on CPU): the random generators are re-seeded
      from (seed, epoch, rank) at the start of every epoch and the batches of an epoch depend
      only on (seed, epoch), so no random state needs saving.
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
        data = load_training_data(
            config,
            train_dir,
            valid_dir,
            Path(lang_dir) if lang_dir is not None else None,
            unlabeled_dirs,
        )
        return _Trainer(config, data, exp_dir, rt).run(resume)


def _seed(*values: int) -> None:
    """Seed torch (CPU and CUDA) from a tuple of integers."""
    torch.manual_seed(int(np.random.SeedSequence(list(values)).generate_state(1)[0]))


class _Trainer:
    """The state of one training run and its loop."""

    def __init__(self, config: TrainConfig, data: TrainingData, exp_dir: Path, rt: Runtime) -> None:
        self.config, self.data, self.exp_dir, self.rt = config, data, exp_dir, rt
        self.tasks = data.tasks
        optim = config.optim
        _seed(config.seed)
        self.model = build_model(data.feature_dim, config, self.tasks, data.spec, data.upstream).to(
            rt.device
        )
        names, weights = [t.name for t in self.tasks], [t.options.weight for t in self.tasks]
        self.weighting = TaskWeighting(names, weights, optim.task_weighting).to(rt.device)
        self.augment = SpecAugment(config.features.specaugment)
        self.sampler = training_sampler(data, config, rt.rank, rt.world_size)
        if rt.distributed and rt.is_main:
            note(f"{exp_dir}: one DDP world of {rt.world_size} processes, each on its batches")
        steps = [len(self.sampler.batches(epoch)) for epoch in range(optim.epochs)]
        if min(steps) == 0:
            raise SpeechEQError(
                f"the training set is too small to give each of {rt.world_size} processes a batch"
            )
        schedule = warmup_cosine(sum(steps), optim.warmup_steps, optim.final_lr_ratio)
        self.optimiser = Optimiser.build(
            self._parameter_groups(), optim, schedule, rt.device, rt.grad_scaling
        )
        self.phases = PhaseStates()
        for task in self.tasks:
            for phase in task.phases(self.model):
                phase.modules.to(rt.device)
                optimiser = Optimiser.build(
                    phase.parameters, optim, schedule, rt.device, rt.grad_scaling
                )
                self.phases.append(PhaseState(phase, optimiser))
        self.loss_names = [
            "loss",
            *(task.name for task in self.tasks),
            *(state.phase.name for state in self.phases),
        ]
        """What :meth:`_step` reports: the total, each task's loss, each phase's loss."""
        self.reporter = Reporter(exp_dir, self.tasks, optim.epochs, rt.is_main)
        self.average = WeightAverage(optim.epochs, optim.average_last)
        self.moving_average = MovingAverage(self.model, optim.ema_epochs * sum(steps) / len(steps))
        self.state = TrainingState(
            self.model,
            self.optimiser,
            self.sampler,
            self.phases,
            self.reporter,
            self.average,
            self.moving_average,
            self.weighting,
        )

    def _initialise(self, path: Path) -> None:
        """Start from the parameters of the model file ``path`` that fit (``config.init``)."""
        left = initialise(self.model, path)
        if self.rt.is_main:
            parts = sorted({".".join(name.split(".")[:2]) for name in left})
            rest = f"; at random: {', '.join(parts)}" if parts else ""
            note(f"{self.exp_dir}: initialised from {path}{rest}")

    def _parameter_groups(self) -> list[dict[str, Any]]:
        """The trained parameters: the upstream's (when fine-tuned) at its scaled rate."""
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        groups: list[dict[str, Any]] = [
            {"params": [p for n, p in named if not n.startswith(UPSTREAM_PREFIX)]}
        ]
        if self.weighting.log_vars is not None:
            groups.append({"params": [self.weighting.log_vars], "weight_decay": 0.0})
        upstream = [p for n, p in named if n.startswith(UPSTREAM_PREFIX)]
        if upstream:
            scale = self.config.model.upstream.lr_scale
            groups.append({"params": upstream, "lr": self.config.optim.lr * scale})
        return groups

    def run(self, resume: Resume) -> TrainResult:
        checkpoint = self.exp_dir / CHECKPOINT
        if resume is True and not checkpoint.is_file():
            raise SpeechEQError(
                f"{checkpoint}: no checkpoint to resume from (train with --resume auto or false)"
            )
        start = self._restore(checkpoint) if resume and checkpoint.is_file() else 0
        if start == 0 and self.config.init:  # a resumed run has its weights from the checkpoint
            self._initialise(Path(self.config.init))
        if self.rt.is_main:
            make_folder(self.exp_dir)
            write_config(self.config, self.exp_dir / CONFIG)
            self.reporter.open()
        network: nn.Module = self.model
        if self.rt.distributed:
            device_ids = [self.rt.device] if self.rt.device.type == "cuda" else None
            network = DistributedDataParallel(
                self.model, device_ids=device_ids, broadcast_buffers=False
            )
        train_loader = batch_loader(
            self.data.train, self.sampler, self.tasks, self.config, self.rt.device
        )
        valid_sampler = BucketBatchSampler(
            self.data.valid.lengths, self.config.batching.max_frames, shuffle=False
        )
        valid_loader = batch_loader(
            self.data.valid, valid_sampler, self.tasks, self.config, self.rt.device
        )
        for epoch in range(start, self.config.optim.epochs):
            _seed(self.config.seed, epoch, self.rt.rank)
            self.sampler.set_epoch(epoch)
            self.weighting.set_epoch(epoch, self.config.optim.epochs)
            times = self._train_epoch(network, train_loader, epoch)
            self.rt.average_buffers(self.model)
            if self.rt.is_main:
                self._end_epoch(epoch, times, valid_loader)
            self.rt.barrier()
        if self.rt.is_main:
            averaged = self.config.optim.average_last > 0
            self.reporter.summary(MODEL, self.average.first if averaged else None)
            self.reporter.close()
        return TrainResult(self.reporter.history, self.reporter.best_epoch, self.model)

    def _train_epoch(self, network: nn.Module, loader: DataLoader, epoch: int) -> EpochTimes:
        network.train()
        for state in self.phases:
            state.phase.modules.train()
        times = EpochTimes()
        sums = torch.zeros(len(self.loss_names), dtype=torch.float64)
        steps = 0
        began = time.perf_counter()
        with self.reporter.progress(epoch, len(loader)) as advance:
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
                advance(loss_text(sums / steps, self.loss_names))
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
        if self.data.spec.kind != "upstream":  # masks of features, not of raw audio
            batch = dataclasses.replace(batch, feats=self.augment(batch.feats))
        trained, partner, share = batch, None, 1.0
        if self.config.features.mixup:
            trained, partner, share = mixup(batch, self.config.features.mixup)
        with self.rt.autocast():
            output = network(trained.feats, trained.lengths)
            losses = torch.stack([task.loss(output, trained) for task in self.tasks])
            if partner is not None:
                losses = share * losses + (1 - share) * torch.stack(
                    [task.loss(output, partner) for task in self.tasks]
                )
        total = self.weighting(losses)
        names = self.loss_names[: 1 + len(self.tasks)]
        reported = self._optimise(
            total, torch.cat([total[None], losses]), names, self.optimiser, self.model, epoch, step
        )
        phase_losses = [self._phase_step(state, batch, epoch, step) for state in self.phases]
        self.moving_average.update(self.model)
        return torch.cat([reported, *phase_losses]).cpu().double()

    def _phase_step(self, state: PhaseState, batch: Batch, epoch: int, step: int) -> torch.Tensor:
        """One step of an extra phase; returns its loss (averaged over ranks), shape ``(1,)``."""
        with self.rt.autocast():
            loss = state.phase.loss(self.model, batch)
        return self._optimise(
            loss, loss[None], [state.phase.name], state.optimiser, state, epoch, step
        )

    def _optimise(
        self,
        objective: torch.Tensor,
        reported: torch.Tensor,
        names: Sequence[str],
        optimiser: Optimiser,
        owner: nn.Module | PhaseState,
        epoch: int,
        step: int,
    ) -> torch.Tensor:
        """Back-propagate ``objective``, clip the gradients of ``owner`` (the model, whose DDP
        wrapper averages them over ranks, or an extra phase, averaged here) and step; return
        ``reported`` averaged over ranks, checked finite."""
        optimiser.optimizer.zero_grad(set_to_none=True)
        optimiser.scaler.scale(objective).backward()
        if isinstance(owner, PhaseState):
            parameters = list(owner.phase.parameters)
            self.rt.average_gradients(parameters)
        else:
            parameters = list(owner.parameters())
            self.rt.average_gradients(list(self.weighting.parameters()))
        optimiser.scaler.unscale_(optimiser.optimizer)
        grad_norm = nn.utils.clip_grad_norm_(parameters, self.config.optim.clip_norm)
        reported = self.rt.all_reduce_mean(reported.detach().float())
        finite_grad = self.rt.grad_scaling or bool(torch.isfinite(grad_norm))  # scaler skips
        check_finite(reported, finite_grad, epoch, step, names, self.exp_dir / CHECKPOINT)
        optimiser.scaler.step(optimiser.optimizer)
        optimiser.scaler.update()
        optimiser.scheduler.step()
        return reported

    def _end_epoch(self, epoch: int, times: EpochTimes, valid_loader: DataLoader) -> None:
        began = time.perf_counter()
        kept = self.moving_average.model(self.model)
        scores, losses = self._validate(kept, valid_loader)
        lr = self.optimiser.scheduler.get_last_lr()[0]
        weights = dict(zip((task.name for task in self.tasks), self.weighting.weights, strict=True))
        improved = self.reporter.end_epoch(
            epoch, lr, times, losses, scores, time.perf_counter() - began, weights
        )
        self.average.add(kept, epoch + 1)
        if not self.config.optim.average_last and improved:
            self._save_model(kept, epoch + 1, scores)
        elif self.config.optim.average_last and epoch + 1 == self.config.optim.epochs:
            averaged = self.average.averaged(kept)
            scores, _ = self._validate(averaged, valid_loader)
            shown = " ".join(f"{k} {v:.3f}" for s in scores.values() for k, v in s.metrics.items())
            note(f"{MODEL}: the mean of epochs {self.average.first}-{epoch + 1}; valid {shown}")
            self._save_model(averaged, epoch + 1, scores)
        checkpoint = make_checkpoint(
            self.config.to_dict(), self.data.fingerprints, epoch + 1, self.state
        )
        save_torch(checkpoint, self.exp_dir / CHECKPOINT)

    def _validate(
        self, model: nn.Module, loader: DataLoader
    ) -> tuple[dict[str, TaskScores], dict[str, float]]:
        """Every task's scores on the valid set, and the valid losses."""
        decoded = decode(model, loader, self.tasks, self.rt.device, self.rt.amp_dtype)
        return score_tasks(self.tasks, decoded.tables, self.data.valid_refs), decoded.losses

    def _save_model(self, model: nn.Module, epoch: int, scores: dict[str, TaskScores]) -> None:
        metrics = {key: value for s in scores.values() for key, value in s.metrics.items()}
        payload = model_payload(
            model,
            self.tasks,
            self.config,
            cmvn=self.data.cmvn,
            feature_dim=self.data.feature_dim,
            feats_conf=self.data.feats_conf,
            epoch=epoch,
            scores=metrics,
            trained_on={**self.data.fingerprints["train"], "corpora": self.data.corpora},
        )
        save_torch(payload, self.exp_dir / MODEL)

    def _restore(self, path: Path) -> int:
        """Load ``checkpoint.pt`` (after checking it is this run's); return its epochs."""
        state = load_torch(path, "checkpoint")
        check_checkpoint(path, state, self.config.to_dict(), self.data.fingerprints)
        self.state.load_state_dict(state)
        epochs = int(state["epoch"])
        if self.rt.is_main:
            if epochs >= self.config.optim.epochs:
                note(f"{self.exp_dir}: finished ({epochs} epochs); nothing to train")
            else:
                note(f"resuming {self.exp_dir} after epoch {epochs}")
        return epochs
