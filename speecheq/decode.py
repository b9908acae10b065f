"""Decoding a data set with a model: every task's hypothesis tables, losses and scores."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch

from speecheq.device import autocast
from speecheq.models import SpeechEQModel
from speecheq.tasks import Batch, Task, TaskScores


@dataclass(frozen=True)
class Decoded:
    """Decode-directory tables (name -> utterance -> value) and per-task mean losses."""

    tables: dict[str, dict[str, str]]
    losses: dict[str, float]
    """Each task's mean loss over the batches that had labels for it (weighted by their count)."""


@torch.inference_mode()
def decode(
    model: SpeechEQModel,
    batches: Iterable[Batch],
    tasks: Sequence[Task],
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    advance: Callable[[int], None] | None = None,
) -> Decoded:
    """Run ``model`` (put in eval mode) over ``batches`` on ``device`` (in ``amp_dtype`` mixed
    precision, if given); ``advance(n)`` after each batch."""
    model.eval()
    tables: dict[str, dict[str, str]] = defaultdict(dict)
    loss_sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for batch in batches:
        batch = batch.to(device)
        with autocast(device, amp_dtype):
            output = model(batch.feats, batch.lengths)
        for task in tasks:
            for table, values in task.hypotheses(output).items():
                tables[table].update(zip(batch.utts, values, strict=True))
            target = batch.targets.get(task.name)
            labeled = 0 if target is None else int(target.mask.sum())
            if labeled:
                loss_sums[task.name] += float(task.loss(output, batch)) * labeled
                counts[task.name] += labeled
        if advance is not None:
            advance(len(batch.utts))
    losses = {name: loss_sums[name] / counts[name] for name in counts}
    return Decoded(dict(tables), losses)


def score_tasks(
    tasks: Sequence[Task],
    tables: Mapping[str, Mapping[str, str]],
    references: Mapping[str, Mapping[str, str]],
) -> dict[str, TaskScores]:
    """Task -> its scores over the utterances of its references (tasks without any left out)."""
    scores = {}
    for task in tasks:
        refs = references.get(task.name, {})
        hyps = tables.get(task.decode_table, {})
        utts = [utt for utt in sorted(refs) if utt in hyps]
        if utts:
            where = f"task '{task.name}'"
            scores[task.name] = task.score(
                [task.parse(refs[u], where) for u in utts],
                [task.parse(hyps[u], where) for u in utts],
                task.classes,
            )
    return scores
