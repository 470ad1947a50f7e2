"""Public model/training API."""

from nuclr._dataset import DEFAULT_TASKS, TASK_COLUMNS, TaskRows, build_rows
from nuclr._model import ModelConfig, NuCLR, ResidualBlock
from nuclr._train import TrainConfig, Trained, quick_config, resolve_device, train

__all__ = [
    "DEFAULT_TASKS",
    "TASK_COLUMNS",
    "ModelConfig",
    "NuCLR",
    "ResidualBlock",
    "TaskRows",
    "TrainConfig",
    "Trained",
    "build_rows",
    "quick_config",
    "resolve_device",
    "train",
]
