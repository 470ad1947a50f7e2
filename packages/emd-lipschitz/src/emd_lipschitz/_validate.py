"""Input checks: every public entry point turns positions and weights into float tensors here."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def as_points(value: object, name: str, *, dtype: torch.dtype | None = None) -> Tensor:
    """Positions as a ``[n, d]`` float tensor (a tensor keeps its autograd graph)."""
    if isinstance(value, Tensor):
        t = value
    else:
        try:
            t = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be an array of coordinates of shape [n, d], got {type(value).__name__}") from exc
    if t.dim() == 1:
        t = t.unsqueeze(1)
    if t.dim() != 2:
        raise ValueError(f"{name} must have shape [n, d] (n points in d dimensions), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} is empty: need at least one point, got shape {tuple(t.shape)}")
    if t.shape[1] == 0:
        raise ValueError(f"{name} has zero coordinates per point (shape {tuple(t.shape)})")
    if not t.is_floating_point():
        t = t.double()
    if dtype is not None:
        t = t.to(dtype)
    bad = ~torch.isfinite(t.detach())
    if bool(bad.any()):
        row = int(bad.any(dim=1).nonzero()[0, 0])
        raise ValueError(f"{name} contains NaN or inf (first at row {row}: {t[row].detach().tolist()}); coordinates must be finite")
    return t


def as_weights(value: object, n: int, name: str, *, dtype: torch.dtype | None = None) -> Tensor:
    """Non-negative weights of length ``n`` with a positive total; ``None`` means uniform 1/n."""
    if value is None:
        t = torch.full((n,), 1.0 / n, dtype=torch.float64)
    elif isinstance(value, Tensor):
        t = value
    else:
        try:
            t = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a 1-D array of {n} non-negative weights, got {type(value).__name__}") from exc
    if t.dim() != 1 or t.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D array of {n} weights (one per point), got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.double()
    if dtype is not None:
        t = t.to(dtype)
    d = t.detach()
    if not bool(torch.isfinite(d).all()):
        raise ValueError(f"{name} contains NaN or inf; weights must be finite and non-negative")
    if bool((d < 0).any()):
        i = int((d < 0).nonzero()[0, 0])
        raise ValueError(f"{name} has a negative weight ({float(d[i]):g} at index {i}); weights must be >= 0")
    if float(d.sum()) <= 0.0:
        raise ValueError(f"{name} sums to zero; need a positive total weight")
    return t


def check_same_dim(x: Tensor, y: Tensor, names: tuple[str, str] = ("x", "y")) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must live in the same space: {names[0]} has {x.shape[1]} coordinates per point, "
            f"{names[1]} has {y.shape[1]}"
        )


def check_radius(R: object) -> float | None:
    if R is None:
        return None
    if isinstance(R, bool) or not isinstance(R, (int, float)) or not math.isfinite(float(R)) or float(R) <= 0:
        raise ValueError(f"R must be a finite number > 0 (the jet radius), got {R!r}")
    return float(R)
