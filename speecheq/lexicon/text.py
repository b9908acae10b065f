"""Transcript normalisation, the word record every pronunciation backend returns, special tokens."""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

BLANK = "<blank>"
"""The CTC blank token, id 0."""

UNK = "<unk>"
"""The token of an out-of-vocabulary word, id 1."""

WordPronouncer = Callable[[Sequence[str]], dict[str, tuple[str, ...] | None]]
"""A batch pronouncer: unique words -> their tokens, or None for an out-of-vocabulary word."""


@dataclass(frozen=True)
class Word:
    """One word of a transcript and its tokens; both token tuples are None for an OOV word.

    ``citation`` is the pronunciation the lexicon lists; ``spoken`` the one in this sentence
    (they differ only where context changes it, e.g. Mandarin third-tone sandhi).
    """

    text: str
    citation: tuple[str, ...] | None
    spoken: tuple[str, ...] | None

    @property
    def is_oov(self) -> bool:
        return self.spoken is None


def is_punctuation(char: str) -> bool:
    """True for Unicode punctuation (Chinese included) and every ASCII punctuation mark."""
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def split_phrases(text: str) -> list[str]:
    """Split a transcript at its punctuation into lower-case phrases (NFKC-normalised).

    An apostrophe between two letters or digits is part of its word (``don't``), so it is kept.
    Phrases that hold nothing but whitespace are left out.
    """
    text = unicodedata.normalize("NFKC", text).replace("’", "'").lower()
    phrases: list[str] = []
    start = 0
    for index, char in enumerate(text):
        inner_apostrophe = (
            char == "'"
            and 0 < index < len(text) - 1
            and text[index - 1].isalnum()
            and text[index + 1].isalnum()
        )
        if is_punctuation(char) and not inner_apostrophe:
            phrases.append(text[start:index])
            start = index + 1
    phrases.append(text[start:])
    return [phrase for phrase in phrases if phrase.strip()]


def split_words(text: str) -> list[str]:
    """The words of a transcript: lower-case, punctuation stripped, split at whitespace."""
    return [word for phrase in split_phrases(text) for word in phrase.split()]
