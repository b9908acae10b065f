"""What a training run reports: the metric history, the best epoch, ``metrics.csv``, TensorBoard,
the progress bar and the summary table (as ESPnet's Reporter: the loop reports, this keeps).

Every epoch's row holds the learning rate, the training losses, the validation losses and every
task's validation scores (``valid_<task>_<metric>``, the names of ``speecheq score``), and the
seconds spent. The best epoch is the one with the best primary metric of the first task that
the valid set can score (emotion UA, say); with none, the latest.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from speecheq.console import note, print_table, status_console
from speecheq.fileio import atomic_write
from speecheq.tasks import Task, TaskScores

METRICS = "metrics.csv"


@dataclass
class EpochTimes:
    """Seconds an epoch spent waiting for batches, in training steps, and in all; its losses."""

    data: float = 0.0
    step: float = 0.0
    total: float = 0.0
    losses: dict[str, float] = field(default_factory=dict)


def column(key: str) -> str:
    """A metric key (``"emotion UA"``) as a column name (``emotion_UA``)."""
    return key.replace(" ", "_")


class Reporter:
    """The history of a run, its best epoch, and what it shows and writes about them."""

    def __init__(self, exp_dir: Path, tasks: Sequence[Task], epochs: int, is_main: bool) -> None:
        self.exp_dir = exp_dir
        self.tasks = list(tasks)
        self.epochs = epochs
        self.is_main = is_main
        self.history: list[dict[str, float]] = []
        self.best_epoch: int | None = None
        self.best_score: float | None = None
        self.tensorboard: Any = None

    def state_dict(self) -> dict[str, Any]:
        return {
            "history": self.history,
            "best": {"epoch": self.best_epoch, "score": self.best_score},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.history = list(state["history"])
        self.best_epoch, self.best_score = state["best"]["epoch"], state["best"]["score"]

    def open(self) -> None:
        """Start writing TensorBoard event files, when TensorBoard is installed."""
        if self.is_main:
            self.tensorboard = _tensorboard(self.exp_dir)

    def progress(self, epoch: int, total: int) -> EpochProgress:
        return EpochProgress(f"epoch {epoch + 1}/{self.epochs}", total, self.is_main)

    def end_epoch(
        self,
        epoch: int,
        lr: float,
        times: EpochTimes,
        valid_losses: Mapping[str, float],
        scores: Mapping[str, TaskScores],
        valid_seconds: float,
        weights: Mapping[str, float],
    ) -> bool:
        """Record an epoch (with each task's loss weight at its end); write ``metrics.csv`` and
        TensorBoard; return whether it is the best."""
        metrics = {key: value for s in scores.values() for key, value in s.metrics.items()}
        row: dict[str, float] = {"epoch": epoch + 1, "lr": lr}
        row |= times.losses
        row |= {f"valid_{name}_loss": value for name, value in valid_losses.items()}
        row |= {f"valid_{column(key)}": value for key, value in metrics.items()}
        row |= {f"weight_{name}": value for name, value in weights.items()}
        row |= {
            "seconds": times.total,
            "seconds_data": times.data,
            "seconds_step": times.step,
            "seconds_valid": valid_seconds,
        }
        self.history.append(row)
        improved = self._update_best(epoch, metrics)
        _write_metrics(self.exp_dir / METRICS, self.history)
        if self.tensorboard is not None:
            for key, value in row.items():
                self.tensorboard.add_scalar(key, value, epoch + 1)
            self.tensorboard.flush()
        shown = " ".join(f"{key} {value:.3f}" for key, value in metrics.items())
        marker = " (best)" if improved else ""
        note(f"epoch {epoch + 1}: loss {row['train_loss']:.3f}; valid {shown or '-'}{marker}")
        return improved

    def _update_best(self, epoch: int, metrics: Mapping[str, float]) -> bool:
        selected = next(
            (
                (task, metrics[key])
                for task in self.tasks
                if (key := f"{task.name} {task.primary_metric}") in metrics
            ),
            None,
        )
        if selected is None:  # nothing to select by: keep the latest epoch
            self.best_epoch, self.best_score = epoch + 1, None
            return True
        task, score = selected
        value = score if task.maximize else -score
        if self.best_score is None or value > self.best_score:
            self.best_epoch, self.best_score = epoch + 1, value
            return True
        return False

    def summary(self, model_name: str, averaged_from: int | None = None) -> None:
        """Print the table of every epoch's training loss and each task's primary validation
        score (``metrics.csv`` has them all); ``*`` marks the epochs of the model kept: the
        best, or those averaged from ``averaged_from`` on."""
        primary = [f"valid_{column(f'{t.name} {t.primary_metric}')}" for t in self.tasks]
        keys = [key for key in primary if any(key in row for row in self.history)]

        def kept(epoch: int) -> bool:
            return epoch == self.best_epoch if averaged_from is None else epoch >= averaged_from

        rows = [
            [
                f"{int(row['epoch'])}{' *' if kept(int(row['epoch'])) else ''}",
                f"{row['train_loss']:.3f}",
                *(f"{row[key]:.3f}" if key in row else "-" for key in keys),
            ]
            for row in self.history
        ]
        header = ["epoch", "train loss", *(key.removeprefix("valid_") for key in keys)]
        print_table(f"{self.exp_dir}: training (* = {model_name})", header, rows)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


class EpochProgress:
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
