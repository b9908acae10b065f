"""The SpeechEQ model: shared encoder, attentive statistics pooling, per-task heads."""

from speecheq.models.config import ModelConfig, UpstreamOptions
from speecheq.models.ensemble import EnsembleModel
from speecheq.models.frontends import InputSpec
from speecheq.models.model import (
    Dims,
    Encoded,
    FrameLinear,
    ModelOutput,
    SpeechEQModel,
    UtteranceLinear,
)

__all__ = [
    "Dims",
    "Encoded",
    "EnsembleModel",
    "FrameLinear",
    "InputSpec",
    "ModelConfig",
    "ModelOutput",
    "SpeechEQModel",
    "UpstreamOptions",
    "UtteranceLinear",
]
