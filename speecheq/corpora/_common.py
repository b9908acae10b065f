"""What the corpus preparers share: listing a corpus's folders, decoding its transcripts,
and collecting its utterances into the tables of a data directory."""

from __future__ import annotations

import codecs
import os
import re
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from speecheq.console import warn
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError

T = TypeVar("T")


def _visible(path: Path) -> bool:
    """False for hidden entries and archive litter (``.DS_Store``, ``._x.wav``, ``__MACOSX``)."""
    return not path.name.startswith((".", "__MACOSX"))


def subdirs(path: Path) -> list[Path]:
    """The visible sub-folders of ``path``, sorted by name."""
    return sorted(p for p in path.iterdir() if p.is_dir() and _visible(p))


def files(path: Path, suffix: str = ".wav") -> list[Path]:
    """The visible files directly in ``path`` whose name ends with ``suffix`` (any case), sorted."""
    return sorted(
        p for p in path.iterdir() if p.suffix.lower() == suffix and p.is_file() and _visible(p)
    )


def named_files(
    wavs: list[Path], pattern: re.Pattern[str], form: str
) -> list[tuple[Path, tuple[str, ...]]]:
    """Each file with the fields its name encodes; an error for a name not of the ``form``."""
    named = []
    for wav in wavs:
        match = pattern.fullmatch(wav.stem)
        if match is None:
            raise SpeechEQError(f"{wav}: the name does not follow {form}")
        named.append((wav, match.groups()))
    return named


def layout_error(corpus_dir: Path, corpus: str, expected: str) -> SpeechEQError:
    """The error for a folder that is not laid out as the corpus is distributed."""
    return SpeechEQError(f"{corpus_dir}: no {corpus} corpus found: expected {expected}")


def require_dir(corpus_dir: Path, corpus: str, expected: str) -> None:
    """Raise the layout error unless ``corpus_dir`` is a folder (it may be a file)."""
    if not corpus_dir.is_dir():
        raise layout_error(corpus_dir, corpus, expected)


def lookup(table: Mapping[str, T], code: str, what: str, where: str) -> T:
    """``table[code]``, or an error naming ``where``, the unknown code and the known ones."""
    if code not in table:
        raise SpeechEQError(f"{where}: unknown {what} '{code}' (known: {', '.join(table)})")
    return table[code]


def read_text(path: Path) -> str:
    """Decode a transcript file written as UTF-8, UTF-16 (with or without BOM) or GB18030."""
    raw = path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)
    elif raw.startswith(codecs.BOM_UTF8):
        encodings = ("utf-8-sig",)
    elif b"\x00" in raw[:512]:
        encodings = ("utf-16-le",) if raw[1:2] == b"\x00" else ("utf-16-be",)
    else:
        encodings = ("utf-8", "gb18030")
    for encoding in encodings:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SpeechEQError(f"{path}: cannot decode the text as {' or '.join(encodings)}")


def one_line(text: str) -> str:
    """``text`` with its whitespace runs (tabs, trailing spaces, newlines) collapsed to a space."""
    return " ".join(text.split())


def warn_missing(corpus: str, found: int, expected: int, what: str) -> None:
    """Warn that a partly missing corpus is prepared from what was found."""
    if found < expected:
        warn(
            f"{corpus}: {expected - found:,} of the {expected:,} {what} are missing; "
            f"preparing the {found:,} found"
        )


class CorpusTables:
    """The tables of a corpus being prepared, filled one utterance at a time.

    Each utterance id must start with its speaker id and be used once; a label given as
    None (or an empty text) is missing and writes no line.
    """

    def __init__(self, corpus: str) -> None:
        self.corpus = corpus
        self.tables: dict[str, dict[str, str]] = defaultdict(dict)
        self._sources: dict[str, str] = {}

    def add(
        self,
        utt: str,
        spk: str,
        wav: Path,
        *,
        source: str,
        emotion: str | None = None,
        intensity: int | None = None,
        naturalness: str | None = None,
        language: str | None = None,
        group: str | None = None,
        split: str | None = None,
        avd: tuple[float, float, float] | None = None,
        text: str | None = None,
    ) -> None:
        """Add an utterance; ``source`` (its file, or file:line) names it in errors.

        wav.scp gets the absolute path of ``wav``, symbolic links not resolved (annexed or
        linked corpora keep their file names).
        """
        if not utt.startswith(spk):
            raise ValueError(f"utterance id '{utt}' does not start with speaker id '{spk}'")
        if utt in self._sources:
            raise SpeechEQError(
                f"{source}: utterance id '{utt}' is already used by {self._sources[utt]}"
            )
        self._sources[utt] = source
        self.tables["wav.scp"][utt] = os.path.abspath(wav)
        self.tables["utt2spk"][utt] = spk
        labels = {
            "utt2emo": emotion,
            "utt2intensity": intensity,
            "utt2nat": naturalness,
            "utt2lang": language,
            "utt2group": group,
            "utt2split": split,
            "utt2avd": " ".join(f"{value:.10g}" for value in avd) if avd is not None else None,
            "text": one_line(text) if text is not None else None,
        }
        for table, value in labels.items():
            if value is not None and value != "":
                self.tables[table][utt] = str(value)

    def set_gender(self, spk: str, gender: str | None) -> None:
        """Record a speaker's gender (``m``/``f``); None leaves it unknown.

        Speakers left without utterances are dropped from ``spk2gender`` by :meth:`data`.
        """
        if gender is not None:
            self.tables["spk2gender"][spk] = gender

    def __len__(self) -> int:
        return len(self._sources)

    def data(self) -> DataDir:
        """The data directory of the utterances added; an error if there are none."""
        if not self._sources:
            raise SpeechEQError(f"{self.corpus}: no utterances found")
        speakers = set(self.tables["utt2spk"].values())
        genders = self.tables.get("spk2gender", {})
        spk2gender = {spk: gender for spk, gender in genders.items() if spk in speakers}
        tables = {**self.tables, "spk2gender": spk2gender}
        return DataDir({name: table for name, table in tables.items() if table})
