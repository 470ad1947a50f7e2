"""A small library trainer: AdamW, linear warmup + cosine decay, gradient clipping, tqdm,
safetensors checkpoints, and DDP when launched by `torchrun` (gloo on CPU, nccl on CUDA)."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from factorization_curse._objectives import Objective, objective_loss


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 64  # per process
    lr: float = 1e-3
    weight_decay: float = 1e-4  # on matrices/embeddings only
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 0  # 0: ten evaluations over the run
    loss_weighting: str = "token-mean"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")


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


def save_checkpoint(model: nn.Module, directory: Path, meta: dict) -> None:
    """model.safetensors + model.json, each written to a temp file then moved into place."""
    from safetensors.torch import save_model

    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "model.safetensors.tmp"
    save_model(model, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, directory / "model.safetensors")
    tmpj = directory / "model.json.tmp"
    tmpj.write_text(json.dumps(meta, indent=2))
    os.replace(tmpj, directory / "model.json")


def load_checkpoint(model: nn.Module, directory: Path) -> nn.Module:
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
) -> list[dict]:
    """Train `model` on the rows of `data` (N, T) and return the history (loss, evaluations).

    Under DDP every process draws a disjoint slice of the same shuffled global batch, gradients
    are averaged by DDP, and only rank 0 evaluates and reports progress.
    """
    from tqdm.auto import tqdm

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
    global_batch = cfg.batch_size * world
    perm = torch.randperm(n, generator=order_gen)
    cursor = 0
    eval_every = cfg.eval_every or max(1, cfg.steps // 10)
    history: list[dict] = []
    start = time.perf_counter()
    bar = tqdm(range(cfg.steps), disable=not progress or rank != 0, desc=f"{objective.name}", leave=False)
    running = None
    for step in bar:
        if cursor + global_batch > n:
            perm = torch.randperm(n, generator=order_gen)
            cursor = 0
        idx = perm[cursor : cursor + global_batch]
        if idx.numel() < global_batch:  # dataset smaller than a global batch: sample with replacement
            idx = torch.randint(0, n, (global_batch,), generator=order_gen)
        cursor += global_batch
        batch = data[idx[rank * cfg.batch_size : (rank + 1) * cfg.batch_size]].to(device)
        loss = objective_loss(
            net, family, objective, batch, noise_gen, pad_id=pad_id, loss_weighting=cfg.loss_weighting
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
            if evaluate is not None and rank == 0:
                record.update(evaluate(model))
            history.append(record)
    if world > 1:  # DDP sanity check: every rank must end with rank 0's parameters
        import torch.distributed as dist

        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        ref = flat.clone()
        dist.broadcast(ref, 0)
        diff = (flat - ref).abs().max()
        dist.all_reduce(diff, op=dist.ReduceOp.MAX)
        history[-1]["ddp_max_param_diff"] = diff.item()
    return history


def config_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)
