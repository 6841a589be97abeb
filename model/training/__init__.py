"""Training for every registered model family: data, losses, the loop, resumable state and model cards.

Import-light: ``from model.training import TrainConfig, train``.
"""

from model.training.config import TrainConfig
from model.training.loop import TrainResult, train
from model.training.losses import LossOptions

__all__ = ["LossOptions", "TrainConfig", "TrainResult", "train"]
