"""The semi-supervised adversarial autoencoder (AAE) of Makhzani et al. (2016) on the shared
encoder, as Latif et al. (2020) use it to learn emotion from unlabeled speech.

An utterance's latent code is ``[y, z]``:

- ``y``, the categorical part, is the **emotion task's** class posteriors (the softmax of its
  head), so the AAE shapes the emotion classifier itself; this task needs the emotion task.
- ``z``, the continuous style part, is this task's head: a linear map of the utterance embedding
  (decoded into ``hyp/utt2style``).

A decoder reconstructs, from ``[y, z]``, the utterance-level statistics of the normalised input
features: the mean and the standard deviation of each feature dimension over the frames. Not
the frames: the code is one vector per utterance, and a frame sequence of the right length and
timing cannot come out of it without a sequence decoder told the timing, which would then carry
most of the information itself; the statistics are what a fixed-size code can hold, they are
cheap, and they keep the level, spectral-tilt and variability cues emotion depends on. Two
discriminators tell the codes from samples of the priors: ``z`` from N(0, I), ``y`` from a
uniform categorical (one-hot) distribution. Decoder and discriminators are training-only
modules: kept in checkpoints, not in the model file.

Every batch (labeled and unlabeled utterances alike: :attr:`AAETask.uses_unlabeled`) goes
through the phases of Makhzani et al.:

1. **the encoder** (the trainer's shared step), in one weighted step: the supervised losses
   (the emotion task's cross-entropy on the labeled utterances, and the other tasks'), plus
   this task's loss, weighted by ``weight``: the reconstruction error (weighted by
   ``reconstruction_weight``) and the encoder as the generator, its codes scored as prior
   samples by the discriminators (the non-saturating GAN loss);
2. **the decoder** (phase ``aae_decoder``), on the reconstruction error of the codes;
3. **the discriminators** (phase ``aae_discriminators``), on the codes against prior samples.
   The next batch's generator step plays against them.

Makhzani et al. update the encoder in separate reconstruction, generator and supervised
steps. Here the encoder's objectives are weighed in one step, as every other task's are: with
separate steps, each of its own optimizer, each moves the encoder as far as the others
whatever the losses' scale, and on the mini corpus the reconstruction then overrode the
emotion classifier (validation UA 30% against 90% without the AAE, all labels kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.models import Dims, ModelOutput, SpeechEQModel, UtteranceLinear
from speecheq.tasks.base import (
    Batch,
    Phase,
    Target,
    Task,
    TaskContext,
    TaskOptions,
    TaskScores,
    members_mean,
)


@dataclass(frozen=True)
class AAEOptions(TaskOptions):
    weight: float = 0.1
    """The weight of this task's loss (generator and reconstruction) in the encoder's step."""
    reconstruction_weight: float = 1.0
    """The weight of the reconstruction error beside the generator loss in this task's loss."""
    style_dim: int = 8
    """Width of the continuous style code ``z``."""
    hidden_dim: int = 128
    """Hidden width of the decoder and the discriminators (two hidden layers each)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.style_dim < 1 or self.hidden_dim < 1:
            raise ValueError("tasks.aae.style_dim and tasks.aae.hidden_dim must be positive")
        if self.reconstruction_weight < 0:
            raise ValueError("tasks.aae.reconstruction_weight must not be negative")


NEEDS_EMOTION = (
    "the aae task needs the emotion task (its categorical code is the emotion head's output): "
    "train both, e.g. --tasks emotion,aae"
)


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    """Two hidden LeakyReLU layers."""
    return nn.Sequential(
        nn.Linear(inputs, hidden),
        nn.LeakyReLU(0.2),
        nn.Linear(hidden, hidden),
        nn.LeakyReLU(0.2),
        nn.Linear(hidden, outputs),
    )


class AAENetworks(nn.Module):
    """The training-only modules: the decoder and the two discriminators."""

    def __init__(self, classes: int, style_dim: int, hidden_dim: int, feature_dim: int) -> None:
        super().__init__()
        self.decoder = mlp(classes + style_dim, hidden_dim, 2 * feature_dim)
        self.categorical = mlp(classes, hidden_dim, 1)
        self.style = mlp(style_dim, hidden_dim, 1)


def feature_statistics(feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``(batch, 2 * dim)``: the mean, then the standard deviation, of each feature dimension
    over each utterance's valid frames."""
    feats = feats.float()
    valid = (torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None]).float()
    count = lengths.clamp(min=1).float()[:, None]
    mean = (feats * valid[..., None]).sum(dim=1) / count
    square = (feats.square() * valid[..., None]).sum(dim=1) / count
    std = (square - mean.square()).clamp(min=1e-6).sqrt()
    return torch.cat([mean, std], dim=-1)


def _prior_loss(discriminator: nn.Module, code: torch.Tensor, label: float) -> torch.Tensor:
    """The binary cross-entropy of ``discriminator`` calling ``code`` a prior sample (1) or an
    encoder's code (0), averaged over the batch."""
    logits = discriminator(code).float().squeeze(-1)
    return functional.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))


class AAETask(Task):
    """The adversarial autoencoder's style head, generator loss and training phases."""

    name = "aae"
    label_table = "feats.scp"
    """It has no labels: it learns from the features of every utterance."""
    decode_table = "utt2style"
    options_type = AAEOptions
    primary_metric = "none"
    uses_unlabeled = True

    def __init__(self, options: TaskOptions, inventory: dict[str, Any]) -> None:
        super().__init__(options, inventory)
        self.networks: AAENetworks | None = None
        """Set by :meth:`phases` (the trainer calls it before the first step)."""

    @classmethod
    def take_inventory(
        cls, options: TaskOptions, train: DataDir, context: TaskContext
    ) -> dict[str, Any]:
        return {"classes": list(context.class_map.classes), "feature_dim": context.feature_dim}

    @property
    def aae_options(self) -> AAEOptions:
        assert isinstance(self.options, AAEOptions)
        return self.options

    def references(self, data: DataDir) -> dict[str, str]:
        return {}

    def encode(self, value: str, where: str) -> Any:
        raise SpeechEQError(f"{where}: the aae task has no labels to encode")

    def collate(self, targets: Sequence[Any | None]) -> Target:
        return Target(torch.zeros(len(targets)), torch.zeros(len(targets), dtype=torch.bool))

    def build_head(self, dims: Dims) -> nn.Module:
        return UtteranceLinear(dims, self.aae_options.style_dim)

    def codes(self, output: ModelOutput) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y, z)``: the emotion posteriors and the style code of each utterance."""
        if "emotion" not in output.heads:
            raise SpeechEQError(NEEDS_EMOTION)
        posteriors = torch.softmax(output.heads["emotion"].float(), dim=-1)
        return posteriors, output.heads[self.name].float()

    def loss(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        """The encoder's AAE objective: the discriminators' cross-entropy of calling the codes
        prior samples, plus the weighted reconstruction error."""
        assert self.networks is not None, "the aae task's phases must be built before training"
        y, z = self.codes(output)
        generator = _prior_loss(self.networks.categorical, y, 1.0) + _prior_loss(
            self.networks.style, z, 1.0
        )
        return generator + self.aae_options.reconstruction_weight * self.reconstruction(y, z, batch)

    def reconstruction(self, y: torch.Tensor, z: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The mean squared error of the feature statistics decoded from ``[y, z]``."""
        assert self.networks is not None
        decoded = self.networks.decoder(torch.cat([y, z], dim=-1)).float()
        return functional.mse_loss(decoded, feature_statistics(batch.feats, batch.lengths))

    def average(self, outputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The members' mean."""
        return members_mean(outputs)

    def hypotheses(self, output: ModelOutput) -> dict[str, list[str]]:
        styles = output.heads[self.name].float().tolist()
        return {self.decode_table: [" ".join(f"{x:.4f}" for x in row) for row in styles]}

    @classmethod
    def parse(cls, value: str, where: str) -> tuple[float, ...]:
        try:
            return tuple(float(x) for x in value.split())
        except ValueError:
            raise SpeechEQError(f"{where}: expected numbers, got '{value}'") from None

    @classmethod
    def score(
        cls, refs: Sequence[Any], hyps: Sequence[Any], classes: Sequence[str] = ()
    ) -> TaskScores:
        return TaskScores({})

    def phases(self, model: SpeechEQModel) -> list[Phase]:
        if "emotion" not in model.heads:
            raise SpeechEQError(NEEDS_EMOTION)
        options = self.aae_options
        classes = len(self.inventory["classes"])
        self.networks = networks = AAENetworks(
            classes, options.style_dim, options.hidden_dim, self.inventory["feature_dim"]
        )

        def codes(model: SpeechEQModel, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
            with torch.no_grad():
                return self.codes(model(batch.feats, batch.lengths))

        def decoder(model: SpeechEQModel, batch: Batch) -> torch.Tensor:
            return self.reconstruction(*codes(model, batch), batch)

        def discriminators(model: SpeechEQModel, batch: Batch) -> torch.Tensor:
            y, z = codes(model, batch)
            prior_y = functional.one_hot(
                torch.randint(classes, (len(y),), device=y.device), classes
            ).float()
            prior_z = torch.randn_like(z)
            return (
                _prior_loss(networks.categorical, prior_y, 1.0)
                + _prior_loss(networks.categorical, y, 0.0)
                + _prior_loss(networks.style, prior_z, 1.0)
                + _prior_loss(networks.style, z, 0.0)
            )

        critics = [*networks.categorical.parameters(), *networks.style.parameters()]
        # The networks are checkpointed once, with the first phase.
        return [
            Phase("aae_decoder", decoder, list(networks.decoder.parameters()), networks),
            Phase("aae_discriminators", discriminators, critics),
        ]
