"""The unified, multi-scale label space shared by every corpus.

- **Category**: one emotion vocabulary (:data:`CATEGORIES`). Corpus preparers map their own
  codes onto it; a recipe's :class:`ClassMap` chooses the classes it trains and scores,
  merges some (IEMOCAP 4-class: ``excited -> happy``) and drops the rest.
- **Intensity**: an ordinal scale (:data:`INTENSITY_LEVELS`), 0 none (neutral speech) to 3 high.
- **Derived scales**: coarser scales computed from the category (:data:`DERIVED_SCALES`), so
  one model is scored at every scale it supports.
- **Gender** (``m``/``f``, Kaldi's spk2gender) and **naturalness** (``acted``/``natural``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from speecheq.errors import SpeechEQError

CATEGORIES: tuple[str, ...] = (
    "neutral",
    "happy",
    "angry",
    "sad",
    "fear",
    "surprise",
    "disgust",
    "calm",
    "boredom",
    "excited",
    "frustrated",
    "contempt",
    "other",
)

INTENSITY_LEVELS: dict[int, str] = {0: "none", 1: "low", 2: "medium", 3: "high"}

GENDERS: tuple[str, ...] = ("m", "f")

NATURALNESS: tuple[str, ...] = ("acted", "natural")

SENTIMENT: dict[str, str] = {
    "neutral": "neutral",
    "calm": "neutral",
    "happy": "positive",
    "excited": "positive",
    "surprise": "positive",
    "angry": "negative",
    "sad": "negative",
    "fear": "negative",
    "disgust": "negative",
    "boredom": "negative",
    "frustrated": "negative",
    "contempt": "negative",
}
"""Category -> sentiment; ``other`` has no sentiment."""

DERIVED_SCALES: dict[str, dict[str, str]] = {"sentiment": SENTIMENT}
"""Every coarser scale derived from the category, by name."""


def check_category(value: str, where: str) -> str:
    """Return ``value`` if it is a category of the label space, else raise naming ``where``."""
    if value not in CATEGORIES:
        raise SpeechEQError(
            f"{where}: unknown emotion category '{value}' (known: {', '.join(CATEGORIES)})"
        )
    return value


def check_intensity(value: str, where: str) -> int:
    """Parse an intensity level (``0``..``3``), raising naming ``where`` if it is not one."""
    if value.strip().isdigit() and int(value) in INTENSITY_LEVELS:
        return int(value)
    levels = ", ".join(str(level) for level in INTENSITY_LEVELS)
    raise SpeechEQError(f"{where}: unknown intensity level '{value}' (known: {levels})")


def check_gender(value: str, where: str) -> str:
    """Return ``value`` if it is ``m`` or ``f``, else raise naming ``where``."""
    if value not in GENDERS:
        raise SpeechEQError(f"{where}: unknown gender '{value}' (known: m, f)")
    return value


def check_naturalness(value: str, where: str) -> str:
    """Return ``value`` if it is ``acted`` or ``natural``, else raise naming ``where``."""
    if value not in NATURALNESS:
        raise SpeechEQError(f"{where}: unknown naturalness '{value}' (known: acted, natural)")
    return value


AVD_DIMENSIONS: tuple[str, ...] = ("arousal", "valence", "dominance")
"""The columns of ``utt2avd``, in order."""


def parse_avd(value: str, where: str) -> tuple[float, float, float]:
    """Parse ``arousal valence dominance`` (three finite numbers), raising naming ``where``."""
    try:
        numbers = tuple(float(part) for part in value.split())
    except ValueError:
        numbers = ()
    if len(numbers) != len(AVD_DIMENSIONS) or not all(math.isfinite(x) for x in numbers):
        raise SpeechEQError(
            f"{where}: expected three finite numbers (arousal valence dominance), got '{value}'"
        )
    return numbers  # type: ignore[return-value]


def derive(scale: str, category: str) -> str | None:
    """The value of ``category`` on a derived scale, or None where the scale does not cover it."""
    return DERIVED_SCALES[scale].get(category)


@dataclass(frozen=True)
class ClassMap:
    """The classes a recipe trains and scores: which categories, and which merge into which.

    ``classes`` are the target classes in index order. ``merge`` maps other categories onto
    one of them. Any other category is dropped (``map`` returns None).
    """

    classes: tuple[str, ...]
    merge: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.classes:
            raise SpeechEQError("the class list is empty")
        if len(set(self.classes)) != len(self.classes):
            raise SpeechEQError(f"the class list {list(self.classes)} has duplicates")
        for name in self.classes:
            check_category(name, "class list")
        for source, target in self.merge.items():
            check_category(source, "class merge")
            if source in self.classes:
                raise SpeechEQError(
                    f"class merge: '{source} -> {target}' merges a class that is also in the "
                    f"class list {list(self.classes)}; list it in one of the two"
                )
            if target not in self.classes:
                raise SpeechEQError(
                    f"class merge: '{source} -> {target}' targets a class not in "
                    f"{list(self.classes)}"
                )

    @classmethod
    def build(cls, classes: Iterable[str], merge: Mapping[str, str] | None = None) -> ClassMap:
        """Build from plain lists/dicts (as read from a YAML config)."""
        return cls(tuple(classes), dict(merge or {}))

    def map(self, category: str) -> str | None:
        """The target class of ``category``, or None if it is dropped."""
        if category in self.classes:
            return category
        return self.merge.get(category)

    def index(self, category: str) -> int | None:
        """The class index of ``category`` after merging, or None if it is dropped."""
        target = self.map(category)
        return None if target is None else self.classes.index(target)
