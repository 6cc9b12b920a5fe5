"""Training machinery shared by the referring (btdnet) and closed-set (bicor) tasks."""

from btdnet.engine.config import ConfigError, apply_overrides, load_config, save_config
from btdnet.engine.task import TrainingTask
from btdnet.engine.trainer import NonFiniteLossError, Trainer, TrainSettings, TrainSummary

__all__ = [
    "ConfigError",
    "NonFiniteLossError",
    "TrainSettings",
    "TrainSummary",
    "Trainer",
    "TrainingTask",
    "apply_overrides",
    "load_config",
    "save_config",
]
