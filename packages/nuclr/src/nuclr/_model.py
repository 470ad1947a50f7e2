"""The NuCLR network: Z, N and task embeddings, an MLP body with residual blocks, one output per task."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class ModelConfig:
    """Network shape. ``body="lipschitz"`` swaps the residual body for lipschitz-core layers whose
    certified l2->linf bound (embedding concat -> normalised outputs) is ``lipschitz_const``."""

    n_tasks: int = 10
    max_z: int = 120
    max_n: int = 180
    width: int = 256
    depth: int = 2
    dropout: float = 0.0
    body: str = "residual"
    lipschitz_const: float = 20.0
    readout_multiplier: float = 1.0  # muP's MuReadout input scale (base width / width); 1 = standard

    def __post_init__(self) -> None:
        for name in ("n_tasks", "max_z", "max_n", "width", "depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ModelConfig.{name} must be an integer >= 1, got {value!r}")
        if self.body not in ("residual", "lipschitz"):
            raise ValueError(f"ModelConfig.body must be 'residual' or 'lipschitz', got {self.body!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if not self.lipschitz_const > 0:
            raise ValueError(f"ModelConfig.lipschitz_const must be > 0, got {self.lipschitz_const!r}")
        if self.body == "lipschitz" and self.width % 2:
            raise ValueError("ModelConfig.width must be even for the GroupSort activations of the lipschitz body")


class ResidualBlock(nn.Module):
    """x + Dropout(ReLU(Linear(ReLU(Linear(x))))), as in the NuCLR code."""

    def __init__(self, width: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.dropout(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class NuCLR(nn.Module):
    """Multi-task network over (Z, N, task) tokens; ``forward`` returns one number per row."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d = config.width
        self.emb_z = nn.Embedding(config.max_z + 1, d)
        self.emb_n = nn.Embedding(config.max_n + 1, d)
        self.emb_task = nn.Embedding(config.n_tasks, d)
        for emb in (self.emb_z, self.emb_n, self.emb_task):
            nn.init.normal_(emb.weight, std=d**-0.5)
        if config.body == "residual":
            layers: list[nn.Module] = [nn.Linear(3 * d, d), nn.SiLU()]
            layers += [ResidualBlock(d, config.dropout) for _ in range(config.depth)]
            self.body = nn.Sequential(*layers)
            self.readout = nn.Linear(d, config.n_tasks)
        else:
            from lipschitz_core import GroupSort, LipschitzLinear, lipschitz_mlp

            self.body = nn.Sequential(
                lipschitz_mlp(3 * d, d, d, config.depth + 1, lipschitz_const=config.lipschitz_const, norm="two"),
                GroupSort(2),
            )
            self.readout = LipschitzLinear(d, config.n_tasks, kind="two-inf", lipschitz_const=1.0)

    def _check(self, z: Tensor, n: Tensor, task: Tensor) -> None:
        for name, t, hi in (("z", z, self.config.max_z), ("n", n, self.config.max_n), ("task", task, self.config.n_tasks - 1)):
            if t.dtype not in (torch.int64, torch.int32):
                raise TypeError(f"{name} must be an integer tensor, got {t.dtype}")
            if t.numel() and (int(t.min()) < 0 or int(t.max()) > hi):
                raise ValueError(f"{name} values must lie in [0, {hi}], got [{int(t.min())}, {int(t.max())}]")

    def hidden(self, z: Tensor, n: Tensor, task: Tensor) -> Tensor:
        """Last hidden layer (the readout's input), shape [B, width]."""
        self._check(z, n, task)
        x = torch.cat([self.emb_z(z), self.emb_n(n), self.emb_task(task)], dim=-1)
        return self.body(x)

    def forward_all(self, z: Tensor, n: Tensor, task: Tensor) -> Tensor:
        """All task outputs [B, n_tasks] (the task embedding still conditions the body)."""
        h = self.hidden(z, n, task)
        if self.config.readout_multiplier != 1.0:
            h = h * self.config.readout_multiplier
        return self.readout(h)

    def forward(self, z: Tensor, n: Tensor, task: Tensor) -> Tensor:
        out = self.forward_all(z, n, task)
        return out.gather(1, task.long().unsqueeze(1)).squeeze(1)
