"""The audio a user hands ``speecheq infer``: files, folders, a Kaldi ``wav.scp`` or a list,
and its reading into features with bad files skipped on request."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import soundfile

from speecheq.audio import is_pipe, read_audio
from speecheq.errors import SpeechEQError
from speecheq.fileio import path_problem, read_lines

T = TypeVar("T")

AUDIO_SUFFIXES: tuple[str, ...] = tuple(
    sorted(
        {f".{name.lower()}" for name in soundfile.available_formats() if name != "RAW"}
        | {".aif", ".opus"}
    )
)
"""File name endings of the formats the audio reader decodes (headerless RAW aside), as a
folder scan finds them."""


def audio_inputs(inputs: Sequence[str | Path]) -> list[tuple[str, str]]:
    """``(name, wav.scp value)`` of every input: an audio file; a folder (every audio file in it,
    recursively, sorted); a ``wav.scp`` or a data directory (its utterances, pipes included);
    or a list file (one path per line, relative to the list's folder)."""
    found: list[tuple[str, str]] = []
    for item in map(Path, inputs):
        if item.is_dir() and (item / "wav.scp").is_file():
            found.extend((line.key, line.value) for line in read_lines(item / "wav.scp"))
        elif item.is_dir():
            files = sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            if not files:
                raise SpeechEQError(f"{item}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in it")
            found.extend((str(path), str(path)) for path in files)
        elif not item.is_file():
            raise SpeechEQError(f"{item}: no such file or folder")
        elif item.name == "wav.scp":
            found.extend((line.key, line.value) for line in read_lines(item))
        elif item.suffix.lower() in AUDIO_SUFFIXES:
            found.append((str(item), str(item)))
        else:
            found.extend(_listed(item))
    if not found:
        raise SpeechEQError("no audio files given")
    return found


def _listed(path: Path) -> list[tuple[str, str]]:
    """The audio files a list file names (blank lines and ``#`` comments aside)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpeechEQError(f"{path}: neither audio nor a UTF-8 list of audio files") from None
    listed = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        target = Path(line) if Path(line).is_absolute() or is_pipe(line) else path.parent / line
        problem = None if is_pipe(line) else path_problem(target)
        if problem:
            raise SpeechEQError(f"{path}:{lineno}: audio file '{line}' {problem}")
        listed.append((line, str(target)))
    return listed


def featurized(
    featurize: Callable[[np.ndarray, int, str], T],
    items: Iterable[tuple[str, str]],
    skip_bad: bool,
    advance: Callable[[int], None] = lambda count: None,
) -> tuple[list[tuple[str, T]], dict[str, str]]:
    """``(name, featurize(samples, rate, who))`` of every input ``(name, spec)``, and, with
    ``skip_bad``, why each unreadable one was left out (else its error is raised); none
    readable is an error."""
    features: list[tuple[str, T]] = []
    skipped: dict[str, str] = {}
    for name, spec in items:
        try:
            samples, rate = read_audio(spec, None if name == spec else name)
            features.append((name, featurize(samples, rate, f"'{spec}'")))
        except SpeechEQError as err:
            if not skip_bad:
                raise
            skipped[name] = str(err)
        advance(1)
    if not features:
        raise SpeechEQError("no file could be read")
    return features, skipped
