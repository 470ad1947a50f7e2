"""Decoding and evaluation: greedy left-to-right for every family, confidence-ordered unmasking
for the masked families (bert, past), exact match and per-token accuracy per direction."""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from factorization_curse._data import Vocab
from factorization_curse._tasks import Query

DECODE_ORDERS = ("l2r", "confidence")


@torch.no_grad()
def decode(
    model: nn.Module,
    family: str,
    prompts: list[list[int]],
    length: int,
    *,
    pad_id: int,
    eos_id: int,
    order: str = "l2r",
    device: torch.device | str = "cpu",
    reveal_order_attention: bool = False,
) -> list[list[int]]:
    """Complete each prompt (ids starting with [BOS]) up to `length` positions; return the
    generated ids up to (excluding) the first [EOS]/[PAD].

    "l2r": one forward per position, the argmax at the next hidden position is written.
    "confidence": every step predicts all hidden positions and reveals the single most confident
    one (masked families only).

    `reveal_order_attention` (for PAST trained with AR or PLM, whose training masks are
    query-specific): position i reads position j only if j was known before i (prompt in order,
    then generated tokens in the order they were produced), matching the training masks; a
    hidden position reads every known one. Otherwise every query reads every known position
    (the masking objectives' training condition).
    """
    if order not in DECODE_ORDERS:
        raise ValueError(f"unknown decode order {order!r}; valid: {list(DECODE_ORDERS)}")
    if order == "confidence" and family == "gpt2":
        raise ValueError("confidence-ordered unmasking needs a masked model (bert or past), not gpt2")
    b = len(prompts)
    plen = torch.tensor([len(p) for p in prompts], device=device)
    if int(plen.max()) >= length:
        raise ValueError(f"a prompt of {int(plen.max())} tokens leaves no room in length {length}")
    ids = torch.full((b, length), pad_id, dtype=torch.long, device=device)
    for i, p in enumerate(prompts):
        ids[i, : len(p)] = torch.tensor(p, device=device)
    pos = torch.arange(length, device=device)[None, :]
    visible = pos < plen[:, None]
    rows = torch.arange(b, device=device)
    # time at which each position became known: prompt positions in order, hidden = +inf
    known_at = torch.where(visible, pos.float(), torch.full_like(visible, float("inf"), dtype=torch.float))

    def run(ids: torch.Tensor) -> torch.Tensor:
        if family == "gpt2":
            return model(ids)
        if reveal_order_attention:
            return model(ids, known_at[:, None, :] < known_at[:, :, None])
        return model(ids, visible)

    was_training = model.training
    model.eval()
    try:
        if order == "l2r":
            done = torch.zeros(b, dtype=torch.bool, device=device)
            for k in range(length - int(plen.min())):
                at = plen + k
                active = (~done) & (at < length)
                if not active.any():
                    break
                logits = run(ids)
                at_c = at.clamp(max=length - 1)
                pred = logits[rows, at_c].argmax(-1)
                ids[rows[active], at_c[active]] = pred[active]
                visible[rows[active], at_c[active]] = True
                known_at[rows[active], at_c[active]] = float(length + k)
                done |= active & ((pred == eos_id) | (pred == pad_id))
        else:
            hidden_region = pos >= plen[:, None]
            for k in range(length - int(plen.min())):
                hidden = hidden_region & ~visible
                # finished: an [EOS]/[PAD] revealed with everything before it revealed
                end = (visible & hidden_region & ((ids == eos_id) | (ids == pad_id)))
                first_end = torch.where(end, pos, length).min(1).values
                gap = (hidden & (pos < first_end[:, None])).any(1)
                active = gap & hidden.any(1)
                if not active.any():
                    break
                logits = run(ids)
                conf, pred = logits.softmax(-1).max(-1)
                conf = conf.masked_fill(~hidden, -1.0)
                at = conf.argmax(1)
                ids[rows[active], at[active]] = pred[rows, at][active]
                visible[rows[active], at[active]] = True
                known_at[rows[active], at[active]] = float(length + k)
    finally:
        model.train(was_training)
    out = []
    for i in range(b):
        gen = ids[i, int(plen[i]) :].tolist()
        vis = visible[i, int(plen[i]) :].tolist()
        ans = []
        for tok, v in zip(gen, vis):
            if not v or tok in (eos_id, pad_id):
                break
            ans.append(tok)
        out.append(ans)
    return out


def evaluate_queries(
    model: nn.Module,
    family: str,
    vocab: Vocab,
    queries: list[Query],
    length: int,
    *,
    order: str = "l2r",
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    return_predictions: bool = False,
    reveal_order_attention: bool = False,
    _local: bool = False,
) -> dict:
    """Exact-match and per-token accuracy for each direction; incorrect-inference rate where the
    queries carry a distractor. Accuracies are fractions in [0, 1]; a direction without queries
    gets None."""
    import torch.distributed as dist

    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    if world > 1 and not _local:
        # inside the collective: every rank decodes its share, then all ranks gather all answers
        # (an evaluation on rank 0 alone would leave the others waiting in NCCL)
        rank = dist.get_rank()
        mine = evaluate_queries(
            model, family, vocab, queries[rank::world], length, order=order, device=device,
            batch_size=batch_size, return_predictions=True, reveal_order_attention=reveal_order_attention,
            _local=True,
        )["predictions"]
        gathered: list = [None] * world
        dist.all_gather_object(gathered, mine)
        flat: list[list[str]] = [[] for _ in queries]
        for r, part in enumerate(gathered):
            for j, p in enumerate(part):
                flat[r + j * world] = p.split(" ") if p else []
        return score(queries, flat, return_predictions=return_predictions)
    return _evaluate_local(model, family, vocab, queries, length, order, device, batch_size,
                           return_predictions, reveal_order_attention)


def _evaluate_local(model, family, vocab, queries, length, order, device, batch_size, return_predictions,
                    reveal_order_attention) -> dict:
    preds: list[list[str]] = []
    for s in range(0, len(queries), batch_size):
        chunk = queries[s : s + batch_size]
        prompts = [[vocab.bos_id, *vocab.encode_words(q.prompt)] for q in chunk]
        for ids in decode(
            model, family, prompts, length, pad_id=vocab.pad_id, eos_id=vocab.eos_id,
            order=order, device=device, reveal_order_attention=reveal_order_attention,
        ):
            preds.append(vocab.decode_ids(ids))
    return score(queries, preds, return_predictions=return_predictions)


def score(queries: list[Query], preds: list[list[str]], return_predictions: bool = False) -> dict:
    """Metrics from predictions (word lists) against the queries' answers."""
    if len(queries) != len(preds):
        raise ValueError(f"{len(queries)} queries but {len(preds)} predictions")
    tally: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for q, p in zip(queries, preds):
        t = tally[q.direction]
        t["n"] += 1
        t["exact"] += tuple(p) == q.answer
        t["tokens"] += len(q.answer)
        t["token_hits"] += sum(a == b for a, b in zip(p, q.answer))
        if q.distractor is not None:
            t["n_distractor"] += 1
            t["incorrect"] += tuple(p) == q.distractor
    out: dict = {}
    for d in ("forward", "backward"):
        t = tally.get(d)
        out[f"{d}_accuracy"] = t["exact"] / t["n"] if t else None
        out[f"{d}_token_accuracy"] = t["token_hits"] / t["tokens"] if t else None
        out[f"{d}_count"] = int(t["n"]) if t else 0
        if t and t["n_distractor"]:
            out[f"{d}_incorrect_inference"] = t["incorrect"] / t["n_distractor"]
    n_d = sum(t["n_distractor"] for t in tally.values())
    if n_d:
        out["incorrect_inference"] = sum(t["incorrect"] for t in tally.values()) / n_d
    if return_predictions:
        out["predictions"] = [" ".join(p) for p in preds]
    return out
