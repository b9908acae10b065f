"""Read a decode directory (written by ``speecheq predict``) into reference/hypothesis pairs.

A decode directory holds ``classes`` (the model's emotion classes in index order) and two folders
of Kaldi-style tables, ``ref/`` and ``hyp/``. A task is scored when both ``ref/<file>`` and
``hyp/<file>`` exist, over the utterances of ``ref/<file>``; every one of them must have a
hypothesis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speecheq.errors import SpeechEQError
from speecheq.fileio import read_lines
from speecheq.labels import check_category, check_gender, check_intensity, check_naturalness

TASK_FILES: dict[str, str] = {
    "category": "utt2emo",
    "intensity": "utt2intensity",
    "gender": "utt2gender",
    "naturalness": "utt2nat",
    "corpus": "utt2corpus",
    "dimensional": "utt2avd",
    "tokens": "tokens",
}
"""Task -> the table of ``ref/`` and ``hyp/`` it is scored from, in report order."""

DIMENSIONS: tuple[str, ...] = ("arousal", "valence", "dominance")
"""The columns of ``utt2avd``, in order."""


@dataclass(frozen=True)
class Pairs:
    """Reference and hypothesis values of one task, aligned by utterance."""

    utts: tuple[str, ...]
    ref: tuple[Any, ...]
    hyp: tuple[Any, ...]

    def __add__(self, other: Pairs) -> Pairs:
        return Pairs(self.utts + other.utts, self.ref + other.ref, self.hyp + other.hyp)

    def where(self, keep: Sequence[bool]) -> Pairs:
        """The pairs for which ``keep`` is true."""
        chosen = [i for i, flag in enumerate(keep) if flag]
        return Pairs(
            tuple(self.utts[i] for i in chosen),
            tuple(self.ref[i] for i in chosen),
            tuple(self.hyp[i] for i in chosen),
        )


@dataclass(frozen=True)
class Decoded:
    """One decode directory (one fold or test set): its classes and its pairs per task."""

    name: str
    path: str
    classes: tuple[str, ...]
    """The model's emotion classes in index order (empty when no category task is scored)."""
    pairs: dict[str, Pairs]
    """Task (a key of :data:`TASK_FILES`) -> pairs, for the tasks with references in both."""


def read_decode_dir(path: str | Path, name: str | None = None) -> Decoded:
    """Read the tasks that both ``ref/`` and ``hyp/`` of a decode directory have (empty ones aside).

    Raises :class:`SpeechEQError` when the directory, ``ref/``, ``hyp/`` or ``classes`` is
    missing, a table is malformed or holds a bad value, a reference utterance has no
    hypothesis, or no task can be scored.
    """
    path = Path(path)
    if not path.is_dir():
        raise SpeechEQError(f"{path}: decode directory does not exist")
    for side in ("ref", "hyp"):
        if not (path / side).is_dir():
            raise SpeechEQError(
                f"{path}: no '{side}' folder (a decode directory has ref/ and hyp/ tables, "
                "as written by 'speecheq predict')"
            )
    present = [
        task
        for task, file in TASK_FILES.items()
        if (path / "ref" / file).is_file() and (path / "hyp" / file).is_file()
    ]
    classes = _read_classes(path / "classes") if "category" in present else ()
    parsers = _parsers(classes, path / "classes")
    pairs = {task: _read_pairs(path, TASK_FILES[task], parsers[task]) for task in present}
    pairs = {task: task_pairs for task, task_pairs in pairs.items() if task_pairs.utts}
    if not pairs:
        raise SpeechEQError(
            f"{path}: no task to score, no non-empty table is in both ref/ and hyp/ "
            f"(known: {', '.join(TASK_FILES.values())})"
        )
    return Decoded(name or path.name, str(path), classes, pairs)


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


Parser = Callable[[str, str], Any]
"""Parse one table value; raise :class:`SpeechEQError` naming ``where`` if it is bad."""


def _parsers(classes: tuple[str, ...], classes_path: Path) -> dict[str, Parser]:
    def parse_class(value: str, where: str) -> str:
        if value not in classes:
            raise SpeechEQError(f"{where}: '{value}' is not one of the classes in {classes_path}")
        return value

    return {
        "category": parse_class,
        "intensity": check_intensity,
        "gender": check_gender,
        "naturalness": check_naturalness,
        "corpus": _parse_name,
        "dimensional": _parse_avd,
        "tokens": lambda value, where: tuple(value.split()),
    }


def _parse_name(value: str, where: str) -> str:
    if len(value.split()) != 1:
        raise SpeechEQError(f"{where}: expected one name, got '{value}'")
    return value


def _parse_avd(value: str, where: str) -> tuple[float, ...]:
    try:
        numbers = tuple(float(part) for part in value.split())
    except ValueError:
        numbers = ()
    if len(numbers) != len(DIMENSIONS) or not all(math.isfinite(x) for x in numbers):
        raise SpeechEQError(f"{where}: expected three finite numbers, got '{value}'")
    return numbers


def _read_values(path: Path, parse: Parser) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for line in read_lines(path, allow_empty_value=path.name == "tokens"):
        if line.key in values:
            raise SpeechEQError(f"{path}:{line.lineno}: duplicate id '{line.key}'")
        values[line.key] = parse(line.value, f"{path}:{line.lineno}")
    return values


def _read_pairs(path: Path, file: str, parse: Parser) -> Pairs:
    ref = _read_values(path / "ref" / file, parse)
    hyp = _read_values(path / "hyp" / file, parse)
    missing = sorted(set(ref) - set(hyp))
    if missing:
        more = f" (nor have {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise SpeechEQError(
            f"{path}: reference utterance '{missing[0]}' of ref/{file} has no hypothesis in "
            f"hyp/{file}{more}"
        )
    utts = tuple(sorted(ref))
    return Pairs(utts, tuple(ref[u] for u in utts), tuple(hyp[u] for u in utts))
