"""``speecheq lexicon``: stage 3, transcripts to phone or BPE token sequences and a lang dir."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speecheq.console import print_table, warn


def lexicon_command(
    data_dir: Annotated[
        Path, typer.Argument(help="The data directory: its text (and utt2lang) are read.")
    ],
    lang_dir: Annotated[
        Path, typer.Argument(help="Where to write tokens.txt, lexicon.txt and oov.txt.")
    ],
    token_type: Annotated[
        str, typer.Option(help="phone (pronunciations) or bpe (sentencepiece pieces).")
    ] = "phone",
    nbpe: Annotated[
        int,
        typer.Option(
            help="With `--token-type bpe`: the number of pieces, `<blank>` and `<unk>` included."
        ),
    ] = 500,
    language: Annotated[
        str | None,
        typer.Option(
            help="Language (ISO 639-1: zh, en, de, ...) of the utterances utt2lang does not cover."
        ),
    ] = None,
) -> None:
    """Turn each utterance's text into tokens for the phoneme-recognition (CTC) task.

    Phone tokens: Mandarin (zh) as pinyin initials and tonal finals with tone sandhi, English
    (en) as CMUdict ARPAbet (eSpeak NG for words CMUdict lacks), other languages as eSpeak NG
    IPA phones. BPE tokens: a sentencepiece model trained on the text (lang-dir/bpe.model).
    Writes lang-dir/tokens.txt (`<blank>` 0, `<unk>` 1, ...), lexicon.txt, oov.txt and
    data-dir/tokens; an out-of-vocabulary word becomes `<unk>` and is listed.
    """
    # Imported here: pypinyin and phonemizer take seconds to load, which other commands skip.
    from speecheq.lexicon import build_lexicon

    report = build_lexicon(data_dir, lang_dir, token_type, nbpe=nbpe, language=language)
    occurrences = sum(report.oov.values())
    rows: list[tuple[str, object]] = [
        ("utterances transcribed", report.transcribed),
        ("utterances without text (no tokens line)", report.without_text),
        *((f"utterances in language '{code}'", n) for code, n in report.languages.items()),
        ("lexicon entries", report.lexicon_entries),
        ("tokens (with <blank> and <unk>)", len(report.tokens)),
        ("out-of-vocabulary words", len(report.oov)),
        ("out-of-vocabulary occurrences", occurrences),
    ]
    print_table(f"{report.token_type} tokens: {data_dir} -> {lang_dir}", ["what", "count"], rows)
    if report.oov:
        warn(
            f"{len(report.oov)} out-of-vocabulary word(s), {occurrences} occurrence(s), "
            f"became <unk> (listed in {lang_dir / 'oov.txt'})"
        )
        print_table("out-of-vocabulary words", ["word", "count"], report.oov_by_count)
