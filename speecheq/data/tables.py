"""The tables a data directory may hold: one declaration each (key, value check, role).

Validation, loading, subsetting and fingerprints loop over :data:`TABLES`; a task names the
table its labels come from (:attr:`speecheq.tasks.Task.label_table`). A new kind of label is
one :class:`Table` here, with its value check in :mod:`speecheq.labels`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from speecheq.errors import SpeechEQError
from speecheq.labels import (
    check_category,
    check_gender,
    check_intensity,
    check_naturalness,
    parse_avd,
)


def _check_count(value: str, where: str) -> int:
    if not value.isdigit():
        raise SpeechEQError(f"{where}: expected a non-negative integer, got '{value}'")
    return int(value)


def _check_seconds(value: str, where: str) -> float:
    try:
        seconds = float(value)
        if not seconds >= 0 or seconds == float("inf"):
            raise ValueError
    except ValueError:
        raise SpeechEQError(f"{where}: expected a non-negative duration, got '{value}'") from None
    return seconds


def _check_split(value: str, where: str) -> str:
    if value not in ("train", "valid", "test"):
        raise SpeechEQError(f"{where}: unknown partition '{value}' (known: train, valid, test)")
    return value


@dataclass(frozen=True)
class Table:
    """One table of a data directory."""

    name: str
    keyed_by: Literal["utterance", "speaker"] = "utterance"
    check: Callable[[str, str], object] | None = None
    """Checks and parses one value; raises :class:`SpeechEQError` naming ``where`` if bad."""
    required: bool = False
    empty_values: bool = False
    """Whether a line may have an id and no value (an utterance with no words)."""
    holds_paths: bool = False
    """Whether its values are locations (files, archive offsets), not content."""
    emotion: bool = False
    """Whether it is an emotion annotation (withheld from unlabeled data)."""


TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        Table("wav.scp", required=True, holds_paths=True),
        Table("utt2spk", required=True),
        Table("utt2emo", check=check_category, emotion=True),
        Table("utt2intensity", check=check_intensity, emotion=True),
        Table("utt2nat", check=check_naturalness),
        Table("utt2lang"),
        Table("utt2corpus"),
        Table("utt2group"),
        Table("utt2split", check=_check_split),
        Table("utt2avd", check=parse_avd, emotion=True),
        Table("text", empty_values=True),
        Table("tokens", empty_values=True),
        Table("feats.scp", holds_paths=True),
        Table("utt2num_frames", check=_check_count),
        Table("utt2dur", check=_check_seconds),
        Table("spk2gender", "speaker", check=check_gender),
        Table("cmvn.scp", "speaker", holds_paths=True),
    )
}
"""Every table, in the order they are checked."""

REQUIRED_TABLES: tuple[str, ...] = tuple(name for name, t in TABLES.items() if t.required)
UTT_TABLES: tuple[str, ...] = tuple(n for n, t in TABLES.items() if t.keyed_by == "utterance")
SPK_TABLES: tuple[str, ...] = tuple(n for n, t in TABLES.items() if t.keyed_by == "speaker")
EMOTION_TABLES: tuple[str, ...] = tuple(name for name, t in TABLES.items() if t.emotion)
