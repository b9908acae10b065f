"""The Python API of inference: a model loaded once, then arrays, files and long recordings.

::

    from speecheq import Recognizer, timeline_of

    rec = Recognizer.load("exp/train/fold1/model.pt")        # or an exported .onnx / .ts model
    rec.predict(samples, sample_rate).emotion                 # a numpy array of one utterance
    rec.predict_file("speech.wav").posteriors                 # {'neutral': 0.12, 'happy': ...}
    timeline_of(rec, "call.wav").segments                        # start, end, emotion, ...
    rec.embed_file("speech.wav")                              # the pooled utterance embedding

Features are computed as in stage 2, with the options the model was trained with (the
``feats.conf`` it carries). CMVN follows the model: ``global`` and ``corpus`` use the training
statistics it stores (a lone file has no corpus); ``speaker`` uses the statistics of all the
speech of a long recording (one recording standing in for one speaker), or, given each
utterance's speaker (:meth:`Recognizer.predict_speakers`), those of that speaker's utterances,
as a recipe's folds are scored; a lone utterance of a ``speaker`` model gets the pooled
statistics of the training speakers; ``utterance`` uses the utterance's own; ``none`` none.

Only the tasks asked for are reported (default: the emotion tasks the model has: emotion,
intensity, dimensional); auxiliary heads (phone, gender, speaker...) on request. Values are
typed: a class name, an intensity level (int), arousal/valence/dominance (floats), tokens.
A loaded recognizer is read-only: several threads may call it at once.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from speecheq.audio import float_samples, read_audio
from speecheq.errors import SpeechEQError
from speecheq.features import SSLConfig, compute_features, parse_feature_conf
from speecheq.features.cmvn import Cmvn, sum_stats, utterance_stats
from speecheq.features.ssl import SSLExtractor
from speecheq.inference.backends import Backend, load_backend
from speecheq.models import Encoded, ModelOutput
from speecheq.tasks import Task

EMOTION_TASKS: tuple[str, ...] = ("emotion", "intensity", "dimensional")
"""The tasks reported by default (those of them the model has)."""

BATCH_FRAMES = 6000
"""Padded feature frames per batch when many utterances are recognised."""


@dataclass(frozen=True)
class Prediction:
    """What the model says of one utterance: each task's typed value, and emotion posteriors."""

    values: dict[str, Any]
    posteriors: dict[str, float] = field(default_factory=dict)
    """Emotion class -> posterior (empty when emotion was not asked for)."""

    @property
    def emotion(self) -> str | None:
        return self.values.get("emotion")

    def to_json(self) -> dict[str, Any]:
        return {**self.values, **({"posteriors": self.posteriors} if self.posteriors else {})}


class Recognizer:
    """A model (file or export) ready to recognise raw audio; see the module docstring."""

    def __init__(self, backend: Backend, tasks: Sequence[str] | None = None) -> None:
        self.backend = backend
        self.all_tasks: list[Task] = backend.tasks
        names = [task.name for task in self.all_tasks]
        wanted = list(tasks) if tasks else [name for name in EMOTION_TASKS if name in names]
        unknown = [name for name in wanted if name not in names]
        if unknown:
            raise SpeechEQError(
                f"{backend.path}: the model has no task {', '.join(unknown)} (its tasks: "
                f"{', '.join(names)})"
            )
        if not wanted:
            raise SpeechEQError(
                f"{backend.path}: the model has no emotion task; choose tasks among "
                f"{', '.join(names)}"
            )
        self.tasks = [task for task in self.all_tasks if task.name in wanted]
        self.compute = _feature_maker(backend)
        self.cmvn = _lone_utterance_cmvn(backend.cmvn)
        self.per_speaker = backend.cmvn.mode == "speaker"

    @classmethod
    def load(
        cls, path: str | Path, *, tasks: Sequence[str] | None = None, device: str = "cpu"
    ) -> Recognizer:
        """A model file of ``speecheq train`` (``.pt``), or one ``speecheq export`` wrote
        (``.onnx``, run by onnxruntime; ``.ts``, TorchScript)."""
        return cls(load_backend(Path(path), device), tasks)

    @property
    def identity(self) -> dict[str, Any]:
        """What the model is: its file and digest, tasks, classes, training data and config."""
        emotion = next((task for task in self.all_tasks if task.name == "emotion"), None)
        return {
            "model": str(self.backend.path),
            "sha256": file_digest(self.backend.path),
            "tasks": [task.name for task in self.all_tasks],
            "classes": emotion.classes if emotion is not None else [],
            "trained_on": self.backend.trained_on,
            "config": self.backend.config,
        }

    def features(self, samples: np.ndarray, rate: int, who: str) -> np.ndarray:
        """The model's features of mono samples, before normalisation."""
        samples = float_samples(samples, who)
        if samples.ndim == 2:
            samples = samples.mean(axis=1)
        if samples.ndim != 1 or samples.size == 0:
            raise SpeechEQError(
                f"{who}: expected mono or (samples, channels) audio, got shape {samples.shape}"
            )
        if not np.isfinite(samples).all():
            raise SpeechEQError(f"{who}: the audio has samples that are not finite (NaN or inf)")
        feats = self.compute(samples, int(rate), who)
        if feats.shape[1] != self.backend.feature_dim:
            raise SpeechEQError(
                f"{who}: features of dimension {feats.shape[1]}, the model expects "
                f"{self.backend.feature_dim}"
            )
        return feats

    def predict(self, samples: np.ndarray, sample_rate: int) -> Prediction:
        """Recognise one utterance given as samples at ``sample_rate``: floats in [-1, 1], or
        integer PCM (int16, int32, uint8) scaled by its range."""
        return self.predict_features([self.features(samples, sample_rate, "audio")])[0]

    def predict_file(self, path: str | Path) -> Prediction:
        """Recognise one audio file (any format the audio reader decodes)."""
        samples, rate = read_audio(str(path))
        return self.predict_features([self.features(samples, rate, f"'{path}'")])[0]

    def predict_many(
        self, items: Iterable[tuple[str, np.ndarray]], stats: np.ndarray | None = None
    ) -> Iterator[tuple[str, Prediction]]:
        """Recognise utterances given as (name, raw features), batched by length; yields them
        in the order given. ``stats`` (CMVN statistics) normalise all of them, where the model
        normalises by speaker."""
        return _batched(items, lambda feats: self.predict_features(feats, stats))

    def predict_speakers(
        self, items: Sequence[tuple[str, np.ndarray]], speakers: Mapping[str, str]
    ) -> Iterator[tuple[str, Prediction]]:
        """Recognise utterances of known speakers (``speakers``: name -> speaker), given as
        (name, raw features): where the model normalises by speaker, each speaker's utterances
        are normalised by their pooled statistics, as the folds of a recipe are scored; yields
        them in the order given."""
        groups: dict[str, list[int]] = {}
        for index, (name, _) in enumerate(items):
            if name not in speakers:
                raise SpeechEQError(f"utterance '{name}': no speaker given for it")
            groups.setdefault(speakers[name], []).append(index)
        found: dict[int, Prediction] = {}
        for indices in groups.values():
            group = [items[index] for index in indices]
            stats = sum_stats(utterance_stats(feats) for _, feats in group)
            predictions = self.predict_many(group, stats)
            found.update((index, p) for index, (_, p) in zip(indices, predictions, strict=True))
        for index, (name, _) in enumerate(items):
            yield name, found[index]

    def embed(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """The pooled utterance embedding the heads read (the shared representation), of one
        utterance given as samples (as :meth:`predict` takes them)."""
        return self.embed_features([self.features(samples, sample_rate, "audio")])[0]

    def embed_file(self, path: str | Path) -> np.ndarray:
        """The utterance embedding of one audio file."""
        samples, rate = read_audio(str(path))
        return self.embed_features([self.features(samples, rate, f"'{path}'")])[0]

    def embed_many(
        self, items: Iterable[tuple[str, np.ndarray]]
    ) -> Iterator[tuple[str, np.ndarray]]:
        """Embeddings of utterances given as (name, raw features), batched by length; yields
        them in the order given."""
        return _batched(items, self.embed_features)

    def embed_features(self, feats: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Embeddings of a batch of utterances given as raw features (frames x dim each)."""
        outputs = self._run(feats, None)
        if "embedding" not in outputs:
            raise SpeechEQError(
                f"{self.backend.path}: this export carries no embedding output; export the "
                "model file again"
            )
        return list(outputs["embedding"])

    def predict_features(
        self, feats: Sequence[np.ndarray], stats: np.ndarray | None = None
    ) -> list[Prediction]:
        """Recognise a batch of utterances given as raw features (frames x dim each)."""
        heads = self._run(feats, stats)
        output = ModelOutput(
            Encoded(torch.empty(0), torch.from_numpy(heads["frame_lengths"]), torch.empty(0)),
            {task.name: torch.from_numpy(heads[task.name]) for task in self.tasks},
        )
        values: list[dict[str, Any]] = [{} for _ in feats]
        posteriors: list[dict[str, float]] = [{} for _ in feats]
        for task in self.tasks:
            decoded = task.hypotheses(output)[task.decode_table]
            for row, value in enumerate(decoded):
                values[row][task.name] = task.to_json(task.parse(value, task.name))
            if task.name == "emotion":
                for row, probabilities in enumerate(task.posteriors(output).tolist()):
                    posteriors[row] = dict(zip(task.classes, probabilities, strict=True))
        return [Prediction(v, p) for v, p in zip(values, posteriors, strict=True)]

    def _run(self, feats: Sequence[np.ndarray], stats: np.ndarray | None) -> dict[str, np.ndarray]:
        """The network's outputs for raw features, normalised and padded into one batch."""
        normalised = [self._normalise(f, stats) for f in feats]
        lengths = np.array([len(f) for f in normalised], dtype=np.int64)
        batch = np.zeros((len(normalised), int(lengths.max()), normalised[0].shape[1]), np.float32)
        for row, matrix in enumerate(normalised):
            batch[row, : len(matrix)] = matrix
        return self.backend.run(batch, lengths)

    def _normalise(self, feats: np.ndarray, stats: np.ndarray | None) -> np.ndarray:
        if stats is not None and self.per_speaker:
            return Cmvn("global", stats)(feats, None, "recording")
        return self.cmvn(feats, None, "audio")


def _lone_utterance_cmvn(trained: Cmvn) -> Cmvn:
    """How an utterance of unknown speaker is normalised: ``global`` and ``corpus`` models by
    the training statistics they store; a ``speaker`` model by its training speakers' pooled
    statistics (which kept far more of the emotion than the clip's own on CASIA and EmoDB:
    a clip's own mean holds its loudness and pitch), or by the clip's own where a model file
    has none; ``utterance`` by the clip's own; ``none`` not at all."""
    if trained.mode == "speaker" and trained.global_stats is not None:
        return Cmvn("global", trained.global_stats)
    if trained.mode in ("global", "corpus", "none"):
        return trained
    return Cmvn("utterance")


FeatureMaker = Callable[[np.ndarray, int, str], np.ndarray]
T = TypeVar("T")


def _batched(
    items: Iterable[tuple[str, np.ndarray]], run: Callable[[list[np.ndarray]], list[T]]
) -> Iterator[tuple[str, T]]:
    """``run`` on batches of (name, raw features) of like length (at most
    :data:`BATCH_FRAMES` padded frames); yields (name, result) in the order given."""
    buffered = list(items)
    order = sorted(range(len(buffered)), key=lambda i: len(buffered[i][1]))
    results: dict[int, T] = {}
    batch: list[int] = []
    for index in [*order, None]:
        if index is not None:
            longest = max([len(buffered[i][1]) for i in batch] + [len(buffered[index][1])])
            if not batch or longest * (len(batch) + 1) <= BATCH_FRAMES:
                batch.append(index)
                continue
        if batch:
            results.update(zip(batch, run([buffered[i][1] for i in batch]), strict=True))
        batch = [] if index is None else [index]
    for index, (name, _) in enumerate(buffered):
        yield name, results[index]


def _feature_maker(backend: Backend) -> FeatureMaker:
    """How a model's input is made from raw audio: its filterbanks, its upstream's layers (that
    upstream checked to be the one its features came from), or its own upstream's input."""
    if backend.spec.kind == "upstream":
        assert backend.preparation is not None
        return backend.preparation.waveform
    if backend.feats_conf is None:
        raise SpeechEQError(
            f"{backend.path}: the model carries no feature options (its training data had no "
            "conf/feats.conf), so features of raw audio cannot be computed to match"
        )
    options = parse_feature_conf(backend.feats_conf, f"{backend.path} (feats.conf)")
    if isinstance(options, SSLConfig):
        options.check_upstream(f"{backend.path}: its features")
        extractor = SSLExtractor(options)
        lock = threading.Lock()

        def layers(samples: np.ndarray, rate: int, who: str) -> np.ndarray:
            with lock:  # the upstream is loaded once, on first use
                upstream = extractor.upstream
            return extractor.compute_batch([(samples, rate, who)], upstream)[0]

        return layers
    return lambda samples, rate, who: compute_features(samples, rate, options, who=who)


def file_digest(path: Path) -> str:
    """The first 16 hex digits of the SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
