"""Command line: ``monotonenorm example | trigger | bench``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DATA_ENV = "MONOTONENORM_DATA"


def _common(parser: argparse.ArgumentParser, default_out: str) -> None:
    parser.add_argument("--out", type=Path, default=Path(default_out), help="output folder (config, results, figures)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--device", default="cpu", help="auto | cpu | cuda[:N] (the estimators' torch device)")
    parser.add_argument("--quick", action="store_true", help="a small, fast version (about a minute)")
    parser.add_argument("--config", type=Path, default=None, help="JSON file with config fields to override")
    parser.add_argument("--quiet", action="store_true", help="print only the result")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def default_data_folder() -> Path:
    """$MONOTONENORM_DATA, else ../shared/data/monotonic from the current folder (the workspace layout)."""
    import os

    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return Path.cwd() / ".." / "shared" / "data" / "monotonic"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="monotonenorm",
        description="Provably monotonic neural networks: a toy example, the trigger robustness story, the tabular benchmarks.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_ex = sub.add_parser("example", help="fit log(x) with heteroscedastic noise; monotone vs unconstrained", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _common(p_ex, "results/monotonenorm-example")
    p_tr = sub.add_parser("trigger", help="synthetic two-track trigger: efficiency vs signal lifetime", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _common(p_tr, "results/monotonenorm-trigger")
    p_b = sub.add_parser("bench", help="COMPAS/Heart/AutoMPG, honest protocol: this package vs an unconstrained MLP", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _common(p_b, "results/monotonenorm-bench")
    p_b.add_argument("--data", type=Path, default=None, help=f"folder with the benchmark CSVs (default ${DATA_ENV} or ../shared/data/monotonic)")
    args = parser.parse_args(argv)

    import torch

    from monotonenorm import _studies as S

    torch.set_num_threads(args.threads)
    log = (lambda _m: None) if args.quiet else (lambda m: print(m, flush=True))
    out: Path = args.out
    if args.command == "example":
        config = S.load_config(S.ExampleConfig, args.config, {"max_epochs": 150} if args.quick else None, device=args.device)
        S.write_run_info(out, config, args.seed)
        result = S.example(config, args.seed)
        (out / "example.json").write_text(json.dumps(result))
        _plot(S.plot_example, result, out / "example.png", log)
        print(f"monotone: {result['report_monotone']}\nMLP:      {result['report_mlp']}")
    elif args.command == "trigger":
        quick = {"n_signal": 1500, "n_background": 6000, "max_epochs": 25, "n_eval": 8000} if args.quick else {}
        config = S.load_config(S.TriggerStudyConfig, args.config, quick, device=args.device)
        S.write_run_info(out, config, args.seed)
        result = S.trigger_study(config, args.seed, log=log)
        (out / "trigger.json").write_text(json.dumps(result))
        _plot(S.plot_trigger, result, out / "trigger.png", log)
        print(S.trigger_markdown(result))
    else:
        config = S.load_config(S.BenchConfig, args.config, {"n_seeds": 1} if args.quick else None)
        S.write_run_info(out, config, args.seed)
        folder = args.data or default_data_folder()
        rows, table, _ = S.bench_study(folder, config, quick=args.quick, log=log)
        (out / "bench.json").write_text(json.dumps(rows, indent=1))
        (out / "table.md").write_text(table + "\n")
        print(table)
    log(f"wrote {out}")
    return 0


def _plot(fn, result: dict, path: Path, log) -> None:  # noqa: ANN001
    try:
        fn(result, path)
        log(f"figure: {path}")
    except ImportError:
        log("matplotlib is not installed (pip install 'monotonenorm[plot]'): no figure")


if __name__ == "__main__":
    sys.exit(main())
