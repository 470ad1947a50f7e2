"""Initial state of a toy run, drawn in the official random-number order."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from grokking_theory._config import ToyConfig


@dataclass
class InitialState:
    """Everything a run draws before its first update (float32 tensors, CPU)."""

    templates: torch.Tensor  # (2p-1, n_out) regression targets (also drawn, unused, for CE)
    train_ids: np.ndarray  # in the drawn order (the official loss sums in this order)
    test_ids: np.ndarray  # sorted
    reprs: torch.Tensor  # (p, reprs_dim)
    decoder: list[tuple[torch.Tensor, torch.Tensor]]  # [(weight (out, in), bias (out,))] x 3
    numpy_rng: np.random.RandomState  # continues with the per-step batch permutations


def _linear(fan_in: int, fan_out: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    # nn.Linear.reset_parameters, drawing from an explicit generator (same stream, same order)
    weight = torch.empty(fan_out, fan_in)
    torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=gen)
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    bias = torch.empty(fan_out).uniform_(-bound, bound, generator=gen)
    return weight, bias


def _mlp(d_in: int, width: int, d_out: int, gen: torch.Generator) -> list:
    return [_linear(d_in, width, gen), _linear(width, width, gen), _linear(width, d_out, gen)]


def initial_state(cfg: ToyConfig) -> InitialState:
    """Draw templates, split, embedding and decoder exactly as the official code does."""
    rs = np.random.RandomState(cfg.seed)  # == np.random.seed(seed) on the global legacy RNG
    gen = torch.Generator().manual_seed(cfg.seed)  # == torch.manual_seed(seed) on CPU
    n = cfg.n_samples
    if cfg.rng_order == "sweep":
        rs.normal(0, 1, size=(cfg.p, cfg.n_out))  # x-templates: drawn, never used
    if cfg.rng_order == "sweep" and cfg.loss == "ce":
        templates = np.eye(cfg.n_out)  # the classification notebook: one-hot targets, no draw
    else:
        templates = rs.normal(0, 1, size=(2 * cfg.p - 1, cfg.n_out)) * cfg.label_scale
    train_ids = rs.choice(n, cfg.train_num, replace=False)
    test_ids = np.setdiff1d(np.arange(n), train_ids)
    if cfg.rng_order == "sweep":
        _mlp(cfg.p, cfg.width, cfg.reprs_dim, gen)  # the notebooks' unused encoder
        decoder = _mlp(cfg.reprs_dim, cfg.width, cfg.n_out, gen)
        reprs = (torch.rand(cfg.p, cfg.reprs_dim, generator=gen) - 0.5) * cfg.init_scale_reprs
    else:
        reprs = (torch.rand(cfg.p, cfg.reprs_dim, generator=gen) - 0.5) * cfg.init_scale_reprs
        decoder = _mlp(cfg.reprs_dim, cfg.width, cfg.n_out, gen)
    decoder = [(w * cfg.init_scale_nn, b * cfg.init_scale_nn) for w, b in decoder]
    return InitialState(
        templates=torch.tensor(templates, dtype=torch.float32),
        train_ids=np.asarray(train_ids, dtype=np.int64),
        test_ids=test_ids.astype(np.int64),
        reprs=reprs,
        decoder=decoder,
        numpy_rng=rs,
    )
