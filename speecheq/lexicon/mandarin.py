"""Mandarin: characters to pinyin initials and tonal finals (pypinyin), with tone sandhi.

Each Han character is a word. Its citation form (for the lexicon) is the reading pypinyin
chooses in context, without sandhi (一 and 不 always yi1 and bu4); its spoken form (for the
transcript) has the tone sandhi of the sentence: pypinyin's rules within its words (third
tone, 一, 不), then, across word boundaries within each phrase, third-tone sandhi (a third
tone before a third tone becomes a second tone) and 不 before a fourth tone as bu2.
Punctuation ends a phrase; whitespace between characters does not. Neutral tone is 5. A run
of other characters (Latin letters, digits: pypinyin does not spell numbers) and a Han
character without a reading are out-of-vocabulary words.

Against the tone-as-spoken syllables of the CASIA ``.lab`` files, these spoken forms agree
on about 95% of syllables (pypinyin's word-internal sandhi alone: about 92%).
"""

from __future__ import annotations

import re

from pypinyin import Style, lazy_pinyin
from pypinyin.contrib.tone_convert import to_finals_tone3, to_initials

from speecheq.lexicon.text import Word, split_phrases

HAN = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
SEGMENT = re.compile(rf"[{HAN}](?:\s*[{HAN}])*|[^\s{HAN}]+")
"""A run of Han characters (whitespace between them ignored), or one other word."""

CITATION_FORMS = {"一": "yi1", "不": "bu4"}
"""Characters whose only tone changes are sandhi, which pypinyin's phrases carry (一个 yi2)."""


def syllable_phones(syllable: str) -> tuple[str, ...]:
    """Split a tone-numbered pinyin syllable into its initial and tonal final (``hao3`` ->
    ``h ao3``); a zero-initial syllable is its final (``yu3`` -> ``v3``), a syllabic nasal
    (``n2``, ``ng2``, ``hm5``) one token.
    """
    final = to_finals_tone3(syllable, strict=True, neutral_tone_with_five=True)
    if not final:
        return (syllable,)
    initial = to_initials(syllable, strict=True)
    return (initial, final) if initial else (final,)


def transcribe(text: str) -> list[Word]:
    """The words (characters and OOV runs) of a Mandarin sentence with their phones."""
    words: list[Word] = []
    for phrase in split_phrases(text):
        for segment in SEGMENT.findall(phrase):
            if re.match(f"[{HAN}]", segment):
                words.extend(_han_words(re.sub(r"\s+", "", segment)))
            else:
                words.append(Word(segment, None, None))
    return words


def _han_words(han: str) -> list[Word]:
    options = {"style": Style.TONE3, "neutral_tone_with_five": True, "errors": _no_reading}
    citation = [
        CITATION_FORMS.get(char, syllable)
        for char, syllable in zip(han, lazy_pinyin(han, **options), strict=True)
    ]
    spoken = sentence_sandhi(han, lazy_pinyin(han, tone_sandhi=True, **options))
    return [
        Word(char, syllable_phones(cited), syllable_phones(said))
        if cited
        else Word(char, None, None)
        for char, cited, said in zip(han, citation, spoken, strict=True)
    ]


def _no_reading(chars: str) -> list[str]:
    """pypinyin's callback for characters it cannot read: an empty syllable for each."""
    return [""] * len(chars)


def sentence_sandhi(han: str, syllables: list[str]) -> list[str]:
    """Apply the tone sandhi that crosses word boundaries to the syllables of ``han``.

    A third tone followed by a third tone becomes a second tone (``ni3 hao3`` -> ``ni2 hao3``)
    and 不 before a fourth tone is ``bu2``; an empty syllable (no reading) breaks both rules.
    """
    following = [*syllables[1:], ""]
    return [
        f"{syllable[:-1]}2"
        if (syllable.endswith("3") and after.endswith("3"))
        or (char == "不" and after.endswith("4"))
        else syllable
        for char, syllable, after in zip(han, syllables, following, strict=True)
    ]
