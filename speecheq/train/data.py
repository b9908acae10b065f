"""The data of a training run: its tasks, training and validation sets, and their fingerprint.

A data directory is read once, up front: every enabled task takes its inventory from the
training set, and every utterance's targets are encoded, so a bad label or token is reported
before training starts. Features are read from their archives when a batch is built.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler

from speecheq.batching.dataset import (
    Collator,
    FeatureDataset,
    Utterance,
    UtteranceDataset,
    WaveformDataset,
    feature_dim,
    load_utterances,
)
from speecheq.batching.sampler import BucketBatchSampler, MixedBatchSampler
from speecheq.config import TrainConfig
from speecheq.data.datadir import DataDir
from speecheq.data.tables import TABLES
from speecheq.errors import SpeechEQError
from speecheq.features import SSLConfig, parse_feature_conf
from speecheq.features.cmvn import Cmvn
from speecheq.features.extract import CONF_NAME
from speecheq.features.upstream import Upstream
from speecheq.modelfile import build_tasks
from speecheq.models import InputSpec
from speecheq.tasks import TASKS, Task, TaskContext


@dataclass
class TrainingData:
    """The training and validation sets, ready to batch, and what identifies them."""

    tasks: list[Task]
    train: ConcatDataset
    """The training set, then each unlabeled set (``--unlabeled-dir``)."""
    valid: UtteranceDataset
    valid_refs: dict[str, dict[str, str]]
    """Task -> the valid set's references."""
    cmvn: Cmvn
    feature_dim: int
    feats_conf: str | None
    fingerprints: dict[str, dict[str, str]]
    """Role (``train``, ``valid``, ``unlabeled1``...) -> its path and :func:`fingerprint`."""
    corpora: list[str]
    """The corpora of the training set (``utt2corpus``; empty when it has none)."""
    spec: InputSpec
    """What the model reads: filterbanks, stored upstream layers, or raw audio."""
    upstream: Upstream | None
    """The upstream the model runs on raw audio (``model.upstream.path``), loaded."""


def fingerprint(data: DataDir) -> str:
    """A digest of a data directory's content: its utterances, their labels and lengths, and its
    feature options. Tables of paths (``wav.scp``, ``feats.scp``, ``cmvn.scp``) count by their
    ids only, so a moved directory keeps its fingerprint."""
    content = {
        name: sorted(table) if TABLES[name].holds_paths else sorted(table.items())
        for name, table in sorted(data.tables.items())
    }
    text = json.dumps({"tables": content, "conf": sorted(data.conf.items())})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_training_data(
    config: TrainConfig,
    train_dir: Path,
    valid_dir: Path,
    lang_dir: Path | None,
    unlabeled_dirs: Sequence[Path],
) -> TrainingData:
    """Read the sets of a run and check them against the config's tasks.

    Utterances that have no label for any enabled task are left out, unless a task learns from
    unlabeled data: then the utterances of ``unlabeled_dirs`` join the training set with every
    label masked (their labels, if any, are not read).
    """
    train_data, valid_data = DataDir.load(train_dir), DataDir.load(valid_dir)
    upstream = None
    if config.model.upstream.path:
        upstream = Upstream.load(config.model.upstream.path)
        spec, dim, audio = InputSpec("upstream", layer_dim=upstream.dim), 1, upstream.preparation
    else:
        dim, audio = feature_dim(train_dir, train_data), None
        spec = _input_spec(train_dir, train_data)
    context = TaskContext(config.labels.class_map(), lang_dir, dim)
    inventories = {
        name: TASKS[name].take_inventory(options, train_data, context)
        for name, options in config.tasks.items()
    }
    tasks = build_tasks(config, inventories)
    utterances = load_utterances(train_dir, train_data, tasks, audio=audio)
    for task in tasks:
        if not task.uses_unlabeled and not any(task.name in u.targets for u in utterances):
            raise SpeechEQError(
                f"{train_dir}: no utterance has a label for the enabled task '{task.name}' "
                f"(its labels come from {task.label_table})"
            )
    uses_unlabeled = any(task.uses_unlabeled for task in tasks)
    if not uses_unlabeled:
        utterances = [u for u in utterances if u.targets]
    mode = "none" if audio is not None else config.features.cmvn
    cmvn = Cmvn.from_training(mode, train_dir, train_data)

    def dataset(path: Path, data: DataDir, utterances: list[Utterance]) -> UtteranceDataset:
        if audio is not None:
            return WaveformDataset(utterances, audio)
        return FeatureDataset(utterances, cmvn.for_data(path, data), dim)

    parts = [dataset(train_dir, train_data, utterances)]
    fingerprints = {
        "train": {"path": str(train_dir), "fingerprint": fingerprint(train_data)},
        "valid": {"path": str(valid_dir), "fingerprint": fingerprint(valid_data)},
    }
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
        found = load_utterances(unlabeled_dir, unlabeled, tasks, with_targets=False, audio=audio)
        parts.append(dataset(unlabeled_dir, unlabeled, found))
        fingerprints[f"unlabeled{index}"] = {
            "path": str(unlabeled_dir),
            "fingerprint": fingerprint(unlabeled),
        }
    valid = dataset(
        valid_dir, valid_data, load_utterances(valid_dir, valid_data, tasks, audio=audio)
    )
    return TrainingData(
        tasks,
        ConcatDataset(parts),
        valid,
        {task.name: task.references(valid_data) for task in tasks},
        cmvn,
        dim,
        None if upstream is not None else train_data.conf.get(CONF_NAME),
        fingerprints,
        sorted(set(train_data.get("utt2corpus").values())),
        spec,
        upstream,
    )


def _input_spec(path: Path, data: DataDir) -> InputSpec:
    """Filterbanks, or the layers of upstream features (``conf/feats.conf`` says which)."""
    conf = data.conf.get(CONF_NAME)
    options = parse_feature_conf(conf, f"{path}/conf/{CONF_NAME}") if conf else None
    if isinstance(options, SSLConfig):
        return InputSpec("layers", len(options.layers), options.layer_dim)
    return InputSpec()


def training_sampler(
    data: TrainingData, config: TrainConfig, rank: int, world_size: int
) -> BucketBatchSampler:
    """The training batches of this rank: the training set, and the unlabeled sets mixed in at
    ``batching.unlabeled_ratio`` when there are any."""
    batching = config.batching
    labeled, *unlabeled = data.train.datasets
    groups = None
    if batching.balance == "corpus":
        groups = [u.corpus or "" for part in data.train.datasets for u in part.utterances]
    options: dict[str, Any] = {
        "seed": config.seed,
        "length_noise": batching.length_noise,
        "rank": rank,
        "world_size": world_size,
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


def batch_loader(
    dataset: Dataset, sampler: Sampler, tasks: list[Task], config: TrainConfig, device: torch.device
) -> DataLoader:
    """The batches of ``dataset`` in ``sampler``'s order, collated for ``tasks``, read by
    ``config.num_workers`` worker processes (0: this one)."""
    workers = config.num_workers
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=Collator(tasks),
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(config.seed),
    )
