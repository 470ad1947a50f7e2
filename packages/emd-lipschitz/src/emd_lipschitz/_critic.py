"""A stack of independent 1-Lipschitz GroupSort critics, one per event, evaluated in one batched pass.

Each event's critic is the function ``z -> h_b(z)`` of a ``lipschitz_core.lipschitz_mlp(d, hidden, 1,
depth, norm="two-inf")``: the first layer bounds the l2 -> linf operator norm (max row l2 norm),
the later layers the linf -> linf norm (max row abs sum), with GroupSort in between, so h_b is
1-Lipschitz from (R^d, l2) to R. The weights of all events live in ``[B, out, in]`` tensors so that
one ``baddbmm`` per layer evaluates every event; :meth:`BatchedCritic.event_mlp` copies event b into
a real ``lipschitz_mlp`` so that ``lipschitz_core.lipschitz_bound`` certifies it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lipschitz_core import GroupSort, lipschitz_bound, lipschitz_mlp, normalize_weight


class BatchedCritic(nn.Module):
    """``B`` independent critics ``h_b: R^d -> R``, each certified 1-Lipschitz (l2 input norm).

    Args:
        n_events: B.
        dim: input dimension d.
        hidden: width of the hidden layers (divisible by ``group_size``).
        depth: number of linear layers (>= 1).
        group_size: GroupSort group size (2 = MaxMin).
        always_norm: rescale every weight to operator norm exactly 1 (instead of only shrinking
            those above 1); keeps the gradient norm of the critic near 1, which makes the dual tight.
        generator: for the initialisation.
    """

    def __init__(
        self,
        n_events: int,
        dim: int,
        *,
        hidden: int = 64,
        depth: int = 3,
        group_size: int = 2,
        always_norm: bool = True,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if depth < 1 or hidden < 1 or hidden % group_size:
            raise ValueError(f"need depth >= 1 and hidden divisible by group_size, got depth={depth}, hidden={hidden}, group_size={group_size}")
        self.n_events, self.dim, self.hidden, self.depth = int(n_events), int(dim), int(hidden), int(depth)
        self.group_size = int(group_size)
        self.always_norm = bool(always_norm)
        widths = [dim] + [hidden] * (depth - 1) + [1]
        self.kinds = ["two-inf"] + ["inf"] * (depth - 1)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i in range(depth):
            fan_in, fan_out = widths[i], widths[i + 1]
            bound = 1.0 / math.sqrt(fan_in)
            w = (torch.rand(n_events, fan_out, fan_in, generator=generator, dtype=torch.float64) * 2 - 1) * bound
            b = (torch.rand(n_events, fan_out, generator=generator, dtype=torch.float64) * 2 - 1) * bound
            if i == depth - 1:
                b.zero_()
            self.weights.append(nn.Parameter(w.to(dtype=dtype, device=device)))
            self.biases.append(nn.Parameter(b.to(dtype=dtype, device=device)))
        self.activation = GroupSort(group_size)

    def normalized_weight(self, layer: int) -> Tensor:
        # lipschitz-core's constraint, per event: each [out, in] slice of the [B, out, in] stack
        return normalize_weight(self.weights[layer], self.kinds[layer], always_norm=self.always_norm)

    def forward(self, z: Tensor) -> Tensor:
        """``z``: ``[B, N, d]`` -> ``[B, N]``."""
        h = z
        for layer in range(self.depth):
            w = self.normalized_weight(layer)
            h = torch.baddbmm(self.biases[layer].unsqueeze(1), h, w.transpose(1, 2))
            if layer < self.depth - 1:
                h = self.activation(h)
        return h.squeeze(-1)

    @torch.no_grad()
    def event_mlp(self, b: int) -> nn.Sequential:
        """Event b's critic as a ``lipschitz_core.lipschitz_mlp`` (float64, normalized weights copied into the raw parameter, weight_orig)."""
        mlp = lipschitz_mlp(self.dim, self.hidden, 1, self.depth, lipschitz_const=1.0, norm="two-inf", group_size=self.group_size)
        mlp = mlp.double()
        linears = [m for m in mlp if not isinstance(m, GroupSort)]
        for layer, linear in enumerate(linears):
            linear.weight_orig.copy_(self.normalized_weight(layer)[b].double())
            linear.bias.copy_(self.biases[layer][b].double())
        return mlp

    def certified_bound(self, b: int) -> float:
        """``lipschitz_core.lipschitz_bound`` of event b's critic (l2 input, scalar output)."""
        return lipschitz_bound(self.event_mlp(b), "two-inf")
