"""Monotonic benchmarks: monotonenorm vs an unconstrained MLP, LightGBM/XGBoost with monotone
constraints, and the authors' monotonicnetworks 1.5.1, on COMPAS, Heart and AutoMPG.

Honest protocol (validation split from the training data, threshold and early stopping on it,
5 seeds, mean +- std) side by side for all models; the papers' protocol (selection on the test
set) for this package alone, labelled separately. Writes ``table.md`` and ``results.json``.

    uv run --group bench tools/bench/monotonic.py            # ~10-15 min on a shared 2-core CPU
    uv run --group bench tools/bench/monotonic.py --quick    # ~2-3 min: 2 seeds, shorter training
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import sys
import time
import warnings
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

import lipschitz_core
from monotonenorm import bench
from monotonenorm._data import LOADERS

REPO = Path(__file__).resolve().parents[2]


def fit_lightgbm(data: bench.Split, seed: int, quick: bool) -> bench.Fitted:
    import lightgbm as lgb

    binary = data.dataset.task == "binary"
    cls = lgb.LGBMClassifier if binary else lgb.LGBMRegressor
    model = cls(
        n_estimators=300 if quick else 1000,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=10,
        monotone_constraints=list(data.dataset.monotonic_constraints),
        monotone_constraints_method="advanced",
        random_state=seed,
        n_jobs=1,
        verbose=-1,
    )
    model.fit(data.X_train, data.y_train, eval_set=[(data.X_val, data.y_val)], callbacks=[lgb.early_stopping(50, verbose=False)])
    predict = (lambda X: model.predict_proba(X)[:, 1]) if binary else model.predict
    return bench.Fitted(predict, None, None, f"trees {model.best_iteration_}")


def fit_xgboost(data: bench.Split, seed: int, quick: bool) -> bench.Fitted:
    import xgboost as xgb

    binary = data.dataset.task == "binary"
    cls = xgb.XGBClassifier if binary else xgb.XGBRegressor
    model = cls(
        n_estimators=300 if quick else 1000,
        learning_rate=0.05,
        max_depth=4,
        monotone_constraints=tuple(data.dataset.monotonic_constraints),
        early_stopping_rounds=50,
        random_state=seed,
        n_jobs=1,
    )
    model.fit(data.X_train, data.y_train, eval_set=[(data.X_val, data.y_val)], verbose=False)
    predict = (lambda X: model.predict_proba(X)[:, 1]) if binary else model.predict
    return bench.Fitted(predict, None, None, f"trees {model.best_iteration + 1}")


def _certify_reference(model: torch.nn.Module, kinds: list[str]) -> bool:
    """Certify a trained monotonicnetworks wrapper with lipschitz-core (not done by that package)."""
    import monotonicnetworks as lmn

    layers = []
    kind_iter = iter(kinds)
    for sub in model.nn:
        if isinstance(sub, lmn.GroupSort):
            layers.append(lipschitz_core.GroupSort(n_groups=sub.n_groups))
        else:
            frozen = lipschitz_core.LipschitzLinear(sub.in_features, sub.out_features, kind=next(kind_iter), lipschitz_const=1e30)
            with torch.no_grad():
                frozen.weight_orig.copy_(sub.weight)  # the reference's normalized weight; 1e30 makes ours a no-op
                frozen.bias.copy_(sub.bias)
            layers.append(frozen)
    bound = lipschitz_core.lipschitz_bound(torch.nn.Sequential(*layers), "one-inf")
    # exact, as for our models: the reference normalizes to exactly lambda in float32, so its
    # rounded weights can exceed the bound by an ulp, and then it is honestly not certified
    return bound <= float(model.lipschitz_const)


def fit_reference(data: bench.Split, seed: int, quick: bool) -> bench.Fitted:
    """monotonicnetworks 1.5.1 with the same width/depth/lambda/optimizer/early stopping as ours."""
    import monotonicnetworks as lmn

    cfg = bench.OURS[data.dataset.name]
    binary = data.dataset.task == "binary"
    mean, scale = data.X_train.mean(0), data.X_train.std(0)
    scale[scale == 0] = 1.0
    y_mean, y_std = (0.0, 1.0) if binary else (data.y_train.mean(), data.y_train.std())
    per_layer = cfg.lipschitz_const ** (1 / cfg.depth)
    widths = [data.X_train.shape[1]] + [cfg.width] * (cfg.depth - 1) + [1]
    kinds, layers = [], []
    torch.manual_seed(seed)
    for i in range(cfg.depth):
        kinds.append("one-inf" if i == 0 else "inf")
        layers.append(lmn.LipschitzLinear(widths[i], widths[i + 1], kind=kinds[-1], lipschitz_const=per_layer))
        if i < cfg.depth - 1:
            layers.append(lmn.GroupSort(cfg.width // 2))
    model = lmn.MonotonicWrapper(torch.nn.Sequential(*layers), cfg.lipschitz_const, list(data.dataset.monotonic_constraints))

    def tensors(X: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.as_tensor((X - mean) / scale, dtype=torch.float32), torch.as_tensor((y - y_mean) / y_std, dtype=torch.float32)

    xt, yt = tensors(data.X_train, data.y_train)
    xv, yv = tensors(data.X_val, data.y_val)

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if binary:
            return torch.nn.functional.binary_cross_entropy_with_logits(out.squeeze(-1), y)
        return torch.mean((out.squeeze(-1) - y) ** 2)

    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    best, best_state, since = math.inf, copy.deepcopy(model.state_dict()), 0
    for _ in range(cfg.max_epochs // (3 if quick else 1)):
        perm = torch.randperm(len(xt))
        for s in range(0, len(xt), cfg.batch_size):
            idx = perm[s : s + cfg.batch_size]
            loss = loss_fn(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            val = float(loss_fn(model(xv), yv))
        if val < best - 1e-7:
            best, best_state, since = val, copy.deepcopy(model.state_dict()), 0
        else:
            since += 1
            if since >= cfg.n_iter_no_change:
                break
    model.load_state_dict(best_state)
    model.eval()

    def predict(X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = model(torch.as_tensor((X - mean) / scale, dtype=torch.float32)).squeeze(-1).numpy().astype(np.float64)
        return 1 / (1 + np.exp(-out)) if binary else out * y_std + y_mean

    n_params = sum(p.numel() for p in model.parameters())
    return bench.Fitted(predict, n_params, _certify_reference(model, kinds), "authors' package")


COMPETITORS = {
    "monotonenorm": bench.fit_ours,
    "MLP (unconstrained)": bench.fit_mlp,
    "LightGBM (monotone)": fit_lightgbm,
    "XGBoost (monotone)": fit_xgboost,
    "monotonicnetworks 1.5.1": fit_reference,
}

TARGETS = {"COMPAS": ("acc", 0.693), "Heart": ("acc", 0.896), "AutoMPG": ("MSE", 7.34)}


def verdicts(rows: list[dict]) -> str:
    lines = ["| dataset | ours (honest) | issue target | met? | best monotone boosted trees | ours >= best trees? |", "|---|---|---|---|---|---|"]
    for name, (metric, target) in TARGETS.items():
        ours = next((r for r in rows if r["dataset"] == name and r["model"] == "monotonenorm"), None)
        trees = [r for r in rows if r["dataset"] == name and "monotone)" in r["model"]]
        if ours is None:
            continue
        better = max if metric == "acc" else min
        best_tree = better(trees, key=lambda r: r["mean"]) if trees else None
        fmt = (lambda v: f"{100 * v:.2f}%") if metric == "acc" else (lambda v: f"{v:.2f}")
        met = ours["mean"] >= target if metric == "acc" else ours["mean"] <= target
        beats = None if best_tree is None else (ours["mean"] >= best_tree["mean"] if metric == "acc" else ours["mean"] <= best_tree["mean"])
        lines.append(
            f"| {name} | {metric} {fmt(ours['mean'])} | {'>=' if metric == 'acc' else '<='} {fmt(target)} | {'met' if met else 'missed'} "
            f"| {best_tree['model'] + ' ' + fmt(best_tree['mean']) if best_tree else '-'} | {'-' if beats is None else ('yes' if beats else 'no')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO / ".." / "shared" / "data", help="shared data folder (holds monotonic/)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench-monotonic", help="output folder")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (honest protocol)")
    parser.add_argument("--paper-seeds", type=int, default=2, help="number of seeds (papers' protocol)")
    parser.add_argument("--paper-epochs", type=float, default=0.25, help="fraction of the original scripts' epochs (papers' protocol)")
    parser.add_argument("--quick", action="store_true", help="2 seeds, a third of the epochs, paper protocol at a tenth")
    parser.add_argument("--skip-paper", action="store_true", help="skip the papers' protocol")
    parser.add_argument("--datasets", nargs="+", default=["compas", "heart", "autompg"], choices=sorted(LOADERS))
    parser.add_argument("--models", nargs="+", default=list(COMPETITORS), choices=list(COMPETITORS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*'eval_set' is deprecated")  # lightgbm >= 4.7 renames it
    seeds = list(range(2 if args.quick else args.seeds))
    log = (lambda _m: None) if args.quiet else (lambda m: print(m, flush=True))
    folder = args.data / "monotonic"
    competitors = {k: COMPETITORS[k] for k in args.models}
    start = time.perf_counter()
    honest, paper = [], []
    for key in args.datasets:
        ds = LOADERS[key](folder)
        honest += bench.run_honest(ds, competitors, seeds, quick=args.quick, progress=log)
        if not args.skip_paper:
            paper += bench.run_paper_protocol(ds, list(range(1 if args.quick else args.paper_seeds)), epochs_scale=0.1 if args.quick else args.paper_epochs, progress=log)
    rows, paper_rows = bench.summarize(honest), bench.summarize(paper)
    total = time.perf_counter() - start
    versions = {p: version(p) for p in ("monotonenorm", "lipschitz-core", "torch", "scikit-learn", "lightgbm", "xgboost", "monotonicnetworks")}
    text = (
        f"Measured {datetime.now(UTC).strftime('%Y-%m-%d')} on a 2-core CPU (shared with other jobs), {total / 60:.1f} min, "
        f"`{' '.join(['tools/bench/monotonic.py', *(argv if argv is not None else sys.argv[1:])])}`.\n\n"
        "**Honest protocol** (validation split from train; threshold + early stopping on it; test touched once; "
        f"{len(seeds)} seeds):\n\n" + bench.markdown_table(rows, bench.METRICS) + "\n\n" + verdicts(rows) + "\n"
    )
    if paper_rows:
        text += (
            "\n**Papers' protocol** (published preprocessing; best *test* metric over epochs and thresholds, i.e. selected on "
            "the test set; optimistic, for comparison with the papers' tables only; training shortened to "
            f"{10 if args.quick else round(100 * args.paper_epochs)} % of the original epochs):\n\n" + bench.markdown_table(paper_rows, bench.METRICS) + "\n"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(text)
    payload = {
        "argv": sys.argv,
        "versions": versions,
        "machine": f"{platform.machine()} ({platform.python_version()})",
        "minutes": total / 60,
        "honest": [asdict(r) for r in honest],
        "paper": [asdict(r) for r in paper],
        "summary": rows,
        "paper_summary": paper_rows,
    }
    (args.out / "results.json").write_text(json.dumps(payload, indent=1, default=str))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
