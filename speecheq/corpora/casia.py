"""CASIA Chinese emotional speech: 4 actors, 6 emotions, the same 50 Mandarin sentences each.

Layout (the freely circulated 1,200-utterance part)::

    <corpus_dir>/<speaker>/<emotion>/<sentence>.wav    sentence ids 201-250 (.lab beside: ignored)
    <corpus_dir>/相同的文本201--250.txt                 GB18030 lines '201. 就是下雨也去。'

Every visible sub-folder of ``corpus_dir`` is a speaker; every sub-folder of a speaker is an
emotion: ``angry``, ``fear``, ``happy``, ``neutral``, ``sad`` or ``surprise``, each mapped to
the category of the same name. The transcript file is found by the end of its name
(``*201--250.txt``, as unzipping can garble the rest); its text is the transcript, as the HTK
``.lab`` files stop early in about 160 files and are absent in 5.

Tables: wav.scp, utt2spk, spk2gender (``liuchanhg`` f, ``wangzhe`` m, ``zhaoquanyin`` f,
``ZhaoZuoxiang`` m; another speaker gets no gender line), utt2emo, utt2nat (acted), utt2lang
(zh), text. Utterance ids are ``<speaker>-<emotion>-<sentence>``. Protocol: leave one speaker
out (4 folds of 300 test utterances).
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
    read_text,
    require_dir,
    subdirs,
    warn_missing,
)
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError

TERMS = (
    "distributed by the Institute of Automation, Chinese Academy of Sciences; the freely "
    "circulated 1,200-utterance part carries no licence of its own, so check the distributor's "
    "terms before any use beyond research."
)
"""The terms of use of the corpus, as a model card states them."""

EMOTIONS: dict[str, str] = {
    "angry": "angry",
    "fear": "fear",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprise": "surprise",
}
"""Emotion folder name -> category."""

GENDERS: dict[str, str] = {
    "liuchanhg": "f",
    "wangzhe": "m",
    "zhaoquanyin": "f",
    "ZhaoZuoxiang": "m",
}

SENTENCES_PER_EMOTION = 50

LAYOUT = "<speaker>/<emotion>/<sentence>.wav folders (e.g. liuchanhg/angry/201.wav)"

_TEXT_LINE = re.compile(r"(\d+)\s*[.．、]\s*(.*)")


def prepare(corpus_dir: Path) -> DataDir:
    """Prepare CASIA from ``corpus_dir`` as distributed."""
    require_dir(corpus_dir, "casia", LAYOUT)
    speakers = [spk for spk in subdirs(corpus_dir) if subdirs(spk)]
    if not speakers:
        raise layout_error(corpus_dir, "casia", LAYOUT)
    texts = _read_texts(corpus_dir)
    tables = CorpusTables("casia")
    without_text = 0
    for spk_dir in speakers:
        spk = spk_dir.name
        tables.set_gender(spk, GENDERS.get(spk))
        for emo_dir in subdirs(spk_dir):
            emotion = lookup(EMOTIONS, emo_dir.name, "emotion folder", str(emo_dir))
            for wav in files(emo_dir):
                if not wav.stem.isdigit():
                    raise SpeechEQError(f"{wav}: expected a sentence number as the file name")
                text = texts.get(int(wav.stem))
                without_text += text is None
                tables.add(
                    f"{spk}-{emo_dir.name}-{wav.stem}",
                    spk,
                    wav,
                    source=str(wav),
                    emotion=emotion,
                    naturalness="acted",
                    language="zh",
                    text=text,
                )
    expected = len(speakers) * len(EMOTIONS) * SENTENCES_PER_EMOTION
    warn_missing("casia", len(tables), expected, "utterances (speakers x 6 emotions x 50)")
    if texts and without_text:
        warn(f"casia: {without_text:,} utterances have no transcript line; written without text")
    return tables.data()


def _read_texts(corpus_dir: Path) -> dict[int, str]:
    """Sentence id -> text from the transcript file; empty (with a warning) if it is absent."""
    found = sorted(corpus_dir.glob("*201--250.txt"))
    if not found:
        warn(f"casia: no transcript file '*201--250.txt' in {corpus_dir}; text is not written")
        return {}
    path = found[0]
    texts: dict[int, str] = {}
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        match = _TEXT_LINE.fullmatch(line.strip())
        if match is None:
            raise SpeechEQError(
                f"{path}:{lineno}: malformed line {line!r}, expected '<sentence id>. <text>'"
            )
        texts[int(match.group(1))] = match.group(2)
    return texts
