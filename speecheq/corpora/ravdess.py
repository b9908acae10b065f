"""RAVDESS speech: 24 North American actors, 8 emotions at two intensities, 2 English sentences.

Layout (the audio-only speech part, ``Audio_Speech_Actors_01-24.zip``)::

    <corpus_dir>/Actor_<AA>/<MM>-<CC>-<EE>-<II>-<SS>-<RR>-<AA>.wav    e.g. 03-01-05-02-01-01-12.wav

Fields: modality MM (03 audio-only), vocal channel CC (01 speech), emotion EE, intensity II,
statement SS, repetition RR, actor AA. Files of another modality or channel (video, song) are
skipped with a warning. Audio is 48 kHz, a few files stereo (the feature stage resamples and
downmixes).

Emotions: 01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fear, 07 disgust, 08 surprise.
Intensity: 01 normal -> 2 (medium), 02 strong -> 3 (high); neutral speech -> 0. Statements:
01 "Kids are talking by the door", 02 "Dogs are sitting by the door". Gender: odd actors m,
even actors f.

Tables: wav.scp, utt2spk, spk2gender, utt2emo, utt2intensity, utt2nat (acted), utt2lang (en),
text. Speakers are ``Actor_<AA>``; utterance ids ``Actor_<AA>-<file name>``. Protocol: 6
actor-disjoint folds of 4 actors; the recipe ships EmoBox's (``egs/ravdess/conf/folds.txt``,
split with ``--by table``).
"""

from __future__ import annotations

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
    subdirs,
    warn_missing,
)
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError

TERMS = (
    "Creative Commons Attribution-NonCommercial-ShareAlike 4.0 (CC BY-NC-SA 4.0): non-commercial "
    "use, with attribution, and models shared alike."
)
"""The terms of use of the corpus, as a model card states them."""

EMOTIONS: dict[str, str] = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fear",
    "07": "disgust",
    "08": "surprise",
}
"""Emotion code -> category."""

INTENSITIES: dict[str, int] = {"01": 2, "02": 3}
"""Intensity code (normal, strong) -> intensity level; neutral speech is level 0."""

STATEMENTS: dict[str, str] = {
    "01": "Kids are talking by the door",
    "02": "Dogs are sitting by the door",
}

AUDIO_ONLY, SPEECH = "03", "01"

FILES_PER_ACTOR = 60


NAME_FORM = "<MM>-<CC>-<EE>-<II>-<SS>-<RR>-<AA> (e.g. 03-01-05-02-01-01-12.wav)"
LAYOUT = (
    "Actor_<AA>/<MM>-<CC>-<EE>-<II>-<SS>-<RR>-<AA>.wav (e.g. Actor_01/03-01-01-01-01-01-01.wav)"
)

_NAME = re.compile(r"(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)")


def prepare(corpus_dir: Path) -> DataDir:
    """Prepare RAVDESS speech from ``corpus_dir`` as distributed."""
    require_dir(corpus_dir, "ravdess", LAYOUT)
    actor_dirs = [d for d in subdirs(corpus_dir) if re.fullmatch(r"Actor_\d\d", d.name)]
    if not actor_dirs:
        raise layout_error(corpus_dir, "ravdess", LAYOUT)
    tables = CorpusTables("ravdess")
    skipped = 0
    for actor_dir in actor_dirs:
        for wav, fields in named_files(files(actor_dir), _NAME, NAME_FORM):
            modality, channel, emo, level, statement, _repetition, actor = fields
            if (modality, channel) != (AUDIO_ONLY, SPEECH):
                skipped += 1
                continue
            spk = f"Actor_{actor}"
            if actor_dir.name != spk:
                raise SpeechEQError(f"{wav}: a file of actor {actor} in folder {actor_dir.name}")
            emotion = lookup(EMOTIONS, emo, "emotion code", str(wav))
            intensity = lookup(INTENSITIES, level, "intensity code", str(wav))
            text = lookup(STATEMENTS, statement, "statement code", str(wav))
            tables.set_gender(spk, "m" if int(actor) % 2 else "f")
            tables.add(
                f"{spk}-{wav.stem}",
                spk,
                wav,
                source=str(wav),
                emotion=emotion,
                intensity=0 if emotion == "neutral" else intensity,
                naturalness="acted",
                language="en",
                text=text,
            )
    if skipped:
        warn(f"ravdess: skipped {skipped:,} files that are not audio-only speech (video, song)")
    expected = len(actor_dirs) * FILES_PER_ACTOR
    warn_missing("ravdess", len(tables), expected, "speech files (60 per actor)")
    return tables.data()
