"""Certified Lipschitz upper bounds from the actual weights, and empirical lower bounds."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from lipschitz_core._constraint import find_constraint
from lipschitz_core._layers import GroupSort, LipschitzLinear
from lipschitz_core._norms import KIND_NORMS, check_kind, operator_norm_pq

# Elementwise activations and their Lipschitz constants (in every lp norm, since they act per entry).
_ELEMENTWISE: dict[type[nn.Module], Callable[[nn.Module], float]] = {
    nn.ReLU: lambda m: 1.0,
    nn.Tanh: lambda m: 1.0,
    nn.Sigmoid: lambda m: 0.25,
    nn.Hardtanh: lambda m: 1.0,
    nn.ELU: lambda m: max(1.0, float(m.alpha)),
    nn.LeakyReLU: lambda m: max(1.0, abs(float(m.negative_slope))),
    nn.Softplus: lambda m: 1.0,
    nn.GELU: lambda m: 1.13,  # max of d/dx x*Phi(x) is 1.1289 (at x = sqrt(2))
    nn.SiLU: lambda m: 1.1,  # max of d/dx x*sigmoid(x) is 1.0998
    nn.Identity: lambda m: 1.0,
    nn.Flatten: lambda m: 1.0,
}


def _norm_name(p: float) -> str:
    return "linf" if p == math.inf else f"l{p:g}"


def switch_cost(p_from: float, p_to: float, dim: int) -> float:
    """Smallest K with ||x||_{p_to} <= K ||x||_{p_from} for all x in R^dim."""
    if p_to >= p_from:
        return 1.0
    inv_to = 0.0 if p_to == math.inf else 1.0 / p_to
    inv_from = 0.0 if p_from == math.inf else 1.0 / p_from
    return float(dim) ** (inv_to - inv_from)


def _linear_weight(module: nn.Module) -> Tensor | None:
    if isinstance(module, LipschitzLinear):
        return module.normalized_weight()
    if isinstance(module, nn.Linear):
        return module.weight  # the parametrized (normalized) weight when direct_norm was applied
    return None


def _linear_step(module: nn.Module, p_cur: float) -> tuple[float, float]:
    weight = _linear_weight(module)
    assert weight is not None
    constraint = find_constraint(module)
    kind = constraint.kind if constraint is not None else getattr(module, "lipschitz_kind", None)
    if kind is not None:
        p_in, p_out = KIND_NORMS[kind]
    else:
        # Plain layer: keep the current norm when it has a tractable operator norm.
        p_in, p_out = (p_cur, p_cur) if p_cur in (1.0, 2.0, math.inf) else (2.0, 2.0)
    factor = switch_cost(p_cur, p_in, weight.shape[1])
    with torch.no_grad():
        factor *= float(operator_norm_pq(weight.detach().double(), p_in, p_out))
    return factor, p_out


def _bound(module: nn.Module, p_cur: float) -> tuple[float, float]:
    """Return (factor, output p-norm) for ``module`` given the input p-norm ``p_cur``."""
    hook = getattr(module, "lipschitz_certificate", None)
    if callable(hook):
        factor, p_out = hook(p_cur)
        return float(factor), float(p_out)
    if isinstance(module, nn.Sequential):
        total = 1.0
        for child in module:
            factor, p_cur = _bound(child, p_cur)
            total *= factor
        return total, p_cur
    if _linear_weight(module) is not None:
        return _linear_step(module, p_cur)
    if isinstance(module, GroupSort):
        return 1.0, p_cur  # sorting within groups is non-expansive in every lp norm
    if isinstance(module, nn.Dropout):
        if module.training and module.p > 0:
            raise TypeError("lipschitz_bound: Dropout in training mode has no fixed Lipschitz constant; call .eval()")
        return 1.0, p_cur
    for cls, constant in _ELEMENTWISE.items():
        if type(module) is cls:
            return constant(module), p_cur
    raise TypeError(
        f"lipschitz_bound cannot bound a {type(module).__name__} layer; supported: nn.Sequential of "
        "LipschitzLinear / nn.Linear (plain or direct_norm-constrained), GroupSort, Dropout (eval) and "
        f"{', '.join(sorted(c.__name__ for c in _ELEMENTWISE))}, or a module with a "
        "`lipschitz_certificate(p_in) -> (factor, p_out)` method"
    )


def lipschitz_bound(module: nn.Module, norm: str) -> float:
    """Certified upper bound on the Lipschitz constant of ``module`` for the norm pair ``norm``.

    ``norm`` uses the kind vocabulary for (input norm -> output norm): ``"one"`` l1->l1,
    ``"inf"`` linf->linf, ``"one-inf"`` l1->linf, ``"two-inf"`` l2->linf, ``"two"`` l2->l2.
    For a scalar output every output norm is the same, so ``"one-inf"`` bounds
    ``|f(x) - f(y)| <= L ||x - y||_1`` (each partial derivative is bounded by L).

    The bound is the product of exact per-layer operator norms of the **actual** (normalized)
    weights, in float64, with the exact spectral norm for ``"two"`` layers. A norm change between
    layers costs the exact equivalence constant. Unsupported layers raise ``TypeError``.
    """
    p_in, p_out = KIND_NORMS[check_kind(norm)]
    was_training = module.training
    module.eval()  # certificates are for the deployed (eval-mode) function
    try:
        factor, p_cur = _bound(module, p_in)
        out_dim = _output_dim(module)
        if p_cur != p_out:
            if out_dim is None and p_out < p_cur:
                raise TypeError("lipschitz_bound: cannot infer the output dimension to change norms at the end")
            factor *= switch_cost(p_cur, p_out, out_dim or 1)
    finally:
        module.train(was_training)
    return factor


def _output_dim(module: nn.Module) -> int | None:
    layers = list(module) if isinstance(module, nn.Sequential) else [module]
    for layer in reversed(layers):
        weight = _linear_weight(layer) if not isinstance(layer, nn.Sequential) else None
        if weight is not None:
            return int(weight.shape[0])
        if isinstance(layer, nn.Sequential):
            return _output_dim(layer)
        if hasattr(layer, "out_features"):
            return int(layer.out_features)
    return None


def _dual(p: float) -> float:
    return {1.0: math.inf, 2.0: 2.0, math.inf: 1.0}[p]


def _unit_dual_directions(n: int, dim: int, p_out: float, generator: torch.Generator | None, like: Tensor) -> Tensor:
    """Output directions u with ||u||_{q*} = 1 (extreme points of the dual ball where cheap)."""
    if dim == 1:
        return torch.ones(n, 1, dtype=like.dtype, device=like.device)
    q_star = _dual(p_out)
    if q_star == 1.0:  # extreme points of the l1 ball: signed basis vectors
        idx = torch.randint(dim, (n,), generator=generator)
        sign = torch.randint(2, (n,), generator=generator) * 2 - 1
        u = torch.zeros(n, dim)
        u[torch.arange(n), idx] = sign.float()
    elif q_star == math.inf:  # extreme points of the linf ball: sign vectors
        u = (torch.randint(2, (n, dim), generator=generator) * 2 - 1).float()
    else:
        u = torch.randn(n, dim, generator=generator)
        u = u / u.norm(dim=1, keepdim=True)
    return u.to(dtype=like.dtype, device=like.device)


def _local_constants(module: nn.Module, xs: Tensor, u: Tensor, p_star: float) -> Tensor:
    """||J(x)^T u||_{p*} per row, maximised over the rows of ``u`` ([k, n, out])."""
    best = None
    for direction in u:
        (grad,) = torch.autograd.grad((module(xs) * direction).sum(), xs)
        local = torch.linalg.vector_norm(grad, ord=p_star, dim=1)
        best = local if best is None else torch.maximum(best, local)
    assert best is not None
    return best


def estimate_lipschitz(
    module: nn.Module,
    x: Tensor,
    norm: str,
    *,
    steps: int = 50,
    step_size: float = 0.1,
    generator: torch.Generator | None = None,
) -> float:
    """Empirical lower bound on the Lipschitz constant of ``module`` (for ``norm``, as in :func:`lipschitz_bound`).

    For each row of ``x`` (shape ``[n, in_features]``) the local constant ``||J(x)^T u||_{p*}``
    over output directions u with ``||u||_{q*} = 1`` is a valid lower bound. An adversarial
    search (accept-if-better random moves whose scale shrinks over ``steps``; it works for
    piecewise-linear nets, whose gradient is locally constant) climbs from every row. For
    outputs of up to 16 dimensions with a linf output norm, every signed basis direction is
    tried, which makes the local value exact. Returns the largest value seen; never a
    certificate: compare it with :func:`lipschitz_bound`.
    """
    p_in, p_out = KIND_NORMS[check_kind(norm)]
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"estimate_lipschitz needs x of shape [n >= 1, in_features], got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("estimate_lipschitz: x contains NaN or inf")
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out_dim = module(x[:1]).shape[-1]
        n = x.shape[0]
        if out_dim == 1:
            u = torch.ones(1, n, 1, dtype=x.dtype, device=x.device)
        elif _dual(p_out) == 1.0 and out_dim <= 16:
            u = torch.eye(out_dim, dtype=x.dtype, device=x.device).unsqueeze(1).expand(out_dim, n, out_dim)
        else:
            u = _unit_dual_directions(n, out_dim, p_out, generator, x).unsqueeze(0)
        p_star = _dual(p_in)
        current = x.detach().clone().requires_grad_(True)
        value = _local_constants(module, current, u, p_star)
        best = float(value.max())
        scale = step_size * float(x.detach().std()) if n > 1 else step_size
        scale = scale if scale > 0 else step_size
        for step in range(steps):
            sigma = scale * (1.0 - step / max(1, steps))
            noise = torch.randn(current.shape, generator=generator).to(current)
            candidate = (current.detach() + sigma * noise).requires_grad_(True)
            cand_value = _local_constants(module, candidate, u, p_star)
            better = cand_value > value
            with torch.no_grad():
                current = torch.where(better.unsqueeze(1), candidate, current).detach().requires_grad_(True)
                value = torch.where(better, cand_value, value)
            best = max(best, float(value.max()))
    finally:
        module.train(was_training)
    return best
