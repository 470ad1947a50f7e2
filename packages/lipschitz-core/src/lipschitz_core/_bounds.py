"""Certified Lipschitz upper bounds from the actual weights, and empirical lower bounds."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from lipschitz_core._constraint import find_constraint
from lipschitz_core._layers import GroupSort, LipschitzLinear
from lipschitz_core._norms import KIND_NORMS, check_kind, operator_norm_pq


# Elementwise activations and their Lipschitz constants (in every lp norm, since they act per
# entry): the supremum of |f'| over the real line, for every parameter value torch accepts. The
# smooth ones without a closed form (GELU, SiLU, Mish) are the maximum of f' found on a dense
# float64 grid (tests/test_bounds.py recomputes it), rounded up in the 5th digit.
def _celu(m: nn.Module) -> float:
    if (
        float(m.alpha) < 0
    ):  # CELU(x) = alpha * (exp(x / alpha) - 1) for x < 0: unbounded slope when alpha < 0
        raise TypeError(
            f"lipschitz_bound: CELU with alpha={float(m.alpha)} < 0 has an unbounded slope (exp(x/alpha) as x -> -inf)"
        )
    return 1.0


def _softplus(m: nn.Module) -> float:
    # torch returns x itself once beta * x > threshold: a jump of log1p(exp(-threshold)) / |beta|
    jump = math.log1p(math.exp(-float(m.threshold))) / abs(float(m.beta))
    raise TypeError(
        f"lipschitz_bound: torch's Softplus(beta={float(m.beta):g}, threshold={float(m.threshold):g}) switches to the "
        f"identity at beta * x > threshold with a jump of {jump:.3g}, so it has no finite Lipschitz constant; its "
        "slope is < 1 elsewhere. Wrap it in a module with a `lipschitz_certificate` method if the jump is acceptable."
    )


def _prelu(m: nn.Module) -> float:
    return max(1.0, float(m.weight.detach().abs().max()))


_ELEMENTWISE: dict[type[nn.Module], Callable[[nn.Module], float]] = {
    nn.ReLU: lambda m: 1.0,
    nn.ReLU6: lambda m: 1.0,
    nn.Tanh: lambda m: 1.0,
    nn.Sigmoid: lambda m: 0.25,
    nn.Hardsigmoid: lambda m: (
        0.16666667163372040
    ),  # 1/6 rounded up to float32 (torch backward uses it)
    nn.Hardtanh: lambda m: (
        1.0
    ),  # slope 1 between min_val and max_val (torch requires max_val > min_val)
    nn.ELU: lambda m: max(1.0, abs(float(m.alpha))),  # slope alpha * exp(x) -> |alpha| as x -> 0-
    nn.CELU: _celu,
    nn.SELU: lambda m: (
        1.0507009873554804934193349852946 * 1.6732632423543772848170429916717
    ),  # scale * alpha
    nn.LeakyReLU: lambda m: max(1.0, abs(float(m.negative_slope))),
    # eval mode (where certificates apply): the fixed slope (lower + upper) / 2 for x < 0
    nn.RReLU: lambda m: max(1.0, abs(float(m.lower) + float(m.upper)) / 2),
    nn.PReLU: _prelu,  # learnable slopes: holds for the current ones
    nn.Softplus: _softplus,
    nn.LogSigmoid: lambda m: 1.0,  # slope 1 - sigmoid(x) < 1
    nn.Softsign: lambda m: 1.0,  # slope 1 / (1 + |x|)^2
    nn.Tanhshrink: lambda m: 1.0,  # slope tanh(x)^2
    nn.Softshrink: lambda m: 1.0,  # continuous; slope 0 inside [-lambda, lambda], 1 outside
    nn.Hardswish: lambda m: 1.5,  # slope (2x + 3) / 6 on (-3, 3) -> 1.5 as x -> 3-
    nn.GELU: lambda m: (
        1.1290
    ),  # max f' = 1.128904 (erf, at x = 1.4142), 1.128993 (tanh approximation)
    nn.SiLU: lambda m: 1.0999,  # max f' = 1.0998393 at x = 2.3994
    nn.Mish: lambda m: 1.0885,  # max f' = 1.0884982 at x = 1.4906
    nn.Identity: lambda m: 1.0,
    nn.Flatten: lambda m: 1.0,
}


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule of ``module`` in eval mode, and restore each one's own mode afterwards.

    ``module.train(was_training)`` would reset every submodule to the top module's flag; this
    restores the exact per-submodule modes (a frozen sub-network stays in eval, a training
    Dropout stays in training).
    """
    modes = [(m, m.training) for m in module.modules()]
    try:
        module.eval()
        yield module
    finally:
        for m, training in modes:
            m.training = training


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
        if module.dim != -1:
            raise TypeError(
                f"lipschitz_bound: GroupSort(dim={module.dim}) sorts along a dimension that is not the feature "
                "(last) dimension, e.g. across the batch, which mixes samples; only dim=-1 is certified"
            )
        return 1.0, p_cur  # sorting within groups is non-expansive in every lp norm
    if isinstance(module, nn.Dropout):
        if module.training and module.p > 0:
            raise TypeError(
                "lipschitz_bound: Dropout in training mode has no fixed Lipschitz constant; call .eval()"
            )
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
    with eval_mode(module):  # certificates are for the deployed (eval-mode) function
        factor, p_cur = _bound(module, p_in)
        out_dim = _output_dim(module)
        if p_cur != p_out:
            if out_dim is None and p_out < p_cur:
                raise TypeError(
                    "lipschitz_bound: cannot infer the output dimension to change norms at the end"
                )
            factor *= switch_cost(p_cur, p_out, out_dim or 1)
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


def _unit_dual_directions(
    n: int, dim: int, p_out: float, generator: torch.Generator | None, like: Tensor
) -> Tensor:
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
        raise ValueError(
            f"estimate_lipschitz needs x of shape [n >= 1, in_features], got {tuple(x.shape)}"
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError("estimate_lipschitz: x contains NaN or inf")
    with eval_mode(module):
        with torch.no_grad():
            out_dim = module(x[:1]).shape[-1]
        n = x.shape[0]
        if out_dim == 1:
            u = torch.ones(1, n, 1, dtype=x.dtype, device=x.device)
        elif _dual(p_out) == 1.0 and out_dim <= 16:
            u = (
                torch.eye(out_dim, dtype=x.dtype, device=x.device)
                .unsqueeze(1)
                .expand(out_dim, n, out_dim)
            )
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
                current = (
                    torch.where(better.unsqueeze(1), candidate, current)
                    .detach()
                    .requires_grad_(True)
                )
                value = torch.where(better, cand_value, value)
            best = max(best, float(value.max()))
    return best


def certified_radius(model: nn.Module, X: Tensor, norm: str = "two") -> Tensor:
    """Per-sample radius within which ``model``'s prediction provably cannot change.

    With ``L = lipschitz_bound(model, norm)`` (input norm p -> output norm q of ``norm``, e.g.
    ``"two"`` for l2 -> l2, ``"inf"`` for linf -> linf):

    - one output (a binary logit, predicted class ``z > 0``): ``|z| / L``;
    - K outputs (logits, predicted class ``k = argmax z``): ``min_j (z_k - z_j) / (L * ||e_k - e_j||_q*)``,
      where ``||e_k - e_j||_q*`` is 2 for a linf output norm, sqrt(2) for l2 and 1 for l1
      (``|d(z_k - z_j)| <= ||e_k - e_j||_q* * ||dz||_q``).

    Any ``x'`` with ``||x' - x||_p < radius`` gets the prediction of ``x`` (ties aside). The
    logits are computed in float64 on a copy of the model, so the radius is that of the
    exact-arithmetic function. Returns a float64 tensor of shape ``[n]``.
    """
    if not isinstance(X, Tensor) or X.dim() != 2 or X.shape[0] == 0:
        raise ValueError(
            f"certified_radius needs X as a tensor of shape [n >= 1, in_features], got {getattr(X, 'shape', type(X).__name__)}"
        )
    if not bool(torch.isfinite(X).all()):
        raise ValueError("certified_radius: X contains NaN or inf")
    _, p_out = KIND_NORMS[check_kind(norm)]
    lipschitz = lipschitz_bound(model, norm)
    if not lipschitz > 0:
        raise ValueError(
            f"certified_radius: the certified Lipschitz bound is {lipschitz}; the model is constant"
        )
    import copy

    model64 = copy.deepcopy(model).double()
    with eval_mode(model64), torch.no_grad():
        z = model64(
            X.detach()
            .double()
            .to(
                next(model64.parameters()).device
                if any(True for _ in model64.parameters())
                else X.device
            )
        )
    z = z.reshape(len(X), -1).cpu()
    if z.shape[1] == 1:
        return z[:, 0].abs() / lipschitz
    kappa = {1.0: 1.0, 2.0: math.sqrt(2.0), math.inf: 2.0}[p_out]
    top = z.argmax(dim=1)
    margins = z.gather(1, top[:, None]) - z
    margins[torch.arange(len(z)), top] = math.inf
    return margins.min(dim=1).values / (lipschitz * kappa)
