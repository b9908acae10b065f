"""Stage 4: the training loop, its reporting, checkpoints, distribution and augmentation."""

from speecheq.train.trainer import TrainResult, train

__all__ = ["TrainResult", "train"]
