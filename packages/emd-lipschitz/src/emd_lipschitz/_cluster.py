"""Clustering: k equal-weight points per event, k chosen from the EMD curve; weighted k-means."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from emd_lipschitz._fit import FitConfig, as_events, fit_shape
from emd_lipschitz._shapes import WeightedPoints
from emd_lipschitz._validate import as_points, as_weights, check_seed


def kmeans(x: np.ndarray, a: np.ndarray, k: int, *, seed: int = 0, n_init: int = 4, iters: int = 100) -> tuple[np.ndarray, float]:
    """Weighted Lloyd k-means with k-means++ seeding; returns (centres [k, d], weighted inertia).

    Raises ``ValueError`` for complex, NaN/inf or huge coordinates, negative or all-zero weights,
    and k outside 1..(number of points with positive weight).
    """
    x = as_points(x, "x", dtype=torch.float64).detach().numpy()
    a = as_weights(a, x.shape[0], "a", dtype=torch.float64).detach().numpy()
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    support = int((a > 0).sum())
    if k > support:
        raise ValueError(f"k = {k} is larger than the number of points with positive weight ({support})")
    rng = np.random.default_rng(check_seed(seed))
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
    """What :func:`cluster_events` returns: ``k[b]`` chosen per event, ``curves[b, i]`` the curve
    the choice was made on at ``ks[i]``, ``exact_curves[b, i]`` the exact EMD of that fit,
    ``centres[b]`` the centres for the chosen k."""

    ks: tuple[int, ...]
    k: np.ndarray
    curves: np.ndarray
    centres: list[np.ndarray]
    exact_curves: np.ndarray


CLUSTER_METHODS = ("nsubjettiness", "equal-weight")

# tau_{k+1} / tau_k above this means one more centre only splits a blob (tuned on validation
# events in tools/bench/emd.py --part cluster; the README reports held-out events).
ELBOW_RATIO = 0.55


def cluster_events(events: object, ks: tuple[int, ...] = (1, 2, 3, 4, 5, 6), *, method: str = "nsubjettiness", ratio: float = ELBOW_RATIO,
                   config: FitConfig | None = None, seed: int | None = 0, tolerance: float = 0.5, progress: bool = False) -> ClusterResult:
    """Choose the number of clusters k (from ``ks``) and the centres for every event.

    ``method="nsubjettiness"`` (default): N-subjettiness with free weights and beta = 2 (the
    exact EMD to k weighted points with squared distances, i.e. weighted k-means) for k in ``ks``
    and ``ks[-1] + 1``; k is the first k where one more centre lowers tau by less than a factor
    ``ratio`` (:func:`choose_k_elbow`). Free weights make the rule hold for unequal cluster
    populations. ``curves[b]`` are the tau_k; ``exact_curves[b]`` the exact EMD (beta = 1) from the
    event to those k weighted centres.

    ``method="equal-weight"``: the 0.1 rule: fit k equal-weight points by the exact-EMD fit and
    take the smallest k within ``1 + tolerance`` of the curve's minimum (fails for unequal
    populations, where equal weights cannot match the cluster masses).
    """
    from emd_lipschitz._observables import choose_k_elbow, nsubjettiness

    if method not in CLUSTER_METHODS:
        raise ValueError(f"method must be one of {CLUSTER_METHODS}, got {method!r}")
    evs = as_events(events)
    ks = tuple(int(k) for k in ks)
    if len(ks) < 2 or any(k < 1 for k in ks) or list(ks) != sorted(set(ks)):
        raise ValueError(f"ks must be at least two increasing positive integers, got {ks}")
    smallest = min(int((a > 0).sum()) for _, a in evs)
    if ks[-1] > smallest:
        raise ValueError(f"k = {ks[-1]} is larger than the number of particles in the smallest event ({smallest})")
    seed = check_seed(seed)
    if method == "nsubjettiness":
        if list(ks) != list(range(ks[0], ks[-1] + 1)):
            raise ValueError(f"method='nsubjettiness' needs consecutive ks, got {ks}")
        grid = ks + ((ks[-1] + 1,) if ks[-1] + 1 <= smallest else ())
        fits = [nsubjettiness(evs, k, beta=2.0, seed=seed) for k in grid]
        taus = np.stack([f.values for f in fits], axis=1)
        chosen = np.array([choose_k_elbow(t, grid, ratio) for t in taus])
        chosen = np.minimum(chosen, ks[-1])
        centres, exact = [], np.zeros((len(evs), len(ks)))
        from emd_lipschitz._ground import distances

        for b, (x, a) in enumerate(evs):
            xn, an = x.numpy(), a.numpy() / a.numpy().sum()
            for j, k in enumerate(ks):
                c = fits[j].params[b].reshape(k, -1)
                exact[b, j] = float((an * distances(xn, c).min(1)).sum()) * float(a.sum())
            centres.append(fits[grid.index(int(chosen[b]))].params[b].reshape(int(chosen[b]), -1))
        return ClusterResult(ks=ks, k=chosen, curves=taus[:, : len(ks)], centres=centres, exact_curves=exact)
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
