"""The unified label space: categories, intensity, derived scales, class maps."""

from __future__ import annotations

import pytest

from speecheq.errors import SpeechEQError
from speecheq.labels import CATEGORIES, SENTIMENT, ClassMap, check_category, check_intensity, derive


def test_iemocap_four_class_map_merges_and_drops() -> None:
    classes = ClassMap.build(["neutral", "happy", "angry", "sad"], {"excited": "happy"})
    assert classes.index("excited") == classes.index("happy") == 1
    assert classes.map("frustrated") is None and classes.index("frustrated") is None


def test_class_map_rejects_bad_configs() -> None:
    with pytest.raises(SpeechEQError, match="unknown emotion category 'joy'"):
        ClassMap.build(["neutral", "joy"])
    with pytest.raises(SpeechEQError, match="targets a class not in"):
        ClassMap.build(["neutral", "sad"], {"excited": "happy"})
    with pytest.raises(SpeechEQError, match="duplicates"):
        ClassMap.build(["sad", "sad"])


def test_unknown_values_name_where_they_are() -> None:
    with pytest.raises(SpeechEQError, match="utt7: unknown emotion category 'joy'"):
        check_category("joy", "utt7")
    with pytest.raises(SpeechEQError, match="utt7: unknown intensity level '5'"):
        check_intensity("5", "utt7")
    assert check_intensity("3", "utt7") == 3


def test_every_category_but_other_has_a_sentiment() -> None:
    assert set(SENTIMENT) == set(CATEGORIES) - {"other"}
    assert derive("sentiment", "excited") == "positive"
    assert derive("sentiment", "other") is None
