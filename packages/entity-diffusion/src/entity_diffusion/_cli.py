"""Console script ``entity-diffusion``: fit, sample, impute, bench."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("entity-diffusion", "torch", "numpy", "pandas", "safetensors"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _config(args: argparse.Namespace):
    from entity_diffusion._api import KBFormerConfig

    config = KBFormerConfig()
    if args.config:
        config = KBFormerConfig.from_dict(json.loads(Path(args.config).read_text()))
    if args.quick:
        # the imputer's quick preset: a small model whose length early stopping on the held-out
        # ELBO decides (0.2.0's first CLI quick ran a fixed 300 steps, too few for patience to act)
        from entity_diffusion._imputer import PRESETS

        config = config.updated(**PRESETS["quick"])
    changes = {k: v for k, v in (("steps", args.steps), ("d_model", args.d_model)) if v is not None}
    return config.updated(**changes) if changes else config


def _threads(device: str) -> None:
    import torch

    if device in ("auto", "cpu") and not torch.cuda.is_available():
        torch.set_num_threads(1)  # on a shared 2-core machine 2 threads were ~10x slower (spin-waits)


def cmd_fit(args: argparse.Namespace) -> int:
    from entity_diffusion._api import EntityDiffusion

    _threads(args.device)
    overrides = dict(item.split("=", 1) for item in args.kind) if args.kind else None
    config = _config(args)
    model = EntityDiffusion(config, schema_overrides=overrides, device=args.device, random_state=args.seed)
    model.fit(args.table, quiet=args.quiet)
    out = model.save(args.out)
    run = {"argv": sys.argv, "seed": args.seed, "device": args.device, "config": config.to_dict(),
           "versions": _versions(), "rows": model.n_fit_rows_, "fit_seconds": model.fit_seconds_,
           "final_loss": sum(model.loss_history_[-50:]) / max(1, len(model.loss_history_[-50:]))}
    (out / "run.json").write_text(json.dumps(run, indent=1))
    if not args.quiet:
        from entity_diffusion._schema import describe

        print(describe(model.schema_))
        print(f"fitted {model.n_fit_rows_} entities in {model.fit_seconds_:.1f} s; saved to {out}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from entity_diffusion._api import EntityDiffusion

    _threads(args.device)
    model = EntityDiffusion.load(args.model_dir, device=args.device)
    rows = model.sample(args.n, leaps=args.leaps, temperature=args.temperature, seed=args.seed)
    _write(rows, args.out)
    if not args.quiet:
        print(f"wrote {args.n} sampled entities to {args.out}")
    return 0


def cmd_impute(args: argparse.Namespace) -> int:
    from entity_diffusion._api import EntityDiffusion

    _threads(args.device)
    model = EntityDiffusion.load(args.model_dir, device=args.device)
    filled = model.impute(args.table, n_samples=args.n_samples, leaps=args.leaps, temperature=args.temperature,
                          seed=args.seed)
    if args.intervals:
        bounds = model.intervals(args.table, level=args.level, n_samples=max(args.n_samples, 39), seed=args.seed)
        for column in bounds.columns:
            if ":" in column:
                filled[column] = bounds[column].to_numpy()
    _write(filled, args.out)
    if not args.quiet:
        print(f"wrote {len(filled)} completed entities to {args.out}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from entity_diffusion._bench import quick_bench

    _threads(args.device)
    report = quick_bench(Path(args.data), args.dataset, out_dir=Path(args.out), quick=args.quick, seed=args.seed,
                         device=args.device, quiet=args.quiet, steps=args.steps)
    print(report)
    return 0


def cmd_paper_tabular(args: argparse.Namespace) -> int:
    from entity_diffusion._paper import apply_smoke, run

    apply_smoke(args)
    return run(args)


def _write(frame, path: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jsonl", ".json"):
        from entity_diffusion._schema import frame_to_records

        path.write_text("".join(json.dumps(r) + "\n" for r in frame_to_records(frame)))
    else:
        frame.to_csv(path, index=False)


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="entity-diffusion",
        description="KBFormer: absorbing-state diffusion over entity properties (generation, completion, imputation).",
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--seed", type=int, default=0, help="random seed")
        p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]")
        p.add_argument("--quiet", action="store_true", help="no progress bars or messages")

    p = sub.add_parser("fit", help="fit a model on a table (.csv) or nested records (.jsonl)", formatter_class=fmt)
    p.add_argument("table", help="training entities: .csv (dotted column names = nested keys) or .jsonl")
    p.add_argument("--out", required=True, help="folder for model.safetensors, schema.json, config.json, run.json")
    p.add_argument("--quick", action="store_true", help="small model (the imputer's quick preset); early stopping on the held-out ELBO decides its length")
    p.add_argument("--config", help="JSON file with KBFormerConfig fields (model settings under 'model')")
    p.add_argument("--steps", type=int, default=None, help="training steps (overrides config)")
    p.add_argument("--d-model", type=int, default=None, help="width (overrides config)")
    p.add_argument("--kind", action="append", help="schema override NAME=numerical|categorical|text (repeatable)")
    common(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("sample", help="generate new entities from a fitted model", formatter_class=fmt)
    p.add_argument("model_dir", help="folder written by `fit`")
    p.add_argument("--n", type=int, required=True, help="number of entities")
    p.add_argument("--out", required=True, help="output .csv or .jsonl")
    p.add_argument("--leaps", type=int, default=1, help="properties unmasked per network call (1 = full diffusion)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (0 = point estimates)")
    common(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("impute", help="fill the missing cells of a table", formatter_class=fmt)
    p.add_argument("model_dir", help="folder written by `fit`")
    p.add_argument("table", help=".csv or .jsonl with gaps (empty cells / null / absent keys)")
    p.add_argument("--out", required=True, help="output .csv or .jsonl")
    p.add_argument("--n-samples", type=int, default=10, help="conditional samples averaged per entity")
    p.add_argument("--leaps", type=int, default=1, help="properties unmasked per network call")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (0 = one greedy completion)")
    p.add_argument("--intervals", action="store_true", help="add NAME:lower / NAME:upper columns for numbers")
    p.add_argument("--level", type=float, default=0.9, help="central interval level")
    common(p)
    p.set_defaults(func=cmd_impute)

    p = sub.add_parser("bench", help="small benchmark on one TabDDPM-format dataset (needs the [bench] extra)",
                       formatter_class=fmt)
    p.add_argument("--data", default="../shared/data/tabular", help="folder of TabDDPM-format datasets")
    p.add_argument("--dataset", default="abalone", help="dataset folder name")
    p.add_argument("--out", default="results/entity-diffusion-bench", help="output folder")
    p.add_argument("--quick", action="store_true", help="smaller model and fewer rows")
    p.add_argument("--steps", type=int, default=None, help="training steps (default 300 quick, 3000 full)")
    common(p)
    p.set_defaults(func=cmd_bench)

    from entity_diffusion._paper import add_arguments

    p = sub.add_parser("paper-tabular", help="the paper's tabular protocol (GPU campaign size; --smoke for CI)",
                       formatter_class=fmt)
    add_arguments(p)
    common(p)
    p.set_defaults(func=cmd_paper_tabular)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
