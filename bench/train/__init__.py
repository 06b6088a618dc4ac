"""Training of the project's own checkpoints (``bench train sapnet|prenet``): see :func:`train`."""

from bench.train.config import TrainConfig, TrainResult
from bench.train.trainer import train

__all__ = ["TrainConfig", "TrainResult", "train"]
