"""Thin adapters that give lipschitz-core's layers the signatures of the authors' packages.

``monotonicnetworks`` 1.5.1 (and its predecessor ``monotonenorm`` 1.0.0) used positional
arguments and defaults that differ from lipschitz-core's keyword-only API; these subclasses only
translate arguments, the normalization itself is lipschitz-core's.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import torch
from torch import nn

import lipschitz_core


class LipschitzLinear(lipschitz_core.LipschitzLinear):
    """Linear layer whose weight has operator norm ``kind`` <= ``lipschitz_const``.

    Signature of ``monotonicnetworks.LipschitzLinear``: ``(in_features, out_features, bias=True,
    lipschitz_const=1.0, kind="one-inf")``; like it, an ``nn.Linear`` subclass whose ``.weight``
    is the effective (normalized) weight, with every row/column/entry rescaled on its own
    (``vectorwise=True``). The raw parameter is ``weight_orig`` (state_dict keys
    ``weight_orig``/``bias`` instead of ``parametrizations.weight.original``/``bias``/
    ``lipschitz_const``): load the authors' checkpoints with
    :func:`load_monotonicnetworks_state_dict`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        lipschitz_const: float = 1.0,
        kind: str = "one-inf",
        *,
        always_norm: bool = False,
        vectorwise: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            in_features,
            out_features,
            bias,
            kind=kind,
            lipschitz_const=lipschitz_const,
            always_norm=always_norm,
            vectorwise=vectorwise,
            device=device,
            dtype=dtype,
        )


class GroupSort(lipschitz_core.GroupSort):
    """Sort features within groups. ``GroupSort(n)`` means **n groups**, as in ``monotonicnetworks``.

    ``GroupSort(2)`` on 32 features sorts two groups of 16. For MaxMin (pairs) use
    ``GroupSort(group_size=2)`` or ``GroupSort(width // 2)``. ``axis`` is the original's name
    for the sorted dimension. Empty batches pass through.
    """

    def __init__(
        self, n_groups: int | None = None, axis: int = -1, *, group_size: int | None = None
    ) -> None:
        if n_groups is None and group_size is None:
            raise ValueError(
                "GroupSort needs n_groups (the number of groups, positional) or group_size="
            )
        super().__init__(group_size, n_groups=n_groups, dim=axis)

    @property
    def axis(self) -> int:
        return self.dim


def direct_norm(
    layer: nn.Module,
    kind: str = "one",
    always_norm: bool = False,
    max_norm: float | None = None,
    parameter_name: str = "weight",
    vectorwise: bool = True,
) -> nn.Module:
    """Constrain ``layer.<parameter_name>`` to operator norm ``kind`` <= ``max_norm`` (default 1).

    Same signature and defaults as ``monotonicnetworks.direct_norm`` (``kind="one"``,
    ``vectorwise=True``); implemented by :func:`lipschitz_core.direct_norm` (a torch
    parametrization, gradients flow through the normalization). Returns the same layer.
    ``kind="one"`` bounds l1 -> l1; for networks whose inputs are constrained per feature, use
    ``"one-inf"`` in the first layer and ``"inf"`` afterwards.
    """
    return lipschitz_core.direct_norm(
        layer,
        kind,
        always_norm=always_norm,
        max_norm=max_norm,
        parameter_name=parameter_name,
        vectorwise=vectorwise,
    )


_THEIR_RAW = "parametrizations.weight.original"


def load_monotonicnetworks_state_dict(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor] | str | os.PathLike,
    *,
    strict: bool = True,
) -> nn.Module:
    """Load a checkpoint saved by the authors' ``monotonicnetworks`` (1.5.x) into our layers.

    Build ``model`` with the same architecture from :mod:`monotonenorm`'s compatible classes
    (``LipschitzLinear``, ``GroupSort``, ``MonotonicWrapper``, ``MonotonicLayer``, or
    ``direct_norm`` on ``nn.Linear``), with the same constants, kinds and constraints; then::

        load_monotonicnetworks_state_dict(model, torch.load("their.pt", weights_only=True))

    Key mapping: ``X.parametrizations.weight.original`` becomes ``X.weight_orig`` where ``X``
    is one of our ``LipschitzLinear`` layers (``direct_norm`` layers keep the key); their
    ``lipschitz_const`` buffers of linear layers and their wrappers' ``lipschitz_const`` /
    ``monotonic_constraints`` are checked against ours (a mismatch is a ``ValueError`` naming
    both values, since the model would then compute another function). The outputs then equal
    theirs up to the rounding slack (a relative few 1e-7, see ``lipschitz_core.norm_slack``).
    ``state_dict`` may be a path (read with ``torch.load(weights_only=True)``). Returns ``model``.
    """
    if isinstance(state_dict, (str, os.PathLike)):
        state_dict = torch.load(state_dict, map_location="cpu", weights_only=True)
    if not isinstance(state_dict, Mapping):
        raise ValueError(
            f"state_dict must be a mapping of tensors or a path, got {type(state_dict).__name__}"
        )
    modules = dict(model.named_modules())
    ours = model.state_dict()
    converted: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        prefix, _, leaf = key.rpartition(".")
        owner = modules.get(prefix)
        if key.endswith("." + _THEIR_RAW) or key == _THEIR_RAW:
            layer_name = key[: -len(_THEIR_RAW)].rstrip(".")
            layer = modules.get(layer_name)
            if isinstance(layer, lipschitz_core.LipschitzLinear):
                converted[(layer_name + "." if layer_name else "") + "weight_orig"] = value
                continue
        elif leaf == "lipschitz_const" and key not in ours:
            expected = getattr(owner, "lipschitz_const", None)
            if expected is None:
                raise ValueError(
                    f"{key}: the checkpoint has a Lipschitz constant there but the model has no such layer"
                )
            _check_same(key, float(value.reshape(-1)[0]), float(expected))
            continue
        elif leaf == "monotonic_constraints" and key in ours:
            theirs = value.to(ours[key].dtype)
            if theirs.dim() == 1:
                theirs = theirs[:, None]
            try:
                theirs = theirs.expand_as(ours[key])
            except RuntimeError:
                raise ValueError(
                    f"{key}: the checkpoint's constraints have shape {tuple(value.shape)}, the model's {tuple(ours[key].shape)}"
                ) from None
            if not torch.equal(theirs, ours[key]):
                raise ValueError(
                    f"{key}: the checkpoint's constraints {value.flatten().tolist()} differ from the model's "
                    f"{ours[key].flatten().tolist()}; build the model with the checkpoint's constraints"
                )
            converted[key] = ours[key]
            continue
        elif leaf == "lipschitz_const" and key in ours:
            _check_same(key, float(value.reshape(-1)[0]), float(ours[key].reshape(-1)[0]))
            converted[key] = ours[key]
            continue
        converted[key] = value
    model.load_state_dict(converted, strict=strict)
    return model


def _check_same(key: str, theirs: float, ours: float) -> None:
    if not math.isclose(theirs, ours, rel_tol=1e-6):
        raise ValueError(
            f"{key}: the checkpoint was trained with {theirs:.7g}, the model is built with {ours:.7g}"
        )
