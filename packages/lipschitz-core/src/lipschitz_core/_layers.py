"""Lipschitz-constrained linear layer and the GroupSort activation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lipschitz_core._constraint import OperatorNormConstraint
from lipschitz_core._norms import check_constant, check_kind


class LipschitzLinear(nn.Module):
    """``nn.Linear`` whose weight is normalized so that its operator norm ``kind`` is <= ``lipschitz_const``.

    The raw weight is stored in ``weight``; the forward pass uses
    ``W / max(1, ||W||_kind / lipschitz_const)`` (or ``W * lipschitz_const / ||W||_kind`` with
    ``always_norm=True``), with gradients through the normalization.

    Args:
        in_features, out_features, bias: as ``nn.Linear``.
        kind: the operator norm that is bounded: ``"one"`` (l1->l1), ``"inf"`` (linf->linf),
            ``"one-inf"`` (l1->linf), ``"two-inf"`` (l2->linf) or ``"two"`` (l2->l2, spectral).
            No default on purpose: the right kind depends on where the layer sits (see
            :func:`lipschitz_mlp`).
        lipschitz_const: the bound c > 0.
        always_norm: rescale to exactly c instead of only shrinking.
        vectorwise: rescale each row/column on its own (the authors' ``monotonicnetworks``
            default); the operator norm is bounded either way.

    Shape:
        input ``[..., in_features]`` -> output ``[..., out_features]``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        kind: str,
        lipschitz_const: float = 1.0,
        always_norm: bool = False,
        vectorwise: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"in_features and out_features must be >= 1, got {in_features}, {out_features}")
        check_kind(kind)
        lipschitz_const = check_constant(lipschitz_const)
        factory = {"device": device, "dtype": dtype}
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self.register_parameter("bias", self.bias)
        self.constraint = OperatorNormConstraint(
            kind,
            lipschitz_const,
            always_norm=always_norm,
            vectorwise=vectorwise,
            shape=(out_features, in_features),
        ).to(**{k: v for k, v in factory.items() if v is not None})
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The same initialisation as nn.Linear, so swapping layers changes nothing at the start.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def kind(self) -> str:
        return self.constraint.kind

    @property
    def lipschitz_const(self) -> float:
        return self.constraint.max_norm

    @property
    def always_norm(self) -> bool:
        return self.constraint.always_norm

    @property
    def vectorwise(self) -> bool:
        return self.constraint.vectorwise

    def normalized_weight(self) -> Tensor:
        """The weight the forward pass uses (norm-bounded)."""
        return self.constraint(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        # .forward directly: skips nn.Module.__call__'s hook bookkeeping on the hot path
        return F.linear(x, self.constraint.forward(self.weight), self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
            f"kind={self.kind!r}, lipschitz_const={self.lipschitz_const:g}, always_norm={self.always_norm}"
        )


class GroupSort(nn.Module):
    """Sort the features within consecutive groups: a gradient-norm-preserving activation.

    ``GroupSort(2)`` is MaxMin. The argument is the **group size** (as in deel-torchlip).
    The original ``monotonicnetworks.GroupSort`` took the **number of groups**; pass that as
    ``n_groups=`` instead. Giving both is an error.

    Shape:
        input ``[..., F]`` along ``dim`` -> same shape; F must be divisible by the group size.
    """

    def __init__(self, group_size: int | None = None, *, n_groups: int | None = None, dim: int = -1) -> None:
        super().__init__()
        if group_size is not None and n_groups is not None:
            raise ValueError(
                "give either group_size (elements per group) or n_groups (number of groups), not both; "
                f"got group_size={group_size}, n_groups={n_groups}"
            )
        if group_size is None and n_groups is None:
            group_size = 2
        for name, value in (("group_size", group_size), ("n_groups", n_groups)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.group_size = group_size
        self.n_groups = n_groups
        self.dim = dim

    def _size(self, n_features: int) -> int:
        if self.group_size is not None:
            size = self.group_size
            if n_features % size:
                raise ValueError(f"GroupSort: {n_features} features are not divisible by group_size={size}")
            return size
        assert self.n_groups is not None
        if n_features % self.n_groups:
            raise ValueError(f"GroupSort: {n_features} features are not divisible by n_groups={self.n_groups}")
        return n_features // self.n_groups

    def forward(self, x: Tensor) -> Tensor:
        dim = self.dim % x.dim() if x.dim() else 0
        n = x.shape[dim]
        size = self._size(n)
        if size == 1:
            return x
        if dim != x.dim() - 1:
            return self._sort_last(x.movedim(dim, -1), size).movedim(-1, dim)
        return self._sort_last(x, size)

    @staticmethod
    def _sort_last(x: Tensor, size: int) -> Tensor:
        grouped = x.unflatten(-1, (x.shape[-1] // size, size))
        if size == 2:
            # MaxMin without a sort kernel: the common case, and noticeably faster.
            a, b = grouped.unbind(-1)
            out = torch.stack((torch.minimum(a, b), torch.maximum(a, b)), dim=-1)
        else:
            out = grouped.sort(dim=-1).values
        return out.flatten(-2)

    def extra_repr(self) -> str:
        if self.n_groups is not None:
            return f"n_groups={self.n_groups}"
        return f"group_size={self.group_size}"
