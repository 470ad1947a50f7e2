"""Modular addition (a + b) mod p with a small transformer, set up as the paper ran it.

The paper (Sec. 4.2, the authors' transformer scripts): sequence ``[a, b]`` with **no operation
token** (``op_token=True`` appends an ``=`` token instead), **p = 59**, a decoder-only transformer,
and **separate AdamW optimizers** for the token embedding (the "representation", lr ``embed_lr``,
weight decay ``embed_wd``) and everything else (the "decoder": position embedding, blocks,
unembedding; ``decoder_lr``, ``decoder_wd``), full batch, cross-entropy, optional dropout.
Pre-norm causal blocks written with plain torch modules; prediction from the last position.

Measured over training: train/test accuracy, the first steps at which they reach the threshold,
and the token embedding's effective dimension, both as exp(entropy) of the normalized PCA spectrum
(the paper's definition) and as the participation ratio. At the end: PCA of the embedding,
variance in the top 2 PCs and the ring score (is the angular order in the top-2 plane that of
k·a mod p for some k?).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from grokking_theory._config import ConfigMixin


@dataclass(frozen=True)
class ModAddConfig(ConfigMixin):
    """One modular-addition run. Defaults are the paper's setup at a width that runs on a GPU in
    minutes (p = 59, no op token, 2 blocks, separate embedding / decoder optimizers);
    :meth:`quick` is a CPU-sized one."""

    p: int = 59
    train_fraction: float = 0.8
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_mlp: int = 512
    dropout: float = 0.0
    op_token: bool = False
    embed_lr: float = 1e-3
    decoder_lr: float = 1e-3
    embed_wd: float = 0.0
    decoder_wd: float = 1.0
    beta2: float = 0.98
    steps: int = 10000
    eval_every: int = 50
    seed: int = 0
    threshold: float = 0.9

    def __post_init__(self) -> None:
        if self.p < 3:
            raise ValueError(f"p must be >= 3, got {self.p}")
        if not 0.0 < self.train_fraction < 1.0:
            raise ValueError(f"train_fraction must be in (0, 1), got {self.train_fraction}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.steps < 1 or self.eval_every < 1 or self.n_layers < 1:
            raise ValueError("steps, eval_every and n_layers must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("embed_lr", "decoder_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("embed_wd", "decoder_wd"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def quick(cls) -> ModAddConfig:
        """CPU-sized: p = 31, half the pairs, one block of width 64, 3000 steps (under a minute on
        one thread). Unlike the paper it also decays the embedding (wd 1; decoder wd 3): with
        decoder-only decay this small model had not generalized after 3000 steps (test acc 0.16)."""
        return cls(p=31, train_fraction=0.5, d_model=64, n_layers=1, n_heads=4, d_mlp=128,
                   embed_lr=3e-3, decoder_lr=3e-3, embed_wd=1.0, decoder_wd=3.0, steps=3000, eval_every=20)

    @property
    def seq_len(self) -> int:
        return 3 if self.op_token else 2


class _Dropout(nn.Module):
    """Dropout whose rate is a buffer, so a vmapped batch of runs can each have their own rate."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.register_buffer("rate", torch.tensor(float(rate)))
        self.active = rate > 0  # a batch of runs sets this when any run uses dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.active:
            return x
        keep = (torch.rand_like(x) >= self.rate).to(x.dtype)
        return x * keep / (1 - self.rate)


class _Block(nn.Module):
    def __init__(self, d: int, heads: int, d_mlp: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, d_mlp), nn.ReLU(), nn.Linear(d_mlp, d))
        self.drop1, self.drop2 = _Dropout(dropout), _Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.heads)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        x = x + self.drop1(self.proj((att @ v).transpose(1, 2).reshape(n, t, d)))
        return x + self.drop2(self.mlp(self.ln2(x)))


class ModAddTransformer(nn.Module):
    """Token + position embedding, ``n_layers`` causal pre-norm blocks, unembedding from the last token."""

    def __init__(self, cfg: ModAddConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(cfg.p + int(cfg.op_token), cfg.d_model)
        self.pos = nn.Parameter(torch.randn(cfg.seq_len, cfg.d_model) * 0.02)
        self.blocks = nn.ModuleList(_Block(cfg.d_model, cfg.n_heads, cfg.d_mlp, cfg.dropout)
                                    for _ in range(cfg.n_layers))
        self.ln = nn.LayerNorm(cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, cfg.p)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]
        for blk in self.blocks:
            x = blk(x)
        return self.unembed(self.ln(x[:, -1]))


def is_embedding_param(name: str) -> bool:
    """The representation is the token embedding; every other parameter belongs to the decoder."""
    return name == "embed.weight"


def modadd_data(p: int, train_fraction: float, seed: int, *, op_token: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All p² sequences ``[a, b]`` (``[a, b, =]`` with ``op_token``), labels, and a seeded train mask."""
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    cols = [a.flatten(), b.flatten()] + ([torch.full((p * p,), p)] if op_token else [])
    x = torch.stack(cols, dim=1)
    y = (x[:, 0] + x[:, 1]) % p
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(p * p, generator=g)
    mask = torch.zeros(p * p, dtype=torch.bool)
    mask[perm[: max(1, round(train_fraction * p * p))]] = True
    return x, y, mask


def entropy_dim(points: np.ndarray) -> float:
    """exp(entropy) of the normalized PCA spectrum (covariance eigenvalues / their sum): the
    paper's effective dimension. d equal eigenvalues give d; one dominant direction gives 1."""
    pts = np.asarray(points, dtype=np.float64)
    lam = np.clip(np.linalg.eigvalsh(np.cov(pts, rowvar=False)), 0.0, None)
    if not lam.sum() > 0:
        raise ValueError("the points have zero variance: the effective dimension is undefined")
    q = lam / lam.sum()
    q = q[q > 0]
    return float(np.exp(-(q * np.log(q)).sum()))


def participation_ratio(points: np.ndarray) -> float:
    """(Σλ)² / Σλ² of the covariance eigenvalues of ``points`` (rows = samples)."""
    pts = np.asarray(points, dtype=np.float64)
    lam = np.clip(np.linalg.eigvalsh(np.cov(pts, rowvar=False)), 0.0, None)
    return float(lam.sum() ** 2 / (lam**2).sum()) if lam.sum() > 0 else 0.0


def embedding_pca(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(explained-variance fractions, coordinates in the principal axes)."""
    pts = np.asarray(points, dtype=np.float64)
    c = pts - pts.mean(0)
    _, s, vt = np.linalg.svd(c, full_matrices=False)
    var = s**2
    return var / var.sum(), c @ vt.T


def _best_ring(u: np.ndarray) -> tuple[int, float]:
    p = len(u)
    a = np.arange(p)
    phases = np.exp(-2j * np.pi * np.outer(np.arange(1, p), a) / p)  # (p-1, p)
    scores = np.stack([np.abs(phases @ u), np.abs(phases @ np.conj(u))]) / p
    k = int(np.argmax(scores.max(0)))
    return k + 1, float(scores.max())


def ring_score(xy: np.ndarray, *, null_perms: int = 0, seed: int = 0) -> dict[str, float]:
    """How well 2-D points ``xy[a]`` (a = 0..p-1) lie on a ring ordered by k·a mod p.

    For each k in 1..p-1 and both orientations, the circularity is
    |mean_a exp(i(θ_a − 2π k a / p))| with θ_a the angle of the centred point: 1 for a perfect
    ordered ring (any rotation/reflection), ~1/√p for random angles. Returns the best k, its
    circularity and the coefficient of variation of the radii (0 for a perfect circle). With
    ``null_perms > 0`` also the mean and 95th percentile of the best circularity after randomly
    relabelling the points (the chance level for this p; seeded).
    """
    xy = np.asarray(xy, dtype=np.float64)
    p = len(xy)
    z = (xy[:, 0] - xy[:, 0].mean()) + 1j * (xy[:, 1] - xy[:, 1].mean())
    r = np.abs(z)
    u = z / np.where(r > 0, r, 1.0)
    best_k, best = _best_ring(u)
    best_k = min(best_k, p - best_k)  # k and p-k give the same ring, reflected
    out = {"ring_k": int(best_k), "circularity": best, "radius_cv": float(r.std() / max(r.mean(), 1e-12))}
    if null_perms > 0:
        rng = np.random.default_rng(seed)
        null = np.array([_best_ring(u[rng.permutation(p)])[1] for _ in range(null_perms)])
        out.update(circularity_null_mean=float(null.mean()), circularity_null_p95=float(np.quantile(null, 0.95)))
    return out


def embedding_structure(emb: np.ndarray, *, seed: int = 0, null_perms: int = 200) -> dict[str, Any]:
    """PCA variance, ring score in the top-2 PCs (with its chance level) and the best ring among
    pairs of the top 6 PCs, for a (p, d) token embedding."""
    frac, coords = embedding_pca(emb)
    ring = ring_score(coords[:, :2], null_perms=null_perms, seed=seed)
    best_pair, best_pair_ring = (0, 1), ring
    for i in range(min(6, coords.shape[1])):
        for j in range(i + 1, min(6, coords.shape[1])):
            rj = ring_score(coords[:, [i, j]])
            if rj["circularity"] > best_pair_ring["circularity"]:
                best_pair, best_pair_ring = (i, j), rj
    return {
        "metrics": {
            "top2_variance_fraction": float(frac[:2].sum()),
            "pca_variance_fractions": [float(f) for f in frac[:8]],
            **ring,
            "best_pc_pair_top6": list(best_pair),
            "best_pair_ring_k": best_pair_ring["ring_k"],
            "best_pair_circularity": best_pair_ring["circularity"],
        },
        "embedding_top2": coords[:, :2].tolist(),
        "embedding_best_pair": coords[:, list(best_pair)].tolist(),
    }


def curve_metrics(curves: dict[str, list], threshold: float) -> dict[str, Any]:
    """Threshold steps, delay and effective-dimension summary from evaluation curves."""
    def first(values: list[float]) -> int | None:
        return next((s for s, v in zip(curves["step"], values) if v >= threshold), None)

    step_train, step_test = first(curves["train_acc"]), first(curves["test_acc"])
    ed = curves["effective_dim"]
    return {
        "step_train_acc": step_train,
        "step_test_acc": step_test,
        "grokking_delay": None if step_train is None or step_test is None else step_test - step_train,
        "final_train_acc": curves["train_acc"][-1],
        "final_test_acc": curves["test_acc"][-1],
        "effective_dim_init": ed[0],
        "effective_dim_max": float(max(ed)),
        "step_effective_dim_max": curves["step"][int(np.argmax(ed))],
        "effective_dim_final": ed[-1],
        "participation_ratio_init": curves["participation_ratio"][0],
        "participation_ratio_final": curves["participation_ratio"][-1],
    }


def train_modular_addition(cfg: ModAddConfig | None = None, *, device: str = "cpu",
                           progress: bool = False) -> dict[str, Any]:
    """Train one run (two AdamW optimizers: token embedding, decoder); returns metrics (threshold
    steps, embedding structure, effective dimension) and curves."""
    from grokking_theory._io import progress_bar

    cfg = cfg or ModAddConfig()
    torch.manual_seed(cfg.seed)
    model = ModAddTransformer(cfg).to(device)
    x, y, mask = modadd_data(cfg.p, cfg.train_fraction, cfg.seed, op_token=cfg.op_token)
    x, y, mask = x.to(device), y.to(device), mask.to(device)
    named = list(model.named_parameters())
    opt_embed = torch.optim.AdamW([q for n, q in named if is_embedding_param(n)], lr=cfg.embed_lr,
                                  weight_decay=cfg.embed_wd, betas=(0.9, cfg.beta2))
    opt_dec = torch.optim.AdamW([q for n, q in named if not is_embedding_param(n)], lr=cfg.decoder_lr,
                                weight_decay=cfg.decoder_wd, betas=(0.9, cfg.beta2))
    curves: dict[str, list[float]] = {"step": [], "train_acc": [], "test_acc": [], "train_loss": [],
                                      "effective_dim": [], "participation_ratio": []}
    for step in progress_bar(range(cfg.steps + 1), enabled=progress, desc="modular addition"):
        if step % cfg.eval_every == 0 or step == cfg.steps:
            model.eval()
            with torch.no_grad():
                pred = model(x).argmax(-1) == y
                tr, te = pred[mask].float().mean().item(), pred[~mask].float().mean().item()
                emb = model.embed.weight[: cfg.p].detach().cpu().numpy()
            model.train()
            curves["step"].append(step)
            curves["train_acc"].append(tr)
            curves["test_acc"].append(te)
            curves["effective_dim"].append(entropy_dim(emb))
            curves["participation_ratio"].append(participation_ratio(emb))
        if step == cfg.steps:
            break
        loss = nn.functional.cross_entropy(model(x[mask]), y[mask])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"modular addition: the training loss became non-finite at step {step}")
        opt_embed.zero_grad(set_to_none=True)
        opt_dec.zero_grad(set_to_none=True)
        loss.backward()
        opt_embed.step()
        opt_dec.step()
        if step % cfg.eval_every == 0:
            curves["train_loss"].append(loss.item())
    emb = model.embed.weight[: cfg.p].detach().cpu().numpy()
    structure = embedding_structure(emb, seed=cfg.seed)
    metrics = {**curve_metrics(curves, cfg.threshold), **structure["metrics"],
               "n_train": int(mask.sum()), "n_test": int((~mask).sum())}
    return {"config": cfg.to_dict(), "metrics": metrics, "curves": curves,
            "embedding_top2": structure["embedding_top2"],
            "embedding_best_pair": structure["embedding_best_pair"], "model": model}


def plot_modular_addition(result: dict[str, Any], path: Any) -> Any:
    """Accuracy curves + effective dimension (left), embedding in its top-2 PCs (right)."""
    from grokking_theory._plot import _plt, save_figure

    plt = _plt()
    c, m = result["curves"], result["metrics"]
    fig, (ax, ax3, ax4) = plt.subplots(1, 3, figsize=(15, 4))
    ax.plot(c["step"], c["train_acc"], label="train acc")
    ax.plot(c["step"], c["test_acc"], label="test acc")
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy")
    ax2 = ax.twinx()
    ax2.plot(c["step"], c["effective_dim"], color="k", ls="--", label="effective dim exp(S)")
    ax2.set_ylabel("effective dimension exp(S)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="center right")
    ax.set_title(f"(a+b) mod {result['config']['p']}: train@{m['step_train_acc']}, test@{m['step_test_acc']}",
                 fontsize=9)
    xy = np.array(result["embedding_top2"])
    p, k = len(xy), m["ring_k"]
    ax3.scatter(xy[:, 0], xy[:, 1], c=(k * np.arange(p)) % p, cmap="hsv")
    for a in range(p):
        ax3.annotate(str(a), xy[a], fontsize=6)
    ax3.set_title(f"embedding, top-2 PCs ({m['top2_variance_fraction']:.0%} var); colour = {k}·a mod p, "
                  f"circ {m['circularity']:.2f}", fontsize=8)
    ax3.set_aspect("equal")
    if "embedding_best_pair" in result:
        xy, k = np.array(result["embedding_best_pair"]), m["best_pair_ring_k"]
        ax4.scatter(xy[:, 0], xy[:, 1], c=(k * np.arange(p)) % p, cmap="hsv")
        for a in range(p):
            ax4.annotate(str(a), xy[a], fontsize=6)
        i, j = m["best_pc_pair_top6"]
        ax4.set_title(f"best pair of the top-6 PCs: PC{i + 1}, PC{j + 1}; colour = {k}·a mod p, "
                      f"circ {m['best_pair_circularity']:.2f}", fontsize=8)
        ax4.set_aspect("equal")
    return save_figure(fig, path)
