"""Lipschitz-constrained linear layer and the GroupSort activation."""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lipschitz_core._constraint import OperatorNormConstraint
from lipschitz_core._norms import check_constant, check_kind


class LipschitzLinear(nn.Linear):
    """``nn.Linear`` whose weight is normalized so that its operator norm ``kind`` is <= ``lipschitz_const``.

    As in ``torch.nn.utils.parametrize`` and ``spectral_norm``, ``layer.weight`` is the
    **effective** (constrained) weight, ``W / max(1, ||W||_kind / c)`` (or ``W * c / ||W||_kind``
    with ``always_norm=True``), and the raw trainable parameter is ``layer.weight_orig``
    (state_dict keys ``weight_orig``/``bias``; 0.1 checkpoints with a ``weight`` key load too).
    Gradients flow through the normalization. The normalization leaves a relative slack of a
    few ulps (see :func:`lipschitz_core.norm_slack`) so that the exact float64 norm of the
    effective weight never exceeds ``c``.

    When no gradient is needed (eval under ``torch.no_grad``/``inference_mode``, or a frozen
    ``weight_orig``) the normalized weight is cached until ``weight_orig`` changes (its version
    counter, bumped by every optimizer step or in-place edit), so inference costs one ``F.linear``
    and, for ``kind="two"``, no Gram iteration or SVD per forward. Assigning ``layer.weight = W``
    or editing ``layer.weight`` in place (``copy_``, ``nn.init``) writes ``W`` into
    ``weight_orig`` (the effective weight is then ``W`` whenever ``W`` is inside the ball);
    edits through ``.data`` are not tracked.

    Args:
        in_features, out_features, bias: as ``nn.Linear``.
        kind: the operator norm that is bounded: ``"one"`` (l1->l1), ``"inf"`` (linf->linf),
            ``"one-inf"`` (l1->linf), ``"two-inf"`` (l2->linf) or ``"two"`` (l2->l2, spectral,
            bounded by Gram iteration in training and eval alike). No default on purpose: the
            right kind depends on where the layer sits (see :func:`lipschitz_mlp`).
        lipschitz_const: the bound c > 0.
        always_norm: rescale to exactly c instead of only shrinking.
        vectorwise: rescale each row/column on its own (the authors' ``monotonicnetworks``
            default); the operator norm is bounded either way.
        n_gram_iterations: Gram-iteration steps for ``kind="two"``.

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
        n_gram_iterations: int = 8,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        nn.Module.__init__(self)  # not nn.Linear.__init__: `weight` is a property here
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        in_features, out_features = int(in_features), int(out_features)
        check_kind(kind)
        lipschitz_const = check_constant(lipschitz_const)
        factory = {"device": device, "dtype": dtype}
        self.in_features = in_features
        self.out_features = out_features
        self.weight_orig = nn.Parameter(torch.empty(out_features, in_features, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.constraint = OperatorNormConstraint(
            kind,
            lipschitz_const,
            always_norm=always_norm,
            vectorwise=vectorwise,
            shape=(out_features, in_features),
            n_gram_iterations=n_gram_iterations,
        )
        self._clear_cache()
        self.reset_parameters()

    # -- the raw parameter, the effective weight and its cache ----------------------------------
    def _clear_cache(self) -> None:
        object.__setattr__(self, "_cache", None)
        object.__setattr__(self, "_cache_key", None)
        object.__setattr__(self, "_handed_out", None)

    def _sync(self) -> None:
        """Write an in-place edit of a handed-out ``.weight`` back into ``weight_orig``."""
        handed = self._handed_out
        if handed is not None:
            tensor, version = handed
            if tensor._version != version:
                object.__setattr__(self, "_handed_out", None)
                with torch.no_grad():
                    self.weight_orig.copy_(tensor.detach())

    def _needs_graph(self) -> bool:
        return torch.is_grad_enabled() and self.weight_orig.requires_grad

    def _cached_weight(self) -> Tensor:
        raw = self.weight_orig
        key = (raw._version, raw.data_ptr(), raw.dtype, raw.device, self.constraint.config_key())
        if self._cache is None or self._cache_key != key:
            with torch.no_grad():
                cache = self.constraint.forward(raw.detach())
                if cache is raw or cache.data_ptr() == raw.data_ptr():
                    cache = cache.clone()  # identity branch: never alias the parameter
            object.__setattr__(self, "_cache", cache)
            object.__setattr__(self, "_cache_key", key)
        return self._cache

    def normalized_weight(self) -> Tensor:
        """The weight the forward pass uses (norm-bounded); tracks gradients when they are enabled."""
        self._sync()
        if self._needs_graph():
            return self.constraint.forward(self.weight_orig)
        return self._cached_weight()

    @property
    def weight(self) -> Tensor:  # type: ignore[override]
        """The effective (constrained) weight ``[out, in]``; the raw parameter is ``weight_orig``."""
        self._sync()
        out = (
            self.constraint.forward(self.weight_orig)
            if self._needs_graph()
            else self._cached_weight().clone()
        )
        object.__setattr__(self, "_handed_out", (out, out._version))
        return out

    def __setattr__(self, name: str, value: object) -> None:
        if name == "weight" and "weight_orig" in self.__dict__.get("_parameters", {}):
            if not isinstance(value, Tensor) or tuple(value.shape) != tuple(self.weight_orig.shape):
                raise ValueError(
                    f"LipschitzLinear.weight must be set to a tensor of shape {tuple(self.weight_orig.shape)}, got "
                    f"{getattr(value, 'shape', type(value).__name__)}"
                )
            with torch.no_grad():
                self.weight_orig.copy_(value.detach())
            object.__setattr__(self, "_handed_out", None)
            return
        super().__setattr__(name, value)

    def _apply(self, fn, recurse=True):  # type: ignore[override]
        self._sync()  # a pending in-place edit of .weight must land before the storage moves
        self._clear_cache()  # .to(), .double(), .cuda() replace the parameter's storage
        return super()._apply(fn, recurse)

    def _save_to_state_dict(self, destination, prefix, keep_vars):  # type: ignore[override]
        self._sync()
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def __getstate__(self) -> dict:
        self._sync()
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        state["_cache"] = state["_cache_key"] = state["_handed_out"] = None
        return state

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        # 0.1 checkpoints stored the raw parameter under `weight`
        if prefix + "weight" in state_dict and prefix + "weight_orig" not in state_dict:
            state_dict[prefix + "weight_orig"] = state_dict.pop(prefix + "weight")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def reset_parameters(self) -> None:
        # The same initialisation as nn.Linear, so swapping layers changes nothing at the start.
        if "weight_orig" not in self._parameters:
            return
        nn.init.kaiming_uniform_(self.weight_orig, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def kind(self) -> str:
        """The bounded operator norm (see :data:`lipschitz_core.KINDS`)."""
        return self.constraint.kind

    @property
    def lipschitz_const(self) -> float:
        """The bound c on the operator norm of the effective weight."""
        return self.constraint.max_norm

    @property
    def always_norm(self) -> bool:
        """Whether the weight is always rescaled to c (else only shrunk)."""
        return self.constraint.always_norm

    @property
    def vectorwise(self) -> bool:
        """Whether each row/column/entry is rescaled on its own."""
        return self.constraint.vectorwise

    def forward(self, x: Tensor) -> Tensor:
        if self._handed_out is not None:
            self._sync()
        if torch.is_grad_enabled() and self.weight_orig.requires_grad:
            # .forward directly: skips nn.Module.__call__'s hook bookkeeping on the hot path
            return F.linear(x, self.constraint.forward(self.weight_orig), self.bias)
        return F.linear(x, self._cached_weight(), self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
            f"kind={self.kind!r}, lipschitz_const={self.lipschitz_const:g}, always_norm={self.always_norm}, "
            f"vectorwise={self.vectorwise}"
        )


class GroupSort(nn.Module):
    """Sort the features within consecutive groups: a gradient-norm-preserving activation.

    ``GroupSort(2)`` is MaxMin. The argument is the **group size** (as in deel-torchlip).
    The original ``monotonicnetworks.GroupSort`` took the **number of groups**; pass that as
    ``n_groups=`` instead. Giving both is an error.

    Shape:
        input ``[..., F]`` along ``dim`` -> same shape; F must be divisible by the group size.
    """

    def __init__(
        self, group_size: int | None = None, *, n_groups: int | None = None, dim: int = -1
    ) -> None:
        super().__init__()
        if group_size is not None and n_groups is not None:
            raise ValueError(
                "give either group_size (elements per group) or n_groups (number of groups), not both; "
                f"got group_size={group_size}, n_groups={n_groups}"
            )
        if group_size is None and n_groups is None:
            group_size = 2
        for name, value in (("group_size", group_size), ("n_groups", n_groups)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.group_size = group_size
        self.n_groups = n_groups
        self.dim = dim

    def _size(self, n_features: int) -> int:
        if self.group_size is not None:
            size = self.group_size
            if n_features % size:
                raise ValueError(
                    f"GroupSort: {n_features} features are not divisible by group_size={size}"
                )
            return size
        assert self.n_groups is not None
        if n_features % self.n_groups:
            raise ValueError(
                f"GroupSort: {n_features} features are not divisible by n_groups={self.n_groups}"
            )
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
