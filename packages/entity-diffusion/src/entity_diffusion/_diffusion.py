"""Absorbing-state (masking) diffusion over whole properties: the forward process and the ELBO.

Each property is a continuous-time Markov chain that jumps to an absorbing MASK state. With
pi = 1 - exp(-gamma(t)) the probability of being masked at time t, the rate schedule drops out and
the ELBO of the paper (Prop. 1) becomes

    L = E_{pi ~ U(0,1)} E_{x~ ~ psi} [ (1 - N/D) / (1 - pi) * D / (N + 1) * sum_{d masked} -log p(x0_d | x~) ]

where psi masks every property independently with probability pi (N masked), then one more
property uniformly among the unmasked ones, and draws with every property masked (N = D) are
dropped. Missing properties are always masked, never in the loss, and do not count in D.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# pi is drawn from U(0, 1) but kept below this: the weight's 1/(1 - pi) would otherwise reach
# 1e7 for float32 draws next to 1, a single-batch variance spike the ELBO does not need.
MAX_PI = 1.0 - 1e-3


@dataclass
class MaskDraw:
    masked: torch.Tensor  # (B, D) bool: masked in x~ (N + 1 present properties per kept row)
    n_masked: torch.Tensor  # (B,) N, before the extra property
    n_present: torch.Tensor  # (B,) D of each entity (its observed properties)
    pi: torch.Tensor  # (B,)
    keep: torch.Tensor  # (B,) False where N = D (Z_t = 0) or the entity has no property


def draw_mask(present: torch.Tensor, generator: torch.Generator | None = None) -> MaskDraw:
    """psi: mask each present property with prob. pi ~ U(0,1), then one more unmasked one."""
    b, d = present.shape
    device = present.device
    pi = torch.rand(b, generator=generator, device=device).clamp_max(MAX_PI)
    masked = (torch.rand(b, d, generator=generator, device=device) < pi[:, None]) & present
    n_masked = masked.sum(1)
    n_present = present.sum(1)
    keep = n_masked < n_present
    candidates = present & ~masked
    scores = torch.rand(b, d, generator=generator, device=device).masked_fill(~candidates, -1.0)
    extra = scores.argmax(1)
    add = torch.zeros_like(masked)
    add[torch.arange(b, device=device), extra] = True
    masked = masked | (add & keep[:, None])
    return MaskDraw(masked, n_masked, n_present, pi, keep)


def elbo_weight(pi: torch.Tensor, n_masked: torch.Tensor, n_present: torch.Tensor) -> torch.Tensor:
    """(1 - N/D) / (1 - pi) * D / (N + 1)."""
    n = n_masked.to(pi.dtype)
    dd = n_present.to(pi.dtype).clamp_min(1)
    return (1 - n / dd) / (1 - pi) * dd / (n + 1)


def masked_nll(model: torch.nn.Module, batch, draw: MaskDraw) -> torch.Tensor:
    """-log p of each masked present property, (B, D); zero elsewhere (missing never enters)."""
    visible = batch.present & ~draw.masked
    hidden = model(batch, visible)
    nll = -model.log_prob(hidden, batch)
    return torch.where(draw.masked & batch.present, nll, torch.zeros_like(nll))


def diffusion_loss(model: torch.nn.Module, batch, *, weighting: str = "elbo",
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Batch estimate of the training objective.

    ``weighting="elbo"``: the paper's ELBO (above), averaged over entities.
    ``weighting="masked-mean"``: plain mean of -log p over masked properties (the GSM code's
    practice), for the ablation.
    """
    draw = draw_mask(batch.present, generator)
    per_entity = masked_nll(model, batch, draw).sum(1)
    if weighting == "elbo":
        weighted = elbo_weight(draw.pi, draw.n_masked, draw.n_present) * per_entity
    elif weighting == "masked-mean":
        weighted = per_entity / (draw.n_masked + 1).to(per_entity.dtype)
    else:
        raise ValueError(f"weighting must be 'elbo' or 'masked-mean', got {weighting!r}")
    return torch.where(draw.keep, weighted, torch.zeros_like(weighted)).sum() / len(batch)
