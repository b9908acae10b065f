"""Stage 3: turn a data directory's transcripts into CTC token sequences and a lang directory.

Writes ``<lang-dir>/tokens.txt`` (``<symbol> <id>``: ``<blank> 0``, ``<unk> 1``, then the
phones in sorted order, or the pieces of the BPE model in its own id order so that its ids and
these agree), ``lexicon.txt`` (``word token token ...``, sorted), ``oov.txt`` (``word count``,
most frequent first) and, for BPE tokens, ``bpe.model``; and ``<data-dir>/tokens`` (``utt
token token ...``; an utterance without text or without words has no line). An
out-of-vocabulary word is one ``<unk>`` token in its transcript.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from speecheq.console import progress_bar
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.fileio import atomic_write, read_lines, write_table
from speecheq.lexicon import mandarin
from speecheq.lexicon.bpe import BpePronouncer, train_bpe
from speecheq.lexicon.english import EnglishPronouncer
from speecheq.lexicon.espeak import EspeakPronouncer, espeak_voice
from speecheq.lexicon.text import BLANK, UNK, Word, WordPronouncer, split_words

TOKEN_TYPES = ("phone", "bpe")
MANDARIN = "zh"
ENGLISH = "en"
BATCH = 1000
"""Words per pronouncer call: large enough to batch eSpeak NG, small enough for progress."""


@dataclass
class LexiconReport:
    """What :func:`build_lexicon` wrote and what it could not pronounce."""

    token_type: str
    transcribed: int
    """Utterances with a line in ``<data-dir>/tokens``."""
    without_text: int
    """Utterances without text, or whose text has no words (no tokens line)."""
    languages: dict[str, int]
    """Transcribed utterances per language (phone tokens only)."""
    lexicon_entries: int
    tokens: list[str]
    """The token list; index = id."""
    oov: Counter[str]
    """Out-of-vocabulary word -> occurrences."""

    @property
    def oov_by_count(self) -> list[tuple[str, int]]:
        """The OOV words and their counts, most frequent first (ties by word), as in oov.txt."""
        return sorted(self.oov.items(), key=lambda item: (-item[1], item[0]))


def build_lexicon(
    data_dir: str | Path,
    lang_dir: str | Path,
    token_type: str = "phone",
    nbpe: int = 500,
    language: str | None = None,
) -> LexiconReport:
    """Tokenise the ``text`` of ``data_dir`` and write the lang directory ``lang_dir``.

    ``token_type="phone"``: per utterance language (``utt2lang``, else ``language``), Mandarin
    (``zh``) as pinyin initials and tonal finals, English as CMUdict ARPAbet (eSpeak NG for the
    words CMUdict lacks), any other language as eSpeak NG IPA phones. ``token_type="bpe"``: a
    sentencepiece BPE model of ``nbpe`` pieces trained on the normalised text.
    """
    data_dir, lang_dir = Path(data_dir), Path(lang_dir)
    if token_type not in TOKEN_TYPES:
        raise SpeechEQError(f"unknown token type '{token_type}' (known: {', '.join(TOKEN_TYPES)})")
    data = DataDir.load(data_dir)
    if not (data_dir / "text").is_file():
        raise SpeechEQError(f"{data_dir}: there is no text file to build a lexicon from")
    texts = dict(sorted(data.get("text").items()))
    if not any(split_words(text) for text in texts.values()):
        raise SpeechEQError(f"{data_dir / 'text'}: no utterance has any words")
    model: bytes | None = None
    pieces: list[str] = []
    languages: Counter[str] = Counter()
    if token_type == "phone":
        utt2lang = _utterance_languages(data, data_dir, list(texts), language)
        transcripts = _phone_transcripts(texts, utt2lang)
        languages.update(utt2lang[utt] for utt, words in transcripts.items() if words)
    else:
        sentences = {utt: split_words(text) for utt, text in texts.items()}
        model = train_bpe([" ".join(words) for words in sentences.values() if words], nbpe)
        bpe = BpePronouncer(model)
        pieces = bpe.pieces
        transcripts = _transcribe_words(sentences, bpe, "bpe")
    transcripts = {utt: words for utt, words in transcripts.items() if words}
    lexicon = sorted(
        {
            f"{word.text} {' '.join(word.citation)}"
            for words in transcripts.values()
            for word in words
            if word.citation is not None
        }
    )
    oov = Counter(word.text for words in transcripts.values() for word in words if word.is_oov)
    report = LexiconReport(
        token_type=token_type,
        transcribed=len(transcripts),
        without_text=len(data.utts) - len(transcripts),
        languages=dict(sorted(languages.items())),
        lexicon_entries=len(lexicon),
        tokens=pieces or _phone_tokens(transcripts),
        oov=oov,
    )
    _write_lang_dir(lang_dir, report, lexicon, model)
    write_table(
        data_dir / "tokens",
        {
            utt: " ".join(token for word in words for token in (word.spoken or (UNK,)))
            for utt, words in transcripts.items()
        },
    )
    return report


def read_tokens(lang_dir: str | Path) -> list[str]:
    """The token list of a lang directory's ``tokens.txt``; index = id."""
    path = Path(lang_dir) / "tokens.txt"
    tokens: dict[int, str] = {}
    for line in read_lines(path):
        if not line.value.isdigit() or int(line.value) in tokens:
            raise SpeechEQError(
                f"{path}:{line.lineno}: expected '<symbol> <id>' with a new integer id, "
                f"got '{line.key} {line.value}'"
            )
        tokens[int(line.value)] = line.key
    if sorted(tokens) != list(range(len(tokens))):
        raise SpeechEQError(f"{path}: the ids are not 0 to {len(tokens) - 1}")
    if tokens.get(0) != BLANK or tokens.get(1) != UNK:
        raise SpeechEQError(f"{path}: ids 0 and 1 must be {BLANK} and {UNK}")
    return [tokens[index] for index in range(len(tokens))]


def _utterance_languages(
    data: DataDir, data_dir: Path, utts: list[str], default: str | None
) -> dict[str, str]:
    utt2lang = data.get("utt2lang")
    if not utt2lang and default is None:
        raise SpeechEQError(
            f"{data_dir} has no utt2lang; give the language of its text with --language "
            "(e.g. zh, en, de)"
        )
    languages = {}
    for utt in utts:
        if utt not in utt2lang and default is None:
            raise SpeechEQError(
                f"{data_dir / 'utt2lang'}: utterance '{utt}' has text but no language; "
                "add it or give --language"
            )
        languages[utt] = utt2lang.get(utt, default)
    for code in sorted({*languages.values(), *([default] if default else [])}):
        if code != MANDARIN and espeak_voice(code) is None:
            users = [utt for utt, utt_code in languages.items() if utt_code == code]
            where = f"utterance '{users[0]}'" if users else "--language"
            raise SpeechEQError(
                f"{where}: language '{code}' is neither Mandarin (zh) nor one that eSpeak NG knows"
            )
    return languages


def _phone_transcripts(
    texts: Mapping[str, str], utt2lang: Mapping[str, str]
) -> dict[str, list[Word]]:
    transcripts: dict[str, list[Word]] = {}
    for code in sorted(set(utt2lang.values())):
        utts = [utt for utt in texts if utt2lang[utt] == code]
        if code == MANDARIN:
            unique = sorted({texts[utt] for utt in utts})
            words: dict[str, list[Word]] = {}
            with progress_bar("zh: characters to pinyin", len(unique)) as advance:
                for text in unique:
                    words[text] = mandarin.transcribe(text)
                    advance(1)
            transcripts.update((utt, words[texts[utt]]) for utt in utts)
        else:
            pronouncer = EnglishPronouncer() if code == ENGLISH else EspeakPronouncer(code)
            sentences = {utt: split_words(texts[utt]) for utt in utts}
            transcripts.update(_transcribe_words(sentences, pronouncer, code))
    return transcripts


def _transcribe_words(
    sentences: Mapping[str, list[str]], pronounce: WordPronouncer, label: str
) -> dict[str, list[Word]]:
    """Pronounce the unique words of the sentences in batches, then rebuild each sentence."""
    unique = sorted({word for words in sentences.values() for word in words})
    tokens: dict[str, tuple[str, ...] | None] = {}
    with progress_bar(f"{label}: pronouncing words", len(unique)) as advance:
        for start in range(0, len(unique), BATCH):
            batch = unique[start : start + BATCH]
            tokens.update(pronounce(batch))
            advance(len(batch))
    return {
        utt: [Word(word, tokens[word], tokens[word]) for word in words]
        for utt, words in sentences.items()
    }


def _phone_tokens(transcripts: Mapping[str, list[Word]]) -> list[str]:
    """``<blank>``, ``<unk>``, then every phone of the transcripts and the lexicon, sorted."""
    phones = {
        phone
        for words in transcripts.values()
        for word in words
        for pronunciation in (word.citation, word.spoken)
        for phone in pronunciation or ()
    }
    return [BLANK, UNK, *sorted(phones)]


def _write_lang_dir(
    lang_dir: Path, report: LexiconReport, lexicon: list[str], model: bytes | None
) -> None:
    with atomic_write(lang_dir / "tokens.txt") as out:
        out.writelines(f"{token} {index}\n" for index, token in enumerate(report.tokens))
    with atomic_write(lang_dir / "lexicon.txt") as out:
        out.writelines(f"{entry}\n" for entry in lexicon)
    with atomic_write(lang_dir / "oov.txt") as out:
        out.writelines(f"{word} {count}\n" for word, count in report.oov_by_count)
    if model is not None:
        with atomic_write(lang_dir / "bpe.model", "wb") as out:
            out.write(model)
    else:
        (lang_dir / "bpe.model").unlink(missing_ok=True)
