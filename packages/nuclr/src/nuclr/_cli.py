"""Console script ``nuclr``: train, evaluate, predict, baselines, interpret."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("nuclr", "lipschitz-core", "torch", "numpy", "nucleardatapy", "safetensors", "scikit-learn", "gplearn"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def write_run_info(out: Path, config: object, argv: list[str], seed: int, command: str | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    info = {"argv": argv, "command": command, "seed": seed, "versions": _versions(),
            "config": config.to_dict() if hasattr(config, "to_dict") else config}
    tmp = out / "run.json.tmp"
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, out / "run.json")


def _common(p: argparse.ArgumentParser, out_default: str) -> None:
    p.add_argument("--out", type=Path, default=Path(out_default), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="JSON file with TrainConfig fields")
    p.add_argument("--quick", action="store_true", help="small config (fewer epochs, narrower) for a smoke run")
    p.add_argument("--epochs", type=int, default=None, help="override TrainConfig.epochs (default 200)")
    p.add_argument("--width", type=int, default=None, help="override TrainConfig.width (default 128)")
    p.add_argument("--depth", type=int, default=None, help="override TrainConfig.depth (default 2)")
    p.add_argument("--body", choices=["residual", "lipschitz"], default=None, help="network body (default residual)")
    p.add_argument("--lipschitz-const", type=float, default=None, help="bound of the lipschitz body (default 20)")
    p.add_argument("--residual-table", default=None,
                   help="learn the correction to this theory table (e.g. WS3, FRDM1995); default: SEMF prior")
    p.add_argument("--observables", choices=["surface", "heads"], default=None,
                   help="surface = S and Q values computed from the predicted mass surface (trained through it); "
                        "heads = one output per observable (default; chosen on validation)")
    p.add_argument("--consistency-weight", type=float, default=None,
                   help="heads mode: weight of a loss tying each S/Q head to the same value computed from the "
                        "binding head (default 0 = off)")
    p.add_argument("--optimizer", choices=["adamw", "mup"], default=None,
                   help="adamw, or mup = AdamW with muP scaling (hidden lr and readout x base/width); default adamw")
    p.add_argument("--lr", type=float, default=None, help="override TrainConfig.lr (default 3e-3)")
    p.add_argument("--weight-decay", type=float, default=None, help="override TrainConfig.weight_decay (default 1e-2)")
    p.add_argument("--batch-size", type=int, default=None, help="override TrainConfig.batch_size (default 1024)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1 is fastest on a busy shared 2-core machine)")


def _resolve_config(args: argparse.Namespace):
    from nuclr._train import TrainConfig, quick_config

    config = TrainConfig()
    if args.config is not None:
        try:
            config = TrainConfig.from_dict(json.loads(args.config.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise SystemExit(f"error: cannot read --config {args.config}: {exc}") from exc
    if args.quick:
        config = quick_config(config)
    over = {"epochs": args.epochs, "width": args.width, "depth": args.depth, "body": args.body,
            "lipschitz_const": args.lipschitz_const, "residual_table": args.residual_table,
            "observables": args.observables, "optimizer": args.optimizer, "lr": args.lr,
            "weight_decay": args.weight_decay, "batch_size": args.batch_size,
            "consistency_weight": args.consistency_weight}
    over = {k: v for k, v in over.items() if v is not None}
    return replace(config, **over) if over else config


def _setup(args: argparse.Namespace) -> None:
    import torch

    if args.threads < 1:
        raise SystemExit("error: --threads must be >= 1")
    torch.set_num_threads(args.threads)


def cmd_train(args: argparse.Namespace) -> int:
    _setup(args)
    from nuclr._data import ground_states
    from nuclr._dataset import build_rows
    from nuclr._train import train

    config = _resolve_config(args)
    write_run_info(args.out, config, sys.argv, args.seed, command="train")
    rows = build_rows(ground_states(2020), config.tasks, min_z=config.min_z, min_n=config.min_n,
                      measured_only=config.measured_only, residual_table=config.residual_table)
    model = train(rows, config, seed=args.seed, device=args.device, out_dir=args.out, resume=args.resume,
                  quiet=args.quiet, checkpoint_every=args.checkpoint_every)
    import numpy as np

    pred = model.predict_rows(rows.z, rows.n, rows.task)
    fit = {t: float(np.sqrt(np.mean((pred - rows.value)[rows.task == k] ** 2))) for k, t in enumerate(config.tasks)}
    (args.out / "train_rms.json").write_text(json.dumps(fit, indent=2))
    print(f"saved {args.out / 'model.safetensors'}; training-set RMS: "
          + ", ".join(f"{t} {v:.4g}" for t, v in fit.items()))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    _setup(args)
    from nuclr._evaluate import evaluate, metrics_markdown

    config = _resolve_config(args)
    if args.k < 2:
        raise SystemExit("error: --k must be >= 2")
    seeds = _parse_seeds(args.seeds, args.seed)
    write_run_info(args.out, config, sys.argv, args.seed)
    folds = args.folds if args.folds is not None else (1 if args.quick else None)
    result = evaluate(args.protocol, config, k=args.k, folds_to_run=folds, seed=args.seed, seeds=seeds,
                      device=args.device, quiet=args.quiet, out_dir=args.out, save_models=args.save_models,
                      log=None if args.quiet else print)
    result.pop("_models")
    md = metrics_markdown(result)
    _atomic_text(args.out / "metrics.json", json.dumps(result, indent=2))
    _atomic_text(args.out / "metrics.md", md + "\n")
    print(md)
    if "leakage_curve" in result:
        print("\nleakage curve (held-out binding RMS vs other tasks of the nucleus in training):")
        for c in result["leakage_curve"]:
            print(f"  {c['other_tasks_in_train']:2d} other tasks: {c['binding_rms_kev']:8.0f} keV (n={c['n']})")
    print(f"wrote {args.out / 'metrics.json'}")
    return 0


def _parse_seeds(text: str | None, seed: int) -> tuple[int, ...]:
    if text is None:
        return (seed,)
    try:
        seeds = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise SystemExit(f"error: --seeds must be comma-separated integers, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise SystemExit(f"error: --seeds must be distinct integers, got {text!r}")
    return seeds


def _atomic_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def cmd_predict(args: argparse.Namespace) -> int:
    from nuclr._data import check_nucleus, ground_states, is_extrapolation
    from nuclr._train import Trained

    z, n = check_nucleus(args.z, args.n)
    model = Trained.load(args.model, device="cpu")
    cfg = model.model.config
    if z > cfg.max_z or n > cfg.max_n:
        raise SystemExit(f"error: the model covers Z <= {cfg.max_z}, N <= {cfg.max_n}; got Z={z}, N={n}")
    model.check_seen(z, n)  # ValueError (exit 2) when Z or N never occurs in training
    table = ground_states(2020)
    measured = set(zip(table.z[table.mass_measured].tolist(), table.n[table.mass_measured].tolist()))
    pred = model.predict(z, n)
    extrap = is_extrapolation(z, n, measured)
    row = table[(table.z == z) & (table.n == n)]
    from nuclr._dataset import TASK_COLUMNS

    out = {"z": z, "n": n, "extrapolation": extrap, "predictions": {}}
    for task, value in pred.items():
        col, flag, unit = TASK_COLUMNS[task]
        meas = None
        if not row.empty and bool(row[flag].iloc[0]):
            meas = float(row[col].iloc[0])
        out["predictions"][task] = {"value": value, "unit": unit, "nubase2020_measured": meas}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"Z={z} N={n} A={z + n}" + ("  [EXTRAPOLATION: no measured neighbour]" if extrap else ""))
    for task, d in out["predictions"].items():
        m = "" if d["nubase2020_measured"] is None else f"   (NUBASE2020: {d['nubase2020_measured']:.4f})"
        print(f"  {task:16s} {d['value']:14.4f} {d['unit']}{m}")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    _setup(args)
    from nuclr._table import find_models, write_table
    from nuclr._train import Trained

    if args.out.suffix != ".csv":
        raise SystemExit(f"error: --out must be a .csv file, got {args.out}")
    paths = find_models(args.models)
    models = [Trained.load(p, device="cpu") for p in paths]
    figure = args.figure if args.figure is not None else args.out.with_suffix(".png")
    table, drip = write_table(models, args.out, figure)
    counts = table.flag.value_counts().to_dict()
    reached = int(drip.n_drip_2n.notna().sum())
    print(f"{len(table)} nuclei from an ensemble of {len(models)} models ({counts}); two-neutron drip line reached "
          f"for {reached} of {len(drip)} Z values; wrote {args.out}, "
          f"{args.out.with_name(args.out.stem + '_driplines.csv')}, {figure}")
    if args.payload is not None:
        show = [z for z in (8, 20, 28, 40, 50, 60, 70, 82) if z in set(drip.z.tolist())]
        d = drip.set_index("z")
        payload = {
            "experiment": "prediction_table", "seeds": [],
            "config": {"models": [str(p) for p in paths], "n_models": len(models)},
            "metrics": {"flags": {k: int(v) for k, v in counts.items()}, "n_nuclei": len(table),
                        "z_with_2n_dripline_reached": reached, "n_z": len(drip),
                        "driplines": drip.to_dict(orient="records")},
            "tables": [
                {"name": "flags", "caption": f"Nuclei in the table (ensemble of {len(models)} models)",
                 "columns": ["flag", "nuclei"], "rows": [[k, int(v)] for k, v in counts.items()]},
                {"name": "driplines", "caption": "Last bound N of the ensemble (S_n, S_2n > 0); NaN = beyond the N "
                 "the models know", "columns": ["Z", "N drip S_n", "N drip S_2n"],
                 "rows": [[z, _num(d.at[z, "n_drip_1n"]), _num(d.at[z, "n_drip_2n"])] for z in show]},
            ],
        }
        _atomic_text(args.payload, json.dumps(payload, indent=1))
    return 0


def _num(v: float) -> int | None:
    import math

    return None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)


def cmd_paper(args: argparse.Namespace) -> int:
    _setup(args)
    from dataclasses import replace as _replace

    from nuclr._paper import PAPER_CONFIG, SMOKE_CONFIG, paper_run
    from nuclr._train import resolve_device

    if args.minutes <= 0:
        raise SystemExit("error: --minutes must be > 0")
    config = SMOKE_CONFIG if args.quick else PAPER_CONFIG
    over = {k: v for k, v in (("width", args.width), ("depth", args.depth), ("epochs", args.epochs),
                              ("optimizer", args.optimizer), ("observables", args.observables)) if v is not None}
    config = _replace(config, **over)
    device = str(resolve_device(args.device))
    write_run_info(args.out, config, sys.argv, args.seed)
    paper_run(args.out, config=config, k=args.k, folds=args.folds, seed=args.seed, device=device,
              minutes=args.minutes, workers=args.workers, poll_s=2.0 if args.quick else 20.0)
    return 0


def cmd_control(args: argparse.Namespace) -> int:
    _setup(args)
    from dataclasses import replace as _replace

    from nuclr._control import CONTROL_SMOKE, control_run
    from nuclr._paper import PAPER_CONFIG
    from nuclr._train import resolve_device

    if args.minutes <= 0:
        raise SystemExit("error: --minutes must be > 0")
    config = CONTROL_SMOKE if args.quick else PAPER_CONFIG
    over = {k: v for k, v in (("width", args.width), ("depth", args.depth)) if v is not None}
    config = _replace(config, **over)
    write_run_info(args.out, config, sys.argv, args.seed)
    control_run(args.out, config=config, seed=args.seed, device=str(resolve_device(args.device)), minutes=args.minutes,
                log=(lambda m: None) if args.quiet else print, figures=not args.quick)
    return 0


def cmd_baselines(args: argparse.Namespace) -> int:
    from nuclr._baselines import baselines_table

    result, md = baselines_table(min_z=args.min_z, min_n=args.min_n)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "baselines.json").write_text(json.dumps(result, indent=2))
    (args.out / "baselines.md").write_text(md + "\n")
    print(md)
    return 0


def cmd_interpret(args: argparse.Namespace) -> int:
    _setup(args)
    from nuclr._interpret import interpret
    from nuclr._train import Trained

    model = Trained.load(args.model, device="cpu")
    write_run_info(args.out, {"model": str(args.model), "symbolic": not args.no_symbolic}, sys.argv, args.seed)
    md = interpret(model, args.out, seed=args.seed, symbolic=not args.no_symbolic, quick=args.quick, quiet=args.quiet)
    print(md)
    if args.payload is not None:
        from nuclr._interpret import interpret_payload

        summary = json.loads((args.out / "interpret.json").read_text())
        cfg = model.config
        desc = f"width {cfg.width} x depth {cfg.depth}, {cfg.epochs} epochs, {cfg.observables} mode"
        run_info = args.model / "run.json"
        if run_info.exists():  # how the model was trained (nuclr train: all measured AME2020 nuclei)
            info = json.loads(run_info.read_text())
            argv = info.get("argv") or []
            if info.get("command") == "train" or (len(argv) > 1 and argv[1] == "train"):
                desc += f", `nuclr train` on all measured nuclei, seed {info.get('seed')}"
        payload = interpret_payload(summary, model_desc=desc, seed=args.seed)
        args.payload.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.payload.with_suffix(args.payload.suffix + ".tmp")
        tmp.write_text(json.dumps(payload, indent=1))
        os.replace(tmp, args.payload)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nuclr", description="NuCLR nuclear co-learned representations on NUBASE2020 (offline data via nucleardatapy).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = sub.add_parser("train", help="train on all measured NUBASE2020 nuclei", formatter_class=fmt)
    _common(p, "runs/nuclr")
    _config_flags(p)
    p.add_argument("--resume", action="store_true", help="continue from OUT/train_state.* (same config)")
    p.add_argument("--checkpoint-every", type=int, default=500, help="save a resumable checkpoint every N steps (0: end only)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="one of the three protocols beside the physics models", formatter_class=fmt)
    _common(p, "runs/nuclr-eval")
    _config_flags(p)
    p.add_argument("--protocol", choices=["mass-closed", "nucleus-kfold", "nucleus-leaky-derived", "random",
                                          "ame2016-to-2020"], default="mass-closed",
                   help="mass-closed (alias nucleus-kfold) = nuclei held out and every training row whose formula "
                        "uses a held-out mass removed; nucleus-leaky-derived = 0.1's nucleus split (neighbours' S/Q "
                        "values still carry the held-out masses: leaks); random = per (nucleus, task) row split "
                        "(leaks); ame2016-to-2020 = train on NUBASE2016-measured, test on new in 2020")
    p.add_argument("--k", type=int, default=5, help="number of folds (k-fold protocols)")
    p.add_argument("--folds", type=int, default=None, help="run only the first FOLDS folds (default: all; 1 with --quick)")
    p.add_argument("--seeds", default=None, help="comma-separated training seeds, e.g. 0,1,2 (default: --seed)")
    p.add_argument("--save-models", action="store_true", help="save every model to OUT/models/seed{S}_fold{K}/")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="predict every task for one nucleus", formatter_class=fmt)
    p.add_argument("--z", type=int, required=True, help="proton number Z")
    p.add_argument("--n", type=int, required=True, help="neutron number N")
    p.add_argument("--model", type=Path, default=Path("runs/nuclr"), help="folder written by `nuclr train`")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("table", help="ensemble predictions for every nucleus between the drip lines", formatter_class=fmt)
    p.add_argument("--models", type=Path, nargs="+", required=True,
                   help="model folders, or folders holding them (e.g. OUT/models of evaluate --save-models)")
    p.add_argument("--out", type=Path, default=Path("predictions.csv"), help="CSV to write (+ _driplines.csv beside it)")
    p.add_argument("--figure", type=Path, default=None, help="chart PNG (default: OUT with .png)")
    p.add_argument("--payload", type=Path, default=None, help="also write a record payload (counts, drip lines)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("paper", help="time-boxed paper-scale mass-closed k-fold (GPU campaign job)", formatter_class=fmt)
    _common(p, "runs/nuclr-paper")
    p.add_argument("--quick", action="store_true", help="CPU smoke size (width 16, depth 1)")
    p.add_argument("--minutes", type=float, default=6.5, help="wall-clock budget; the run stops itself inside it")
    p.add_argument("--k", type=int, default=5, help="folds")
    p.add_argument("--folds", type=int, default=None, help="run only the first FOLDS folds")
    p.add_argument("--workers", type=int, default=None, help="folds trained at once (default: all)")
    p.add_argument("--width", type=int, default=None, help="default 1024 (NuCLR v1)")
    p.add_argument("--depth", type=int, default=None, help="default 4")
    p.add_argument("--epochs", type=int, default=None, help="cap on epochs (default 50000; the time budget decides)")
    p.add_argument("--optimizer", choices=["adamw", "mup"], default=None, help="default mup (MuAdamW-style)")
    p.add_argument("--observables", choices=["surface", "heads"], default=None, help="default heads")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads of the main process")
    p.set_defaults(func=cmd_paper)

    p = sub.add_parser("control", help="real vs SEMF-generated training data: embedding structure (campaign job)",
                       formatter_class=fmt)
    _common(p, "runs/nuclr-control")
    p.add_argument("--quick", action="store_true", help="CPU smoke size (width 16, depth 1)")
    p.add_argument("--minutes", type=float, default=6.0, help="wall-clock budget for both trainings")
    p.add_argument("--width", type=int, default=None, help="default 1024")
    p.add_argument("--depth", type=int, default=None, help="default 4")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.set_defaults(func=cmd_control)

    p = sub.add_parser("baselines", help="RMS of the theory tables and the fitted SEMF against NUBASE2020", formatter_class=fmt)
    p.add_argument("--out", type=Path, default=Path("runs/nuclr-baselines"), help="output folder")
    p.add_argument("--min-z", type=int, default=8, help="smallest Z included")
    p.add_argument("--min-n", type=int, default=8, help="smallest N included")
    p.set_defaults(func=cmd_baselines)

    p = sub.add_parser("interpret", help="PCA of embeddings/hidden layer, SEMF probes, symbolic regression", formatter_class=fmt)
    _common(p, "runs/nuclr-interpret")
    p.add_argument("--model", type=Path, default=Path("runs/nuclr"), help="folder written by `nuclr train`")
    p.add_argument("--no-symbolic", action="store_true", help="skip the symbolic regression (pyoperon or gplearn)")
    p.add_argument("--payload", type=Path, default=None,
                   help="also write a record payload (compact formula vs SEMF, symbolic PCs, probes)")
    p.add_argument("--quick", action="store_true", help="smaller symbolic-regression search")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.set_defaults(func=cmd_interpret)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
