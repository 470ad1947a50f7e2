"""Thin adapters that give lipschitz-core's layers the signatures of the authors' packages.

``monotonicnetworks`` 1.5.1 (and its predecessor ``monotonenorm`` 1.0.0) used positional
arguments and defaults that differ from lipschitz-core's keyword-only API; these subclasses only
translate arguments, the normalization itself is lipschitz-core's.
"""

from __future__ import annotations

import torch
from torch import nn

import lipschitz_core


class LipschitzLinear(lipschitz_core.LipschitzLinear):
    """Linear layer whose weight has operator norm ``kind`` <= ``lipschitz_const``.

    Signature of ``monotonicnetworks.LipschitzLinear``: ``(in_features, out_features, bias=True,
    lipschitz_const=1.0, kind="one-inf")``, and like it every row/column/entry is rescaled on its
    own (``vectorwise=True``). Differences from the original: ``layer.weight`` is the raw
    parameter (use ``layer.normalized_weight()`` for the weight the forward pass uses) and the
    state_dict keys are ``weight``/``bias`` instead of ``parametrizations.weight.original``.
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
