"""``emd``: the Energy Mover's Distance, exact where exact is cheap.

Definition (Komiske, Metodiev, Thaler; EnergyFlow's ``emd``): for clouds (x, a) and (y, b),

    EMD = min_{f >= 0} sum_ij f_ij (||x_i - y_j|| / R)^beta + |sum a - sum b|,
    sum_j f_ij <= a_i, sum_i f_ij <= b_j, sum_ij f_ij = min(sum a, sum b).

With equal totals the second term vanishes and (R = 1, beta = 1) this is W1. Unequal totals are
solved as EnergyFlow does: a virtual particle carrying |sum a - sum b| joins the lighter side at
cost exactly 1 to every particle, which makes the problem balanced.

Methods: "exact" (POT's network simplex ``ot.emd`` with its dual potentials), "sinkhorn" (POT's
log-domain Sinkhorn, debiased: OT_eps(a, b) - OT_eps(a, a)/2 - OT_eps(b, b)/2), "neural" (NEEMo's
certified critic, its own dual value, nothing added) and "auto" (exact wherever the dense cost
matrix fits: the README's benchmark found no size where another method reached 1 % sooner; the
critic only where nothing dense fits).

Every method works on centred and scaled coordinates (direct differences) and normalized weights
and undoes both on the way out, so offsets of 1e7, units of 1e-10 and totals of 1e-12 give the
same relative accuracy as unit-scale inputs.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from emd_lipschitz._ground import distances, frame, pair_distances
from emd_lipschitz._validate import (
    as_points,
    as_weights,
    check_balance,
    check_radius,
    check_same_dim,
    check_seed,
)

METHODS = ("auto", "exact", "sinkhorn", "neural")

# "auto" uses the exact solver while n * m stays at or below this many cost entries (8 bytes each):
# tools/bench/emd.py measured exact transport as the fastest route to 1 % and 0.1 % at every size
# it ran on the CPU, up to 10,000 points per cloud (results/bench_cpu_small.json, bench_cpu_10k.json: 800 MB of cost at 10,000);
# above, only the critic ran (no dense method fits) and it reached neither target (README).
AUTO_EXACT_MAX_ENTRIES = 100_000_000


def auto_method(n: int, m: int) -> tuple[str, str]:
    """What ``method="auto"`` uses for clouds of ``n`` and ``m`` points, and why."""
    if n * m <= AUTO_EXACT_MAX_ENTRIES:
        return "exact", (f"auto: n*m = {n * m} <= {AUTO_EXACT_MAX_ENTRIES} (exact was the fastest to 1 % and 0.1 % at every "
                         "benchmarked size up to 10,000 points per cloud)")
    # exact and (POT's) Sinkhorn both need the dense n x m cost; the critic needs O(n + m) memory
    return "neural", (f"auto: n*m = {n * m} > {AUTO_EXACT_MAX_ENTRIES}: a dense cost matrix would need {8 * n * m / 1e9:.1f} GB, so the "
                      "critic (a certified lower bound) was used")

_NUM_ITER_MAX = 100_000_000


@dataclass
class EMDSolution:
    """What :func:`emd` returns.

    Attributes:
        value: the EMD (float, in the units of ``||x - y|| / R`` times weight).
        method: the method used ("exact", "sinkhorn" or "neural").
        reason: why that method was used (what "auto" decided, or "requested").
        tensor: the value as a 0-d float64 tensor with the EMD's (sub)gradient with respect to any
            input given as a tensor with ``requires_grad`` ("exact" and "sinkhorn": positions
            through the optimal plan, weights through the dual potentials); None otherwise.
        plan: the optimal transport plan between the real particles ``[n, m]`` in weight units
            ("exact" only; the virtual particle of unequal totals is left out).
        f, g: dual potentials on x and on y: ``d EMD / d a_i = f_i``, ``d EMD / d b_j = g_j`` for
            changes of the weights ("exact" only).
        balanced: whether the totals were equal within the tolerance of their dtype.
        info: extra numbers (scale, centre, iterations, the critic for "neural").
    """

    value: float
    method: str
    reason: str
    tensor: Tensor | None = None
    plan: np.ndarray | None = None
    f: np.ndarray | None = None
    g: np.ndarray | None = None
    balanced: bool = True
    info: dict = field(default_factory=dict)

    def __float__(self) -> float:
        return self.value


@dataclass
class _Problem:
    """Validated inputs in float64 plus the frame that makes the costs O(1)."""

    x: np.ndarray
    a: np.ndarray
    y: np.ndarray
    b: np.ndarray
    xt: Tensor
    at: Tensor
    yt: Tensor
    bt: Tensor
    R: float | None
    beta: float
    balanced: bool
    centre: np.ndarray
    scale: float
    periodic: tuple[int, ...] = ()

    @property
    def total(self) -> float:
        return max(float(self.a.sum()), float(self.b.sum()))

    @property
    def cost_unit(self) -> float:
        """K: original cost = K * (scaled distance)^beta."""
        return (self.scale / (1.0 if self.R is None else self.R)) ** self.beta

    def scaled(self) -> tuple[np.ndarray, np.ndarray]:
        return (self.x - self.centre) / self.scale, (self.y - self.centre) / self.scale

    @property
    def wants_grad(self) -> bool:
        return any(t.requires_grad for t in (self.xt, self.at, self.yt, self.bt))


def prepare(x: object, a: object, y: object, b: object, *, R: object, beta: object = 1.0, periodic: tuple[int, ...] = (),
            need_R_for_unequal: bool = True) -> _Problem:
    """Validate and convert (shared by :func:`emd`, the jet API and the fits)."""
    if y is None:
        raise ValueError("emd needs two clouds: emd(x, a, y, b)")
    xt = as_points(x, "x")
    yt = as_points(y, "y")
    check_same_dim(xt, yt)
    at = as_weights(a, xt.shape[0], "a")
    bt = as_weights(b, yt.shape[0], "b")
    radius = check_radius(R)
    if isinstance(beta, (bool, np.bool_)) or not isinstance(beta, (int, float, np.floating, np.integer)) or not (float(beta) > 0 and math.isfinite(float(beta))):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    x64 = xt.detach().double().cpu().numpy()
    y64 = yt.detach().double().cpu().numpy()
    a64 = at.detach().double().cpu().numpy()
    b64 = bt.detach().double().cpu().numpy()
    ta, tb = float(a64.sum()), float(b64.sum())
    balanced = check_balance(ta, tb, a, b, n=max(len(a64), len(b64)), radius=radius, need_R=need_R_for_unequal)
    centre, scale = frame(x64, y64, periodic)
    return _Problem(x64, a64, y64, b64, xt, at, yt, bt, radius, float(beta), balanced, centre, scale, tuple(periodic))


def warn_small_radius(max_distance: float, R: float | None, *, stacklevel: int = 3) -> None:
    """EnergyFlow's condition: the EMD is a metric only when R >= half the largest ground distance."""
    if R is not None and R < 0.5 * max_distance:
        warnings.warn(
            f"R = {R:g} is below half the largest pairwise distance ({max_distance:.4g} / 2); the EMD with unequal energies "
            "is then not a metric (it can violate the triangle inequality). Use R >= {:.4g}.".format(0.5 * max_distance),
            UserWarning,
            stacklevel=stacklevel,
        )


def _extended(cost: np.ndarray, a: np.ndarray, b: np.ndarray, virtual_cost: float, balanced: bool):
    """Normalized masses and the (extended) cost: EnergyFlow's virtual particle on the lighter side."""
    total = max(a.sum(), b.sum())
    an, bn = a / total, b / total
    side = None
    if balanced:
        bn = bn * (an.sum() / bn.sum())
        M = cost
    elif an.sum() > bn.sum():
        side = "y"
        bn = np.append(bn, an.sum() - bn.sum())
        M = np.hstack([cost, np.full((cost.shape[0], 1), virtual_cost)])
    else:
        side = "x"
        an = np.append(an, bn.sum() - an.sum())
        M = np.vstack([cost, np.full((1, cost.shape[1]), virtual_cost)])
    return an, bn, M, side, total


def solve_exact(problem: _Problem, theta_scaled: np.ndarray | None = None) -> EMDSolution:
    """POT's network simplex on the scaled, normalized (extended) problem; undo both on the way out."""
    import ot

    if theta_scaled is None:
        xs, ys = problem.scaled()
        theta_scaled = distances(xs, ys, periodic=problem.periodic, period=2 * math.pi / problem.scale)
    K = problem.cost_unit
    cost = theta_scaled if problem.beta == 1.0 else theta_scaled**problem.beta
    an, bn, M, side, total = _extended(cost, problem.a, problem.b, 1.0 / K, problem.balanced)
    plan, log = ot.emd(an, bn, M, numItermax=_NUM_ITER_MAX, log=True)
    if int(log.get("result_code", 1)) != 1:
        raise RuntimeError(f"POT's network simplex did not reach an optimum: {log.get('warning')}")
    # no [n, m] temporaries: at 10^4 points per cloud each dense copy is 800 MB
    value = K * total * float(np.einsum("ij,ij->", plan, M))
    u, v = K * np.asarray(log["u"]), K * np.asarray(log["v"])
    n, m = problem.x.shape[0], problem.y.shape[0]
    plan *= total
    real_plan = plan[:n, :m]
    solution = EMDSolution(value=value, method="exact", reason="requested", plan=real_plan, f=u[:n], g=v[:m], balanced=problem.balanced,
                           info={"scale": problem.scale, "centre": problem.centre.tolist(), "virtual": side,
                                 "max_distance": problem.scale * float(theta_scaled.max()) if theta_scaled.size else 0.0})
    if problem.wants_grad:
        solution.tensor = _exact_tensor(problem, value, real_plan, u, v, side)
    return solution


def _exact_tensor(problem: _Problem, value: float, plan: np.ndarray, u: np.ndarray, v: np.ndarray, side: str | None) -> Tensor:
    """A 0-d tensor equal to ``value`` with the EMD's subgradient: weights through the potentials
    (the envelope theorem on the dual), positions through the fixed optimal plan (on its support
    only, O(n + m) entries)."""
    n, m = len(problem.a), len(problem.b)
    at, bt = problem.at.double(), problem.bt.double()
    da, db = at - at.detach(), bt - bt.detach()
    out = torch.tensor(value, dtype=torch.float64)
    out = out + (da * torch.as_tensor(u[:n])).sum() + (db * torch.as_tensor(v[:m])).sum()
    if side == "y":  # virtual mass sum a - sum b sits on y
        out = out + (da.sum() - db.sum()) * float(v[m])
    elif side == "x":
        out = out + (db.sum() - da.sum()) * float(u[n])
    if problem.xt.requires_grad or problem.yt.requires_grad:
        i, j = np.nonzero(plan)
        ii, jj = torch.as_tensor(i), torch.as_tensor(j)
        d = pair_distances(problem.xt.double()[ii], problem.yt.double()[jj], periodic=problem.periodic)
        radius = 1.0 if problem.R is None else problem.R
        if problem.beta == 1.0:
            c = d / radius
        else:
            positive = d > 0
            c = (torch.where(positive, d, torch.ones_like(d)) / radius) ** problem.beta * positive
        out = out + (torch.as_tensor(plan[i, j]) * (c - c.detach())).sum()
    return out


def solve_sinkhorn(problem: _Problem, *, reg: float = 1e-3, stop: float = 1e-6, max_iter: int = 10_000) -> EMDSolution:
    """Debiased entropic OT with POT's log-domain Sinkhorn on the scaled, normalized problem.

    ``reg`` is relative to the scaled cost (distances <= 2 after scaling); ``stop`` is POT's
    marginal-violation threshold on masses that sum to 1, i.e. a relative stopping rule.
    """
    import ot

    if problem.wants_grad:
        raise ValueError("method='sinkhorn' returns values only; use method='exact' for gradients")
    xs, ys = problem.scaled()
    period = 2 * math.pi / problem.scale
    K = problem.cost_unit

    def cost(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        c = distances(p, q, periodic=problem.periodic, period=period)
        return c if problem.beta == 1.0 else c**problem.beta

    an, bn, Mxy, side, total = _extended(cost(xs, ys), problem.a, problem.b, 1.0 / K, problem.balanced)
    Mxx, Myy = cost(xs, xs), cost(ys, ys)
    if side == "x":
        Mxx = np.pad(Mxx, ((0, 1), (0, 1)), constant_values=1.0 / K)
        Mxx[-1, -1] = 0.0
    elif side == "y":
        Myy = np.pad(Myy, ((0, 1), (0, 1)), constant_values=1.0 / K)
        Myy[-1, -1] = 0.0

    def ot_eps(p, q, M):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # POT warns when max_iter is reached; reported via info instead
            return float(ot.sinkhorn2(p, q, M, reg, method="sinkhorn_log", numItermax=max_iter, stopThr=stop))

    value_scaled = ot_eps(an, bn, Mxy) - 0.5 * ot_eps(an, an, Mxx) - 0.5 * ot_eps(bn, bn, Myy)
    return EMDSolution(value=K * total * value_scaled, method="sinkhorn", reason="requested", balanced=problem.balanced,
                       info={"reg": reg, "stop": stop, "scale": problem.scale})


def solve_neural(problem: _Problem, *, config=None, seed: int = 0, device: str = "cpu") -> EMDSolution:
    """NEEMo's critic trained on the scaled, normalized problem; the critic's own dual value."""
    from emd_lipschitz._estimate import estimate_emd

    if problem.beta != 1.0:
        raise ValueError(f"method='neural' supports beta = 1 only (a 1-Lipschitz critic), got beta={problem.beta}")
    if problem.periodic:
        raise ValueError("method='neural' does not support periodic coordinates")
    xs, ys = problem.scaled()
    total = problem.total
    an, bn = problem.a / total, problem.b / total
    if problem.balanced:
        bn = bn * (an.sum() / bn.sum())
    radius = None if problem.R is None else problem.R / problem.scale
    if not problem.balanced and radius is None:
        radius = 1.0 / problem.scale  # R = 1 in the original units
    result = estimate_emd(xs, an, ys, bn, R=radius, config=config, refine="none", seed=seed, device=device, balance_rtol=1e-12)
    # value_scaled is in units of (scaled distance / R_scaled) = distance / R (R given) or scaled distance (R None)
    unit = total * (problem.scale if problem.R is None and problem.balanced else 1.0)
    return EMDSolution(value=unit * result.critic_value, method="neural", reason="requested", balanced=problem.balanced,
                       info={"critic": result.critic, "lipschitz_bound": result.lipschitz_bound, "scale": problem.scale})


def emd(
    x: object,
    a: object = None,
    y: object = None,
    b: object = None,
    *,
    R: float | None = None,
    beta: float = 1.0,
    method: str = "auto",
    reg: float = 1e-3,
    critic=None,
    seed: int | None = 0,
    device: str = "cpu",
) -> EMDSolution:
    """The Energy Mover's Distance between weighted clouds (x, a) and (y, b).

    ``EMD = min sum f_ij (||x_i - y_j|| / R)^beta + |sum a - sum b|`` over flows that move all of
    the smaller total (EnergyFlow's definition; with equal totals and R = None it is W1 or, for
    ``beta = 2``, W2 squared). Weights ``None`` mean uniform 1/n. Unequal totals need ``R``; totals
    equal within the rounding of their dtype (float32-normalized weights) count as equal.

    Args:
        x, y: positions ``[n, d]`` and ``[m, d]`` (arrays or tensors; float32 is fine).
        a, b: non-negative weights ``[n]``, ``[m]`` (or None).
        R: the radius (``None``: plain distances; required when the totals differ).
        beta: the exponent of the ground distance.
        method: "exact" (POT's network simplex and its dual potentials), "sinkhorn" (POT,
            log-domain, debiased, ``reg`` relative to the scaled cost), "neural" (NEEMo's
            certified critic, its own dual value: a lower bound that is usually several % low)
            or "auto" (exact while ``n * m`` <= 1e8, where the README's crossover found it the
            fastest way to 1 % and 0.1 %; above, where no dense cost matrix fits, the critic, with a
            warning that it is a lower bound). ``.method`` and ``.reason`` say what was used.
        reg: entropic regularization for "sinkhorn" (relative to the scaled cost).
        critic: a ``CriticConfig`` for "neural".
        seed: seed for "neural" (``None`` draws one).
        device: torch device for "neural".

    Returns:
        :class:`EMDSolution` with ``.value`` (float) and ``.method``; for "exact" also the plan, the
        dual potentials and, when an input is a tensor with ``requires_grad``, ``.tensor``.

    Raises:
        ValueError: empty, complex, NaN/inf or huge (> 1e150) coordinates; negative or all-zero
            weights; mismatched dimensions; unequal totals without R; an unknown method.

    Warns:
        UserWarning: when R is below half the largest distance between the two clouds.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    seed = check_seed(seed)
    problem = prepare(x, a, y, b, R=R, beta=beta)
    n, m = problem.x.shape[0], problem.y.shape[0]
    reason = "requested"
    chosen = method
    if method == "auto":
        chosen, reason = auto_method(n, m)
        if chosen == "neural":
            warnings.warn(f"{reason}; it stayed several % below the exact EMD at every size of the README's benchmark",
                          UserWarning, stacklevel=2)
    if chosen == "exact":
        result = solve_exact(problem)
    elif chosen == "sinkhorn":
        result = solve_sinkhorn(problem, reg=reg)
    else:
        result = solve_neural(problem, config=critic, seed=seed, device=device)
    result.reason = reason
    if R is not None:
        max_distance = result.info.get("max_distance")
        if max_distance is None and n * m <= AUTO_EXACT_MAX_ENTRIES:
            xs, ys = problem.scaled()
            max_distance = problem.scale * float(distances(xs, ys).max())
        if max_distance is not None:
            warn_small_radius(max_distance, problem.R)
    if not math.isfinite(result.value):
        raise FloatingPointError(f"the {result.method} EMD came out {result.value}; please report this input")
    return result
