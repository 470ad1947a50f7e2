"""Benchmark: NuCLR on the three protocols beside the fitted SEMF, the nucleardatapy theory tables and
WS4 / WS4+RBF (read from the shared data folder), plus the residual and lipschitz variants.

Usage (CPU, reduced):  uv run python tools/bench/nuclr_models.py --folds 1 --epochs 100
Usage (GPU, full):     uv run python tools/bench/nuclr_models.py --device cuda --sweep

``--sweep`` first picks weight decay / width / epochs / lr on a nucleus-level 80/20 split of the
NUBASE2016-measured nuclei (never on any protocol's test rows of AME2020-new nuclei; for the k-fold
protocols the choice is made on data those folds also contain, which we state in the README), then
runs every protocol with the chosen config. Results are written as they come (JSON + markdown), and
steps that would overrun ``--time-budget`` are skipped and listed as skipped.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from nuclr._data import MASS_EXCESS_HYDROGEN_KEV, ground_states
from nuclr._dataset import build_rows
from nuclr._evaluate import evaluate, metrics_markdown, per_task_rms
from nuclr._physics import TheoryTable
from nuclr._train import TrainConfig, train

REPO = Path(__file__).resolve().parents[2]


def read_ws4(path: Path) -> dict[str, TheoryTable]:
    """WS4.txt: A, Z, WS4, WS4+RBF mass excess (MeV)."""
    arr = []
    for line in path.read_text(encoding="latin-1").splitlines():
        f = line.split()
        if len(f) >= 4 and f[0].isdigit():
            arr.append([float(x) for x in f[:4]])
    a = np.array(arr)
    z = a[:, 1].astype(int)
    n = a[:, 0].astype(int) - z
    nan = np.full(z.size, np.nan)
    return {"WS4": TheoryTable("WS4", z, n, a[:, 2] * 1000.0, nan),
            "WS4+RBF": TheoryTable("WS4+RBF", z, n, a[:, 3] * 1000.0, nan)}


SWEEP = [
    {"weight_decay": 1e-4, "epochs": 300},
    {"weight_decay": 1e-2, "epochs": 300},
    {"weight_decay": 1e-1, "epochs": 300},
    {"weight_decay": 1e-2, "epochs": 1000},
    {"weight_decay": 1e-1, "epochs": 1000},
    {"weight_decay": 1e-2, "epochs": 1000, "width": 256},
]


def _sweep_one(train_rows, val_rows, cfg: TrainConfig, seed: int, device: str) -> tuple[dict, float]:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    model = train(train_rows, cfg, seed=seed, device=device)
    res = per_task_rms(val_rows, model.predict_rows(val_rows.z, val_rows.n, val_rows.task))
    return res, time.perf_counter() - t0


def sweep(base: TrainConfig, device: str, seed: int, log, scale: float = 1.0, workers: int = 1) -> tuple[TrainConfig, list[dict]]:
    rows = build_rows(ground_states(2016), base.tasks)
    rng = np.random.default_rng(1234)
    nuclei = np.unique(rows.nucleus_id)
    val = set(rng.choice(nuclei, nuclei.size // 5, replace=False).tolist())
    is_val = np.array([i in val for i in rows.nucleus_id.tolist()])
    results = []
    overs = [{**o, "epochs": max(1, round(o["epochs"] * scale))} for o in SWEEP]
    cfgs = [replace(base, **o) for o in overs]
    tr, va = rows.subset(~is_val), rows.subset(is_val)
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(workers, len(cfgs)), mp_context=mp.get_context("spawn")) as pool:
            outs = list(pool.map(_sweep_one, [tr] * len(cfgs), [va] * len(cfgs), cfgs, [seed] * len(cfgs),
                                 [device] * len(cfgs)))
    else:
        outs = [_sweep_one(tr, va, c, seed, device) for c in cfgs]
    for over, (res, secs) in zip(overs, outs):
        results.append({"overrides": over, "val_binding_rms_kev": res["binding"]["rms"],
                        "val": {k: r["rms"] for k, r in res.items()}, "seconds": secs})
        log(f"sweep {over}: binding {res['binding']['rms']:.0f} keV ({secs:.0f} s)")
    best = min(results, key=lambda r: r["val_binding_rms_kev"])
    return replace(base, **best["overrides"]), results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="shared data folder (WS4)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "nuclr", help="output folder")
    parser.add_argument("--device", default="cpu", help="cpu|cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=5, help="folds of the random and nucleus-kfold protocols")
    parser.add_argument("--folds", type=int, default=None, help="run only the first FOLDS folds")
    parser.add_argument("--epochs", type=int, default=None, help="override TrainConfig.epochs")
    parser.add_argument("--sweep", action="store_true", help="choose hyperparameters on a NUBASE2016 validation split first")
    parser.add_argument("--sweep-scale", type=float, default=1.0, help="multiply the sweep's epochs (smoke tests)")
    parser.add_argument("--time-budget", type=float, default=3600.0, help="skip steps once this many seconds have passed")
    parser.add_argument("--residual-table", default="WS3", help="theory table of the residual variant")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="parallel training processes (folds, sweep points)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    ws4_path = args.data / "nuclear" / "ws4" / "WS4.txt"
    if not ws4_path.exists():
        parser.error(f"missing {ws4_path}; pass --data pointing at the shared data folder")
    extra = read_ws4(ws4_path)
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"{platform.processor() or 'CPU'} (2-core shared)"
    report: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "device": device_name,
                    "runs": {}, "skipped": []}

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s] {msg}", flush=True)

    def save() -> None:
        (args.out / "bench_models.json").write_text(json.dumps(report, indent=2))
        md = [f"Date {report['date']}, device: {report['device']}", ""]
        for name, res in report["runs"].items():
            md += [f"### {name}", "", f"protocol {res['protocol']}, folds run {res['folds_run']}/{res['k']}, "
                   f"epochs {res['config']['epochs']}, width {res['config']['width']}, "
                   f"wd {res['config']['weight_decay']}, body {res['config']['body']}, "
                   f"{res['seconds']:.0f} s", "", metrics_markdown(res), ""]
            if "leakage_curve" in res:
                md += ["leakage curve: " + ", ".join(f"{c['other_tasks_in_train']} other tasks -> {c['binding_rms_kev']:.0f} keV (n={c['n']})" for c in res["leakage_curve"]), ""]
        if report["skipped"]:
            md.append("skipped (time budget): " + ", ".join(report["skipped"]))
        (args.out / "bench_models.md").write_text("\n".join(md) + "\n")

    base = TrainConfig()
    if args.epochs is not None:
        base = replace(base, epochs=args.epochs)
    if args.sweep:
        base, sw = sweep(base, args.device, args.seed, log, args.sweep_scale, args.workers)
        report["sweep"] = sw
        report["chosen_config"] = base.to_dict()
        save()
    plan = [
        ("nucleus-kfold", "nucleus-kfold", base),
        ("ame2016-to-2020", "ame2016-to-2020", base),
        (f"nucleus-kfold, residual to {args.residual_table}", "nucleus-kfold", replace(base, residual_table=args.residual_table)),
        ("ame2016-to-2020, lipschitz body", "ame2016-to-2020", replace(base, body="lipschitz")),
        ("random (leaky)", "random", base),
        (f"ame2016-to-2020, residual to {args.residual_table}", "ame2016-to-2020", replace(base, residual_table=args.residual_table)),
    ]
    per_fold = None
    for name, protocol, cfg in plan:
        elapsed = time.perf_counter() - start
        n_folds = 1 if protocol == "ame2016-to-2020" else (args.folds or args.k)
        if protocol == "random" or cfg.residual_table:
            n_folds = min(n_folds, 2)
        if args.workers > 1:
            n_folds = 1 if n_folds <= args.workers else 2
        if per_fold is not None and elapsed + per_fold * n_folds > args.time_budget:
            report["skipped"].append(name)
            log(f"skip {name}")
            continue
        t0 = time.perf_counter()
        folds = 1 if protocol == "ame2016-to-2020" else args.folds
        if protocol == "random" or cfg.residual_table:  # comparisons: two of the k folds
            folds = min(2, folds or args.k) if protocol != "ame2016-to-2020" else 1
        res = evaluate(protocol, cfg, k=args.k, folds_to_run=folds, seed=args.seed, device=args.device,
                       extra_tables=extra, workers=args.workers)
        res.pop("_models")
        res["seconds"] = time.perf_counter() - t0
        per_fold = max(per_fold or 0.0, res["seconds"] / res["folds_run"])
        report["runs"][name] = res
        log(f"{name}: binding {res['model']['binding']['rms']:.0f} keV ({res['seconds']:.0f} s)")
        save()
    # sanity: WS4 vs all measured (the shared data README quotes 0.295 MeV)
    f = ground_states(2020)
    m = f[(f.z >= 8) & (f.n >= 8) & f.mass_measured]
    ws4 = extra["WS4"].lookup(m.z.values, m.n.values, "binding_energy_kev")
    report["ws4_all_measured_binding_rms_kev"] = float(np.sqrt(np.nanmean((ws4 - m.binding_energy_kev.values) ** 2)))
    assert MASS_EXCESS_HYDROGEN_KEV > 0
    save()
    print((args.out / "bench_models.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
