"""Datasets of utterances: per-utterance inputs and targets, and collation into batches.

A data directory is read once, up front: where each utterance's input is (``feats.scp``, or
``wav.scp`` for a model that runs an upstream on raw audio), its length and every enabled
task's targets, so a bad label or token is reported before training starts. Inputs are read
when a batch is built: features (CMVN applied) from their archives, or audio, prepared as the
upstream asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kaldiio
import numpy as np
import soundfile
import torch
from torch.utils.data import Dataset

from speecheq.audio import is_pipe, read_audio
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.features.cmvn import Cmvn
from speecheq.features.upstream import Preparation
from speecheq.tasks import Batch, Task


def required_features(path: Path, data: DataDir) -> dict[str, str]:
    """The ``feats.scp`` of ``data``; an error naming ``path`` when it has no utterances or no
    features."""
    if not data.utts:
        raise SpeechEQError(f"{path}: the data directory has no utterances")
    feats = data.get("feats.scp")
    if not feats:
        raise SpeechEQError(
            f"{path}: feats.scp is missing or empty (compute features with 'speecheq feats {path}')"
        )
    return feats


def feature_dim(path: Path, data: DataDir) -> int:
    """The width of the features of ``data`` (read from its first utterance's)."""
    feats = required_features(path, data)
    utt = min(feats)
    return int(read_features(feats[utt], utt).shape[1])


@dataclass(frozen=True)
class Utterance:
    """One utterance to read: its features' location, length, speaker and task targets."""

    utt: str
    source: str
    """Its ``feats.scp`` value (``archive:offset``), or its ``wav.scp`` value (raw audio)."""
    num_frames: int
    """Frames of its features (of the upstream's output, for raw audio)."""
    speaker: str | None
    targets: dict[str, Any]
    corpus: str | None = None
    """Its ``utt2corpus`` value (for sampling balanced across corpora)."""


def load_utterances(
    path: Path,
    data: DataDir,
    tasks: Sequence[Task],
    *,
    with_targets: bool = True,
    audio: Preparation | None = None,
) -> list[Utterance]:
    """Every utterance of ``data`` with its input's location, length and (optionally) targets:
    its features, or, with ``audio``, its raw audio prepared for an upstream."""
    if audio is None:
        sources, num_frames = required_features(path, data), data.get("utt2num_frames")
        if not num_frames:
            raise SpeechEQError(f"{path}: utt2num_frames is missing (it is written with feats.scp)")
    else:
        sources = data.get("wav.scp")
        num_frames = {utt: str(audio.frames(n)) for utt, n in _samples(path, data, audio).items()}
    corpora = data.get("utt2corpus")
    targets: dict[str, dict[str, Any]] = {utt: {} for utt in data.utts}
    for task in tasks if with_targets else ():
        for utt, value in task.references(data).items():
            where = f"{path}: utterance '{utt}' ({task.name})"
            targets[utt][task.name] = task.encode(value, where)
    utterances = []
    for utt in data.utts:
        for name, table in (("feats.scp", sources), ("utt2num_frames", num_frames)):
            if utt not in table:
                raise SpeechEQError(f"{path}/{name}: utterance '{utt}' is missing")
        utterances.append(
            Utterance(
                utt,
                sources[utt],
                int(num_frames[utt]),
                data.utt2spk.get(utt),
                targets[utt],
                corpora.get(utt),
            )
        )
    return utterances


def _samples(path: Path, data: DataDir, audio: Preparation) -> dict[str, int]:
    """Each utterance's samples at the upstream's rate, from ``utt2dur`` or the file headers."""
    durations = data.get("utt2dur")
    samples = {}
    for utt, spec in data.get("wav.scp").items():
        if utt in durations:
            seconds = float(durations[utt])
        elif is_pipe(spec):
            raise SpeechEQError(
                f"{path}/wav.scp: utterance '{utt}' is a command; its duration needs utt2dur "
                f"(written by 'speecheq feats {path}')"
            )
        else:
            try:
                info = soundfile.info(spec)
            except (soundfile.LibsndfileError, RuntimeError, OSError) as err:
                raise SpeechEQError(f"utterance '{utt}': cannot read '{spec}' ({err})") from None
            seconds = info.frames / info.samplerate
        samples[utt] = round(seconds * audio.rate)
    return samples


@dataclass(frozen=True)
class Example:
    """One utterance as read: its normalised features and its targets."""

    utt: str
    feats: np.ndarray
    targets: dict[str, Any]


class UtteranceDataset(Dataset):
    """Utterances of one data directory, read on access (by a subclass's ``__getitem__``)."""

    def __init__(self, utterances: Sequence[Utterance]) -> None:
        self.utterances = list(utterances)

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def lengths(self) -> list[int]:
        return [u.num_frames for u in self.utterances]


class FeatureDataset(UtteranceDataset):
    """Utterances of one data directory, read and normalised on access."""

    def __init__(self, utterances: Sequence[Utterance], cmvn: Cmvn, feature_dim: int) -> None:
        super().__init__(utterances)
        self.cmvn = cmvn
        self.feature_dim = feature_dim

    def __getitem__(self, index: int) -> Example:
        entry = self.utterances[index]
        feats = read_features(entry.source, entry.utt)
        if feats.shape[1] != self.feature_dim:
            raise SpeechEQError(
                f"utterance '{entry.utt}': features of dimension {feats.shape[1]}, "
                f"expected {self.feature_dim}"
            )
        return Example(entry.utt, self.cmvn(feats, entry.speaker, entry.utt), entry.targets)


class WaveformDataset(UtteranceDataset):
    """Utterances of one data directory as raw audio, prepared for an upstream on access."""

    def __init__(self, utterances: Sequence[Utterance], audio: Preparation) -> None:
        super().__init__(utterances)
        self.audio = audio

    def __getitem__(self, index: int) -> Example:
        entry = self.utterances[index]
        samples, rate = read_audio(entry.source, entry.utt)
        waveform = self.audio.waveform(samples, rate, f"utterance '{entry.utt}'")
        return Example(entry.utt, waveform, entry.targets)


def read_features(spec: str, utt: str) -> np.ndarray:
    """The ``(frames, dim)`` float32 matrix a ``feats.scp`` value points at."""
    try:
        feats = np.asarray(kaldiio.load_mat(spec), dtype=np.float32)
    except Exception as err:  # kaldiio raises many kinds for a missing or corrupt archive
        raise SpeechEQError(f"utterance '{utt}': cannot read features '{spec}' ({err})") from None
    if feats.ndim != 2 or len(feats) == 0:
        raise SpeechEQError(f"utterance '{utt}': features '{spec}' are not a non-empty matrix")
    return feats


PAD_MULTIPLE = 16
"""Batches are zero-padded to a multiple of this many frames. Fewer distinct tensor shapes keep
the CPU allocator's memory from creeping up through a run (by a few hundred MB on CASIA-sized
training), for about 3% more frames."""


class Collator:
    """Pads a list of examples into a :class:`~speecheq.tasks.Batch` with each task's targets."""

    def __init__(self, tasks: Sequence[Task]) -> None:
        self.tasks = list(tasks)

    def __call__(self, examples: Sequence[Example]) -> Batch:
        lengths = torch.tensor([len(e.feats) for e in examples], dtype=torch.long)
        frames = -(-int(lengths.max()) // PAD_MULTIPLE) * PAD_MULTIPLE
        feats = torch.zeros(len(examples), frames, examples[0].feats.shape[1])
        for row, example in enumerate(examples):
            feats[row, : len(example.feats)] = torch.from_numpy(example.feats)
        targets = {
            task.name: task.collate([e.targets.get(task.name) for e in examples])
            for task in self.tasks
        }
        return Batch(tuple(e.utt for e in examples), feats, lengths, targets)
