"""The effective theory: effective loss, its gradient flow, eigenvalues, critical training fraction."""

from __future__ import annotations

import numpy as np
import torch

from grokking_theory._combinatorics import (
    NULL_TOL,
    check_p,
    equation_matrix,
    parallelogram_samples,
    sample_pairs,
    train_parallelograms,
)


def effective_loss(
    embedding: torch.Tensor, p: int, train_ids: np.ndarray | None = None
) -> torch.Tensor:
    """Paper's effective loss ``l_eff = l0 / Z0`` (differentiable).

    ``l0`` = mean over the training set's parallelograms P0(D) (all of P0 if ``train_ids`` is None)
    of ``|E_i + E_j - E_m - E_n|^2``; ``Z0 = sum_k |E_k - mean E|^2``. Scale and translation invariant.
    """
    p = check_p(p)
    e = embedding if embedding.ndim == 2 else embedding[:, None]
    A = equation_matrix(p)
    rows = A if train_ids is None else A[train_parallelograms(p, train_ids)]
    if len(rows) == 0:
        raise ValueError("the training set contains no parallelogram; l_eff is undefined")
    A_t = torch.as_tensor(np.array(rows), dtype=e.dtype, device=e.device)
    l0 = ((A_t @ e) ** 2).sum(1).mean()
    z0 = ((e - e.mean(0, keepdim=True)) ** 2).sum()
    return l0 / z0


def effective_flow(
    e0: np.ndarray, p: int, *, eta: float = 1e-3, steps: int = 5000, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The official "Task 3" effective dynamics of a 1-D embedding.

    Starting from ``e0`` (z-scored in the official code, so ``Z0 = p - 1``), iterate
    ``E <- E + eta * (2 l0 / Z0^2 E - 2/Z0 A^T A E)`` with ``l0 = |A E|^2`` and ``Z0`` frozen at
    its initial value; ``A`` is all of P0 (the code's choice) unless ``rows`` selects a subset.
    Returns the trajectory ``(steps, p)`` and ``l0`` per step.
    """
    p = check_p(p)
    A = equation_matrix(p).astype(np.float64)
    if rows is not None:
        A = A[rows]
    E = np.asarray(e0, dtype=np.float64).reshape(p).copy()
    z0 = float(np.sum(E**2))
    traj, losses = np.zeros((steps, p)), np.zeros(steps)
    for i in range(steps):
        traj[i] = E
        r = A @ E
        l0 = float(r @ r)
        losses[i] = l0
        E = E + eta * (2 * l0 / z0**2 * E - 2 / z0 * (A.T @ r))
    return traj, losses


def hessian_eigenvalues(p: int, train_ids: np.ndarray | None = None, *, z0: float | None = None) -> np.ndarray:
    """Eigenvalues of the effective loss's Hessian ``H = 2 A^T A / Z0`` (ascending).

    ``A`` holds P0(D) (all of P0 when ``train_ids`` is None); ``Z0`` defaults to ``p - 1`` (a
    z-scored 1-D embedding). ``lambda_1 = lambda_2 = 0`` (translation and scale).
    """
    p = check_p(p)
    A = equation_matrix(p).astype(np.float64)
    if train_ids is not None:
        A = A[train_parallelograms(p, train_ids)]
    z0 = float(p - 1) if z0 is None else float(z0)
    return np.linalg.eigvalsh(2 * A.T @ A / z0)


def predicted_time_to_structure(
    p: int, train_ids: np.ndarray | None = None, *, eta: float = 1e-3, z0: float | None = None
) -> dict[str, float]:
    """Grokking-rate prediction: the slowest structural mode decays at lambda_3, so the
    representation forms in ``n_h = 1 / (lambda_3 * eta)`` steps (trajectories take ~3 n_h)."""
    lam = hessian_eigenvalues(p, train_ids, z0=z0)
    lam3 = float(lam[2])
    return {"lambda3": lam3, "n_h": float("inf") if lam3 < NULL_TOL else 1.0 / (lam3 * eta)}


def _fixing_size(p: int, order: np.ndarray, A: np.ndarray, idx: np.ndarray) -> int:
    """Smallest prefix length of ``order`` whose parallelograms fix the linear structure
    (nullity 2); monotone in the prefix length, found by bisection."""
    n = len(order)
    rank_pos = np.empty(n, dtype=np.int64)
    rank_pos[order] = np.arange(n)
    # a parallelogram is present once both of its samples are in the prefix
    appear = np.maximum(rank_pos[idx[:, 0]], rank_pos[idx[:, 1]])
    sort = np.argsort(appear, kind="stable")
    appear_sorted, A_sorted = appear[sort], A[sort]

    def fixed(k: int) -> bool:
        m = np.searchsorted(appear_sorted, k, side="left")  # parallelograms within the first k
        if m < p - 2:
            return False
        rows = A_sorted[:m]
        w = np.linalg.eigvalsh(rows.T @ rows)
        return bool(w[2] > NULL_TOL)

    lo, hi = 1, n
    if not fixed(hi):
        return n + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if fixed(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def critical_fraction(
    p: int, *, trials: int = 2000, seed: int = 0, progress: bool = False
) -> dict[str, object]:
    """Monte Carlo critical training fraction: P(a random training set of size n fixes the linear
    structure, i.e. lambda_3(A_{P0(D)}^T A_{P0(D)}) > 1e-8) for every n, and the 50 % crossing.

    ``r_c = n_c / N`` with ``n_c`` linearly interpolated where the probability crosses 0.5.
    """
    from tqdm.auto import tqdm

    p = check_p(p)
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    n = len(sample_pairs(p))
    A = equation_matrix(p).astype(np.float64)
    idx = parallelogram_samples(p)
    rng = np.random.default_rng(seed)
    sizes = np.array(
        [_fixing_size(p, rng.permutation(n), A, idx) for _ in tqdm(range(trials), disable=not progress, desc=f"r_c p={p}")]
    )
    counts = np.arange(1, n + 1)
    prob = (sizes[None, :] <= counts[:, None]).mean(1)
    k = int(np.argmax(prob >= 0.5))  # first n with P >= 0.5
    if k == 0:
        n_c = float(counts[0])
    else:
        p0, p1 = prob[k - 1], prob[k]
        n_c = float(counts[k - 1] + (0.5 - p0) / (p1 - p0))
    return {
        "p": p,
        "n_samples": n,
        "n_parallelograms": len(A),
        "trials": trials,
        "n_c": n_c,
        "r_c": n_c / n,
        "prob_fixed": {int(c): float(q) for c, q in zip(counts, prob) if 0 < q < 1 or c == counts[k]},
        "stderr_at_n_c": float(np.sqrt(0.25 / trials)),
    }
