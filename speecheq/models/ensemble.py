"""Several trained networks of one config run as one model (an ensemble over seeds).

Each member runs on the same features; each head's output is combined by the rule its task
gives (:meth:`speecheq.tasks.Task.average`: for a classification, the log of the members' mean
posteriors, so the ensemble decodes, exports and runs like any single network). The embedding
is the members' embeddings joined.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from speecheq.models.frontends import InputSpec
from speecheq.models.model import Encoded, ModelOutput, SpeechEQModel

Average = Callable[[Sequence[torch.Tensor]], torch.Tensor]
"""How a task combines its members' head outputs into the ensemble's."""


class EnsembleModel(nn.Module):
    """Members of one architecture and head set, and each head's averaging rule."""

    def __init__(self, members: Sequence[SpeechEQModel], averages: Mapping[str, Average]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.averages = dict(averages)

    @property
    def first(self) -> SpeechEQModel:
        member = self.members[0]
        assert isinstance(member, SpeechEQModel)
        return member

    @property
    def spec(self) -> InputSpec:
        return self.first.spec

    @property
    def encoder(self) -> nn.Module:
        """The first member's encoder (what its front end reads is every member's)."""
        return self.first.encoder

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> ModelOutput:
        outputs = [member(feats, lengths) for member in self.members]
        first = outputs[0].encoded
        embedding = torch.cat([output.encoded.embedding for output in outputs], dim=-1)
        heads = {
            name: average([output.heads[name] for output in outputs])
            for name, average in self.averages.items()
        }
        return ModelOutput(Encoded(first.frames, first.lengths, embedding), heads)
