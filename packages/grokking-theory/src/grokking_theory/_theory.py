"""The effective theory: effective loss, its gradient flow, eigenvalues, critical training fraction.

One normalization throughout: ``l0`` is the **sum** over the parallelograms P0(D) of
``|E_i + E_j - E_m - E_n|^2`` (the official code's choice, used by its effective flow and its time
scale n_h). The paper's Eq. 4 divides ``l0`` by ``|P0(D)|``; that only rescales time by
``|P0(D)|`` (70 for p = 10 with the full data set), so every time scale here is in the code's
units: ``effective_loss``, ``effective_flow``, ``hessian_eigenvalues`` and
``predicted_time_to_structure`` agree with each other, and the Hessian of ``effective_loss`` at a
linear (ground-state) embedding equals ``hessian_eigenvalues``' matrix ``2 A^T A / Z0`` exactly.
"""

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
    """Effective loss ``l_eff = l0 / Z0`` (differentiable).

    ``l0`` = **sum** over the training set's parallelograms P0(D) (all of P0 if ``train_ids`` is
    None) of ``|E_i + E_j - E_m - E_n|^2`` (the official code's normalization, see the module
    docstring; the paper's Eq. 4 is this divided by ``|P0(D)|``); ``Z0 = sum_k |E_k - mean E|^2``.
    Scale and translation invariant.
    """
    p = check_p(p)
    e = embedding if embedding.ndim == 2 else embedding[:, None]
    A = equation_matrix(p)
    rows = A if train_ids is None else A[train_parallelograms(p, train_ids)]
    if len(rows) == 0:
        raise ValueError("the training set contains no parallelogram; l_eff is undefined")
    A_t = torch.as_tensor(np.array(rows), dtype=e.dtype, device=e.device)
    l0 = ((A_t @ e) ** 2).sum()
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
    """Eigenvalues (ascending) of ``H = 2 A^T A / Z0``, the Hessian of :func:`effective_loss`
    (summed ``l0``) at a linear ground-state embedding with ``sum |E - mean E|^2 = Z0``.

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
    p: int, *, trials: int = 2000, seed: int = 0, bootstrap: int = 200, progress: bool = False
) -> dict[str, object]:
    """Monte Carlo critical training fraction: P(a random training set of size n fixes the linear
    structure, i.e. lambda_3(A_{P0(D)}^T A_{P0(D)}) > 1e-8) for every n, and the 50 % crossing.

    ``r_c = n_c / N`` with ``n_c`` linearly interpolated where the probability crosses 0.5.
    ``n_c_stderr`` / ``r_c_stderr`` are bootstrap standard errors (``bootstrap`` resamples of the
    trials, seeded); ``prob_stderr_at_half`` is the binomial standard error of an estimated
    probability of 0.5 (sqrt(0.25 / trials)), which is not the error of ``n_c``.
    """
    from grokking_theory._io import progress_bar

    p = check_p(p)
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be >= 0, got {bootstrap}")
    n = len(sample_pairs(p))
    A = equation_matrix(p).astype(np.float64)
    idx = parallelogram_samples(p)
    rng = np.random.default_rng(seed)
    sizes = np.array(
        [_fixing_size(p, rng.permutation(n), A, idx) for _ in progress_bar(range(trials), enabled=progress, desc=f"r_c p={p}")]
    )
    counts = np.arange(1, n + 1)
    prob = (sizes[None, :] <= counts[:, None]).mean(1)
    n_c, k = _crossing(prob, counts)
    boot_rng = np.random.default_rng([seed, 1])
    boot = [_crossing((sizes[boot_rng.integers(0, trials, trials)][None, :] <= counts[:, None]).mean(1),
                      counts)[0] for _ in range(bootstrap)]
    n_c_se = float(np.std(boot, ddof=1)) if bootstrap > 1 else float("nan")
    return {
        "p": p,
        "n_samples": n,
        "n_parallelograms": len(A),
        "trials": trials,
        "n_c": n_c,
        "r_c": n_c / n,
        "prob_fixed": {int(c): float(q) for c, q in zip(counts, prob) if 0 < q < 1 or c == counts[k]},
        "n_c_stderr": n_c_se,
        "r_c_stderr": n_c_se / n,
        "bootstrap": bootstrap,
        "prob_stderr_at_half": float(np.sqrt(0.25 / trials)),
    }


def _crossing(prob: np.ndarray, counts: np.ndarray) -> tuple[float, int]:
    """Training-set size where ``prob`` first reaches 0.5, linearly interpolated."""
    k = int(np.argmax(prob >= 0.5))  # first n with P >= 0.5
    if k == 0:
        return float(counts[0]), k
    p0, p1 = prob[k - 1], prob[k]
    return float(counts[k - 1] + (0.5 - p0) / (p1 - p0)), k


def network_vs_effective(cfg, *, device: str = "cpu", rows: str = "all", progress: bool = False) -> dict:
    """The paper's Fig. 4c-d: the 1-D embedding learned by the network against the effective
    theory's flow started from the same initial embedding.

    Trains ``cfg`` (a 1-D ToyConfig) with the faithful trainer, z-scores the initial embedding
    (as the official "Task 3" does, so ``Z0 = p - 1``) and runs :func:`effective_flow` for as many
    steps with ``eta = cfg.eta_reprs`` over all of P0 (``rows="all"``, the official code's choice)
    or the training set's parallelograms P0(D) (``rows="train"``: a smaller lambda_3, so a slower
    flow). Both trajectories are z-scored per
    step, so they are compared on the same scale. Returns the trajectories, the RQI per step of
    each, the first step with RQI > 0.95 in each, and the Pearson correlation of the two final
    embeddings (sign-aligned: the flow may end in the mirrored line).
    """
    from grokking_theory._combinatorics import rqi, standardize
    from grokking_theory._toy import train_toy

    if cfg.reprs_dim != 1:
        raise ValueError(f"the effective flow is written for a 1-D embedding; reprs_dim is {cfg.reprs_dim}")
    if rows not in ("train", "all"):
        raise ValueError(f"rows must be 'train' or 'all', got {rows!r}")
    run = train_toy(cfg, device=device, progress=progress)
    from grokking_theory._init import initial_state

    e0 = initial_state(cfg).reprs.numpy().reshape(-1).astype(np.float64)
    z0 = standardize(e0)[:, 0]
    sel = train_parallelograms(cfg.p, run.train_ids) if rows == "train" else None
    if sel is not None and not sel.any():
        raise ValueError("the training set holds no parallelogram; the effective flow does not move")
    traj, losses = effective_flow(z0, cfg.p, eta=cfg.eta_reprs, steps=cfg.steps, rows=sel)
    net = run.reprs[:, :, 0].astype(np.float64)
    net_z = (net - net.mean(1, keepdims=True)) / net.std(1, ddof=1, keepdims=True)
    eff_z = (traj - traj.mean(1, keepdims=True)) / traj.std(1, ddof=1, keepdims=True)
    eff_rqi = np.array([rqi(t) for t in traj])
    corr = float(np.corrcoef(net_z[-1], eff_z[-1])[0, 1])

    def first(x: np.ndarray) -> int | None:
        hit = np.flatnonzero(x > cfg.threshold_rqi)
        return int(hit[0]) if len(hit) else None

    return {
        "network": net_z, "effective": eff_z, "network_rqi": run.rqi, "effective_rqi": eff_rqi,
        "effective_l0": losses,
        "metrics": {
            "steps": cfg.steps, "rows": rows, "eta": cfg.eta_reprs,
            "network_step_rqi": first(run.rqi), "effective_step_rqi": first(eff_rqi),
            "final_corr_abs": abs(corr), "network_final_rqi": float(run.rqi[-1]),
            "effective_final_rqi": float(eff_rqi[-1]),
            "predicted_n_h": predicted_time_to_structure(cfg.p, run.train_ids if rows == "train" else None,
                                                         eta=cfg.eta_reprs)["n_h"],
        },
    }


def plot_trajectories(result: dict, path) -> object:
    """Two panels (network, effective theory): each symbol's z-scored embedding against steps."""
    from grokking_theory._plot import _plt, save_figure

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    m = result["metrics"]
    for ax, key, title in ((axes[0], "network", "network (AdamW, decoder)"),
                           (axes[1], "effective", f"effective theory ({m['rows']} parallelograms)")):
        traj = result[key]
        steps = np.arange(1, len(traj) + 1)
        for k in range(traj.shape[1]):
            ax.plot(steps, traj[:, k], color=plt.cm.viridis(k / max(1, traj.shape[1] - 1)), lw=1, label=str(k))
        step = m[f"{key}_step_rqi"]
        if step is not None:
            ax.axvline(step + 1, color="k", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{title}; RQI > 0.95 at {step}", fontsize=9)
    axes[0].set_ylabel("z-scored embedding E_k")
    axes[1].legend(fontsize=6, ncol=2, title="k", title_fontsize=6)
    return save_figure(fig, path)
