"""Bake normalized weights into plain nn.Linear layers for fast inference and export."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize

from lipschitz_core._layers import LipschitzLinear


def _plain_linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


def freeze(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every constrained layer replaced by a plain ``nn.Linear``.

    The weights are the eval-mode normalized weights (exact spectral norm for ``"two"``), so
    the copy computes exactly what ``module.eval()`` computes, at ``nn.Linear`` speed, with a
    plain state_dict (``weight``/``bias`` keys) for safetensors or ``torch.compile``. The
    original is left untouched; the copy is returned in eval mode.
    """
    frozen = copy.deepcopy(module)
    frozen.eval()
    if isinstance(frozen, LipschitzLinear):
        with torch.no_grad():
            return _plain_linear(frozen.normalized_weight(), frozen.bias).eval()
    with torch.no_grad():
        for name, child in list(frozen.named_modules()):
            if name == "":
                continue
            if isinstance(child, LipschitzLinear):
                replacement: nn.Module = _plain_linear(child.normalized_weight(), child.bias)
            elif parametrize.is_parametrized(child):
                for tensor_name in list(child.parametrizations.keys()):
                    parametrize.remove_parametrizations(child, tensor_name, leave_parametrized=True)
                continue
            else:
                continue
            parent_name, _, attr = name.rpartition(".")
            parent = frozen.get_submodule(parent_name) if parent_name else frozen
            setattr(parent, attr, replacement.eval())
        if parametrize.is_parametrized(frozen):
            for tensor_name in list(frozen.parametrizations.keys()):
                parametrize.remove_parametrizations(frozen, tensor_name, leave_parametrized=True)
    return frozen.eval()
