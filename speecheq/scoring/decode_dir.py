"""Read a decode directory (written by ``speecheq predict``) into reference/hypothesis pairs.

A decode directory holds two folders of Kaldi-style tables, ``ref/`` and ``hyp/``, and the
class file of each task that has one (``classes``: the emotion classes in index order). A task
of the registry (:data:`speecheq.tasks.TASKS`) is scored when both ``ref/<decode table>`` and
``hyp/<decode table>`` exist, over the utterances of ``ref/``; every one of them must have a
hypothesis. Values are read with the task's own parser (:meth:`speecheq.tasks.Task.parse`).

Two tables, where present, show how the emotion task fails: ``hyp/utt2emo.post`` (the emotion
posteriors, in the order of ``classes``: their calibration) and ``ref/utt2gender`` (the
speakers' genders, written whether or not the model has a gender task: UA per gender).
``utt2spk`` beside them names each test utterance's speaker (late fusion normalises posteriors
per speaker; not under ``ref/``, where it would be the speaker task's references).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speecheq.data.tables import TABLES
from speecheq.errors import SpeechEQError
from speecheq.fileio import path_problem, read_lines, read_table
from speecheq.labels import check_category
from speecheq.tasks import TASKS, Task


@dataclass(frozen=True)
class Pairs:
    """Reference and hypothesis values of one task, aligned by utterance."""

    utts: tuple[str, ...]
    ref: tuple[Any, ...]
    hyp: tuple[Any, ...]

    def __add__(self, other: Pairs) -> Pairs:
        return Pairs(self.utts + other.utts, self.ref + other.ref, self.hyp + other.hyp)


@dataclass(frozen=True)
class Decoded:
    """One decode directory (one fold or test set): its pairs and class lists per task."""

    name: str
    path: str
    pairs: dict[str, Pairs]
    """Task name -> pairs, for the tasks with non-empty tables in both ``ref/`` and ``hyp/``."""
    classes: dict[str, tuple[str, ...]]
    """Task name -> its classes in index order, for the scored tasks that have a class file."""
    posteriors: dict[str, tuple[float, ...]] = field(default_factory=dict)
    """Utterance -> its emotion posteriors (``hyp/utt2emo.post``), where given."""
    genders: dict[str, str] = field(default_factory=dict)
    """Utterance -> its speaker's gender (``ref/utt2gender``), where given."""
    speakers: dict[str, str] = field(default_factory=dict)
    """Utterance -> its speaker (``utt2spk``), where given."""


def read_decode_dir(path: str | Path, name: str | None = None) -> Decoded:
    """Read the tasks that both ``ref/`` and ``hyp/`` of a decode directory have (empty ones aside).

    Raises :class:`SpeechEQError` when the directory, ``ref/``, ``hyp/`` or a class file is
    missing, a table is malformed or holds a bad value, a reference utterance has no
    hypothesis, or no task can be scored.
    """
    path = Path(path)
    problem = path_problem(path, folder=True)
    if problem:
        raise SpeechEQError(f"{path}: decode directory {problem}")
    for side in ("ref", "hyp"):
        if not (path / side).is_dir():
            raise SpeechEQError(
                f"{path}: no '{side}' folder (a decode directory has ref/ and hyp/ tables, "
                "as written by 'speecheq predict')"
            )
    pairs: dict[str, Pairs] = {}
    classes: dict[str, tuple[str, ...]] = {}
    for task in TASKS.values():
        table = task.decode_table
        if not ((path / "ref" / table).is_file() and (path / "hyp" / table).is_file()):
            continue
        task_classes = _read_classes(path / task.class_file) if task.class_file else ()
        task_pairs = _read_pairs(path, task, task_classes)
        if task_pairs.utts:
            pairs[task.name] = task_pairs
            if task.class_file:
                classes[task.name] = task_classes
    if not pairs:
        known = ", ".join(task.decode_table for task in TASKS.values())
        raise SpeechEQError(
            f"{path}: no task to score, no non-empty table is in both ref/ and hyp/ "
            f"(known: {known})"
        )
    posteriors = {}
    if "emotion" in pairs and (path / "hyp" / "utt2emo.post").is_file():
        posteriors = _read_posteriors(path / "hyp" / "utt2emo.post", len(classes["emotion"]))
    genders = {}
    if (path / "ref" / "utt2gender").is_file():
        genders = _read_values(path / "ref" / "utt2gender", TASKS["gender"], ())
    speakers = read_table(path / "utt2spk") if (path / "utt2spk").is_file() else {}
    return Decoded(name or path.name, str(path), pairs, classes, posteriors, genders, speakers)


def _read_posteriors(path: Path, classes: int) -> dict[str, tuple[float, ...]]:
    posteriors: dict[str, tuple[float, ...]] = {}
    for line in read_lines(path):
        try:
            values = tuple(float(word) for word in line.value.split())
        except ValueError:
            values = ()
        if len(values) != classes or not all(math.isfinite(v) and v >= 0 for v in values):
            raise SpeechEQError(
                f"{path}:{line.lineno}: expected {classes} non-negative posteriors, got "
                f"'{line.value}'"
            )
        posteriors[line.key] = values
    return posteriors


def _read_classes(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        raise SpeechEQError(f"{path}: file not found (the model's classes, one per line)")
    classes: list[str] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        name = check_category(line.strip(), f"{path}:{lineno}")
        if name in classes:
            raise SpeechEQError(f"{path}:{lineno}: class '{name}' is listed twice")
        classes.append(name)
    if not classes:
        raise SpeechEQError(f"{path}: the class list is empty")
    return tuple(classes)


def _read_values(path: Path, task: type[Task], classes: Sequence[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    empty_values = task.decode_table in TABLES and TABLES[task.decode_table].empty_values
    for line in read_lines(path, allow_empty_value=empty_values):
        where = f"{path}:{line.lineno}"
        if line.key in values:
            raise SpeechEQError(f"{where}: duplicate id '{line.key}'")
        if classes and line.value not in classes:
            raise SpeechEQError(
                f"{where}: '{line.value}' is not one of the classes in {task.class_file}"
            )
        values[line.key] = task.parse(line.value, where)
    return values


def _read_pairs(path: Path, task: type[Task], classes: Sequence[str]) -> Pairs:
    file = task.decode_table
    ref = _read_values(path / "ref" / file, task, classes)
    hyp = _read_values(path / "hyp" / file, task, classes)
    missing = sorted(set(ref) - set(hyp))
    if missing:
        more = f" (nor have {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise SpeechEQError(
            f"{path}: reference utterance '{missing[0]}' of ref/{file} has no hypothesis in "
            f"hyp/{file}{more}"
        )
    utts = tuple(sorted(ref))
    return Pairs(utts, tuple(ref[u] for u in utts), tuple(hyp[u] for u in utts))
