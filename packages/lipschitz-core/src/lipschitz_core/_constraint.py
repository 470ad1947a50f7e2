"""The normalization W -> W / max(1, ||W|| / c) as a reusable module and a torch parametrization."""

from __future__ import annotations

import functools
import math
import numbers

import torch
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
    although the subgradient of n(W) lives on one row or entry. Written out, the backward pass
    is ``G / d - <G, W> / (d^2 c) * dn/dW``: two passes. For small weights the Python overhead
    of a custom Function costs more than it saves, so they keep plain autograd (measured:
    tools/bench/lipschitz_layers.py).
    """

    @staticmethod
    def forward(ctx, weight, d, c, kind, u, v, norm):  # type: ignore[override]
        ctx.save_for_backward(weight)
        ctx.d, ctx.c, ctx.kind, ctx.norm = d, c, kind, norm
        return weight * (1.0 / d)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # type: ignore[override]
        (weight,) = ctx.saved_tensors
        d, c, kind = ctx.d, ctx.c, ctx.kind
        grad = grad_out * (1.0 / d)
        coef = torch.dot(grad_out.reshape(-1), weight.reshape(-1))
        scale = -1.0 / (d * d * c)
        index = _argmax_vector(weight, kind)
        if kind in ("inf", "one-inf"):
            grad[index].addcmul_(weight[index].sign(), coef, value=scale)
        else:  # two-inf: d ||w_i|| / d w_i = w_i / ||w_i||
            grad[index].addcmul_(weight[index], coef, value=scale / ctx.norm)
        return grad, None, None, None, None, None, None


# Spectral norms of weights up to this rank use the exact float64 SVD, larger ones Gram iteration
# (a handful of matmuls, GPU-friendly); both are deterministic functions of the weight.
_SVD_MAX_RANK = 256

# Weights with at least this many entries take the hand-written backward (_NormScale).
_LARGE_WEIGHT = 65536


_EPS64 = float(torch.finfo(torch.float64).eps)


def norm_slack(weight: Tensor, kind: str) -> float:
    """Relative slack ``delta``: weights are normalized to ``c * (1 - delta)`` instead of ``c``.

    Rounding the rescaled weight to its dtype moves every entry by at most half an ulp, and the
    norm the weight is divided by is itself computed in floating point (a sum of ``n`` terms is
    off by at most ``n * eps`` relative, whatever the summation order), so an exactly normalized
    weight could land a few ulps above ``c``. The certificate compares exactly (in float64),
    so the normalization leaves room for both: ``delta = 2 eps + 2 n eps_norm`` (``n`` = rows +
    columns, ``eps_norm`` the epsilon of the dtype the norm is computed in), about 1.6e-5 for a
    float32 64x64 weight. For the spectral kind the bound is a float64 Gram iteration and an
    entrywise relative perturbation of ``eps`` can grow the norm by ``eps * sqrt(rank)``.
    """
    return _slack(weight.dtype, int(weight.shape[-2]), int(weight.shape[-1]), kind)


@functools.lru_cache(maxsize=256)
def _slack(dtype: torch.dtype, rows: int, cols: int, kind: str) -> float:
    eps = float(torch.finfo(dtype).eps) if dtype.is_floating_point else _EPS64
    n_reduce = rows + cols
    if kind == "two":
        return 4.0 * eps * math.sqrt(min(rows, cols)) + 16.0 * n_reduce * _EPS64
    norm_eps = float(torch.finfo(_norm_dtype(dtype)).eps)
    return 2.0 * eps + 2.0 * (n_reduce + 2) * norm_eps + 4.0 * n_reduce * _EPS64


def _norm_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def gram_spectral_bound(weight: Tensor, n_iterations: int = 8) -> Tensor:
    """Guaranteed upper bound on the spectral norm by Gram iteration (Delattre et al., arXiv 2305.16173).

    ``G_0 = W``, ``G_{t+1} = G_t^T G_t`` (rescaled by its Frobenius norm each step to stay in
    range); ``sigma_1(W) <= ||G_t||_F ** (2 ** -t)``, with equality in the limit. After ``t``
    steps the bound exceeds ``sigma_1`` by at most a factor ``rank ** (2 ** -(t + 1))`` (1.4 % for
    rank 1024 and t = 8; far less when the top singular value is separated). Computed in float64
    and differentiable (plain autograd through ``t`` matmuls of the smaller Gram side).
    ``weight`` is ``[out, in]`` or a batch ``[..., out, in]``.
    """
    w = weight.double()
    if w.shape[-2] < w.shape[-1]:
        w = w.mT  # W^T W is then the smaller of the two Gram matrices; sigma is the same
    log_scale = torch.zeros(w.shape[:-2], dtype=torch.float64, device=w.device)
    for _ in range(n_iterations):
        fro = torch.linalg.matrix_norm(w).clamp_min(1e-300)
        log_scale = 2.0 * (log_scale + torch.log(fro))
        w = w / fro[..., None, None]
        w = w.mT @ w
    fro = torch.linalg.matrix_norm(w).clamp_min(1e-300)
    return torch.exp((torch.log(fro) + log_scale) / float(2**n_iterations))


def _divide(weight: Tensor, norms: Tensor, target: float, always_norm: bool, eps: float) -> Tensor:
    """W / max(1, n / target), or W * target / n with ``always_norm``; ``norms`` broadcasts against W."""
    ratio = norms / target
    divisor = ratio.clamp_min(eps) if always_norm else ratio.clamp_min(1.0)
    return (weight / divisor).to(weight.dtype)


def normalize_weight(
    weight: Tensor,
    kind: str,
    max_norm: float = 1.0,
    *,
    always_norm: bool = False,
    eps: float = 1e-12,
) -> Tensor:
    """Functional form of the constraint for one weight ``[out, in]`` or a batch ``[..., out, in]``.

    Each matrix is divided by ``max(1, ||W||_kind / c')`` (or rescaled to exactly ``c'`` with
    ``always_norm``), where ``c' = max_norm * (1 - delta)`` leaves room for rounding (see
    :func:`norm_slack`), so the exact float64 operator norm of the result is <= ``max_norm``.
    Plain autograd through the exact norm, computed in float64 (the exact SVD for ``"two"``).
    For stacks of independent layers evaluated with batched matmuls, e.g. one critic per event.
    """
    check_kind(kind)
    max_norm = check_constant(max_norm, "max_norm")
    if weight.dim() < 2:
        raise ValueError(
            f"normalize_weight needs a weight of shape [..., out, in], got {tuple(weight.shape)}"
        )
    if kind == "two":
        norms = torch.linalg.matrix_norm(weight.double(), ord=2)  # exact (SVD), float64
    else:
        norms = operator_norm(weight.to(_norm_dtype(weight.dtype)), kind)
    _check_finite(norms, kind)
    target = max_norm * (1.0 - norm_slack(weight, kind))
    return _divide(weight, norms[..., None, None], target, always_norm, eps)


class OperatorNormConstraint(nn.Module):
    """Parametrization that bounds the operator norm ``kind`` of a weight by ``max_norm``.

    ``W -> W / max(1, n(W) / c')``, or ``W -> W * c' / n(W)`` with ``always_norm``, where
    ``c' = max_norm * (1 - delta)`` (a relative slack of a few ulps, see :func:`norm_slack`) so
    that the exact float64 norm of the rounded result never exceeds ``max_norm``. ``n(W)`` is
    the operator norm (one scalar, computed in float64), or with ``vectorwise=True`` the
    per-row/column quantities of the original authors' package (every vector rescaled on its
    own; the operator norm is still bounded by ``max_norm``).

    For ``kind="two"``, ``n(W)`` is the exact float64 spectral norm (``svdvals``) when
    ``min(out, in) <= 256``, else the Gram-iteration upper bound (:func:`gram_spectral_bound`,
    ``n_gram_iterations`` steps), in training and in eval mode alike: the constraint is a
    deterministic function of ``W``, so the trained function is the certified one, and the
    spectral norm of the result is <= ``max_norm`` at every step (0.1 used one power-iteration
    step in training, an underestimate).
    """

    def __init__(
        self,
        kind: str,
        max_norm: float = 1.0,
        *,
        always_norm: bool = False,
        vectorwise: bool = False,
        shape: tuple[int, int] | None = None,
        n_gram_iterations: int = 8,
        eps: float = 1e-12,
    ) -> None:
        super().__init__()
        self.kind = check_kind(kind)
        self.max_norm = check_constant(max_norm, "max_norm")
        self.always_norm = bool(always_norm)
        if vectorwise and self.kind == "two":
            raise ValueError(
                "vectorwise=True is not defined for kind='two' (the spectral norm is one number)"
            )
        self.vectorwise = bool(vectorwise)
        if (
            isinstance(n_gram_iterations, bool)
            or not isinstance(n_gram_iterations, numbers.Integral)
            or n_gram_iterations < 1
        ):
            raise ValueError(
                f"n_gram_iterations must be an integer >= 1, got {n_gram_iterations!r}"
            )
        self.n_gram_iterations = int(n_gram_iterations)
        self.eps = float(eps)
        self.shape = None if shape is None else tuple(int(s) for s in shape)

    def extra_repr(self) -> str:
        return (
            f"kind={self.kind!r}, max_norm={self.max_norm:g}, always_norm={self.always_norm}, "
            f"vectorwise={self.vectorwise}"
        )

    def config_key(self) -> tuple:
        """Everything the normalized weight depends on besides the weight itself (for caches)."""
        return (self.kind, self.max_norm, self.always_norm, self.vectorwise, self.n_gram_iterations)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        # 0.1 kept power-iteration vectors for kind="two"; the Gram bound needs no state.
        for stale in ("_u", "_v"):
            state_dict.pop(prefix + stale, None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def target(self, weight: Tensor) -> float:
        """``max_norm * (1 - delta)``: the norm the weight is rescaled to."""
        return self.max_norm * (1.0 - norm_slack(weight, self.kind))

    def norms(self, weight: Tensor) -> Tensor:
        """The quantity the weight is divided by (before clamping): scalar or per-vector.

        Computed in the weight's dtype (float32 for half types); the float64 Gram bound for ``"two"``.
        """
        if self.kind == "two":
            if min(weight.shape[-2:]) <= _SVD_MAX_RANK:
                # small: the exact float64 spectral norm (svdvals; its gradient is stable)
                _check_finite(weight, self.kind)  # the SVD fails with a LinAlgError on NaN
                return torch.linalg.matrix_norm(weight.double(), ord=2)
            return gram_spectral_bound(weight, self.n_gram_iterations)
        w = weight.to(_norm_dtype(weight.dtype))
        if self.vectorwise:
            return vector_norms(w, self.kind)
        return operator_norm(w, self.kind)

    def _large_forward(self, weight: Tensor, target: float) -> Tensor:
        """Like :meth:`_scalar_forward`, with the norm computed without autograd and _NormScale's backward."""
        kind = self.kind
        with torch.no_grad():
            w = weight.to(_norm_dtype(weight.dtype))
            if kind == "inf":
                norm_t = torch.linalg.vector_norm(w, ord=1, dim=1).amax()
            elif kind == "one-inf":
                norm_t = torch.linalg.vector_norm(w, ord=float("inf"))
            else:  # two-inf
                norm_t = torch.linalg.vector_norm(w, ord=2, dim=1).amax()
        norm = _host_norm(norm_t, kind)
        if norm <= self.eps or (not self.always_norm and norm <= target):
            return weight
        return _NormScale.apply(weight, norm / target, target, kind, None, None, norm)

    def _scalar_forward(self, weight: Tensor, target: float) -> Tensor:
        """Operator-norm (non-vectorwise) normalization on the fewest kernels we found.

        Plain autograd through the norm (``abs -> sum -> amax``, or the Gram bound). The
        norm is read once on the host to refuse non-finite weights and to skip the division
        entirely when the weight is already inside the ball.
        """
        norm_t = self.norms(weight)
        norm = _host_norm(norm_t, self.kind)
        if norm <= self.eps or (not self.always_norm and norm <= target):
            return weight  # inside the ball (or all zero): identity, and an identity gradient
        if norm_t.dtype != weight.dtype:  # the float64 Gram bound, or a half-precision weight
            return weight * (target / norm_t).to(weight.dtype)
        if target == 1.0:
            return weight / norm_t
        return weight * (target / norm_t)

    def forward(self, weight: Tensor) -> Tensor:
        if not (torch.is_grad_enabled() and weight.requires_grad):
            # no graph to build (eval under no_grad / inference_mode): reuse the last result while
            # the same parameter is unchanged (its version counter), e.g. for direct_norm layers
            key = (weight._version, weight.data_ptr(), weight.dtype, weight.device, self.config_key())
            cache = self.__dict__.get("_eval_cache")
            if cache is not None and cache[0] is weight and cache[1] == key and cache[2]._version == cache[3]:
                return cache[2]  # (an in-place edit of the returned tensor bumps its version: recomputed)
            out = self._normalize(weight)
            if isinstance(weight, nn.Parameter):  # only the module's own parameter, never a temporary
                self.__dict__["_eval_cache"] = (weight, key, out, out._version)
            return out
        self.__dict__.pop("_eval_cache", None)
        return self._normalize(weight)

    def _normalize(self, weight: Tensor) -> Tensor:
        target = self.target(weight)
        if not self.vectorwise and not torch.compiler.is_compiling() and weight.dim() == 2:
            # "one" reduces over columns (a strided pass) and measured slower on the large path
            if weight.numel() >= _LARGE_WEIGHT and self.kind not in ("one", "two"):
                return self._large_forward(weight, target)
            return self._scalar_forward(weight, target)
        norms = self.norms(weight)
        _check_finite(norms, self.kind)
        return _divide(weight, norms, target, self.always_norm, self.eps)


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


def find_constraint(
    module: nn.Module, parameter_name: str = "weight"
) -> OperatorNormConstraint | None:
    """The :class:`OperatorNormConstraint` acting on ``module.<parameter_name>``, if any."""
    own = getattr(module, "constraint", None)  # LipschitzLinear keeps its constraint as a submodule
    if isinstance(own, OperatorNormConstraint):
        return own
    if parametrize.is_parametrized(module, parameter_name):
        for p in module.parametrizations[parameter_name]:
            if isinstance(p, OperatorNormConstraint):
                return p
    return None
