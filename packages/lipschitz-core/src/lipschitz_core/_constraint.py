"""The normalization W -> W / max(1, ||W|| / c) as a reusable module and a torch parametrization."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from lipschitz_core._norms import check_constant, check_kind, operator_norm, vector_norms


def _non_finite(kind: str) -> FloatingPointError:
    return FloatingPointError(
        f"non-finite weight (NaN or inf) reached the {kind!r} normalization; "
        "check the learning rate and the inputs of the training step that produced it"
    )


def _check_finite(norms: Tensor, kind: str) -> None:
    # A non-finite weight gives a non-finite norm; fail loudly here instead of spreading NaN.
    if torch.compiler.is_compiling():
        return
    if not bool(torch.isfinite(norms).all()):
        raise _non_finite(kind)


def _host_norm(norm: Tensor, kind: str) -> float:
    """The norm read on the host (one sync), refusing NaN/inf."""
    value = norm.detach().item()
    if not math.isfinite(value):
        raise _non_finite(kind)
    return value


def _argmax_vector(weight: Tensor, kind: str) -> int | tuple[int, int]:
    """Index of the row/column/entry that attains the operator norm (where its subgradient lives)."""
    if kind == "inf":
        return int(torch.linalg.vector_norm(weight, ord=1, dim=1).argmax())
    if kind == "two-inf":
        return int(torch.linalg.vector_norm(weight, ord=2, dim=1).argmax())
    flat = int(weight.abs().argmax())  # one-inf
    return divmod(flat, weight.shape[1])


class _NormScale(torch.autograd.Function):
    """W -> W / d with d = n(W) / c (the active branch), gradient through n(W) written out.

    Used for large weights. Autograd through ``abs -> sum -> amax -> div`` makes about seven
    full passes over W per step (abs, its backward, the broadcast of the amax gradient, ...),
    although the subgradient of n(W) lives on one row/column/entry (or is u v^T for the
    spectral norm). Written out, the backward pass is ``G / d - <G, W> / (d^2 c) * dn/dW``: two
    passes. For small weights the Python overhead of a custom Function costs more than it
    saves, so they keep plain autograd (measured: tools/bench/lipschitz_layers.py).
    """

    @staticmethod
    def forward(ctx, weight, d, c, kind, u, v, norm):  # type: ignore[override]
        ctx.save_for_backward(weight, u, v)
        ctx.d, ctx.c, ctx.kind, ctx.norm = d, c, kind, norm
        return weight * (1.0 / d)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # type: ignore[override]
        weight, u, v = ctx.saved_tensors
        d, c, kind = ctx.d, ctx.c, ctx.kind
        grad = grad_out * (1.0 / d)
        coef = torch.dot(grad_out.reshape(-1), weight.reshape(-1))
        scale = -1.0 / (d * d * c)
        if kind == "two":
            grad.addcmul_(u.unsqueeze(1), v.unsqueeze(0) * coef, value=scale)
            return grad, None, None, None, None, None, None
        index = _argmax_vector(weight, kind)
        if kind in ("inf", "one-inf"):
            grad[index].addcmul_(weight[index].sign(), coef, value=scale)
        else:  # two-inf: d ||w_i|| / d w_i = w_i / ||w_i||
            grad[index].addcmul_(weight[index], coef, value=scale / ctx.norm)
        return grad, None, None, None, None, None, None


# Weights with at least this many entries take the hand-written backward (_NormScale).
_LARGE_WEIGHT = 65536


def _divide(weight: Tensor, norms: Tensor, max_norm: float, always_norm: bool, eps: float) -> Tensor:
    """W / max(1, n / c), or W * c / n with ``always_norm``; ``norms`` broadcasts against W."""
    ratio = norms / max_norm
    if always_norm:
        return weight / ratio.clamp_min(eps)
    return weight / ratio.clamp_min(1.0)


def normalize_weight(
    weight: Tensor, kind: str, max_norm: float = 1.0, *, always_norm: bool = False, eps: float = 1e-12
) -> Tensor:
    """Functional form of the constraint for one weight ``[out, in]`` or a batch ``[..., out, in]``.

    Each matrix is divided by ``max(1, ||W||_kind / max_norm)`` (or rescaled to exactly
    ``max_norm`` with ``always_norm``), with plain autograd through the exact norm (the exact SVD
    for ``"two"``). For stacks of independent layers evaluated with batched matmuls, e.g. one
    critic per event.
    """
    check_kind(kind)
    max_norm = check_constant(max_norm, "max_norm")
    if weight.dim() < 2:
        raise ValueError(f"normalize_weight needs a weight of shape [..., out, in], got {tuple(weight.shape)}")
    norms = operator_norm(weight, kind)
    _check_finite(norms, kind)
    return _divide(weight, norms[..., None, None], max_norm, always_norm, eps)


class OperatorNormConstraint(nn.Module):
    """Parametrization that bounds the operator norm ``kind`` of a weight by ``max_norm``.

    ``W -> W / max(1, n(W) / max_norm)``, or ``W -> W * max_norm / n(W)`` with ``always_norm``.
    ``n(W)`` is the operator norm (one scalar), or with ``vectorwise=True`` the per-row/column
    quantities of the original authors' package (every vector rescaled on its own; the operator
    norm is still bounded by ``max_norm``).

    For ``kind="two"`` the spectral norm is estimated in training mode by power iteration with
    persistent vectors (cheap, one matmul pair per step), and computed exactly in eval mode, so
    an evaluated or frozen model meets the bound exactly.
    """

    def __init__(
        self,
        kind: str,
        max_norm: float = 1.0,
        *,
        always_norm: bool = False,
        vectorwise: bool = False,
        shape: tuple[int, int] | None = None,
        n_power_iterations: int = 1,
        eps: float = 1e-12,
    ) -> None:
        super().__init__()
        self.kind = check_kind(kind)
        self.max_norm = check_constant(max_norm, "max_norm")
        self.always_norm = bool(always_norm)
        if vectorwise and self.kind == "two":
            raise ValueError("vectorwise=True is not defined for kind='two' (the spectral norm is one number)")
        self.vectorwise = bool(vectorwise)
        if isinstance(n_power_iterations, bool) or not isinstance(n_power_iterations, int) or n_power_iterations < 1:
            raise ValueError(f"n_power_iterations must be an integer >= 1, got {n_power_iterations!r}")
        self.n_power_iterations = n_power_iterations
        self.eps = float(eps)
        if self.kind == "two":
            if shape is None:
                raise ValueError("kind='two' needs the weight shape to allocate power-iteration vectors")
            out_features, in_features = shape
            u = F.normalize(torch.randn(out_features), dim=0, eps=eps)
            v = F.normalize(torch.randn(in_features), dim=0, eps=eps)
            self.register_buffer("_u", u)
            self.register_buffer("_v", v)

    def extra_repr(self) -> str:
        return (
            f"kind={self.kind!r}, max_norm={self.max_norm:g}, always_norm={self.always_norm}, "
            f"vectorwise={self.vectorwise}"
        )

    def _power_iteration(self, weight: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``n_power_iterations`` steps from the persistent vectors; returns (u, v, ||W v|| = u^T W v)."""
        with torch.no_grad():
            u = self._u
            for _ in range(self.n_power_iterations):
                v = weight.t().mv(u)
                v = v / torch.linalg.vector_norm(v).clamp_min(self.eps)
                wv = weight.mv(v)
                sigma = torch.linalg.vector_norm(wv)
                u = wv / sigma.clamp_min(self.eps)
        # fresh tensors rather than in-place copies: autograd keeps the ones this step used
        self._u, self._v = u, v
        return u, v, sigma

    def _spectral_norm(self, weight: Tensor) -> Tensor:
        if self.training:
            u, v, _ = self._power_iteration(weight)
            # sigma = u^T W v with u, v treated as constants: the standard spectral-norm gradient.
            return torch.dot(u, weight.mv(v))
        _check_finite(weight, self.kind)  # the SVD would fail with a LinAlgError on NaN
        return torch.linalg.matrix_norm(weight, ord=2)

    def norms(self, weight: Tensor) -> Tensor:
        """The quantity the weight is divided by (before clamping): scalar or per-vector."""
        if self.kind == "two":
            return self._spectral_norm(weight)
        if self.vectorwise:
            return vector_norms(weight, self.kind)
        return operator_norm(weight, self.kind)

    def _large_forward(self, weight: Tensor) -> Tensor:
        """Like :meth:`_scalar_forward`, with the norm computed without autograd and _NormScale's backward."""
        kind = self.kind
        u = v = None
        if kind == "two":
            u, v, norm_t = self._power_iteration(weight)
        else:
            with torch.no_grad():
                if kind == "inf":
                    norm_t = torch.linalg.vector_norm(weight, ord=1, dim=1).amax()
                elif kind == "one-inf":
                    norm_t = torch.linalg.vector_norm(weight, ord=float("inf"))
                else:  # two-inf
                    norm_t = torch.linalg.vector_norm(weight, ord=2, dim=1).amax()
        norm = _host_norm(norm_t, kind)
        if norm <= self.eps or (not self.always_norm and norm <= self.max_norm):
            return weight
        return _NormScale.apply(weight, norm / self.max_norm, self.max_norm, kind, u, v, norm)

    def _scalar_forward(self, weight: Tensor) -> Tensor:
        """Operator-norm (non-vectorwise) normalization on the fewest kernels we found.

        Plain autograd through ``abs -> sum -> amax -> div`` (a custom autograd.Function with a
        hand-written backward measured slower: its Python overhead outweighs the saved kernels).
        The norm is read once on the host to refuse non-finite weights and to skip the division
        entirely when the weight is already inside the ball.
        """
        kind = self.kind
        if kind == "two":
            u, v, _ = self._power_iteration(weight)
            norm_t = torch.dot(u, weight.mv(v))  # sigma = u^T W v, gradient u v^T
        elif kind == "inf":
            norm_t = weight.abs().sum(dim=1).amax()
        elif kind == "one":
            norm_t = weight.abs().sum(dim=0).amax()
        elif kind == "one-inf":
            norm_t = weight.abs().amax()
        else:  # two-inf
            norm_t = torch.linalg.vector_norm(weight, ord=2, dim=1).amax()
        norm = _host_norm(norm_t, kind)
        if norm <= self.eps or (not self.always_norm and norm <= self.max_norm):
            return weight  # inside the ball (or all zero): identity, and an identity gradient
        if self.max_norm == 1.0:
            return weight / norm_t
        return weight * (self.max_norm / norm_t)

    def forward(self, weight: Tensor) -> Tensor:
        fast = not self.vectorwise and not torch.compiler.is_compiling() and (self.kind != "two" or self.training)
        if fast and weight.dim() == 2:
            # "one" reduces over columns (a strided pass) and measured slower on this path
            if weight.numel() >= _LARGE_WEIGHT and self.kind != "one":
                return self._large_forward(weight)
            return self._scalar_forward(weight)
        norms = self.norms(weight)
        _check_finite(norms, self.kind)
        return _divide(weight, norms, self.max_norm, self.always_norm, self.eps)


def direct_norm(
    module: nn.Module,
    kind: str,
    always_norm: bool = False,
    max_norm: float | None = None,
    parameter_name: str = "weight",
    vectorwise: bool = False,
) -> nn.Module:
    """Constrain ``module.<parameter_name>`` (e.g. an ``nn.Linear``) to operator norm ``kind`` <= ``max_norm``.

    Registers an :class:`OperatorNormConstraint` parametrization (gradients flow through the
    normalization) and returns the same module. ``max_norm=None`` means 1.
    """
    weight = getattr(module, parameter_name, None)
    if not isinstance(weight, Tensor) or weight.dim() != 2:
        raise ValueError(
            f"direct_norm needs a 2-D parameter {parameter_name!r} of shape [out, in] on {type(module).__name__}, "
            f"got {None if weight is None else tuple(weight.shape)}"
        )
    constraint = OperatorNormConstraint(
        kind,
        1.0 if max_norm is None else max_norm,
        always_norm=always_norm,
        vectorwise=vectorwise,
        shape=tuple(weight.shape),
    ).to(device=weight.device, dtype=weight.dtype)
    parametrize.register_parametrization(module, parameter_name, constraint)
    return module


def find_constraint(module: nn.Module, parameter_name: str = "weight") -> OperatorNormConstraint | None:
    """The :class:`OperatorNormConstraint` acting on ``module.<parameter_name>``, if any."""
    own = getattr(module, "constraint", None)  # LipschitzLinear keeps its constraint as a submodule
    if isinstance(own, OperatorNormConstraint):
        return own
    if parametrize.is_parametrized(module, parameter_name):
        for p in module.parametrizations[parameter_name]:
            if isinstance(p, OperatorNormConstraint):
                return p
    return None

