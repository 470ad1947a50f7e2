"""Builders for Lipschitz MLPs whose per-layer kinds compose to a requested norm pair."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from torch import nn

from lipschitz_core._layers import GroupSort, LipschitzLinear
from lipschitz_core._norms import check_constant, check_kind

# (first layer kind, later layers kind) that compose to each input->output norm pair.
_RECIPES: dict[str, tuple[str, str]] = {
    "one-inf": ("one-inf", "inf"),  # l1 input: each partial derivative bounded (monotonic nets)
    "two-inf": ("two-inf", "inf"),  # l2 input, linf between layers (Euclidean critics)
    "two": ("two", "two"),
    "inf": ("inf", "inf"),
    "one": ("one", "one"),
}


def lipschitz_mlp(
    in_features: int,
    hidden: int,
    out_features: int,
    depth: int,
    *,
    lipschitz_const: float,
    norm: str,
    group_size: int = 2,
    bias: bool = True,
    always_norm: bool = False,
    vectorwise: bool = False,
    kinds: Sequence[str] | None = None,
) -> nn.Sequential:
    """An MLP of ``depth`` :class:`LipschitzLinear` layers with :class:`GroupSort` between them.

    The constant is split evenly over the layers (``lipschitz_const ** (1 / depth)`` each) and the
    per-layer kinds are picked so the certified bound for ``norm`` (see
    :func:`lipschitz_core.lipschitz_bound`) is at most ``lipschitz_const``:

    ========== =============================
    norm       kinds (first, rest)
    ========== =============================
    one-inf    one-inf, inf   (monotonic nets)
    two-inf    two-inf, inf   (Euclidean critics)
    two        two throughout
    inf        inf throughout
    one        one throughout
    ========== =============================

    ``kinds`` (one per layer) overrides the recipe, e.g. ``["two-inf", "inf", "inf"]``; the
    certified bound for ``norm`` then accounts for every norm change (it can exceed
    ``lipschitz_const`` when the kinds do not compose to ``norm``: check it with
    ``lipschitz_bound``). ``vectorwise=True`` rescales each row/column/entry on its own (the
    authors' default; not defined for ``"two"``).
    """
    check_kind(norm)
    lipschitz_const = check_constant(lipschitz_const)
    for name, value in (
        ("in_features", in_features),
        ("hidden", hidden),
        ("out_features", out_features),
        ("depth", depth),
    ):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    in_features, hidden, out_features, depth = (
        int(in_features),
        int(hidden),
        int(out_features),
        int(depth),
    )
    if depth > 1 and hidden % group_size:
        raise ValueError(f"hidden={hidden} must be divisible by group_size={group_size}")
    first, rest = _RECIPES[norm]
    if kinds is None:
        layer_kinds = [first] + [rest] * (depth - 1)
    else:
        if isinstance(kinds, str) or len(kinds) != depth:
            raise ValueError(f"kinds must list one kind per layer ({depth}), got {kinds!r}")
        layer_kinds = [check_kind(k) for k in kinds]
    per_layer = lipschitz_const ** (1.0 / depth)
    widths = [in_features] + [hidden] * (depth - 1) + [out_features]
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(
            LipschitzLinear(
                widths[i],
                widths[i + 1],
                bias=bias,
                kind=layer_kinds[i],
                lipschitz_const=per_layer,
                always_norm=always_norm,
                vectorwise=bool(vectorwise) and layer_kinds[i] != "two",
            )
        )
        if i < depth - 1:
            layers.append(GroupSort(group_size))
    return nn.Sequential(*layers)
