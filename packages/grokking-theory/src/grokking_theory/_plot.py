"""Figures (matplotlib imported lazily, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from grokking_theory._phases import PHASES, PhaseDiagram

COLORS = ("#2ca02c", "#1f77b4", "#d62728", "#7f7f7f")  # comprehension, grokking, memorization, confusion
LABELS = {
    "eta_dec": "decoder learning rate",
    "eta_reprs": "representation learning rate",
    "weight_decay_dec": "decoder weight decay",
    "weight_decay_reprs": "representation weight decay",
    "batch_size": "mini-batch size",
    "init_scale_nn": "decoder init scale",
    "init_scale_reprs": "representation init scale",
    "weight_decay": "weight decay",
    "last_lr": "last-layer learning rate",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, **tight: Any) -> Path:
    """Lay out, write as PNG, close; every figure of the package ends here."""
    plt = _plt()
    fig.tight_layout(**tight)
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _tick(v: float) -> str:
    return f"{v:.0e}" if (abs(v) < 1e-2 and v != 0) else f"{v:g}"


def plot_phase_diagram(diagram: PhaseDiagram, path: str | Path, *, title: str = "") -> Path:
    """One panel per seed plus, with several seeds, the majority phase with its frequency."""
    plt = _plt()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    ph = diagram.phases
    panels = [(f"seed {s}", ph[i], None) for i, s in enumerate(diagram.seeds)]
    if len(diagram.seeds) > 1:
        counts = np.stack([(ph == k).sum(0) for k in range(4)])
        panels.append(("majority over seeds", counts.argmax(0), counts.max(0) / len(diagram.seeds)))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels) + 1, 3.8), squeeze=False)
    cmap = ListedColormap(COLORS)
    for ax, (name, grid, freq) in zip(axes[0], panels):
        ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=3.5, origin="lower", aspect="auto")
        if freq is not None:
            for (i, j), f in np.ndenumerate(freq):
                if f < 1:
                    ax.text(j, i, f"{f:.1f}"[1:], ha="center", va="center", fontsize=6, color="white")
        xs, ys = diagram.x_values, diagram.y_values
        xt = np.linspace(0, len(xs) - 1, min(len(xs), 5)).round().astype(int)
        yt = np.linspace(0, len(ys) - 1, min(len(ys), 6)).round().astype(int)
        ax.set_xticks(xt, [_tick(xs[k]) for k in xt], fontsize=7)
        ax.set_yticks(yt, [_tick(ys[k]) for k in yt], fontsize=7)
        ax.set_xlabel(LABELS.get(diagram.x_name, diagram.x_name))
        ax.set_ylabel(LABELS.get(diagram.y_name, diagram.y_name))
        ax.set_title(name, fontsize=9)
    fig.legend(
        handles=[Patch(color=c, label=n) for c, n in zip(COLORS, PHASES)],
        loc="lower center", ncol=4, fontsize=8, frameon=False,
    )
    fig.suptitle(title or f"{diagram.config.loss.upper()} phase diagram, budget {diagram.budget} steps", fontsize=10)
    return save_figure(fig, path, rect=(0, 0.07, 1, 0.95))


def plot_run(metrics: dict, path: str | Path, *, title: str = "") -> Path:
    """Train/test accuracy and RQI against steps (log x), with the threshold crossings marked."""
    plt = _plt()
    steps = np.arange(1, len(metrics["train_acc"]) + 1)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(steps, metrics["train_acc"], label="train acc", color="C0")
    ax.plot(steps, metrics["test_acc"], label="test acc", color="C3")
    ax.plot(steps, metrics["rqi"], label="RQI", color="C2")
    for key, color in (("step_train_acc", "C0"), ("step_test_acc", "C3"), ("step_rqi", "C2")):
        if metrics.get(key) is not None:
            ax.axvline(metrics[key] + 1, color=color, ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylim(-0.02, 1.05)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def plot_critical(results: list[dict], path: str | Path) -> Path:
    """P(training set fixes the linear structure) against the training fraction, per p."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for r in results:
        n = r["n_samples"]
        pf = {int(k): float(v) for k, v in r["prob_fixed"].items()}
        ks = sorted(pf)
        ax.plot([k / n for k in ks], [pf[k] for k in ks], label=f"p={r['p']}: r_c={r['r_c']:.3f}")
    ax.axhline(0.5, color="k", lw=0.5, ls=":")
    ax.set_xlabel("training fraction")
    ax.set_ylabel("P(linear structure fixed)")
    ax.legend(fontsize=7)
    return save_figure(fig, path)
