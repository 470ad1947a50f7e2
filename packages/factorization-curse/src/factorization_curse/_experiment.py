"""One run = task + objective + model + training + evaluation, written to an output folder."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch

from factorization_curse._data import Vocab, encode_sequences, target_mask, training_sequences
from factorization_curse._decode import evaluate_queries
from factorization_curse._models import ModelConfig, build_model, count_parameters
from factorization_curse._objectives import LOSS_WEIGHTINGS, check_family, get_objective
from factorization_curse._tasks import (
    TASKS,
    TaskData,
    bios_task,
    countries_task,
    facts_task,
    load_facts,
    relationship_task,
    retrieval_task,
    star_graph_task,
)
from factorization_curse._train import (
    TrainConfig,
    atomic_write,
    config_diff,
    dataclass_defaults,
    dist_info,
    maybe_init_distributed,
    resolve_device,
    save_checkpoint,
    train,
)


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs; defaults are a CPU-laptop-sized retrieval run."""

    task: str = "retrieval"
    objective: str = "mlm-u"
    family: str | None = None  # None: the objective's default (PAST for every objective)
    facts: str | None = None  # JSON-lines facts file (task "facts")
    data: str | None = None  # GenWiki file or folder (task "wikireversal"; not bundled)
    min_relation_count: int = 500  # WikiReversal: relations with fewer kept triples are dropped
    # task sizes
    n_items: int = 200  # pairs / chains / people / training graphs / (ignored for facts)
    entity_len: int = 2
    n_symbols: int = 60
    train_query_fraction: float = 0.5
    validation_fraction: float = 0.15  # held-out items whose queries make the validation set
    bios_per_person: int = 2
    star_degree: int = 2
    star_path_len: int = 5
    star_nodes: int = 20
    star_test: int = 200
    # model
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2  # PAST: encoder and decoder layers each
    # GPT-2 / BERT layers; None: 2 * n_layers, the parameter count of PAST's encoder + decoder
    baseline_layers: int | None = None
    decoder_positions: bool = False  # PAST: learned decoder position embedding (not in the paper)
    # training
    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    loss_weighting: str = "token-mean"
    eval_every: int = 0
    eval_max_queries: int = 200  # per learning-curve evaluation
    max_seconds: float = 0.0  # training wall-clock budget (0: none); the schedule shrinks to fit
    # evaluation
    decode: str = "l2r"  # "l2r" | "confidence" (masked families)
    seed: int = 0
    # bounded final evaluation (GPU-campaign jobs): a seeded random subset of at most this many
    # test queries (0: all), and a wall-clock budget (0: none) for the final evaluation, which
    # then decodes with `decode` only and stops after the batch that exhausts the budget
    test_max_queries: int = 0
    eval_seconds: float = 0.0

    def __post_init__(self) -> None:
        valid_tasks = (*TASKS, "facts", "wikireversal")
        if self.task not in valid_tasks:
            raise ValueError(f"unknown task {self.task!r}; valid tasks: {', '.join(valid_tasks)}")
        obj = get_objective(self.objective)
        check_family(obj, self.resolved_family)
        if self.task == "facts" and not self.facts:
            raise ValueError("task 'facts' needs a facts file (--facts FILE.jsonl)")
        if self.task == "wikireversal" and not self.data:
            raise ValueError("task 'wikireversal' needs your local GenWiki copy (--data PATH; not bundled)")
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"unknown loss_weighting {self.loss_weighting!r}; valid: {list(LOSS_WEIGHTINGS)}")
        if self.decode not in ("l2r", "confidence"):
            raise ValueError(f"unknown decode {self.decode!r}; valid: l2r, confidence")
        if self.decode == "confidence" and self.resolved_family == "gpt2":
            raise ValueError("decode 'confidence' needs a masked model family (bert or past)")
        if self.task in ("retrieval", "relationship", "bios") and self.n_items < 3:
            raise ValueError(f"n_items={self.n_items} leaves no held-out queries: need n_items >= 3 "
                             "(trained, validation and test items)")
        if self.task == "star-graph" and (self.n_items < 1 or self.star_test < 1):
            raise ValueError(f"star graph needs n_items >= 1 and star_test >= 1, got {self.n_items}, {self.star_test}")
        for name in ("steps", "batch_size", "d_model", "n_heads", "n_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def model_layers(self) -> int:
        """Transformer layers of the model: PAST's n_layers (encoder and decoder each), or the
        GPT-2/BERT baselines' count (default 2 * n_layers: matched parameters)."""
        if self.resolved_family == "past":
            return self.n_layers
        return self.baseline_layers or 2 * self.n_layers

    @property
    def resolved_family(self) -> str:
        return self.family or get_objective(self.objective).default_family

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            steps=self.steps, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
            warmup_fraction=self.warmup_fraction, grad_clip=self.grad_clip,
            eval_every=self.eval_every, loss_weighting=self.loss_weighting, max_seconds=self.max_seconds,
        )

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; valid: {sorted(known)}")
        return cls(**d)

    def updated(self, **kw: object) -> RunConfig:
        return replace(self, **kw)


def build_task(cfg: RunConfig) -> TaskData:
    """The task of `cfg` (generated, or read from its facts file)."""
    s, f, v = cfg.seed, cfg.train_query_fraction, cfg.validation_fraction
    if cfg.task == "retrieval":
        return retrieval_task(cfg.n_items, cfg.entity_len, cfg.n_symbols, f, s, v)
    if cfg.task == "relationship":
        return relationship_task(cfg.n_items, cfg.entity_len, cfg.n_symbols, f, s, v)
    if cfg.task == "bios":
        return bios_task(cfg.n_items, cfg.bios_per_person, f, s, v)
    if cfg.task == "star-graph":
        n_val = max(1, cfg.star_test // 2)
        return star_graph_task(cfg.star_degree, cfg.star_path_len, cfg.star_nodes, cfg.n_items,
                               cfg.star_test, s, n_validation=n_val)
    if cfg.task == "countries":
        return countries_task(f, s, v)
    if cfg.task == "wikireversal":
        from factorization_curse._wiki import load_genwiki, wikireversal_task

        return wikireversal_task(load_genwiki(cfg.data), cfg.min_relation_count, f, s, v)
    return facts_task(load_facts(cfg.facts), f, s, name=Path(cfg.facts).stem, validation_fraction=v)


def curve_subset(queries: list, n: int, seed: int) -> list:
    """Up to n queries for learning curves, drawn per direction so both directions are present."""
    import random

    rng = random.Random(seed)
    by_dir: dict[str, list] = {}
    for q in queries:
        by_dir.setdefault(q.direction, []).append(q)
    per = max(1, n // max(1, len(by_dir)))
    out = []
    for qs in by_dir.values():
        out += qs if len(qs) <= per else rng.sample(qs, per)
    return out


def shuffled_subset(queries: list, n: int, seed: int) -> list:
    """Up to n queries drawn per direction (both present), in a seeded random order, so that any
    prefix is itself a random sample of both directions (a time-bounded evaluation scores a prefix)."""
    import random

    out = curve_subset(queries, n, seed)
    random.Random(seed).shuffle(out)
    return out


def bounded_evaluate(model, family, vocab, queries, length, limit, *, order, device, reveal_order_attention,
                     return_predictions=False, chunk=512) -> dict:
    """`evaluate_queries` on consecutive chunks of `queries` until the chunk that ends after
    `limit` (a `time.perf_counter()` value); the metrics cover the chunks evaluated
    (`evaluated` of them). Under DDP every rank evaluates its share of each chunk and rank 0's
    clock decides, for all ranks at once, whether another chunk follows (no rank waits alone)."""
    import torch.distributed as dist

    from factorization_curse._decode import score

    distributed = dist.is_available() and dist.is_initialized()
    done: list = []
    preds: list[list[str]] = []
    for s in range(0, len(queries), chunk):
        part = queries[s : s + chunk]
        r = evaluate_queries(model, family, vocab, part, length, order=order, device=device,
                             reveal_order_attention=reveal_order_attention, return_predictions=True)
        done += part
        preds += [p.split(" ") if p else [] for p in r["predictions"]]
        stop = torch.tensor([float(time.perf_counter() > limit)], device=device)
        if distributed:
            dist.broadcast(stop, 0)
        if stop.item():
            break
    out = score(done, preds, return_predictions=return_predictions)
    out["evaluated"] = len(done)
    return out


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("factorization-curse", "torch", "transformers", "tokenizers", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _write_json(path: Path, obj: object) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2)))


def _config_json(cfg: RunConfig) -> dict:
    """`cfg` as it reads back from config.json (tuples become lists)."""
    return json.loads(json.dumps(asdict(cfg)))


def _finished(out: Path, cfg: RunConfig) -> dict | None:
    """The stored metrics of a finished run of exactly `cfg` in `out`, else None."""
    try:
        saved, mine = json.loads((out / "config.json").read_text()), _config_json(cfg)
        same = set(saved) <= set(mine) and not config_diff(saved, mine, defaults=dataclass_defaults(RunConfig))
        return json.loads((out / "metrics.json").read_text()) if same else None
    except (OSError, json.JSONDecodeError):
        return None


def _claim_state_dir(state_dir: Path, cfg: RunConfig, resume: bool) -> None:
    """Record which run owns `state_dir`; refuse to resume another configuration's state."""
    mine = _config_json(cfg)
    owner = state_dir / "run_config.json"
    if resume and owner.exists():
        saved = json.loads(owner.read_text())
        diff = config_diff(saved, mine, defaults=dataclass_defaults(RunConfig))
        if diff or not set(saved) <= set(mine):
            diff = diff or {k: (saved[k], None) for k in set(saved) - set(mine)}
            raise ValueError(f"cannot resume from {state_dir}: it belongs to another run configuration "
                             f"(field: (saved, now)) {diff}")
        return
    if not resume and state_dir.exists():
        shutil.rmtree(state_dir)  # a fresh run never continues a stale state
    state_dir.mkdir(parents=True, exist_ok=True)
    _write_json(owner, mine)


def run_experiment(
    cfg: RunConfig,
    out: str | Path | None = None,
    *,
    device: str = "auto",
    quiet: bool = False,
    argv: list[str] | None = None,
    final_decodes: tuple[str, ...] | None = None,
    resume: bool = False,
    checkpoint_every: int = 0,
    deadline: float | None = None,
    on_progress: object = None,
) -> dict:
    """Train and evaluate one configuration; write config, metrics, history and checkpoint to `out`.

    Returns the metrics dict (forward/backward exact-match accuracy in [0, 1], per-token
    accuracies, incorrect inference where defined, learning-curve history).

    With `out`, the training state is saved to `out/train_state/` every `checkpoint_every` steps
    (0: at every evaluation) and removed once the results are written. `resume=True` continues
    an interrupted run from that state, and returns the stored metrics of a run that already
    finished with the same configuration.

    `deadline` (a `time.time()` value): the run must be finished by then. After building the task
    and model, the training budget becomes whatever is left before the deadline minus the final
    evaluation's budget (`eval_seconds`, default 60 s) and a margin; the lr schedule shrinks to
    fit it (see `TrainConfig.max_seconds`). With `out`, `out/progress.json` holds the learning
    curve so far after every evaluation (and `on_progress()` is called), so a run killed by a
    time limit keeps it.
    """
    if resume and out is not None:
        done = _finished(Path(out), cfg)
        if done is not None:
            return done
    dev = resolve_device(device)
    distributed = maybe_init_distributed(dev)
    rank, world = dist_info()
    if distributed and dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    objective = get_objective(cfg.objective)
    family = cfg.resolved_family
    task = build_task(cfg)
    if not task.test:
        raise ValueError(f"task {task.name!r} has no test queries with this configuration")
    seqs = training_sequences(task, objective.reversal)
    vocab = Vocab.train(seqs + task.corpus())
    length = max(len(s) for s in seqs + task.corpus()) + 2
    data = encode_sequences(vocab, seqs, length)
    context = task.context_lengths()
    targets = target_mask(data, vocab.pad_id, context)
    mcfg = ModelConfig(
        family=family, vocab_size=len(vocab), max_len=length, d_model=cfg.d_model,
        n_heads=cfg.n_heads, n_layers=cfg.model_layers, decoder_positions=cfg.decoder_positions,
        pad_id=vocab.pad_id, bos_id=vocab.bos_id,
        eos_id=vocab.eos_id, mask_id=vocab.mask_id,
    )
    model = build_model(mcfg).to(dev)
    # learning curves (and every choice of hyperparameters) use the validation queries only
    curve_queries = curve_subset(task.validation, cfg.eval_max_queries, cfg.seed)

    # PAST trained with AR/PLM saw query-specific (causal / permuted) masks: decode alike
    roa = family == "past" and objective.kind in ("ar", "plm")

    def evaluate(m: torch.nn.Module) -> dict:
        if not curve_queries:
            return {}
        r = evaluate_queries(m, family, vocab, curve_queries, length, order=cfg.decode, device=dev,
                             reveal_order_attention=roa)
        return {f"val_{k}": v for k, v in r.items() if k.endswith(("accuracy", "incorrect_inference"))}

    state_dir = None if out is None else Path(out) / "train_state"
    if state_dir is not None and rank == 0:
        _claim_state_dir(state_dir, cfg, resume)
    tcfg = cfg.train_config()
    if deadline is not None:
        reserve = (cfg.eval_seconds or 60.0) + 15.0
        budget = max(1.0, deadline - time.time() - reserve)
        tcfg = replace(tcfg, max_seconds=min(tcfg.max_seconds or budget, budget))

    def on_record(history: list[dict]) -> None:
        if out is None:
            return
        Path(out).mkdir(parents=True, exist_ok=True)
        _write_json(Path(out) / "progress.json", {
            "status": "training", "task": cfg.task, "objective": cfg.objective, "family": family,
            "steps_planned": cfg.steps, "n_parameters": count_parameters(model), "history": history})
        if callable(on_progress):
            on_progress()

    t_train = time.perf_counter()
    history = train(
        model, family, objective, data, tcfg, pad_id=vocab.pad_id, seed=cfg.seed,
        device=dev, evaluate=evaluate, progress=not quiet,
        state_dir=state_dir, checkpoint_every=checkpoint_every, resume=resume, targets=targets,
        on_record=on_record,
    )
    # training seconds spent before a --resume (the history's clock includes them)
    earlier = max(0.0, history[-1]["seconds"] - (time.perf_counter() - t_train)) if history else 0.0
    bounded = cfg.eval_seconds > 0
    decodes = final_decodes or (
        (cfg.decode,) if family == "gpt2" or bounded else tuple(dict.fromkeys((cfg.decode, "l2r", "confidence")))
    )
    test_queries = task.test
    if cfg.test_max_queries:
        test_queries = shuffled_subset(task.test, cfg.test_max_queries, cfg.seed + 1)
    eval_start = time.perf_counter()

    def evaluate_final(queries: list, order: str, share: float, **kw: object) -> dict:
        if not bounded:
            return evaluate_queries(model, family, vocab, queries, length, order=order, device=dev,
                                    reveal_order_attention=roa, **kw)
        limit = eval_start + share * cfg.eval_seconds
        return bounded_evaluate(model, family, vocab, queries, length, limit, order=order, device=dev,
                                reveal_order_attention=roa, **kw)

    # every rank evaluates its share (inside the collective); rank 0 writes
    by_decode = {}
    for order in decodes:
        by_decode[order] = evaluate_final(test_queries, order, 0.7, return_predictions=(order == cfg.decode))
    main = by_decode[cfg.decode]
    val = evaluate_final(task.validation, cfg.decode, 0.9) if task.validation else {}
    fit = evaluate_final(task.train_queries[: 100 if bounded else 200], cfg.decode, 1.0)
    metrics: dict = {}
    if rank == 0:
        metrics = {
            "task": task.name,
            "objective": cfg.objective,
            "family": family,
            "decode": cfg.decode,
            "forward_accuracy": main["forward_accuracy"],
            "backward_accuracy": main["backward_accuracy"],
            "forward_token_accuracy": main["forward_token_accuracy"],
            "backward_token_accuracy": main["backward_token_accuracy"],
            "incorrect_inference": main.get("incorrect_inference"),
            "val_forward_accuracy": val.get("forward_accuracy"),
            "val_backward_accuracy": val.get("backward_accuracy"),
            "train_query_forward_accuracy": fit["forward_accuracy"],
            "train_query_backward_accuracy": fit["backward_accuracy"],
            "by_decode": {k: {kk: vv for kk, vv in v.items() if kk != "predictions"} for k, v in by_decode.items()},
            "n_test_forward": main["forward_count"],
            "n_test_backward": main["backward_count"],
            "n_test_total": len(task.test),
            "test_evaluated": main.get("evaluated", len(test_queries)),
            "eval_seconds_used": time.perf_counter() - eval_start,
            "n_val_forward": val.get("forward_count", 0),
            "n_val_backward": val.get("backward_count", 0),
            "n_train_sequences": int(data.shape[0]),
            "n_loss_targets": int(targets.sum()),
            "sequence_length": length,
            "vocab_size": len(vocab),
            "n_parameters": count_parameters(model),
            "n_layers": cfg.model_layers,
            "steps": cfg.steps,
            "steps_done": history[-1]["step"] if history else 0,
            "steps_budgeted": history[-1].get("steps_budgeted") if history else None,
            "world_size": world,
            "device": str(dev),
            "seconds": earlier + time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - cpu0,
            "task_description": task.description,
            "protocol": "curves on validation queries; test scored once at the end",
            "history": history,
        }
        if task.name == "star-graph":
            metrics["note"] = "star graph: forward_accuracy = path exact match; no backward query (null)"
        if out is not None:
            out = Path(out)
            out.mkdir(parents=True, exist_ok=True)
            _write_json(out / "config.json", asdict(cfg))
            _write_json(out / "run.json", {
                "argv": argv if argv is not None else sys.argv, "seed": cfg.seed,
                "versions": _versions(), "device": str(dev), "world_size": world,
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            })
            save_checkpoint(model, out / "checkpoint", {"model": asdict(mcfg), "run": asdict(cfg)})
            vocab.save(out / "checkpoint" / "tokenizer.json")
            preds = by_decode[cfg.decode]["predictions"]
            _write_json(out / "predictions.json", [
                {"prompt": " ".join(q.prompt), "answer": " ".join(q.answer), "predicted": p,
                 "direction": q.direction} for q, p in zip(test_queries, preds)
            ])
            _write_json(out / "metrics.json", metrics)
            shutil.rmtree(out / "train_state", ignore_errors=True)
    if distributed:
        import torch.distributed as dist

        dist.barrier()
    return metrics
