"""The non-abelian toy: learning the group operation of S3 through a matrix product.

The authors' ``toy/Figure5d_permutation.ipynb`` (and ``data_perm_r.h5``, the paper's Fig. 6d): the
6 permutations of (0, 1, 2) in lexicographic order; every element a has a learnable 9-d vector
reshaped to a 3x3 matrix E_a; the decoder (9 -> 200 -> 200 -> 30, tanh) reads the flattened
matrix product E_a E_b and regresses a random 30-d target of the label ``perm_b[perm_a]``
(nearest target = prediction); all 36 ordered pairs, 24 in training; MSE plus an optional L1
penalty ``l1 * mean|E|`` on the embedding; AdamW for embedding and decoder separately.

The ideal representation is a faithful matrix representation: the permutation matrices
P_s[i, s(i)] = 1 satisfy P_a P_b = P_{perm_b[perm_a]}. :func:`group_rqi` adapts the paper's RQI:
the fraction of the 90 "parallelograms" a.b = c.d (two different pairs with the same product)
that the learned matrices realize, mean((Ẽ_a Ẽ_b - Ẽ_c Ẽ_d)²) < tol, on matrices divided by
their common RMS entry (the notebook's criterion and tolerance 0.5).

Runs are batched (one tensor program for many seeds and learning-rate / weight-decay cells, per-run
AdamW as in :mod:`grokking_theory._batched`). Each run draws its templates, split, decoder and
embedding in the notebook's random order; the batched matmuls (and no per-step batch permutation)
change the floating-point summation order, so step counts agree closely, not bit for bit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from grokking_theory._config import ConfigMixin

PRESETS = {
    # data_perm_r.h5 (the paper's Fig. 6d): no L1, embedding init scale 1
    "sweep": {"init_scale_reprs": 1.0, "l1": 0.0},
    # the committed notebook (toy_results/fig5d): L1 1e-3, embedding init scale 0.1
    "notebook": {"init_scale_reprs": 0.1, "l1": 1e-3},
}
#: decoder weight decays of data_perm_r.h5 (and toy_results/fig5d)
PERM_WD = [0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 200.0]


@dataclass(frozen=True)
class S3Config(ConfigMixin):
    """One S3 run (defaults: ``data_perm_r.h5``'s setup; ``PRESETS["notebook"]`` for the notebook's)."""

    train_num: int = 24
    steps: int = 10_000
    width: int = 200
    output_dim: int = 30
    eta_reprs: float = 1e-3
    eta_dec: float = 1e-4
    weight_decay_reprs: float = 0.0
    weight_decay_dec: float = 0.0
    init_scale_reprs: float = 1.0
    l1: float = 0.0
    seed: int = 0
    threshold_train_acc: float = 0.9
    threshold_test_acc: float = 0.9
    threshold_rqi: float = 0.95
    rqi_tol: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.train_num <= 35:
            raise ValueError(f"train_num must lie in [1, 35] (36 ordered pairs), got {self.train_num}")
        for name in ("steps", "width", "output_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eta_reprs", "eta_dec", "init_scale_reprs", "rqi_tol"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("weight_decay_reprs", "weight_decay_dec", "l1"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def s3_elements() -> list[tuple[int, ...]]:
    """The 6 permutations of (0, 1, 2) in lexicographic order (``itertools.permutations``)."""
    return list(itertools.permutations(range(3)))


def s3_table() -> np.ndarray:
    """(6, 6) table: ``table[a, b]`` = index of ``perm_b[perm_a]`` (first a, then b)."""
    el = s3_elements()
    index = {p: i for i, p in enumerate(el)}
    return np.array([[index[tuple(el[b][el[a][i]] for i in range(3))] for b in range(6)] for a in range(6)])


def permutation_matrices() -> np.ndarray:
    """(6, 3, 3) faithful representation: P_s[i, s(i)] = 1, so P_a P_b = P_{table[a, b]}."""
    mats = np.zeros((6, 3, 3))
    for k, s in enumerate(s3_elements()):
        mats[k, np.arange(3), s] = 1.0
    return mats


def group_quadruples(table: np.ndarray | None = None) -> np.ndarray:
    """(Q, 4) rows (a, b, c, d): two different ordered pairs with a.b = c.d, each set once (90 for S3)."""
    t = s3_table() if table is None else np.asarray(table)
    n = len(t)
    pairs = [(a, b) for a in range(n) for b in range(n)]
    rows = [(a, b, c, d) for i, (a, b) in enumerate(pairs) for (c, d) in pairs[i + 1:] if t[a, b] == t[c, d]]
    return np.array(rows, dtype=np.int64)


def group_rqi(embedding: np.ndarray | torch.Tensor, *, tol: float = 0.5) -> float:
    """Fraction of the S3 quadruples a.b = c.d realized by 3x3 matrices (``(6, 9)`` or ``(6, 3, 3)``).

    The matrices are divided by their common RMS entry first (scale-free); a quadruple counts when
    the mean squared entry of Ẽ_a Ẽ_b - Ẽ_c Ẽ_d is below ``tol`` (as in the notebook). A zero or non-finite embedding is an error.
    """
    e = torch.as_tensor(np.asarray(embedding, dtype=np.float64)).reshape(6, 3, 3)
    if not bool(torch.isfinite(e).all()):
        raise ValueError("group_rqi: the embedding holds NaN or inf")
    rms = float(e.pow(2).mean().sqrt())
    if rms == 0:
        raise ValueError("group_rqi: the embedding is all zeros (RQI undefined)")
    return float(_rqi_batched(e[None] / rms, torch.as_tensor(group_quadruples()), tol)[0])


def _rqi_batched(e: torch.Tensor, quads: torch.Tensor, tol: float) -> torch.Tensor:
    """(R, 6, 3, 3) RMS-normalized matrices -> (R,) RQI."""
    prod_ab = e[:, quads[:, 0]] @ e[:, quads[:, 1]]
    prod_cd = e[:, quads[:, 2]] @ e[:, quads[:, 3]]
    dist = (prod_ab - prod_cd).pow(2).mean((2, 3))
    return (dist < tol).to(torch.float64).mean(1)


@dataclass(frozen=True)
class S3Run:
    """Per-run settings of a batched S3 sweep (everything else from the base config)."""

    seed: int = 0
    eta_dec: float = 1e-4
    weight_decay_dec: float = 0.0


def _init_run(cfg: S3Config, seed: int) -> dict[str, Any]:
    """Draw templates, split, decoder and embedding in the notebook's order: ``np.random.seed``,
    ``torch.manual_seed``, templates ~ N(0, 1) (numpy), ``np.random.choice(36, train_num)``, the
    unused encoder NET(1 -> 9), the decoder NET(9 -> 30), then ``(torch.rand(6, 9) - 0.5) * scale``."""
    from grokking_theory._init import _mlp

    rs = np.random.RandomState(seed)
    gen = torch.Generator().manual_seed(seed)
    templates = torch.tensor(rs.normal(0, 1, size=(6, cfg.output_dim)), dtype=torch.float32)
    train = rs.choice(36, cfg.train_num, replace=False)
    _mlp(1, cfg.width, 9, gen)  # the notebook's autoencoder builds an encoder it never uses
    layers = _mlp(9, cfg.width, cfg.output_dim, gen)
    reprs = (torch.rand(6, 9, generator=gen) - 0.5) * cfg.init_scale_reprs
    return {"templates": templates, "train": np.asarray(train, dtype=np.int64), "reprs": reprs, "layers": layers}


def train_s3(
    cfg: S3Config,
    runs: Sequence[S3Run] | None = None,
    *,
    device: str = "cpu",
    early_stop: bool = False,
    stop_on_rqi: bool = False,
    curve_every: int = 10,
    check_every: int = 100,
    progress: bool = False,
    on_finish: Callable[[int, dict], None] | None = None,
) -> dict[str, Any]:
    """Train S3 runs together (default: one run, ``cfg``'s seed / lr / wd); full batch, per-run AdamW.

    Returns per-run first steps at which train acc >= 0.9, test acc >= 0.9 and group RQI > 0.95
    (-1 = not within ``cfg.steps``), final values, and curves every ``curve_every`` steps. With
    ``early_stop`` a run leaves the batch once train and test accuracy (and RQI if ``stop_on_rqi``)
    have crossed their thresholds; its curves then keep their last value. ``on_finish(i, result)`` is
    called for each run once it is finished.
    """
    from grokking_theory._io import progress_bar

    runs = list(runs) if runs is not None else [S3Run(cfg.seed, cfg.eta_dec, cfg.weight_decay_dec)]
    if not runs:
        raise ValueError("train_s3: no runs given")
    for r in runs:
        if not r.eta_dec > 0 or r.weight_decay_dec < 0:
            raise ValueError(f"train_s3: decoder lr must be > 0 and weight decay >= 0, got {r}")
    R, dev = len(runs), torch.device(device)
    table = torch.as_tensor(s3_table().reshape(-1), device=dev)  # label of pair index 6a + b
    a_idx = torch.arange(36, device=dev) // 6
    b_idx = torch.arange(36, device=dev) % 6
    inits = [_init_run(cfg, r.seed) for r in runs]
    train_mask = torch.zeros(R, 36, device=dev)
    for i, ini in enumerate(inits):
        train_mask[i, torch.as_tensor(ini["train"])] = 1.0
    test_mask = 1.0 - train_mask
    n_tr, n_te = float(cfg.train_num), float(36 - cfg.train_num)
    tpl = torch.stack([ini["templates"] for ini in inits]).to(dev)  # (R, 6, o)
    targets = tpl[:, table]  # (R, 36, o)
    params = [torch.stack([ini["reprs"] for ini in inits]).to(dev)]
    for k in range(3):
        params.append(torch.stack([ini["layers"][k][0].T.contiguous() for ini in inits]).to(dev))
        params.append(torch.stack([ini["layers"][k][1][None] for ini in inits]).to(dev))

    def col(v: list[float]) -> torch.Tensor:
        return torch.tensor(v, dtype=torch.float64, device=dev).view(-1, 1, 1)

    lr = [col([cfg.eta_reprs] * R)] + [col([r.eta_dec for r in runs])] * 6
    wd = [col([cfg.weight_decay_reprs] * R)] + [col([r.weight_decay_dec for r in runs])] * 6
    decay = [(1 - a * b).float() for a, b in zip(lr, wd)]
    m1 = [torch.zeros_like(q) for q in params]
    m2 = [torch.zeros_like(q) for q in params]
    quads = torch.as_tensor(group_quadruples(), device=dev)

    def forward(ps: list[torch.Tensor]) -> torch.Tensor:
        e = ps[0].view(-1, 6, 3, 3)
        x = (e[:, a_idx] @ e[:, b_idx]).flatten(2)  # (r, 36, 9)
        h = torch.tanh(torch.baddbmm(ps[2], x, ps[1]))
        h = torch.tanh(torch.baddbmm(ps[4], h, ps[3]))
        return torch.baddbmm(ps[6], h, ps[5])

    alive = torch.arange(R, device=dev)
    first = {k: torch.full((R,), -1, dtype=torch.long, device=dev) for k in ("train", "test", "rqi")}
    final = {k: torch.zeros(R, dtype=torch.float64, device=dev) for k in ("train", "test", "rqi")}
    n_pts = cfg.steps // curve_every + 1
    curves = {k: np.full((R, n_pts), np.nan) for k in ("train_acc", "test_acc", "rqi")}
    stopped = torch.full((R,), cfg.steps, dtype=torch.long, device=dev)
    diverged = torch.zeros(R, dtype=torch.bool, device=dev)
    final_reprs = params[0].detach().clone()
    thr = {"train": cfg.threshold_train_acc, "test": cfg.threshold_test_acc, "rqi": cfg.threshold_rqi}
    l_tr, l_te, l_tg, l_tpl = train_mask, test_mask, targets, tpl
    reported: set[int] = set()

    def report(idx: Sequence[int]) -> None:
        for i in idx:
            if on_finish is not None and i not in reported:
                reported.add(i)
                on_finish(i, {"step_train": int(first["train"][i]), "step_test": int(first["test"][i]),
                              "step_rqi": int(first["rqi"][i]), "final_train_acc": float(final["train"][i]),
                              "final_test_acc": float(final["test"][i]), "final_rqi": float(final["rqi"][i]),
                              "stopped_at": int(stopped[i]), "diverged": bool(diverged[i])})

    bar = progress_bar(enabled=progress, total=cfg.steps, desc=f"S3 x{R}")
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for t in range(cfg.steps + 1):
        last = t == cfg.steps
        for q in params:
            q.requires_grad_(not last)
        out = forward(params)
        with torch.no_grad():
            d = (out.unsqueeze(2) - l_tpl.unsqueeze(1)).pow(2).sum(3)  # (r, 36, 6)
            correct = (d.argmin(2) == table).to(torch.float64)
            acc = {"train": (correct * l_tr).sum(1) / n_tr, "test": (correct * l_te).sum(1) / n_te}
            e = params[0].detach().view(-1, 6, 3, 3)
            rms = e.pow(2).mean((1, 2, 3), keepdim=True).sqrt().clamp_min(1e-30)
            acc["rqi"] = _rqi_batched(e / rms, quads, cfg.rqi_tol)
            if t >= 1:  # the outputs after update t - 1
                for k in first:
                    sub = first[k][alive]
                    hit = (sub < 0) & (acc[k] >= thr[k] if k != "rqi" else acc[k] > thr[k])
                    first[k][alive] = torch.where(hit, t - 1, sub)
                    final[k][alive] = acc[k]
                final_reprs[alive] = params[0].detach()
                if (t - 1) % curve_every == 0 or last:
                    j = min((t - 1) // curve_every if not last else n_pts - 1, n_pts - 1)
                    for k, name in (("train", "train_acc"), ("test", "test_acc"), ("rqi", "rqi")):
                        curves[name][alive.cpu().numpy(), j] = acc[k].cpu().numpy()
        if last:
            break
        per_run = ((out - l_tg).pow(2).mean(2) * l_tr).sum(1) / n_tr
        if cfg.l1 > 0:
            per_run = per_run + cfg.l1 * params[0].abs().mean((1, 2))
        grads = torch.autograd.grad(per_run.sum(), params)
        with torch.no_grad():
            bc1, bc2 = 1 - beta1 ** (t + 1), 1 - beta2 ** (t + 1)
            for i, (q, g) in enumerate(zip(params, grads)):
                q.mul_(decay[i])
                m1[i].lerp_(g, 1 - beta1)
                m2[i].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                q.sub_((lr[i] / bc1).float() * m1[i] / (m2[i].sqrt() / math.sqrt(bc2)).add_(eps))
        bar.update(1)
        if (t + 1) % check_every == 0:
            with torch.no_grad():
                finite = torch.stack([torch.isfinite(q).flatten(1).all(1) for q in params]).all(0)
                done = (first["train"][alive] >= 0) & (first["test"][alive] >= 0)
                if stop_on_rqi:
                    done &= first["rqi"][alive] >= 0
                leave = ~finite | (done if early_stop else torch.zeros_like(done))
                if bool(leave.any()):
                    gone = alive[leave]
                    stopped[gone] = t + 1
                    diverged[alive[~finite]] = True
                    report(gone.tolist())
                    keep = (~leave).nonzero().flatten()
                    alive = alive[keep]
                    if len(alive) == 0:
                        break
                    params = [q.detach()[keep].clone() for q in params]
                    m1 = [m[keep].clone() for m in m1]
                    m2 = [v[keep].clone() for v in m2]
                    lr = [x[keep] for x in lr]
                    decay = [x[keep] for x in decay]
                    l_tr, l_te, l_tg, l_tpl = (x[keep] for x in (l_tr, l_te, l_tg, l_tpl))
    bar.close()
    report(alive.tolist())
    for name in curves:  # a run that left early keeps its last value
        c = curves[name]
        for i in range(R):
            ok = np.flatnonzero(np.isfinite(c[i]))
            if len(ok):
                c[i, ok[-1] + 1:] = c[i, ok[-1]]
    return {
        "runs": [r.__dict__ for r in runs],
        "step_train": first["train"].cpu().numpy(), "step_test": first["test"].cpu().numpy(),
        "step_rqi": first["rqi"].cpu().numpy(),
        "final_train_acc": final["train"].cpu().numpy(), "final_test_acc": final["test"].cpu().numpy(),
        "final_rqi": final["rqi"].cpu().numpy(), "stopped_at": stopped.cpu().numpy(),
        "diverged": diverged.cpu().numpy(), "final_reprs": final_reprs.cpu().numpy().reshape(R, 6, 3, 3),
        "train_ids": [ini["train"] for ini in inits],
        "curve_steps": np.minimum(np.arange(n_pts) * curve_every, cfg.steps - 1), "curves": curves,
    }


def load_perm_h5(path: Any) -> dict[str, Any]:
    """``data_perm_r.h5``: decoder lr (16) x decoder wd (11) first-crossing steps (-1 = not within 10^5)."""
    from pathlib import Path

    from grokking_theory._authors import open_h5
    from grokking_theory._phases import AUTHORS_BUDGET, from_budget_encoding

    path = Path(path)
    with open_h5(path) as f:
        need = {"learning_rate", "weight_decay", "train_steps", "test_steps"}
        if not need <= set(f.keys()):
            raise ValueError(f"{path}: expected datasets {sorted(need)} (data_perm_r.h5), found {sorted(f.keys())}")
        lrs = np.asarray(f["learning_rate"][()], dtype=np.float64)
        wds = np.asarray(f["weight_decay"][()], dtype=np.float64)
        tr, te = np.asarray(f["train_steps"][()]), np.asarray(f["test_steps"][()])
    if tr.shape != (len(lrs), len(wds)) or te.shape != tr.shape:
        raise ValueError(f"{path}: train/test steps have shape {tr.shape}, expected {(len(lrs), len(wds))}")
    return {"eta_dec": lrs.tolist(), "weight_decay_dec": wds.tolist(),
            "train": from_budget_encoding(tr, AUTHORS_BUDGET), "test": from_budget_encoding(te, AUTHORS_BUDGET)}


def plot_s3(result: dict[str, Any], labels: Sequence[str], path: Any, *, title: str = "") -> Any:
    """Train (dashed) and test (solid) accuracy and group RQI (dotted) against steps, one colour per run."""
    from grokking_theory._plot import _plt, save_figure

    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    steps = np.asarray(result["curve_steps"]) + 1
    for i, lab in enumerate(labels):
        col = f"C{i % 10}"
        ax.plot(steps, result["curves"]["train_acc"][i], ls="--", color=col)
        ax.plot(steps, result["curves"]["test_acc"][i], color=col, label=lab)
        ax2.plot(steps, result["curves"]["rqi"][i], color=col, label=lab)
    for a, name in ((ax, "accuracy (dashed train, solid test)"), (ax2, "group RQI")):
        a.set_xscale("log")
        a.set_xlabel("step")
        a.set_ylabel(name)
        a.set_ylim(-0.02, 1.02)
        a.legend(fontsize=7)
    fig.suptitle(title or "S3 matrix-product toy", fontsize=10)
    return save_figure(fig, path)
