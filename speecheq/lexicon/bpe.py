"""Byte-pair-encoding tokens: a sentencepiece model trained on the normalised transcripts."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import sentencepiece as spm

from speecheq.errors import SpeechEQError
from speecheq.lexicon.text import BLANK, UNK


def train_bpe(sentences: Sequence[str], nbpe: int) -> bytes:
    """Train a BPE model of ``nbpe`` pieces and return it serialised.

    Piece 0 is ``<blank>`` and piece 1 ``<unk>`` (no sentence-boundary pieces), so the model's
    ids are the CTC token ids. Every character of the training text gets a piece.
    """
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            model_type="bpe",
            vocab_size=nbpe,
            character_coverage=1.0,
            user_defined_symbols=[BLANK],
            unk_id=1,
            unk_piece=UNK,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            num_threads=1,
            minloglevel=2,
        )
    except RuntimeError as err:
        most = re.search(r"value <= (\d+)", str(err))
        least = re.search(r"required_chars\. \d+ vs (\d+)", str(err))
        if most:
            problem = f"is more pieces than this text supports (at most {most[1]})"
        elif least:
            problem = f"is fewer pieces than this text has characters (at least {least[1]})"
        else:
            problem = f"cannot be trained ({str(err).rsplit('] ', 1)[-1]})"
        raise SpeechEQError(f"a BPE model of --nbpe {nbpe} {problem}") from None
    return model.getvalue()


class BpePronouncer:
    """Split words into the pieces of a BPE model (a piece it does not know is ``<unk>``)."""

    def __init__(self, model: bytes) -> None:
        self.processor = spm.SentencePieceProcessor(model_proto=model)

    @property
    def pieces(self) -> list[str]:
        """The model's pieces; index = id."""
        return [self.processor.id_to_piece(i) for i in range(self.processor.get_piece_size())]

    def __call__(self, words: Sequence[str]) -> dict[str, tuple[str, ...] | None]:
        return {
            word: tuple(self.processor.id_to_piece(i) for i in self.processor.encode(word))
            for word in words
        }
