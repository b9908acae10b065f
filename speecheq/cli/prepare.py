"""``speecheq prepare <corpus>``: read a corpus as distributed into a Kaldi-style data directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speecheq.console import print_table
from speecheq.corpora import corpus_names, prepare
from speecheq.data.ops import describe


def prepare_command(
    corpus: Annotated[str, typer.Argument(help="The corpus: " + ", ".join(corpus_names()) + ".")],
    data_dir: Annotated[Path, typer.Argument(help="Where to write the data directory.")],
    corpus_dir: Annotated[
        Path, typer.Option(help="The corpus as distributed (or, for csv, its table).")
    ],
) -> None:
    """Prepare a corpus: map its labels onto the unified label space and write a data directory.

    Writes wav.scp, utt2spk, spk2utt and every label table the corpus supports (utt2emo,
    utt2intensity, spk2gender, utt2nat, utt2lang, utt2group, utt2split, utt2avd, text), then
    prints the counts per speaker and class.
    """
    data = prepare(corpus, corpus_dir)
    data.save(data_dir)
    print_table(f"{corpus} -> {data_dir}", ["what", "value", "utterances"], describe(data))
