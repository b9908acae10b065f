"""The training configuration: typed dataclasses read from YAML and checked strictly.

A YAML file gives any subset of the sections below; what it leaves out keeps its default. A key
that does not exist, or a value of the wrong type, is a :class:`SpeechEQError` naming the file
and the key (and, for an unknown key, listing the valid ones). The ``tasks`` section maps task
names (see :data:`speecheq.tasks.TASKS`) to their options; the tasks it names are the ones
trained, unless ``--tasks`` chooses others.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from speecheq.errors import SpeechEQError
from speecheq.labels import ClassMap
from speecheq.models import ModelConfig
from speecheq.tasks import TASKS, TaskOptions

CMVN_MODES = ("global", "speaker", "corpus", "utterance", "none")
DEFAULT_TASKS: dict[str, float] = {"emotion": 1.0, "intensity": 0.5, "phone": 0.1, "gender": 0.3}
"""The tasks trained by default, with their weights (SpeechEQ: emotion + intensity + aux)."""


@dataclass(frozen=True)
class LabelsConfig:
    """The emotion classes trained and scored, in index order, and the categories merged in.

    Categories neither listed nor merged are dropped (see :class:`speecheq.labels.ClassMap`).
    """

    classes: tuple[str, ...] = ("neutral", "happy", "angry", "sad")
    merge: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            self.class_map()
        except SpeechEQError as err:
            raise ValueError(f"labels: {err}") from None

    def class_map(self) -> ClassMap:
        return ClassMap.build(self.classes, self.merge)


@dataclass(frozen=True)
class SpecAugmentConfig:
    """SpecAugment-style masking of the training features (0 masks turns a kind off)."""

    freq_masks: int = 2
    freq_width: int = 10
    """Widest frequency mask, in feature bins."""
    time_masks: int = 2
    time_width: int = 12
    """Widest time mask, in frames."""
    warp: float = 0.0
    """Largest relative stretch of the feature axis, drawn per utterance from [1 - warp,
    1 + warp]: a VTLP-like change of apparent vocal-tract length (0 turns it off)."""

    def __post_init__(self) -> None:
        if min(self.freq_masks, self.freq_width, self.time_masks, self.time_width) < 0:
            raise ValueError("features.specaugment values must not be negative")
        if not 0 <= self.warp < 0.5:
            raise ValueError("features.specaugment.warp must be in [0, 0.5)")


@dataclass(frozen=True)
class FeaturesConfig:
    cmvn: Literal["global", "speaker", "corpus", "utterance", "none"] = "global"
    """``global``: the training speakers' stats summed; ``speaker``: each speaker's own;
    ``corpus``: each corpus's speakers' stats summed (``utt2corpus``; global where an utterance
    has no corpus); ``utterance``: each utterance's own; ``none``: features as stored."""
    specaugment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with a linear warm-up then a cosine decay to ``final_lr_ratio * lr``."""

    epochs: int = 15
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    final_lr_ratio: float = 0.05
    clip_norm: float = 5.0
    """Gradient clipping: the largest total gradient norm."""
    amp: bool = True
    """Mixed precision on CUDA: bf16 where supported, else fp16 with gradient scaling."""

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.lr <= 0 or self.clip_norm <= 0:
            raise ValueError("optim.epochs, optim.lr and optim.clip_norm must be positive")
        if self.warmup_steps < 0 or self.weight_decay < 0:
            raise ValueError("optim.warmup_steps and optim.weight_decay must not be negative")
        if not 0 <= self.final_lr_ratio <= 1:
            raise ValueError("optim.final_lr_ratio must be in [0, 1]")


@dataclass(frozen=True)
class BatchingConfig:
    """Batches of utterances of similar length, bucketed from ``utt2num_frames``."""

    max_frames: int = 3000
    """Padded frames per batch (utterances x longest one); a longer utterance goes alone."""
    length_noise: float = 0.1
    """Relative noise on the lengths when bucketing, so batches differ from epoch to epoch."""
    balance: Literal["none", "corpus"] = "none"
    """``corpus``: every epoch draws as many utterances from each corpus (``utt2corpus``) as the
    largest one has, oversampling the smaller ones; ``none``: each utterance once an epoch."""
    unlabeled_ratio: float = 1.0
    """Unlabeled utterances (``--unlabeled-dir``) mixed into each epoch per training utterance;
    they are dealt in turn from shuffles of their pool, so all are used over the epochs."""

    def __post_init__(self) -> None:
        if self.max_frames < 1 or not 0 <= self.length_noise < 1:
            raise ValueError("batching.max_frames must be positive, length_noise in [0, 1)")
        if self.unlabeled_ratio <= 0:
            raise ValueError("batching.unlabeled_ratio must be positive")


def _default_tasks() -> dict[str, TaskOptions]:
    return {name: TASKS[name].options_type(weight=w) for name, w in DEFAULT_TASKS.items()}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (but the data)."""

    labels: LabelsConfig = field(default_factory=LabelsConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tasks: dict[str, TaskOptions] = field(default_factory=_default_tasks)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    seed: int = 0
    num_workers: int = 0
    """DataLoader worker processes (0: load in the training process)."""

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("tasks: at least one task must be enabled")
        if self.num_workers < 0:
            raise ValueError("num_workers must not be negative")

    def with_tasks(self, names: Sequence[str]) -> TrainConfig:
        """The same config training exactly ``names`` (options from ``tasks``, else defaults)."""
        chosen = {}
        for name in names:
            if name not in TASKS:
                raise SpeechEQError(f"--tasks: unknown task '{name}' (known: {', '.join(TASKS)})")
            chosen[name] = self.tasks.get(name) or TASKS[name].options_type()
        return dataclasses.replace(self, tasks=chosen)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for model files and checkpoints); :func:`config_from_dict` reads it."""
        return dataclasses.asdict(self)


def load_config(path: str | Path) -> TrainConfig:
    """Read and check a YAML training config."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpeechEQError(f"{path}: config file not found") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise SpeechEQError(f"{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    return config_from_dict(data or {}, str(path))


def config_from_dict(data: object, source: str) -> TrainConfig:
    """Check and build a config from plain data; errors name ``source`` and the key."""
    config = _parse_dataclass(TrainConfig, data, "", source)
    assert isinstance(config, TrainConfig)
    return config


def _parse_dataclass(cls: type, data: object, prefix: str, source: str) -> object:
    if not isinstance(data, Mapping):
        where = prefix.rstrip(".") or "(top level)"
        raise SpeechEQError(f"{source}: '{where}' must be a mapping of keys")
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in data.items():
        if key not in valid:
            raise SpeechEQError(
                f"{source}: unknown key '{prefix}{key}' (valid keys: {', '.join(valid)})"
            )
        values[key] = _parse_value(hints[key], value, f"{prefix}{key}", source)
    try:
        return cls(**values)
    except ValueError as err:
        raise SpeechEQError(f"{source}: {err}") from None


def _parse_tasks(data: object, key: str, source: str) -> dict[str, TaskOptions]:
    if not isinstance(data, Mapping):
        raise SpeechEQError(f"{source}: '{key}' must map task names to their options")
    tasks = {}
    for name, options in data.items():
        if name not in TASKS:
            raise SpeechEQError(
                f"{source}: unknown task '{key}.{name}' (known: {', '.join(TASKS)})"
            )
        parsed = _parse_dataclass(TASKS[name].options_type, options or {}, f"{key}.{name}.", source)
        assert isinstance(parsed, TaskOptions)
        tasks[name] = parsed
    return tasks


def _parse_value(hint: Any, value: object, key: str, source: str) -> object:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _parse_dataclass(hint, value, f"{key}.", source)  # type: ignore[arg-type]
    if origin is dict and args == (str, TaskOptions):
        return _parse_tasks(value, key, source)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(map(str, args))
            raise SpeechEQError(f"{source}: '{key}' must be one of {choices}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        (inner,) = (arg for arg in args if arg is not type(None))
        return _parse_value(inner, value, key, source)
    if origin is tuple:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise SpeechEQError(f"{source}: '{key}' must be a list of strings, got {value!r}")
        return tuple(value)
    if origin is dict:
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise SpeechEQError(f"{source}: '{key}' must map strings to strings, got {value!r}")
        return dict(value)
    return _parse_scalar(hint, value, key, source)


def _parse_scalar(hint: type, value: object, key: str, source: str) -> object:
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and not isinstance(value, bool):
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    if hint is str and isinstance(value, str):
        return value
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    raise SpeechEQError(f"{source}: '{key}' must be {names[hint]}, got {value!r}")
