"""Stage 4: configuration, data, the training loop, checkpoints and model files."""

from speecheq.train.checkpoint import TrainedModel, load_model
from speecheq.train.config import TrainConfig, config_from_dict, load_config
from speecheq.train.trainer import TrainResult, train

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainedModel",
    "config_from_dict",
    "load_config",
    "load_model",
    "train",
]
