"""Reverse process: random-order iterative unmasking, several properties per step ("leaps").

All masked properties share one unmasking rate, so the order in which they are revealed is
uniformly random and independent of the model. The sampler draws that order once per entity and
reveals ``leaps`` properties per network call, each sampled from the model's conditional given
everything revealed so far. ``leaps >= D`` is one-shot masked modelling (every property from one
call, conditionally independent), the paper's one-step ablation.
"""

from __future__ import annotations

import math

import torch

from entity_diffusion._schema import Encoded


class UnmaskingSampler:
    """Sampler object, separate from the model (as diffusers separates schedulers)."""

    def __init__(self, *, leaps: int = 1, temperature: float = 1.0) -> None:
        if leaps < 1:
            raise ValueError(f"leaps must be >= 1, got {leaps}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        self.leaps = leaps
        self.temperature = temperature

    def unmasking_ranks(self, known: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Uniformly random order of the unknown properties of each entity: rank 0, 1, ...;
        known properties get ranks after all unknown ones."""
        scores = torch.rand(known.shape, generator=generator, device=known.device)
        scores = scores.masked_fill(known, 2.0)
        return scores.argsort(1).argsort(1)

    def n_steps(self, known: torch.Tensor) -> int:
        most = int((~known).sum(1).max().item()) if known.numel() else 0
        return math.ceil(most / self.leaps)

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module, batch: Encoded, known: torch.Tensor, *,
                 generator: torch.Generator | None = None) -> Encoded:
        """Fill every property not in ``known`` (B, D); the known values are kept as they are."""
        known = known.clone()
        ranks = self.unmasking_ranks(known, generator)
        unknown = ~known
        state = batch.clone()
        for step in range(self.n_steps(known)):
            which = unknown & (ranks >= step * self.leaps) & (ranks < (step + 1) * self.leaps)
            hidden = model(state, known)
            state = model.sample_into(hidden, state, which, temperature=self.temperature, generator=generator)
            known = known | which
        state.present = torch.ones_like(state.present)
        return state


def empty_batch(model: torch.nn.Module, n: int, device: torch.device | str = "cpu") -> Encoded:
    """n entities with every property unknown (placeholders), for unconditional generation."""
    from entity_diffusion._schema import BOS, EOS, PAD

    texts = []
    for length in model.text_lengths:
        t = torch.full((n, length), PAD, dtype=torch.long, device=device)
        t[:, 0], t[:, 1] = BOS, EOS
        texts.append(t)
    return Encoded(
        torch.zeros(n, model.n_num, device=device),
        torch.zeros(n, model.n_cat, dtype=torch.long, device=device),
        texts,
        torch.zeros(n, model.n_props, dtype=torch.bool, device=device),
    )
