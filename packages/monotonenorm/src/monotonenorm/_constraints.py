"""Parsing and validation of monotonic constraints (shared by the layers, the wrapper and the estimators)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import Tensor, nn


class _Required:
    """Sentinel: the caller must say which features are monotone (no silent 'all increasing')."""

    def __repr__(self) -> str:
        return "<required>"


REQUIRED = _Required()

_MISSING_MESSAGE = (
    "monotonic_constraints is required: give one sign per input feature (+1 non-decreasing, "
    "-1 non-increasing, 0 free), e.g. [1, 0, -1], or a mapping {feature_index: sign}. "
    "There is no default, because 'every feature increasing' silently is rarely what you want."
)


def parse_constraints(
    constraints: object,
    n_features: int | None,
    *,
    n_outputs: int | None = None,
    name: str = "monotonic_constraints",
) -> Tensor:
    """Return the constraints as a float tensor of shape ``[n_features, 1]`` or ``[n_features, n_outputs]``.

    Accepts a sequence of signs (LightGBM's ``monotone_constraints`` style), a 2-D
    ``[n_features, n_outputs]`` array (per-output constraints), a tensor/ndarray of either
    shape, or a mapping ``{feature_index: sign}`` (features not named are free). Every entry
    must be -1, 0 or +1.
    """
    if constraints is None or isinstance(constraints, _Required):
        raise ValueError(_MISSING_MESSAGE)
    if isinstance(constraints, Mapping):
        if n_features is None:
            raise ValueError(
                f"{name} given as a mapping needs the number of input features; pass a full list of signs instead"
            )
        signs = np.zeros(n_features)
        for key, value in constraints.items():
            if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
                raise ValueError(f"{name}: mapping keys must be integer feature indices, got {key!r}")
            if not -n_features <= int(key) < n_features:
                raise ValueError(f"{name}: feature index {key} is out of range for {n_features} input features")
            signs[int(key)] = _sign(value, name)
        array = signs
    else:
        if isinstance(constraints, Tensor):
            array = constraints.detach().cpu().double().numpy()
        elif isinstance(constraints, (str, bytes)) or not isinstance(constraints, Iterable | np.ndarray):
            raise ValueError(f"{name} must be a sequence of signs or a mapping {{index: sign}}, got {constraints!r}")
        else:
            try:
                array = np.asarray(constraints, dtype=float)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} must contain only -1, 0 and +1, got {constraints!r}") from exc
    if array.ndim not in (1, 2) or array.shape[0] == 0:
        raise ValueError(f"{name} must be 1-D [n_features] or 2-D [n_features, n_outputs], got shape {array.shape}")
    bad = ~np.isin(array, (-1.0, 0.0, 1.0))
    if bad.any():
        raise ValueError(f"{name} must contain only -1, 0 and +1, found {sorted(set(array[bad].tolist()))}")
    if n_features is not None and array.shape[0] != n_features:
        raise ValueError(f"{name} has {array.shape[0]} entries but the model has {n_features} input features")
    if array.ndim == 1:
        array = array[:, None]
    if n_outputs is not None and array.shape[1] not in (1, n_outputs):
        raise ValueError(
            f"{name} has {array.shape[1]} columns (per-output constraints) but there are {n_outputs} outputs; "
            "give one column per output or a 1-D list shared by all outputs"
        )
    return torch.as_tensor(array, dtype=torch.get_default_dtype())


def _sign(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or value not in (-1, 0, 1):
        raise ValueError(f"{name}: signs must be -1, 0 or +1, got {value!r}")
    return float(value)


def infer_in_features(module: nn.Module) -> int | None:
    """Input width of the first linear layer in ``module`` (None if there is none)."""
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            return int(sub.in_features)
        in_features = getattr(sub, "in_features", None)
        if isinstance(in_features, int):
            return in_features
    return None
