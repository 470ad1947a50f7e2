"""A small library trainer: AdamW, linear warmup + cosine decay, gradient clipping, tqdm,
safetensors checkpoints, and DDP when launched by `torchrun` (gloo on CPU, nccl on CUDA)."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path

import torch
from torch import nn

from factorization_curse._objectives import Objective, objective_loss


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, schedule and budget of one training run (see `train`)."""

    steps: int = 1000
    batch_size: int = 64  # per process
    lr: float = 1e-3
    weight_decay: float = 1e-4  # on matrices/embeddings only
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 0  # 0: ten evaluations over the run
    loss_weighting: str = "token-mean"
    # wall-clock budget of the training loop (0: none). After 50 steps the run measures its speed
    # and shortens `steps` (and with it the whole lr schedule) to fit; the history says so.
    max_seconds: float = 0.0

    def __post_init__(self) -> None:
        check_schedule(self)
        if not self.max_seconds >= 0:
            raise ValueError(f"max_seconds must be >= 0, got {self.max_seconds}")


def check_schedule(cfg: object, counts: tuple[str, ...] = ("steps", "batch_size")) -> None:
    """The checks every optimiser config shares (TrainConfig, FinetuneConfig): the `counts` fields
    are >= 1, lr > 0, warmup_fraction in [0, 1); ValueError naming the field otherwise."""
    for name in counts:
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if not cfg.lr > 0:
        raise ValueError(f"lr must be > 0, got {cfg.lr}")
    if not 0 <= cfg.warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {cfg.warmup_fraction}")


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of the base lr at `step` (0-based): linear warmup, then cosine to min_lr_ratio."""
    warm = max(1, round(cfg.warmup_fraction * cfg.steps))
    if step < warm:
        return (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, cfg.steps - warm))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def dist_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) unless torch.distributed is initialised."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def maybe_init_distributed(device: torch.device) -> bool:
    """Initialise the process group when launched by torchrun (WORLD_SIZE > 1)."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {device!r}")
    return torch.device(device)


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """`write(tmp)` to a temp file beside `path`, then rename it into place: a kill never leaves
    a half-written file under the final name."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(model: nn.Module, directory: Path, meta: dict) -> None:
    """model.safetensors + model.json, each written to a temp file then moved into place."""
    from safetensors.torch import save_model

    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / "model.safetensors", lambda tmp: save_model(model, str(tmp), metadata={"format": "pt"}))
    atomic_write(directory / "model.json", lambda tmp: tmp.write_text(json.dumps(meta, indent=2)))


def load_checkpoint(model: nn.Module, directory: Path) -> nn.Module:
    """Load `directory/model.safetensors` into `model` (in place) and return it."""
    from safetensors.torch import load_model

    load_model(model, str(Path(directory) / "model.safetensors"))
    return model


def train(
    model: nn.Module,
    family: str,
    objective: Objective,
    data: torch.Tensor,
    cfg: TrainConfig,
    *,
    pad_id: int,
    seed: int = 0,
    device: torch.device | str = "cpu",
    evaluate: Callable[[nn.Module], dict] | None = None,
    progress: bool = True,
    state_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    targets: torch.Tensor | None = None,
    on_record: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
    """Train `model` on the rows of `data` (N, T) and return the history (loss, evaluations).

    `targets` (N, T) bool marks the positions the loss may score (default: every non-padding
    position after [BOS]). `evaluate` runs on every process (it may use collectives); only
    rank 0's result is recorded.

    Under DDP every process draws a disjoint slice of the same shuffled global batch, gradients
    are averaged by DDP, and only rank 0 evaluates and reports progress.

    With `state_dir`, the full training state (model, optimizer, schedule, data order, random
    generators, history) is written there every `checkpoint_every` steps (0: at every
    evaluation), to a temp file then renamed, so an interrupted run keeps its last state. With
    `resume`, training continues from that state; the resumed run ends with the same parameters
    as an uninterrupted one.

    `on_record(history)` is called on rank 0 after every evaluation (e.g. to write progress to
    disk, so a run killed by a time limit keeps its learning curve).
    """
    from tqdm.auto import tqdm

    if checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
    device = torch.device(device)
    rank, world = dist_info()
    model.to(device)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    order_gen = torch.Generator().manual_seed(seed)  # same on every rank: shared data order
    noise_gen = torch.Generator().manual_seed(seed * 1009 + 7919 * rank + 1)
    n = data.shape[0]
    # the whole (small) data set lives on the device: no host-to-device copy per step
    data = data.to(device)
    if targets is not None:
        targets = targets.to(device)
    global_batch = cfg.batch_size * world
    perm = torch.randperm(n, generator=order_gen)
    cursor = 0
    eval_every = cfg.eval_every or max(1, cfg.steps // 10)
    history: list[dict] = []
    running = None
    first = 0
    elapsed = 0.0
    if resume and state_dir is not None and (Path(state_dir) / STATE_FILE).exists():
        st = _load_state(Path(state_dir), cfg, rank, world)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        order_gen.set_state(st["order_gen"])
        noise_gen.set_state(st["noise_gen"])
        perm, cursor, running = st["perm"], st["cursor"], st["running"]
        history, first, elapsed = st["history"], st["step"], st["seconds"]
    every = checkpoint_every or eval_every
    start = time.perf_counter() - elapsed
    tty = sys.stderr.isatty()
    # a bar on a terminal only; piped output gets one line per evaluation (~10 % of the run)
    bar = tqdm(range(first, cfg.steps), disable=not (progress and rank == 0 and tty), desc=f"{objective.name}",
               leave=False, initial=first, total=cfg.steps)
    calibrate_at = first + 50 if cfg.max_seconds > 0 and first == 0 else -1
    budgeted_from = None
    for step in bar:
        if step >= cfg.steps:
            break
        if step == calibrate_at:
            per_step = (time.perf_counter() - start) / step
            horizon = torch.tensor([max(step + 1, min(cfg.steps, int(0.95 * cfg.max_seconds / per_step)))])
            if world > 1:
                import torch.distributed as dist

                dist.broadcast(horizon, 0)
            if int(horizon) < cfg.steps:
                budgeted_from = cfg.steps
                cfg = replace(cfg, steps=int(horizon))  # the lr schedule follows (closure on cfg)
                eval_every = cfg.eval_every or max(1, cfg.steps // 10)
                every = checkpoint_every or eval_every
                bar.total = cfg.steps
        if cursor + global_batch > n:
            perm = torch.randperm(n, generator=order_gen)
            cursor = 0
        idx = perm[cursor : cursor + global_batch]
        if idx.numel() < global_batch:  # dataset smaller than a global batch: sample with replacement
            idx = torch.randint(0, n, (global_batch,), generator=order_gen)
        cursor += global_batch
        mine = idx[rank * cfg.batch_size : (rank + 1) * cfg.batch_size]
        mine = mine.to(device)
        batch = data[mine]
        loss = objective_loss(
            net, family, objective, batch, noise_gen, pad_id=pad_id, loss_weighting=cfg.loss_weighting,
            targets=None if targets is None else targets[mine],
        )
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at step {step} ({objective.name})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if rank == 0 and progress:
            bar.set_postfix(loss=f"{running:.3f}")
        last = step + 1 == cfg.steps
        if (step + 1) % eval_every == 0 or last:
            record = {"step": step + 1, "loss": running, "lr": sched.get_last_lr()[0],
                      "seconds": time.perf_counter() - start}
            if budgeted_from is not None:
                record["steps_planned"] = budgeted_from
                record["steps_budgeted"] = cfg.steps
            if evaluate is not None:  # every rank: the evaluation may be a collective
                result = evaluate(model)
                if rank == 0:
                    record.update(result)
            history.append(record)
            if on_record is not None and rank == 0:
                on_record(history)
            if progress and rank == 0 and not tty:
                accs = " ".join(f"{k.removeprefix('val_').split('_')[0]}={v:.3f}" for k, v in record.items()
                                if k.endswith("_accuracy") and "token" not in k and v is not None)
                print(f"{objective.name} step {step + 1}/{cfg.steps} loss={running:.3f} {accs}".rstrip(),
                      file=sys.stderr, flush=True)
        if state_dir is not None and ((step + 1) % every == 0 or last):
            _save_state(Path(state_dir), {
                "step": step + 1, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "order_gen": order_gen.get_state(),
                "noise_gen": noise_gen.get_state(), "perm": perm, "cursor": cursor,
                "running": running, "history": history, "seconds": time.perf_counter() - start,
                "config": asdict(cfg), "world_size": world,
            }, rank)
    if world > 1:  # DDP sanity check: every rank must end with rank 0's parameters
        import torch.distributed as dist

        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        ref = flat.clone()
        dist.broadcast(ref, 0)
        diff = (flat - ref).abs().max()
        dist.all_reduce(diff, op=dist.ReduceOp.MAX)
        history[-1]["ddp_max_param_diff"] = diff.item()
    return history


STATE_FILE = "state.pt"


def _rank_file(rank: int) -> str:
    return STATE_FILE if rank == 0 else f"noise_rank{rank}.pt"


def _atomic_save(obj: object, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


_ABSENT = object()


def config_diff(saved: dict, now: dict, ignore: tuple[str, ...] = (), defaults: dict | None = None) -> dict:
    """{field: (saved value, current value)} for every field that differs.

    A field the saved config lacks (it was added in a later version) counts as its default in
    `defaults`: state saved before the field existed ran with the default's behaviour, so it
    resumes; a non-default value, or a field without a default, is a difference.
    """
    defaults = defaults or {}
    diff = {}
    for k, v in now.items():
        if k in ignore:
            continue
        old = saved.get(k, defaults.get(k, _ABSENT))
        if old != v:
            diff[k] = (saved.get(k), v)
    return diff


def dataclass_defaults(cls) -> dict:
    """{field: default} for the fields of dataclass `cls` that have a plain default (JSON form)."""
    out = {}
    for f in fields(cls):
        if f.default is not MISSING:
            try:
                out[f.name] = json.loads(json.dumps(f.default))
            except TypeError:  # not JSON-representable: no default to fall back on
                pass
    return out


def _save_state(directory: Path, state: dict, rank: int) -> None:
    """Rank 0 writes the whole state; other ranks only their own masking generator."""
    directory.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        _atomic_save(state, directory / STATE_FILE)
    else:
        _atomic_save({"step": state["step"], "noise_gen": state["noise_gen"]}, directory / _rank_file(rank))


def _load_state(directory: Path, cfg: TrainConfig, rank: int, world: int) -> dict:
    st = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=True)
    saved, now = st["config"], asdict(cfg)
    diff = config_diff(saved, now, ignore=("eval_every",), defaults=dataclass_defaults(TrainConfig))
    if diff:
        raise ValueError(
            f"cannot resume from {directory}: the training config differs from the saved one "
            f"(field: (saved, now)) {diff}; use a new output folder or the same settings"
        )
    if st["world_size"] != world:
        raise ValueError(f"cannot resume from {directory}: saved with {st['world_size']} processes, now {world}")
    if rank != 0:
        mine = torch.load(directory / _rank_file(rank), map_location="cpu", weights_only=True)
        if mine["step"] != st["step"]:
            raise ValueError(f"cannot resume from {directory}: rank {rank} state is at step "
                             f"{mine['step']}, rank 0 at {st['step']}")
        st["noise_gen"] = mine["noise_gen"]
    return st


def config_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)
