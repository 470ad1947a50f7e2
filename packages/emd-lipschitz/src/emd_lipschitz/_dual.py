"""The Kantorovich-Rubinstein dual on padded batches of weighted clouds, and its exact refinement.

Notation: event b has source points ``x`` with weights ``a`` and target points ``y`` with weights
``b``. The ground cost is ``c(x, y) = ||x - y||_2 / R`` (R = 1 when no radius is given). Any
function f that is 1-Lipschitz for c gives the lower bound ``sum_j b_j f(y_j) - sum_i a_i f(x_i)``
on W1; with unequal totals (EnergyFlow's EMD with the |E1 - E2| term) f must also satisfy
``|f| <= 1``. The critic is ``f(x) = clamp(kappa * h((x - centre) / s))`` with h certified
1-Lipschitz, ``kappa = s / R``; centring and scaling only condition the optimisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from emd_lipschitz._critic import BatchedCritic
from emd_lipschitz._ground import torch_distances
from emd_lipschitz._optim import Adam, lbfgs_maximize


@dataclass(frozen=True)
class CriticConfig:
    """How the critic is built and trained (CPU-laptop defaults).

    Attributes:
        hidden, depth, group_size: GroupSort MLP shape (``depth`` linear layers).
        always_norm: normalize every layer to operator norm exactly 1 (tighter than shrink-only).
        steps: Adam steps for a cold start; ``warm_steps`` when warm-started from a previous critic.
        lr: Adam learning rate for the raw weights (inputs are normalized to unit scale).
        final_lr_fraction: cosine decay (one half period, no restart) down to ``lr * this``.
        refine: ``"ctransform"`` applies the exact c-transform pair to the critic values on the
            support (still a certified lower bound, never worse); ``"none"`` reports the critic alone.
        dtype: training precision (the reported value is always recomputed in float64).
    """

    hidden: int = 32
    depth: int = 3
    group_size: int = 2
    always_norm: bool = True
    steps: int = 300
    warm_steps: int = 60
    lr: float = 1e-2
    final_lr_fraction: float = 0.02
    refine: str = "ctransform"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.refine not in ("ctransform", "none"):
            raise ValueError(f"refine must be 'ctransform' or 'none', got {self.refine!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        for name in ("hidden", "depth", "group_size", "steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.warm_steps < 0:
            raise ValueError(f"warm_steps must be >= 0, got {self.warm_steps}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return torch.float64 if self.dtype == "float64" else torch.float32


@dataclass
class DualProblem:
    """A padded batch: ``x [B, n, d]``, ``a [B, n]``, ``y [B, m, d]``, ``b [B, m]`` (padding weight 0).

    ``centre [B, 1, d]`` and ``scale [B]`` normalize the critic input; ``R`` is None (plain W1) or
    the radius; ``flat`` clamps the critic to [-1, 1] (needed when totals differ).
    """

    x: Tensor
    a: Tensor
    y: Tensor
    b: Tensor
    centre: Tensor
    scale: Tensor
    R: float | None
    flat: bool

    @property
    def kappa(self) -> Tensor:
        return self.scale / (1.0 if self.R is None else self.R)


def normalization(x: Tensor, a: Tensor, y: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Per-event centre (mass-weighted mean of both clouds) and scale (largest distance to it)."""
    wa = a / a.sum(dim=1, keepdim=True)
    wb = b / b.sum(dim=1, keepdim=True)
    centre = 0.5 * ((wa.unsqueeze(-1) * x).sum(1) + (wb.unsqueeze(-1) * y).sum(1)).unsqueeze(1)
    ra = ((x - centre).norm(dim=-1) * (a > 0)).amax(dim=1)
    rb = ((y - centre).norm(dim=-1) * (b > 0)).amax(dim=1)
    scale = torch.maximum(ra, rb).clamp_min(1e-12)
    return centre, scale


def critic_values(critic: BatchedCritic, problem: DualProblem, points: Tensor) -> Tensor:
    """f(points) for every event: ``[B, N, d] -> [B, N]`` in the critic's dtype."""
    dtype = critic.weights[0].dtype
    z = (points.to(dtype) - problem.centre.to(dtype)) / problem.scale.to(dtype).view(-1, 1, 1)
    f = critic(z) * problem.kappa.to(dtype).view(-1, 1)
    return f.clamp(-1.0, 1.0) if problem.flat else f


def dual_objective(critic: BatchedCritic, problem: DualProblem) -> Tensor:
    """``[B]``: sum_j b_j f(y_j) - sum_i a_i f(x_i)."""
    dtype = critic.weights[0].dtype
    fy = critic_values(critic, problem, problem.y)
    fx = critic_values(critic, problem, problem.x)
    return (problem.b.to(dtype) * fy).sum(1) - (problem.a.to(dtype) * fx).sum(1)


def train_critic(
    critic: BatchedCritic,
    problem: DualProblem,
    *,
    steps: int,
    lr: float,
    final_lr_fraction: float,
    state: dict | None = None,
) -> tuple[Tensor, dict]:
    """Adam ascent on the dual for ``steps`` steps; returns (last objective [B], optimizer state).

    The shape (``problem``) is treated as fixed. ``state`` continues a previous optimizer.
    """
    params = list(critic.parameters())
    opt = Adam(params, lr=lr)
    if state is not None:
        opt.t, opt.m, opt.v = state["t"], state["m"], state["v"]
    # Normalize so every event contributes on its own scale (per-event parameters are independent).
    weight = 1.0 / (problem.kappa * problem.b.sum(1)).clamp_min(1e-30)
    weight = weight.to(critic.weights[0].dtype).detach()
    x = problem.x.detach()
    y = problem.y.detach()
    detached = DualProblem(x, problem.a.detach(), y, problem.b.detach(), problem.centre.detach(), problem.scale.detach(), problem.R, problem.flat)
    last = torch.zeros(x.shape[0])
    for step in range(steps):
        frac = step / max(1, steps - 1)
        opt.lr = lr * (final_lr_fraction + (1 - final_lr_fraction) * 0.5 * (1 + math.cos(math.pi * frac)))
        opt.zero_grad()
        objective = dual_objective(critic, detached)
        loss = -(objective * weight).sum()
        loss.backward()
        opt.step()
        last = objective.detach()
    return last, {"t": opt.t, "m": opt.m, "v": opt.v}


def _pairwise_cost(x: Tensor, y: Tensor, R: float | None) -> Tensor:
    # direct differences: torch.cdist's matrix-product mode loses the digits far from the origin
    c = torch_distances(x, y)
    return c if R is None else c / R


class Ground:
    """The (possibly extended) discrete problem the refinement works on.

    Balanced totals: the cost ``||x_i - y_j|| / R``. Unequal totals: EnergyFlow's construction, a
    virtual particle carrying ``|sum a - sum b|`` is appended to the lighter side with cost exactly 1
    to every particle of the other side; the extended problem is balanced and its W1 is the EMD.
    """

    def __init__(self, x: Tensor, a: Tensor, y: Tensor, b: Tensor, R: float | None, flat: bool, *, cache_entries: int = 4_000_000) -> None:
        self.x, self.y, self.R = x, y, R
        self.n, self.m = x.shape[0], y.shape[0]
        ta, tb = float(a.sum()), float(b.sum())
        self.vx = flat and ta < tb
        self.vy = flat and tb < ta
        self.a = torch.cat([a, a.new_tensor([tb - ta])]) if self.vx else a
        self.b = torch.cat([b, b.new_tensor([ta - tb])]) if self.vy else b
        # Small problems keep the whole cost matrix (every refinement pass reuses it).
        self._full: Tensor | None = None
        if self.n_ext * self.m_ext <= cache_entries:
            self._full = self._rows(0, self.n_ext)

    @property
    def n_ext(self) -> int:
        return self.n + int(self.vx)

    @property
    def m_ext(self) -> int:
        return self.m + int(self.vy)

    def extend_x(self, f: Tensor) -> Tensor:
        """Critic values on x -> values on the extended x (0 on a virtual particle: feasible as |f| <= 1)."""
        return torch.cat([f, f.new_zeros(1)]) if self.vx else f

    def extend_y(self, g: Tensor) -> Tensor:
        return torch.cat([g, g.new_zeros(1)]) if self.vy else g

    def rows(self, start: int, stop: int) -> Tensor:
        """Cost rows ``[start, stop)`` of the extended problem (``[rows, m_ext]``, float64)."""
        stop = min(stop, self.n_ext)
        if self._full is not None:
            return self._full[start:stop]
        return self._rows(start, stop)

    def _rows(self, start: int, stop: int) -> Tensor:
        real = self.x[start : min(stop, self.n)]
        blocks = _pairwise_cost(real, self.y, self.R) if real.shape[0] else self.y.new_zeros(0, self.m)
        if self.vy:
            blocks = torch.cat([blocks, blocks.new_ones(blocks.shape[0], 1)], 1)
        if self.vx and stop > self.n:
            virtual = blocks.new_ones(1, self.m_ext)
            blocks = torch.cat([blocks, virtual], 0)
        return blocks

    def chunks(self, chunk: int):
        if self._full is not None:
            yield 0, self._full
            return
        rows = max(1, chunk // max(1, self.m_ext))
        for start in range(0, self.n_ext, rows):
            yield start, self.rows(start, start + rows)

    def value(self, f: Tensor, g: Tensor) -> float:
        return float((self.b * g).sum() - (self.a * f).sum())


def ctransform_refine(ground: Ground, f: Tensor, g: Tensor, *, chunk: int = 2_000_000) -> tuple[Tensor, Tensor]:
    """Improve potentials (f on extended x, g on extended y) by exact c-transforms.

    Input: values of a c-Lipschitz critic (float64, detached). Output potentials (f', g') satisfy
    ``g'_j - f'_i <= c_ij`` for every pair of the extended problem, so ``sum b g' - sum a f'`` is a
    lower bound on the EMD by weak LP duality, and it is >= the critic's own value (each
    c-transform only raises g or lowers f). Both orders are tried; the better is kept.
    """

    def g_from_f(f: Tensor) -> Tensor:  # g_j = min_i f_i + c_ij
        out = torch.full((ground.m_ext,), math.inf, dtype=torch.float64)
        for start, c in ground.chunks(chunk):
            out = torch.minimum(out, (f[start : start + c.shape[0], None] + c).amin(0))
        return out

    def f_from_g(g: Tensor) -> Tensor:  # f_i = max_j g_j - c_ij
        out = torch.empty(ground.n_ext, dtype=torch.float64)
        for start, c in ground.chunks(chunk):
            out[start : start + c.shape[0]] = (g[None, :] - c).amax(1)
        return out

    g1 = g_from_f(f)
    f1 = f_from_g(g1)
    f2 = f_from_g(g)
    g2 = g_from_f(f2)
    return (f1, g1) if ground.value(f1, g1) >= ground.value(f2, g2) else (f2, g2)


def hard_dual(ground: Ground, g: Tensor, chunk: int = 2_000_000) -> tuple[float, Tensor, Tensor]:
    """Feasible pair from potentials g on extended y: (value, f = g^c, g). A certified lower bound."""
    f = torch.empty(ground.n_ext, dtype=g.dtype)
    for start, c in ground.chunks(chunk):
        f[start : start + c.shape[0]] = (g[None, :] - c).amax(1)
    return ground.value(f, g), f, g


def _smoothed_semidual(ground: Ground, g: Tensor, eps: float, chunk: int) -> tuple[Tensor, Tensor]:
    """Entropic semi-dual ``sum b g - sum_i a_i eps log sum_j exp((g_j - c_ij)/eps)`` and its gradient."""
    value = (ground.b * g).sum()
    grad = ground.b.clone()
    for start, c in ground.chunks(chunk):
        s = (g[None, :] - c) / eps
        lse = torch.logsumexp(s, 1, keepdim=True)
        ai = ground.a[start : start + c.shape[0]]
        value = value - eps * (ai * lse.squeeze(1)).sum()
        grad = grad - (ai[:, None] * torch.exp(s - lse)).sum(0)
    return value, grad


def cost_scale(ground: Ground) -> float:
    """An upper bound on every cost entry (twice the largest distance from x's centroid)."""
    x, y = ground.x, ground.y
    a = ground.a[: ground.n]
    centre = (a[:, None] * x).sum(0) / a.sum().clamp_min(1e-300)
    spread = float(torch.linalg.vector_norm(y - centre, dim=1).max() + torch.linalg.vector_norm(x - centre, dim=1).max())
    spread = spread / (1.0 if ground.R is None else ground.R)
    return max(spread, 1.0) if (ground.vx or ground.vy) else spread


def semidual_refine(
    ground: Ground,
    g0: Tensor,
    *,
    iters: int = 150,
    eps_fractions: tuple[float, ...] = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4),
    chunk: int = 2_000_000,
) -> tuple[float, Tensor, Tensor, float]:
    """L-BFGS on the entropic semi-dual, warm-started from ``g0`` (extended y), eps annealed down.

    Every stage's end point is turned into a feasible pair (f = g^c, g) by the exact c-transform,
    so the best value seen is a certified lower bound; the starting point's bound is kept if
    nothing beats it. Returns (value, f, g, final eps) in float64 on the extended problem.
    """
    g0 = g0.detach().double()
    best_value, best_f, best_g = hard_dual(ground, g0, chunk)
    scale = cost_scale(ground)
    eps = 0.0
    if scale <= 0 or iters <= 0:
        return best_value, best_f, best_g, eps
    g = best_g.clone()
    per_stage = max(1, iters // len(eps_fractions))
    for fraction in eps_fractions:
        eps = fraction * scale

        def smoothed(point: Tensor, eps: float = eps) -> tuple[float, Tensor]:
            value, grad = _smoothed_semidual(ground, point, eps, chunk)
            return float(value), grad

        g = lbfgs_maximize(smoothed, g, iters=per_stage)
        value, f, gg = hard_dual(ground, g.clone(), chunk)
        if value > best_value:
            best_value, best_f, best_g = value, f, gg
    f_final, g_final = ctransform_refine(ground, best_f, best_g, chunk=chunk)
    final = ground.value(f_final, g_final)
    if final > best_value:
        best_value, best_f, best_g = final, f_final, g_final
    return best_value, best_f, best_g, eps


def transport_plan_cost(ground: Ground, g: Tensor, x: Tensor, y: Tensor, eps: float, *, balance_iters: int = 50) -> Tensor:
    """``sum_ij pi_ij ||x_i - y_j|| / R`` over real pairs with the plan ``pi`` held fixed.

    ``pi`` is the entropic plan at ``eps`` of the potentials ``g``: rows from the semi-dual
    (``a_i softmax_j((g_j - c_ij)/eps)``), then ``balance_iters`` log-domain Sinkhorn sweeps so
    the columns match ``b`` too (the row-only plan can split a shared target between sources in
    the wrong proportions). Differentiable in x and y: by the envelope theorem its gradient is the
    gradient of the transport cost. Dense: n*m memory.
    """
    c = _pairwise_cost(x, y, ground.R)
    with torch.no_grad():
        eps = max(eps, 1e-12)
        full = ground.rows(0, ground.n_ext)
        log_a = ground.a.clamp_min(1e-300).log()
        log_b = ground.b.clamp_min(1e-300).log()
        g = g.detach().clone()
        f = eps * torch.logsumexp((g[None, :] - full) / eps, 1) - eps * log_a
        for _ in range(balance_iters):
            g = -eps * torch.logsumexp((-f[:, None] - full) / eps, 0) + eps * log_b
            f = eps * torch.logsumexp((g[None, :] - full) / eps, 1) - eps * log_a
        p = torch.exp((g[None, :] - f[:, None] - full) / eps)
        p = p * (ground.a > 0)[:, None]
        p = p[: ground.n, : ground.m]
    return (p.to(c.dtype) * c).sum()
