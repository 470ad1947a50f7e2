"""Operator norms of weight matrices and the normalization that bounds them.

A weight ``W`` has shape ``[out_features, in_features]`` (PyTorch's ``nn.Linear`` layout), so
``W @ x`` maps an input vector to an output vector. Each ``kind`` names an operator norm:

========== =================== =========================================
kind       operator norm        closed form
========== =================== =========================================
``one``     l1 -> l1           max column abs sum
``inf``     linf -> linf       max row abs sum
``one-inf`` l1 -> linf         max |W_ij|
``two-inf`` l2 -> linf         max row l2 norm
``two``     l2 -> l2           largest singular value (spectral norm)
========== =================== =========================================
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

KINDS: tuple[str, ...] = ("one", "inf", "one-inf", "two-inf", "two")

# (input p-norm, output p-norm) bounded by each kind; math.inf stands for linf.
KIND_NORMS: dict[str, tuple[float, float]] = {
    "one": (1.0, 1.0),
    "inf": (math.inf, math.inf),
    "one-inf": (1.0, math.inf),
    "two-inf": (2.0, math.inf),
    "two": (2.0, 2.0),
}


def check_kind(kind: object) -> str:
    """Return ``kind`` if it names a supported operator norm, else raise ``ValueError``."""
    if not isinstance(kind, str) or kind not in KIND_NORMS:
        raise ValueError(f"unknown kind {kind!r}; valid kinds are {', '.join(map(repr, KINDS))}")
    return kind


def check_constant(value: object, name: str = "lipschitz_const") -> float:
    """Return ``value`` as a float if it is a finite number > 0, else raise ``ValueError``."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{name} must be a single number, got a tensor of shape {tuple(value.shape)}"
            )
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy scalars included
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def vector_norms(weight: Tensor, kind: str) -> Tensor:
    """Per-vector quantities whose maximum is the operator norm of ``kind``.

    Broadcastable against ``weight``: columns for ``one``, rows for ``inf``/``two-inf``,
    entries for ``one-inf``. Not defined for ``two`` (the spectral norm is not vectorwise).
    """
    if kind == "one":
        return weight.abs().sum(dim=0, keepdim=True)
    if kind == "inf":
        return weight.abs().sum(dim=1, keepdim=True)
    if kind == "one-inf":
        return weight.abs()
    if kind == "two-inf":
        return torch.linalg.vector_norm(weight, ord=2, dim=1, keepdim=True)
    raise ValueError(
        f"kind {kind!r} has no vectorwise form; vectorwise kinds are 'one', 'inf', 'one-inf', 'two-inf'"
    )


def operator_norm_pq(weight: Tensor, p_in: float, p_out: float) -> Tensor:
    """Exact operator norm ``max ||W x||_{p_out} / ||x||_{p_in}`` for the tractable pairs.

    Supported: (1,1), (1,2), (1,inf), (2,2), (2,inf), (inf,inf). Other pairs are NP-hard
    in general and raise ``ValueError``. ``weight`` is ``[out, in]`` or a batch ``[..., out, in]``;
    the result has the batch shape (a scalar for one matrix).
    """
    w = weight
    if p_in == 1.0 and p_out == 1.0:
        return w.abs().sum(dim=-2).amax(dim=-1)
    if p_in == 1.0 and p_out == 2.0:
        return torch.linalg.vector_norm(w, ord=2, dim=-2).amax(dim=-1)
    if p_in == 1.0 and p_out == math.inf:
        return w.abs().amax(dim=(-2, -1))
    if p_in == 2.0 and p_out == 2.0:
        return torch.linalg.matrix_norm(w, ord=2)
    if p_in == 2.0 and p_out == math.inf:
        return torch.linalg.vector_norm(w, ord=2, dim=-1).amax(dim=-1)
    if p_in == math.inf and p_out == math.inf:
        return w.abs().sum(dim=-1).amax(dim=-1)
    raise ValueError(f"no exact operator norm for l{p_in:g} -> l{p_out:g}")


def operator_norm(weight: Tensor, kind: str) -> Tensor:
    """Exact operator norm of ``weight`` (``[out, in]``, or ``[..., out, in]`` per matrix) for ``kind``."""
    p_in, p_out = KIND_NORMS[check_kind(kind)]
    return operator_norm_pq(weight, p_in, p_out)
