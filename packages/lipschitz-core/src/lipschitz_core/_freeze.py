"""Bake normalized weights into plain nn.Linear layers for fast inference and export."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize

from lipschitz_core._constraint import find_constraint
from lipschitz_core._layers import LipschitzLinear


def _plain_linear(weight: torch.Tensor, bias: torch.Tensor | None, kind: str | None) -> nn.Linear:
    layer = nn.Linear(
        weight.shape[1],
        weight.shape[0],
        bias=bias is not None,
        device=weight.device,
        dtype=weight.dtype,
    )
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    # Remember which norm pair the weight was built for, so lipschitz_bound stays as tight.
    layer.lipschitz_kind = kind
    return layer


def _replacement(module: nn.Module) -> nn.Linear | None:
    if isinstance(module, LipschitzLinear) and type(module).forward is LipschitzLinear.forward:
        # (subclasses with their own forward, e.g. monotonenorm.MonotonicLayer, are not a plain linear map)
        return _plain_linear(module.normalized_weight(), module.bias, module.kind)
    if isinstance(module, nn.Linear) and parametrize.is_parametrized(module, "weight"):
        constraint = find_constraint(module)
        # module.weight evaluates the parametrization (eval mode: exact norms)
        return _plain_linear(
            module.weight, module.bias, None if constraint is None else constraint.kind
        )
    return None


def freeze(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every constrained linear layer replaced by a plain ``nn.Linear``.

    The weights are the eval-mode normalized weights (exact spectral norm for ``"two"``), so
    the copy computes what ``module.eval()`` computes, at ``nn.Linear`` speed, with a plain
    state_dict (``weight``/``bias`` keys) for safetensors or ``torch.compile``. Each baked layer
    keeps a ``lipschitz_kind`` attribute so :func:`lipschitz_bound` stays as tight. The original
    is left untouched; the copy is returned in eval mode.
    """
    # Never call remove_parametrizations on a deepcopy: the parametrized class is shared with
    # the original, and removing the property from it would break the original module.
    frozen = copy.deepcopy(module)
    frozen.eval()
    with torch.no_grad():
        top = _replacement(frozen)
        if top is not None:
            return top.eval()
        for name, child in list(frozen.named_modules()):
            if name == "":
                continue
            replacement = _replacement(child)
            if replacement is None:
                continue
            parent_name, _, attr = name.rpartition(".")
            parent = frozen.get_submodule(parent_name) if parent_name else frozen
            setattr(parent, attr, replacement.eval())
    return frozen.eval()
