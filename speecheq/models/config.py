"""The model section of the training configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class UpstreamOptions:
    """A pretrained upstream run inside the model, on raw audio (an empty path: none)."""

    path: str = ""
    """Its checkpoint directory (config.json and weights, as save_pretrained writes), or a hub
    model id, ``org/name[@revision]``, fetched once into the hub cache."""
    freeze: bool = True
    """Keep its weights as they are; false: fine-tune them (their learning rate scaled)."""
    layers: str = "all"
    """The hidden states summed with learned weights: all, 0,6,12 or 6-12."""
    lr_scale: float = 0.1
    """Fine-tuning: the upstream's learning rate as a share of optim.lr."""
    checkpointing: bool = True
    """Fine-tuning: recompute its activations in the backward pass (less memory, more time)."""

    def __post_init__(self) -> None:
        if not 0 < self.lr_scale <= 1:
            raise ValueError("model.upstream.lr_scale must be in (0, 1]")


@dataclass(frozen=True)
class ModelConfig:
    """The shared encoder, the pooling and the utterance embedding.

    The defaults are sized for CPU training (a few minutes per recipe on two cores).
    """

    encoder: Literal["conformer", "blstm", "ecapa", "none"] = "ecapa"
    """ECAPA-TDNN SE-Res2 blocks (dilations 2, 3, 4, ...; their outputs joined), a Conformer
    stack or a bidirectional LSTM after the front end, or none (the front end's projection
    straight into the pooling: a light downstream for upstream features)."""
    d_model: int = 128
    """Width of the encoder output (frame-level heads read it)."""
    num_layers: int = 3
    """SE-Res2 blocks (or Conformer layers, or BiLSTM layers)."""
    num_heads: int = 4
    """Attention heads per Conformer layer (``d_model`` must be a multiple)."""
    ffn_dim: int = 192
    """Hidden width of the Conformer feed-forward modules."""
    conv_kernel: int = 15
    """Depthwise convolution kernel of the Conformer layers (odd)."""
    subsampling_channels: int = 16
    """Channels of the two convolutions of the 4x subsampling front end."""
    dropout: float = 0.1
    """Dropout in the encoder and the embedding."""
    attention_dim: int = 64
    """Hidden width of the attention of the statistics pooling."""
    embedding_dim: int = 128
    """Width of the pooled utterance embedding (utterance-level heads read it)."""
    functionals_dim: int = 0
    """Width of the functionals stream joined to the pooled encoder output (statistics of each
    input filterbank frame column and its deltas over the utterance); 0: no such stream."""
    functionals_dropout: float = 0.5
    """Dropout on the functionals before their projection."""
    upstream: UpstreamOptions = field(default_factory=UpstreamOptions)
    """A pretrained upstream run on raw audio inside the model (frozen or fine-tuned). Upstream
    features computed in stage 2 (speecheq feats --type ssl) need none of this: a model reads
    them as any features, through a learned weighted sum of their layers."""

    @property
    def blocks(self) -> int:
        """How many blocks' frames a frame-level head can read: the SE-Res2 blocks or Conformer
        layers; 1 for a BiLSTM or none (their output)."""
        return self.num_layers if self.encoder in ("conformer", "ecapa") else 1

    def __post_init__(self) -> None:
        for name in ("d_model", "num_layers", "num_heads", "ffn_dim", "subsampling_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be positive")
        if self.attention_dim < 1 or self.embedding_dim < 1:
            raise ValueError("model.attention_dim and model.embedding_dim must be positive")
        if self.encoder == "conformer" and self.d_model % self.num_heads:
            raise ValueError("model.d_model must be a multiple of model.num_heads")
        if self.encoder == "ecapa" and self.d_model % 4:
            raise ValueError("model.d_model must be a multiple of 4 for ECAPA (Res2 scale 4)")
        if self.encoder == "blstm" and self.d_model % 2:
            raise ValueError("model.d_model must be even for a BiLSTM (half each direction)")
        if self.conv_kernel < 1 or self.conv_kernel % 2 == 0:
            raise ValueError("model.conv_kernel must be a positive odd number")
        if not 0 <= self.dropout < 1:
            raise ValueError("model.dropout must be in [0, 1)")
        if self.functionals_dim < 0:
            raise ValueError("model.functionals_dim must be 0 (no stream) or positive")
        if not 0 <= self.functionals_dropout < 1:
            raise ValueError("model.functionals_dropout must be in [0, 1)")
