"""Public model/training API."""

from nuclr._dataset import (
    DEFAULT_TASKS,
    TASK_COLUMNS,
    TaskRows,
    binding_formula,
    build_rows,
    mass_formula,
    mass_partners,
)
from nuclr._model import ModelConfig, NuCLR, ResidualBlock
from nuclr._train import (
    OBSERVABLE_MODES,
    TrainConfig,
    Trained,
    make_optimizer,
    quick_config,
    resolve_device,
    train,
)

__all__ = [
    "DEFAULT_TASKS",
    "TASK_COLUMNS",
    "OBSERVABLE_MODES",
    "ModelConfig",
    "NuCLR",
    "ResidualBlock",
    "TaskRows",
    "TrainConfig",
    "Trained",
    "binding_formula",
    "build_rows",
    "make_optimizer",
    "mass_formula",
    "mass_partners",
    "quick_config",
    "resolve_device",
    "train",
]
