"""``estimate_emd``: the EMD between two weighted clouds from a certified 1-Lipschitz critic."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from emd_lipschitz._critic import BatchedCritic
from emd_lipschitz._dual import (
    CriticConfig,
    DualProblem,
    Ground,
    ctransform_refine,
    normalization,
    semidual_refine,
    train_critic,
    transport_plan_cost,
)
from emd_lipschitz._optim import intra_op_threads
from emd_lipschitz._validate import (
    as_points,
    as_weights,
    check_balance,
    check_radius,
    check_same_dim,
    check_seed,
)

REFINE_MODES = ("semidual", "ctransform", "none")


class Critic(nn.Module):
    """A trained critic ``f(p) = clamp(kappa * h((p - centre) / scale))`` as a plain module.

    ``h`` is a ``lipschitz_core.lipschitz_mlp`` (norm "two-inf"); ``kappa = scale / R`` (``R = 1``
    without a radius), so f is (1/R)-Lipschitz in l2; ``clamp`` to [-1, 1] only when ``flat``.
    """

    def __init__(self, mlp: nn.Sequential, centre: Tensor, scale: float, R: float | None, flat: bool) -> None:
        super().__init__()
        self.mlp = mlp
        self.register_buffer("centre", centre.detach().double().reshape(-1))
        self.scale = float(scale)
        self.R = R
        self.flat = bool(flat)

    def forward(self, points: Tensor) -> Tensor:
        """``[n, d] -> [n, 1]`` (the module convention of lipschitz-core; see :meth:`potential`)."""
        dtype = next(self.mlp.parameters()).dtype
        z = (points.to(dtype) - self.centre.to(dtype)) / self.scale
        f = self.mlp(z) * (self.scale / (1.0 if self.R is None else self.R))
        return f.clamp(-1.0, 1.0) if self.flat else f

    def potential(self, points: Tensor) -> Tensor:
        """The Kantorovich potential at ``points``: ``[n, d] -> [n]``."""
        return self.forward(points).squeeze(-1)

    def lipschitz_certificate(self, p_in: float) -> tuple[float, float]:
        """For ``lipschitz_core.lipschitz_bound(critic, "two-inf")``: the bound of f in l2."""
        from lipschitz_core import lipschitz_bound

        if p_in != 2.0:
            raise TypeError("the critic is certified for the l2 input norm only (use norm='two-inf')")
        return lipschitz_bound(self.mlp, "two-inf") / (1.0 if self.R is None else self.R), math.inf


@dataclass
class EMDResult:
    """What :func:`estimate_emd` returns.

    Attributes:
        value: the estimate (float): a certified lower bound on the exact EMD (up to float64
            rounding), from the refined potentials.
        tensor: the same number as a 0-d tensor, differentiable in the positions and weights of
            both clouds (plan-based gradients with refinement "semidual", critic gradients otherwise).
        critic: the trained critic (:class:`Critic`), 1-Lipschitz for the cost ``||x - y|| / R``.
        critic_value: the dual value of the critic alone, before any refinement.
        lipschitz_bound: ``lipschitz_core.lipschitz_bound`` of the critic times R (<= 1 + 1e-6).
        f, g: the final potentials on x and on y (float64).
        balanced: whether the two totals were equal (then value = W1 / R).
    """

    value: float
    tensor: Tensor
    critic: Critic
    critic_value: float
    lipschitz_bound: float
    f: Tensor
    g: Tensor
    balanced: bool
    info: dict = field(default_factory=dict)

    def __float__(self) -> float:
        return self.value


def _prepare(x: object, a: object, y: object, b: object, R: object, *, balance_rtol: float | None) -> tuple[Tensor, Tensor, Tensor, Tensor, float | None, bool]:
    xt = as_points(x, "x")
    yt = as_points(y, "y")
    check_same_dim(xt, yt)
    at = as_weights(a, xt.shape[0], "a")
    bt = as_weights(b, yt.shape[0], "b")
    radius = check_radius(R)
    ta, tb = float(at.detach().double().sum()), float(bt.detach().double().sum())
    balanced = check_balance(ta, tb, a, b, n=max(xt.shape[0], yt.shape[0]), radius=radius, rtol=balance_rtol)
    return xt, at, yt, bt, radius, balanced


def estimate_emd(
    x: object,
    a: object = None,
    y: object = None,
    b: object = None,
    *,
    R: float | None = None,
    config: CriticConfig | None = None,
    refine: str = "semidual",
    refine_iters: int = 150,
    seed: int | None = 0,
    device: str | torch.device = "cpu",
    balance_rtol: float | None = None,
    num_threads: int | None = 1,
) -> EMDResult:
    """The Energy Mover's Distance between weighted clouds (x, a) and (y, b) via the KR dual.

    A GroupSort critic with certified l2-Lipschitz constant 1 (lipschitz-core, ``norm="two-inf"``)
    is trained by Adam to maximize ``sum_j b_j f(y_j) - sum_i a_i f(x_i)``; every such critic gives
    a lower bound. ``refine`` then tightens the bound on the support, staying a valid lower bound:
    ``"ctransform"`` (one exact c-transform pair, O(n m)), ``"semidual"`` (default: L-BFGS on the
    entropic semi-dual warm-started from the critic, eps annealed, every iterate rounded to a
    feasible pair; O(n m) per iteration, chunked memory) or ``"none"`` (the critic alone).

    Equal totals give W1 (divided by R if given). Unequal totals need ``R`` and give EnergyFlow's
    EMD: ``min sum f_ij ||x_i - y_j||/R + |sum a - sum b|``; the critic then sees x/R and is clamped to
    [-1, 1]. Weights ``None`` mean uniform 1/n.

    Raises ``ValueError`` for empty clouds, NaN/inf coordinates, negative or all-zero weights,
    mismatched dimensions, or unequal totals without R. ``num_threads`` sets torch's intra-op
    threads for the call (restored afterwards; ``None`` keeps the current setting).
    """
    with intra_op_threads(num_threads):
        return _estimate_emd(x, a, y, b, R=R, config=config, refine=refine, refine_iters=refine_iters, seed=seed,
                             device=device, balance_rtol=balance_rtol)


def _estimate_emd(x, a, y, b, *, R, config, refine, refine_iters, seed, device, balance_rtol) -> EMDResult:
    if y is None:
        raise ValueError("estimate_emd needs two clouds: estimate_emd(x, a, y, b)")
    if refine not in REFINE_MODES:
        raise ValueError(f"refine must be one of {REFINE_MODES}, got {refine!r}")
    config = config or CriticConfig()
    xt, at, yt, bt, radius, balanced = _prepare(x, a, y, b, R, balance_rtol=balance_rtol)
    flat = not balanced
    generator = torch.Generator().manual_seed(check_seed(seed))
    x64, y64 = xt.detach().double(), yt.detach().double()
    a64, b64 = at.detach().double(), bt.detach().double()
    if balanced:  # equal within the dtype's rounding: make them exactly equal
        b64 = b64 * (a64.sum() / b64.sum())
    centre, scale = normalization(x64[None], a64[None], y64[None], b64[None])
    dtype = config.torch_dtype
    problem = DualProblem(
        x64[None].to(device, dtype), a64[None].to(device, dtype), y64[None].to(device, dtype), b64[None].to(device, dtype),
        centre.to(device, dtype), scale.to(device, dtype), radius, flat,
    )
    critic_net = BatchedCritic(1, xt.shape[1], hidden=config.hidden, depth=config.depth, group_size=config.group_size,
                               always_norm=config.always_norm, dtype=dtype, device=device, generator=generator)
    train_critic(critic_net, problem, steps=config.steps, lr=config.lr, final_lr_fraction=config.final_lr_fraction)
    critic = Critic(critic_net.event_mlp(0).cpu(), centre[0, 0], float(scale[0]), radius, flat)
    bound = critic_net.certified_bound(0)
    with torch.no_grad():
        fx = critic.potential(x64)
        fy = critic.potential(y64)
    critic_value = float((b64 * fy).sum() - (a64 * fx).sum())
    ground = Ground(x64, a64, y64, b64, radius, flat)
    f, g = ground.extend_x(fx), ground.extend_y(fy)
    value, eps = critic_value, 0.0
    if refine == "ctransform":
        f, g = ctransform_refine(ground, f, g)
        value = ground.value(f, g)
    elif refine == "semidual":
        f, g = ctransform_refine(ground, f, g)
        value, f, g, eps = semidual_refine(ground, g, iters=refine_iters)
    if value < critic_value:  # cannot happen in exact arithmetic; guards float rounding
        f, g, value = ground.extend_x(fx), ground.extend_y(fy), critic_value
    tensor = _differentiable_value(value, ground, f, g, critic, xt, at, yt, bt, eps, use_plan=refine == "semidual")
    info = {"refine": refine, "eps": eps, "steps": config.steps, "R": radius}
    return EMDResult(value=value, tensor=tensor, critic=critic, critic_value=critic_value, lipschitz_bound=bound * (1.0 if radius is None else radius),
                     f=f, g=g, balanced=balanced, info=info)


def _differentiable_value(value: float, ground: Ground, f: Tensor, g: Tensor, critic: Critic, x: Tensor, a: Tensor, y: Tensor, b: Tensor,
                          eps: float, *, use_plan: bool) -> Tensor:
    """A 0-d tensor equal to ``value`` whose gradient is the EMD's (sub)gradient.

    Weights: d/da_i = -f_i, d/db_j = g_j (the final potentials; with unequal totals the virtual
    particle's potential enters through its mass |sum a - sum b|). Positions: through the transport
    plan of the refined potentials (envelope theorem), or through the critic (``f'(x)``) when no
    plan is available.
    """
    dtype = x.dtype
    out = torch.tensor(value, dtype=dtype)
    fr, gr = f[: ground.n].to(dtype), g[: ground.m].to(dtype)
    da = a - a.detach()
    db = b - b.detach()
    # The virtual particle's mass is |sum a - sum b|; its potential multiplies that mass.
    if ground.vx:
        out = out - (db.sum() - da.sum()) * f[ground.n].to(dtype)
    if ground.vy:
        out = out + (da.sum() - db.sum()) * g[ground.m].to(dtype)
    out = out - (da * fr).sum() + (db * gr).sum()
    if x.requires_grad or y.requires_grad:
        if use_plan:
            cost = transport_plan_cost(ground, g, x, y, eps)
        else:
            cost = (b.detach() * critic.potential(y)).sum() - (a.detach() * critic.potential(x)).sum()
        out = out + (cost - cost.detach()).to(dtype)
    return out


__all__ = ["EMDResult", "Critic", "estimate_emd"]
