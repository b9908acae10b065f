"""Stage 3: phoneme lexicons and token lists (pinyin, CMUdict, eSpeak NG, BPE) for CTC."""

from speecheq.lexicon.build import LexiconReport, build_lexicon, read_tokens

__all__ = ["LexiconReport", "build_lexicon", "read_tokens"]
