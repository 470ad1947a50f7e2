"""SHAPER-style observables on the exact EMD: ringiness, diskiness, N-subjettiness with free weights.

SHAPER (Ba, Dogra, Gambhir, Tasissa, Thaler, arXiv 2302.12266) defines a shape observable as the
smallest EMD between an event (energies normalized to 1) and a parametrized shape, divided by
R^beta. SHAPER minimizes a Sinkhorn approximation; here the EMD is exact:

* ringiness / diskiness: Adam on the exact EMD to a uniform ring / disk (free centre and
  radius), the exact-path :func:`fit_shape`, batched over events.
* N-subjettiness with free weights: the smallest EMD to N points whose weights are free. With
  free weights every particle's energy goes to its nearest point, so the EMD is
  ``sum_i E_i min_k d(x_i, c_k)^beta / R^beta``: a weighted k-medians (beta = 1) or k-means
  (beta = 2) problem, minimized by Lloyd iterations (Weiszfeld steps for beta != 2) from several
  k-means++ starts; ``.weights`` are the energies assigned to each point.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from emd_lipschitz._fit import FitConfig, as_events, fit_shape
from emd_lipschitz._shapes import Disk, Ring
from emd_lipschitz._validate import check_radius, check_seed


@dataclass
class ObservableResult:
    """Per-event values of a shape observable (B events).

    Attributes:
        values: ``[B]`` the observable (the smallest EMD found, divided by R^beta).
        params: ``[B, P]`` the minimizing parameters (``param_names``), or the N-subjettiness
            centres flattened as ``x1, y1, x2, y2, ...``.
        param_names: names of the columns of ``params``.
        weights: ``[B, N]`` the free weights (N-subjettiness), else None.
        seconds: wall time of the computation.
    """

    values: np.ndarray
    params: np.ndarray
    param_names: tuple[str, ...]
    weights: np.ndarray | None
    seconds: float


def _normalized(events) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x, a / a.sum()) for x, a in as_events(events)]


def _shape_observable(events, shape, *, R, config: FitConfig | None, seed) -> ObservableResult:
    radius = check_radius(R)
    evs = _normalized(events)
    config = config or FitConfig(mode="exact", steps=300, lr=0.01)
    if config.mode != "exact":
        config = replace(config, mode="exact")
    start = time.perf_counter()
    result = fit_shape(evs, shape, config=replace(config, compute_exact=True), seed=check_seed(seed))
    values = np.asarray(result.exact) / (1.0 if radius is None else radius)
    return ObservableResult(values=values, params=result.params.numpy(), param_names=result.param_names, weights=None,
                            seconds=time.perf_counter() - start)


def ringiness(events: object, *, R: float | None = None, n_points: int = 200, config: FitConfig | None = None,
              seed: int | None = 0) -> ObservableResult:
    """The smallest exact EMD between each event (energies normalized) and a uniform ring.

    The ring is ``n_points`` evenly spaced points (free centre and radius), fitted by the
    exact-path :func:`fit_shape`; ``params`` are ``cx, cy, log_r``. Divided by R when given.
    An evenly spaced ring of n points sits about ``pi r / (2 n)`` from the continuous ring.
    """
    return _shape_observable(events, Ring(n_points), R=R, config=config, seed=seed)


def diskiness(events: object, *, R: float | None = None, n_points: int = 300, config: FitConfig | None = None,
              seed: int | None = 0) -> ObservableResult:
    """The smallest exact EMD between each event (energies normalized) and a uniform disk
    (``n_points`` on a Vogel spiral, free centre and radius; ``params`` ``cx, cy, log_r``)."""
    return _shape_observable(events, Disk(n_points), R=R, config=config, seed=seed)


def _lloyd(x: np.ndarray, a: np.ndarray, centres: np.ndarray, beta: float, iters: int) -> tuple[np.ndarray, float, np.ndarray]:
    """Weighted Lloyd iterations for ``sum_i a_i min_k ||x_i - c_k||^beta`` (each step: assign to
    the nearest centre, then the weighted mean (beta = 2) or one Weiszfeld/IRLS step, all
    clusters at once). Stops when the objective improves by less than 1e-9 relative."""
    from emd_lipschitz._ground import distances

    k = len(centres)
    rows = np.arange(len(x))
    floor = 1e-12 * (1.0 + float(np.abs(x).max()))
    value = math.inf
    for step in range(iters):
        d = distances(x, centres)
        label = d.argmin(1)
        dist = d[rows, label]
        new_value = float((a * dist**beta).sum())
        if new_value >= value * (1 - 1e-9):
            break
        value = new_value
        # The first step moves to the weighted means: a Weiszfeld step started on a particle (where
        # k-means++ seeds) would stay there, its own weight being infinite.
        w = a if beta == 2.0 or step == 0 else a * np.maximum(dist, floor) ** (beta - 2.0)
        mass = np.bincount(label, weights=w, minlength=k)
        occupied = mass > 0
        for c in range(x.shape[1]):
            moved = np.bincount(label, weights=w * x[:, c], minlength=k)
            centres[occupied, c] = moved[occupied] / mass[occupied]
    d = distances(x, centres)
    label = d.argmin(1)
    return centres, float((a * d[rows, label] ** beta).sum()), label


def nsubjettiness(events: object, N: int, *, beta: float = 1.0, R: float | None = None, n_init: int = 8, iters: int = 200,
                  seed: int | None = 0) -> ObservableResult:
    """N-subjettiness with free weights: the smallest exact EMD to N weighted points.

    ``tau_N = min_{c, w} EMD(event, sum_k w_k delta_{c_k}) = sum_i E_i min_k ||x_i - c_k||^beta / R^beta``
    (energies normalized to 1). Computed by weighted Lloyd iterations (Weiszfeld steps unless
    beta = 2) from ``n_init`` k-means++ starts; the best local minimum is returned (an upper
    bound on the global one). ``weights[b]`` are the energies that go to each centre.
    """
    if isinstance(N, (bool, np.bool_)) or not isinstance(N, (int, np.integer)) or N < 1:
        raise ValueError(f"N must be an integer >= 1, got {N!r}")
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 1.0):
        raise ValueError(f"beta must be a finite number >= 1 (the Lloyd steps need a convex cost), got {beta!r}")
    radius = check_radius(R)
    evs = _normalized(events)
    rng = np.random.default_rng(check_seed(seed))
    start = time.perf_counter()
    values, params, weights = [], [], []
    for b, (xt, at) in enumerate(evs):
        x, a = xt.numpy(), at.numpy()
        support = int((a > 0).sum())
        if N > support:
            raise ValueError(f"N = {N} is larger than the number of particles with positive energy in event {b} ({support})")
        best = (math.inf, None, None)
        for _ in range(n_init):
            centres = _kmeanspp(x, a, N, rng)
            centres, value, label = _lloyd(x, a, centres, float(beta), iters)
            if value < best[0]:
                best = (value, centres.copy(), label)
        value, centres, label = best
        values.append(value / (1.0 if radius is None else radius) ** beta)
        params.append(centres.reshape(-1))
        weights.append(np.bincount(label, weights=a, minlength=N))
    names = tuple(f"{c}{k + 1}" for k in range(N) for c in ("x", "y"))
    return ObservableResult(values=np.array(values), params=np.array(params), param_names=names, weights=np.array(weights),
                            seconds=time.perf_counter() - start)


def _kmeanspp(x: np.ndarray, a: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    p = a / a.sum()
    centres = [x[rng.choice(len(x), p=p)]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), 1)
        q = p * d2
        centres.append(x[rng.choice(len(x), p=q / q.sum())] if q.sum() > 0 else x[rng.integers(len(x))])
    return np.array(centres, dtype=np.float64)


def choose_k_elbow(taus: np.ndarray, ks: tuple[int, ...], ratio: float) -> int:
    """The first k after which one more point no longer pays: the smallest k in ``ks`` with
    ``tau_{k+1} / tau_k > ratio`` (``taus[i]`` is tau at ``ks[i]``; ks consecutive). Splitting a
    real cluster lowers tau by a large factor; splitting a Gaussian blob only by a little, whatever
    the cluster populations."""
    for i in range(len(ks) - 1):
        if taus[i] <= 0 or taus[i + 1] / taus[i] > ratio:
            return ks[i]
    return ks[-1]
