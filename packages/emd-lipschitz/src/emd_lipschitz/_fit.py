"""Fit shapes to events by minimizing the EMD: "paper" (joint adversarial, NEEMo), "accurate"
(critic and exact refinement converged per shape step, warm-started) and "exact" (POT ``ot.emd2``)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from emd_lipschitz._critic import BatchedCritic
from emd_lipschitz._dual import (
    CriticConfig,
    DualProblem,
    Ground,
    critic_values,
    ctransform_refine,
    dual_objective,
    hard_dual,
    normalization,
    semidual_refine,
    train_critic,
    transport_plan_cost,
)
from emd_lipschitz._optim import Adam, intra_op_threads
from emd_lipschitz._shapes import Shape
from emd_lipschitz._validate import as_points, as_weights, check_seed

MODES = ("accurate", "paper", "exact")


@dataclass(frozen=True)
class PaperSettings:
    """The original NEEMo settings (official code, ``paperPlotsTriangle.ipynb``)."""

    hidden: int = 128
    depth: int = 5  # 2->128, three 128->128, 128->1
    group_size: int = 8  # ngroups=16 of 128 features
    critic_lr: float = 1e-3
    weight_decay: float = 1e-2  # AdamW, decoupled
    cosine_period: int = 2000  # CosineAnnealingLR(T_max=2000), periodic past 2000
    eta_min: float = 1e-5
    shape_lr: float = 0.25  # SGD
    momentum: float = 0.1
    dampening: float = 0.6


@dataclass(frozen=True)
class FitConfig:
    """Shape fitting (CPU-laptop defaults).

    Attributes:
        mode: "accurate", "paper" or "exact".
        steps: shape steps.
        lr: Adam learning rate of the shape parameters ("accurate", "exact").
        critic: critic settings ("accurate": cold start once, then ``critic.warm_steps`` per shape step).
        refine_iters: L-BFGS iterations of the semi-dual per shape step ("accurate").
        step_eps_fractions: eps schedule per shape step (warm-started, so it starts small).
        balance_iters: Sinkhorn sweeps that balance the plan behind the shape gradient ("accurate").
        final_refine_iters: iterations for the reported value at the end (all modes).
        compute_exact: also compute POT's exact EMD at the final parameters.
        patience: "exact": stop an event once its EMD has not improved by a relative ``tol`` for
            this many steps (0: run all ``steps``); the best parameters seen are returned.
        tol: relative improvement that resets the patience counter.
        paper: settings of the "paper" mode.
    """

    mode: str = "exact"
    steps: int = 300
    lr: float = 0.01
    critic: CriticConfig = field(default_factory=lambda: CriticConfig(hidden=32, depth=3, steps=200, warm_steps=1))
    refine_iters: int = 8
    step_eps_fractions: tuple[float, ...] = (3e-4,)
    balance_iters: int = 20
    final_refine_iters: int = 150
    compute_exact: bool = True
    patience: int = 50
    tol: float = 1e-4
    paper: PaperSettings = field(default_factory=PaperSettings)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")


@dataclass
class FitResult:
    """Per-event results of :func:`fit_shape` (B events).

    ``emd`` is what the mode reports: the refined certified lower bound ("accurate"), the critic's
    dual value ("paper", as the original code prints it) or POT's exact value ("exact").
    ``refined`` is the certified lower bound at the final parameters for every mode, ``exact``
    POT's value there (NaN if not computed), ``critic_value`` the critic's own dual value (NaN for
    "exact"), ``history`` the mean reported EMD per shape step.
    """

    params: Tensor
    emd: np.ndarray
    refined: np.ndarray
    exact: np.ndarray
    critic_value: np.ndarray
    history: list[float]
    seconds: float
    mode: str
    param_names: tuple[str, ...]

    @property
    def gap(self) -> np.ndarray:
        """Relative gap of the reported EMD to the exact one, (emd - exact) / exact."""
        return (self.emd - self.exact) / self.exact


def as_events(events: object) -> list[tuple[Tensor, Tensor]]:
    """One event ``(x, a)`` or a sequence of them -> list of float64 (points [n, 2], weights [n])."""
    if isinstance(events, tuple) and len(events) == 2 and not isinstance(events[0], tuple):
        events = [events]
    if not isinstance(events, Sequence) or len(events) == 0:
        raise ValueError("events must be an (x, a) pair or a non-empty sequence of (x, a) pairs")
    out = []
    for i, ev in enumerate(events):
        if not (isinstance(ev, (tuple, list)) and len(ev) == 2):
            raise ValueError(f"event {i} must be an (x, a) pair of points [n, 2] and weights [n]")
        x = as_points(ev[0], f"event {i} points", dtype=torch.float64)
        if x.shape[1] != 2:
            raise ValueError(f"event {i} points must be 2-D (shape [n, 2]), got {tuple(x.shape)}")
        a = as_weights(ev[1], x.shape[0], f"event {i} weights", dtype=torch.float64)
        out.append((x.detach(), a.detach()))
    return out


def _pad(events: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    n = max(x.shape[0] for x, _ in events)
    X = torch.zeros(len(events), n, 2, dtype=torch.float64)
    A = torch.zeros(len(events), n, dtype=torch.float64)
    for i, (x, a) in enumerate(events):
        X[i, : x.shape[0]] = x
        X[i, x.shape[0] :] = x[0]
        A[i, : x.shape[0]] = a
    return X, A


def exact_emd(x: object, a: object, y: object, b: object, *, R: float | None = None) -> float:
    """The exact EMD (float): shorthand for ``emd(x, a, y, b, R=R, method="exact").value``.

    Equal totals give W1 (divided by R if given); unequal totals (R required) give EnergyFlow's
    EMD with the |sum a - sum b| term. Costs by direct differences on centred, scaled coordinates.
    """
    from emd_lipschitz._exact import emd

    return emd(x, a, y, b, R=R, method="exact").value


def fit_shape(
    events: object,
    shape: Shape,
    *,
    config: FitConfig | None = None,
    init: Tensor | None = None,
    seed: int = 0,
    progress: bool = False,
    num_threads: int | None = 1,
) -> FitResult:
    """Fit ``shape`` to each event (a batch of B events) by minimizing the EMD.

    Modes (``config.mode``):

    * ``"paper"``: NEEMo's joint adversarial optimisation. One critic step (AdamW, periodic
      cosine schedule, weight decay) and one shape step (SGD with momentum) per iteration, both
      on the critic's dual value, with the original settings (:class:`PaperSettings`).
    * ``"accurate"``: the critic is cold-trained once, then warm-started with
      ``critic.warm_steps`` Adam steps per shape step; its values (c-transformed) and the previous
      step's potentials warm-start a few L-BFGS iterations of the exact semi-dual; the shape takes
      an Adam step along the gradient of the refined EMD (transport-plan gradients).
    * ``"exact"``: Adam on POT's differentiable ``ot.emd2`` (the exact-transport baseline).

    Event weights are kept as given; the shape's weights (summing to 1) are scaled to each
    event's total, so the EMD is W1 in the event's units. ``num_threads``: torch intra-op
    threads during the fit (restored afterwards).
    """
    with intra_op_threads(num_threads):
        return _fit_shape(events, shape, config=config, init=init, seed=seed, progress=progress)


def _fit_shape(events, shape, *, config, init, seed, progress) -> FitResult:
    config = config or FitConfig()
    evs = as_events(events)
    if not isinstance(shape, Shape):
        raise TypeError(f"shape must follow the Shape protocol (n_params, param_names, __call__, initial_params), got {type(shape).__name__}")
    B = len(evs)
    seed = check_seed(seed)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    if init is None:
        params0 = torch.stack([shape.initial_params(x, a) for x, a in evs]).double()
    else:
        params0 = torch.as_tensor(init, dtype=torch.float64).reshape(B, -1).clone() if torch.as_tensor(init).dim() > 1 else torch.as_tensor(init, dtype=torch.float64).expand(B, -1).clone()
    if params0.shape != (B, shape.n_params):
        raise ValueError(f"init must have shape [{B}, {shape.n_params}] or [{shape.n_params}], got {tuple(params0.shape)}")
    totals = torch.stack([a.sum() for _, a in evs])
    import ot  # noqa: F401  (imported before the clock starts: FitResult.seconds is the fit, not the import)

    start = time.perf_counter()
    bar = _progress(config.steps, progress, config.mode)
    if config.mode == "exact":
        params, history, g_final, critic, problem = _fit_exact(evs, shape, params0, totals, config, bar)
    elif config.mode == "accurate":
        params, history, g_final, critic, problem = _fit_accurate(evs, shape, params0, totals, config, generator, bar)
    else:
        params, history, g_final, critic, problem = _fit_paper(evs, shape, params0, totals, config, generator, bar)
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    refined, critic_vals, exact = _final_values(evs, shape, params, totals, config, g_final, critic, problem)
    if config.mode == "accurate":
        emd = refined
    elif config.mode == "paper":
        emd = critic_vals
    else:
        emd = exact if config.compute_exact else refined
    return FitResult(params=params.detach(), emd=emd, refined=refined, exact=exact, critic_value=critic_vals, history=history,
                     seconds=seconds, mode=config.mode, param_names=tuple(shape.param_names))


def _progress(total: int, enabled: bool, desc: str):
    from emd_lipschitz._progress import progress_bar

    # a bar on a terminal; piped output gets one line per ~10 %, never carriage-return frames
    return progress_bar(total, f"fit ({desc})", True) if enabled else None


def _shape_batch(shape: Shape, params: Tensor, totals: Tensor) -> tuple[Tensor, Tensor]:
    points, weights = shape(params)
    return points, weights * totals[:, None]


def _fit_exact(evs, shape, params0, totals, config, bar):
    """Adam on the exact EMD: per step one network simplex per event (POT ``ot.emd`` on the event's
    centred and scaled frame, direct differences), then one batched torch pass for the gradient:
    positions through the optimal plan's support (O(n + m) pairs per event), weights through the
    dual potentials. The plan is held fixed in the backward pass (the envelope theorem), so the
    gradient is an exact subgradient of the EMD."""
    import ot

    from emd_lipschitz._ground import distances, frame, pair_distances

    params = params0.clone().requires_grad_(True)
    opt = Adam([params], lr=config.lr)
    frames = []
    for x, a in evs:
        xn = x.numpy()
        centre, scale = frame(xn, xn)
        frames.append(((xn - centre) / scale, a.numpy() / a.numpy().sum(), centre, scale))
    X = _pad(evs)[0]
    B = len(evs)
    best_value = np.full(B, np.inf)
    best_params = params.detach().clone()
    since_best = np.zeros(B, dtype=int)
    active = np.ones(B, dtype=bool)
    history = []
    for _ in range(config.steps):
        points, weights = _shape_batch(shape, params, totals)
        pts = points.detach().numpy()
        wts = weights.detach().numpy()
        rows_e, rows_i, rows_j, masses = [], [], [], []
        potentials = np.zeros(wts.shape)
        values = best_value.copy()
        for e, (xs, an, centre, scale) in enumerate(frames):
            if not active[e]:
                continue
            w = wts[e] / wts[e].sum()
            cost = distances(xs, (pts[e] - centre) / scale)
            plan, log = ot.emd(an, w, cost, numItermax=100_000_000, log=True)
            values[e] = float(totals[e]) * scale * float(np.sum(plan * cost))
            i, j = np.nonzero(plan)
            rows_e.append(np.full(len(i), e))
            rows_i.append(i)
            rows_j.append(j)
            masses.append(plan[i, j] * float(totals[e]))
            potentials[e] = np.asarray(log["v"]) * scale
        improved = active & (values < best_value * (1.0 - config.tol))
        better = active & (values < best_value)
        best_params[torch.as_tensor(better)] = params.detach()[torch.as_tensor(better)]
        best_value = np.where(better, values, best_value)
        since_best = np.where(improved, 0, since_best + 1)
        history.append(float(np.mean(values)))
        if bar is not None:
            bar.update(1)
        if config.patience and np.any(active & (since_best >= config.patience)):
            active &= since_best < config.patience
        if not active.any():
            break
        ee, ii, jj = (torch.as_tensor(np.concatenate(r)) for r in (rows_e, rows_i, rows_j))
        d = pair_distances(X[ee, ii], points[ee, jj])
        loss = (torch.as_tensor(np.concatenate(masses)) * d).sum()
        if weights.requires_grad:
            loss = loss + ((weights - weights.detach()) * torch.as_tensor(potentials)).sum()
        opt.zero_grad()
        loss.backward()
        frozen = torch.as_tensor(~active)
        opt.step()
        with torch.no_grad():  # stopped events keep their parameters (Adam's momentum would move them)
            params[frozen] = best_params[frozen]
    return best_params, history, None, None, None


def _problem(evs, points: Tensor, weights: Tensor, norm: DualProblem | None = None) -> DualProblem:
    """The padded batch; the critic's input normalization is taken from ``norm`` when given (kept
    fixed during a fit so the critic's input map does not move under it)."""
    X, A = _pad(evs)
    if norm is None:
        centre, scale = normalization(X, A, points.detach(), weights.detach())
    else:
        centre, scale = norm.centre, norm.scale
    return DualProblem(X, A, points.detach(), weights.detach(), centre, scale, None, False)


def _as_dtype(problem: DualProblem, dtype: torch.dtype) -> DualProblem:
    return DualProblem(problem.x.to(dtype), problem.a.to(dtype), problem.y.to(dtype), problem.b.to(dtype),
                       problem.centre.to(dtype), problem.scale.to(dtype), problem.R, problem.flat)


def _fit_accurate(evs, shape, params0, totals, config, generator, bar):
    cc = config.critic
    dtype = cc.torch_dtype
    params = params0.clone().requires_grad_(True)
    opt = Adam([params], lr=config.lr)
    with torch.no_grad():
        points, weights = _shape_batch(shape, params, totals)
    problem = _problem(evs, points, weights)
    norm = problem
    critic = BatchedCritic(len(evs), 2, hidden=cc.hidden, depth=cc.depth, group_size=cc.group_size, always_norm=cc.always_norm,
                           dtype=dtype, generator=generator)
    _, state = train_critic(critic, _as_dtype(problem, dtype), steps=cc.steps, lr=cc.lr, final_lr_fraction=cc.final_lr_fraction)
    g_prev: list[Tensor | None] = [None] * len(evs)
    history = []
    for _ in range(config.steps):
        points, weights = _shape_batch(shape, params, totals)
        problem = _problem(evs, points, weights, norm)
        if cc.warm_steps:
            _, state = train_critic(critic, _as_dtype(problem, dtype), steps=cc.warm_steps, lr=cc.lr * cc.final_lr_fraction * 5,
                                    final_lr_fraction=1.0, state=state)
        with torch.no_grad():
            fx_all = critic_values(critic, _as_dtype(problem, dtype), problem.x).double()
            fy_all = critic_values(critic, _as_dtype(problem, dtype), problem.y).double()
        loss = points.new_zeros(())
        values = []
        for i, (x, a) in enumerate(evs):
            y, b = points[i], weights[i]
            ground = Ground(x, a, y.detach(), b.detach(), None, False)
            f0, g0 = ctransform_refine(ground, fx_all[i, : x.shape[0]], fy_all[i])
            start_g = g0
            if g_prev[i] is not None and hard_dual(ground, g_prev[i])[0] > ground.value(f0, g0):
                start_g = g_prev[i]
            value, f, g, eps = semidual_refine(ground, start_g, iters=config.refine_iters, eps_fractions=config.step_eps_fractions)
            g_prev[i] = g
            cost = transport_plan_cost(ground, g, x, y, eps, balance_iters=config.balance_iters)
            loss = loss + (cost - cost.detach()) + ((b - b.detach()) * g).sum()
            values.append(value)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(np.mean(values)))
        if bar is not None:
            bar.update(1)
    return params.detach(), history, g_prev, critic, norm


def _fit_paper(evs, shape, params0, totals, config, generator, bar):
    ps = config.paper
    params = params0.clone().requires_grad_(True)
    with torch.no_grad():
        points, weights = _shape_batch(shape, params, totals)
    problem = _problem(evs, points, weights)
    critic = BatchedCritic(len(evs), 2, hidden=ps.hidden, depth=ps.depth, group_size=ps.group_size, always_norm=False,
                           dtype=torch.float32, generator=generator)
    copt = Adam(list(critic.parameters()), lr=ps.critic_lr)
    velocity = torch.zeros_like(params)
    history = []
    # The paper's critic sees raw coordinates (no centring or scaling): keep the first step's
    # normalization fixed so the critic's input map does not move under it.
    centre, scale = problem.centre, problem.scale
    for step in range(config.steps):
        points, weights = _shape_batch(shape, params, totals)
        prob = DualProblem(problem.x.float(), problem.a.float(), points.float(), weights.float(), centre.float(), scale.float(), None, False)
        objective = dual_objective(critic, prob)  # [B]: sum w f(shape) - sum a f(event)
        copt.lr = ps.eta_min + (ps.critic_lr - ps.eta_min) * 0.5 * (1 + math.cos(math.pi * step / ps.cosine_period))
        copt.zero_grad()
        params.grad = None
        total = objective.sum()
        total.backward()
        # Critic ascends the dual (AdamW with decoupled weight decay); the shape descends it.
        with torch.no_grad():
            for p in critic.parameters():
                p.grad = -p.grad
                p.mul_(1 - copt.lr * ps.weight_decay)
        copt.step()
        with torch.no_grad():
            grad = params.grad
            velocity = grad.clone() if step == 0 else ps.momentum * velocity + (1 - ps.dampening) * grad
            params -= ps.shape_lr * velocity
        history.append(float(objective.detach().mean()))
        if bar is not None:
            bar.update(1)
    return params.detach(), history, None, critic, problem


def _final_values(evs, shape, params, totals, config, g_final, critic, problem):
    """Certified refined value, critic value and POT exact value at the final parameters."""
    with torch.no_grad():
        points, weights = _shape_batch(shape, params, totals)
    refined, critic_vals, exact = [], [], []
    for i, (x, a) in enumerate(evs):
        y, b = points[i].detach(), weights[i].detach()
        ground = Ground(x, a, y, b, None, False)
        if critic is not None:
            mlp = critic.event_mlp(i)
            centre_i, scale_i = problem.centre[i], problem.scale[i]
            with torch.no_grad():
                fx = mlp((x - centre_i) / scale_i).squeeze(-1) * scale_i
                fy = mlp((y - centre_i) / scale_i).squeeze(-1) * scale_i
            cv = ground.value(fx, fy)
            f0, g0 = ctransform_refine(ground, fx, fy)
        else:
            cv = math.nan
            g0 = torch.zeros(y.shape[0], dtype=torch.float64)
        start = g0
        if g_final is not None and g_final[i] is not None and hard_dual(ground, g_final[i])[0] > hard_dual(ground, g0)[0]:
            start = g_final[i]
        value, _, _, _ = semidual_refine(ground, start, iters=config.final_refine_iters)
        refined.append(max(value, cv) if math.isfinite(cv) else value)
        critic_vals.append(cv)
        exact.append(exact_emd(x, a, y, b) if config.compute_exact else math.nan)
    return np.array(refined), np.array(critic_vals), np.array(exact)

