"""Training objectives: which tokens are predicted from which ([FC] sec. 2).

Every objective is a loss on a batch of token ids (B, T) whose first column is [BOS]. The model
returns logits where position i predicts token i; the objective decides what each position may
read (its visibility) and which positions are scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Objective:
    """A training objective: its kind (ar, mlm, mlm-u, plm), data reversal, masking rate and the
    model families that can train with it."""

    name: str
    kind: str  # "ar" | "mlm" | "mlm-u" | "plm"
    reversal: str = "none"  # "none" | "token" | "entity" | "entity-nodelim"
    mask_rate: float | None = None  # fixed-rate MLM only
    default_family: str = "past"
    families: tuple[str, ...] = ("past",)
    description: str = ""


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("ar", "ar", families=("gpt2", "past"),
                  description="next-token prediction, left to right"),
        Objective("ar-reverse-token", "ar", "token", families=("gpt2", "past"),
                  description="AR on the data plus its token-level reversal"),
        Objective("ar-reverse-entity", "ar", "entity",
                  families=("gpt2", "past"),
                  description="AR on the data plus its entity-preserving reversal, <e> </e> delimiters"),
        Objective("ar-reverse-entity-nodelim", "ar", "entity-nodelim",
                  families=("gpt2", "past"),
                  description="entity-preserving reversal without delimiters (ablation)"),
        Objective("mlm-15", "mlm", mask_rate=0.15, families=("bert", "past"),
                  description="BERT-style MLM, 15% of tokens masked"),
        Objective("mlm-40", "mlm", mask_rate=0.40, families=("bert", "past"),
                  description="MLM, 40% masked"),
        Objective("mlm-85", "mlm", mask_rate=0.85, families=("bert", "past"),
                  description="MLM, 85% masked"),
        Objective("mlm-u", "mlm-u", default_family="past", families=("past", "bert"),
                  description="MLM with a masking rate drawn from U(0,1) per sequence"),
        Objective("plm", "plm", default_family="past", families=("past",),
                  description="permutation LM over full random permutations"),
    )
}

"""Every objective by name: AR, AR on reversed data, fixed-rate MLM, MLM-U and PLM."""

LOSS_WEIGHTINGS = ("token-mean", "sequence-mean", "elbo")
ELBO_EPS = 1e-3


def get_objective(name: str) -> Objective:
    """The objective called `name`; ValueError listing the valid names otherwise."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}; valid objectives: {', '.join(OBJECTIVES)}") from None


def check_family(objective: Objective, family: str) -> None:
    if family not in objective.families:
        raise ValueError(
            f"objective {objective.name!r} cannot train model family {family!r}; "
            f"supported: {list(objective.families)}"
        )


def causal_visibility(t: int, device: torch.device | str) -> torch.Tensor:
    """(T, T) bool: query i reads keys j < i (strict; the model predicts token i at position i)."""
    return torch.ones(t, t, dtype=torch.bool, device=device).tril(-1)


def permutation_visibility(
    b: int, t: int, generator: torch.Generator, targets: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, T, T) bool: query i reads key j iff j comes before i in a random order of 1..T-1.

    [BOS] (position 0) comes first in every order. With `targets` (B, T), the non-target
    positions come first, in their order, and only the targets are permuted.
    """
    rank = torch.rand(b, t, generator=generator).argsort(dim=1).argsort(dim=1).float()
    if targets is not None:
        pos = torch.arange(t, dtype=torch.float32)[None, :].expand(b, t)
        rank = torch.where(targets.cpu(), rank + t, pos - t)
    rank[:, 0] = -2.0 * t
    return rank[:, None, :] < rank[:, :, None]


def mask_positions(
    rate: torch.Tensor,
    t: int,
    generator: torch.Generator,
    at_least_one: bool = True,
    targets: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, T) bool: positions hidden independently with probability `rate` (B,), among
    `targets` (default: positions 1..T-1).

    With `at_least_one`, a row that drew no hidden position gets one at random among its
    targets (keeps the token/sequence means defined; the ELBO estimator turns it off to stay
    unbiased).
    """
    b = rate.shape[0]
    if targets is None:
        targets = torch.ones(b, t, dtype=torch.bool)
        targets[:, 0] = False
    targets = targets.cpu()
    hidden = (torch.rand(b, t, generator=generator) < rate[:, None]) & targets
    if not at_least_one:
        return hidden
    empty = ~hidden.any(dim=1) & targets.any(dim=1)
    if empty.any():
        # a uniform random target per row: argmax of random scores over the targets
        score = torch.rand(b, t, generator=generator).masked_fill(~targets, -1.0)
        pick = score.argmax(dim=1)
        hidden[empty, pick[empty]] = True
    return hidden


def objective_loss(
    model: nn.Module,
    family: str,
    objective: Objective,
    ids: torch.Tensor,
    generator: torch.Generator,
    *,
    pad_id: int,
    loss_weighting: str = "token-mean",
    targets: torch.Tensor | None = None,
) -> torch.Tensor:
    """Loss of one batch. Random draws use `generator` (CPU) so runs are reproducible.

    `targets` (B, T) bool are the positions that may be scored (default: every non-padding
    position after [BOS], see `target_mask`); padding is never in any objective's loss, and
    the PAST model never reads padded positions.
    """
    if loss_weighting not in LOSS_WEIGHTINGS:
        raise ValueError(f"unknown loss_weighting {loss_weighting!r}; valid: {list(LOSS_WEIGHTINGS)}")
    b, t = ids.shape
    dev = ids.device
    valid = ids != pad_id
    if targets is None:
        targets = valid.clone()
        targets[:, 0] = False
    targets = targets.to(dev)
    if objective.kind == "ar":
        if family == "gpt2":
            logits = model(ids)
        else:
            logits = model(ids, causal_visibility(t, dev)[None] & valid[:, None, :])
        return F.cross_entropy(logits[targets], ids[targets])
    if objective.kind == "plm":
        vis = permutation_visibility(b, t, generator, targets).to(dev)
        logits = model(ids, vis & valid[:, None, :])
        return F.cross_entropy(logits[targets], ids[targets])
    if objective.kind == "mlm":
        rate = torch.full((b,), float(objective.mask_rate))
    elif objective.kind == "mlm-u":
        rate = torch.rand(b, generator=generator)
        if loss_weighting == "elbo":  # floor as in LLaDA, p = (1 - eps) u + eps, so 1/p stays finite
            rate = (1 - ELBO_EPS) * rate + ELBO_EPS
    else:
        raise ValueError(f"unknown objective kind {objective.kind!r}")
    elbo = loss_weighting == "elbo" and objective.kind == "mlm-u"
    hidden = mask_positions(rate, t, generator, at_least_one=not elbo, targets=targets).to(dev)
    # BERT reads [PAD] tokens as tokens (as at decoding time); PAST never reads padded positions
    visible = ~hidden if family == "bert" else (~hidden & valid)
    logits = model(ids, visible)
    ce = F.cross_entropy(logits.transpose(1, 2), ids, reduction="none") * hidden
    if loss_weighting == "token-mean" or objective.kind == "mlm":
        return ce.sum() / hidden.sum().clamp(min=1)
    if loss_weighting == "sequence-mean":
        per = ce.sum(1) / hidden.sum(1).clamp(min=1)
        return per[hidden.any(1)].mean()
    # "elbo": sum over hidden tokens / (rate * number of targets): the 1/r weight of absorbing-state
    # diffusion ([FC] Eq. 5 in expectation; MDLM, LLaDA). Unbiased: E[n_hidden | r] = r n_targets.
    n_targets = targets.sum(1).clamp(min=1)
    return (ce.sum(1) / (rate.to(dev) * n_targets)).mean()
