"""Emotional Speech Dataset (ESD): 10 Mandarin and 10 English speakers, 5 emotions, 350 sentences.

Layout (the ``Emotion Speech Dataset`` folder of the distribution)::

    <corpus_dir>/<spk>/<spk>.txt                                 transcript
    <corpus_dir>/<spk>/<Emotion>/[train|evaluation|test/]<spk>_<nnnnnn>.wav

Speakers 0001-0010 speak Mandarin (zh), 0011-0020 English (en). Emotion folders: Neutral,
Angry, Happy, Sad, Surprise (categories neutral, angry, happy, sad, surprise). The transcript
has one line per utterance, ``<utt><TAB><text><TAB><emotion>``, the emotion in Chinese for the
Mandarin speakers (中立 neutral, 生气 angry, 快乐 happy, 伤心 sad, 惊喜 surprise) and in
English for the others. Copies in the wild store it as UTF-8, UTF-16 or GB18030: the encoding
is detected. The emotion label comes from the folder; a transcript line that disagrees is
counted in a warning.

Genders, as documented by the corpus: 0001 f, 0002 f, 0003 f, 0004 m, 0005 m, 0006 m, 0007 f,
0008 m, 0009 f, 0010 m; 0011 m, 0012 m, 0013 m, 0014 m, 0015 f, 0016 f, 0017 f, 0018 f,
0019 f, 0020 m.

Partition: the distribution sorts each speaker's 350 utterances of each emotion into
``evaluation/`` (the first 20 of the emotion's number block, e.g. 000001-000020 and
000351-000370), ``test/`` (the next 30, 000021-000050) and ``train/`` (the last 300,
000051-000350). Where those folders are present they give utt2split (evaluation -> valid);
otherwise the same partition is derived from the utterance numbers. It is not
speaker-independent: every speaker is in all three parts.

Tables: wav.scp, utt2spk, spk2gender, utt2emo, utt2nat (acted), utt2lang, utt2split, text.
Utterance ids are the file names without ``.wav``. Protocols: the corpus's partition
(``--by partition``), or leave speakers out (``--by speaker``).
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

TERMS = "released by its authors for research use under their licence agreement."
"""The terms of use of the corpus, as a model card states them."""

EMOTIONS: dict[str, str] = {
    "Neutral": "neutral",
    "Angry": "angry",
    "Happy": "happy",
    "Sad": "sad",
    "Surprise": "surprise",
}
"""Emotion folder -> category."""

TRANSCRIPT_EMOTIONS: dict[str, str] = {
    "中立": "neutral",
    "生气": "angry",
    "快乐": "happy",
    "伤心": "sad",
    "惊喜": "surprise",
    **{folder.lower(): category for folder, category in EMOTIONS.items()},
}
"""Emotion word of a transcript line (lower-cased) -> category."""

GENDERS: dict[str, str] = {
    "0001": "f",
    "0002": "f",
    "0003": "f",
    "0004": "m",
    "0005": "m",
    "0006": "m",
    "0007": "f",
    "0008": "m",
    "0009": "f",
    "0010": "m",
    "0011": "m",
    "0012": "m",
    "0013": "m",
    "0014": "m",
    "0015": "f",
    "0016": "f",
    "0017": "f",
    "0018": "f",
    "0019": "f",
    "0020": "m",
}

PARTITION_FOLDERS: dict[str, str] = {"train": "train", "evaluation": "valid", "test": "test"}
"""Partition folder -> utt2split value."""

UTTERANCES_PER_EMOTION = 350
VALID_PER_EMOTION = 20
TEST_PER_EMOTION = 30

LAYOUT = "<spk>/<Emotion>/<spk>_<nnnnnn>.wav folders (e.g. 0001/Neutral/0001_000001.wav)"

_TRANSCRIPT_LINE = re.compile(r"(\d{4}_\d{6})\s+(.+?)\s+(\S+)")


def prepare(corpus_dir: Path) -> DataDir:
    """Prepare ESD from ``corpus_dir`` as distributed."""
    require_dir(corpus_dir, "esd", LAYOUT)
    speakers = [
        d
        for d in subdirs(corpus_dir)
        if re.fullmatch(r"\d{4}", d.name) and any(e.name in EMOTIONS for e in subdirs(d))
    ]
    if not speakers:
        raise layout_error(corpus_dir, "esd", LAYOUT)
    tables = CorpusTables("esd")
    without_text = disagreeing = 0
    for spk_dir in speakers:
        spk = spk_dir.name
        transcript = _read_transcript(spk_dir / f"{spk}.txt")
        tables.set_gender(spk, GENDERS.get(spk))
        for emotion, wav, split in _speaker_wavs(spk_dir):
            if not re.fullmatch(rf"{spk}_\d{{6}}", wav.stem):
                raise SpeechEQError(f"{wav}: expected a file name {spk}_<nnnnnn>.wav")
            text, text_emotion = transcript.get(wav.stem, (None, None))
            without_text += text is None
            disagreeing += text_emotion not in (None, emotion)
            tables.add(
                wav.stem,
                spk,
                wav,
                source=str(wav),
                emotion=emotion,
                naturalness="acted",
                language=language(spk),
                split=split or partition(int(wav.stem[5:])),
                text=text,
            )
    expected = len(speakers) * len(EMOTIONS) * UTTERANCES_PER_EMOTION
    warn_missing("esd", len(tables), expected, "utterances (speakers x 5 emotions x 350)")
    if without_text:
        warn(f"esd: {without_text:,} utterances have no transcript line; written without text")
    if disagreeing:
        warn(
            f"esd: {disagreeing:,} transcript lines name another emotion than the folder "
            "of their audio; the folder's emotion is written"
        )
    return tables.data()


def language(spk: str) -> str | None:
    """The language of a speaker: zh for 0001-0010, en for 0011-0020, else unknown."""
    number = int(spk)
    return "zh" if 1 <= number <= 10 else "en" if 11 <= number <= 20 else None


def partition(number: int) -> str:
    """The distribution's partition of utterance ``number`` (train, valid or test)."""
    position = (number - 1) % UTTERANCES_PER_EMOTION + 1
    if position <= VALID_PER_EMOTION:
        return "valid"
    return "test" if position <= VALID_PER_EMOTION + TEST_PER_EMOTION else "train"


def _speaker_wavs(spk_dir: Path) -> list[tuple[str, Path, str | None]]:
    """(emotion, wav, partition from its folder or None) for every audio file of a speaker."""
    found: list[tuple[str, Path, str | None]] = []
    for emo_dir in subdirs(spk_dir):
        emotion = lookup(EMOTIONS, emo_dir.name, "emotion folder", str(emo_dir))
        found += [(emotion, wav, None) for wav in files(emo_dir)]
        for part_dir in subdirs(emo_dir):
            split = lookup(PARTITION_FOLDERS, part_dir.name, "partition folder", str(part_dir))
            found += [(emotion, wav, split) for wav in files(part_dir)]
    return found


def _read_transcript(path: Path) -> dict[str, tuple[str, str]]:
    """Utterance id -> (text, emotion category); empty (with a warning) if the file is absent."""
    if not path.is_file():
        warn(f"esd: transcript {path} is absent; its speaker's text is not written")
        return {}
    transcript: dict[str, tuple[str, str]] = {}
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        match = _TRANSCRIPT_LINE.fullmatch(line.strip())
        if match is None:
            raise SpeechEQError(
                f"{path}:{lineno}: malformed line {line!r}, expected '<utt><TAB><text><TAB>"
                "<emotion>'"
            )
        utt, text, word = match.groups()
        emotion = lookup(TRANSCRIPT_EMOTIONS, word.lower(), "emotion", f"{path}:{lineno}")
        transcript[utt] = (text, emotion)
    return transcript
