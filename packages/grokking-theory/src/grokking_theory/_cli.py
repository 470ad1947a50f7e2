"""Console script ``grokking-theory``: train, rqi, critical-fraction, phase-diagram, plot,
modular-addition, digits."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

GRIDS = {
    # name: (x_name, y_name, x values, y values); the paper's grids (Fig. 6 / data files)
    "dec-lr-wd": ("weight_decay_dec", "eta_dec", list(range(11)), list(10 ** np.linspace(-5, -2, 16))),
    "repr-dec-lr": ("eta_reprs", "eta_dec", list(10 ** np.linspace(-5, -2, 13)), list(10 ** np.linspace(-5, -2, 13))),
}


def _device(name: str) -> str:
    if name == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda[:N], got {name!r}")
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"--device {name} requested but CUDA is not available; use --device cpu or auto")
    return name


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=None, help="output folder (default: none / per command)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the config's, 58 for the toy)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N] (default: auto)")
    p.add_argument("--quick", action="store_true", help="small, fast version (default: off)")
    p.add_argument("--config", type=Path, default=None, help="JSON file with ToyConfig fields (default: none)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (default: off)")


def _toy_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--p", type=int, default=None, help="number of symbols (>= 3; default 10)")
    p.add_argument("--train-fraction", type=float, default=None, help="fraction of the p(p+1)/2 pairs in training, in (0, 1] (default: 45/55)")
    p.add_argument("--steps", type=int, default=None, help="update budget (default 5000)")
    p.add_argument("--loss", choices=("mse", "ce"), default=None, help="regression (mse) or classification (ce) (default mse)")
    p.add_argument("--eta-reprs", type=float, default=None, help="representation AdamW lr (default 1e-3)")
    p.add_argument("--eta-dec", type=float, default=None, help="decoder AdamW lr (default 1e-4)")
    p.add_argument("--wd-reprs", type=float, default=None, help="representation weight decay (default 0)")
    p.add_argument("--wd-dec", type=float, default=None, help="decoder weight decay (default 0)")
    p.add_argument("--reprs-dim", type=int, default=None, help="embedding dimension (default 1)")
    p.add_argument("--decoder-norm", choices=("free", "fixed-spectral"), default=None, help="hold each decoder layer's spectral norm at its initial value via lipschitz-core (train only; default free)")
    p.add_argument("--decoder-norm-scale", type=float, default=None, help="with fixed-spectral: norms held at this multiple of their initial values (default 1)")
    p.add_argument("--rng-order", choices=("toy", "sweep"), default=None, help="replay train_add.py (toy) or the phase-diagram notebooks (sweep) (default toy)")


def _config(args: argparse.Namespace, **defaults: object):
    from grokking_theory._combinatorics import train_num_from_fraction
    from grokking_theory._config import ToyConfig

    cfg = ToyConfig.from_json(args.config) if args.config else ToyConfig(**defaults)
    ch: dict[str, object] = {}
    for flag, field in (("p", "p"), ("steps", "steps"), ("loss", "loss"), ("eta_reprs", "eta_reprs"),
                        ("eta_dec", "eta_dec"), ("wd_reprs", "weight_decay_reprs"),
                        ("wd_dec", "weight_decay_dec"), ("reprs_dim", "reprs_dim"),
                        ("rng_order", "rng_order"), ("seed", "seed"), ("decoder_norm", "decoder_norm"),
                        ("decoder_norm_scale", "decoder_norm_scale")):
        v = getattr(args, flag, None)
        if v is not None:
            ch[field] = v
    p = int(ch.get("p", cfg.p))
    if p < 3:
        raise ValueError(f"--p must be >= 3, got {p}")
    if args.train_fraction is not None:
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
    cfg = _config(args, **({"steps": 2000} if args.quick else {}))
    device = _device(args.device)
    run = train_toy(cfg, device=device, progress=not args.quiet)
    metrics = run.metrics()
    metrics.update({f"effective_{k}": v for k, v in
                    predicted_time_to_structure(cfg.p, run.train_ids, eta=cfg.eta_reprs).items()})
    if args.out:
        out = args.out
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
    res = critical_fraction(args.p, trials=trials, seed=0 if args.seed is None else args.seed,
                            progress=not args.quiet)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        write_json(args.out / "critical_fraction.json", res)
    print(json.dumps(res))
    return 0


def cmd_phase(args: argparse.Namespace) -> int:
    from grokking_theory._io import write_json, write_run_record
    from grokking_theory._phases import phase_diagram
    from grokking_theory._plot import plot_phase_diagram

    x_name, y_name, xs, ys = GRIDS[args.grid]
    if args.quick:
        xs, ys = xs[:: max(1, len(xs) // 4)], ys[:: max(1, len(ys) // 4)]
    cfg = _config(args, rng_order="sweep", steps=2000 if args.quick else 10000)
    if args.loss == "ce" and args.config is None:
        cfg = cfg.replace(ce_scale=1 / (2 * cfg.p - 1), repr_optimizer="adam")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()] if args.seeds else [cfg.seed]
    device = _device(args.device)
    dia = phase_diagram(cfg, x_name=x_name, x_values=xs, y_name=y_name, y_values=ys, seeds=seeds,
                        lag=args.lag, workers=args.workers, device=device, progress=not args.quiet)
    out = args.out or Path("phase_diagram")
    write_run_record(out, config=cfg.to_dict(), seed=seeds[0], device=device)
    write_json(out / "phase_diagram.json", dia.to_dict())
    plot_phase_diagram(dia, out / "phase_diagram.png")
    print(json.dumps({"phase_counts": dia.phase_counts(), "out": str(out)}))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from grokking_theory._plot import plot_phase_diagram, plot_run

    src: Path = args.source
    if (src / "phase_diagram.json").exists():
        from grokking_theory._config import ToyConfig
        from grokking_theory._phases import PhaseDiagram

        d = json.loads((src / "phase_diagram.json").read_text())
        dia = PhaseDiagram(
            x_name=d["x_name"], x_values=d["x_values"], y_name=d["y_name"], y_values=d["y_values"],
            seeds=d["seeds"], budget=d["budget"], lag=d["lag"],
            step_train=np.array(d["step_train"]), step_test=np.array(d["step_test"]),
            step_rqi=np.array(d["step_rqi"]), final_rqi=np.array(d["final_rqi"]),
            config=ToyConfig.from_dict(d["config"]),
        )
        print(plot_phase_diagram(dia, args.out or src / "phase_diagram.png"))
    elif (src / "metrics.json").exists() and (src / "curves.json").exists():
        data = {**json.loads((src / "metrics.json").read_text()), **json.loads((src / "curves.json").read_text())}
        print(plot_run(data, args.out or src / "curves.png"))
    else:
        raise FileNotFoundError(f"{src} holds neither phase_diagram.json nor metrics.json + curves.json")
    return 0


def _beyond_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=None, help="output folder for metrics.json, curves.json, PNG (default: none)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N] (default: auto)")
    p.add_argument("--quick", action="store_true", help="small, fast version (default: off)")
    p.add_argument("--steps", type=int, default=None, help="update budget (default: the config's; fewer with --quick)")
    p.add_argument("--lr", type=float, default=None, help="AdamW learning rate (default: the config's)")
    p.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay (default 1.0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (default: off)")


def _overrides(args: argparse.Namespace, pairs: tuple[tuple[str, str], ...]) -> dict[str, object]:
    return {field: getattr(args, flag) for flag, field in pairs if getattr(args, flag, None) is not None}


def _write_beyond(out: Path, cfg_dict: dict, seed: int, device: str, metrics: dict, curves: dict) -> None:
    from grokking_theory._io import write_json, write_run_record

    write_run_record(out, config=cfg_dict, seed=seed, device=device)
    write_json(out / "metrics.json", metrics)
    write_json(out / "curves.json", curves)


def cmd_modadd(args: argparse.Namespace) -> int:
    import torch

    from grokking_theory._modadd import ModAddConfig, plot_modular_addition, train_modular_addition

    torch.set_num_threads(1)
    base = ModAddConfig(steps=3000) if args.quick else ModAddConfig()
    cfg = base.replace(**_overrides(args, (("p", "p"), ("train_fraction", "train_fraction"),
                                           ("steps", "steps"), ("lr", "lr"),
                                           ("weight_decay", "weight_decay"), ("seed", "seed"),
                                           ("layers", "n_layers"), ("d_model", "d_model"))))
    device = _device(args.device)
    res = train_modular_addition(cfg, device=device, progress=not args.quiet)
    if args.out:
        from grokking_theory._io import save_checkpoint

        _write_beyond(args.out, cfg.to_dict(), cfg.seed, device, res["metrics"],
                      {**res["curves"], "embedding_top2": res["embedding_top2"],
                       "embedding_best_pair": res["embedding_best_pair"]})
        save_checkpoint(args.out / "model.safetensors", res["model"].state_dict(), cfg.to_dict())
        plot_modular_addition(res, args.out / "modular_addition.png")
    print(json.dumps({k: v for k, v in res["metrics"].items() if k != "pca_variance_fractions"}))
    return 0


def cmd_digits(args: argparse.Namespace) -> int:
    import torch

    from grokking_theory._digits import DigitsConfig, digits_grokking, plot_digits

    torch.set_num_threads(1)
    base = DigitsConfig(steps=2000) if args.quick else DigitsConfig()
    cfg = base.replace(**_overrides(args, (("n_train", "n_train"), ("alpha", "alpha"), ("loss", "loss"),
                                           ("steps", "steps"), ("lr", "lr"),
                                           ("weight_decay", "weight_decay"), ("seed", "seed"))))
    device = _device(args.device)
    res = digits_grokking(cfg, device=device, progress=not args.quiet)
    if args.out:
        _write_beyond(args.out, cfg.to_dict(), cfg.seed, device, res["metrics"],
                      {name: r["curves"] for name, r in res["runs"].items()})
        plot_digits(res, args.out / "digits.png")
    print(json.dumps(res["metrics"]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grokking-theory", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="one toy run; --out DIR writes metrics.json (first threshold steps), curves, checkpoint")
    _common(p)
    _toy_flags(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("rqi", help="RQI of an embedding (checkpoint or comma-separated 1-D values)")
    p.add_argument("--checkpoint", type=Path, default=None, help="model.safetensors written by `train --out`")
    p.add_argument("--embedding", default=None, help="1-D embedding values v0,v1,... (default: none)")
    p.add_argument("--tol", type=float, default=0.01, help="parallelogram tolerance on z-scored embeddings (default 0.01)")
    p.set_defaults(func=cmd_rqi)
    p = sub.add_parser("critical-fraction", help="Monte Carlo critical training fraction r_c; prints JSON")
    _common(p)
    p.add_argument("--p", type=int, required=True, help="number of symbols (>= 3)")
    p.add_argument("--trials", type=int, default=None, help="random training orders (default 10000, 500 with --quick)")
    p.set_defaults(func=cmd_critical)
    p = sub.add_parser("phase-diagram", help="batched sweep and phase classification (JSON + PNG)")
    _common(p)
    _toy_flags(p)
    p.add_argument("--grid", choices=sorted(GRIDS), default="dec-lr-wd", help="decoder lr x decoder wd (16x11) or representation lr x decoder lr (13x13) (default dec-lr-wd)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the config seed, 58)")
    p.add_argument("--lag", type=float, default=1000.0, help="grokking lag threshold in steps (default 1000)")
    p.add_argument("--workers", type=int, default=1, help="processes, one thread each (default 1)")
    p.set_defaults(func=cmd_phase)
    p = sub.add_parser("plot", help="redraw the PNG of a train or phase-diagram output folder")
    p.add_argument("source", type=Path, help="folder written by `train --out` or `phase-diagram --out`")
    p.add_argument("--out", type=Path, default=None, help="PNG path (default: inside the folder)")
    p.set_defaults(func=cmd_plot)
    p = sub.add_parser("modular-addition", help="transformer on (a + b) mod p: grokking delay, embedding ring, effective dimension")
    _beyond_common(p)
    p.add_argument("--p", type=int, default=None, help="modulus (>= 3; default 31)")
    p.add_argument("--train-fraction", type=float, default=None, help="fraction of the p^2 pairs in training, in (0, 1) (default 0.5)")
    p.add_argument("--layers", type=int, default=None, help="transformer blocks (default 1)")
    p.add_argument("--d-model", type=int, default=None, help="model width (default 64)")
    p.set_defaults(func=cmd_modadd)
    p = sub.add_parser("digits", help="large-init MLP on sklearn digits vs standard init (needs scikit-learn)")
    _beyond_common(p)
    p.add_argument("--n-train", type=int, default=None, help="training samples (default 300)")
    p.add_argument("--alpha", type=float, default=None, help="large-init scale (default 8; compared with 1)")
    p.add_argument("--loss", choices=("mse", "ce"), default=None, help="loss (default mse on one-hot)")
    p.set_defaults(func=cmd_digits)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"grokking-theory {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
