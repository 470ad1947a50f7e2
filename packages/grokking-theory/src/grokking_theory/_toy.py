"""The faithful single-run trainer: the official ``train_add`` loop, update for update."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from grokking_theory._combinatorics import (
    ideal_accuracy,
    predicted_accuracy,
    rqi_quadruples,
    sample_pairs,
)
from grokking_theory._config import ToyConfig
from grokking_theory._init import initial_state


class Decoder(nn.Module):
    """Linear -> tanh -> Linear -> tanh -> Linear on ``E_a + E_b``."""

    def __init__(self, reprs_dim: int, width: int, n_out: int) -> None:
        super().__init__()
        self.l1 = nn.Linear(reprs_dim, width)
        self.l2 = nn.Linear(width, width)
        self.l3 = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l3(torch.tanh(self.l2(torch.tanh(self.l1(x)))))


@dataclass
class ToyRun:
    """Result of one run: first steps crossing the thresholds (None = never) and curves."""

    config: ToyConfig
    train_ids: np.ndarray
    step_train: int | None
    step_test: int | None
    step_rqi: int | None
    train_acc: np.ndarray
    test_acc: np.ndarray
    rqi: np.ndarray
    loss: np.ndarray
    reprs: np.ndarray  # (steps, p, reprs_dim) embedding after each update
    decoder: Decoder
    theory: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> dict[str, object]:
        c = self.config
        return {
            "step_train_acc": self.step_train,
            "step_test_acc": self.step_test,
            "step_rqi": self.step_rqi,
            "thresholds": {
                "train_acc": c.threshold_train_acc,
                "test_acc": c.threshold_test_acc,
                "rqi": c.threshold_rqi,
            },
            "final_train_acc": float(self.train_acc[-1]),
            "final_test_acc": float(self.test_acc[-1]),
            "final_rqi": float(self.rqi[-1]),
            "final_loss": float(self.loss[-1]),
            "steps": c.steps,
            "train_ids": [int(i) for i in self.train_ids],
            **self.theory,
        }


def _first(flags: np.ndarray) -> int | None:
    hit = np.flatnonzero(flags)
    return int(hit[0]) if len(hit) else None


def nearest_template(out: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
    """Index of the nearest target vector (the regression prediction rule)."""
    return torch.argmin(((out.unsqueeze(1) - templates.unsqueeze(0)) ** 2).sum(2), dim=1)


def train_toy(cfg: ToyConfig, *, device: str = "cpu", progress: bool = False) -> ToyRun:
    """Train one toy run exactly as the official code does (same RNG order and summation order).

    Step indices are 0-based update indices; with ``rng_order="toy"`` the test accuracy of step
    ``t`` comes from the outputs computed before update ``t`` (as in ``train_add``).
    """
    from grokking_theory._io import progress_bar

    init = initial_state(cfg)
    dev = torch.device(device)
    pairs = torch.tensor(np.array(sample_pairs(cfg.p)), device=dev)
    templates = init.templates.to(dev)
    targets = pairs.sum(1)  # class index = a + b
    tr, te = init.train_ids, init.test_ids
    in_tr, in_te = pairs[torch.as_tensor(tr)], pairs[torch.as_tensor(te)]
    y_tr, y_te = targets[torch.as_tensor(tr)], targets[torch.as_tensor(te)]

    reprs = nn.Parameter(init.reprs.clone().to(dev))
    model = Decoder(cfg.reprs_dim, cfg.width, cfg.n_out).to(dev)
    with torch.no_grad():
        for layer, (w, b) in zip((model.l1, model.l2, model.l3), init.decoder):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
    if cfg.decoder_norm == "fixed-spectral":
        from lipschitz_core import direct_norm, operator_norm

        for layer in (model.l1, model.l2, model.l3):
            norm = float(operator_norm(layer.weight.detach(), "two")) * cfg.decoder_norm_scale
            direct_norm(layer, "two", always_norm=True, max_norm=norm)
        if cfg.rng_order == "toy":
            # the toy scores a test forward taken between the train forward and its backward;
            # eval mode makes lipschitz-core use the exact (SVD) spectral norm, so no persistent
            # power-iteration vector is mutated in between
            model.eval()
    opt_cls = torch.optim.AdamW if cfg.repr_optimizer == "adamw" else torch.optim.Adam
    opt1 = opt_cls([reprs], lr=cfg.eta_reprs, weight_decay=cfg.weight_decay_reprs)
    opt2 = torch.optim.AdamW(
        model.parameters(), lr=cfg.eta_dec, weight_decay=cfg.weight_decay_dec, betas=(0.9, 0.999)
    )
    quads = torch.tensor(np.array(rqi_quadruples(cfg.p)), device=dev)

    def forward(ids: torch.Tensor) -> torch.Tensor:
        return model(reprs[ids[:, 0]] + reprs[ids[:, 1]])

    def loss_fn(out: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        if cfg.loss == "mse":
            return torch.mean((out - templates[cls]) ** 2)
        return nn.functional.cross_entropy(out, cls) * cfg.ce_scale

    def predict(out: torch.Tensor) -> torch.Tensor:
        return nearest_template(out, templates) if cfg.loss == "mse" else out.argmax(1)

    steps = cfg.steps
    acc_tr, acc_te = np.zeros(steps), np.zeros(steps)
    rqis, losses = np.zeros(steps), np.zeros(steps)
    traj = np.zeros((steps, cfg.p, cfg.reprs_dim), dtype=np.float32)
    n_tr = len(tr)
    for step in progress_bar(range(steps), enabled=progress, desc="train"):
        opt1.zero_grad()
        opt2.zero_grad()
        if cfg.rng_order == "toy":
            choice = torch.as_tensor(init.numpy_rng.choice(np.arange(n_tr), cfg.batch_size or n_tr, replace=False))
        elif cfg.batch_size:
            choice = torch.as_tensor(init.numpy_rng.choice(np.arange(n_tr), cfg.batch_size, replace=False))
        else:
            choice = torch.arange(n_tr)
        out_tr = forward(in_tr[choice])
        # only the toy order scores the test outputs taken before the update
        out_te = forward(in_te) if len(te) and cfg.rng_order == "toy" else None
        loss = loss_fn(out_tr, y_tr[choice])
        loss.backward()
        opt1.step()
        opt2.step()
        with torch.no_grad():
            out_tr = forward(in_tr)
            if cfg.rng_order == "sweep" and len(te):
                out_te = forward(in_te)
            acc_tr[step] = (predict(out_tr) == y_tr).double().mean().item()
            acc_te[step] = (predict(out_te) == y_te).double().mean().item() if len(te) else 1.0
            z = (reprs - reprs.mean(0, keepdim=True)) / reprs.std(0, keepdim=True)
            d = z[quads[:, 0]] + z[quads[:, 1]] - z[quads[:, 2]] - z[quads[:, 3]]
            rqis[step] = ((d**2).mean(1) < cfg.rqi_tol).sum().item() / len(quads)
            losses[step] = loss.item()
            traj[step] = reprs.detach().cpu().numpy()
    if not np.isfinite(losses).all():
        bad = int(np.flatnonzero(~np.isfinite(losses))[0])
        raise FloatingPointError(f"training loss became non-finite at step {bad}; lower the learning rates")
    final = traj[-1]
    theory = {**ideal_accuracy(cfg.p, tr), **predicted_accuracy(cfg.p, tr, final, tol=cfg.rqi_tol)}
    return ToyRun(
        config=cfg,
        train_ids=tr,
        step_train=_first(acc_tr >= cfg.threshold_train_acc),
        step_test=_first(acc_te >= cfg.threshold_test_acc),
        step_rqi=_first(rqis > cfg.threshold_rqi),
        train_acc=acc_tr,
        test_acc=acc_te,
        rqi=rqis,
        loss=losses,
        reprs=traj,
        decoder=model,
        theory=theory,
    )
