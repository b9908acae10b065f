"""Corpus-adversarial training: a corpus classifier behind a gradient-reversal layer.

The head classifies the utterance embedding into the training corpora (``utt2corpus``), as in
domain-adversarial training (Ganin et al. 2016): its own weights learn to tell the corpora
apart, while the gradient that reaches the shared encoder is reversed and scaled by the
reversal strength, so the encoder learns an embedding from which the corpus is hard to tell.
The strength can ramp up from 0 over the first ``ramp_steps`` training steps
(``2 / (1 + exp(-10 p)) - 1``, ``p`` the share of the ramp done), so that the embedding is
first shaped by the other tasks.

Its score is the corpus accuracy: the lower, the more corpus-invariant the embedding (chance is
one over the number of corpora). Utterances of a corpus the model was not trained on have no
reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from speecheq.console import warn
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.models import Dims
from speecheq.tasks.adversarial import AdversarialHead
from speecheq.tasks.base import TaskContext, TaskOptions
from speecheq.tasks.classification import ClassificationTask


@dataclass(frozen=True)
class CorpusOptions(TaskOptions):
    reversal: float = 1.0
    """How strongly the reversed gradient pushes the encoder (lambda of Ganin et al.)."""
    ramp_steps: int = 0
    """Training steps over which the reversal strength ramps up from 0 (0: full from the start)."""
    hidden_dim: int = 64
    """Hidden width of the two-layer corpus classifier."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reversal < 0 or self.ramp_steps < 0 or self.hidden_dim < 1:
            raise ValueError(
                "tasks.corpus.reversal and ramp_steps must not be negative, hidden_dim positive"
            )


class CorpusTask(ClassificationTask):
    """The corpus of each utterance (``utt2corpus``), learned adversarially; see the module."""

    name = "corpus"
    label_table = "utt2corpus"
    decode_table = "utt2corpus"
    options_type = CorpusOptions
    maximize = False

    @classmethod
    def take_inventory(
        cls, options: TaskOptions, train: DataDir, context: TaskContext
    ) -> dict[str, Any]:
        corpora = sorted(set(train.get("utt2corpus").values()))
        if not corpora:
            raise SpeechEQError(
                "the corpus-adversarial task needs utt2corpus in the training set "
                "(written by 'speecheq data combine')"
            )
        if len(corpora) == 1:
            warn(
                f"training set: every utterance is of corpus '{corpora[0]}' (utt2corpus), so "
                "the corpus-adversarial task has nothing to tell apart and does nothing"
            )
        return {"classes": corpora}

    def references(self, data: DataDir) -> dict[str, str]:
        known = set(self.classes)
        return {utt: name for utt, name in data.get("utt2corpus").items() if name in known}

    def build_head(self, dims: Dims) -> nn.Module:
        options = self.options
        assert isinstance(options, CorpusOptions)
        return AdversarialHead(
            dims, len(self.classes), options.reversal, options.ramp_steps, options.hidden_dim
        )
