"""Console script `factorization-curse`: run one experiment, the whole table, or list choices."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from factorization_curse._objectives import OBJECTIVES
from factorization_curse._tasks import TASKS

ALL_TASKS = (*TASKS, "facts")


def _choice(valid: tuple[str, ...] | list[str], what: str):
    def parse(value: str) -> str:
        if value not in valid:
            raise argparse.ArgumentTypeError(f"unknown {what} {value!r}; valid {what}s: {', '.join(valid)}")
        return value

    return parse


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=None, help="output folder (default: runs/<task>-<objective>)")
    p.add_argument("--seed", type=int, default=0, help="random seed (data, init, masks)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]")
    p.add_argument("--quick", action="store_true", help="the small CPU preset instead of the full one")
    p.add_argument("--config", type=Path, default=None, help="JSON file of RunConfig fields (overridden by flags)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-run lines")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any RunConfig field, e.g. --set steps=500 --set d_model=64")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave torch's default)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from OUT/train_state (table: also skip finished cells)")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                   help="save the training state every N steps (0: at every evaluation)")


def _parse_sets(items: list[str]) -> dict:
    from factorization_curse._experiment import RunConfig

    types = {f.name: f.type for f in fields(RunConfig)}
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        if key not in types:
            raise SystemExit(f"--set: unknown field {key!r}; valid: {', '.join(sorted(types))}")
        t = str(types[key])
        try:
            if t.startswith("bool"):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                out[key] = value.lower() in ("true", "1")
            elif t.startswith("int"):
                out[key] = int(value)
            elif t.startswith("float"):
                out[key] = float(value)
            else:
                out[key] = None if value.lower() == "none" else value
        except ValueError:
            raise SystemExit(f"--set {key}: cannot parse {value!r} as {t}") from None
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="factorization-curse",
        description="Reversal-curse tasks and factorization-agnostic objectives (Kitouni et al., 2024).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and evaluate one task/objective; writes metrics.json",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run.add_argument("--task", type=_choice(ALL_TASKS, "task"), default=None,
                     help=f"one of {', '.join(ALL_TASKS)} (default retrieval; 'facts' with --facts)")
    run.add_argument("--objective", type=_choice(list(OBJECTIVES), "objective"), default="mlm-u",
                     help=f"one of {', '.join(OBJECTIVES)}")
    run.add_argument("--facts", type=Path, default=None,
                     help='JSON-lines file of {"subject","relation","object"} facts (implies --task facts)')
    run.add_argument("--family", choices=("gpt2", "bert", "past"), default=None,
                     help="model family (default: the objective's: ar->gpt2, mlm->bert, mlm-u/plm->past)")
    run.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    run.add_argument("--decode", choices=("l2r", "confidence"), default=None,
                     help="decoding for the headline metrics (default l2r)")
    run.add_argument("--loss-weighting", choices=("token-mean", "sequence-mean", "elbo"), default=None,
                     help="MLM-U loss weighting (default token-mean)")
    _common(run)
    table = sub.add_parser("table", help="run the grid of tasks x objectives; markdown + CSV + PNG curves",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    table.add_argument("--tasks", nargs="+", type=_choice(tuple(TASKS), "task"), default=None,
                       help="subset of tasks (default all)")
    table.add_argument("--objectives", nargs="+", type=_choice(list(OBJECTIVES), "objective"), default=None,
                       help="subset of objectives (default each task's grid)")
    table.add_argument("--jobs", type=int, default=1, help="grid cells run at once (separate processes)")
    _common(table)
    sub.add_parser("list", help="list tasks and objectives")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        from factorization_curse._objectives import OBJECTIVES as objs

        print("tasks:", ", ".join(ALL_TASKS))
        print("objectives:")
        for o in objs.values():
            print(f"  {o.name:26s} default model {o.default_family:5s} {o.description}")
        return 0
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = _parse_sets(args.set)
    if args.config is not None:
        try:
            file_cfg = json.loads(args.config.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SystemExit(f"--config {args.config}: {exc}") from None
        if not isinstance(file_cfg, dict):
            raise SystemExit(f"--config {args.config}: expected a JSON object of RunConfig fields")
        overrides = {**file_cfg, **overrides}
    argv_full = ["factorization-curse", *(argv if argv is not None else sys.argv[1:])]
    try:
        if args.command == "run":
            return _run(args, overrides, argv_full)
        from factorization_curse._table import run_table

        out = args.out or Path("runs/table")
        run_table(out, tasks=tuple(args.tasks) if args.tasks else None,
                  objectives=tuple(args.objectives) if args.objectives else None, quick=args.quick,
                  seed=args.seed, device=args.device, quiet=args.quiet, overrides=overrides,
                  jobs=args.jobs, resume=args.resume, checkpoint_every=args.checkpoint_every)
        print((out / "results.md").read_text())
        return 0
    except (ValueError, FileNotFoundError) as exc:
        print(f"factorization-curse: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, overrides: dict, argv_full: list[str]) -> int:
    from factorization_curse._experiment import RunConfig, run_experiment
    from factorization_curse._table import PRESETS, preset_config

    task = args.task or ("facts" if args.facts else overrides.pop("task", "retrieval"))
    if args.facts and task != "facts":
        raise ValueError(f"--facts needs --task facts (or no --task), got --task {task}")
    flag = {"objective": args.objective, "family": args.family, "steps": args.steps,
            "decode": args.decode, "loss_weighting": args.loss_weighting,
            "facts": str(args.facts) if args.facts else None}
    flag = {k: v for k, v in flag.items() if v is not None}
    kw = {**overrides, **flag}
    kw.pop("task", None)
    if task in PRESETS:
        cfg = preset_config(task, kw.pop("objective"), quick=args.quick, seed=args.seed, **kw)
    else:
        cfg = RunConfig(task=task, seed=args.seed, **({"steps": 1500} | kw))
    out = args.out or Path("runs") / f"{task}-{cfg.objective}"
    m = run_experiment(cfg, out, device=args.device, quiet=args.quiet, argv=argv_full,
                       resume=args.resume, checkpoint_every=args.checkpoint_every)
    if m:
        summary = {k: m[k] for k in ("task", "objective", "family", "forward_accuracy",
                                     "backward_accuracy", "incorrect_inference", "seconds")}
        print(json.dumps(summary, indent=2))
        print(f"wrote {out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
