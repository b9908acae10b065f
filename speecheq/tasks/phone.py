"""Phoneme (or BPE piece) recognition with CTC on encoder frames; greedy decoding.

The CTC head reads the frames after the encoder's first block (``layer: 1``, intermediate CTC
after Lee and Watanabe, 2021), or after its N-th, or its output (``layer: 0``). On a low block
the phone task shapes the lower layers and leaves the blocks above to the utterance tasks.

The token inventory is the lang directory's ``tokens.txt`` (``<symbol> <id>`` per line, ids
0..V-1, ``<blank>`` 0, ``<unk>`` 1); the references are the data directory's ``tokens`` table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.fileio import read_lines
from speecheq.metrics import token_error_rate
from speecheq.models import Dims, FrameLinear, ModelOutput
from speecheq.tasks.base import (
    Batch,
    Target,
    Task,
    TaskContext,
    TaskOptions,
    TaskScores,
    masked_mean,
)

BLANK = "<blank>"


@dataclass(frozen=True)
class PhoneOptions(TaskOptions):
    layer: int = 1
    """The encoder block whose frames the CTC head reads (1: the first, leaving the blocks
    above to emotion); 0: the encoder's output (ECAPA: its blocks joined)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layer < 0:
            raise ValueError(f"tasks.phone.layer must not be negative, got {self.layer}")


def read_token_list(path: Path) -> list[str]:
    """The symbols of a ``tokens.txt`` in id order; raise unless ids are 0..V-1 with blank 0."""
    symbols: dict[int, str] = {}
    for line in read_lines(path):
        if not line.value.isdigit() or int(line.value) in symbols:
            raise SpeechEQError(f"{path}:{line.lineno}: expected '<symbol> <unique id>'")
        symbols[int(line.value)] = line.key
    if sorted(symbols) != list(range(len(symbols))):
        raise SpeechEQError(f"{path}: token ids must run from 0 to {len(symbols) - 1} without gaps")
    if symbols.get(0) != BLANK:
        raise SpeechEQError(f"{path}: token 0 must be '{BLANK}'")
    return [symbols[index] for index in range(len(symbols))]


def greedy_ctc(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """Greedy CTC decoding: best token per frame, repeats merged, blanks (id 0) removed."""
    best = log_probs.argmax(dim=-1).cpu()
    decoded = []
    for row, length in zip(best, lengths.tolist(), strict=True):
        tokens = torch.unique_consecutive(row[:length])
        decoded.append([token for token in tokens.tolist() if token != 0])
    return decoded


class PhoneTask(Task):
    """CTC over ``tokens.txt`` on every encoder frame; scored by token error rate."""

    name = "phone"
    options_type = PhoneOptions
    label_table = "tokens"
    decode_table = "tokens"
    primary_metric = "TER"
    maximize = False

    @classmethod
    def take_inventory(
        cls, options: TaskOptions, train: DataDir, context: TaskContext
    ) -> dict[str, Any]:
        if context.lang_dir is None:
            raise SpeechEQError(
                "the phone task needs a lang directory (--lang-dir) with tokens.txt"
            )
        return {"tokens": read_token_list(context.lang_dir / "tokens.txt")}

    @property
    def tokens(self) -> list[str]:
        return list(self.inventory["tokens"])

    def encode(self, value: str, where: str) -> list[int]:
        ids = {symbol: index for index, symbol in enumerate(self.tokens)}
        encoded = []
        for symbol in value.split():
            if symbol not in ids or symbol == BLANK:
                raise SpeechEQError(f"{where}: token '{symbol}' is not in tokens.txt")
            encoded.append(ids[symbol])
        return encoded

    def collate(self, targets: Sequence[Any | None]) -> Target:
        sequences = [t or [] for t in targets]
        lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
        values = torch.zeros(len(sequences), max(1, int(lengths.max())), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            values[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        return Target(values, torch.tensor([t is not None for t in targets]), lengths)

    def build_head(self, dims: Dims) -> nn.Module:
        assert isinstance(self.options, PhoneOptions)
        return FrameLinear(dims, len(self.tokens), self.options.layer)

    def loss(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        target = batch.targets[self.name]
        assert target.lengths is not None
        log_probs = functional.log_softmax(output.heads[self.name].float(), dim=-1)
        losses = functional.ctc_loss(
            log_probs.transpose(0, 1),
            target.values,
            output.encoded.lengths,
            target.lengths,
            blank=0,
            reduction="none",
            zero_infinity=True,
        )
        return masked_mean(losses / target.lengths.clamp(min=1), target.mask)

    def hypotheses(self, output: ModelOutput) -> dict[str, list[str]]:
        decoded = greedy_ctc(output.heads[self.name], output.encoded.lengths)
        tokens = self.tokens
        return {self.decode_table: [" ".join(tokens[i] for i in sequence) for sequence in decoded]}

    @classmethod
    def parse(cls, value: str, where: str) -> tuple[str, ...]:
        return tuple(value.split())

    @classmethod
    def score(
        cls, refs: Sequence[Any], hyps: Sequence[Any], classes: Sequence[str] = ()
    ) -> TaskScores:
        if not any(refs):
            return TaskScores({}, notes=[f"{cls.name}: the references have no tokens"])
        return TaskScores({f"{cls.name} TER": token_error_rate(refs, hyps)})
