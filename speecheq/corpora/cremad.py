"""CREMA-D: 91 actors of varied age and ethnicity, 6 emotions, 12 English sentences.

Layout::

    <corpus_dir>/AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav    e.g. 1001_DFA_ANG_XX.wav
    <corpus_dir>/VideoDemographics.csv    columns ActorID, Age, Sex, Race, Ethnicity

Emotions: ANG angry, DIS disgust, FEA fear, HAP happy, NEU neutral, SAD sad. Levels: LO 1
(low), MD 2 (medium), HI 3 (high), XX unspecified (no intensity line; one distributed file is
misnamed with ``X``, read the same); neutral speech is level 0. Sex ``Male``/``Female`` gives
the gender; without the demographics file, no gender is written (with a warning).

Sentences: IEO "It's eleven o'clock", TIE "That is exactly what happened", IOM "I'm on my way
to the meeting", IWW "I wonder what this is about", TAI "The airplane is almost full", MTI
"Maybe tomorrow it will be cold", IWL "I would like a new alarm clock", ITH "I think I have a
doctor's appointment", DFA "Don't forget a jacket", ITS "I think I've seen this before", TSI
"The surface is slick", WSI "We'll stop in a couple of minutes".

Tables: wav.scp, utt2spk, spk2gender, utt2emo, utt2intensity, utt2nat (acted), utt2lang (en),
text. Speakers are the actor ids; utterance ids the file names without ``.wav``. Protocol:
actor-disjoint folds (``speecheq data split --by speaker --num-folds 5``).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from speecheq.console import warn
from speecheq.corpora._common import (
    CorpusTables,
    files,
    layout_error,
    lookup,
    named_files,
    require_dir,
    warn_missing,
)
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError

TERMS = "Open Database License (ODbL) v1.0, its contents under the Database Contents License."
"""The terms of use of the corpus, as a model card states them."""

EMOTIONS: dict[str, str] = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
"""Emotion code -> category."""

LEVELS: dict[str, int | None] = {"LO": 1, "MD": 2, "HI": 3, "XX": None, "X": None}
"""Level code -> intensity level; None where unspecified."""

SENTENCES: dict[str, str] = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
"""Sentence code -> English text."""

SEXES: dict[str, str] = {"Male": "m", "Female": "f"}

DISTRIBUTED_UTTERANCES = 7442

DEMOGRAPHICS = "VideoDemographics.csv"

NAME_FORM = "<actor>_<sentence>_<emotion>_<level> (e.g. 1001_DFA_ANG_XX.wav)"
LAYOUT = (
    "AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav files (e.g. AudioWAV/1001_DFA_ANG_XX.wav)"
)

_NAME = re.compile(r"(\d+)_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})")


def prepare(corpus_dir: Path) -> DataDir:
    """Prepare CREMA-D from ``corpus_dir`` as distributed."""
    require_dir(corpus_dir, "cremad", LAYOUT)
    wav_dir = corpus_dir / "AudioWAV"
    if not wav_dir.is_dir() or not files(wav_dir):
        raise layout_error(corpus_dir, "cremad", LAYOUT)
    genders = _read_genders(corpus_dir / DEMOGRAPHICS)
    tables = CorpusTables("cremad")
    for wav, (actor, sentence, emo, level) in named_files(files(wav_dir), _NAME, NAME_FORM):
        text = lookup(SENTENCES, sentence, "sentence code", str(wav))
        emotion = lookup(EMOTIONS, emo, "emotion code", str(wav))
        intensity = lookup(LEVELS, level, "level code", str(wav))
        tables.set_gender(actor, genders.get(actor))
        tables.add(
            wav.stem,
            actor,
            wav,
            source=str(wav),
            emotion=emotion,
            intensity=0 if emotion == "neutral" else intensity,
            naturalness="acted",
            language="en",
            text=text,
        )
    warn_missing("cremad", len(tables), DISTRIBUTED_UTTERANCES, "clips of the distribution")
    return tables.data()


def _read_genders(path: Path) -> dict[str, str]:
    """Actor id -> gender from the demographics table; empty (with a warning) if it is absent."""
    if not path.is_file():
        warn(f"cremad: {path} is absent; no speaker genders are written")
        return {}
    genders: dict[str, str] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        if "ActorID" not in header or "Sex" not in header:
            raise SpeechEQError(f"{path}:1: expected a header with columns ActorID and Sex")
        actor_col, sex_col = header.index("ActorID"), header.index("Sex")
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path}:{reader.line_num}"
            if len(row) != len(header):
                raise SpeechEQError(f"{where}: expected {len(header)} columns, found {len(row)}")
            genders[row[actor_col].strip()] = lookup(SEXES, row[sex_col].strip(), "Sex", where)
    return genders
