"""Berlin Database of Emotional Speech (EmoDB): 10 actors, 7 emotions, 10 German sentences.

Layout::

    <corpus_dir>/wav/<speaker><text><emotion><version>.wav    e.g. 03a01Fa.wav

``<speaker>`` is two digits, ``<text>`` one of the ten sentence codes, ``<emotion>`` a letter
of the German emotion word, ``<version>`` a letter. The annotation files beside ``wav/``
(``silb/``, ``lablaut/``, ``erkennung.txt``, ``erklaerung.txt``, Latin-1) are not read.

Emotions: W (Wut) angry, L (Langeweile) boredom, E (Ekel) disgust, A (Angst) fear, F (Freude)
happy, T (Trauer) sad, N neutral. Genders: 03 m, 08 f, 09 f, 10 m, 11 m, 12 m, 13 f, 14 f,
15 m, 16 f. Texts: the ten sentences of the corpus documentation; a05 as it is spoken and
word-segmented in the corpus's own ``silb/`` files ("Blatt Papier"; the documentation's
list says "Stück Papier").

Tables: wav.scp, utt2spk, spk2gender, utt2emo, utt2nat (acted), utt2lang (de), text.
Utterance ids are the file names without ``.wav``. Protocol: leave one speaker out (10 folds).
Some circulated copies are resampled or cut to a fixed length: note it with any result.
"""

from __future__ import annotations

import re
from pathlib import Path

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

TERMS = (
    "recorded and distributed free of charge by the Technical University of Berlin for research; "
    "check its authors' terms before any other use."
)
"""The terms of use of the corpus, as a model card states them."""

EMOTIONS: dict[str, str] = {
    "W": "angry",
    "L": "boredom",
    "E": "disgust",
    "A": "fear",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}
"""Emotion letter -> category."""

GENDERS: dict[str, str] = {
    "03": "m",
    "08": "f",
    "09": "f",
    "10": "m",
    "11": "m",
    "12": "m",
    "13": "f",
    "14": "f",
    "15": "m",
    "16": "f",
}

SENTENCES: dict[str, str] = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Blatt Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}
"""Sentence code -> German text."""

DISTRIBUTED_UTTERANCES = 535

NAME_FORM = "<speaker><text><emotion><version> (e.g. 03a01Fa.wav)"
LAYOUT = "wav/<speaker><text><emotion><version>.wav files (e.g. wav/03a01Fa.wav)"

_NAME = re.compile(r"(\d\d)([ab]\d\d)([A-Z])([a-z])")


def prepare(corpus_dir: Path) -> DataDir:
    """Prepare EmoDB from ``corpus_dir`` as distributed."""
    require_dir(corpus_dir, "emodb", LAYOUT)
    wav_dir = corpus_dir / "wav"
    if not wav_dir.is_dir() or not files(wav_dir):
        raise layout_error(corpus_dir, "emodb", LAYOUT)
    tables = CorpusTables("emodb")
    for wav, (spk, code, letter, _version) in named_files(files(wav_dir), _NAME, NAME_FORM):
        text = lookup(SENTENCES, code, "sentence code", str(wav))
        emotion = lookup(EMOTIONS, letter, "emotion letter", str(wav))
        tables.set_gender(spk, GENDERS.get(spk))
        tables.add(
            wav.stem,
            spk,
            wav,
            source=str(wav),
            emotion=emotion,
            naturalness="acted",
            language="de",
            text=text,
        )
    warn_missing("emodb", len(tables), DISTRIBUTED_UTTERANCES, "utterances of the distribution")
    return tables.data()
