"""Console script ``emd-lipschitz``: estimate, fit, cluster, bench."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields, replace
from pathlib import Path

SHAPE_NAMES = ("ring", "ellipse", "disk", "segment", "triangle", "points")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=None, help="folder for results.json and run.json (default: print only)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N] for training the critic in estimate (default auto = cuda if available); fit and cluster run on the CPU")
    p.add_argument("--quick", action="store_true", help="fewer critic and shape steps (default off)")
    p.add_argument("--config", type=Path, default=None, help="JSON file overriding config fields (default none)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (default off)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emd-lipschitz", description="Energy Mover's Distance from certified 1-Lipschitz critics: estimate, fit shapes, cluster.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("bench", help="benchmark exact vs Sinkhorn vs GeomLoss vs the critic (see 'emd-lipschitz bench --help')", add_help=False)
    p = sub.add_parser("estimate", help="EMD between two clouds (CSV with columns x,y[,weight])")
    p.add_argument("a", type=Path, help="first cloud: CSV with header x,y[,weight]")
    p.add_argument("b", type=Path, help="second cloud: CSV with header x,y[,weight]")
    p.add_argument("--R", type=float, default=None, help="radius R (required when the total weights differ; default none = plain W1)")
    p.add_argument("--refine", choices=("semidual", "ctransform", "none"), default="semidual", help="exact refinement of the critic (default semidual)")
    p.add_argument("--exact", action="store_true", help="also print POT's exact value (default off)")
    _add_common(p)
    p = sub.add_parser("fit", help="fit a shape to each event (CSV with columns x,y[,weight][,event])")
    p.add_argument("events", type=Path, help="CSV with header x,y[,weight][,event]")
    p.add_argument("--shape", choices=SHAPE_NAMES, default="ring", help="shape to fit (default ring)")
    p.add_argument("--n", type=int, default=200, help="points in the shape (default 200; 'points': number of points k, default 3 if --k unset)")
    p.add_argument("--k", type=int, default=3, help="number of points for --shape points (default 3)")
    p.add_argument("--mode", choices=("exact", "accurate", "paper"), default="exact", help="fitting mode (default exact: POT's network simplex per step)")
    p.add_argument("--steps", type=int, default=None, help="shape steps (default 300; 60 with --quick)")
    _add_common(p)
    p = sub.add_parser("cluster", help="choose k and fit k equal-weight points per event")
    p.add_argument("events", type=Path, help="CSV with header x,y[,weight][,event]")
    p.add_argument("--ks", default="1,2,3,4,5,6", help="candidate k values, consecutive for the nsubjettiness method (default 1,2,3,4,5,6)")
    p.add_argument("--method", choices=("nsubjettiness", "equal-weight"), default="nsubjettiness",
                   help="k rule: elbow of free-weight N-subjettiness (default) or 0.1's equal-weight EMD curve")
    p.add_argument("--mode", choices=("exact", "accurate"), default="exact", help="fitting mode for --method equal-weight (default exact)")
    p.add_argument("--steps", type=int, default=None, help="shape steps per k (default 100; 40 with --quick)")
    _add_common(p)
    return parser


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _load_overrides(path: Path | None) -> dict:
    if path is None:
        return {}
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a JSON object of config fields")
    return data


def _apply(config, overrides: dict):
    names = {f.name for f in fields(config)}
    unknown = set(overrides) - names
    if unknown:
        raise SystemExit(f"unknown config field(s) {sorted(unknown)}; valid: {sorted(names)}")
    return replace(config, **overrides)


def _shape(name: str, n: int, k: int):
    from emd_lipschitz import Disk, Ellipse, Ring, Segment, Triangle, WeightedPoints

    return {"ring": lambda: Ring(n), "ellipse": lambda: Ellipse(n), "disk": lambda: Disk(n), "segment": lambda: Segment(n),
            "triangle": lambda: Triangle(max(1, n // 3)), "points": lambda: WeightedPoints(k)}[name]()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its own parser: the crossover benchmark (GPU campaign job and tools/bench/emd.py)
        from emd_lipschitz._bench import run

        return run(argv[1:])
    args = build_parser().parse_args(argv)
    from emd_lipschitz._io import read_cloud_csv, write_json, write_run_record

    try:
        if args.command == "estimate":
            return _estimate(args, read_cloud_csv, write_json, write_run_record)
        events_by_id = read_cloud_csv(args.events)
        ids = list(events_by_id)
        events = [events_by_id[i] for i in ids]
        if args.command == "fit":
            return _fit(args, ids, events, write_json, write_run_record)
        return _cluster(args, ids, events, write_json, write_run_record)
    except (ValueError, FileNotFoundError) as exc:
        print(f"emd-lipschitz: error: {exc}", file=sys.stderr)
        return 2


def _estimate(args, read_cloud_csv, write_json, write_run_record) -> int:
    from emd_lipschitz import CriticConfig, estimate_emd, exact_emd

    clouds = []
    for path in (args.a, args.b):
        data = read_cloud_csv(path)
        if len(data) != 1:
            raise ValueError(f"{path}: estimate takes one cloud per file, found events {list(data)}")
        clouds.append(next(iter(data.values())))
    (x, a), (y, b) = clouds
    config = CriticConfig(steps=200) if args.quick else CriticConfig()
    config = _apply(config, _load_overrides(args.config))
    result = estimate_emd(x, a, y, b, R=args.R, config=config, refine=args.refine, seed=args.seed, device=_device(args.device))
    out = {"emd": result.value, "critic_value": result.critic_value, "lipschitz_bound": result.lipschitz_bound, "balanced": result.balanced}
    if args.exact:
        out["exact"] = exact_emd(x, a, y, b, R=args.R)
    print(json.dumps(out, indent=2))
    if args.out:
        write_run_record(args.out, config=config, seed=args.seed, extra={"command": "estimate", "refine": args.refine, "R": args.R})
        write_json(args.out / "results.json", out)
    return 0


def _fit(args, ids, events, write_json, write_run_record) -> int:
    from emd_lipschitz import FitConfig, fit_shape

    steps = args.steps if args.steps is not None else (60 if args.quick else 300)
    config = _apply(FitConfig(mode=args.mode, steps=steps), _load_overrides(args.config))
    shape = _shape(args.shape, args.n, args.k)
    result = fit_shape(events, shape, config=config, seed=args.seed, progress=not args.quiet)
    rows = [{"event": i, "params": dict(zip(result.param_names, result.params[b].tolist())), "emd": result.emd[b], "exact": result.exact[b],
             "critic_value": result.critic_value[b]} for b, i in enumerate(ids)]
    print(json.dumps({"mode": args.mode, "shape": args.shape, "seconds": result.seconds, "events": rows}, indent=2, default=float))
    if args.out:
        write_run_record(args.out, config=config, seed=args.seed, extra={"command": "fit", "shape": args.shape})
        write_json(args.out / "results.json", {"mode": args.mode, "shape": args.shape, "events": rows})
    return 0


def _cluster(args, ids, events, write_json, write_run_record) -> int:
    from emd_lipschitz import FitConfig, cluster_events

    try:
        ks = tuple(int(k) for k in args.ks.split(","))
    except ValueError:
        raise ValueError(f"--ks must be comma-separated integers, got {args.ks!r}") from None
    steps = args.steps if args.steps is not None else (40 if args.quick else 100)
    config = _apply(FitConfig(mode=args.mode, steps=steps, lr=0.02), _load_overrides(args.config))
    result = cluster_events(events, ks, method=args.method, config=config, seed=args.seed, progress=not args.quiet)
    rows = [{"event": i, "k": int(result.k[b]), "curve": dict(zip(ks, result.curves[b].tolist())), "exact_curve": dict(zip(ks, result.exact_curves[b].tolist())),
             "centres": result.centres[b].tolist()} for b, i in enumerate(ids)]
    print(json.dumps({"mode": args.mode, "events": rows}, indent=2))
    if args.out:
        write_run_record(args.out, config=config, seed=args.seed, extra={"command": "cluster", "ks": ks})
        write_json(args.out / "results.json", {"events": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
