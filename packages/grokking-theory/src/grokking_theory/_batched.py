"""Batched engine: many toy runs trained at once with batched matmuls, sharded over processes.

All runs of one call share the architecture (p, width, dims, loss, steps); each has its own seed
(so its own split, templates and initialisation, drawn in the official order) and its own learning
rates and weight decays. The updates are the official ones (full batch, AdamW per run with
per-run lr/wd); the only difference from :func:`train_toy` is floating-point summation order
(batched matmuls, no per-step batch permutation), so step counts agree closely, not bit for bit.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields

import numpy as np
import torch

from grokking_theory._combinatorics import rqi_quadruples, sample_pairs
from grokking_theory._config import ToyConfig
from grokking_theory._init import initial_state

SWEEPABLE = ("eta_reprs", "eta_dec", "weight_decay_reprs", "weight_decay_dec", "batch_size",
             "init_scale_reprs", "init_scale_nn", "seed")


@dataclass(frozen=True)
class RunSpec:
    """Per-run settings of a batched sweep (everything else comes from the base ToyConfig)."""

    seed: int = 58
    eta_reprs: float = 1e-3
    eta_dec: float = 1e-4
    weight_decay_reprs: float = 0.0
    weight_decay_dec: float = 0.0
    batch_size: int = 0  # 0 = full batch
    init_scale_reprs: float = 1.0
    init_scale_nn: float = 1.0

    @classmethod
    def from_config(cls, cfg: ToyConfig, **changes: float) -> RunSpec:
        base = {f.name: getattr(cfg, f.name) for f in fields(cls)}
        base.update(changes)
        return cls(**base)


@dataclass
class SweepRun:
    """First steps crossing the thresholds, per run (-1 = not reached within the budget)."""

    specs: list[RunSpec]
    steps: int
    step_train: np.ndarray
    step_test: np.ndarray
    step_rqi: np.ndarray
    final_train_acc: np.ndarray
    final_test_acc: np.ndarray
    final_rqi: np.ndarray
    stopped_at: np.ndarray  # number of updates actually run (early stop once both accuracies reached)
    diverged: np.ndarray  # non-finite parameters appeared (run stopped there)
    final_reprs: np.ndarray | None = None  # (R, p, reprs_dim) embedding when the run stopped
    train_ids: list[np.ndarray] | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"steps": self.steps, "specs": [s.__dict__ for s in self.specs]}
        for name in ("step_train", "step_test", "step_rqi", "final_train_acc", "final_test_acc",
                     "final_rqi", "stopped_at", "diverged"):
            out[name] = getattr(self, name).tolist()
        return out

    @staticmethod
    def concat(parts: Sequence[SweepRun]) -> SweepRun:
        names = ("step_train", "step_test", "step_rqi", "final_train_acc", "final_test_acc",
                 "final_rqi", "stopped_at", "diverged", "final_reprs")
        return SweepRun(
            specs=[s for part in parts for s in part.specs],
            steps=parts[0].steps,
            train_ids=[t for part in parts for t in (part.train_ids or [])],
            **{n: np.concatenate([getattr(q, n) for q in parts]) for n in names},
        )


def _check_specs(specs: Sequence[RunSpec]) -> list[RunSpec]:
    specs = list(specs)
    if not specs:
        raise ValueError("the sweep is empty: expected at least one run")
    for s in specs:
        if s.eta_reprs <= 0 or s.eta_dec <= 0:
            raise ValueError(f"learning rates must be > 0, got {s}")
        if s.weight_decay_reprs < 0 or s.weight_decay_dec < 0:
            raise ValueError(f"weight decays must be >= 0, got {s}")
        if s.batch_size < 0 or s.batch_size != int(s.batch_size):
            raise ValueError(f"batch_size must be an integer >= 0 (0 = full batch), got {s}")
        if not (s.init_scale_reprs > 0 and s.init_scale_nn > 0):
            raise ValueError(f"init scales must be > 0, got {s}")
    return specs


def train_batched(
    base: ToyConfig,
    specs: Sequence[RunSpec],
    *,
    device: str = "cpu",
    early_stop: bool = True,
    stop_on_rqi: bool = False,
    check_every: int = 100,
    progress: bool = False,
    max_seconds: float | None = None,
    on_finish: Callable[[int, dict], None] | None = None,
) -> SweepRun:
    """Train ``len(specs)`` toy runs at once; returns their threshold-crossing steps.

    With ``early_stop`` a run leaves the batch once train and test accuracy (and RQI if
    ``stop_on_rqi``) have crossed their thresholds; the remaining runs are compacted, so a
    diagram costs about what its memorizing/confused cells cost. ``max_seconds`` ends training
    early (at a check point); runs still in the batch then report ``stopped_at`` < ``steps``.
    ``on_finish(i, result)`` is called once for each run i as soon as it is finished (reached its
    thresholds, diverged, or used the whole budget), with its scalar results; runs cut short by
    ``max_seconds`` are not finished and are not reported (a resumed sweep reruns them).
    """
    import time

    from grokking_theory._io import progress_bar

    t_start = time.perf_counter()

    specs = _check_specs(specs)
    if base.decoder_norm != "free":
        raise ValueError("the batched engine trains free decoders only; use train_toy for decoder_norm")
    R, dev = len(specs), torch.device(device)
    for s in specs:
        if s.batch_size > base.train_num:
            raise ValueError(f"batch_size {s.batch_size} exceeds train_num {base.train_num}")
    inits = [initial_state(base.replace(seed=s.seed, init_scale_reprs=s.init_scale_reprs,
                                        init_scale_nn=s.init_scale_nn)) for s in specs]
    # mini-batches as train_add draws them: choice(train_num, batch_size) from the run's numpy stream
    batch_sizes = [int(s.batch_size) if 0 < s.batch_size < base.train_num else 0 for s in specs]
    mini = any(batch_sizes)
    pairs = torch.tensor(np.array(sample_pairs(base.p)), device=dev)
    cls = pairs.sum(1)  # (N,)
    N = len(pairs)
    masks = np.zeros((R, N), dtype=bool)
    for r, ini in enumerate(inits):
        masks[r, ini.train_ids] = True
    train_mask = torch.tensor(masks, device=dev, dtype=torch.float32)
    test_mask = 1.0 - train_mask
    n_train, n_test = float(base.train_num), float(N - base.train_num)

    E = torch.stack([ini.reprs for ini in inits]).to(dev)
    params = [E]
    for layer in range(3):
        params.append(torch.stack([ini.decoder[layer][0].T.contiguous() for ini in inits]).to(dev))
        params.append(torch.stack([ini.decoder[layer][1][None, :] for ini in inits]).to(dev))
    templates = torch.stack([ini.templates for ini in inits]).to(dev)  # (R, 2p-1, o)
    targets = templates[:, cls]  # (R, N, o) regression targets
    t_sq = (templates**2).sum(2)  # (R, 2p-1)

    def col(values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float64, device=dev).view(-1, 1, 1)

    lr = [col([s.eta_reprs for s in specs])] + [col([s.eta_dec for s in specs])] * 6
    wd = [col([s.weight_decay_reprs for s in specs])] + [col([s.weight_decay_dec for s in specs])] * 6
    decay = [(1 - a * b).float() for a, b in zip(lr, wd)]
    use_wd = [
        base.repr_optimizer == "adamw" or i > 0 for i in range(7)
    ]  # Adam (no decoupled decay) for the representation in the classification sweep
    exp_avg = [torch.zeros_like(q) for q in params]
    exp_avg_sq = [torch.zeros_like(q) for q in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    quads = torch.tensor(np.array(rqi_quadruples(base.p)), device=dev)
    a_idx, b_idx = pairs[:, 0], pairs[:, 1]
    thr_tr, thr_te, thr_rqi = base.threshold_train_acc, base.threshold_test_acc, base.threshold_rqi
    toy_order = base.rng_order == "toy"

    alive = torch.arange(R, device=dev)  # original index of each row still in the batch
    first_tr = torch.full((R,), -1, dtype=torch.long, device=dev)
    first_te, first_rqi = first_tr.clone(), first_tr.clone()
    fin_tr = torch.zeros(R, dtype=torch.float64, device=dev)
    fin_te, fin_rqi = fin_tr.clone(), fin_tr.clone()
    fin_e = torch.zeros_like(E)
    stopped = torch.full((R,), base.steps, dtype=torch.long, device=dev)
    diverged = torch.zeros(R, dtype=torch.bool, device=dev)
    # local (compacted) copies of the per-run tensors
    l_tr, l_te, l_tg, l_tsq, l_tpl = train_mask, test_mask, targets, t_sq, templates
    l_first_tr, l_first_te, l_first_rqi = first_tr.clone(), first_te.clone(), first_rqi.clone()
    l_acc_tr = torch.zeros(R, dtype=torch.float64, device=dev)
    l_acc_te, l_rqi = l_acc_tr.clone(), l_acc_tr.clone()

    def forward(ps: list[torch.Tensor]) -> torch.Tensor:
        e, w1, b1, w2, b2, w3, b3 = ps
        x = e[:, a_idx] + e[:, b_idx]
        h = torch.tanh(torch.baddbmm(b1, x, w1))
        h = torch.tanh(torch.baddbmm(b2, h, w2))
        return torch.baddbmm(b3, h, w3)

    def write_back(t_done: int) -> None:
        first_tr[alive] = l_first_tr
        first_te[alive] = l_first_te
        first_rqi[alive] = l_first_rqi
        fin_tr[alive], fin_te[alive], fin_rqi[alive] = l_acc_tr, l_acc_te, l_rqi
        fin_e[alive] = params[0].detach()

    def report(indices: torch.Tensor) -> None:
        if on_finish is None:
            return
        for i in indices.tolist():
            on_finish(i, {
                "step_train": int(first_tr[i]), "step_test": int(first_te[i]), "step_rqi": int(first_rqi[i]),
                "final_train_acc": float(fin_tr[i]), "final_test_acc": float(fin_te[i]),
                "final_rqi": float(fin_rqi[i]), "stopped_at": int(stopped[i]), "diverged": bool(diverged[i]),
            })

    bar = progress_bar(enabled=progress, total=base.steps, desc=f"batched x{R}")
    t = 0
    for t in range(base.steps + 1):
        last = t == base.steps
        for q in params:
            q.requires_grad_(not last)
        out = forward(params)
        with torch.no_grad():
            if base.loss == "mse":
                d = (out**2).sum(2, keepdim=True) - 2 * out @ l_tpl.transpose(1, 2) + l_tsq[:, None, :]
                pred = d.argmin(2)
            else:
                pred = out.argmax(2)
            correct = (pred == cls).to(torch.float64)
            acc_tr = (correct * l_tr).sum(1) / n_train
            acc_te = (correct * l_te).sum(1) / n_test if n_test > 0 else torch.ones_like(acc_tr)
            e = params[0]
            z = (e - e.mean(1, keepdim=True)) / e.std(1, keepdim=True)
            dq = z[:, quads[:, 0]] + z[:, quads[:, 1]] - z[:, quads[:, 2]] - z[:, quads[:, 3]]
            rq = ((dq**2).mean(2) < base.rqi_tol).sum(1).to(torch.float64) / len(quads)
            if t >= 1:  # outputs after update t-1
                l_first_tr = torch.where((l_first_tr < 0) & (acc_tr >= thr_tr), t - 1, l_first_tr)
                l_first_rqi = torch.where((l_first_rqi < 0) & (rq > thr_rqi), t - 1, l_first_rqi)
                l_acc_tr, l_rqi = acc_tr, rq
                if not toy_order:
                    l_first_te = torch.where((l_first_te < 0) & (acc_te >= thr_te), t - 1, l_first_te)
                    l_acc_te = acc_te
            if toy_order and not last:  # train_add scores test outputs taken before update t
                l_first_te = torch.where((l_first_te < 0) & (acc_te >= thr_te), t, l_first_te)
                l_acc_te = acc_te
        if last:
            break
        if mini:
            w_batch, n_batch = _batch_mask(inits, batch_sizes, alive.tolist(), N, base.train_num, dev)
        else:
            w_batch, n_batch = l_tr, n_train
        if base.loss == "mse":
            per_run = (((out - l_tg) ** 2).sum(2) * w_batch).sum(1) / (n_batch * out.shape[2])
        else:
            logp = torch.log_softmax(out, 2).gather(2, cls.view(1, -1, 1).expand(out.shape[0], -1, 1))
            per_run = -(logp[..., 0] * w_batch).sum(1) / n_batch * base.ce_scale
        grads = torch.autograd.grad(per_run.sum(), params)
        with torch.no_grad():
            step = t + 1
            bc1, bc2 = 1 - beta1**step, 1 - beta2**step
            for i, (q, g) in enumerate(zip(params, grads)):
                if use_wd[i]:
                    q.mul_(decay[i])
                exp_avg[i].lerp_(g, 1 - beta1)
                exp_avg_sq[i].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                denom = (exp_avg_sq[i].sqrt() / math.sqrt(bc2)).add_(eps)
                q.sub_((lr[i] / bc1).float() * exp_avg[i] / denom)
        bar.update(1)
        if max_seconds is not None and (t + 1) % check_every == 0 and time.perf_counter() - t_start > max_seconds:
            write_back(t + 1)
            stopped[alive] = t + 1
            alive = alive[:0]
            break
        if (t + 1) % check_every == 0:
            with torch.no_grad():
                finite = torch.stack([torch.isfinite(q).flatten(1).all(1) for q in params]).all(0)
                done = (l_first_tr >= 0) & (l_first_te >= 0)
                if stop_on_rqi:
                    done &= l_first_rqi >= 0
                if not early_stop:
                    done = torch.zeros_like(done)
                leave = done | ~finite
                if bool(leave.any()):
                    write_back(t + 1)
                    gone = alive[leave]
                    stopped[gone] = t + 1
                    diverged[alive[~finite]] = True
                    report(gone)
                    keep = (~leave).nonzero().flatten()
                    alive = alive[keep]
                    if len(alive) == 0:
                        break
                    params = [q.detach()[keep].clone() for q in params]
                    exp_avg = [m[keep].clone() for m in exp_avg]
                    exp_avg_sq = [v[keep].clone() for v in exp_avg_sq]
                    lr = [x[keep] for x in lr]
                    decay = [x[keep] for x in decay]
                    l_tr, l_te, l_tg, l_tsq, l_tpl = (x[keep] for x in (l_tr, l_te, l_tg, l_tsq, l_tpl))
                    l_first_tr, l_first_te, l_first_rqi = (
                        x[keep] for x in (l_first_tr, l_first_te, l_first_rqi)
                    )
                    l_acc_tr, l_acc_te, l_rqi = (x[keep] for x in (l_acc_tr, l_acc_te, l_rqi))
    bar.close()
    if len(alive):
        write_back(base.steps)
        report(alive)
    return SweepRun(
        specs=specs,
        steps=base.steps,
        step_train=first_tr.cpu().numpy(),
        step_test=first_te.cpu().numpy(),
        step_rqi=first_rqi.cpu().numpy(),
        final_train_acc=fin_tr.cpu().numpy(),
        final_test_acc=fin_te.cpu().numpy(),
        final_rqi=fin_rqi.cpu().numpy(),
        stopped_at=stopped.cpu().numpy(),
        diverged=diverged.cpu().numpy(),
        final_reprs=fin_e.cpu().numpy(),
        train_ids=[ini.train_ids for ini in inits],
    )


def _batch_mask(inits: list, batch_sizes: list[int], rows: list[int], n: int, train_num: int,
                dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(r, n) 0/1 mask of this step's mini-batch per run still in the batch, and (r,) batch sizes.

    Each run draws ``choice(train_num, batch_size, replace=False)`` from its own numpy stream, as
    ``train_add`` does; a full-batch run (size 0) uses its whole training set and draws nothing.
    """
    mask = np.zeros((len(rows), n), dtype=np.float32)
    sizes = np.zeros(len(rows), dtype=np.float64)
    for k, i in enumerate(rows):
        ids = inits[i].train_ids
        if batch_sizes[i]:
            ids = ids[inits[i].numpy_rng.choice(np.arange(train_num), batch_sizes[i], replace=False)]
        mask[k, ids] = 1.0
        sizes[k] = len(ids)
    return torch.from_numpy(mask).to(dev), torch.from_numpy(sizes).to(dev)


class _Remap:
    """Shard-local run index -> index in the whole sweep, for ``on_finish`` (picklable)."""

    def __init__(self, fn: Callable[[int, dict], None], indices: list[int]) -> None:
        self.fn, self.indices = fn, indices

    def __call__(self, i: int, result: dict) -> None:
        self.fn(self.indices[i], result)


def _worker(args: tuple) -> SweepRun:
    base, specs, device, kwargs = args
    torch.set_num_threads(1)  # one thread per process: threads fight on a shared 2-core box
    return train_batched(base, specs, device=device, **kwargs)


def run_sweep(
    base: ToyConfig,
    specs: Sequence[RunSpec],
    *,
    workers: int = 1,
    device: str = "cpu",
    **kwargs: object,
) -> SweepRun:
    """Shard ``specs`` over ``workers`` processes (each single-threaded, each batched) and merge.

    Shards interleave the runs (run i goes to shard i mod workers) so that each holds a mix of
    fast and slow cells. On CUDA everything runs in this process as one batch.
    """
    specs = _check_specs(specs)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if device.startswith("cuda") or workers == 1 or len(specs) == 1:
        if not device.startswith("cuda"):
            torch.set_num_threads(1)
        return train_batched(base, specs, device=device, **kwargs)
    workers = min(workers, len(specs), os.cpu_count() or 1)
    shards = [list(range(w, len(specs), workers)) for w in range(workers)]
    import multiprocessing as mp

    on_finish = kwargs.pop("on_finish", None)

    def shard_kwargs(s: list[int]) -> dict:
        return kwargs if on_finish is None else {**kwargs, "on_finish": _Remap(on_finish, s)}

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        parts = list(pool.map(_worker, [(base, [specs[i] for i in s], "cpu", shard_kwargs(s)) for s in shards]))
    merged = SweepRun.concat(parts)
    order = np.argsort(np.concatenate(shards), kind="stable")
    names = ("step_train", "step_test", "step_rqi", "final_train_acc", "final_test_acc",
             "final_rqi", "stopped_at", "diverged", "final_reprs")
    return SweepRun(
        specs=list(specs),
        steps=base.steps,
        train_ids=[merged.train_ids[i] for i in order] if merged.train_ids else None,
        **{n: getattr(merged, n)[order] for n in names},
    )
