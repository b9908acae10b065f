"""Speaker identity over the training speakers, an auxiliary utterance classification.

Latif et al. (2020) learn speaker recognition beside emotion: speaker labels exist for far more
speech than emotion labels do. The inventory is the training set's speakers (sorted), saved in
the model file. ``loss: aam`` replaces the linear head by a cosine classifier trained with the
additive angular margin softmax (AAM-softmax, Deng et al. 2019): the target speaker's logit is
``scale * cos(theta + margin)`` and every other speaker's ``scale * cos(theta)``, where
``theta`` is the angle between the embedding and the speaker's weight vector, so a speaker's
utterances must lie within a margin of its direction, not merely closest to it.

``reversal`` > 0 turns the task around: the speaker is learnt adversarially, behind a gradient
reversal (:mod:`speecheq.tasks.adversarial`), so that the shared embedding forgets the training
voices instead of learning them (speaker-invariant emotion features).

Speaker-independent protocols test on speakers the model never saw: every utterance is decoded
(``hyp/utt2spk``), but only those whose speaker is in the inventory have a reference and are
scored, which is said whenever some are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional

from speecheq.console import note
from speecheq.data.datadir import DataDir
from speecheq.models import Dims, Encoded, ModelOutput
from speecheq.tasks.adversarial import AdversarialHead
from speecheq.tasks.base import Batch, TaskContext, TaskOptions, masked_mean
from speecheq.tasks.classification import ClassificationTask

ADVERSARY_WIDTH = 64
"""Hidden width of the adversarial speaker classifier."""


@dataclass(frozen=True)
class SpeakerOptions(TaskOptions):
    loss: Literal["softmax", "aam"] = "softmax"
    """``softmax``: a linear head and cross-entropy; ``aam``: AAM-softmax on a cosine head.
    Its logits are ``scale`` times the cosines, and so are its early gradients: beside other
    tasks, weigh it low (e.g. 0.01-0.05), or it dominates the shared encoder's first steps."""
    margin: float = 0.2
    """AAM-softmax: the additive angular margin, in radians."""
    scale: float = 30.0
    """AAM-softmax: the scale of the cosine logits."""
    reversal: float = 0.0
    """0: the speaker is an auxiliary task; > 0: an adversary, behind a gradient reversal of
    this strength (the embedding is pushed to hide the speaker)."""
    ramp_steps: int = 0
    """Adversarial: training steps over which the reversal ramps up from 0 (0: full at once)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.margin < math.pi / 2 or self.scale <= 0:
            raise ValueError("tasks.speaker.margin must be in [0, pi/2), scale positive")
        if self.reversal < 0 or self.ramp_steps < 0:
            raise ValueError("tasks.speaker.reversal and ramp_steps must not be negative")
        if self.reversal and self.loss == "aam":
            raise ValueError("tasks.speaker: an adversarial speaker head takes loss: softmax")


class CosineHead(nn.Module):
    """The cosine of the angle between the utterance embedding and each class's weight vector."""

    def __init__(self, dims: Dims, classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, dims.embedding_dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, encoded: Encoded) -> torch.Tensor:
        embedding = functional.normalize(encoded.embedding.float(), dim=-1)
        return embedding @ functional.normalize(self.weight.float(), dim=-1).T


def aam_logits(
    cosine: torch.Tensor, target: torch.Tensor, margin: float, scale: float
) -> torch.Tensor:
    """AAM-softmax logits: ``scale * cos(theta + margin)`` for the target class, else
    ``scale * cos(theta)``.

    Where ``theta + margin`` would pass pi, ``cos(theta) - margin * sin(margin)`` stands in for
    it (as in ArcFace), so the target logit keeps falling as ``theta`` grows.
    """
    cosine = cosine.clamp(-1.0, 1.0)
    sine = (1.0 - cosine.square()).clamp(min=1e-9).sqrt()
    shifted = cosine * math.cos(margin) - sine * math.sin(margin)
    shifted = torch.where(
        cosine > math.cos(math.pi - margin), shifted, cosine - margin * math.sin(margin)
    )
    is_target = functional.one_hot(target, cosine.shape[-1]).bool()
    return scale * torch.where(is_target, shifted, cosine)


class SpeakerTask(ClassificationTask):
    """The utterance's speaker (``utt2spk``) among the training speakers; scored by WA and UA."""

    name = "speaker"
    label_table = "utt2spk"
    decode_table = "utt2spk"
    options_type = SpeakerOptions

    @classmethod
    def take_inventory(
        cls, options: TaskOptions, train: DataDir, context: TaskContext
    ) -> dict[str, Any]:
        return {"classes": train.speakers}

    @property
    def aam(self) -> bool:
        assert isinstance(self.options, SpeakerOptions)
        return self.options.loss == "aam"

    def references(self, data: DataDir) -> dict[str, str]:
        known = set(self.classes)
        references = {utt: spk for utt, spk in data.utt2spk.items() if spk in known}
        unseen = len(data.utt2spk) - len(references)
        if unseen:
            note(
                f"speaker: {unseen} of {len(data.utt2spk)} utterances are of speakers the model "
                "was not trained on; they are decoded but not scored"
            )
        return references

    def build_head(self, dims: Dims) -> nn.Module:
        options = self.options
        assert isinstance(options, SpeakerOptions)
        if options.reversal:
            return AdversarialHead(
                dims, len(self.classes), options.reversal, options.ramp_steps, ADVERSARY_WIDTH
            )
        return CosineHead(dims, len(self.classes)) if self.aam else super().build_head(dims)

    def loss(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        if not self.aam:
            return super().loss(output, batch)
        assert isinstance(self.options, SpeakerOptions)
        target = batch.targets[self.name]
        logits = aam_logits(
            output.heads[self.name].float(), target.values, self.options.margin, self.options.scale
        )
        losses = functional.cross_entropy(logits, target.values, reduction="none")
        return masked_mean(losses, target.mask)
