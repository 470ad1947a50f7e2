"""Clustering: k equal-weight points per event, k chosen from the EMD curve; weighted k-means."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from emd_lipschitz._fit import FitConfig, as_events, fit_shape
from emd_lipschitz._shapes import WeightedPoints


def kmeans(x: np.ndarray, a: np.ndarray, k: int, *, seed: int = 0, n_init: int = 4, iters: int = 100) -> tuple[np.ndarray, float]:
    """Weighted Lloyd k-means with k-means++ seeding; returns (centres [k, d], weighted inertia)."""
    x = np.asarray(x, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rng = np.random.default_rng(seed)
    p = a / a.sum()
    best, best_inertia = None, np.inf
    for _ in range(n_init):
        centres = [x[rng.choice(len(x), p=p)]]
        for _ in range(1, k):
            d2 = np.min(((x[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), 1)
            q = p * d2
            centres.append(x[rng.choice(len(x), p=q / q.sum())] if q.sum() > 0 else x[rng.integers(len(x))])
        c = np.array(centres)
        for _ in range(iters):
            labels = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
            new = np.array([(a[labels == j, None] * x[labels == j]).sum(0) / a[labels == j].sum() if a[labels == j].sum() > 0 else c[j] for j in range(k)])
            if np.allclose(new, c):
                break
            c = new
        inertia = float((a * ((x - c[labels]) ** 2).sum(-1)).sum())
        if inertia < best_inertia:
            best, best_inertia = c, inertia
    assert best is not None
    return best, best_inertia


def choose_k(curve: np.ndarray, ks: tuple[int, ...], tolerance: float = 0.5) -> int:
    """The smallest k whose EMD is within ``(1 + tolerance)`` of the lowest EMD on the curve.

    With equal weights the curve dips to the noise floor at the true k, rises when a cluster must
    be shared, and can dip again at multiples (each cluster split in two); the smallest k that
    reaches the floor is the answer.
    """
    floor = float(np.min(curve))
    for k, value in zip(ks, curve):
        if value <= (1.0 + tolerance) * floor:
            return k
    return ks[-1]  # pragma: no cover - the minimum itself always qualifies


@dataclass
class ClusterResult:
    """``k[b]`` chosen per event, ``curves[b, i]`` the EMD of the best k=ks[i] fit, ``centres[b]`` for the chosen k."""

    ks: tuple[int, ...]
    k: np.ndarray
    curves: np.ndarray
    centres: list[np.ndarray]
    exact_curves: np.ndarray


def cluster_events(events: object, ks: tuple[int, ...] = (2, 3, 4, 5, 6), *, config: FitConfig | None = None, seed: int = 0,
                   tolerance: float = 0.5, progress: bool = False) -> ClusterResult:
    """Fit k equal-weight points (k in ``ks``) to every event and pick k at the dip of the EMD curve.

    With equal weights 1/k the EMD is not monotone in k: it dips at the true number of clusters
    (free weights would make it decrease monotonically). Initialised at weighted k-means centres.
    ``k`` is chosen by :func:`choose_k` (smallest k within ``1 + tolerance`` of the curve's minimum).
    """
    evs = as_events(events)
    ks = tuple(int(k) for k in ks)
    if len(ks) < 2 or any(k < 1 for k in ks) or list(ks) != sorted(set(ks)):
        raise ValueError(f"ks must be at least two increasing positive integers, got {ks}")
    config = config or FitConfig(steps=150, lr=0.02)
    curves = np.zeros((len(evs), len(ks)))
    exact = np.zeros((len(evs), len(ks)))
    fitted = []
    for j, k in enumerate(ks):
        result = fit_shape(evs, WeightedPoints(k), config=replace(config), seed=seed, progress=progress)
        curves[:, j] = result.emd
        exact[:, j] = result.exact
        fitted.append(result.params.numpy().reshape(len(evs), k, 2))
    chosen = np.array([choose_k(c, ks, tolerance) for c in curves])
    centres = [fitted[ks.index(int(k))][b] for b, k in enumerate(chosen)]
    return ClusterResult(ks=ks, k=chosen, curves=curves, centres=centres, exact_curves=exact)
