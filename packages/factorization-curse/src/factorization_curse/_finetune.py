"""Fine-tuning an existing Hugging Face checkpoint (a local directory) on a facts file with AR or
MLM-U, optionally with LoRA adapters (`peft`).

Two kinds of model:

- causal LMs (GPT-2, Llama, ...; `*ForCausalLM` / `*LMHeadModel`). AR is the usual next-token
  loss. MLM-U draws a rate r ~ U(0, 1) per sequence, hides each scored token with probability r
  and makes attention bidirectional over the visible tokens only (a 4-D attention mask): hidden
  tokens are removed from attention, as in the paper's PAST model, so no [MASK] token is needed,
  and a hidden token i is predicted from position i - 1's output (the pretrained LM head keeps its
  next-token role). Decoding: greedy left to right with the same visibility (every known token
  reads every known token) for MLM-U; ordinary causal greedy decoding for AR.
- masked LMs (BERT, ...; `*ForMaskedLM`): MLM-U replaces hidden tokens by [MASK] and predicts them
  in place. Padding after the end token is replaced by [MASK] at the same rate (never scored), so
  training sees the all-[MASK] tail that decoding has; decoding fills [MASK] slots left to right.

Nothing is downloaded: the model and its tokenizer are read from a local directory with
`local_files_only=True`.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from factorization_curse._train import check_schedule

FINETUNE_OBJECTIVES = ("ar", "mlm-u")
MODEL_KINDS = ("auto", "causal", "masked")


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning run: a local Hugging Face model directory, a facts file, an objective
    ("ar" or "mlm-u"), optional LoRA, and the optimiser schedule (AdamW, linear warmup then
    cosine decay to `min_lr_ratio`)."""

    model: str
    facts: str
    objective: str = "mlm-u"
    kind: str = "auto"  # auto (from the config's architectures) | causal | masked
    lora: bool = False
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] | None = None  # None: peft's defaults for the model type
    steps: int = 600
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_fraction: float = 0.4
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    train_query_fraction: float = 0.5
    validation_fraction: float = 0.15
    eval_every: int = 0  # 0: ten validation evaluations over the run
    eval_max_queries: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objective not in FINETUNE_OBJECTIVES:
            raise ValueError(f"unknown fine-tuning objective {self.objective!r}; valid: {', '.join(FINETUNE_OBJECTIVES)}")
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; valid: {', '.join(MODEL_KINDS)}")
        check_schedule(self, ("steps", "batch_size", "lora_rank"))


def check_model_dir(path: str | Path) -> Path:
    """`path` as a Path if it is a local Hugging Face model directory (has config.json), else a
    one-line ValueError (nothing is ever downloaded)."""
    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"--model {path}: not a local directory (give a Hugging Face model directory; "
                         "nothing is downloaded)")
    if not (p / "config.json").is_file():
        raise ValueError(f"--model {path}: not a Hugging Face model directory (no config.json)")
    return p


def model_kind(config: object) -> str:
    """"causal" or "masked" from a transformers config's `architectures`."""
    archs = list(getattr(config, "architectures", None) or [])
    if any(a.endswith("ForMaskedLM") for a in archs):
        return "masked"
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return "causal"
    raise ValueError(f"cannot tell whether the model is a causal or a masked LM (architectures {archs}); "
                     "give --kind causal or --kind masked")


@dataclass
class _Tokens:
    start: int
    end: int
    pad: int
    fill: int  # input id of a position not yet known (causal: never read; masked: [MASK])


def _special_ids(tok: object, kind: str) -> _Tokens:
    if kind == "masked":
        start = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        end = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        if start is None or end is None or tok.mask_token_id is None:
            raise ValueError("a masked LM's tokenizer needs start ([CLS]/bos), end ([SEP]/eos) and [MASK] tokens")
        pad = tok.pad_token_id if tok.pad_token_id is not None else end
        return _Tokens(start, end, pad, tok.mask_token_id)
    end = tok.eos_token_id
    if end is None:
        raise ValueError("a causal LM's tokenizer needs an end-of-sequence token (eos_token)")
    start = tok.bos_token_id if tok.bos_token_id is not None else end
    pad = tok.pad_token_id if tok.pad_token_id is not None else end
    return _Tokens(start, end, pad, pad)


def _encode(tok: object, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


def _answer_ids(tok: object, prompt: str, answer: str) -> list[int]:
    """The answer's ids as they follow the prompt (tokenised in context)."""
    p, full = _encode(tok, prompt), _encode(tok, f"{prompt} {answer}")
    return full[len(p):] if full[: len(p)] == p else _encode(tok, answer)


def _additive(visible_keys: torch.Tensor, t: int, dtype: torch.dtype) -> torch.Tensor:
    """(B, T) keys that may be read by every query -> (B, 1, T, T) additive attention mask."""
    b = visible_keys.shape[0]
    allowed = visible_keys[:, None, None, :].expand(b, 1, t, t)
    return torch.zeros(allowed.shape, dtype=dtype, device=visible_keys.device).masked_fill(
        ~allowed, torch.finfo(dtype).min)


def finetune_loss(
    model: torch.nn.Module, kind: str, objective: str, ids: torch.Tensor, lengths: torch.Tensor,
    generator: torch.Generator, tokens: _Tokens,
) -> torch.Tensor:
    """Loss of one batch `ids` (B, T) whose rows hold `lengths` real tokens ([start] first, then
    padding). Scored: every real token after [start]; padding is never scored."""
    from factorization_curse._objectives import mask_positions

    b, t = ids.shape
    dev = ids.device
    pos = torch.arange(t, device=dev)[None, :]
    valid = pos < lengths[:, None]
    targets = valid & (pos >= 1)
    if objective == "ar":
        if kind != "causal":
            raise ValueError("objective 'ar' needs a causal LM")
        logits = model(input_ids=ids, attention_mask=valid.long()).logits
        sel = targets[:, 1:]
        return F.cross_entropy(logits[:, :-1][sel], ids[:, 1:][sel])
    rate = torch.rand(b, generator=generator)
    hidden = mask_positions(rate, t, generator, targets=targets.cpu()).to(dev)
    if kind == "causal":
        inp = torch.where(hidden, torch.full_like(ids, tokens.fill), ids)
        mask = _additive(valid & ~hidden, t, model.dtype)
        logits = model(input_ids=inp, attention_mask=mask).logits
        sel = hidden[:, 1:]
        return F.cross_entropy(logits[:, :-1][sel], ids[:, 1:][sel])
    tail = ~valid & (torch.rand(b, t, generator=generator) < rate[:, None]).to(dev)
    inp = torch.where(hidden | tail, torch.full_like(ids, tokens.fill), ids)
    logits = model(input_ids=inp, attention_mask=torch.ones_like(ids)).logits
    return F.cross_entropy(logits[hidden], ids[hidden])


@torch.no_grad()
def finetune_decode(
    model: torch.nn.Module, kind: str, objective: str, prompts: list[list[int]], length: int,
    max_new: int, tokens: _Tokens,
) -> list[list[int]]:
    """Greedy left-to-right completion of each prompt (ids starting with [start]); the generated
    ids up to (excluding) the end token."""
    dev = next(model.parameters()).device
    b = len(prompts)
    plen = torch.tensor([len(p) for p in prompts], device=dev)
    ids = torch.full((b, length), tokens.fill, dtype=torch.long, device=dev)
    for i, p in enumerate(prompts):
        ids[i, : len(p)] = torch.tensor(p, device=dev)
    pos = torch.arange(length, device=dev)[None, :]
    known = pos < plen[:, None]
    rows = torch.arange(b, device=dev)
    done = torch.zeros(b, dtype=torch.bool, device=dev)
    shift = 1 if kind == "causal" else 0
    was = model.training
    model.eval()
    try:
        for k in range(max_new):
            at = plen + k
            active = ~done & (at < length)
            if not active.any():
                break
            if kind == "masked":
                logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
            elif objective == "ar":
                logits = model(input_ids=ids, attention_mask=known.long()).logits
            else:
                logits = model(input_ids=ids, attention_mask=_additive(known, length, model.dtype)).logits
            at_c = at.clamp(max=length - 1)
            pred = logits[rows, at_c - shift].argmax(-1)
            ids[rows[active], at_c[active]] = pred[active]
            known[rows[active], at_c[active]] = True
            done |= active & (pred == tokens.end)
    finally:
        model.train(was)
    out = []
    for i in range(b):
        gen = []
        for tok_id, kn in zip(ids[i, int(plen[i]):].tolist(), known[i, int(plen[i]):].tolist()):
            if not kn or tok_id == tokens.end:
                break
            gen.append(tok_id)
        out.append(gen)
    return out


def _evaluate(model, kind, objective, tok, tokens, queries, length, max_new, batch_size=64,
              return_predictions=False) -> dict:
    tally = {d: [0, 0, 0, 0] for d in ("forward", "backward")}  # n, exact, answer tokens, token hits
    preds = []
    for s in range(0, len(queries), batch_size):
        chunk = queries[s : s + batch_size]
        prompts = [[tokens.start, *_encode(tok, " ".join(q.prompt))] for q in chunk]
        for q, gen in zip(chunk, finetune_decode(model, kind, objective, prompts, length, max_new, tokens)):
            ans = _answer_ids(tok, " ".join(q.prompt), " ".join(q.answer))
            t = tally[q.direction]
            t[0] += 1
            t[1] += gen == ans
            t[2] += len(ans)
            t[3] += sum(a == b for a, b in zip(gen, ans))
            if return_predictions:
                preds.append(tok.decode(gen).strip())
    out: dict = {}
    for d, (n, exact, ntok, hits) in tally.items():
        out[f"{d}_accuracy"] = exact / n if n else None
        out[f"{d}_token_accuracy"] = hits / ntok if ntok else None
        out[f"{d}_count"] = n
    if return_predictions:
        out["predictions"] = preds
    return out


def _quiet_transformers() -> None:
    """No transformers warnings; its weight-loading/saving bars only on a terminal."""
    import transformers

    transformers.logging.set_verbosity_error()
    if not sys.stderr.isatty():
        transformers.utils.logging.disable_progress_bar()


def load_pretrained(cfg: FinetuneConfig, device: torch.device | str = "cpu") -> tuple:
    """(model, tokenizer, kind) read from the local directory `cfg.model` (LoRA adapters added when
    `cfg.lora`); nothing is downloaded."""
    import transformers

    path = check_model_dir(cfg.model)
    _quiet_transformers()
    try:
        config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"--model {path}: cannot read its config.json ({str(exc).splitlines()[0]})") from None
    kind = model_kind(config) if cfg.kind == "auto" else cfg.kind
    try:
        tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"--model {path}: no usable tokenizer in the directory ({str(exc).splitlines()[0]})") from None
    auto = transformers.AutoModelForMaskedLM if kind == "masked" else transformers.AutoModelForCausalLM
    # sdpa: 4-D attention masks (bidirectional MLM-U visibility) behave alike across architectures
    model = auto.from_pretrained(path, local_files_only=True, attn_implementation="sdpa").float().to(device)
    if cfg.lora:
        model = add_lora(model, cfg)
    return model, tok, kind


def add_lora(model: torch.nn.Module, cfg: FinetuneConfig) -> torch.nn.Module:
    """`model` with LoRA adapters (rank, alpha, dropout, targets from `cfg`); only the adapters train."""
    try:
        import peft
    except ImportError:
        raise ValueError("--lora needs the peft package: pip install 'factorization-curse[hf]'") from None
    model_type = getattr(model.config, "model_type", "")
    targets = list(cfg.lora_targets) if cfg.lora_targets else None
    if targets is None and model_type not in peft.utils.constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING:
        raise ValueError(f"LoRA: peft has no default target modules for model type {model_type!r}; "
                         "give lora_targets (--lora-targets NAME ...)")
    lcfg = peft.LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                           target_modules=targets, fan_in_fan_out=model_type == "gpt2")
    with warnings.catch_warnings():
        # peft reads transformers' deprecated `is_gradient_checkpointing` (a FutureWarning in 5.x)
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return peft.get_peft_model(model, lcfg)


def finetune(
    cfg: FinetuneConfig, out: str | Path | None = None, *, device: str = "auto", quiet: bool = False,
) -> dict:
    """Fine-tune the local checkpoint `cfg.model` on the facts file `cfg.facts` and evaluate it.

    Every fact is stated in training; the questions of `train_query_fraction` of the facts are
    trained, `validation_fraction` make the validation questions (learning curve), the rest are
    test questions, scored once at the end (exact match of the generated token ids, forward =
    object from subject, backward = subject from object). With `out`, writes metrics.json,
    config.json, predictions.json and the trained model (`model/`) or LoRA adapters (`adapter/`),
    each loadable with `from_pretrained`. Returns the metrics.
    """
    from factorization_curse._data import training_sequences
    from factorization_curse._tasks import facts_task, load_facts
    from factorization_curse._train import TrainConfig, atomic_write, lr_factor, resolve_device

    check_model_dir(cfg.model)
    task = facts_task(load_facts(cfg.facts), cfg.train_query_fraction, cfg.seed, name=Path(cfg.facts).stem,
                      validation_fraction=cfg.validation_fraction)
    if not task.test:
        raise ValueError(f"{cfg.facts}: too few facts for any test question")
    dev = resolve_device(device)
    torch.manual_seed(cfg.seed)
    t0, cpu0 = time.perf_counter(), time.process_time()
    model, tok, kind = load_pretrained(cfg, dev)
    if cfg.objective == "ar" and kind != "causal":
        raise ValueError("objective 'ar' needs a causal LM; this model is a masked LM (use mlm-u)")
    tokens = _special_ids(tok, kind)
    seqs = [[tokens.start, *_encode(tok, " ".join(s)), tokens.end] for s in training_sequences(task)]
    # every answer is a subject or an object of the file (all stated in training): the longest
    # bounds the tokens to generate (+1 for the end token)
    facts = load_facts(cfg.facts)
    max_new = max(len(_encode(tok, e)) for f in facts for e in (f.subject, f.object)) + 1
    prompts_len = max(1 + len(_encode(tok, " ".join(q.prompt)))
                      for q in task.train_queries + task.validation + task.test)
    length = max(max(len(s) for s in seqs), prompts_len + max_new)
    limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    if limit is not None and length > limit:
        raise ValueError(f"sequences of {length} tokens exceed the model's {limit} positions")
    data = torch.full((len(seqs), length), tokens.pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        data[i, : len(s)] = torch.tensor(s)
    lengths = torch.tensor([len(s) for s in seqs])
    n_total = sum(p.numel() for p in model.parameters())
    params = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in params)
    tcfg = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, warmup_fraction=cfg.warmup_fraction,
                       min_lr_ratio=cfg.min_lr_ratio, weight_decay=cfg.weight_decay)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, tcfg))
    order = torch.Generator().manual_seed(cfg.seed)
    noise = torch.Generator().manual_seed(cfg.seed * 1009 + 1)
    from factorization_curse._experiment import curve_subset

    curve = curve_subset(task.validation, cfg.eval_max_queries, cfg.seed)
    every = cfg.eval_every or max(1, cfg.steps // 10)
    history: list[dict] = []
    perm, cursor, running = torch.randperm(len(seqs), generator=order), 0, None
    model.train()
    for step in range(cfg.steps):
        if cursor + cfg.batch_size > len(seqs):
            perm, cursor = torch.randperm(len(seqs), generator=order), 0
        idx = perm[cursor : cursor + cfg.batch_size]
        if idx.numel() < cfg.batch_size:
            idx = torch.randint(0, len(seqs), (cfg.batch_size,), generator=order)
        cursor += cfg.batch_size
        loss = finetune_loss(model, kind, cfg.objective, data[idx].to(dev), lengths[idx].to(dev), noise, tokens)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at step {step} ({cfg.objective})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
        if step == 0:
            history.append({"step": 0, "loss": loss.item()})
        if (step + 1) % every == 0 or step + 1 == cfg.steps:
            rec = {"step": step + 1, "loss": running, "seconds": time.perf_counter() - t0}
            if curve:
                r = _evaluate(model, kind, cfg.objective, tok, tokens, curve, length, max_new)
                rec |= {"val_forward_accuracy": r["forward_accuracy"], "val_backward_accuracy": r["backward_accuracy"]}
            history.append(rec)
            if not quiet:
                accs = " ".join(f"{k.split('_')[1]}={v:.3f}" for k, v in rec.items()
                                if k.startswith("val_") and v is not None)
                print(f"finetune {cfg.objective} step {step + 1}/{cfg.steps} loss={running:.3f} {accs}".rstrip(),
                      file=sys.stderr, flush=True)
    test = _evaluate(model, kind, cfg.objective, tok, tokens, task.test, length, max_new, return_predictions=True)
    val = _evaluate(model, kind, cfg.objective, tok, tokens, task.validation, length, max_new) if task.validation else {}
    fit = _evaluate(model, kind, cfg.objective, tok, tokens, task.train_queries[:200], length, max_new)
    metrics = {
        "task": task.name, "objective": cfg.objective, "model": str(cfg.model),
        "model_type": getattr(model.config, "model_type", None), "kind": kind, "lora": cfg.lora,
        "forward_accuracy": test["forward_accuracy"], "backward_accuracy": test["backward_accuracy"],
        "forward_token_accuracy": test["forward_token_accuracy"],
        "backward_token_accuracy": test["backward_token_accuracy"],
        "val_forward_accuracy": val.get("forward_accuracy"), "val_backward_accuracy": val.get("backward_accuracy"),
        "train_query_forward_accuracy": fit["forward_accuracy"],
        "train_query_backward_accuracy": fit["backward_accuracy"],
        "n_test_forward": test["forward_count"], "n_test_backward": test["backward_count"],
        "n_val_forward": val.get("forward_count", 0), "n_val_backward": val.get("backward_count", 0),
        "n_parameters": n_total, "n_trainable_parameters": n_trainable, "sequence_length": length,
        "steps": cfg.steps, "first_loss": history[0]["loss"], "final_loss": running,
        "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - cpu0,
        "device": str(dev), "task_description": task.description,
        "protocol": "curves on validation questions; test scored once at the end",
        "history": history,
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        # LoRA: adapter_model.safetensors + adapter_config.json; else the whole model + tokenizer
        model.save_pretrained(out / ("adapter" if cfg.lora else "model"))
        if not cfg.lora:
            tok.save_pretrained(out / "model")

        def dump(name: str, obj: object) -> None:
            atomic_write(out / name, lambda tmp: tmp.write_text(json.dumps(obj, indent=2)))

        dump("config.json", _config_json(cfg))
        dump("predictions.json", [{"prompt": " ".join(q.prompt), "answer": " ".join(q.answer), "predicted": p,
                                   "direction": q.direction} for q, p in zip(task.test, test["predictions"])])
        dump("metrics.json", metrics)
    return metrics


def _config_json(cfg: FinetuneConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg)))


def finetune_payload(rows: list[dict], configs: list[FinetuneConfig], command: str | None = None) -> dict:
    """The result-record payload of one or more fine-tuning runs (one table row each)."""
    columns = ["objective", "model", "LoRA", "trainable params", "test forward", "test backward",
               "val forward", "val backward", "trained questions fwd", "trained questions bwd", "steps", "seconds"]
    table_rows = [[m["objective"], m["model_type"], "yes" if m["lora"] else "no", m["n_trainable_parameters"],
                   m["forward_accuracy"], m["backward_accuracy"], m["val_forward_accuracy"],
                   m["val_backward_accuracy"], m["train_query_forward_accuracy"],
                   m["train_query_backward_accuracy"], m["steps"], round(m["seconds"])] for m in rows]
    payload = {
        "experiment": f"finetune-{rows[0]['task']}",
        "seeds": sorted({c.seed for c in configs}),
        "config": _config_json(configs[0]) if len(configs) == 1 else {"runs": [_config_json(c) for c in configs]},
        "metrics": {f"{m['objective']}{'-lora' if m['lora'] else ''}": {k: v for k, v in m.items() if k != "history"}
                    | {"history": m["history"]} for m in rows},
        "tables": [{
            "name": "main",
            "caption": f"{rows[0]['task_description']}; held-out exact match of the generated tokens "
                       "(test scored once)",
            "columns": columns, "rows": table_rows,
            "formats": {c: ".3f" for c in columns if c.startswith(("test", "val", "trained"))},
        }],
    }
    if command:
        payload["command"] = command
    return payload


def add_finetune_parser(sub: object) -> None:
    """The `finetune` subcommand's arguments."""
    import argparse

    p = sub.add_parser("finetune", help="fine-tune a local Hugging Face checkpoint on a facts file (AR or MLM-U, "
                                        "optionally LoRA)", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, help="local Hugging Face model directory (config.json, weights, "
                                                  "tokenizer); nothing is downloaded")
    p.add_argument("--facts", type=Path, required=True, help='JSON-lines facts file ({"subject","relation","object"})')
    p.add_argument("--objective", nargs="+", default=["mlm-u"], choices=FINETUNE_OBJECTIVES,
                   help="one or more objectives; several are trained one after the other from the same checkpoint")
    p.add_argument("--kind", choices=MODEL_KINDS, default="auto", help="causal or masked LM (auto: from config.json)")
    p.add_argument("--lora", action="store_true", help="train LoRA adapters only (needs peft)")
    p.add_argument("--lora-rank", type=int, default=8, help="LoRA rank")
    p.add_argument("--lora-alpha", type=float, default=16.0, help="LoRA alpha")
    p.add_argument("--lora-targets", nargs="+", default=None, help="module names to adapt (default: peft's)")
    p.add_argument("--steps", type=int, default=600, help="training steps")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per step")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--warmup-fraction", type=float, default=0.4, help="linear warmup, fraction of the steps")
    p.add_argument("--out", type=Path, default=Path("runs/finetune"), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed (split, masks, LoRA init)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--quiet", action="store_true", help="no per-evaluation lines")
    p.add_argument("--jobs", type=int, default=1,
                   help="objectives trained at once (separate processes, one torch thread each)")
    p.add_argument("--init-tiny", choices=TINY_ARCHS, default=None, metavar="ARCH",
                   help="first write a RANDOMLY INITIALISED model of ARCH (llama, gpt2, bert) with a word-level "
                        "tokenizer of the facts to --model (a new folder): a demonstration without pretrained weights")
    p.add_argument("--init-d-model", type=int, default=64, help="--init-tiny: hidden size")
    p.add_argument("--init-layers", type=int, default=2, help="--init-tiny: layers")


def run_finetune_cli(args: object, argv: list[str]) -> int:
    """Run `finetune` from parsed arguments; writes OUT/<objective>/ and OUT/record.json."""
    if not Path(args.facts).is_file():
        raise ValueError(f"--facts {args.facts}: no such file")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    if args.init_tiny:
        if Path(args.model).exists() and any(Path(args.model).iterdir()):
            raise ValueError(f"--init-tiny: {args.model} exists and is not empty (it would be overwritten)")
        build_tiny_checkpoint(args.model, args.facts, args.init_tiny, d_model=args.init_d_model,
                              n_layers=args.init_layers, seed=args.seed)
    check_model_dir(args.model)
    cfgs = [FinetuneConfig(model=str(args.model), facts=str(args.facts), objective=o, kind=args.kind, lora=args.lora,
                           lora_rank=args.lora_rank, lora_alpha=args.lora_alpha,
                           lora_targets=tuple(args.lora_targets) if args.lora_targets else None,
                           steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                           warmup_fraction=args.warmup_fraction, seed=args.seed)
            for o in dict.fromkeys(args.objective)]
    rows = []
    if args.jobs > 1 and len(cfgs) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(args.jobs, len(cfgs)), mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_worker, (c, args.out / c.objective, args.device, args.quiet)) for c in cfgs]
            results = (f.result() for f in futures)
            for c in cfgs:
                m = next(results)
                rows.append(m)
                _report(args, argv, cfgs, rows, c, m)
    else:
        for c in cfgs:
            m = finetune(c, args.out / c.objective, device=args.device, quiet=args.quiet)
            rows.append(m)
            _report(args, argv, cfgs, rows, c, m)
    print(f"wrote {args.out / 'record.json'}")
    return 0


def _worker(job: tuple) -> dict:
    cfg, out, device, quiet = job
    torch.set_num_threads(1)
    return finetune(cfg, out, device=device, quiet=quiet)


def _report(args: object, argv: list[str], cfgs: list, rows: list[dict], c: FinetuneConfig, m: dict) -> None:
    """Print one objective's result and rewrite OUT/record.json with every finished objective."""
    from factorization_curse._train import atomic_write

    print(f"{c.objective}: test forward {_pct(m['forward_accuracy'])}, backward {_pct(m['backward_accuracy'])} "
              f"(trained questions {_pct(m['train_query_forward_accuracy'])} / "
          f"{_pct(m['train_query_backward_accuracy'])}; {m['seconds']:.0f} s)", flush=True)
    payload = finetune_payload(rows, cfgs[: len(rows)], " ".join(argv))
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / "record.json", lambda tmp: tmp.write_text(json.dumps(payload, indent=2)))


def _pct(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f} %"



TINY_ARCHS = ("llama", "gpt2", "bert")


def build_tiny_checkpoint(
    path: str | Path, facts: str | Path, arch: str = "llama", *, d_model: int = 64, n_layers: int = 2,
    n_heads: int = 4, max_positions: int = 64, seed: int = 0,
) -> Path:
    """Write a randomly initialised Hugging Face model (built from a config, nothing downloaded)
    and a word-level tokenizer covering the words of `facts` to the directory `path`.

    `arch`: "llama" or "gpt2" (causal LMs) or "bert" (a masked LM). For tests and demonstrations
    of `finetune` where no pretrained checkpoint is available.
    """
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    from factorization_curse._tasks import facts_task, load_facts

    if arch not in TINY_ARCHS:
        raise ValueError(f"unknown arch {arch!r}; valid: {', '.join(TINY_ARCHS)}")
    _quiet_transformers()
    task = facts_task(load_facts(facts), seed=seed)  # corpus(): every statement and question
    specials = ["[PAD]", "[UNK]", "[MASK]", "[BOS]", "[EOS]", "[CLS]", "[SEP]"]
    words = sorted({w for seq in task.corpus() for w in seq} | {"?", "."})
    vocab = {w: i for i, w in enumerate(specials + [w for w in words if w not in specials])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]",
        bos_token="[BOS]", eos_token="[EOS]", cls_token="[CLS]", sep_token="[SEP]")
    common = dict(vocab_size=len(vocab), pad_token_id=0, bos_token_id=3, eos_token_id=4)
    if arch == "llama":
        config = transformers.LlamaConfig(hidden_size=d_model, intermediate_size=4 * d_model,
                                          num_hidden_layers=n_layers, num_attention_heads=n_heads,
                                          num_key_value_heads=n_heads, max_position_embeddings=max_positions,
                                          tie_word_embeddings=True, **common)
        cls = transformers.LlamaForCausalLM
    elif arch == "gpt2":
        config = transformers.GPT2Config(n_embd=d_model, n_layer=n_layers, n_head=n_heads, n_positions=max_positions,
                                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **common)
        cls = transformers.GPT2LMHeadModel
    else:
        config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=d_model, num_hidden_layers=n_layers, num_attention_heads=n_heads,
                                         intermediate_size=4 * d_model, max_position_embeddings=max_positions,
                                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                         type_vocab_size=1, pad_token_id=0)
        cls = transformers.BertForMaskedLM
    torch.manual_seed(seed)
    model = cls(config)
    path = Path(path)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
