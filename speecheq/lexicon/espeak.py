"""eSpeak NG phones (IPA) through phonemizer, on the library bundled by ``espeakng-loader``."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import espeakng_loader
from phonemizer.backend import EspeakBackend
from phonemizer.backend.espeak.wrapper import EspeakWrapper
from phonemizer.separator import Separator

VOICE_OVERRIDES = {"en": "en-us"}
"""ISO 639-1 codes whose eSpeak NG voice is not found by the general rule."""

SEPARATOR = Separator(phone=" ", word="|", syllable="")

_LOGGER = logging.getLogger(__name__)
_LOGGER.setLevel(logging.ERROR)


def _use_bundled_espeak() -> None:
    """Point phonemizer at the libespeak-ng and voice data that espeakng-loader ships."""
    EspeakWrapper.set_library(espeakng_loader.get_library_path())
    EspeakWrapper.set_data_path(espeakng_loader.get_data_path())


def espeak_voice(language: str) -> str | None:
    """The eSpeak NG voice for a language code (``de`` -> ``de``, ``fr`` -> ``fr-fr``), or None."""
    _use_bundled_espeak()
    voices = EspeakBackend.supported_languages()
    if language in VOICE_OVERRIDES:
        return VOICE_OVERRIDES[language]
    if language in voices:
        return language
    regional = sorted(voice for voice in voices if voice.startswith(f"{language}-"))
    if f"{language}-{language}" in regional:
        return f"{language}-{language}"
    return regional[0] if regional else None


class EspeakPronouncer:
    """Pronounce words as eSpeak NG phones (IPA, no stress), one batched call per word list.

    Digits are spelled out by eSpeak NG (``123`` -> one hundred and twenty-three); a word that
    eSpeak NG gives no phones for is out of vocabulary (None).
    """

    def __init__(self, language: str) -> None:
        voice = espeak_voice(language)
        if voice is None:
            raise ValueError(f"eSpeak NG has no voice for '{language}'")
        self.backend = EspeakBackend(
            voice, with_stress=False, language_switch="remove-flags", logger=_LOGGER
        )

    def __call__(self, words: Sequence[str]) -> dict[str, tuple[str, ...] | None]:
        outputs = self.backend.phonemize(list(words), separator=SEPARATOR, strip=True)
        return {
            word: tuple(output.replace(SEPARATOR.word, " ").split()) or None
            for word, output in zip(words, outputs, strict=True)
        }
