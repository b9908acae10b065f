"""The training configuration: typed dataclasses read from YAML and checked strictly.

The defaults live in the dataclasses below and nowhere else:
:func:`speecheq.annotated_config.annotated_defaults` writes them out with their documentation
(``speecheq train --print-config``). A YAML file gives any
subset of the sections; what it leaves out keeps its default; ``--set key.sub=value`` overrides
any key (:func:`load_config`). A key that does not exist, or a value of the wrong type, is a
:class:`SpeechEQError` naming the file and the key (and, for an unknown key, listing the valid
ones). The ``tasks`` section maps task names (see :data:`speecheq.tasks.TASKS`) to their
options; the tasks it names are the ones trained, unless ``--tasks`` chooses others.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from speecheq.errors import SpeechEQError
from speecheq.fileio import atomic_write
from speecheq.labels import ClassMap
from speecheq.models import ModelConfig
from speecheq.tasks import TASKS, TaskOptions
from speecheq.tasks.phone import PhoneOptions

CMVN_MODES = ("global", "speaker", "corpus", "utterance", "none")
DEFAULT_TASKS = ("emotion", "intensity", "phone", "gender")
"""The tasks trained by default (SpeechEQ: emotion + intensity + the auxiliary tasks); their
options' defaults, weights included, are in each task's options."""


@dataclass(frozen=True)
class LabelsConfig:
    """The emotion classes trained and scored, in index order, and the categories merged in.

    Categories neither listed nor merged are dropped (see :class:`speecheq.labels.ClassMap`).
    """

    classes: tuple[str, ...] = ("neutral", "happy", "angry", "sad")
    """The emotion classes trained and scored, in index order (categories of the label space)."""
    merge: dict[str, str] = field(default_factory=dict)
    """Other categories merged into one of the classes, e.g. ``{excited: happy}``."""

    def __post_init__(self) -> None:
        try:
            self.class_map()
        except SpeechEQError as err:
            raise ValueError(f"labels: {err}") from None
        if len(self.classes) < 2:
            raise ValueError(
                f"labels.classes: a classifier needs two classes or more, got {list(self.classes)}"
            )

    def class_map(self) -> ClassMap:
        return ClassMap.build(self.classes, self.merge)


@dataclass(frozen=True)
class SpecAugmentConfig:
    """SpecAugment-style masking of the training features (0 masks turns a kind off)."""

    freq_masks: int = 2
    """Frequency masks per utterance."""
    freq_width: int = 15
    """Widest frequency mask, in feature bins."""
    time_masks: int = 4
    """Time masks per utterance."""
    time_width: int = 20
    """Widest time mask, in frames."""
    warp: float = 0.1
    """Largest relative stretch of the feature axis, drawn per utterance from [1 - warp,
    1 + warp]: a VTLP-like change of apparent vocal-tract length (0 turns it off)."""

    def __post_init__(self) -> None:
        if min(self.freq_masks, self.freq_width, self.time_masks, self.time_width) < 0:
            raise ValueError("features.specaugment values must not be negative")
        if not 0 <= self.warp < 0.5:
            raise ValueError("features.specaugment.warp must be in [0, 0.5)")


@dataclass(frozen=True)
class FeaturesConfig:
    cmvn: Literal["global", "speaker", "corpus", "utterance", "none"] = "speaker"
    """``global``: the training speakers' stats summed; ``speaker``: each speaker's own;
    ``corpus``: each corpus's speakers' stats summed (``utt2corpus``; global where an utterance
    has no corpus); ``utterance``: each utterance's own; ``none``: features as stored."""
    specaugment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    """Masking and warping of the training features (after CMVN)."""
    mixup: float = 0.0
    """Mixup of each training batch with a shuffle of itself (inputs and every task's loss),
    the share drawn from Beta(mixup, mixup), e.g. 0.2; 0 turns it off."""

    def __post_init__(self) -> None:
        if self.mixup < 0:
            raise ValueError(f"features.mixup must not be negative, got {self.mixup:g}")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with a linear warm-up then a cosine decay to ``final_lr_ratio * lr``."""

    epochs: int = 40
    """Passes over the training set."""
    lr: float = 1e-3
    """The peak learning rate of AdamW."""
    weight_decay: float = 0.01
    """AdamW's decoupled weight decay."""
    warmup_steps: int = 50
    """Steps of the linear warm-up to ``lr``."""
    final_lr_ratio: float = 0.05
    """The learning rate at the end of the cosine decay, as a share of ``lr``."""
    clip_norm: float = 5.0
    """Gradient clipping: the largest total gradient norm."""
    amp: bool = True
    """Mixed precision on CUDA: bf16 where supported, else fp16 with gradient scaling."""
    average_last: int = 0
    """The model kept is the mean of the weights after each of the last N epochs (checkpoint
    averaging); 0: the epoch that scored best on the valid set."""
    ema_epochs: float = 0.0
    """The weights validated and kept are an exponential moving average of the trained ones
    (BatchNorm statistics included; held in a copy of the model, an upstream inside it too),
    updated after every step, with a time constant of this many epochs, e.g. 2 (so its memory is
    the same share of training on any corpus size); 0: the trained weights themselves."""
    task_weighting: Literal["fixed", "annealed", "uncertainty"] = "annealed"
    """``fixed``: each task's loss times its ``weight``; ``annealed``: the same, with the
    auxiliary tasks' weights (all but emotion, intensity and dimensional) falling to 0 over the
    epochs (half cosine); ``uncertainty``: weights learned from each task's log-variance
    (Kendall et al., 2018), starting from the fixed ones."""

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"optim.epochs must be at least 1, got {self.epochs}")
        if self.clip_norm <= 0:
            raise ValueError(f"optim.clip_norm must be positive, got {self.clip_norm:g}")
        if not 0 <= self.average_last <= self.epochs:
            raise ValueError(
                f"optim.average_last must be between 0 and optim.epochs ({self.epochs}), "
                f"got {self.average_last}"
            )
        if self.ema_epochs < 0:
            raise ValueError(f"optim.ema_epochs must not be negative, got {self.ema_epochs:g}")
        if not 0 < self.lr <= 1:
            raise ValueError(f"optim.lr must be in (0, 1], got {self.lr:g}")
        if self.warmup_steps < 0 or self.weight_decay < 0:
            raise ValueError("optim.warmup_steps and optim.weight_decay must not be negative")
        if not 0 <= self.final_lr_ratio <= 1:
            raise ValueError("optim.final_lr_ratio must be in [0, 1]")


@dataclass(frozen=True)
class BatchingConfig:
    """Batches of utterances of similar length, bucketed from ``utt2num_frames``."""

    max_frames: int = 1000
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
    return {name: TASKS[name].options_type() for name in DEFAULT_TASKS}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (but the data)."""

    labels: LabelsConfig = field(default_factory=LabelsConfig)
    """The emotion classes."""
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    """Feature normalisation and augmentation."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The shared encoder, the pooling and the utterance embedding."""
    tasks: dict[str, TaskOptions] = field(default_factory=_default_tasks)
    """The tasks trained (unless --tasks chooses others) and their options; the tasks not
    trained by default are listed commented out."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """AdamW with a linear warm-up, then a cosine decay."""
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    """Length-bucketed batches."""
    seed: int = 0
    """Seeds the initial weights, the batches and the augmentation."""
    init: str = ""
    """A model file (``model.pt``, e.g. a release trained on another corpus) whose parameters
    start this training wherever name and shape agree (the encoder; a head of the same task and
    size); the others start at random. A relative path is taken from where training runs (the
    recipe folder). "": every parameter starts at random."""
    num_workers: int = 0
    """DataLoader worker processes (0: load in the training process)."""

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("tasks: at least one task must be enabled")
        if self.num_workers < 0:
            raise ValueError("num_workers must not be negative")
        phone = self.tasks.get("phone")
        if isinstance(phone, PhoneOptions) and phone.layer > self.model.blocks:
            raise ValueError(
                f"tasks.phone.layer is {phone.layer}, but the {self.model.encoder} encoder "
                f"(model.num_layers {self.model.num_layers}) has {self.model.blocks} block(s)"
            )

    def with_tasks(self, names: Sequence[str]) -> TrainConfig:
        """The same config training exactly ``names`` (options from ``tasks``, else defaults)."""
        chosen = {}
        for name in names:
            if name not in TASKS:
                raise SpeechEQError(f"--tasks: unknown task '{name}' (known: {', '.join(TASKS)})")
            if name in chosen:
                raise SpeechEQError(f"--tasks: task '{name}' is listed twice")
            chosen[name] = self.tasks.get(name) or TASKS[name].options_type()
        return dataclasses.replace(self, tasks=chosen)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for model files and checkpoints); :func:`config_from_dict` reads it."""
        return dataclasses.asdict(self)


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read and check a YAML training config, then apply ``overrides`` (``key.sub=value``,
    the value read as YAML, e.g. ``optim.lr=5e-4`` or ``labels.classes=[happy,sad]``)."""
    path = Path(path)
    if path.is_dir():
        raise SpeechEQError(f"{path}: is a folder, expected a YAML config file")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=StrictLoader)
    except FileNotFoundError:
        raise SpeechEQError(f"{path}: config file not found") from None
    except UnicodeDecodeError:
        raise SpeechEQError(f"{path}: not UTF-8 text, expected a YAML config file") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise SpeechEQError(f"{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    data = data or {}
    for override in overrides:
        data = apply_override(data, override)
    source = f"{path} with --set {' '.join(overrides)}" if overrides else str(path)
    return config_from_dict(data, source)


class StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key '{key}' is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def apply_override(data: object, override: str) -> dict[str, Any]:
    """``data`` (a config as plain data) with one ``key.sub=value`` override applied."""
    key, sep, text = override.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise SpeechEQError(f"--set '{override}': expected KEY=VALUE, e.g. optim.lr=5e-4")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise SpeechEQError(f"--set '{override}': the value is not valid YAML") from None
    if not isinstance(data, Mapping):
        raise SpeechEQError("the config must be a mapping of keys")
    result = dict(data)
    node = result
    for index, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = {}
        elif not isinstance(child, Mapping):
            raise SpeechEQError(
                f"--set '{override}': '{'.'.join(parts[: index + 1])}' is not a section"
            )
        node[part] = node = dict(child)
    node[parts[-1]] = value
    return result


def write_config(config: TrainConfig, path: Path) -> None:
    """Write ``config`` as YAML (every key, resolved), as a run used it."""
    with atomic_write(path) as out:
        out.write("# The resolved config of this run (speecheq train --config accepts it).\n")
        yaml.safe_dump(plain(config.to_dict()), out, sort_keys=False)


def plain(value: Any) -> Any:
    """Tuples as lists, recursively (YAML's safe dumper writes no tuples)."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


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
    if hint is float and not isinstance(value, bool) and isinstance(value, int | float | str):
        try:  # YAML 1.1 reads 1e-3 (no dot) as a string
            number = float(value)
        except ValueError:
            number = None
        if number is not None and math.isfinite(number):
            return number
        if number is not None:
            raise SpeechEQError(f"{source}: '{key}' must be a finite number, got {value!r}")
    if hint is str and isinstance(value, str):
        return value
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    raise SpeechEQError(f"{source}: '{key}' must be {names[hint]}, got {value!r}")
