"""IEMOCAP: 5 sessions of dyadic improvised and scripted English dialogs by 10 actors.

Layout (``IEMOCAP_full_release``)::

    <corpus_dir>/Session<n>/sentences/wav/<dialog>/<utt>.wav
    <corpus_dir>/Session<n>/dialog/EmoEvaluation/<dialog>.txt
    <corpus_dir>/Session<n>/dialog/transcriptions/<dialog>.txt

An evaluation file has one line per utterance, ``[START - END]<TAB><utt><TAB><code><TAB>[V, A,
D]``, followed by the annotators' lines (not read). Codes: neu neutral, hap happy, exc excited,
ang angry, sad sad, fru frustrated, fea fear, sur surprise, dis disgust, oth other; ``xxx`` (no
majority) writes no emotion line. A transcription line is ``<utt> [START-END]: <text>``; lines
of other ids (breaths, overlaps) are skipped.

In ``Ses01F_impro01_M003`` the last field's letter is the speaker's gender (the first names
the session's marker wearer), so the speaker is ``Ses01M``; utterance ids are prefixed with it:
``Ses01M-Ses01F_impro01_M003``. ``impro`` dialogs are natural, ``script`` dialogs acted.
Utterances with audio but no evaluation line are kept without labels (usable unlabeled).

Tables: wav.scp, utt2spk, spk2gender, utt2emo, utt2nat, utt2lang (en), utt2group (the session,
``Session1``...), utt2avd (the evaluation's V, A, D written as arousal valence dominance), text.
Protocol: leave one session out (``--by group``, 5 folds). The usual 4-class set (neutral,
happy + excited, angry, sad: 5,531 utterances) is a recipe's class map, not the preparer's.
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
    read_text,
    require_dir,
    subdirs,
    warn_missing,
)
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError

TERMS = "released by USC's SAIL lab under a licence agreement, for research use."
"""The terms of use of the corpus, as a model card states them."""

EMOTIONS: dict[str, str | None] = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "excited",
    "ang": "angry",
    "sad": "sad",
    "fru": "frustrated",
    "fea": "fear",
    "sur": "surprise",
    "dis": "disgust",
    "oth": "other",
    "xxx": None,
}
"""Evaluation code -> category; None where the annotators did not agree."""

UTT_FORM = "an utterance id (e.g. Ses01F_impro01_F000.wav)"
LAYOUT = (
    "Session<n>/sentences/wav/<dialog>/<utt>.wav with Session<n>/dialog/EmoEvaluation/"
    "<dialog>.txt (e.g. Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav)"
)

_UTT = re.compile(r"(Ses\d\d)[FM]_(impro|script)\w*_([FM])\d{3}")
_EVALUATION_LINE = re.compile(
    r"\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\s+(\S+)\s+(\S+)\s+"
    r"\[\s*([-\d.]+)\s*,\s*([-\d.]+)\s*,\s*([-\d.]+)\s*\]"
)
_TRANSCRIPTION_LINE = re.compile(r"(\S+)\s+\[[\d.]+-[\d.]+\]:\s*(.*)")


def prepare(corpus_dir: Path) -> DataDir:
    """Prepare IEMOCAP from ``corpus_dir`` as distributed."""
    require_dir(corpus_dir, "iemocap", LAYOUT)
    sessions = [
        d
        for d in subdirs(corpus_dir)
        if re.fullmatch(r"Session\d", d.name) and (d / "sentences" / "wav").is_dir()
    ]
    if not sessions:
        raise layout_error(corpus_dir, "iemocap", LAYOUT)
    tables = CorpusTables("iemocap")
    evaluated = unlabelled = 0
    for session in sessions:
        evaluations = _read_evaluations(session / "dialog" / "EmoEvaluation")
        texts = _read_transcriptions(session / "dialog" / "transcriptions")
        evaluated += len(evaluations)
        for dialog_dir in subdirs(session / "sentences" / "wav"):
            for wav, (prefix, kind, gender) in named_files(files(dialog_dir), _UTT, UTT_FORM):
                spk = f"{prefix}{gender}"
                emotion, avd = evaluations.get(wav.stem, (None, None))
                unlabelled += wav.stem not in evaluations
                tables.set_gender(spk, gender.lower())
                tables.add(
                    f"{spk}-{wav.stem}",
                    spk,
                    wav,
                    source=str(wav),
                    emotion=emotion,
                    naturalness="natural" if kind == "impro" else "acted",
                    language="en",
                    group=session.name,
                    avd=avd,
                    text=texts.get(wav.stem),
                )
    warn_missing(
        "iemocap", len(tables) - unlabelled, evaluated, "audio files of evaluated utterances"
    )
    if unlabelled:
        warn(f"iemocap: {unlabelled:,} utterances have no evaluation line; kept without labels")
    return tables.data()


def _read_evaluations(
    folder: Path,
) -> dict[str, tuple[str | None, tuple[float, float, float]]]:
    """Utterance id -> (category or None, (arousal, valence, dominance)) from a session."""
    if not folder.is_dir():
        warn(f"iemocap: {folder} is absent; that session's utterances have no labels")
        return {}
    evaluations = {}
    for path in files(folder, ".txt"):
        for lineno, line in enumerate(read_text(path).splitlines(), start=1):
            if not line.startswith("["):
                continue
            match = _EVALUATION_LINE.fullmatch(line.strip())
            if match is None:
                raise SpeechEQError(
                    f"{path}:{lineno}: malformed line {line!r}, expected "
                    "'[START - END]<TAB><utt><TAB><emotion><TAB>[V, A, D]'"
                )
            utt, code, valence, arousal, dominance = match.groups()
            emotion = lookup(EMOTIONS, code, "emotion code", f"{path}:{lineno}")
            try:
                avd = (float(arousal), float(valence), float(dominance))
            except ValueError:
                raise SpeechEQError(
                    f"{path}:{lineno}: V, A, D are not numbers in {line!r}"
                ) from None
            evaluations[utt] = (emotion, avd)
    return evaluations


def _read_transcriptions(folder: Path) -> dict[str, str]:
    """Utterance id -> text from a session's transcriptions (empty if the folder is absent)."""
    if not folder.is_dir():
        warn(f"iemocap: {folder} is absent; that session's text is not written")
        return {}
    texts = {}
    for path in files(folder, ".txt"):
        for line in read_text(path).splitlines():
            match = _TRANSCRIPTION_LINE.fullmatch(line.strip())
            if match is not None and _UTT.fullmatch(match.group(1)):
                texts[match.group(1)] = match.group(2)
    return texts
