"""Console script ``grokking-theory``: train, rqi, critical-fraction, phase-diagram, merge,
compare-authors, trajectories, plot, modular-addition, transformer-sweep, s3, digits, digits-diagram."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from grokking_theory._config import ToyConfig
from grokking_theory._phases import AUTHORS_BUDGET, DEFAULT_BUDGET, GRID_NAMES

TOY = ToyConfig()
QUICK_TRAIN_STEPS = 2000
QUICK_DIAGRAM_STEPS = 2000
S3_QUICK_STEPS = 3000
DIGITS_QUICK_STEPS = 1000


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2), for people and for log parsers alike."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _device(name: str) -> str:
    """``auto|cpu|cuda|cuda:N``; an invalid name is refused before CUDA is even asked."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N; {name!r} is not a device name")
    if name == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"--device {name} requested but CUDA is not available; use --device cpu or auto")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
    return name


def _out(args: argparse.Namespace, default: Path | None = None) -> Path | None:
    """The ``--out`` folder, created and proven writable before any work (None if not given)."""
    from grokking_theory._sweep import check_out_dir

    out = args.out if args.out is not None else default
    return None if out is None else check_out_dir(out)


def _common(p: argparse.ArgumentParser, *, seed_help: str = f"random seed (default {TOY.seed})") -> None:
    p.add_argument("--out", type=Path, default=None, help="output folder, checked writable before any work (default: none)")
    p.add_argument("--seed", type=int, default=None, help=seed_help)
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N (default: auto)")
    p.add_argument("--quick", action="store_true", help="small, fast version (default: off)")
    p.add_argument("--config", type=Path, default=None, help="JSON file with ToyConfig fields (default: none)")
    p.add_argument("--quiet", action="store_true", help="no progress output (default: off)")


def _toy_flags(p: argparse.ArgumentParser, *, steps_help: str) -> None:
    p.add_argument("--p", type=int, default=None, help=f"number of symbols (>= 3; default {TOY.p})")
    p.add_argument("--train-fraction", type=float, default=None, help=f"fraction of the p(p+1)/2 pairs in training, in (0, 1] (default {TOY.train_num}/{TOY.n_samples})")
    p.add_argument("--steps", type=int, default=None, help=steps_help)
    p.add_argument("--loss", choices=("mse", "ce"), default=None, help=f"regression (mse) or classification (ce) (default {TOY.loss})")
    p.add_argument("--eta-reprs", type=float, default=None, help=f"representation AdamW lr (default {TOY.eta_reprs:g})")
    p.add_argument("--eta-dec", type=float, default=None, help=f"decoder AdamW lr (default {TOY.eta_dec:g})")
    p.add_argument("--wd-reprs", type=float, default=None, help=f"representation weight decay (default {TOY.weight_decay_reprs:g})")
    p.add_argument("--wd-dec", type=float, default=None, help=f"decoder weight decay (default {TOY.weight_decay_dec:g})")
    p.add_argument("--reprs-dim", type=int, default=None, help=f"embedding dimension (default {TOY.reprs_dim})")
    p.add_argument("--init-scale-reprs", type=float, default=None, help=f"embedding init scale (default {TOY.init_scale_reprs:g})")
    p.add_argument("--decoder-norm", choices=("free", "fixed-spectral"), default=None, help=f"hold each decoder layer's spectral norm at its initial value via lipschitz-core (train only; default {TOY.decoder_norm})")
    p.add_argument("--decoder-norm-scale", type=float, default=None, help=f"with fixed-spectral: norms held at this multiple of their initial values (default {TOY.decoder_norm_scale:g})")
    p.add_argument("--rng-order", choices=("toy", "sweep"), default=None, help=f"replay train_add.py (toy) or the phase-diagram notebooks (sweep) (default {TOY.rng_order} for train, sweep for phase-diagram)")


def _config(args: argparse.Namespace, **defaults: object) -> ToyConfig:
    from grokking_theory._combinatorics import train_num_from_fraction

    cfg = ToyConfig.from_json(args.config) if args.config else ToyConfig(**defaults)
    ch: dict[str, object] = {}
    for flag, field in (("p", "p"), ("steps", "steps"), ("loss", "loss"), ("eta_reprs", "eta_reprs"),
                        ("eta_dec", "eta_dec"), ("wd_reprs", "weight_decay_reprs"),
                        ("wd_dec", "weight_decay_dec"), ("reprs_dim", "reprs_dim"),
                        ("rng_order", "rng_order"), ("seed", "seed"), ("decoder_norm", "decoder_norm"),
                        ("decoder_norm_scale", "decoder_norm_scale"), ("init_scale_reprs", "init_scale_reprs")):
        v = getattr(args, flag, None)
        if v is not None:
            ch[field] = v
    p = int(ch.get("p", cfg.p))
    if p < 3:
        raise ValueError(f"--p must be >= 3, got {p}")
    if getattr(args, "train_fraction", None) is not None:
        ch["train_num"] = train_num_from_fraction(p, args.train_fraction)
    elif "p" in ch and ch["p"] != cfg.p:
        ch["train_num"] = train_num_from_fraction(p, cfg.train_num / cfg.n_samples)
    return cfg.replace(**ch)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from grokking_theory._io import save_checkpoint, write_json, write_run_record
    from grokking_theory._theory import predicted_time_to_structure
    from grokking_theory._toy import train_toy

    torch.set_num_threads(1)
    cfg = _config(args, **({"steps": QUICK_TRAIN_STEPS} if args.quick else {}))
    device = _device(args.device)
    out = _out(args)
    run = train_toy(cfg, device=device, progress=not args.quiet)
    metrics = run.metrics()
    metrics.update({f"effective_{k}": v for k, v in
                    predicted_time_to_structure(cfg.p, run.train_ids, eta=cfg.eta_reprs).items()})
    if out:
        write_run_record(out, config=cfg.to_dict(), seed=cfg.seed, device=device)
        write_json(out / "metrics.json", metrics)
        write_json(out / "curves.json", {"train_acc": run.train_acc, "test_acc": run.test_acc,
                                         "rqi": run.rqi, "loss": run.loss})
        tensors = {"reprs": torch.as_tensor(run.reprs[-1])}
        tensors.update({f"decoder.{k}": v for k, v in run.decoder.state_dict().items()})
        save_checkpoint(out / "model.safetensors", tensors, cfg.to_dict())
        from grokking_theory._plot import plot_run

        plot_run({**metrics, **json.loads((out / "curves.json").read_text())}, out / "curves.png",
                 title=f"p={cfg.p}, train {cfg.train_num}/{cfg.n_samples}, seed {cfg.seed}")
    summary = {k: metrics[k] for k in ("step_train_acc", "step_test_acc", "step_rqi",
                                       "final_train_acc", "final_test_acc", "final_rqi",
                                       "ideal_test_acc", "pred_test_acc")}
    print(json.dumps(summary))
    return 0


def cmd_rqi(args: argparse.Namespace) -> int:
    from grokking_theory._combinatorics import rqi
    from grokking_theory._io import load_checkpoint

    if args.checkpoint is not None:
        emb = load_checkpoint(args.checkpoint)["reprs"].numpy()
    elif args.embedding is not None:
        try:
            emb = np.array([float(v) for v in args.embedding.split(",")])[:, None]
        except ValueError as err:
            raise ValueError(f"--embedding must be comma-separated numbers, got {args.embedding!r}") from err
    else:
        raise ValueError("give --checkpoint FILE (from `train --out`) or --embedding v0,v1,...")
    print(json.dumps({"p": len(emb), "rqi": rqi(emb, tol=args.tol), "tol": args.tol}))
    return 0


def cmd_critical(args: argparse.Namespace) -> int:
    from grokking_theory._io import write_json
    from grokking_theory._theory import critical_fraction

    trials = args.trials if args.trials is not None else (500 if args.quick else 10000)
    if trials < 1:
        raise ValueError(f"--trials must be >= 1, got {trials}")
    out = _out(args)
    res = critical_fraction(args.p, trials=trials, seed=0 if args.seed is None else args.seed,
                            progress=not args.quiet)
    if out:
        write_json(out / "critical_fraction.json", res)
    print(json.dumps(res))
    return 0


def _phase_setup(args: argparse.Namespace) -> dict:
    """Everything ``phase-diagram`` will run, validated, before any training."""
    from grokking_theory._phases import grid
    from grokking_theory._sweep import parse_seeds, parse_shard

    if not args.lag > 0:
        raise ValueError(f"--lag must be > 0 steps, got {args.lag:g}")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise ValueError(f"--max-seconds must be > 0, got {args.max_seconds:g}")
    shard = parse_shard(args.shard)
    loss = args.loss or (ToyConfig.from_json(args.config).loss if args.config else "mse")
    g = grid(args.grid, loss)
    xs, ys = g.x_values, g.y_values
    if args.quick:
        xs, ys = xs[:: max(1, len(xs) // 4)], ys[:: max(1, len(ys) // 4)]
    defaults: dict[str, object] = {"rng_order": "sweep", "steps": QUICK_DIAGRAM_STEPS if args.quick else g.budget}
    if g.seeds is not None:
        defaults["seed"] = g.seeds[0]
    cfg = _config(args, **defaults)
    if cfg.loss == "ce" and args.config is None:
        # the classification notebook: softmax + mean(-log p * onehot) = CE/(2p-1), Adam on E
        cfg = cfg.replace(ce_scale=1 / (2 * cfg.p - 1), repr_optimizer="adam")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else (g.seeds or [cfg.seed])
    return {"grid": g, "config": cfg, "xs": xs, "ys": ys, "seeds": seeds, "shard": shard}


def cmd_phase(args: argparse.Namespace) -> int:
    from grokking_theory._batched import run_sweep
    from grokking_theory._io import write_json
    from grokking_theory._phases import assemble, diagram_payload, sweep_cells, sweep_meta
    from grokking_theory._sweep import CellWriter, SweepStore

    st = _phase_setup(args)
    cfg, g = st["config"], st["grid"]
    device = _device(args.device)
    out = _out(args, Path("phase_diagram"))
    meta = sweep_meta(cfg, g.x_name, st["xs"], g.y_name, st["ys"], st["seeds"], args.lag)
    cells, specs = sweep_cells(cfg, g.x_name, st["xs"], g.y_name, st["ys"], st["seeds"])
    k, n = st["shard"]
    mine = [c for c in cells if c.index % n == k]
    store = SweepStore(out, meta)
    store.start()
    done = store.done(mine) if args.resume else {}
    todo = [c for c in mine if c.key not in done]
    experiment = f"phase_diagram_{g.name}_{cfg.loss}"

    def refresh() -> None:
        found = SweepStore(out, meta).done(cells)
        dia, mask = assemble(meta, found)
        write_json(out / "record.json", diagram_payload(meta, dia, mask, experiment=experiment))

    if not args.quiet:
        print(f"[grokking-theory] phase-diagram: {len(cells)} cells, shard {k}/{n}: {len(mine)}, "
              f"finished {len(done)}, to run {len(todo)}", file=sys.stderr, flush=True)
    if todo:
        import torch

        if not device.startswith("cuda"):
            torch.set_num_threads(1)
        import time

        # on a GPU all cells run as one batch, except that seeds go one batch after another (in
        # --seeds order): a run stopped by --max-seconds then holds whole seeds, the first ones
        # first, instead of only the quickly generalizing cells of every seed
        groups = _device_batches(todo, st["seeds"], device)
        t0 = time.perf_counter()
        for group in groups:
            left = None if args.max_seconds is None else args.max_seconds - (time.perf_counter() - t0)
            if left is not None and left <= 0:
                break
            run_sweep(cfg, [specs[c.index] for c in group], workers=args.workers, device=device,
                      progress=not args.quiet, max_seconds=left, on_finish=CellWriter(out, meta, group, after=refresh))
    refresh()
    found = store.done(cells)
    summary: dict[str, object] = {"out": str(out), "cells": len(cells), "finished": len(found)}
    if len(found) == len(cells):
        summary["phase_counts"] = _write_diagram(out, meta, found)
    elif n > 1:
        summary["next"] = f"run the other shards, then: grokking-theory merge {out} [SHARD_FOLDERS ...]"
    else:
        summary["next"] = "cells were cut short by --max-seconds; rerun with --resume to finish them"
    print(json.dumps(summary))
    return 0


def _device_batches(todo: list, seeds: list[int], device: str) -> list[list]:
    """Cells to run as separate batches: one per seed (in ``seeds`` order) on a GPU, all at once on a CPU."""
    if not device.startswith("cuda"):
        return [todo]
    return [g for g in ([c for c in todo if c.values["seed"] == s] for s in seeds) if g]


def _write_diagram(out: Path, meta: dict, found: dict) -> dict:
    from grokking_theory._io import write_json
    from grokking_theory._phases import assemble
    from grokking_theory._plot import plot_phase_diagram

    dia, _ = assemble(meta, found)
    write_json(out / "phase_diagram.json", dia.to_dict())
    plot_phase_diagram(dia, out / "phase_diagram.png")
    return dia.phase_counts()


def cmd_merge(args: argparse.Namespace) -> int:
    from grokking_theory._io import write_json
    from grokking_theory._phases import assemble, diagram_payload, sweep_cells
    from grokking_theory._sweep import collect_cells, read_json

    sources = [Path(s) for s in (args.sources or [args.out])]
    metas = []
    for s in sources:
        if not (s / "sweep.json").exists():
            raise FileNotFoundError(f"{s} holds no sweep.json: not a phase-diagram --out folder")
        metas.append(read_json(s / "sweep.json"))
    meta = metas[0]
    for s, m in zip(sources[1:], metas[1:]):
        if m.get("grid") != meta.get("grid"):
            raise ValueError(f"{s} holds a different sweep than {sources[0]} (sweep.json grids differ)")
    out = _out(args)
    g = meta["grid"]
    cells, _ = sweep_cells(ToyConfig.from_dict(g["config"]), g["x_name"], g["x_values"], g["y_name"],
                           g["y_values"], g["seeds"])
    found, missing = collect_cells(sources, cells)
    if missing and not args.allow_partial:
        raise ValueError(f"{len(missing)} of {len(cells)} cells are missing (e.g. {missing[0].key}); "
                         "run the missing shards with --resume, or pass --allow-partial")
    write_json(out / "sweep.json", meta)
    dia, mask = assemble(meta, found)
    cfg = ToyConfig.from_dict(g["config"])
    write_json(out / "record.json", diagram_payload(meta, dia, mask, experiment=f"phase_diagram_{cfg.loss}"))
    summary: dict[str, object] = {"out": str(out), "cells": len(cells), "finished": len(found)}
    if not missing:
        summary["phase_counts"] = _write_diagram(out, meta, found)
    print(json.dumps(summary))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from grokking_theory._authors import compare_with_authors, load_authors_h5, load_results
    from grokking_theory._io import write_json

    authors = load_authors_h5(args.h5)
    ours, mask = load_results(args.results)
    out = _out(args)
    res = compare_with_authors(authors, ours, mask, lag=args.lag)
    if out:
        write_json(out / "record.json", res)
    print(json.dumps(res["metrics"]))
    return 0


def cmd_trajectories(args: argparse.Namespace) -> int:
    import torch

    from grokking_theory._io import write_json
    from grokking_theory._theory import network_vs_effective, plot_trajectories

    torch.set_num_threads(1)
    cfg = _config(args, **({"steps": QUICK_TRAIN_STEPS} if args.quick else {}))
    device = _device(args.device)
    out = _out(args)
    res = network_vs_effective(cfg, device=device, rows=args.rows, progress=not args.quiet)
    m = res["metrics"]
    if out:
        every = max(1, cfg.steps // 500)
        write_json(out / "record.json", {
            "experiment": "trajectories", "seeds": [cfg.seed], "config": {**cfg.to_dict(), "rows": args.rows},
            "metrics": {**m, "network_traj_every": every,
                        "network_traj": res["network"][::every], "effective_traj": res["effective"][::every]},
            "tables": [{"name": "trajectories", "caption": "network vs effective theory (Fig. 4c-d)",
                        "columns": ["trajectory", "first step RQI > 0.95", "final RQI"],
                        "rows": [["network", m["network_step_rqi"] if m["network_step_rqi"] is not None else "never",
                                  m["network_final_rqi"]],
                                 ["effective theory", m["effective_step_rqi"] if m["effective_step_rqi"] is not None else "never",
                                  m["effective_final_rqi"]]],
                        "formats": {"final RQI": ".3f"}}],
        })
        plot_trajectories(res, out / "trajectories.png")
    print(json.dumps(m))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from grokking_theory._plot import plot_phase_diagram, plot_run

    src: Path = args.source
    if (src / "phase_diagram.json").exists():
        from grokking_theory._phases import PhaseDiagram

        d = json.loads((src / "phase_diagram.json").read_text())
        dia = PhaseDiagram(
            x_name=d["x_name"], x_values=d["x_values"], y_name=d["y_name"], y_values=d["y_values"],
            seeds=d["seeds"], budget=d["budget"], lag=d["lag"],
            step_train=np.array(d["step_train"]), step_test=np.array(d["step_test"]),
            step_rqi=np.array(d["step_rqi"]), final_rqi=np.array(d["final_rqi"], dtype=float),
            config=ToyConfig.from_dict(d["config"]),
        )
        print(plot_phase_diagram(dia, args.out or src / "phase_diagram.png"))
    elif (src / "metrics.json").exists() and (src / "curves.json").exists():
        data = {**json.loads((src / "metrics.json").read_text()), **json.loads((src / "curves.json").read_text())}
        print(plot_run(data, args.out or src / "curves.png"))
    else:
        raise FileNotFoundError(f"{src} holds neither phase_diagram.json nor metrics.json + curves.json")
    return 0


def _beyond_common(p: argparse.ArgumentParser, *, seed_default: int = 0) -> None:
    p.add_argument("--out", type=Path, default=None, help="output folder for metrics.json, curves.json, PNG, checked writable before any work (default: none)")
    p.add_argument("--seed", type=int, default=None, help=f"random seed (default {seed_default})")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N (default: auto)")
    p.add_argument("--quick", action="store_true", help="small, fast version (default: off)")
    p.add_argument("--steps", type=int, default=None, help="update budget (default: the config's; fewer with --quick)")
    p.add_argument("--quiet", action="store_true", help="no progress output (default: off)")


def _overrides(args: argparse.Namespace, pairs: tuple[tuple[str, str], ...]) -> dict[str, object]:
    return {field: getattr(args, flag) for flag, field in pairs if getattr(args, flag, None) is not None}


def _write_beyond(out: Path, cfg_dict: dict, seed: int, device: str, metrics: dict, curves: dict) -> None:
    from grokking_theory._io import write_json, write_run_record

    write_run_record(out, config=cfg_dict, seed=seed, device=device)
    write_json(out / "metrics.json", metrics)
    write_json(out / "curves.json", curves)


MODADD_FLAGS = (("p", "p"), ("train_fraction", "train_fraction"), ("steps", "steps"), ("seed", "seed"),
                ("layers", "n_layers"), ("d_model", "d_model"), ("heads", "n_heads"), ("d_mlp", "d_mlp"),
                ("embed_lr", "embed_lr"), ("decoder_lr", "decoder_lr"), ("embed_wd", "embed_wd"),
                ("decoder_wd", "decoder_wd"), ("dropout", "dropout"), ("op_token", "op_token"))


def _modadd_flags(p: argparse.ArgumentParser) -> None:
    from grokking_theory._modadd import ModAddConfig

    d = ModAddConfig()
    p.add_argument("--p", type=int, default=None, help=f"modulus (>= 3; default {d.p})")
    p.add_argument("--train-fraction", type=float, default=None, help=f"fraction of the p^2 pairs in training, in (0, 1) (default {d.train_fraction:g})")
    p.add_argument("--layers", type=int, default=None, help=f"transformer blocks (default {d.n_layers})")
    p.add_argument("--d-model", type=int, default=None, help=f"model width (default {d.d_model})")
    p.add_argument("--heads", type=int, default=None, help=f"attention heads (default {d.n_heads})")
    p.add_argument("--d-mlp", type=int, default=None, help=f"MLP width (default {d.d_mlp})")
    p.add_argument("--embed-lr", type=float, default=None, help=f"token-embedding AdamW lr (default {d.embed_lr:g})")
    p.add_argument("--decoder-lr", type=float, default=None, help=f"decoder (everything but the token embedding) AdamW lr (default {d.decoder_lr:g})")
    p.add_argument("--embed-wd", type=float, default=None, help=f"token-embedding weight decay (default {d.embed_wd:g})")
    p.add_argument("--decoder-wd", type=float, default=None, help=f"decoder weight decay (default {d.decoder_wd:g})")
    p.add_argument("--dropout", type=float, default=None, help=f"dropout in the blocks, in [0, 1) (default {d.dropout:g})")
    p.add_argument("--op-token", action=argparse.BooleanOptionalAction, default=None, help=f"append an '=' token (default {'on' if d.op_token else 'off'}: the paper's sequence is [a, b])")


def cmd_modadd(args: argparse.Namespace) -> int:
    import torch

    from grokking_theory._io import write_json
    from grokking_theory._modadd import ModAddConfig, plot_modular_addition, train_modular_addition

    torch.set_num_threads(1)
    base = ModAddConfig.quick() if args.quick else ModAddConfig()
    cfg = base.replace(**_overrides(args, MODADD_FLAGS))
    device = _device(args.device)
    out = _out(args)
    res = train_modular_addition(cfg, device=device, progress=not args.quiet)
    if out:
        from grokking_theory._io import save_checkpoint

        _write_beyond(out, cfg.to_dict(), cfg.seed, device, res["metrics"],
                      {**res["curves"], "embedding_top2": res["embedding_top2"],
                       "embedding_best_pair": res["embedding_best_pair"]})
        save_checkpoint(out / "model.safetensors", res["model"].state_dict(), cfg.to_dict())
        plot_modular_addition(res, out / "modular_addition.png")
        m = res["metrics"]
        write_json(out / "record.json", {
            "experiment": "modular_addition", "seeds": [cfg.seed], "config": cfg.to_dict(),
            "metrics": {k: v for k, v in m.items()},
            "tables": [{"name": "main", "caption": f"(a+b) mod {cfg.p}, {cfg.steps} steps, seed {cfg.seed}",
                        "columns": ["quantity", "measured"],
                        "rows": [[k.replace("_", " "), "never" if m[k] is None else m[k]] for k in (
                            "step_train_acc", "step_test_acc", "grokking_delay", "final_train_acc",
                            "final_test_acc", "effective_dim_init", "effective_dim_max",
                            "step_effective_dim_max", "effective_dim_final", "top2_variance_fraction",
                            "circularity", "circularity_null_p95", "best_pair_circularity")]}],
        })
    print(json.dumps({k: v for k, v in res["metrics"].items() if k != "pca_variance_fractions"}))
    return 0


def cmd_transformer_sweep(args: argparse.Namespace) -> int:
    from grokking_theory._modadd import ModAddConfig
    from grokking_theory._modadd_sweep import SWEEP_AXES, run_transformer_sweep
    from grokking_theory._sweep import parse_seeds, parse_shard

    base = ModAddConfig.quick() if args.quick else ModAddConfig()
    cfg = base.replace(**_overrides(args, MODADD_FLAGS))
    seeds = parse_seeds(args.seeds)
    shard = parse_shard(args.shard)
    if args.axes not in SWEEP_AXES:
        raise ValueError(f"--axes must be one of {sorted(SWEEP_AXES)}, got {args.axes!r}")
    if args.batch < 1:
        raise ValueError(f"--batch must be >= 1, got {args.batch}")
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise ValueError(f"--max-seconds must be > 0, got {args.max_seconds:g}")
    if not args.progress_every > 0:
        raise ValueError(f"--progress-every must be > 0 seconds, got {args.progress_every:g}")
    device = _device(args.device)
    out = _out(args, Path("transformer_sweep"))
    summary = run_transformer_sweep(cfg, axes=args.axes, seeds=seeds, out=out, device=device,
                                    shard=shard, resume=args.resume, batch=args.batch,
                                    quick_axes=args.quick, max_seconds=args.max_seconds,
                                    early_stop=args.early_stop, progress=not args.quiet,
                                    progress_every_s=args.progress_every)
    print(json.dumps(summary))
    return 0


def _phase_name(tr: int, te: int, lag: float) -> str:
    from grokking_theory._phases import PHASES, classify_phase

    return PHASES[int(classify_phase(np.array([tr]), np.array([te]), lag=lag)[0])]


def cmd_s3(args: argparse.Namespace) -> int:
    import torch

    from grokking_theory._group import (
        PERM_WD,
        PRESETS,
        S3Config,
        S3Run,
        load_perm_h5,
        plot_s3,
        train_s3,
    )
    from grokking_theory._io import write_json
    from grokking_theory._phases import LR_16, PHASES, classify_phase, truncate_budget
    from grokking_theory._sweep import parse_seeds

    torch.set_num_threads(1)
    base = S3Config(**PRESETS[args.preset])
    steps = args.steps if args.steps is not None else (S3_QUICK_STEPS if args.quick else base.steps)
    cfg = base.replace(steps=steps, **_overrides(args, (
        ("train_num", "train_num"), ("eta_reprs", "eta_reprs"), ("eta_dec", "eta_dec"),
        ("wd_dec", "weight_decay_dec"), ("init_scale_reprs", "init_scale_reprs"), ("l1", "l1"))))
    if not args.lag > 0:
        raise ValueError(f"--lag must be > 0 steps, got {args.lag:g}")
    seeds = parse_seeds(args.seeds)
    if args.authors is not None and args.grid != "authors":
        raise ValueError("--authors needs --grid authors (the file's decoder lr x decoder wd grid)")
    authors = load_perm_h5(args.authors) if args.authors is not None else None
    if args.grid == "authors":
        lrs, wds = LR_16, PERM_WD
        if args.quick:
            lrs, wds = lrs[::4], wds[::2]
    else:
        lrs, wds = [cfg.eta_dec], [cfg.weight_decay_dec]
    device = _device(args.device)
    out = _out(args)
    runs = [S3Run(s, lr, wd) for s in seeds for lr in lrs for wd in wds]
    res = train_s3(cfg, runs, device=device, early_stop=args.grid == "authors", progress=not args.quiet)
    lag = args.lag
    rows, cells = [], []
    for i, r in enumerate(runs):
        tr, te, rq = (int(res[k][i]) for k in ("step_train", "step_test", "step_rqi"))
        cell = {"seed": r.seed, "eta_dec": r.eta_dec, "weight_decay_dec": r.weight_decay_dec, "step_train": tr,
                "step_test": te, "step_rqi": rq, "final_train_acc": float(res["final_train_acc"][i]),
                "final_test_acc": float(res["final_test_acc"][i]), "final_rqi": float(res["final_rqi"][i]),
                "stopped_at": int(res["stopped_at"][i]), "phase": _phase_name(tr, te, lag),
                "train_ids": res["train_ids"][i].tolist()}
        cells.append(cell)
        rows.append([r.seed, r.eta_dec, r.weight_decay_dec] + [v if v >= 0 else "never" for v in (tr, te, rq)]
                    + [cell["final_test_acc"], cell["final_rqi"], cell["phase"]])
    tables = [{"name": "runs", "caption": f"S3 matrix-product toy, {cfg.train_num}/36 pairs in training, "
               f"budget {cfg.steps}, init scale {cfg.init_scale_reprs:g}, L1 {cfg.l1:g}",
               "columns": ["seed", "decoder lr", "decoder wd", "step train acc >= 0.9", "step test acc >= 0.9",
                           "step RQI > 0.95", "final test acc", "final RQI", "phase"],
               "rows": rows, "formats": {"decoder lr": ".2e", "final test acc": ".3f", "final RQI": ".3f"}}]
    metrics: dict[str, object] = {"cells": cells, "phase_counts": {p: sum(c["phase"] == p for c in cells) for p in PHASES}}
    if authors is not None:
        li = [int(np.argmin(np.abs(np.array(authors["eta_dec"]) - v))) for v in lrs]
        wi = [int(np.argmin(np.abs(np.array(authors["weight_decay_dec"]) - v))) for v in wds]
        a_tr = truncate_budget(authors["train"][np.ix_(li, wi)], cfg.steps)
        a_te = truncate_budget(authors["test"][np.ix_(li, wi)], cfg.steps)
        a_ph = classify_phase(a_tr, a_te, lag=lag)
        comp_rows = []
        per_seed = {}
        for si, s in enumerate(seeds):
            block = cells[si * len(lrs) * len(wds):(si + 1) * len(lrs) * len(wds)]
            ours = np.array([PHASES.index(c["phase"]) for c in block]).reshape(len(lrs), len(wds))
            same = float((ours == a_ph).mean())
            ident = int(sum((c["step_train"], c["step_test"]) == (int(a_tr.flat[k]), int(a_te.flat[k]))
                            for k, c in enumerate(block)))
            per_seed[str(s)] = {"same_phase": same, "identical_steps": ident}
            comp_rows.append([s, ours.size, same, ident] + [int((ours == k).sum()) for k in range(4)])
        comp_rows.append(["authors", a_ph.size, 1.0, a_ph.size] + [int((a_ph == k).sum()) for k in range(4)])
        metrics["authors"] = {"file": str(args.authors), "eta_dec": [authors["eta_dec"][k] for k in li],
                              "weight_decay_dec": [authors["weight_decay_dec"][k] for k in wi],
                              "step_train": a_tr.tolist(), "step_test": a_te.tolist(), "per_seed": per_seed}
        tables.append({"name": "authors", "caption": f"same phase as data_perm_r.h5 on {len(lrs)} decoder lr x "
                       f"{len(wds)} decoder wd cells (authors' steps truncated to budget {cfg.steps}, lag {lag:g})",
                       "columns": ["seed", "cells", "same phase", "identical steps", *PHASES],
                       "rows": comp_rows, "formats": {"same phase": ".3f"}})
    payload = {"experiment": "s3_toy", "seeds": seeds,
               "config": {**cfg.to_dict(), "preset": args.preset, "grid": args.grid, "eta_dec_values": lrs,
                          "weight_decay_dec_values": wds, "lag": lag},
               "metrics": metrics, "tables": tables}
    if out:
        write_json(out / "record.json", payload)
        if args.grid != "authors":
            every = max(1, len(res["curve_steps"]) // 400)
            write_json(out / "curves.json", {"step": res["curve_steps"][::every],
                                             **{k: v[:, ::every] for k, v in res["curves"].items()}})
            plot_s3(res, [f"seed {r.seed}" for r in runs], out / "s3_curves.png",
                    title=f"S3 toy: lr {cfg.eta_dec:g}, wd {cfg.weight_decay_dec:g}, {cfg.train_num}/36 train")
    print(json.dumps({"phase_counts": metrics["phase_counts"],
                      **({"same_phase": metrics["authors"]["per_seed"]} if authors is not None else {})}))
    return 0


def cmd_digits(args: argparse.Namespace) -> int:
    import torch

    from grokking_theory._digits import DigitsConfig, digits_grokking, plot_digits

    torch.set_num_threads(1)
    base = DigitsConfig(steps=2000) if args.quick else DigitsConfig()
    cfg = base.replace(**_overrides(args, (("n_train", "n_train"), ("alpha", "alpha"), ("loss", "loss"),
                                           ("steps", "steps"), ("lr", "lr"),
                                           ("weight_decay", "weight_decay"), ("seed", "seed"),
                                           ("threshold", "threshold"), ("last_lr", "last_lr"))))
    device = _device(args.device)
    out = _out(args)
    res = digits_grokking(cfg, device=device, progress=not args.quiet)
    if out:
        _write_beyond(out, cfg.to_dict(), cfg.seed, device, res["metrics"],
                      {name: r["curves"] for name, r in res["runs"].items()})
        plot_digits(res, out / "digits.png")
        from grokking_theory._io import write_json

        write_json(out / "record.json", {
            "experiment": "digits", "seeds": [cfg.seed], "config": cfg.to_dict(), "metrics": res["metrics"],
            "tables": [{"name": "main", "caption": f"digits, {cfg.n_train} train, {cfg.steps} steps",
                        "columns": ["init", f"step train acc >= {cfg.threshold:g}", f"step test acc >= {cfg.threshold:g}", "final train",
                                    "final test", "weight norm init", "weight norm final"],
                        "rows": [[name, "never" if r["step_train_acc"] is None else r["step_train_acc"],
                                  "never" if r["step_test_acc"] is None else r["step_test_acc"],
                                  r["final_train_acc"], r["final_test_acc"], r["weight_norm_init"],
                                  r["weight_norm_final"]] for name, r in res["metrics"].items()],
                        "formats": {"final train": ".3f", "final test": ".3f", "weight norm init": ".1f",
                                    "weight norm final": ".1f"}}],
        })
    print(json.dumps(res["metrics"]))
    return 0


def cmd_digits_diagram(args: argparse.Namespace) -> int:
    import torch

    from grokking_theory._digits import (
        DIGITS_LAST_LR,
        DIGITS_WD,
        DigitsConfig,
        digits_phase_diagram,
    )
    from grokking_theory._io import write_json
    from grokking_theory._phases import PHASES, PhaseDiagram

    torch.set_num_threads(1)
    if not args.lag > 0:
        raise ValueError(f"--lag must be > 0 steps, got {args.lag:g}")
    steps = args.steps if args.steps is not None else (DIGITS_QUICK_STEPS if args.quick else 3000)
    cfg = DigitsConfig(steps=steps, threshold=0.6, alpha=8.0).replace(**_overrides(args, (
        ("n_train", "n_train"), ("alpha", "alpha"), ("lr", "lr"), ("seed", "seed"), ("threshold", "threshold"))))
    wds, lrs = DIGITS_WD, DIGITS_LAST_LR
    if args.quick:
        wds, lrs = wds[::2], lrs[::2]
    device = _device(args.device)
    out = _out(args, Path("digits_diagram"))
    res = digits_phase_diagram(cfg, weight_decays=wds, last_lrs=lrs, lag=args.lag, out=out, resume=args.resume,
                               device=device, progress=not args.quiet)
    rows = []
    for yi, lr in enumerate(lrs):
        for xi, wd in enumerate(wds):
            tr, te = int(res["step_train"][yi, xi]), int(res["step_test"][yi, xi])
            rows.append([lr, wd, tr if tr >= 0 else "never", te if te >= 0 else "never",
                         float(res["max_test_acc"][yi, xi]), PHASES[int(res["phases"][yi, xi])]])
    thr = f"{cfg.threshold:g}"
    write_json(out / "record.json", {
        "experiment": "digits_phase_diagram", "seeds": [cfg.seed],
        "config": {**cfg.to_dict(), "weight_decay_values": wds, "last_lr_values": lrs, "lag": args.lag},
        "metrics": {"phase_counts": res["phase_counts"], "step_train": res["step_train"].tolist(),
                    "step_test": res["step_test"].tolist(), "max_test_acc": res["max_test_acc"].tolist(),
                    "note": "steps: first evaluated step (every eval_every) with accuracy >= threshold; -1 = never"},
        "tables": [{"name": "cells", "caption": f"digits (App. J), {cfg.n_train} train, init x{cfg.alpha:g}, MSE, "
                    f"threshold {thr}, budget {cfg.steps}, lag {args.lag:g}",
                    "columns": ["last-layer lr", "weight decay", f"step train acc >= {thr}",
                                f"step test acc >= {thr}", "max test acc", "phase"],
                    "rows": rows, "formats": {"last-layer lr": ".0e", "max test acc": ".3f"}},
                   {"name": "counts", "columns": list(PHASES), "rows": [[res["phase_counts"][p] for p in PHASES]]}],
    })
    dia = PhaseDiagram(x_name="weight_decay", x_values=wds, y_name="last_lr", y_values=lrs, seeds=[cfg.seed],
                       budget=cfg.steps, lag=args.lag, step_train=res["step_train"][None],
                       step_test=res["step_test"][None], step_rqi=np.full((1, len(lrs), len(wds)), -1),
                       final_rqi=np.full((1, len(lrs), len(wds)), np.nan), config=TOY)
    from grokking_theory._plot import plot_phase_diagram

    plot_phase_diagram(dia, out / "digits_phase_diagram.png",
                       title=f"digits, init x{cfg.alpha:g}, test threshold {thr}, budget {cfg.steps}")
    print(json.dumps({"out": str(out), "phase_counts": res["phase_counts"], "resumed": res["resumed"]}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="grokking-theory", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="one toy run; --out DIR writes metrics.json (first threshold steps), curves, checkpoint")
    _common(p)
    _toy_flags(p, steps_help=f"update budget (default {TOY.steps}; {QUICK_TRAIN_STEPS} with --quick)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("rqi", help="RQI of an embedding (checkpoint or comma-separated 1-D values)")
    p.add_argument("--checkpoint", type=Path, default=None, help="model.safetensors written by `train --out`")
    p.add_argument("--embedding", default=None, help="1-D embedding values v0,v1,... (default: none)")
    p.add_argument("--tol", type=float, default=TOY.rqi_tol, help=f"parallelogram tolerance on z-scored embeddings (default {TOY.rqi_tol:g})")
    p.set_defaults(func=cmd_rqi)

    p = sub.add_parser("critical-fraction", help="Monte Carlo critical training fraction r_c; prints JSON")
    _common(p, seed_help="random seed (default 0)")
    p.add_argument("--p", type=int, required=True, help="number of symbols (>= 3)")
    p.add_argument("--trials", type=int, default=None, help="random training orders (default 10000, 500 with --quick)")
    p.set_defaults(func=cmd_critical)

    p = sub.add_parser("phase-diagram", help="batched, resumable, shardable sweep and phase classification (JSON + PNG)")
    _common(p, seed_help=f"seed when --seeds is not given (default: the grid's, else {TOY.seed})")
    _toy_flags(p, steps_help=f"update budget (default: the grid's, {DEFAULT_BUDGET} for dec-lr-wd / repr-dec-lr, "
                             f"{AUTHORS_BUDGET} for authors / authors-reprlr; {QUICK_DIAGRAM_STEPS} with --quick)")
    p.add_argument("--grid", choices=GRID_NAMES, default="dec-lr-wd",
                   help="dec-lr-wd: decoder lr (16) x decoder wd (11; 0..10 regression, 0,2..20 classification); "
                        "repr-dec-lr: representation lr x decoder lr (13x13); authors / authors-reprlr: the same "
                        "axes with the seed (58 regression, 6 classification) and 10^5 budget of the authors' "
                        "data_add_r.h5 / data_add_c.h5 / data_add_r_reprlr.h5; batch-size (App. G): mini-batch "
                        "size 2..32, 45 (full) x decoder lr (16); init-scale (App. G): decoder init scale "
                        "0.25..8 x decoder lr (16) (default dec-lr-wd)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the grid's; else --seed)")
    p.add_argument("--lag", type=float, default=1000.0, help="grokking lag threshold in steps, > 0 (default 1000)")
    p.add_argument("--workers", type=int, default=1, help="CPU processes, one thread each (default 1)")
    p.add_argument("--resume", action="store_true", help="skip cells already finished in --out with the same config hash (default: off)")
    p.add_argument("--shard", default=None, help="K/N: run only cells i with i mod N == K (0 <= K < N), e.g. $SLURM_ARRAY_TASK_ID/4 (default: all)")
    p.add_argument("--max-seconds", type=float, default=None, help="stop training after this wall time; finished cells are kept (default: none)")
    p.set_defaults(func=cmd_phase)

    p = sub.add_parser("merge", help="join the cell files of phase-diagram shards into one diagram")
    p.add_argument("out", type=Path, help="folder for the merged phase_diagram.json / .png / record.json")
    p.add_argument("sources", type=Path, nargs="*", help="shard --out folders (default: OUT itself, when the shards shared it)")
    p.add_argument("--allow-partial", action="store_true", help="write record.json even if cells are missing (default: off)")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("compare-authors", help="phase agreement of a diagram with the authors' h5 file (needs h5py)")
    p.add_argument("h5", type=Path, help="data_add_r.h5, data_add_c.h5 or data_add_r_reprlr.h5")
    p.add_argument("results", type=Path, help="phase_diagram.json, or a phase-diagram --out folder (finished cells only)")
    p.add_argument("--lag", type=float, default=1000.0, help="grokking lag threshold in steps (default 1000)")
    p.add_argument("--out", type=Path, default=None, help="folder for record.json (default: none)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("trajectories", help="network vs effective-theory embedding trajectories (Fig. 4c-d)")
    _common(p)
    _toy_flags(p, steps_help=f"update budget (default {TOY.steps}; {QUICK_TRAIN_STEPS} with --quick)")
    p.add_argument("--rows", choices=("train", "all"), default="all", help="parallelograms of the effective flow: all of P0 (the official code) or the training set's P0(D) (default all)")
    p.set_defaults(func=cmd_trajectories)

    p = sub.add_parser("plot", help="redraw the PNG of a train or phase-diagram output folder")
    p.add_argument("source", type=Path, help="folder written by `train --out` or `phase-diagram --out`")
    p.add_argument("--out", type=Path, default=None, help="PNG path (default: inside the folder)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("modular-addition", help="transformer on (a + b) mod p: grokking delay, embedding ring, effective dimension")
    _beyond_common(p)
    _modadd_flags(p)
    p.set_defaults(func=cmd_modadd)

    p = sub.add_parser("transformer-sweep", help="batched (torch.func) transformer phase diagram over seeds: decoder lr x wd, or dropout")
    _beyond_common(p)
    _modadd_flags(p)
    p.add_argument("--axes", default="decoder-lr-wd", help="decoder-lr-wd, dropout, or seeds (one cell per seed: effective dimension over many seeds) (default decoder-lr-wd)")
    p.add_argument("--early-stop", action=argparse.BooleanOptionalAction, default=True, help="a run leaves the batch once train and test acc reach 0.9 (default on; --no-early-stop keeps the whole curves)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--batch", type=int, default=16, help="runs trained together in one vmapped batch (default 16)")
    p.add_argument("--resume", action="store_true", help="skip finished cells with the same config hash (default: off)")
    p.add_argument("--shard", default=None, help="K/N: run only cells i with i mod N == K (default: all)")
    p.add_argument("--max-seconds", type=float, default=None, help="stop after this wall time; finished cells are kept (default: none)")
    p.add_argument("--progress-every", type=float, default=30.0, help="seconds between refreshes of record.json with the partial curves of the runs in flight (default 30)")
    p.set_defaults(func=cmd_transformer_sweep)

    p = sub.add_parser("s3", help="the non-abelian toy: the group operation of S3 through a matrix product (Fig. 6d)")
    p.add_argument("--out", type=Path, default=None, help="folder for record.json, curves.json, s3_curves.png, checked writable before any work (default: none)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N (default: auto)")
    p.add_argument("--quick", action="store_true", help=f"budget {S3_QUICK_STEPS} steps; with --grid authors every 4th lr and every 2nd wd (default: off)")
    p.add_argument("--quiet", action="store_true", help="no progress output (default: off)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, trained in one batch (default 0, the file's)")
    p.add_argument("--steps", type=int, default=None, help=f"update budget (default 10000; {S3_QUICK_STEPS} with --quick)")
    p.add_argument("--preset", choices=("sweep", "notebook"), default="sweep", help="sweep: data_perm_r.h5 (init scale 1, no L1); notebook: Figure5d_permutation.ipynb (init 0.1, L1 1e-3) (default sweep)")
    p.add_argument("--train-num", type=int, default=None, help="ordered pairs in training, of 36 (default 24)")
    p.add_argument("--eta-reprs", type=float, default=None, help="embedding AdamW lr (default 1e-3)")
    p.add_argument("--eta-dec", type=float, default=None, help="decoder AdamW lr (default 1e-4)")
    p.add_argument("--wd-dec", type=float, default=None, help="decoder weight decay (default 0)")
    p.add_argument("--init-scale-reprs", type=float, default=None, help="embedding init scale (default: the preset's)")
    p.add_argument("--l1", type=float, default=None, help="L1 weight on mean|E| (default: the preset's)")
    p.add_argument("--grid", choices=("none", "authors"), default="none", help="none: one cell per seed; authors: data_perm_r.h5's decoder lr (16) x decoder wd (11) (default none)")
    p.add_argument("--authors", type=Path, default=None, help="data_perm_r.h5: phase agreement per seed (with --grid authors; default: none)")
    p.add_argument("--lag", type=float, default=1000.0, help="grokking lag threshold in steps (default 1000)")
    p.set_defaults(func=cmd_s3)

    p = sub.add_parser("digits", help="large-init MLP on sklearn digits vs standard init")
    _beyond_common(p)
    p.add_argument("--lr", type=float, default=None, help="AdamW learning rate (default 1e-3)")
    p.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay (default 1.0)")
    p.add_argument("--n-train", type=int, default=None, help="training samples (default 300)")
    p.add_argument("--alpha", type=float, default=None, help="large-init scale (default 8; compared with 1)")
    p.add_argument("--loss", choices=("mse", "ce"), default=None, help="loss (default mse on one-hot)")
    p.add_argument("--threshold", type=float, default=None, help="accuracy threshold of the reported steps, in (0, 1] (default 0.9; App. J uses 0.6)")
    p.add_argument("--last-lr", type=float, default=None, help="last layer's AdamW lr (default: --lr)")
    p.set_defaults(func=cmd_digits)

    p = sub.add_parser("digits-diagram", help="App. J: weight decay x last-layer lr phase diagram on digits, 60%% test threshold")
    _beyond_common(p)
    p.add_argument("--lr", type=float, default=None, help="AdamW lr of every layer but the last (default 1e-3)")
    p.add_argument("--n-train", type=int, default=None, help="training samples (default 300)")
    p.add_argument("--alpha", type=float, default=None, help="init scale (default 8)")
    p.add_argument("--threshold", type=float, default=None, help="accuracy threshold for train and test, in (0, 1] (default 0.6, App. J)")
    p.add_argument("--lag", type=float, default=1000.0, help="grokking lag threshold in steps, > 0 (default 1000)")
    p.add_argument("--resume", action="store_true", help="skip cells already finished in --out with the same config hash (default: off)")
    p.set_defaults(func=cmd_digits_diagram)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a one-line usage error (2)
        return int(exc.code or 0)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, ImportError, OSError, FloatingPointError) as err:
        msg = " ".join(str(err).split()) or type(err).__name__
        print(f"grokking-theory {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
