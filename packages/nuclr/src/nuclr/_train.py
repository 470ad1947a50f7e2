"""Training: masked multi-task MSE with per-task normalisation, AdamW + cosine, safetensors checkpoints."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from nuclr._dataset import (
    DEFAULT_TASKS,
    TaskRows,
    binding_formula,
    check_tasks,
    mass_partners,
    priors,
)
from nuclr._model import ModelConfig, NuCLR

FORMAT_VERSION = 2
OBSERVABLE_MODES = ("heads", "surface")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; the defaults train on a 2-core CPU in a few minutes."""

    tasks: tuple[str, ...] = DEFAULT_TASKS
    width: int = 128
    depth: int = 2
    body: str = "residual"
    lipschitz_const: float = 20.0
    dropout: float = 0.0
    epochs: int = 200
    batch_size: int = 1024
    lr: float = 3e-3
    weight_decay: float = 1e-2
    warmup_frac: float = 0.02
    min_lr_frac: float = 0.01
    grad_clip: float = 1.0
    residual_table: str | None = None
    min_z: int = 8
    min_n: int = 8
    measured_only: bool = True
    observables: str = "heads"  # chosen on validation (tools/bench/nuclr_models.py): surface was 10 % worse
    optimizer: str = "adamw"
    mup_base_width: int = 64
    # heads mode only: weight of a loss tying each derived head to the same observable computed
    # from the binding head at its formula's nuclei (0 = off; tried on validation, see README)
    consistency_weight: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", check_tasks(tuple(self.tasks)))
        if self.observables not in OBSERVABLE_MODES:
            raise ValueError(f"TrainConfig.observables must be one of {OBSERVABLE_MODES}, got {self.observables!r}")
        if self.observables == "surface" and "binding" not in self.tasks:
            raise ValueError("TrainConfig.observables='surface' needs the 'binding' task (the mass surface)")
        if self.optimizer not in ("adamw", "mup"):
            raise ValueError(f"TrainConfig.optimizer must be 'adamw' or 'mup', got {self.optimizer!r}")
        if isinstance(self.mup_base_width, bool) or not isinstance(self.mup_base_width, int) or self.mup_base_width < 1:
            raise ValueError(f"TrainConfig.mup_base_width must be an integer >= 1, got {self.mup_base_width!r}")
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"TrainConfig.{name} must be an integer >= 1, got {v!r}")
        if self.consistency_weight and self.observables != "heads":
            raise ValueError("TrainConfig.consistency_weight > 0 needs observables='heads' (surface mode is "
                             "consistent by construction)")
        if self.consistency_weight and "binding" not in self.tasks:
            raise ValueError("TrainConfig.consistency_weight > 0 needs the 'binding' task (the mass surface)")
        for name in ("lr", "weight_decay", "warmup_frac", "min_lr_frac", "grad_clip", "consistency_weight"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"TrainConfig.{name} must be a finite number >= 0, got {v!r}")
        if self.residual_table is not None:
            from nuclr._physics import THEORY_TABLES

            if self.residual_table not in THEORY_TABLES:
                raise ValueError(f"TrainConfig.residual_table must be one of {sorted(THEORY_TABLES)} or None")
        self.model_config()  # validates the shape fields

    def model_config(self) -> ModelConfig:
        """The network shape this config trains."""
        return ModelConfig(n_tasks=len(self.tasks), width=self.width, depth=self.depth, dropout=self.dropout,
                           body=self.body, lipschitz_const=self.lipschitz_const,
                           readout_multiplier=self.mup_base_width / self.width if self.optimizer == "mup" else 1.0)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Config from a dict (unknown keys are an error); 0.1 configs, which lack
        ``observables``, load as ``"heads"``, the only mode 0.1 had."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; known: {sorted(names)}")
        d = dict(d)
        if "tasks" in d:
            d["tasks"] = tuple(d["tasks"])
        d.setdefault("observables", "heads")
        return cls(**d)

    def to_dict(self) -> dict:
        """JSON-ready dict of every field."""
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        return d


QUICK_OVERRIDES = {"epochs": 60, "width": 96}


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda if available else cpu; a clear error for cuda without CUDA or a bad name."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device} requested but CUDA is not available")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {device!r}")
    return torch.device(device)


class Trained:
    """A trained network plus what is needed to map its outputs back to physical units."""

    def __init__(self, model: NuCLR, config: TrainConfig, mean: np.ndarray, std: np.ndarray,
                 seen_z: list[int] | None = None, seen_n: list[int] | None = None) -> None:
        self.model = model
        self.config = config
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        # Z and N values of the training rows (an embedding row no example touched is untrained)
        self.seen_z = None if seen_z is None else sorted(int(v) for v in seen_z)
        self.seen_n = None if seen_n is None else sorted(int(v) for v in seen_n)
        self.steps: int | None = None  # optimizer steps taken (set by ``train``)

    def check_seen(self, z: int, n: int) -> None:
        """Raise ``ValueError`` when Z or N never occurs in the training rows (or is unknown)."""
        if self.seen_z is None or self.seen_n is None:
            raise ValueError("this checkpoint does not record its training nuclei (format 1); retrain it")
        missing = [f"{name}={v}" for name, v, seen in (("Z", z, self.seen_z), ("N", n, self.seen_n)) if v not in seen]
        if missing:
            raise ValueError(
                f"{' and '.join(missing)} never occurs in the training data (Z {self.seen_z[0]}-{self.seen_z[-1]}, "
                f"N {self.seen_n[0]}-{self.seen_n[-1]}, with gaps): its embedding is untrained, no prediction")

    @torch.no_grad()
    def predict_rows(self, z: np.ndarray, n: np.ndarray, task: np.ndarray, batch: int = 8192,
                     via: str | None = None) -> np.ndarray:
        """Physical-unit predictions for each (z, n, task index) row.

        ``via="surface"`` computes every mass-derived observable (S, Q values) from the binding
        energies the network predicts at the nuclei of its formula; ``via="heads"`` reads each
        task's own output. Default: the mode the model was trained in (``config.observables``).
        """
        via = self.config.observables if via is None else via
        if via not in OBSERVABLE_MODES:
            raise ValueError(f"via must be one of {OBSERVABLE_MODES}, got {via!r}")
        z = np.array(z, dtype=np.int64)
        n = np.array(n, dtype=np.int64)
        task = np.array(task, dtype=np.int64)
        out = self._predict_heads(z, n, task, batch)
        if via == "heads" or "binding" not in self.config.tasks:
            return out
        kb = self.config.tasks.index("binding")
        for k, name in enumerate(self.config.tasks):
            sel = np.flatnonzero(task == k)
            if name == "binding" or not sel.size or not mass_partners(name):
                continue
            terms, const = binding_formula(name, z[sel], n[sel])
            value = const.copy()
            for dz, dn, c in terms:
                pz, pn = z[sel] + dz, n[sel] + dn
                ok = (pz >= 0) & (pn >= 0) & (pz <= self.model.config.max_z) & (pn <= self.model.config.max_n)
                b = np.full(sel.size, np.nan)
                b[ok] = self._predict_heads(pz[ok], pn[ok], np.full(int(ok.sum()), kb), batch)
                value += c * b
            out[sel] = value
        return out

    def _predict_heads(self, z: np.ndarray, n: np.ndarray, task: np.ndarray, batch: int) -> np.ndarray:
        # copies: pandas may hand out read-only arrays, which torch.from_numpy warns about
        z = np.array(z, dtype=np.int64)
        n = np.array(n, dtype=np.int64)
        task = np.array(task, dtype=np.int64)
        self.model.eval()
        dev = next(self.model.parameters()).device
        outs = []
        for s in range(0, z.size, batch):
            sl = slice(s, s + batch)
            out = self.model(torch.from_numpy(z[sl]).to(dev), torch.from_numpy(n[sl]).to(dev),
                             torch.from_numpy(task[sl]).to(dev))
            outs.append(out.double().cpu().numpy())
        raw = np.concatenate(outs) if outs else np.zeros(0)
        internal = raw * self.std[task] + self.mean[task]
        names = [self.config.tasks[i] for i in task]
        prior, scale = priors(z, n, names, self.config.residual_table)
        return internal * scale + prior

    def predict(self, z: int, n: int) -> dict[str, float]:
        """Every task's prediction for one nucleus (physical units)."""
        idx = np.arange(len(self.config.tasks))
        vals = self.predict_rows(np.full(idx.size, z), np.full(idx.size, n), idx)
        return {t: float(v) for t, v in zip(self.config.tasks, vals)}

    def save(self, out_dir: Path) -> None:
        """Write ``model.safetensors`` and ``model.json`` (config, normalisation, training Z/N)."""
        from safetensors.torch import save_file

        out_dir.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        tmp = out_dir / "model.safetensors.tmp"
        save_file(state, str(tmp), metadata={"format": "nuclr", "version": str(FORMAT_VERSION)})
        os.replace(tmp, out_dir / "model.safetensors")
        meta = {"format_version": FORMAT_VERSION, "config": self.config.to_dict(),
                "task_mean": self.mean.tolist(), "task_std": self.std.tolist(),
                "seen_z": self.seen_z, "seen_n": self.seen_n}
        _atomic_json(out_dir / "model.json", meta)

    @classmethod
    def load(cls, out_dir: Path, device: str = "cpu") -> Trained:
        """Load a folder written by :meth:`save` (format 1 checkpoints load without training Z/N)."""
        from safetensors.torch import load_file

        out_dir = Path(out_dir)
        for f in ("model.json", "model.safetensors"):
            if not (out_dir / f).exists():
                raise FileNotFoundError(f"{out_dir} has no {f}; train first (nuclr train --out {out_dir})")
        meta = json.loads((out_dir / "model.json").read_text())
        if meta.get("format_version") not in (1, FORMAT_VERSION):
            raise ValueError(f"{out_dir / 'model.json'}: format_version {meta.get('format_version')} != {FORMAT_VERSION}")
        config = TrainConfig.from_dict(meta["config"])
        model = NuCLR(config.model_config())
        model.load_state_dict(load_file(str(out_dir / "model.safetensors"), device="cpu"))
        model.to(resolve_device(device))
        return cls(model, config, np.array(meta["task_mean"]), np.array(meta["task_std"]),
                   meta.get("seen_z"), meta.get("seen_n"))


def _atomic_json(path: Path, obj: object) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def _lr_factor(step: int, total: int, warmup: int, min_frac: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _lr_factor_progress(progress: float, warmup_frac: float, min_frac: float) -> float:
    """Linear warm-up then cosine, as a function of the fraction of the run done (0..1).

    Used by time-boxed training, where the run's length is its wall-clock window, not a step count.
    """
    progress = min(1.0, max(0.0, progress))
    if warmup_frac > 0 and progress < warmup_frac:
        return max(progress / warmup_frac, 1e-3)
    rest = (progress - warmup_frac) / max(1e-12, 1.0 - warmup_frac)
    return min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, rest)))


def _save_state(out_dir: Path, opt: torch.optim.Optimizer, step: int, gen: torch.Generator) -> None:
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {"rng": gen.get_state()}
    sd = opt.state_dict()
    for pid, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"opt.{pid}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    tmp = out_dir / "train_state.safetensors.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, out_dir / "train_state.safetensors")
    _atomic_json(out_dir / "train_state.json", {"step": step, "param_groups": sd["param_groups"]})


def _load_state(out_dir: Path, opt: torch.optim.Optimizer, gen: torch.Generator) -> int:
    from safetensors.torch import load_file

    meta = json.loads((out_dir / "train_state.json").read_text())
    tensors = load_file(str(out_dir / "train_state.safetensors"))
    gen.set_state(tensors.pop("rng"))
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        _, pid, k = key.split(".", 2)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return int(meta["step"])


def train(
    rows: TaskRows,
    config: TrainConfig,
    *,
    seed: int = 0,
    device: str = "cpu",
    out_dir: Path | None = None,
    resume: bool = False,
    quiet: bool = True,
    checkpoint_every: int = 0,
    stop_after: int | None = None,
    callback=None,
    callback_every: int = 0,
    deadline: float | None = None,
) -> Trained:
    """Train a NuCLR model on ``rows`` (built with the same tasks/residual table as ``config``).

    With ``out_dir`` the model (safetensors + JSON) and the optimizer/RNG state are saved at the end
    and every ``checkpoint_every`` steps; ``resume=True`` continues from them. ``stop_after`` ends
    the run early after that many steps (the schedule still assumes the full length), as if the
    process had been interrupted. ``callback(step, total, loss, trained)`` is called every
    ``callback_every`` steps (learning curves); the model is in train mode again afterwards.

    ``deadline`` (a ``time.time()`` value) makes the run time-boxed: the warm-up + cosine schedule
    follows the fraction ``max(step / total, elapsed / window)`` of the run done, where the window
    runs from the first step to the deadline, and training stops when either reaches 1. So the run
    uses its whole window whatever the speed of its first steps (no up-front step timing), and
    ``config.epochs`` is only a cap; a deadline already passed still takes one step.
    ``Trained.steps`` holds the number of steps taken.
    """
    if rows.tasks != config.tasks:
        raise ValueError(f"rows were built for tasks {rows.tasks}, config has {config.tasks}")
    if deadline is not None and not (isinstance(deadline, (int, float)) and math.isfinite(deadline)):
        raise ValueError(f"train: deadline must be a finite time.time() value, got {deadline!r}")
    if len(rows) == 0:
        raise ValueError("no training rows")
    y = rows.internal
    if not np.all(np.isfinite(y)):
        raise ValueError("training targets contain NaN or inf")
    n_tasks = len(config.tasks)
    mean = np.zeros(n_tasks)
    std = np.ones(n_tasks)
    for k in range(n_tasks):
        yk = y[rows.task == k]
        if yk.size:
            mean[k] = yk.mean()
            std[k] = yk.std() if yk.size > 1 and yk.std() > 0 else 1.0
    ynorm = (y - mean[rows.task]) / std[rows.task]
    counts = np.bincount(rows.task, minlength=n_tasks).astype(np.float64)
    # each task contributes equally to the loss, whatever its number of rows
    row_w = (len(rows) / (n_tasks * np.maximum(counts, 1)))[rows.task]

    torch.manual_seed(seed)
    dev = resolve_device(device)
    model = NuCLR(config.model_config()).to(dev)
    opt = make_optimizer(model, config)
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = max(1, math.ceil(len(rows) / config.batch_size))
    total = config.epochs * steps_per_epoch
    warmup = max(1, int(config.warmup_frac * total))
    step = 0
    trained = Trained(model, config, mean, std, sorted(set(rows.z.tolist())), sorted(set(rows.n.tolist())))
    if resume:
        if out_dir is None or not (out_dir / "train_state.json").exists():
            raise FileNotFoundError(f"cannot resume: no train_state.json in {out_dir}")
        model.load_state_dict(Trained.load(out_dir).model.state_dict())
        step = _load_state(out_dir, opt, gen)
    surface = _surface_terms(rows, config, mean, std)
    if surface is not None:
        surf_mask, p_z, p_n, p_w, p_off = (torch.from_numpy(a).to(dev) for a in surface)
        kb = config.tasks.index("binding")
        mb, sb = float(mean[kb]), float(std[kb])

    tz = torch.from_numpy(np.array(rows.z, dtype=np.int64)).to(dev)
    tn = torch.from_numpy(np.array(rows.n, dtype=np.int64)).to(dev)
    tt = torch.from_numpy(np.array(rows.task, dtype=np.int64)).to(dev)
    ty = torch.from_numpy(ynorm).float().to(dev)
    tw = torch.from_numpy(row_w).float().to(dev)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=step, disable=True if quiet else None, desc="train", unit="step")
    model.train()
    loss_val = math.nan
    end = total if stop_after is None else min(total, stop_after)
    if deadline is not None:
        import time

        t_first = time.time()  # the window runs from here (set-up above is not part of it)
        window = max(1e-3, deadline - t_first)
    last_callback = -1
    timed_out = False
    loss = None
    while step < end and not timed_out:
        perm = torch.randperm(len(rows), generator=gen).to(dev)
        for s in range(0, len(rows), config.batch_size):
            if step >= end:
                break
            if deadline is not None:
                progress = max(step / total, (time.time() - t_first) / window)
                if progress >= 1.0 and step > 0:
                    timed_out = True
                    break
                factor = _lr_factor_progress(progress, config.warmup_frac, config.min_lr_frac)
            else:
                factor = _lr_factor(step, total, warmup, config.min_lr_frac)
            idx = perm[s : s + config.batch_size]
            for g in opt.param_groups:
                g["lr"] = config.lr * g.get("lr_scale", 1.0) * factor
            pred = model(tz[idx], tn[idx], tt[idx])
            res = pred - ty[idx]
            tie = None
            if surface is not None:
                # derived observables from the binding energies predicted at their formula's nuclei
                m = surf_mask[idx]
                si = idx[m]
                if si.numel():
                    npart = p_z.shape[1]
                    bz = p_z[si].reshape(-1)
                    bn = p_n[si].reshape(-1)
                    b_out = model(bz, bn, torch.full_like(bz, kb)).reshape(-1, npart) * sb + mb
                    res_surface = p_off[si] + (p_w[si] * b_out).sum(1)
                    if config.observables == "surface":
                        res = res.clone()
                        res[m] = res_surface
                    else:  # consistency loss: the head's residual minus the surface's = head - surface
                        tie = (tw[si] * (res[m] - res_surface) ** 2).sum() / tw[idx].sum()
            loss = (tw[idx] * res**2).sum() / tw[idx].sum()
            if tie is not None:
                loss = loss + config.consistency_weight * tie
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            step += 1
            if step % 50 == 0 or step == total:
                loss_val = loss.detach().item()
                if not math.isfinite(loss_val):
                    raise FloatingPointError(f"training loss became {loss_val} at step {step}")
                bar.set_postfix(loss=f"{loss_val:.2e}")
            bar.update(1)
            if callback is not None and callback_every and (step % callback_every == 0 or step == end):
                callback(step, total, float(loss.detach().item()), trained)
                last_callback = step
                model.train()
            if out_dir is not None and checkpoint_every and step % checkpoint_every == 0:
                trained.save(out_dir)
                _save_state(out_dir, opt, step, gen)
    bar.close()
    trained.steps = step
    if callback is not None and callback_every and loss is not None and last_callback != step:
        callback(step, step, float(loss.detach().item()), trained)  # the final point of a time-boxed run
    if out_dir is not None:
        trained.save(out_dir)
        _save_state(out_dir, opt, step, gen)
    model.eval()
    return trained


def _surface_terms(rows: TaskRows, config: TrainConfig, mean: np.ndarray, std: np.ndarray):
    """Per-row tensors of the mass-surface (or consistency) loss, or None in plain heads mode.

    A derived row's normalised residual is ``off + sum_i w_i * o_i`` where ``o_i`` is the binding
    output (de-standardised) at partner i: the float64 parts (formula constant, priors, target) are
    folded into ``off`` so that float32 never subtracts two binding energies of ~1e6 keV.
    """
    if config.observables != "surface" and not config.consistency_weight:
        return None
    surf = np.zeros(len(rows), bool)
    npart = 2
    p_z = np.repeat(rows.z[:, None], npart, 1).astype(np.int64)
    p_n = np.repeat(rows.n[:, None], npart, 1).astype(np.int64)
    p_w = np.zeros((len(rows), npart))
    p_off = np.zeros(len(rows))
    for k, name in enumerate(config.tasks):
        sel = np.flatnonzero(rows.task == k)
        if name == "binding" or not sel.size or not mass_partners(name):
            continue
        terms, const = binding_formula(name, rows.z[sel], rows.n[sel])
        if len(terms) > npart:
            raise ValueError(f"task {name} has {len(terms)} mass terms; the surface loss handles {npart}")
        off = const - rows.value[sel]
        for i, (dz, dn, c) in enumerate(terms):
            pz, pn = rows.z[sel] + dz, rows.n[sel] + dn
            if pz.min() < 0 or pn.min() < 0:
                raise ValueError(f"task {name}: a partner nucleus has negative Z or N")
            prior, scale = priors(pz, pn, ["binding"] * pz.size, config.residual_table)
            if not np.all(np.isfinite(prior)):
                raise ValueError(f"task {name}: the residual table lacks a partner nucleus's binding energy")
            p_z[sel, i], p_n[sel, i] = pz, pn
            off = off + c * prior
            p_w[sel, i] = c * scale / std[k]
        p_off[sel] = off / std[k]
        surf[sel] = True
    return surf, p_z, p_n, p_w.astype(np.float32), p_off.astype(np.float32)


def make_optimizer(model: NuCLR, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with no decay on biases; ``optimizer="mup"`` adds muP's Adam scaling.

    muP (Yang et al. 2022, as ``mup.MuAdamW`` does it): weights whose fan-in and fan-out both
    grow with the width (the body's matrices) get the learning rate ``lr * base_width / width``;
    embeddings, biases and the readout keep ``lr``; the readout's input is scaled by
    ``base_width / width`` in the model (``ModelConfig.readout_multiplier``). The ``mup`` package itself
    is not used: it is not installed where the paper-scale job runs.
    """
    groups: list[dict] = []
    mult = config.mup_base_width / config.width if config.optimizer == "mup" else 1.0
    hidden_ids = {id(m.weight) for m in model.body.modules() if isinstance(m, torch.nn.Linear)}
    buckets: dict[tuple[float, float], list] = {}
    for name, p in model.named_parameters():
        wd = 0.0 if name.endswith("bias") else config.weight_decay
        lr_scale = mult if id(p) in hidden_ids else 1.0
        buckets.setdefault((wd, lr_scale), []).append(p)
    for (wd, lr_scale), params in buckets.items():
        groups.append({"params": params, "weight_decay": wd, "lr_scale": lr_scale, "lr": config.lr * lr_scale})
    return torch.optim.AdamW(groups, lr=config.lr)


def quick_config(config: TrainConfig) -> TrainConfig:
    """``config`` with the smoke-size overrides (fewer epochs, narrower)."""
    return replace(config, **QUICK_OVERRIDES)
