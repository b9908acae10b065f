"""Decoding with a model: over batches (:func:`decode`, also training's validation), and a data
directory into a decode directory (:func:`predict`, stage 5a, ``speecheq predict``).

The decode directory is what ``speecheq score`` reads::

    classes            the emotion classes in the model's index order (models with emotion)
    hyp/<table>        every task's hypotheses for every utterance (utt2emo, utt2emo.post,
                       utt2intensity, utt2gender, tokens, ...)
    ref/<table>        the references of the data directory for the utterances that have one
                       (utt2emo after the model's class map; utt2gender whenever spk2gender
                       gives it, for the emotion UA per gender)
    utt2spk            every utterance's speaker (late fusion normalises per speaker)

Tables of ``hyp/`` and ``ref/`` that this model does not write (left by an earlier run) are
removed, so a decode directory never mixes two models.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from speecheq.batching.dataset import (
    Collator,
    FeatureDataset,
    UtteranceDataset,
    WaveformDataset,
    load_utterances,
)
from speecheq.batching.sampler import BucketBatchSampler
from speecheq.console import progress_bar
from speecheq.data.datadir import DataDir
from speecheq.device import autocast, choose_device
from speecheq.errors import SpeechEQError
from speecheq.features import SSLConfig, parse_feature_conf
from speecheq.features.extract import CONF_NAME
from speecheq.fileio import atomic_write, write_table
from speecheq.modelfile import load_model
from speecheq.models import EnsembleModel, SpeechEQModel
from speecheq.tasks import Batch, Task, TaskScores


@dataclass(frozen=True)
class Hypotheses:
    """Decode-directory tables (name -> utterance -> value) and per-task mean losses."""

    tables: dict[str, dict[str, str]]
    losses: dict[str, float]
    """Each task's mean loss over the batches that had labels for it (weighted by their count)."""


@torch.inference_mode()
def decode(
    model: SpeechEQModel | EnsembleModel,
    batches: Iterable[Batch],
    tasks: Sequence[Task],
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    advance: Callable[[int], None] | None = None,
) -> Hypotheses:
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
    return Hypotheses(dict(tables), losses)


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


@dataclass(frozen=True)
class TaskSummary:
    """One task of a decode directory: how many hypotheses and references, and the scores."""

    task: str
    table: str
    hypotheses: int
    references: int
    scores: dict[str, float]


def predict(
    model_path: str | Path, data_dir: str | Path, out_dir: str | Path, *, device: str = "auto"
) -> list[TaskSummary]:
    """Decode every utterance of ``data_dir`` (features from stage 2) into ``out_dir``."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    target = choose_device(device)
    trained = load_model(model_path, target)
    data = DataDir.load(data_dir)
    dataset: UtteranceDataset
    if trained.model.spec.kind == "upstream":
        audio = trained.model.encoder.frontend.upstream.preparation
        utterances = load_utterances(data_dir, data, trained.tasks, with_targets=False, audio=audio)
        dataset = WaveformDataset(utterances, audio)
    else:
        conf = data.conf.get(CONF_NAME)
        if conf is not None and trained.feats_conf is not None and conf != trained.feats_conf:
            raise SpeechEQError(
                f"{data_dir}/conf/{CONF_NAME}: its features were computed with other options "
                f"than those {model_path} was trained on{_upstreams(conf, trained.feats_conf)}"
            )
        dataset = FeatureDataset(
            load_utterances(data_dir, data, trained.tasks, with_targets=False),
            trained.cmvn.for_data(data_dir, data),
            trained.feature_dim,
        )
    sampler = BucketBatchSampler(dataset.lengths, trained.config.batching.max_frames, shuffle=False)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=Collator(trained.tasks))
    with progress_bar(f"decoding {data_dir}", len(dataset)) as advance:
        decoded = decode(trained.model, loader, trained.tasks, target, advance=advance)
    references = {task.name: task.references(data) for task in trained.tasks}
    written: dict[str, set[str]] = {"hyp": set(), "ref": set()}
    for table, values in decoded.tables.items():
        write_table(out_dir / "hyp" / table, values)
        written["hyp"].add(table)
    for task in trained.tasks:
        if references[task.name]:
            write_table(out_dir / "ref" / task.decode_table, references[task.name])
            written["ref"].add(task.decode_table)
    genders = data.utt2gender
    if genders and "utt2gender" not in written["ref"]:  # the emotion UA per gender in reports
        write_table(out_dir / "ref" / "utt2gender", genders)
        written["ref"].add("utt2gender")
    write_table(out_dir / "utt2spk", data.utt2spk)
    for side, tables in written.items():
        for stale in (out_dir / side).glob("*"):
            if stale.is_file() and stale.name not in tables:
                stale.unlink()
    for task in trained.tasks:
        if task.class_file is not None:
            with atomic_write(out_dir / task.class_file) as out:
                out.writelines(f"{name}\n" for name in task.classes)
    scores = score_tasks(trained.tasks, decoded.tables, references)
    return [
        TaskSummary(
            task.name,
            task.decode_table,
            len(decoded.tables[task.decode_table]),
            len(references[task.name]),
            scores[task.name].metrics if task.name in scores else {},
        )
        for task in trained.tasks
    ]


def _upstreams(data_conf: str, model_conf: str) -> str:
    """`` (upstream A, the model's B)`` where both are upstream features of different
    upstreams or revisions, else empty."""
    data, model = parse_feature_conf(data_conf, "data"), parse_feature_conf(model_conf, "model")
    if not (isinstance(data, SSLConfig) and isinstance(model, SSLConfig)):
        return ""
    if data.upstream_name == model.upstream_name:
        return ""
    return f" (upstream {data.upstream_name}; the model's: {model.upstream_name})"
