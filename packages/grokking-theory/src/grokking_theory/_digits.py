"""Grokking on non-algorithmic data (Omnigrok / App. J recipe) with scikit-learn's bundled digits.

An MLP whose initial weights are multiplied by ``alpha`` (large init), trained with AdamW and
weight decay on a small training subset, MSE on one-hot targets (or CE), full batch. The same run
with ``alpha = 1`` (standard init) is the baseline: a grokking delay shows up as a larger gap
between the steps at which train and test accuracy reach the threshold.
``load_digits`` ships inside the scikit-learn wheel (offline; scikit-learn is a runtime dependency).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from grokking_theory._config import ConfigMixin


@dataclass(frozen=True)
class DigitsConfig(ConfigMixin):
    """One digits run. ``alpha`` multiplies every initial weight and bias; ``threshold`` is the
    accuracy whose first crossing is reported (App. J uses 0.6 on test); ``last_lr`` is the last
    layer's AdamW learning rate (None: ``lr``, as every other layer)."""

    n_train: int = 300
    width: int = 200
    depth: int = 3
    alpha: float = 8.0
    lr: float = 1e-3
    weight_decay: float = 1.0
    loss: str = "mse"
    steps: int = 4000
    eval_every: int = 20
    seed: int = 0
    threshold: float = 0.9
    last_lr: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must lie in (0, 1], got {self.threshold}")
        if self.last_lr is not None and not self.last_lr > 0:
            raise ValueError(f"last_lr must be > 0 (or None: the same as lr), got {self.last_lr}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(f"lr must be > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")
        if self.n_train < 10:
            raise ValueError(f"n_train must be >= 10, got {self.n_train}")
        if self.loss not in ("mse", "ce"):
            raise ValueError(f"loss must be mse or ce, got {self.loss!r}")
        if self.alpha <= 0 or self.depth < 1 or self.steps < 1 or self.eval_every < 1:
            raise ValueError("alpha must be > 0; depth, steps and eval_every >= 1")



def load_digits_split(n_train: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``load_digits`` scaled to [0, 1]; a seeded subset of ``n_train`` for training, the rest as test."""
    from sklearn.datasets import load_digits  # lazy: scikit-learn is only needed here
    d = load_digits()
    x, y = d.data.astype(np.float32) / 16.0, d.target.astype(np.int64)
    if n_train >= len(x):
        raise ValueError(f"n_train must be < {len(x)}, got {n_train}")
    perm = np.random.default_rng(seed).permutation(len(x))
    return x[perm[:n_train]], y[perm[:n_train]], x[perm[n_train:]], y[perm[n_train:]]


def make_mlp(d_in: int, n_classes: int, cfg: DigitsConfig) -> nn.Sequential:
    """ReLU MLP (``depth`` linear layers), PyTorch default init times ``alpha``."""
    dims = [d_in] + [cfg.width] * (cfg.depth - 1) + [n_classes]
    layers: list[nn.Module] = []
    for i in range(cfg.depth):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < cfg.depth - 1:
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for prm in net.parameters():
            prm.mul_(cfg.alpha)
    return net


def train_digits(cfg: DigitsConfig | None = None, *, data: tuple | None = None, device: str = "cpu",
                 progress: bool = False, stop_when_reached: bool = False) -> dict[str, Any]:
    """Train one MLP; ``data = (x_train, y_train, x_test, y_test)`` overrides the digits split.
    ``stop_when_reached`` ends the run once train and test accuracy have crossed ``threshold``."""
    cfg = cfg or DigitsConfig()
    xtr, ytr, xte, yte = data if data is not None else load_digits_split(cfg.n_train, cfg.seed)
    xtr, xte = (torch.as_tensor(np.asarray(v), dtype=torch.float32, device=device) for v in (xtr, xte))
    ytr, yte = (torch.as_tensor(np.asarray(v), dtype=torch.long, device=device) for v in (ytr, yte))
    n_classes = int(max(ytr.max().item(), yte.max().item() if len(yte) else 0)) + 1
    torch.manual_seed(cfg.seed)
    net = make_mlp(xtr.shape[1], n_classes, cfg).to(device)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    last = list(linears[-1].parameters())
    rest = [q for m in linears[:-1] for q in m.parameters()]
    groups = [{"params": rest, "lr": cfg.lr}] if rest else []
    groups.append({"params": last, "lr": cfg.lr if cfg.last_lr is None else cfg.last_lr})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    onehot = nn.functional.one_hot(ytr, n_classes).float()
    curves: dict[str, list[float]] = {"step": [], "train_acc": [], "test_acc": [], "train_loss": [],
                                      "weight_norm": []}
    step_train = step_test = None
    from grokking_theory._io import progress_bar

    it = progress_bar(range(cfg.steps + 1), enabled=progress, desc=f"digits alpha={cfg.alpha:g}")
    for step in it:
        out = net(xtr)
        loss = (nn.functional.mse_loss(out, onehot) if cfg.loss == "mse"
                else nn.functional.cross_entropy(out, ytr))
        if step % cfg.eval_every == 0 or step == cfg.steps:
            with torch.no_grad():
                tr = (out.argmax(-1) == ytr).float().mean().item()
                te = (net(xte).argmax(-1) == yte).float().mean().item() if len(yte) else float("nan")
                wn = torch.sqrt(sum((q**2).sum() for q in net.parameters())).item()
            for k, v in (("step", step), ("train_acc", tr), ("test_acc", te), ("train_loss", loss.item()),
                         ("weight_norm", wn)):
                curves[k].append(v)
            if step_train is None and tr >= cfg.threshold:
                step_train = step
            if step_test is None and te >= cfg.threshold:
                step_test = step
        if step == cfg.steps or (stop_when_reached and step_train is not None and step_test is not None):
            break
        if not torch.isfinite(loss):
            raise FloatingPointError(f"digits: the loss became non-finite at step {step}; lower the learning rates")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    metrics = {
        "step_train_acc": step_train,
        "step_test_acc": step_test,
        "delay": None if step_train is None or step_test is None else step_test - step_train,
        "final_train_acc": curves["train_acc"][-1],
        "final_test_acc": curves["test_acc"][-1],
        "max_test_acc": float(np.nanmax(curves["test_acc"])),
        "weight_norm_init": curves["weight_norm"][0],
        "weight_norm_final": curves["weight_norm"][-1],
        "n_train": int(len(ytr)),
        "steps_run": int(curves["step"][-1]),
        "n_test": int(len(yte)),
    }
    return {"config": cfg.to_dict(), "metrics": metrics, "curves": curves, "model": net}


def digits_grokking(cfg: DigitsConfig | None = None, *, alphas: tuple[float, ...] | None = None,
                    data: tuple | None = None, device: str = "cpu", progress: bool = False) -> dict[str, Any]:
    """Large init (``cfg.alpha``) against standard init (alpha 1), same data, seed and optimiser."""
    cfg = cfg or DigitsConfig()
    alphas = alphas or (cfg.alpha, 1.0)
    if data is None:
        data = load_digits_split(cfg.n_train, cfg.seed)
    runs = {f"alpha={a:g}": train_digits(cfg.replace(alpha=float(a)), data=data, device=device,
                                         progress=progress) for a in alphas}
    return {"config": cfg.to_dict(), "runs": runs,
            "metrics": {name: r["metrics"] for name, r in runs.items()}}


def plot_digits(result: dict[str, Any], path: Any) -> Any:
    """Train (dashed) and test (solid) accuracy per init scale, and the weight norm."""
    from grokking_theory._plot import _plt, save_figure

    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for i, (name, r) in enumerate(result["runs"].items()):
        c, col = r["curves"], f"C{i}"
        ax.plot(c["step"], c["train_acc"], ls="--", color=col, label=f"{name} train")
        ax.plot(c["step"], c["test_acc"], color=col, label=f"{name} test")
        ax2.plot(c["step"], c["weight_norm"], color=col, label=name)
    cfg = result["config"]
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    ax.set_title(f"digits, {cfg['n_train']} train, {cfg['loss'].upper()}, wd {cfg['weight_decay']:g}", fontsize=9)
    ax2.set_xscale("symlog", linthresh=10)
    ax2.set_yscale("log")
    ax2.set_xlabel("step")
    ax2.set_ylabel("weight norm")
    ax2.legend(fontsize=8)
    return save_figure(fig, path)


#: App. J axes as this package runs them: AdamW weight decay x the last layer's learning rate
DIGITS_WD = [0.0, 0.01, 0.1, 1.0, 3.0]
DIGITS_LAST_LR = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]


def digits_phase_diagram(cfg: DigitsConfig, *, weight_decays: list[float], last_lrs: list[float],
                         lag: float, out: Any = None, resume: bool = False, device: str = "cpu",
                         progress: bool = False) -> dict[str, Any]:
    """App. J's phase diagram on digits: weight decay (x) x last-layer lr (y), one run per cell,
    phases by the Table 1 rule with accuracy threshold ``cfg.threshold`` (0.6 in App. J).

    With ``out`` every finished cell is written atomically to ``out/cells/<key>.json`` (with its
    config hash) and ``resume`` skips cells already there with the same hash. Returns step grids
    (y, x) with -1 = not reached within ``cfg.steps``.
    """
    from pathlib import Path

    from grokking_theory._phases import PHASES, classify_phase
    from grokking_theory._sweep import Cell, SweepStore, config_hash

    if not weight_decays or not last_lrs:
        raise ValueError("digits phase diagram: empty axis")
    data = load_digits_split(cfg.n_train, cfg.seed)
    cells = []
    for yi, lr in enumerate(last_lrs):
        for xi, wd in enumerate(weight_decays):
            run_cfg = cfg.replace(weight_decay=float(wd), last_lr=float(lr))
            cells.append((Cell(f"y{yi:02d}_x{xi:02d}", config_hash(run_cfg.to_dict()), len(cells),
                               {"weight_decay": float(wd), "last_lr": float(lr)}), run_cfg))
    meta = {"kind": "digits-phase-diagram", "lag": lag,
            "grid": {"weight_decay": [float(v) for v in weight_decays], "last_lr": [float(v) for v in last_lrs],
                     "config": cfg.to_dict()}}
    store = SweepStore(Path(out), meta) if out is not None else None
    if store is not None:
        store.start()
    done = store.done([c for c, _ in cells]) if (store is not None and resume) else {}
    results = {}
    for cell, run_cfg in cells:
        if cell.key in done:
            results[cell.key] = done[cell.key]
            continue
        m = train_digits(run_cfg, data=data, device=device, progress=progress, stop_when_reached=True)["metrics"]
        rec = {"step_train": -1 if m["step_train_acc"] is None else m["step_train_acc"],
               "step_test": -1 if m["step_test_acc"] is None else m["step_test_acc"],
               "final_train_acc": m["final_train_acc"], "final_test_acc": m["final_test_acc"],
               "max_test_acc": m["max_test_acc"], "steps_run": m["steps_run"]}
        if store is not None:
            store.write(cell, rec)
        results[cell.key] = rec
    shape = (len(last_lrs), len(weight_decays))
    tr = np.array([results[c.key]["step_train"] for c, _ in cells]).reshape(shape)
    te = np.array([results[c.key]["step_test"] for c, _ in cells]).reshape(shape)
    ph = classify_phase(tr, te, lag=lag)
    return {"meta": meta, "weight_decay": [float(v) for v in weight_decays], "last_lr": [float(v) for v in last_lrs],
            "step_train": tr, "step_test": te, "phases": ph,
            "max_test_acc": np.array([results[c.key]["max_test_acc"] for c, _ in cells]).reshape(shape),
            "phase_counts": {name: int((ph == k).sum()) for k, name in enumerate(PHASES)},
            "resumed": len(done)}
