"""Console script `factorization-curse`: run one experiment (or compare objectives), the whole
table, or list choices.

Precedence of settings, lowest first: the task's preset (`--quick` or full), `--config FILE`,
`--set KEY=VALUE`, then the explicit flags. Flags that are not given never override anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, fields
from pathlib import Path

from factorization_curse._objectives import OBJECTIVES
from factorization_curse._tasks import TASKS

ALL_TASKS = (*TASKS, "facts", "wikireversal")
PROG = "factorization-curse"


def _choice(valid: tuple[str, ...] | list[str], what: str):
    def parse(value: str) -> str:
        if value not in valid:
            raise argparse.ArgumentTypeError(f"unknown {what} {value!r}; valid {what}s: {', '.join(valid)}")
        return value

    return parse


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=None, help="output folder (default: runs/<task>-<objective>)")
    p.add_argument("--seed", type=int, default=None, help="random seed (data, init, masks); default 0")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]")
    p.add_argument("--quick", action="store_true", help="the small CPU preset instead of the full one")
    p.add_argument("--config", type=Path, default=None,
                   help="JSON file of RunConfig fields (over the preset; --set and explicit flags win)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-run lines")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any RunConfig field, e.g. --set steps=500 --set d_model=64")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave torch's default)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from OUT/train_state (table: also skip finished cells)")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                   help="save the training state every N steps (0: at every evaluation)")


def parse_sets(items: list[str]) -> dict:
    """`KEY=VALUE` strings -> typed RunConfig overrides; ValueError names the bad item."""
    from factorization_curse._experiment import RunConfig

    types = {f.name: f.type for f in fields(RunConfig)}
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        if key not in types:
            raise ValueError(f"--set: unknown field {key!r}; valid: {', '.join(sorted(types))}")
        t = str(types[key])
        try:
            if value.lower() == "none" and "None" in t:
                out[key] = None
            elif t.startswith("bool"):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                out[key] = value.lower() in ("true", "1")
            elif t.startswith("int"):
                out[key] = int(value)
            elif t.startswith("float"):
                out[key] = float(value)
            else:
                out[key] = value
        except ValueError:
            raise ValueError(f"--set {key}: cannot parse {value!r} as {t}") from None
    return out


def _read_config(path: Path) -> dict:
    try:
        cfg = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"--config {path}: {exc}") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"--config {path}: expected a JSON object of RunConfig fields")
    return cfg


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Reversal-curse tasks and factorization-agnostic objectives (Kitouni et al., 2024).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and evaluate one task/objective (or --compare several)",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run.add_argument("--task", type=_choice(ALL_TASKS, "task"), default=None,
                     help=f"one of {', '.join(ALL_TASKS)} (default retrieval; 'facts' with --facts)")
    run.add_argument("--objective", type=_choice(list(OBJECTIVES), "objective"), default=None,
                     help=f"one of {', '.join(OBJECTIVES)} (default mlm-u)")
    run.add_argument("--compare", nargs="*", type=_choice(list(OBJECTIVES), "objective"), default=None,
                     metavar="OBJECTIVE",
                     help="train several objectives on the same task and model and print them side by "
                          "side (no names: ar mlm-u)")
    run.add_argument("--facts", type=Path, default=None,
                     help='JSON-lines file of {"subject","relation","object"} facts (implies --task facts)')
    run.add_argument("--data", type=Path, default=None,
                     help="your local GenWiki file or folder for --task wikireversal (not bundled)")
    run.add_argument("--family", choices=("gpt2", "bert", "past"), default=None,
                     help="model family (default past for every objective; gpt2/bert are the paper's baselines)")
    run.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    run.add_argument("--decode", choices=("l2r", "confidence"), default=None,
                     help="decoding for the headline metrics (default l2r)")
    run.add_argument("--loss-weighting", choices=("token-mean", "sequence-mean", "elbo"), default=None,
                     help="MLM-U loss weighting (default token-mean)")
    run.add_argument("--jobs", type=int, default=1,
                     help="with --compare: objectives trained at once (separate processes, one thread each)")
    run.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")
    _common(run)
    table = sub.add_parser("table", help="run the grid of tasks x objectives; markdown + CSV + PNG curves",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    from factorization_curse._table import GRID

    table.add_argument("--tasks", nargs="+", type=_choice(tuple(GRID), "task"), default=None,
                       help=f"subset of the grid's tasks ({', '.join(GRID)}; default all)")
    table.add_argument("--objectives", nargs="+", type=_choice(list(OBJECTIVES), "objective"), default=None,
                       help="subset of objectives (default each task's grid)")
    table.add_argument("--cells", nargs="+", default=None, metavar="CELL",
                       help="subset of cells by name, e.g. mlm-u ar@gpt2 (default all)")
    table.add_argument("--jobs", type=int, default=1, help="grid cells run at once (separate processes)")
    _common(table)
    paper = sub.add_parser("paper", help="a paper-scale experiment from its bundled config (GPU campaign job)",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    paper.add_argument("--experiment", required=True,
                       help="bios, star-graph, relationship (configs/NAME.json in the package) or a .json path")
    paper.add_argument("--out", type=Path, required=True, help="output folder (record.json is rewritten per cell)")
    paper.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]")
    paper.add_argument("--smoke", action="store_true", help="the config's tiny CPU size (CI)")
    paper.add_argument("--jobs", type=int, default=3, help="cells run at once (separate processes)")
    paper.add_argument("--seed", type=int, default=0, help="random seed")
    paper.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    sub.add_parser("list", help="list tasks and objectives")
    from factorization_curse._finetune import add_finetune_parser

    add_finetune_parser(sub)
    return parser


FLAG_FIELDS = ("task", "objective", "family", "steps", "decode", "loss_weighting", "facts", "seed", "data")


def resolve_run_config(args: argparse.Namespace, overrides: dict, objective: str | None = None):
    """The RunConfig of a `run`: preset < config file/--set (`overrides`) < explicit flags."""
    from factorization_curse._experiment import RunConfig
    from factorization_curse._table import preset_kwargs

    flags = {k: getattr(args, k, None) for k in FLAG_FIELDS}
    for key in ("facts", "data"):
        if flags[key] is not None:
            flags[key] = str(flags[key])
    if objective is not None:
        flags["objective"] = objective
    kw = {**overrides, **{k: v for k, v in flags.items() if v is not None}}
    task = kw.get("task") or ("facts" if kw.get("facts") else "retrieval")
    if kw.get("facts") and task != "facts":
        raise ValueError(f"--facts needs --task facts (or no --task), got task {task}")
    kw["task"] = task
    unknown = sorted(set(kw) - {f.name for f in fields(RunConfig)})
    if unknown:
        raise ValueError(f"unknown config keys {unknown}")
    base = preset_kwargs(task, quick=args.quick, facts=kw.get("facts"))
    return RunConfig(**{**base, **kw})


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        from factorization_curse._table import GRID

        print("tasks:", ", ".join(ALL_TASKS))
        print("table experiments:", ", ".join(GRID))
        print("objectives:")
        for o in OBJECTIVES.values():
            print(f"  {o.name:26s} models {'/'.join(o.families):14s} {o.description}")
        return 0
    argv_full = [PROG, *(argv if argv is not None else sys.argv[1:])]
    try:
        overrides = _read_config(args.config) if getattr(args, "config", None) is not None else {}
        overrides = {**overrides, **parse_sets(getattr(args, "set", []))}
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        if args.command == "run":
            return _run(args, overrides, argv_full)
        if args.command == "finetune":
            from factorization_curse._finetune import run_finetune_cli

            return run_finetune_cli(args, argv_full)
        if args.command == "paper":
            from factorization_curse._paper import run_paper

            run_paper(args.experiment, args.out, device=args.device, smoke=args.smoke, jobs=args.jobs,
                      seed=args.seed)
            print((args.out / "results.md").read_text())
            return 0
        return _table(args, overrides)
    except (ValueError, FileNotFoundError, TypeError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


def _table(args: argparse.Namespace, overrides: dict) -> int:
    from factorization_curse._table import run_table

    bad = sorted({"task", "objective", "facts"} & set(overrides))
    if bad:
        raise ValueError(f"table takes --tasks/--objectives, not the config keys {bad}")
    if args.seed is not None:
        overrides = {**overrides, "seed": args.seed}
    out = args.out or Path("runs/table")
    run_table(out, tasks=tuple(args.tasks) if args.tasks else None,
              objectives=tuple(args.objectives) if args.objectives else None, quick=args.quick,
              seed=overrides.pop("seed", 0), device=args.device, quiet=args.quiet, overrides=overrides,
              jobs=args.jobs, resume=args.resume, checkpoint_every=args.checkpoint_every,
              cells=tuple(args.cells) if args.cells else None)
    print((out / "results.md").read_text())
    return 0


SUMMARY_KEYS = ("task", "objective", "family", "forward_accuracy", "backward_accuracy",
                "val_forward_accuracy", "val_backward_accuracy", "incorrect_inference",
                "n_parameters", "steps", "seconds")


def _run(args: argparse.Namespace, overrides: dict, argv_full: list[str]) -> int:
    from factorization_curse._experiment import run_experiment

    if args.compare is not None:
        return _compare(args, overrides, argv_full)
    cfg = resolve_run_config(args, overrides)
    if args.dry_run:
        print(json.dumps(asdict(cfg), indent=2))
        return 0
    out = args.out or Path("runs") / f"{cfg.task}-{cfg.objective}"
    m = run_experiment(cfg, out, device=args.device, quiet=args.quiet, argv=argv_full,
                       resume=args.resume, checkpoint_every=args.checkpoint_every)
    if m:
        print(json.dumps({k: m.get(k) for k in SUMMARY_KEYS}, indent=2))
        _write_payload(out, cfg.task, [m], [asdict(cfg)], argv_full)
        print(f"wrote {out / 'metrics.json'}")
    return 0


def _compare(args: argparse.Namespace, overrides: dict, argv_full: list[str]) -> int:
    from factorization_curse._experiment import run_experiment

    names = list(dict.fromkeys(args.compare or ["ar", "mlm-u"]))
    if args.objective is not None:
        raise ValueError("--compare and --objective exclude each other")
    cfgs = [resolve_run_config(args, overrides, objective=o) for o in names]
    if args.dry_run:
        print(json.dumps([asdict(c) for c in cfgs], indent=2))
        return 0
    out = args.out or Path("runs") / f"{cfgs[0].task}-compare"
    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    rows = []

    def done(m: dict) -> None:
        if not args.quiet:
            print(f"{m['objective']}: test forward {_pct(m['forward_accuracy'])}, backward "
                  f"{_pct(m['backward_accuracy'])} ({m['seconds']:.0f} s)", flush=True)

    if args.jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        from factorization_curse._experiment import build_task

        # bad input (a facts file too small for held-out questions, ...) fails here, in one line,
        # before spawning workers that each import torch (a minute on a loaded machine)
        if not build_task(cfgs[0]).test:
            raise ValueError(f"task {cfgs[0].task!r} has no test queries with this configuration")

        from factorization_curse._table import _cell

        with ProcessPoolExecutor(min(args.jobs, len(cfgs)), mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_cell, (c, out / c.objective, args.device, 1, args.resume, args.checkpoint_every))
                       for c in cfgs]
            for f in futures:
                rows.append(f.result())
                done(rows[-1])
    else:
        for cfg in cfgs:
            rows.append(run_experiment(cfg, out / cfg.objective, device=args.device, quiet=args.quiet,
                                       argv=argv_full, resume=args.resume, checkpoint_every=args.checkpoint_every))
            done(rows[-1])
    payload = _write_payload(out, cfgs[0].task, rows, [asdict(c) for c in cfgs], argv_full)
    print(_markdown(payload["tables"][0]))
    print(f"wrote {out / 'record.json'}")
    return 0


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def _markdown(table: dict) -> str:
    lines = ["| " + " | ".join(table["columns"]) + " |", "|" + "---|" * len(table["columns"])]
    for r in table["rows"]:
        lines.append("| " + " | ".join("-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
                                       for v in r) + " |")
    return "\n".join(lines)


def _write_payload(out: Path, task: str, rows: list[dict], configs: list[dict], argv: list[str]) -> dict:
    """`out/record.json`: the result-record payload (experiment, seeds, config, metrics, tables)."""
    from factorization_curse._train import atomic_write

    columns = ["objective", "model", "params", "test forward", "test backward", "val forward",
               "val backward", "steps", "seconds"]
    table_rows = [[m["objective"], m["family"], m["n_parameters"], m["forward_accuracy"],
                   m["backward_accuracy"], m["val_forward_accuracy"], m["val_backward_accuracy"],
                   m["steps"], round(m["seconds"])] for m in rows]
    payload = {
        "experiment": f"run-{task}",
        "seeds": sorted({c["seed"] for c in configs}),
        "config": configs[0] if len(configs) == 1 else {"runs": configs},
        "metrics": {m["objective"]: {**{k: m.get(k) for k in SUMMARY_KEYS}, "validation_curve": m.get("history")}
                    for m in rows},
        "tables": [{
            "name": "main",
            "caption": f"{rows[0]['task_description']}; held-out exact match (test scored once; "
                       "validation drove every choice)",
            "columns": columns, "rows": table_rows,
            "formats": {c: ".3f" for c in columns if c.startswith(("test", "val"))},
        }],
        "command": " ".join(argv),
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "record.json", lambda tmp: tmp.write_text(json.dumps(payload, indent=2)))
    return payload


if __name__ == "__main__":
    raise SystemExit(main())
