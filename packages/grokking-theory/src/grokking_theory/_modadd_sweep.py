"""Many modular-addition transformers trained at once (``torch.func.vmap`` over stacked
parameters), and resumable, shardable phase diagrams over decoder lr x decoder wd or dropout.

Every run of one batch shares the architecture, data and budget; each has its own seed (so its own
split and initialisation), its own embedding / decoder learning rates and weight decays and its own
dropout rate. The update is AdamW per run (the same arithmetic as ``torch.optim.AdamW``), so a
batch reproduces :func:`train_modular_addition` run by run up to floating-point summation order
(tested without dropout; with dropout the random masks differ).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from grokking_theory._modadd import (
    ModAddConfig,
    ModAddTransformer,
    curve_metrics,
    is_embedding_param,
    modadd_data,
)

PER_RUN = ("seed", "embed_lr", "decoder_lr", "embed_wd", "decoder_wd", "dropout")

#: axes of the transformer diagrams: (x field, x values, y field, y values) for the full and quick sizes
SWEEP_AXES: dict[str, dict[str, tuple[str, list[float], str, list[float]]]] = {
    "decoder-lr-wd": {
        "full": ("decoder_wd", [0.0, 0.1, 0.3, 1.0, 3.0, 10.0], "decoder_lr",
                 [float(v) for v in 10 ** np.linspace(-4, -2, 5)]),
        "quick": ("decoder_wd", [0.1, 3.0], "decoder_lr", [1e-3, 1e-2]),
    },
    "dropout": {
        "full": ("dropout", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], "decoder_wd", [0.1, 1.0]),
        "quick": ("dropout", [0.0, 0.4], "decoder_wd", [1.0]),
    },
    # one cell per seed at the config's own decoder wd: the effective dimension over many seeds
    "seeds": {"full": ("decoder_wd", [], "dropout", []), "quick": ("decoder_wd", [], "dropout", [])},
}


def _check_batch(cfgs: Sequence[ModAddConfig]) -> list[ModAddConfig]:
    cfgs = list(cfgs)
    if not cfgs:
        raise ValueError("the transformer batch is empty: expected at least one run")
    shared = {k: v for k, v in cfgs[0].to_dict().items() if k not in PER_RUN}
    for c in cfgs[1:]:
        other = {k: v for k, v in c.to_dict().items() if k not in PER_RUN}
        if other != shared:
            diff = sorted(k for k in shared if shared[k] != other[k])
            raise ValueError(f"runs of one batch may differ only in {PER_RUN}; these differ: {diff}")
    return cfgs


def _entropy_dims(emb: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of each run's normalized PCA spectrum; emb (R, p, d) -> (R,)."""
    c = emb.double() - emb.double().mean(1, keepdim=True)
    lam = torch.linalg.eigvalsh(c.transpose(1, 2) @ c).clamp_min(0)
    q = lam / lam.sum(1, keepdim=True)
    ent = -(torch.where(q > 0, q * q.log(), torch.zeros_like(q))).sum(1)
    return ent.exp()


def _participation(emb: torch.Tensor) -> torch.Tensor:
    c = emb.double() - emb.double().mean(1, keepdim=True)
    lam = torch.linalg.eigvalsh(c.transpose(1, 2) @ c).clamp_min(0)
    return lam.sum(1) ** 2 / (lam**2).sum(1)


def train_modadd_batched(
    cfgs: Sequence[ModAddConfig],
    *,
    device: str = "cpu",
    early_stop: bool = False,
    max_seconds: float | None = None,
    on_finish: Callable[[int, dict], None] | None = None,
    on_progress: Callable[[int, dict[int, dict]], None] | None = None,
    progress_every_s: float = 30.0,
    progress: bool = False,
) -> list[dict[str, Any] | None]:
    """Train ``len(cfgs)`` transformers at once; returns per run ``{"metrics", "curves"}`` (None for
    a run cut short by ``max_seconds``).

    ``early_stop`` lets a run leave the batch at the first evaluation where both train and test
    accuracy have reached the threshold (the remaining runs are compacted). ``on_finish(i, result)``
    is called as soon as run i is finished. ``on_progress(step, {i: curves})`` is called with the
    curves so far of the runs still training, at an evaluation at least ``progress_every_s`` seconds
    after the previous call and once more when ``max_seconds`` ends training, so a run that is cut
    short (or killed) still leaves its partial curves behind.
    """
    from torch.func import functional_call, stack_module_state, vmap

    from grokking_theory._io import progress_bar

    cfgs = _check_batch(cfgs)
    c0 = cfgs[0]
    R, dev = len(cfgs), torch.device(device)
    models = []
    for c in cfgs:
        torch.manual_seed(c.seed)
        models.append(ModAddTransformer(c))
    params, buffers = stack_module_state(models)
    params = {k: v.detach().to(dev).requires_grad_(True) for k, v in params.items()}
    buffers = {k: v.to(dev) for k, v in buffers.items()}
    base = copy.deepcopy(models[0]).to("meta")
    names = list(params)
    x, y, _ = modadd_data(c0.p, c0.train_fraction, c0.seed, op_token=c0.op_token)
    masks = torch.stack([modadd_data(c.p, c.train_fraction, c.seed, op_token=c.op_token)[2] for c in cfgs])
    # every run has the same number of training pairs (same p and fraction): gather them per run
    train_idx = torch.stack([m.nonzero().flatten() for m in masks]).to(dev)  # (R, n_train)
    x, y, masks = x.to(dev), y.to(dev), masks.to(dev).float()
    n_train = masks.sum(1)
    for mod in base.modules():
        if hasattr(mod, "rate"):  # draw dropout masks only if some run of the batch uses dropout
            mod.active = any(c.dropout > 0 for c in cfgs)

    def col(values: list[float], like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32, device=dev).view(-1, *([1] * (like.ndim - 1)))

    lr = {k: col([c.embed_lr if is_embedding_param(k) else c.decoder_lr for c in cfgs], v) for k, v in params.items()}
    wd = {k: col([c.embed_wd if is_embedding_param(k) else c.decoder_wd for c in cfgs], v) for k, v in params.items()}
    m1 = {k: torch.zeros_like(v) for k, v in params.items()}
    m2 = {k: torch.zeros_like(v) for k, v in params.items()}
    beta1, beta2, eps = 0.9, c0.beta2, 1e-8

    def logits_of(ps: dict, bs: dict, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        base.train(train)
        if idx is None:
            return vmap(lambda p, b: functional_call(base, (p, b), (x,)), randomness="different")(ps, bs)
        return vmap(lambda p, b, xi: functional_call(base, (p, b), (xi,)), randomness="different")(ps, bs, x[idx])

    alive = list(range(R))
    curves = [{"step": [], "train_acc": [], "test_acc": [], "train_loss": [], "effective_dim": [],
               "participation_ratio": []} for _ in range(R)]
    results: list[dict[str, Any] | None] = [None] * R
    diverged = [False] * R
    t_start = time.perf_counter()
    last_progress = t_start

    def snapshot(step: int) -> None:
        if on_progress is not None and alive:
            on_progress(step, {i: curves[i] for i in alive})

    def finish(local: list[int], step: int) -> None:
        for li in local:
            i = alive[li]
            res = {"metrics": {**curve_metrics(curves[i], c0.threshold), "stopped_at": step,
                               "diverged": diverged[i], "n_train": int(n_train[li])},
                   "curves": curves[i]}
            results[i] = res
            if on_finish is not None:
                on_finish(i, res)

    bar = progress_bar(enabled=progress, total=c0.steps, desc=f"transformers x{R}")
    for step in range(c0.steps + 1):
        evaluate = step % c0.eval_every == 0 or step == c0.steps
        if evaluate:
            with torch.no_grad():
                correct = (logits_of(params, buffers, False).argmax(-1) == y).float()
                tr = (correct * masks).sum(1) / n_train
                te = (correct * (1 - masks)).sum(1) / (1 - masks).sum(1)
                emb = params["embed.weight"][:, : c0.p].detach()
                ed, pr = _entropy_dims(emb), _participation(emb)
            for li, i in enumerate(alive):
                cv = curves[i]
                cv["step"].append(step)
                cv["train_acc"].append(float(tr[li]))
                cv["test_acc"].append(float(te[li]))
                cv["effective_dim"].append(float(ed[li]))
                cv["participation_ratio"].append(float(pr[li]))
            if step == c0.steps:
                break
            leave = torch.zeros(len(alive), dtype=torch.bool, device=dev)
            if early_stop:
                leave |= (tr >= c0.threshold) & (te >= c0.threshold)
            finite = torch.stack([torch.isfinite(v.detach()).flatten(1).all(1) for v in params.values()]).all(0)
            for li in (~finite).nonzero().flatten().tolist():
                diverged[alive[li]] = True
            leave |= ~finite
            if bool(leave.any()):
                finish(leave.nonzero().flatten().tolist(), step)
                keep = (~leave).nonzero().flatten()
                alive = [alive[k] for k in keep.tolist()]
                if not alive:
                    break
                params = {k: v.detach()[keep].clone().requires_grad_(True) for k, v in params.items()}
                buffers = {k: v[keep] for k, v in buffers.items()}
                m1 = {k: v[keep] for k, v in m1.items()}
                m2 = {k: v[keep] for k, v in m2.items()}
                lr = {k: v[keep] for k, v in lr.items()}
                wd = {k: v[keep] for k, v in wd.items()}
                masks, n_train, train_idx = masks[keep], n_train[keep], train_idx[keep]
            now = time.perf_counter()
            if max_seconds is not None and now - t_start > max_seconds:
                snapshot(step)
                break
            if now - last_progress >= progress_every_s:
                last_progress = now
                snapshot(step)
        logits = logits_of(params, buffers, True, train_idx)
        per_run = nn.functional.cross_entropy(logits.reshape(-1, c0.p), y[train_idx].reshape(-1),
                                              reduction="none").view(len(alive), -1).mean(1)
        grads = torch.autograd.grad(per_run.sum(), [params[k] for k in names])
        if step % c0.eval_every == 0:
            for li, i in enumerate(alive):
                curves[i]["train_loss"].append(float(per_run[li].detach()))
        with torch.no_grad():
            t = step + 1
            bc1, bc2 = 1 - beta1**t, 1 - beta2**t
            for k, g in zip(names, grads):
                q = params[k]
                q.mul_(1 - lr[k] * wd[k])
                m1[k].lerp_(g, 1 - beta1)
                m2[k].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                q.sub_((lr[k] / bc1) * m1[k] / ((m2[k].sqrt() / math.sqrt(bc2)).add_(eps)))
        bar.update(1)
    bar.close()
    if step == c0.steps and alive:
        finish(list(range(len(alive))), c0.steps)
    return results


def sweep_configs(base: ModAddConfig, axes: str, seeds: Sequence[int], *, quick_axes: bool = False):
    """Cells (seed, y, x) of a transformer diagram, each with its config and config hash."""
    from grokking_theory._sweep import Cell, config_hash

    x_name, xs, y_name, ys = SWEEP_AXES[axes]["quick" if quick_axes else "full"]
    if axes == "seeds":
        xs, ys = [base.decoder_wd], [base.dropout]
    cells, cfgs = [], []
    for s in seeds:
        for yi, yv in enumerate(ys):
            for xi, xv in enumerate(xs):
                cfg = base.replace(seed=int(s), **{x_name: float(xv), y_name: float(yv)})
                cells.append(Cell(key=f"s{s}_y{yi:02d}_x{xi:02d}", hash=config_hash(cfg.to_dict()),
                                  index=len(cells), values={"seed": int(s), "x": float(xv), "y": float(yv)}))
                cfgs.append(cfg)
    grid = {"axes": axes, "x_name": x_name, "x_values": xs, "y_name": y_name, "y_values": ys,
            "seeds": [int(s) for s in seeds], "config": base.to_dict()}
    return cells, cfgs, grid


def in_flight_summary(step: int, runs: dict[str, dict]) -> dict[str, Any]:
    """Partial results of runs still training (cell key -> curves so far): the step reached, the
    first steps reached so far, and the mean curves over those runs."""
    if not runs:
        return {}
    n = min(len(c["step"]) for c in runs.values())
    out: dict[str, Any] = {"step": int(step), "runs": len(runs), "cells": sorted(runs)}
    firsts = {}
    for key, c in runs.items():
        tr = next((s for s, a in zip(c["step"], c["train_acc"]) if a >= 0.9), None)
        te = next((s for s, a in zip(c["step"], c["test_acc"]) if a >= 0.9), None)
        firsts[key] = {"step_train_acc_so_far": tr, "step_test_acc_so_far": te,
                       "effective_dim_max_so_far": max(c["effective_dim"]) if c["effective_dim"] else None}
    out["first_steps_so_far"] = firsts
    if n:
        cs = list(runs.values())
        out["mean_curves"] = {"step": cs[0]["step"][:n],
                              **{k: np.mean([c[k][:n] for c in cs], 0).tolist()
                                 for k in ("effective_dim", "test_acc", "train_acc")}}
    return out


def transformer_payload(grid: dict, found: dict[str, dict], cells: list, *, lag: float,
                        in_flight: dict[str, Any] | None = None) -> dict:
    """Result-record payload of a (possibly partial) transformer diagram; ``in_flight`` (from
    :func:`in_flight_summary`) adds the partial curves of runs still training (or cut short)."""
    from grokking_theory._phases import PHASES, classify_phase

    seeds, xs, ys = grid["seeds"], grid["x_values"], grid["y_values"]
    shape = (len(seeds), len(ys), len(xs))
    tr, te = np.full(shape, -2), np.full(shape, -2)
    ed_max, ed_final, mask = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, bool)
    curves: dict[tuple[int, int], list] = {}
    for c in cells:
        rec = found.get(c.key)
        if rec is None:
            continue
        ix = np.unravel_index(c.index, shape)
        m = rec["metrics"]
        tr[ix] = -1 if m["step_train_acc"] is None else m["step_train_acc"]
        te[ix] = -1 if m["step_test_acc"] is None else m["step_test_acc"]
        ed_max[ix], ed_final[ix] = m["effective_dim_max"], m["effective_dim_final"]
        mask[ix] = True
        curves.setdefault((int(ix[1]), int(ix[2])), []).append(rec.get("curves", {}))
    ph = classify_phase(np.where(mask, tr, -1), np.where(mask, te, -1), lag=lag)
    rows = []
    for yi, yv in enumerate(ys):
        for xi, xv in enumerate(xs):
            done = mask[:, yi, xi]
            if not done.any():
                rows.append([xv, yv, 0, "-", "-", "-"])
                continue
            codes = ph[:, yi, xi][done]
            majority = PHASES[int(np.bincount(codes, minlength=4).argmax())]
            tests = te[:, yi, xi][done]
            reached = tests[tests >= 0]
            rows.append([xv, yv, int(done.sum()), majority,
                         float(np.median(reached)) if len(reached) else "never",
                         float(np.nanmean(ed_max[:, yi, xi][done]))])
    # per cell: effective dimension and test accuracy averaged over the seeds that ran the whole
    # budget (early-stopped runs have shorter curves and are left out of the mean)
    mean_curves = {}
    for (yi, xi), cs in curves.items():
        full = [c for c in cs if c.get("step") and c["step"][-1] == grid["config"]["steps"]]
        if full:
            mean_curves[f"y{yi}_x{xi}"] = {
                "seeds": len(full), "step": full[0]["step"],
                "effective_dim": np.mean([c["effective_dim"] for c in full], 0).tolist(),
                "test_acc": np.mean([c["test_acc"] for c in full], 0).tolist(),
                "train_acc": np.mean([c["train_acc"] for c in full], 0).tolist()}
    tables = [{"name": "cells", "caption": f"transformer, (a+b) mod {grid['config']['p']}, "
               f"budget {grid['config']['steps']}, lag {lag:g}; majority phase over seeds",
               "columns": [grid["x_name"], grid["y_name"], "seeds done", "phase (majority)",
                           "median step test acc >= 0.9", "mean max effective dim"],
               "rows": rows, "formats": {"mean max effective dim": ".2f"}}]
    if grid["axes"] == "seeds" and "y0_x0" in mean_curves:
        # the effective-dimension claim: the seed-averaged curve at ~10 evaluation steps
        mc = mean_curves["y0_x0"]
        picks = sorted(set(np.linspace(0, len(mc["step"]) - 1, 11).round().astype(int).tolist()))
        tables.append({"name": "curve", "caption": f"mean over {mc['seeds']} seeds (runs of the whole budget)",
                       "columns": ["step", "mean effective dim", "mean train acc", "mean test acc"],
                       "rows": [[mc["step"][k], mc["effective_dim"][k], mc["train_acc"][k], mc["test_acc"][k]]
                                for k in picks],
                       "formats": {"mean effective dim": ".2f", "mean train acc": ".3f", "mean test acc": ".3f"}})
    return {
        "experiment": f"transformer_{grid['axes']}",
        "seeds": seeds,
        "config": {**grid, "lag": lag},
        "metrics": {"cells_total": int(mask.size), "cells_finished": int(mask.sum()),
                    "complete": bool(mask.all()), "step_train": tr.tolist(), "step_test": te.tolist(),
                    "phases": np.where(mask, ph, -1).tolist(), "effective_dim_max": ed_max.tolist(),
                    "effective_dim_final": ed_final.tolist(), "mean_curves": mean_curves,
                    "in_flight": in_flight or {},
                    "note": "steps: first evaluation with accuracy >= threshold; -1 never, -2 not finished"},
        "tables": tables,
    }


def run_transformer_sweep(base: ModAddConfig, *, axes: str, seeds: Sequence[int], out: Path,
                          device: str = "cpu", shard: tuple[int, int] = (0, 1), resume: bool = False,
                          batch: int = 16, quick_axes: bool = False, max_seconds: float | None = None,
                          lag: float = 1000.0, early_stop: bool = True, progress: bool = False,
                          progress_every_s: float = 30.0) -> dict[str, Any]:
    """Run (this shard's) unfinished cells in vmapped batches, writing each finished cell and the
    progress payload ``record.json`` atomically; the payload also holds the partial curves of the
    runs in flight (refreshed every ``progress_every_s`` seconds and when ``max_seconds`` ends)."""
    from grokking_theory._io import write_json
    from grokking_theory._sweep import CellWriter, SweepStore

    cells, cfgs, grid = sweep_configs(base, axes, seeds, quick_axes=quick_axes)
    meta = {"kind": "transformer-diagram", "lag": lag, "grid": grid}
    store = SweepStore(out, meta)
    store.start()
    k, n = shard
    mine = [c for c in cells if c.index % n == k]
    done = store.done(mine) if resume else {}
    todo = [c for c in mine if c.key not in done]

    in_flight: dict[str, Any] = {}

    def refresh() -> None:
        write_json(Path(out) / "record.json",
                   transformer_payload(grid, store.done(cells), cells, lag=lag, in_flight=in_flight))

    t0 = time.perf_counter()
    if device == "cpu":
        torch.set_num_threads(1)
    for start in range(0, len(todo), batch):
        chunk = todo[start: start + batch]
        left = None if max_seconds is None else max_seconds - (time.perf_counter() - t0)
        if left is not None and left <= 0:
            break
        writer = CellWriter(out, meta, chunk, after=refresh)

        def partial(step: int, runs: dict[int, dict], chunk: list = chunk) -> None:
            in_flight.clear()
            in_flight.update(in_flight_summary(step, {chunk[i].key: c for i, c in runs.items()}))
            refresh()

        in_flight.clear()
        train_modadd_batched([cfgs[c.index] for c in chunk], device=device, early_stop=early_stop,
                             max_seconds=left, on_finish=writer, on_progress=partial,
                             progress_every_s=progress_every_s, progress=progress)
        if not (max_seconds is not None and time.perf_counter() - t0 >= max_seconds):
            in_flight.clear()  # the chunk ran to its end: every run of it is a finished cell
    refresh()
    found = store.done(cells)
    return {"out": str(out), "cells": len(cells), "finished": len(found), "shard": f"{k}/{n}",
            "seconds": round(time.perf_counter() - t0, 1),
            **({"in_flight_step": in_flight["step"], "in_flight_runs": in_flight["runs"]} if in_flight else {})}
