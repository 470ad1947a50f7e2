"""Input checks: every public entry point turns positions and weights into float tensors here."""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import Tensor

# Coordinates beyond this overflow squared differences in float64 (1e308) in any code that squares
# them (ours, POT, k-means); they almost always mean a unit or parsing error.
MAX_COORDINATE = 1e150


def _refuse_complex(value: object, name: str) -> None:
    if (isinstance(value, Tensor) and value.is_complex()) or (not isinstance(value, Tensor) and np.iscomplexobj(value)):
        raise ValueError(f"{name} has complex entries; the EMD needs real coordinates and weights")


def as_points(value: object, name: str, *, dtype: torch.dtype | None = None) -> Tensor:
    """Positions as a ``[n, d]`` float tensor (a tensor keeps its autograd graph)."""
    _refuse_complex(value, name)
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
    biggest = float(t.detach().abs().max())
    if biggest > MAX_COORDINATE:
        raise ValueError(
            f"{name} has a coordinate of magnitude {biggest:.3g}; above {MAX_COORDINATE:.0e} squared distances overflow float64 "
            "(rescale the coordinates, e.g. change their unit)"
        )
    return t


def as_weights(value: object, n: int, name: str, *, dtype: torch.dtype | None = None) -> Tensor:
    """Non-negative weights of length ``n`` with a positive total; ``None`` means uniform 1/n."""
    _refuse_complex(value, name)
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
    if isinstance(R, (bool, np.bool_)) or not isinstance(R, numbers.Real) or not math.isfinite(float(R)) or float(R) <= 0:
        raise ValueError(f"R must be a finite number > 0 (the jet radius), got {R!r}")
    return float(R)


def balance_tolerance(*dtypes: object, n: int) -> float:
    """Relative tolerance for "the totals are equal": summing n weights stored in a dtype with
    machine epsilon eps is exact to about n * eps, so float32-normalized weights (sum 0.99999998)
    count as normalized while a real energy difference does not."""
    eps = max(_eps(d) for d in dtypes) if dtypes else float(np.finfo(np.float64).eps)
    return 4.0 * max(n, 1) * eps


def check_balance(ta: float, tb: float, a: object, b: object, *, n: int, radius: float | None,
                  rtol: float | None = None, need_R: bool = True) -> bool:
    """Whether the totals ``ta`` and ``tb`` of the user's weights ``a`` and ``b`` are equal within
    the tolerance their dtypes allow (``rtol`` overrides it); unequal totals without a radius
    raise a ValueError that says why, unless ``need_R`` is False."""
    tol = balance_tolerance(input_dtype(a), input_dtype(b), n=n) if rtol is None else rtol
    balanced = abs(ta - tb) <= tol * max(ta, tb)
    if not balanced and radius is None and need_R:
        raise ValueError(
            f"the totals differ (sum a = {ta!r}, sum b = {tb!r}, relative difference {abs(ta - tb) / max(ta, tb):.3g} above the "
            f"{tol:.2g} their dtype allows): the EMD with unequal energies needs the radius R (cost ||x - y|| / R plus "
            "|sum a - sum b|); pass R=..., or normalize the weights"
        )
    return balanced


def _eps(dtype: object) -> float:
    if isinstance(dtype, torch.dtype):
        return float(torch.finfo(dtype).eps) if dtype.is_floating_point else float(np.finfo(np.float64).eps)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        return float(np.finfo(np.float64).eps)
    return float(np.finfo(dt).eps) if np.issubdtype(dt, np.floating) else float(np.finfo(np.float64).eps)


def input_dtype(value: object) -> object:
    """The floating dtype a user's array came in (float64 for lists, ints and None)."""
    if isinstance(value, Tensor):
        return value.dtype
    if isinstance(value, np.ndarray):
        return value.dtype
    return np.float64


def check_seed(seed: object) -> int:
    """``None`` draws a fresh seed from the OS; otherwise a non-negative integer (numpy ints allowed)."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)
