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
    """One digits run. ``alpha`` multiplies every initial weight and bias."""

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

    def __post_init__(self) -> None:
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
                 progress: bool = False) -> dict[str, Any]:
    """Train one MLP; ``data = (x_train, y_train, x_test, y_test)`` overrides the digits split."""
    cfg = cfg or DigitsConfig()
    xtr, ytr, xte, yte = data if data is not None else load_digits_split(cfg.n_train, cfg.seed)
    xtr, xte = (torch.as_tensor(np.asarray(v), dtype=torch.float32, device=device) for v in (xtr, xte))
    ytr, yte = (torch.as_tensor(np.asarray(v), dtype=torch.long, device=device) for v in (ytr, yte))
    n_classes = int(max(ytr.max().item(), yte.max().item() if len(yte) else 0)) + 1
    torch.manual_seed(cfg.seed)
    net = make_mlp(xtr.shape[1], n_classes, cfg).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
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
        if step == cfg.steps:
            break
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
